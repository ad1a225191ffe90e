//! Search with the in-memory keyword index (`keyword_index.rs`).
//!
//! A filter is split into leaves: keyword terms (from memory, or from `ticket_keywords` for
//! rare terms), text subtrees (one FTS5 MATCH each) and date ranges (one index range of
//! `tickets`). Each leaf becomes a bitmap of ticket numbers; AND / OR / NOT and number ranges
//! are bitmap operations. The result gives the exact total, and the page: by number, straight
//! from the bitmap; by another field, from that field's index (walked in order, keeping the
//! numbers in the result) or, for small results, by sorting the result's rows in SQL.
//!
//! Everything a search reads — the epoch, the FTS and range leaves, the rows — comes from one
//! read transaction, and the memory sets are taken at that transaction's epoch, so totals and
//! rows always agree.

use std::sync::Arc;
use std::time::{Duration, Instant};

use docket_core::store::{RowPage, RowShape, SearchRequest, SortField};
use docket_core::Result;
use docket_query::{normalize_keyword, Filter, KeywordField, RangeField, TextField};
use roaring::RoaringBitmap;
use rusqlite::{params, Connection};

use crate::keyword_index::{self, KeywordIndex, Take, MEMORY_MIN};
use crate::search::{fetch_in_order, fts_expr, order_by, phrase, query_nums, query_one, Bind};
use crate::search_pool::SearchPool;
use crate::writer::{sql_err, Writer};

/// How long a search waits for the writer to apply a commit its snapshot already sees
/// (normally microseconds) before it answers from SQL alone.
const WAIT_FOR_WRITER: Duration = Duration::from_millis(500);
/// Snapshots tried before giving up on the index for one search (each retry means a write
/// landed between two statements, so this is rarely more than 1).
const ATTEMPTS: usize = 8;

/// A part of a filter answered as one set.
enum Leaf<'f> {
    /// An FTS5 expression.
    Text(String),
    /// A long phrase (`search::phrase`).
    Phrase(TextField, &'f [String]),
    Keyword(&'static str, &'f str),
    /// A date column range: min <= column < max.
    Range(&'static str, Option<i64>, Option<i64>),
}

fn leaf(filter: &Filter) -> Option<Leaf<'_>> {
    if let Some(expr) = fts_expr(filter) {
        return Some(Leaf::Text(expr));
    }
    match filter {
        Filter::Text { field, tokens, .. } if phrase::is_long(filter) => {
            Some(Leaf::Phrase(*field, tokens))
        }
        Filter::Keyword { field, value } => Some(Leaf::Keyword(field.name(), value)),
        Filter::Range { field, min, max } if min.is_some() || max.is_some() => {
            let column = match field {
                RangeField::Num => return None, // from the set of all numbers
                RangeField::Created => "created",
                RangeField::Modified => "modified",
                RangeField::Due => "due",
            };
            Some(Leaf::Range(column, *min, *max))
        }
        _ => None,
    }
}

/// The leaves of `filter` in the order [`combine`] consumes them.
fn plan<'f>(filter: &'f Filter, out: &mut Vec<Leaf<'f>>) {
    if let Some(l) = leaf(filter) {
        out.push(l);
        return;
    }
    match filter {
        Filter::And(items) | Filter::Or(items) => items.iter().for_each(|f| plan(f, out)),
        Filter::Not(inner) => plan(inner, out),
        _ => {}
    }
}

