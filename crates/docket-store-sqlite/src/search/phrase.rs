//! Long phrases, matched in time linear in the phrase plus the candidate documents.
//!
//! FTS5 matches a phrase by walking, for every word of the phrase, that word's positions in
//! the document: k words cost k × positions, so 256 words of "disk full" over tickets of
//! 200k such words took seconds each. A phrase of more than
//! [`SHORT_PHRASE_WORDS`](docket_query::phrase::SHORT_PHRASE_WORDS) words is therefore
//! answered here: FTS5 finds the tickets holding every distinct word of it (an AND, which
//! skips over position lists), and each candidate's column text is matched against the
//! phrase by `docket_query::phrase` (one pass over its words). The search deadline is
//! checked between documents.

use std::time::Instant;

use docket_core::{Error, Result};
use docket_query::phrase::{fts5_ascii_words, Phrase, SHORT_PHRASE_WORDS};
use docket_query::{Filter, TextField};
use rusqlite::{params, Connection};

use crate::writer::sql_err;

/// Candidate rows read per statement: rows carry whole column texts (up to the body size
/// limit each), so a search holds only a few at once.
const SLICE: i64 = 16;

/// Whether `filter` is a phrase answered here rather than by FTS5. Only phrases of plain
/// analyzer words ([a-z0-9_]) qualify, so FTS5 would split the phrase exactly as given.
pub fn is_long(filter: &Filter) -> bool {
    match filter {
        Filter::Text {
            tokens,
            phrase: true,
            ..
        } => {
            tokens.len() > SHORT_PHRASE_WORDS
                && tokens.iter().all(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
        }
        _ => false,
    }
}

/// Work done by [`matching`] (for tests and logs).
#[derive(Debug, Default, Clone, Copy)]
pub struct Work {
    pub candidates: u64,
    pub steps: u64,
}

/// The numbers (ascending) of the tickets whose `field` holds the phrase `tokens`.
pub fn matching(
    conn: &Connection,
    field: TextField,
    tokens: &[String],
    deadline: Instant,
    work: &mut Work,
) -> Result<Vec<i64>> {
    let Some(phrase) = Phrase::new(tokens.iter().map(|t| t.as_bytes())) else {
        return Ok(Vec::new());
    };
    let column = field.name();
    // Tokens are [a-z0-9_] (see `is_long`), so quoting them cannot break out.
    let all_words = phrase
        .distinct_words()
        .map(|w| format!("{column} : \"{}\"", String::from_utf8_lossy(w)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let sql = format!(
        "SELECT rowid, {column} FROM ticket_text WHERE ticket_text MATCH ? AND rowid > ? \
         ORDER BY rowid LIMIT ?"
    );
    let mut out = Vec::new();
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, Option<String>)> = conn
            .prepare_cached(&sql)
            .and_then(|mut st| {
                st.query_map(params![all_words, after, SLICE], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(sql_err)?;
        for (num, text) in &rows {
            if Instant::now() >= deadline {
                // Mapped to the search-timeout answer by the store (`search_tickets`).
                return Err(Error::Internal(
                    "phrase matching passed the search deadline".into(),
                ));
            }
            let text = text.as_deref().unwrap_or("");
            let found = phrase.find(fts5_ascii_words(text));
            work.candidates += 1;
            work.steps += found.steps;
            if found.matched {
                out.push(*num);
            }
        }
        match rows.last() {
            Some((last, _)) if rows.len() as i64 == SLICE => after = *last,
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use docket_core::model::Ticket;
    use docket_core::store::{SearchRequest, SortField, Store};

    use super::*;
    use crate::{matches, SqliteOptions, SqliteStore};

    fn ticket(id: &str, category: &str, body: &str) -> Ticket {
        Ticket {
            id: id.into(),
            subject: format!("subject {id}"),
            body: body.into(),
            status: "open".into(),
            kind: "task".into(),
            category: category.into(),
            ..Default::default()
        }
    }

    async fn ids(
        store: &SqliteStore,
        query: &str,
        sort_by: SortField,
        cats: Option<&[&str]>,
    ) -> Vec<String> {
        let ctx = docket_query::LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: jiff::Timestamp::now(),
        };
        let page = store
            .search_tickets(&SearchRequest {
                filter: docket_query::compile(query, &ctx).unwrap(),
                categories: cats.map(|c| c.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>()),
                sort_by,
                descending: false,
                offset: 0,
                limit: 50,
            })
            .await
            .unwrap();
        let mut ids: Vec<String> = page.rows.into_iter().map(|t| t.id).collect();
        assert_eq!(page.total, ids.len() as u64, "{query}");
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn long_phrases_match_exactly_and_in_linear_work() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
            .await
            .unwrap();
        let big = format!("{} the end", "disk full ".repeat(100_000));
        for t in [
            ticket("a", "prod", "alpha beta gamma delta epsilon zeta"),
            ticket("b", "dev", "alpha beta gamma delta zeta epsilon alpha beta"),
            ticket("c", "prod", "Alpha, beta; gamma-delta epsilon!"),
            ticket("big", "prod", &big),
        ] {
            store.create_ticket(t).await.unwrap().unwrap();
        }
        let five = "\"alpha beta gamma delta epsilon\"";
        for sort in [SortField::Num, SortField::Subject] {
            assert_eq!(ids(&store, five, sort, None).await, ["a", "c"]);
            assert_eq!(
                ids(&store, five, sort, Some(&["dev"])).await,
                Vec::<String>::new()
            );
            assert_eq!(
                ids(&store, &format!("-{five}"), sort, None).await,
                ["b", "big"]
            );
            assert_eq!(
                ids(
                    &store,
                    &format!("{five} | \"gamma delta zeta epsilon alpha\""),
                    sort,
                    None
                )
                .await,
                ["a", "b", "c"]
            );
            assert_eq!(
                ids(&store, &format!("{five} subject:c"), sort, None).await,
                ["c"]
            );
        }

        // 256 words of "disk full … disk disk" (never in the text): FTS5's phrase match
        // walked the 200k positions once per phrase word (256 × 200k); this reads each
        // word once.
        let mut words = ["disk", "full"].repeat(127);
        words.extend(["disk", "disk"]);
        let tokens: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let later = Instant::now() + Duration::from_secs(60);
        let (nums, work, found, err) = store
            .searcher
            .run(later, move |tx| {
                let mut work = Work::default();
                let nums = matching(tx, TextField::Body, &tokens, later, &mut work)?;
                // The same through the list algebra (the store's path when its index is
                // unusable).
                let filter = Filter::Text {
                    field: TextField::Body,
                    tokens: tokens[..200].to_vec(),
                    phrase: true,
                };
                let found = matches::matching(tx, &filter, later)?;
                // A deadline already past stops it with the error the store turns into a
                // timeout.
                let err =
                    matching(tx, TextField::Body, &tokens, Instant::now(), &mut work).unwrap_err();
                Ok((nums, work, found, err))
            })
            .await
            .unwrap();
        assert!(nums.is_empty());
        assert_eq!(work.candidates, 1);
        assert!(work.steps <= 3 * 200_100, "{} steps", work.steps);
        assert_eq!(found.len(), 1);
        assert!(err.to_string().contains("deadline"), "{err}");
    }
}
