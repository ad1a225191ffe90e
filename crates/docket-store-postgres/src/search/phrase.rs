//! Long phrases over the `*_raw` columns, matched in time linear in the phrase plus the
//! candidate texts.
//!
//! A field beyond tsvector limits is kept as its token text (see `index.rs`) and a phrase
//! was matched by `strpos(raw, ' whole phrase ')`, a Boyer–Moore–Horspool search whose
//! worst case is |text| × |phrase|: "zzz disk full … disk full" against 1 MB of "disk full"
//! compares almost the whole phrase at every word. A phrase of more than
//! [`SHORT_PHRASE_WORDS`] words is answered here instead: SQL finds the raw rows holding
//! each distinct word (short needles), and each candidate's text is matched against the
//! phrase by `docket_query::phrase` (one pass over its words). The tsvector side stays in
//! SQL: a tsvector keeps at most 255 positions per word, so its phrase match costs at most
//! 255 × 2 steps per phrase word.

use std::collections::HashMap;

use docket_core::{Error, Result};
use docket_query::phrase::{Phrase, SHORT_PHRASE_WORDS};
use docket_query::{Filter, TextField};
use sqlx::PgConnection;

use crate::db_err;

/// Candidate rows read per statement: each carries a whole raw text.
const SLICE: i64 = 16;

/// Raw rows matching each long phrase, by (field, tokens).
pub type RawMatches = HashMap<(TextField, Vec<String>), Vec<i64>>;

/// Whether `filter` is a phrase whose raw rows are matched here.
pub fn is_long(filter: &Filter) -> bool {
    match filter {
        Filter::Text {
            tokens,
            phrase: true,
            ..
        } => {
            tokens.len() > SHORT_PHRASE_WORDS
                && tokens
                    .iter()
                    .all(|t| !t.is_empty() && !t.contains(' ') && !t.contains('\0'))
        }
        _ => false,
    }
}

/// The long phrases of `filter`.
pub fn long_phrases<'f>(filter: &'f Filter, out: &mut Vec<(TextField, &'f [String])>) {
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|f| long_phrases(f, out)),
        Filter::Not(inner) => long_phrases(inner, out),
        Filter::Text { field, tokens, .. } if is_long(filter) => out.push((*field, tokens)),
        _ => {}
    }
}

/// Work done by [`raw_matching`] (for tests and logs).
#[derive(Debug, Default, Clone, Copy)]
pub struct Work {
    pub candidates: u64,
    pub steps: u64,
}

/// The numbers of the rows whose `field` is kept raw and holds the phrase `tokens`.
pub async fn raw_matching(
    conn: &mut PgConnection,
    field: TextField,
    tokens: &[String],
    work: &mut Work,
    deadline: std::time::Instant,
) -> Result<Vec<i64>> {
    let Some(phrase) = Phrase::new(tokens.iter().map(|t| t.as_bytes())) else {
        return Ok(Vec::new());
    };
    let needles: Vec<String> = phrase
        .distinct_words()
        .map(|w| format!(" {} ", String::from_utf8_lossy(w)))
        .collect();
    let f = field.name();
    let sql = format!(
        "SELECT num, {f}_raw FROM tickets WHERE {f}_raw IS NOT NULL \
         AND docket_has_all({f}_raw, $1::text[]) AND num > $2 ORDER BY num LIMIT $3"
    );
    let mut out = Vec::new();
    let mut after = i64::MIN;
    loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(&sql)
            .bind(&needles)
            .bind(after)
            .bind(SLICE)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_err)?;
        for (num, raw) in &rows {
            if std::time::Instant::now() >= deadline {
                // Mapped to the search-timeout answer by the store (`search_stored`).
                return Err(Error::Internal(
                    "phrase matching passed the search deadline".into(),
                ));
            }
            // Raw text is the tokens with one space around each (see `index::text_index`).
            let found = phrase.find(raw.split(' '));
            work.candidates += 1;
            work.steps += found.steps;
            if found.matched {
                out.push(*num);
            }
            // A text takes up to a few milliseconds: let other requests on this thread run.
            tokio::task::yield_now().await;
        }
        match rows.last() {
            Some((last, _)) if rows.len() as i64 == SLICE => after = *last,
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use docket_core::store::Store;

    use super::*;
    use crate::tests::{find, ticket, TestDb};

    /// A deadline that never comes in these tests.
    fn far() -> std::time::Instant {
        std::time::Instant::now() + std::time::Duration::from_secs(3600)
    }

    #[tokio::test]
    async fn long_phrases_over_raw_text_take_linear_work() {
        let db = TestDb::new().await;
        let store = db.store().await;
        // 200k words: beyond a tsvector, so kept raw.
        let mut big = ticket("big", "big one");
        big.body = "disk full ".repeat(100_000);
        store.create_ticket(big).await.unwrap().unwrap();
        // "zzz disk full … disk full" (155 words): strpos compared almost all of it at every
        // word of the text (|text| × |phrase|); this reads each word once.
        let mut words = vec!["zzz"];
        words.extend(["disk", "full"].repeat(77));
        let tokens: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        let mut work = Work::default();
        let mut conn = db.conn().await;
        let nums = raw_matching(&mut conn, TextField::Body, &tokens, &mut work, far())
            .await
            .unwrap();
        // "zzz" is in no text: no candidate is even read.
        assert!(nums.is_empty());
        assert_eq!(work.candidates, 0);
        let nums = raw_matching(&mut conn, TextField::Body, &tokens[1..], &mut work, far())
            .await
            .unwrap();
        assert_eq!(nums.len(), 1);
        assert_eq!(work.candidates, 1);
        assert!(work.steps <= 3 * 200_002, "{} steps", work.steps);
        // Every word occurs, the phrase does not: the whole text is read, once.
        let mut worst = tokens[1..153].to_vec();
        worst.extend(["disk".to_string(), "disk".to_string()]);
        let mut work = Work::default();
        assert!(
            raw_matching(&mut conn, TextField::Body, &worst, &mut work, far())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(work.candidates, 1);
        assert!(work.steps <= 3 * 200_002, "{} steps", work.steps);
        // A search whose time is up reads no further text.
        let mut work = Work::default();
        let late = raw_matching(
            &mut conn,
            TextField::Body,
            &worst,
            &mut work,
            std::time::Instant::now(),
        )
        .await;
        assert!(matches!(late, Err(Error::Internal(_))), "{late:?}");
        assert_eq!(work.candidates, 0);
        // Through the search: the same answers.
        let phrase = |w: &[String]| format!("\"{}\"", w.join(" "));
        assert_eq!(find(&store, &phrase(&tokens[1..])).await, ["big"]);
        assert!(find(&store, &phrase(&tokens)).await.is_empty());
    }
}
