//! Compiles a search [`Filter`] into SQLite SQL. Column names come from fixed tables here;
//! every value from the query travels as a bound parameter.

use docket_core::model::Ticket;
use docket_core::store::{RowPage, RowShape, SearchRequest, SortField, StoredRow};
use docket_core::{Error, Result};
use docket_query::{Filter, RangeField};
use std::time::Instant;

use rusqlite::types::ToSqlOutput;
use rusqlite::{params_from_iter, Connection};

use crate::keyword_index::{self, KeywordIndex};
use crate::search_pool::SearchPool;
use crate::writer::{sql_err, Writer};
use crate::{bitmap_search, matches};

pub(crate) mod phrase;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

fn range_column(field: RangeField) -> &'static str {
    match field {
        RangeField::Num => "t.num",
        RangeField::Created => "t.created",
        RangeField::Modified => "t.modified",
        RangeField::Due => "t.due",
    }
}

/// The FTS5 query for tokens in one column: a phrase, or every token anywhere.
fn fts_query(column: &str, tokens: &[String], phrase: bool) -> String {
    // Tokens are analyzer output, `[a-z0-9_]` only, so quoting them cannot break out.
    if phrase {
        format!("{column} : \"{}\"", tokens.join(" "))
    } else {
        tokens
            .iter()
            .map(|t| format!("{column} : \"{t}\""))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// The subtree as one FTS5 expression, when it is made of text terms only and FTS5 can say
/// it (FTS5 has no unary NOT: a negation must stand beside a positive term in an AND).
/// One MATCH over the whole subtree lets FTS5 intersect its doclists itself instead of SQL
/// materializing one row list per word.
pub(crate) fn fts_expr(filter: &Filter) -> Option<String> {
    match filter {
        // Long phrases are matched outside FTS5 (see `phrase`), each as a set of its own.
        _ if phrase::is_long(filter) => None,
        Filter::Text {
            field,
            tokens,
            phrase,
        } if !tokens.is_empty() => Some(format!("({})", fts_query(field.name(), tokens, *phrase))),
        Filter::And(items) if !items.is_empty() => {
            let (neg, pos): (Vec<&Filter>, Vec<&Filter>) =
                items.iter().partition(|f| matches!(f, Filter::Not(_)));
            if pos.is_empty() {
                return None;
            }
            let mut out = pos
                .iter()
                .map(|f| fts_expr(f))
                .collect::<Option<Vec<_>>>()?
                .join(" AND ");
            for n in neg {
                let Filter::Not(inner) = n else { return None };
                out = format!("({out}) NOT {}", fts_expr(inner)?);
            }
            Some(format!("({out})"))
        }
        Filter::Or(items) if !items.is_empty() => {
            let parts = items.iter().map(fts_expr).collect::<Option<Vec<_>>>()?;
            Some(format!("({})", parts.join(" OR ")))
        }
        _ => None,
    }
}

/// Appends the SQL condition for `filter` (over `tickets t`) to `sql`.
pub fn render_filter(filter: &Filter, sql: &mut String, binds: &mut Vec<Bind>) {
    match filter {
        Filter::All => sql.push('1'),
        Filter::None => sql.push('0'),
        Filter::And(items) | Filter::Or(items) if items.is_empty() => {
            sql.push(if matches!(filter, Filter::And(_)) {
                '1'
            } else {
                '0'
            })
        }
        _ if fts_expr(filter).is_some() && !matches!(filter, Filter::Text { .. }) => {
            sql.push_str("t.num IN (SELECT rowid FROM ticket_text WHERE ticket_text MATCH ?)");
            binds.push(Bind::Text(fts_expr(filter).unwrap_or_default()));
        }
        Filter::And(items) => {
            // Text terms (and negated ones beside them) become one MATCH; the rest stay SQL.
            let (text, other): (Vec<Filter>, Vec<Filter>) = items.iter().cloned().partition(|f| {
                fts_expr(f).is_some()
                    || matches!(f, Filter::Not(inner) if fts_expr(inner).is_some())
            });
            let grouped = Filter::And(text.clone());
            let parts = if text.len() > 1 && fts_expr(&grouped).is_some() {
                let mut rest = vec![grouped];
                rest.extend(other);
                rest
            } else {
                items.clone()
            };
            // The first keyword term drives (its row list is built once); the others are
            // probed per candidate through the (field, value, num) key, which measured 3-4x
            // faster than intersecting materialized lists.
            let mut seen_keyword = false;
            let parts: Vec<AndPart> = parts
                .into_iter()
                .map(|part| match part {
                    Filter::Keyword { field, value } if seen_keyword => {
                        AndPart::Probe(field, value)
                    }
                    other => {
                        seen_keyword |= matches!(other, Filter::Keyword { .. });
                        AndPart::Filter(other)
                    }
                })
                .collect();
            render_list(
                &parts,
                " AND ",
                sql,
                binds,
                &|part, sql, binds| match part {
                    AndPart::Filter(f) => render_filter(f, sql, binds),
                    AndPart::Probe(field, value) => {
                        sql.push_str(
                        "EXISTS (SELECT 1 FROM ticket_keywords k WHERE k.field = ? AND k.value = ? AND k.num = t.num)",
                    );
                        binds.push(Bind::Text(field.name().to_string()));
                        binds.push(Bind::Text(value.clone()));
                    }
                },
            );
        }
        Filter::Or(items) => render_list(items, " OR ", sql, binds, &render_filter),
        Filter::Not(inner) => {
            sql.push_str("NOT (");
            render_filter(inner, sql, binds);
            sql.push(')');
        }
        Filter::Text {
            field,
            tokens,
            phrase,
        } => {
            if tokens.is_empty() {
                sql.push('1');
                return;
            }
            sql.push_str("t.num IN (SELECT rowid FROM ticket_text WHERE ticket_text MATCH ?)");
            binds.push(Bind::Text(fts_query(field.name(), tokens, *phrase)));
        }
        Filter::Keyword { field, value } => {
            sql.push_str(
                "t.num IN (SELECT num FROM ticket_keywords WHERE field = ? AND value = ?)",
            );
            binds.push(Bind::Text(field.name().to_string()));
            binds.push(Bind::Text(value.clone()));
        }
        Filter::Range { field, min, max } => {
            let col = range_column(*field);
            let mut parts = Vec::new();
            if let Some(min) = min {
                parts.push(format!("{col} >= ?"));
                binds.push(Bind::Int(*min));
            }
            if let Some(max) = max {
                parts.push(format!("{col} < ?"));
                binds.push(Bind::Int(*max));
            }
            if parts.is_empty() {
                sql.push('1');
            } else {
                sql.push('(');
                sql.push_str(&parts.join(" AND "));
                sql.push(')');
            }
        }
    }
}

/// Renders `items` joined by `joiner` as a balanced tree of parenthesized groups: SQLite
/// parses a flat `a OR b OR c ...` into a tree as deep as the list is long, and refuses
/// expressions deeper than 1000 (`a|b|c...` with 1000 words would be an internal error).
fn render_list<T>(
    items: &[T],
    joiner: &str,
    sql: &mut String,
    binds: &mut Vec<Bind>,
    render: &dyn Fn(&T, &mut String, &mut Vec<Bind>),
) {
    const FLAT: usize = 4;
    sql.push('(');
    if items.len() <= FLAT {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                sql.push_str(joiner);
            }
            render(item, sql, binds);
        }
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        render_list(left, joiner, sql, binds, render);
        sql.push_str(joiner);
        render_list(right, joiner, sql, binds, render);
    }
    sql.push(')');
}

