//! Compiles a search [`Filter`] into PostgreSQL SQL over `tickets t`. Column names come from
//! fixed tables here; every value from the query travels as a bound parameter (`$n`).
//!
//! The result is the SQLite store's, match for match and in the same order: text terms are
//! tsvector matches over the same analyzer tokens with the same positions (with an exact
//! substring fallback for fields beyond tsvector limits, see index.rs), keyword terms are
//! array containment over the same normalized values, and every condition is NULL-free, so
//! NOT is plain set complement as in the SQLite store's list algebra.

use docket_core::store::{SearchRequest, SortField, StoredPage};
use docket_core::{Error, Result};
use docket_query::{normalize_keyword, Filter, RangeField};
use sqlx::PgPool;

use crate::db_err;
use crate::index::{keyword_entry, quote_lexeme};

pub(crate) mod phrase;

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
    TextArray(Vec<String>),
    IntArray(Vec<i64>),
}

/// SQL text and its parameters, numbered as they are pushed.
#[derive(Debug, Default)]
pub struct Query {
    pub sql: String,
    pub binds: Vec<Bind>,
    /// The raw rows matching each long phrase, found ahead (see `phrase`).
    pub raw: phrase::RawMatches,
}

impl Query {
    /// Appends the placeholder of a new parameter.
    fn bind(&mut self, value: Bind) {
        self.binds.push(value);
        self.sql.push('$');
        self.sql.push_str(&self.binds.len().to_string());
    }
    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }
}

/// Most terms one search may have: the one limit of `docket_query`.
pub use docket_query::MAX_TERMS;

fn count_terms(filter: &Filter) -> usize {
    match filter {
        Filter::All | Filter::None => 0,
        Filter::And(items) | Filter::Or(items) => items.iter().map(count_terms).sum(),
        Filter::Not(inner) => count_terms(inner),
        Filter::Text { .. } | Filter::Keyword { .. } | Filter::Range { .. } => 1,
    }
}

fn range_column(field: RangeField) -> &'static str {
    match field {
        RangeField::Num => "t.num",
        RangeField::Created => "t.created",
        RangeField::Modified => "t.modified",
        RangeField::Due => "t.due",
    }
}

/// Appends the SQL condition for `filter` (over `tickets t`). Never NULL.
pub fn render_filter(filter: &Filter, q: &mut Query) {
    match filter {
        Filter::All => q.push("TRUE"),
        Filter::None => q.push("FALSE"),
        Filter::And(items) if items.is_empty() => q.push("TRUE"),
        Filter::Or(items) if items.is_empty() => q.push("FALSE"),
        Filter::And(items) => render_list(items, " AND ", q),
        Filter::Or(items) => render_list(items, " OR ", q),
        Filter::Not(inner) => {
            q.push("NOT (");
            render_filter(inner, q);
            q.push(")");
        }
        Filter::Text {
            field,
            tokens,
            phrase,
        } => {
            if tokens.is_empty() {
                // As the SQLite store (and the evaluator): no words constrain nothing.
                q.push("TRUE");
                return;
            }
            if tokens.iter().any(String::is_empty) {
                // No indexed token is empty, so such a term matches nothing.
                q.push("FALSE");
                return;
            }
            let joiner = if *phrase { " <-> " } else { " & " };
            let tsquery = tokens
                .iter()
                .map(|t| quote_lexeme(t))
                .collect::<Vec<_>>()
                .join(joiner);
            let needles: Vec<String> = if *phrase {
                vec![format!(" {} ", tokens.join(" "))]
            } else {
                tokens.iter().map(|t| format!(" {t} ")).collect()
            };
            let f = field.name();
            q.push(&format!("(t.{f}_tsv @@ "));
            q.bind(Bind::Text(tsquery));
            if let Some(nums) = q.raw.get(&(*field, tokens.clone())).cloned() {
                q.push(&format!(
                    "::tsquery OR (t.{f}_raw IS NOT NULL AND t.num = ANY("
                ));
                q.bind(Bind::IntArray(nums));
                q.push("::bigint[])))");
                return;
            }
            q.push(&format!(
                "::tsquery OR (t.{f}_raw IS NOT NULL AND docket_has_all(t.{f}_raw, "
            ));
            q.bind(Bind::TextArray(needles));
            q.push("::text[])))");
        }
        Filter::Keyword { field, value } => {
            q.push("t.keywords @> ARRAY[");
            q.bind(Bind::Text(keyword_entry(field.name(), value)));
            q.push("::text]");
        }
        Filter::Range { field, min, max } => {
            let col = range_column(*field);
            match (min, max) {
                (None, None) => q.push("TRUE"),
                (Some(min), None) => {
                    q.push(&format!("{col} >= "));
                    q.bind(Bind::Int(*min));
                }
                (None, Some(max)) => {
                    q.push(&format!("{col} < "));
                    q.bind(Bind::Int(*max));
                }
                (Some(min), Some(max)) => {
                    q.push(&format!("({col} >= "));
                    q.bind(Bind::Int(*min));
                    q.push(&format!(" AND {col} < "));
                    q.bind(Bind::Int(*max));
                    q.push(")");
                }
            }
        }
    }
}