/// Evaluates `filter` from the leaves' sets (in plan order) and the set of all tickets.
fn combine(
    filter: &Filter,
    sets: &mut impl Iterator<Item = Arc<RoaringBitmap>>,
    all: &RoaringBitmap,
) -> RoaringBitmap {
    if leaf(filter).is_some() {
        return sets.next().map(Arc::unwrap_or_clone).unwrap_or_default();
    }
    match filter {
        Filter::None => RoaringBitmap::new(),
        Filter::Range {
            field: RangeField::Num,
            min,
            max,
        } => {
            // Numbers are 1..=u32::MAX here; clamp the bounds into that domain.
            let lo = min.unwrap_or(0).clamp(0, i64::from(u32::MAX) + 1) as u64;
            let hi = max.unwrap_or(i64::MAX).clamp(0, i64::from(u32::MAX) + 1) as u64;
            let mut out = all.clone();
            if lo > 0 {
                out.remove_range(..(lo.min(u64::from(u32::MAX)) as u32));
                if lo > u64::from(u32::MAX) {
                    out.clear();
                }
            }
            if hi <= u64::from(u32::MAX) {
                out.remove_range(hi as u32..);
            }
            out
        }
        // Everything: `*`, a range without bounds, a text term without tokens.
        Filter::All | Filter::Range { .. } | Filter::Text { .. } | Filter::Keyword { .. } => {
            all.clone()
        }
        Filter::And(items) => {
            let mut acc: Option<RoaringBitmap> = None;
            let mut excluded = Vec::new();
            for item in items {
                match item {
                    Filter::Not(inner) => excluded.push(combine(inner, sets, all)),
                    _ => {
                        let set = combine(item, sets, all);
                        acc = Some(match acc {
                            None => set,
                            Some(mut acc) => {
                                acc &= &set;
                                acc
                            }
                        });
                    }
                }
            }
            let mut acc = acc.unwrap_or_else(|| all.clone());
            for set in &excluded {
                acc -= set;
            }
            acc
        }
        Filter::Or(items) => {
            let mut acc = RoaringBitmap::new();
            for item in items {
                acc |= &combine(item, sets, all);
            }
            acc
        }
        Filter::Not(inner) => all - &combine(inner, sets, all),
    }
}

/// The tickets whose date `column` is in [min, max), from that column's index.
fn range_set(
    conn: &Connection,
    column: &str,
    min: Option<i64>,
    max: Option<i64>,
) -> Result<Option<RoaringBitmap>> {
    let mut sql = String::from("SELECT group_concat(num) FROM tickets WHERE 1");
    if min.is_some() {
        sql.push_str(&format!(" AND {column} >= ?"));
    }
    if max.is_some() {
        sql.push_str(&format!(" AND {column} < ?"));
    }
    let binds: Vec<Bind> = [min, max].into_iter().flatten().map(Bind::Int).collect();
    let text: Option<String> = query_one(conn, &sql, &binds)?;
    keyword_index::parse_set(text.as_deref())
}

/// Numbers read per statement from FTS5: a term in most tickets is read in slices, so a
/// search never holds more than a ~0.5 MB number list as text (sixteen concurrent
/// searches of a word in 90 % of a million tickets would otherwise hold ~7 MB each, twice).
const TEXT_SLICE: i64 = if cfg!(test) { 3 } else { 65_536 };