/// One operand of a rendered AND: a filter, or a keyword term checked per candidate row.
enum AndPart {
    Filter(Filter),
    Probe(docket_query::KeywordField, String),
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

pub(crate) fn order_by(sort: SortField, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    let col = match sort {
        SortField::Id | SortField::Num => return format!("t.num {dir}"),
        SortField::Created => "t.created",
        SortField::Modified => "t.modified",
        SortField::Due => "t.due",
        SortField::Subject => "t.subject",
        SortField::Status => "t.status",
        SortField::Type => "t.type",
        // Keys filled by the store (tickets.rs), BINARY order; indexed with `num`.
        SortField::Assignees => "t.assignee_key",
        SortField::Tags => "t.tag_key",
        // The configured level's position (priority.rs); indexed with `num`.
        SortField::Priority => "t.priority_rank",
    };
    format!("{col} {dir}, t.num {dir}")
}

/// The WHERE clause (filter plus category scope) shared by the count and the page query.
fn where_clause(request: &SearchRequest) -> (String, Vec<Bind>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    render_filter(&request.filter, &mut sql, &mut binds);
    if let Some(categories) = &request.categories {
        if categories.is_empty() {
            sql.push_str(" AND 0");
        } else {
            sql.push_str(" AND t.category IN (");
            for (i, c) in categories.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                binds.push(Bind::Text(c.clone()));
            }
            sql.push(')');
        }
    }
    (sql, binds)
}