/// Renders `items` joined by `joiner` as a balanced tree of parenthesized groups, so a
/// thousand-term OR does not become a thousand-deep expression.
fn render_list(items: &[Filter], joiner: &str, q: &mut Query) {
    const FLAT: usize = 4;
    q.push("(");
    if items.len() <= FLAT {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                q.push(joiner);
            }
            render_filter(item, q);
        }
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        render_list(left, joiner, q);
        q.push(joiner);
        render_list(right, joiner, q);
    }
    q.push(")");
}

fn order_by(sort: SortField, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let cols: &[&str] = match sort {
        SortField::Id | SortField::Num => &[],
        SortField::Created => &["t.created"],
        SortField::Modified => &["t.modified"],
        SortField::Due => &["t.due"],
        // SQLite's COLLATE NOCASE: the folded bytes (see index.rs), compared bytewise.
        SortField::Subject => &["t.subject_key", "t.subject_rest"],
        // Columns in COLLATE "C": byte order, as SQLite's BINARY.
        SortField::Status => &["t.status"],
        SortField::Type => &["t.type"],
        // `search_doc::list_sort_key`: ASCII, so byte order is SQLite's BINARY order.
        SortField::Assignees => &["t.assignee_key"],
        SortField::Tags => &["t.tag_key"],
        // The configured level's position (priority.rs).
        SortField::Priority => &["t.priority_rank"],
    };
    let mut out: Vec<String> = cols.iter().map(|c| format!("{c} {dir}")).collect();
    out.push(format!("t.num {dir}"));
    out.join(", ")
}

/// How the category scope is applied. The SQLite store counts (and pages in number order)
/// through the category keyword index, which holds the normalized category, and pages in any
/// other order through the `category` column; both agree for real categories (ids are
/// lowercase), and this store does exactly the same so it agrees everywhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Keyword,
    Column,
}

/// Appends the condition of `request` (its filter and category scope) to `q`.
fn where_clause(request: &SearchRequest, scope: Scope, q: &mut Query) {
    q.push("(");
    render_filter(&request.filter, q);
    q.push(")");
    if let Some(categories) = &request.categories {
        if categories.is_empty() {
            q.push(" AND FALSE");
        } else {
            match scope {
                Scope::Keyword => {
                    q.push(" AND t.keywords && ");
                    q.bind(Bind::TextArray(
                        categories
                            .iter()
                            .map(|c| keyword_entry("category", &normalize_keyword(c)))
                            .collect(),
                    ));
                    q.push("::text[]");
                }
                Scope::Column => {
                    q.push(" AND t.category = ANY(");
                    q.bind(Bind::TextArray(
                        categories
                            .iter()
                            .filter(|c| !c.contains('\0'))
                            .cloned()
                            .collect(),
                    ));
                    q.push("::text[])");
                }
            }
        }
    }
}

macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Int(i) => q.bind(*i),
                Bind::Text(s) => q.bind(s.clone()),
                Bind::TextArray(v) => q.bind(v.clone()),
                Bind::IntArray(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// `deadline`: when the search's time is up (each statement is also bounded by the search
/// connections' `statement_timeout`); long-phrase matching in Rust checks it per text.
pub async fn search(
    db: &PgPool,
    request: &SearchRequest,
    deadline: std::time::Instant,
) -> Result<StoredPage> {
    let terms = count_terms(&request.filter);
    if terms > MAX_TERMS {
        return Err(Error::Ticket(format!(
            "Invalid search query: it has {terms} search terms, more than the limit of {MAX_TERMS}; \
             narrow it down or split it into several searches"
        )));
    }
    let mut long = Vec::new();
    phrase::long_phrases(&request.filter, &mut long);
    if long.is_empty() {
        let mut conn = db.acquire().await.map_err(db_err)?;
        return search_on(&mut conn, request, phrase::RawMatches::new()).await;
    }
    // The raw rows of long phrases are found first, in the snapshot the search then reads.
    let mut tx = db.begin().await.map_err(db_err)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut raw = phrase::RawMatches::new();
    let mut work = phrase::Work::default();
    for (field, tokens) in long {
        let nums = phrase::raw_matching(&mut tx, field, tokens, &mut work, deadline).await?;
        raw.insert((field, tokens.to_vec()), nums);
    }
    let page = search_on(&mut tx, request, raw).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(page)
}

/// The count and page of `request`, long phrases' raw rows given.
async fn search_on(
    conn: &mut sqlx::PgConnection,
    request: &SearchRequest,
    raw: phrase::RawMatches,
) -> Result<StoredPage> {
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(request.offset).unwrap_or(i64::MAX);
    let scope = if matches!(request.sort_by, SortField::Id | SortField::Num) {
        Scope::Keyword
    } else {
        Scope::Column
    };
    // The count and the page in ONE statement: one snapshot, one round trip and one plan
    // (a transaction around two statements cost five round trips per search).
    let mut q = Query {
        raw: raw.clone(),
        ..Query::default()
    };
    q.push("SELECT (SELECT count(*) FROM tickets t WHERE ");
    where_clause(request, Scope::Keyword, &mut q);
    q.push("), t.data FROM tickets t WHERE ");
    where_clause(request, scope, &mut q);
    q.push(" ORDER BY ");
    q.push(&order_by(request.sort_by, request.descending));
    q.push(" LIMIT ");
    q.bind(Bind::Int(limit));
    q.push(" OFFSET ");
    q.bind(Bind::Int(offset));
    let page: Vec<(i64, String)> = bind_all!(sqlx::query_as(&q.sql), &q.binds)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let total = match page.first() {
        Some((total, _)) => *total,
        // An empty page (no match, or an offset past the end) carries no count.
        None => {
            let mut q = Query {
                raw,
                ..Query::default()
            };
            q.push("SELECT count(*) FROM tickets t WHERE ");
            where_clause(request, Scope::Keyword, &mut q);
            let (total,): (i64,) = bind_all!(sqlx::query_as(&q.sql), &q.binds)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
            total
        }
    };
    let rows: Vec<String> = page.into_iter().map(|(_, d)| d).collect();
    Ok(StoredPage {
        rows,
        total: total.max(0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_query::{KeywordField, TextField};

    #[test]
    fn renders_bound_parameters_only() {
        let f = Filter::And(vec![
            Filter::Text {
                field: TextField::Body,
                tokens: vec!["disk".into(), "full".into()],
                phrase: true,
            },
            Filter::Not(Box::new(Filter::Keyword {
                field: KeywordField::Status,
                value: "closed".into(),
            })),
            Filter::Range {
                field: RangeField::Due,
                min: Some(1),
                max: None,
            },
        ]);
        let mut q = Query::default();
        render_filter(&f, &mut q);
        assert_eq!(
            q.sql,
            "((t.body_tsv @@ $1::tsquery OR (t.body_raw IS NOT NULL AND docket_has_all(t.body_raw, $2::text[]))) \
             AND NOT (t.keywords @> ARRAY[$3::text]) AND t.due >= $4)"
        );
        assert_eq!(
            q.binds,
            vec![
                Bind::Text("'disk' <-> 'full'".into()),
                Bind::TextArray(vec![" disk full ".into()]),
                Bind::Text("status:closed".into()),
                Bind::Int(1),
            ]
        );
        assert_eq!(
            order_by(SortField::Subject, true),
            "t.subject_key DESC, t.subject_rest DESC, t.num DESC"
        );
    }
}