/// The tickets matching an FTS5 expression, read in rowid slices.
fn text_set(conn: &Connection, expr: &str) -> Result<Option<RoaringBitmap>> {
    let mut slice = conn
        .prepare_cached(
            "SELECT group_concat(rowid), count(*), max(rowid) FROM (SELECT rowid FROM ticket_text \
             WHERE ticket_text MATCH ?1 AND rowid > ?2 ORDER BY rowid LIMIT ?3)",
        )
        .map_err(sql_err)?;
    let mut set = RoaringBitmap::new();
    let mut after = 0i64;
    loop {
        let (nums, count, last): (Option<String>, i64, Option<i64>) = slice
            .query_row(params![expr, after, TEXT_SLICE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql_err)?;
        if !keyword_index::extend_set(&mut set, nums.as_deref())? {
            return Ok(None);
        }
        match last {
            Some(last) if count >= TEXT_SLICE => after = last,
            _ => return Ok(Some(set)),
        }
    }
}

/// Ticket numbers as a set; None when one does not fit (the index cannot be used).
fn nums_to_set(nums: &[i64]) -> Option<RoaringBitmap> {
    let mut set = RoaringBitmap::new();
    for n in nums {
        set.insert(u32::try_from(*n).ok()?);
    }
    Some(set)
}

/// What one attempt at a search on one snapshot gave.
enum Attempt {
    Page(RowPage),
    /// The snapshot is at an epoch the index has not applied yet.
    Behind(i64),
    /// The index moved past the snapshot meanwhile: take a new one.
    Ahead,
    /// The index cannot answer this search.
    Unusable,
}

/// The search, or None when the index cannot answer it (the caller then uses SQL alone).
pub async fn search(
    pool: &SearchPool,
    index: &Arc<KeywordIndex>,
    writer: &Writer,
    request: &SearchRequest,
    shape: RowShape,
    deadline: Instant,
) -> Result<Option<RowPage>> {
    let filter = match &request.categories {
        None => request.filter.clone(),
        Some(categories) => Filter::And(vec![
            request.filter.clone(),
            Filter::Or(
                categories
                    .iter()
                    .map(|c| Filter::Keyword {
                        field: KeywordField::Category,
                        value: normalize_keyword(c),
                    })
                    .collect(),
            ),
        ]),
    };
    let work = Arc::new((filter, request.clone()));
    for _ in 0..ATTEMPTS {
        let (job, job_index, job_writer) = (work.clone(), index.clone(), writer.clone());
        let attempt = pool
            .run(deadline, move |tx| {
                let (filter, request) = &*job;
                attempt(
                    tx,
                    &job_index,
                    &job_writer,
                    filter,
                    request,
                    shape,
                    deadline,
                )
            })
            .await?;
        match attempt {
            Attempt::Page(page) => return Ok(Some(page)),
            Attempt::Ahead => continue,
            Attempt::Behind(epoch) => {
                if index.wait_for(epoch, WAIT_FOR_WRITER).await {
                    continue;
                }
                // Not ours to apply: another process wrote. Let the writer rebuild.
                writer.refresh();
                return Ok(None);
            }
            Attempt::Unusable => return Ok(None),
        }
    }
    Ok(None)
}

/// The search on the snapshot of the read transaction `tx` (its first read, the epoch,
/// fixes it).
fn attempt(
    tx: &Connection,
    index: &KeywordIndex,
    writer: &Writer,
    filter: &Filter,
    request: &SearchRequest,
    shape: RowShape,
    deadline: Instant,
) -> Result<Attempt> {
    let mut leaves = Vec::new();
    plan(filter, &mut leaves);
    let keywords: Vec<(&str, &str)> = leaves
        .iter()
        .filter_map(|l| match l {
            Leaf::Keyword(field, value) => Some((*field, *value)),
            _ => None,
        })
        .collect();
    let epoch = keyword_index::epoch_of(tx)?;
    let (all, in_memory) = match index.take(epoch, &keywords) {
        Take::Ready { all, terms } => (all, terms),
        Take::Ahead => return Ok(Attempt::Ahead),
        Take::Behind => return Ok(Attempt::Behind(epoch)),
        Take::Unusable => return Ok(Attempt::Unusable),
    };
    let mut in_memory = in_memory.into_iter();
    let mut sets = Vec::with_capacity(leaves.len());
    for leaf in &leaves {
        let set = match leaf {
            Leaf::Keyword(field, value) => match in_memory.next().flatten() {
                Some(set) => Some(set),
                None => {
                    let set = term_set(tx, field, value)?;
                    if set.as_ref().is_some_and(|s| s.len() >= MEMORY_MIN) {
                        writer.promote(field, value);
                    }
                    set.map(Arc::new)
                }
            },
            Leaf::Text(expr) => text_set(tx, expr)?.map(Arc::new),
            Leaf::Phrase(field, tokens) => {
                let mut work = phrase::Work::default();
                let nums = phrase::matching(tx, *field, tokens, deadline, &mut work)?;
                nums_to_set(&nums).map(Arc::new)
            }
            Leaf::Range(column, min, max) => range_set(tx, column, *min, *max)?.map(Arc::new),
        };
        let Some(set) = set else {
            return Ok(Attempt::Unusable);
        };
        sets.push(set);
    }
    let result = combine(filter, &mut sets.into_iter(), &all);
    let nums = match request.sort_by {
        SortField::Id | SortField::Num => {
            page_by_num(&result, request.descending, request.offset, request.limit)
        }
        sort => page_sorted(tx, &result, all.len(), sort, request)?,
    };
    let rows = fetch_in_order(tx, &nums, shape)?;
    Ok(Attempt::Page(RowPage {
        rows,
        total: result.len(),
    }))
}

/// One rare term's set, read from `ticket_keywords`.
fn term_set(tx: &Connection, field: &str, value: &str) -> Result<Option<RoaringBitmap>> {
    let nums: Option<String> = query_one(
        tx,
        "SELECT group_concat(num) FROM ticket_keywords WHERE field = ? AND value = ?",
        &[Bind::Text(field.to_string()), Bind::Text(value.to_string())],
    )?;
    keyword_index::parse_set(nums.as_deref())
}

/// A page of `set` in number order.
pub fn page_by_num(set: &RoaringBitmap, descending: bool, offset: u64, limit: u64) -> Vec<i64> {
    let len = set.len();
    if offset >= len || limit == 0 {
        return Vec::new();
    }
    let take = limit.min(len - offset) as usize;
    let rank = if descending { len - 1 - offset } else { offset };
    let Some(start) = u32::try_from(rank).ok().and_then(|r| set.select(r)) else {
        return Vec::new();
    };
    if descending {
        set.range(..=start)
            .rev()
            .take(take)
            .map(i64::from)
            .collect()
    } else {
        set.range(start..).take(take).map(i64::from).collect()
    }
}

/// Most numbers handed to SQL to sort by another field; larger results walk that field's
/// index instead.
const SORT_IN_SQL_MAX: u64 = 50_000;
/// Results this small are always sorted in SQL (unit tests use the index walk whenever it is
/// expected to be cheaper, so both paths run on their small data).
const SORT_IN_SQL_MIN: u64 = if cfg!(test) { 0 } else { 4_000 };
/// Rows of the first slice of an index walk (tiny in unit tests, so walks take several).
const WALK_CHUNK_MIN: u64 = if cfg!(test) { 2 } else { 256 };

/// A page of `set` sorted by another field than the number (ties by number, as
/// `search::order_by` says).
fn page_sorted(
    conn: &Connection,
    set: &RoaringBitmap,
    all: u64,
    sort: SortField,
    request: &SearchRequest,
) -> Result<Vec<i64>> {
    let n = set.len();
    let (offset, limit) = (request.offset, request.limit);
    if offset >= n || limit == 0 {
        return Ok(Vec::new());
    }
    let order = order_by(sort, request.descending);
    let want = offset.saturating_add(limit);
    // Rows the index walk is expected to read before it has `want` matches, against the
    // rows the SQL sort must look up (each lookup costs about as much as a few index steps).
    let walk = want as f64 * all.max(1) as f64 / n as f64;
    if n <= SORT_IN_SQL_MAX && (n as f64) * 2.0 <= walk.max(SORT_IN_SQL_MIN as f64) {
        let mut list = String::with_capacity(n as usize * 8 + 2);
        list.push('[');
        for (i, num) in set.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&num.to_string());
        }
        list.push(']');
        let sql = format!(
            "SELECT t.num FROM tickets t WHERE t.num IN (SELECT value FROM json_each(?)) \
             ORDER BY {order} LIMIT ? OFFSET ?"
        );
        return query_nums(
            conn,
            &sql,
            &[
                Bind::Text(list),
                Bind::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                Bind::Int(i64::try_from(offset).unwrap_or(i64::MAX)),
            ],
        );
    }
    // Walk the sort field's index in order, in growing chunks, keeping the result's numbers.
    let sql = format!("SELECT t.num FROM tickets t ORDER BY {order} LIMIT ? OFFSET ?");
    let mut out = Vec::new();
    let mut matched = 0u64;
    let mut position = 0i64;
    let mut chunk = (walk * 1.25).clamp(WALK_CHUNK_MIN as f64, 1_000_000.0) as i64;
    loop {
        let rows = query_nums(conn, &sql, &[Bind::Int(chunk), Bind::Int(position)])?;
        for num in &rows {
            if u32::try_from(*num).is_ok_and(|n| set.contains(n)) {
                if matched >= offset {
                    out.push(*num);
                    if out.len() as u64 >= limit {
                        return Ok(out);
                    }
                }
                matched += 1;
            }
        }
        if (rows.len() as i64) < chunk {
            return Ok(out);
        }
        position += chunk;
        chunk = chunk.saturating_mul(4).min(1_000_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_by_number() {
        let set = RoaringBitmap::from_iter([2u32, 3, 5, 7, 11, 13]);
        assert_eq!(page_by_num(&set, true, 0, 2), vec![13, 11]);
        assert_eq!(page_by_num(&set, true, 4, 5), vec![3, 2]);
        assert_eq!(page_by_num(&set, false, 1, 2), vec![3, 5]);
        assert_eq!(page_by_num(&set, false, 5, 9), vec![13]);
        assert!(page_by_num(&set, false, 6, 9).is_empty());
        assert!(page_by_num(&set, true, 0, 0).is_empty());
    }

    #[test]
    fn number_ranges_clamp_into_the_set() {
        let all = RoaringBitmap::from_iter(1u32..=10);
        let range = |min, max| {
            combine(
                &Filter::Range {
                    field: RangeField::Num,
                    min,
                    max,
                },
                &mut std::iter::empty(),
                &all,
            )
            .iter()
            .collect::<Vec<_>>()
        };
        assert_eq!(range(Some(3), Some(6)), vec![3, 4, 5]);
        assert_eq!(range(Some(-5), Some(2)), vec![1]);
        assert_eq!(range(Some(9), None), vec![9, 10]);
        assert!(range(Some(i64::MAX), None).is_empty());
        assert!(range(None, Some(i64::MIN)).is_empty());
        assert_eq!(range(None, None).len(), 10);
    }
}