impl rusqlite::ToSql for Bind {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self {
            Bind::Int(i) => i.to_sql(),
            Bind::Text(s) => s.to_sql(),
        }
    }
}

/// `binds`, then the page's limit and offset.
fn with_page(binds: &[Bind], limit: i64, offset: i64) -> Vec<Bind> {
    let mut all = binds.to_vec();
    all.extend([Bind::Int(limit), Bind::Int(offset)]);
    all
}

/// The first column of every row of a cached statement, as numbers.
pub(crate) fn query_nums(c: &Connection, sql: &str, binds: &[Bind]) -> Result<Vec<i64>> {
    c.prepare_cached(sql)
        .and_then(|mut st| {
            st.query_map(params_from_iter(binds), |r| r.get(0))?
                .collect()
        })
        .map_err(sql_err)
}

/// The one row of a cached statement, its first column.
pub(crate) fn query_one<T: rusqlite::types::FromSql>(
    c: &Connection,
    sql: &str,
    binds: &[Bind],
) -> Result<T> {
    c.prepare_cached(sql)
        .and_then(|mut st| st.query_row(params_from_iter(binds), |r| r.get(0)))
        .map_err(sql_err)
}

/// A cheaper exact count for common shapes, where one index alone answers it: every ticket
/// has exactly one FTS row and keyword rows are unique per (field, value, ticket).
fn count_shortcut(request: &SearchRequest) -> Option<(String, Vec<Bind>)> {
    if request.categories.is_some() {
        return None;
    }
    match &request.filter {
        Filter::All => Some(("SELECT count(*) FROM tickets".into(), Vec::new())),
        Filter::Keyword { field, value } => Some((
            "SELECT count(*) FROM ticket_keywords WHERE field = ? AND value = ?".into(),
            vec![
                Bind::Text(field.name().to_string()),
                Bind::Text(value.clone()),
            ],
        )),
        f => fts_expr(f).map(|expr| {
            (
                "SELECT count(*) FROM ticket_text WHERE ticket_text MATCH ?".into(),
                vec![Bind::Text(expr)],
            )
        }),
    }
}

/// The numbers of a one-index query's page in number order, read from that index alone:
/// FTS5 and the keyword key walk their lists backwards and stop after the page, where
/// `tickets.num IN (…)` would first build the whole list (250 ms vs 1 ms for a word in
/// 30 % of a million tickets).
fn direct_page(request: &SearchRequest) -> Option<(String, Vec<Bind>)> {
    if request.categories.is_some() || !matches!(request.sort_by, SortField::Id | SortField::Num) {
        return None;
    }
    let dir = if request.descending { "DESC" } else { "ASC" };
    match &request.filter {
        Filter::Keyword { field, value } => Some((
            format!(
                "SELECT num FROM ticket_keywords WHERE field = ? AND value = ? ORDER BY num {dir} LIMIT ? OFFSET ?"
            ),
            vec![Bind::Text(field.name().to_string()), Bind::Text(value.clone())],
        )),
        f => fts_expr(f).map(|expr| {
            (
                format!(
                    "SELECT rowid FROM ticket_text WHERE ticket_text MATCH ? ORDER BY rowid {dir} LIMIT ? OFFSET ?"
                ),
                vec![Bind::Text(expr)],
            )
        }),
    }
}

/// The search, stopped by SQLite at `deadline` (see `search_pool.rs`).
pub async fn search(
    pool: &SearchPool,
    index: &std::sync::Arc<KeywordIndex>,
    writer: &Writer,
    request: &SearchRequest,
    shape: RowShape,
    deadline: Instant,
) -> Result<RowPage> {
    let terms = count_terms(&request.filter);
    if terms > MAX_TERMS {
        return Err(Error::Ticket(format!(
            "Invalid search query: it has {terms} search terms, more than the limit of {MAX_TERMS}; \
             narrow it down or split it into several searches"
        )));
    }
    // A text-only query is one FTS5 index: its count and its number-ordered page come from
    // that index alone (below), cheaper than building its set. Everything else goes through
    // the keyword index; SQL alone answers only when that index cannot (see
    // `bitmap_search::search`).
    let text_only = request.categories.is_none() && fts_expr(&request.filter).is_some();
    if !text_only {
        if let Some(page) =
            bitmap_search::search(pool, index, writer, request, shape, deadline).await?
        {
            return Ok(page);
        }
    } else if pool.idle() >= 2 {
        if let Some(page) = text_page_in_parallel(pool, request, shape, deadline).await? {
            return Ok(page);
        }
    }
    // One read transaction: the count and the page see the same snapshot.
    let request = request.clone();
    pool.run(deadline, move |tx| in_sql(tx, &request, shape, deadline))
        .await
}

/// The search in SQL alone, in the caller's read transaction.
fn in_sql(
    tx: &Connection,
    request: &SearchRequest,
    shape: RowShape,
    deadline: Instant,
) -> Result<RowPage> {
    let (cond, binds) = where_clause(request);
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(request.offset).unwrap_or(i64::MAX);
    let total = match count_shortcut(request) {
        Some((count_sql, count_binds)) => {
            query_one::<i64>(tx, &count_sql, &count_binds)?.max(0) as u64
        }
        None => {
            // Several terms: evaluate to the list of matches once; it gives the exact total
            // and, in number order, the page itself.
            let mut nums = matches::matching(tx, &request.filter, deadline)?;
            if let Some(categories) = &request.categories {
                let cats: Vec<String> = categories.iter().cloned().collect();
                nums = matches::intersect(&nums, &matches::in_categories(tx, &cats)?);
            }
            if matches!(request.sort_by, SortField::Id | SortField::Num) {
                let page: Vec<i64> = if request.descending {
                    nums.iter()
                        .rev()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .copied()
                        .collect()
                } else {
                    nums.iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .copied()
                        .collect()
                };
                let rows = fetch_in_order(tx, &page, shape)?;
                return Ok(RowPage {
                    rows,
                    total: nums.len() as u64,
                });
            }
            if contains_long_phrase(&request.filter) {
                // SQL cannot say a long phrase (see `phrase`): page the numbers found.
                let page = page_of(tx, &nums, request, limit, offset)?;
                let rows = fetch_in_order(tx, &page, shape)?;
                return Ok(RowPage {
                    rows,
                    total: nums.len() as u64,
                });
            }
            nums.len() as u64
        }
    };
    if let Some((page_sql, page_binds)) = direct_page(request) {
        let nums = query_nums(tx, &page_sql, &with_page(&page_binds, limit, offset))?;
        let rows = fetch_in_order(tx, &nums, shape)?;
        return Ok(RowPage { rows, total });
    }
    let page_sql = format!(
        "SELECT t.num FROM tickets t WHERE {cond} ORDER BY {} LIMIT ? OFFSET ?",
        order_by(request.sort_by, request.descending)
    );
    let nums = query_nums(tx, &page_sql, &with_page(&binds, limit, offset))?;
    let rows = fetch_in_order(tx, &nums, shape)?;
    Ok(RowPage { rows, total })
}

/// Whether `filter` has a phrase that only `phrase::matching` answers.
fn contains_long_phrase(filter: &Filter) -> bool {
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().any(contains_long_phrase),
        Filter::Not(inner) => contains_long_phrase(inner),
        f => phrase::is_long(f),
    }
}

/// The numbers of the page of the tickets `nums` in the request's order.
fn page_of(
    conn: &Connection,
    nums: &[i64],
    request: &SearchRequest,
    limit: i64,
    offset: i64,
) -> Result<Vec<i64>> {
    let list = serde_json::to_string(nums).map_err(|e| Error::Internal(e.to_string()))?;
    let sql = format!(
        "SELECT t.num FROM tickets t WHERE t.num IN (SELECT value FROM json_each(?)) \
         ORDER BY {} LIMIT ? OFFSET ?",
        order_by(request.sort_by, request.descending)
    );
    query_nums(
        conn,
        &sql,
        &[Bind::Text(list), Bind::Int(limit), Bind::Int(offset)],
    )
}

/// A text-only query's count and number-ordered page on two idle search threads at once
/// (the count walks the whole FTS5 list, the page only its end; on two cores this takes the
/// page and its rows off the critical path). Both read `index_epoch` first: equal epochs mean
/// both snapshots hold the same tickets (every ticket write moves the epoch, see
/// `keyword_index::install_capture`), else None and the caller uses one transaction.
async fn text_page_in_parallel(
    pool: &SearchPool,
    request: &SearchRequest,
    shape: RowShape,
    deadline: Instant,
) -> Result<Option<RowPage>> {
    let (Some((count_sql, count_binds)), Some((page_sql, page_binds))) =
        (count_shortcut(request), direct_page(request))
    else {
        return Ok(None);
    };
    let limit = i64::try_from(request.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(request.offset).unwrap_or(i64::MAX);
    let count = pool.run(deadline, move |tx| {
        let epoch = keyword_index::epoch_of(tx)?;
        let n = query_one::<i64>(tx, &count_sql, &count_binds)?;
        Ok((epoch, n.max(0) as u64))
    });
    let page = pool.run(deadline, move |tx| {
        let epoch = keyword_index::epoch_of(tx)?;
        let nums = query_nums(tx, &page_sql, &with_page(&page_binds, limit, offset))?;
        Ok((epoch, fetch_in_order(tx, &nums, shape)?))
    });
    let (count, page) = tokio::join!(count, page);
    let ((counted_at, total), (paged_at, rows)) = (count?, page?);
    Ok((counted_at == paged_at).then_some(RowPage { rows, total }))
}

/// A row as [`Store::search_tickets`](docket_core::store::Store::search_tickets) returns it.
pub(crate) fn parse_ticket(data: &str) -> Result<Ticket> {
    serde_json::from_str::<Ticket>(data)
        .map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))
}

/// The rows of the tickets with these numbers, in this order: in `shape`, where the
/// `ticket_compact` table (migration 0012) holds the ticket's compact row, else as stored.
pub(crate) fn fetch_in_order(
    conn: &Connection,
    nums: &[i64],
    shape: RowShape,
) -> Result<Vec<StoredRow>> {
    let mut stored = conn
        .prepare_cached("SELECT data FROM tickets WHERE num = ?1")
        .map_err(sql_err)?;
    let mut ready = match shape {
        RowShape::Compact => Some(
            conn.prepare_cached("SELECT row FROM ticket_compact WHERE num = ?1")
                .map_err(sql_err)?,
        ),
        RowShape::Full => None,
    };
    let mut out = Vec::with_capacity(nums.len());
    for num in nums {
        if let Some(st) = ready.as_mut() {
            let mut rows = st.query([num]).map_err(sql_err)?;
            if let Some(row) = rows.next().map_err(sql_err)? {
                out.push(StoredRow::Compact(row.get(0).map_err(sql_err)?));
                continue;
            }
        }
        let mut rows = stored.query([num]).map_err(sql_err)?;
        if let Some(row) = rows.next().map_err(sql_err)? {
            out.push(StoredRow::Full(row.get(0).map_err(sql_err)?));
        }
    }
    Ok(out)
}
