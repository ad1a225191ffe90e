//! Evaluates a search filter to the sorted numbers of the matching tickets.
//!
//! SQLite answers an AND of several large terms by probing a b-tree per candidate row, which
//! at a million tickets costs seconds. Here each term is one index scan whose numbers SQLite
//! joins into a single text (`group_concat`, so a list of 300k numbers is one row, not 300k),
//! and the AND / OR / NOT algebra runs on sorted vectors in Rust: linear merges.

use docket_core::{Error, Result};
use docket_query::Filter;
use rusqlite::Connection;

use crate::search::{fts_expr, phrase, query_one, render_filter, Bind};

/// Ticket numbers, ascending, without duplicates.
pub type Nums = Vec<i64>;

/// All numbers matching `filter`, ascending.
pub fn matching(conn: &Connection, filter: &Filter, deadline: std::time::Instant) -> Result<Nums> {
    let mut all = None;
    eval(conn, filter, &mut all, deadline)
}

/// Numbers of the tickets in any of `categories`.
pub fn in_categories(conn: &Connection, categories: &[String]) -> Result<Nums> {
    let mut out = Vec::new();
    for c in categories {
        let list = scan(
            conn,
            "SELECT group_concat(num) FROM ticket_keywords WHERE field = 'category' AND value = ?",
            &[Bind::Text(docket_query::normalize_keyword(c))],
        )?;
        out = union(&out, &list);
    }
    Ok(out)
}

fn eval(
    conn: &Connection,
    filter: &Filter,
    all: &mut Option<Nums>,
    deadline: std::time::Instant,
) -> Result<Nums> {
    {
        if let Filter::Text { field, tokens, .. } = filter {
            if phrase::is_long(filter) {
                let mut work = phrase::Work::default();
                return phrase::matching(conn, *field, tokens, deadline, &mut work);
            }
        }
        if let Some(expr) = fts_expr(filter) {
            return scan(
                conn,
                "SELECT group_concat(rowid) FROM ticket_text WHERE ticket_text MATCH ?",
                &[Bind::Text(expr)],
            );
        }
        match filter {
            Filter::All => everything(conn, all),
            Filter::None => Ok(Vec::new()),
            Filter::Keyword { field, value } => scan(
                conn,
                "SELECT group_concat(num) FROM ticket_keywords WHERE field = ? AND value = ?",
                &[
                    Bind::Text(field.name().to_string()),
                    Bind::Text(value.clone()),
                ],
            ),
            Filter::Range { .. } | Filter::Text { .. } => {
                let mut cond = String::new();
                let mut binds = Vec::new();
                render_filter(filter, &mut cond, &mut binds);
                let sql = format!("SELECT group_concat(t.num) FROM tickets t WHERE {cond}");
                scan(conn, &sql, &binds)
            }
            Filter::And(items) => {
                let (negative, positive): (Vec<&Filter>, Vec<&Filter>) =
                    items.iter().partition(|f| matches!(f, Filter::Not(_)));
                let mut acc = match positive.split_first() {
                    Some((first, _)) => eval(conn, first, all, deadline)?,
                    None => everything(conn, all)?,
                };
                for f in positive.iter().skip(1) {
                    if acc.is_empty() {
                        return Ok(acc);
                    }
                    acc = intersect(&acc, &eval(conn, f, all, deadline)?);
                }
                for f in negative {
                    if let Filter::Not(inner) = f {
                        acc = difference(&acc, &eval(conn, inner, all, deadline)?);
                    }
                }
                Ok(acc)
            }
            Filter::Or(items) => {
                let mut acc = Vec::new();
                for f in items {
                    acc = union(&acc, &eval(conn, f, all, deadline)?);
                }
                Ok(acc)
            }
            Filter::Not(inner) => {
                let excluded = eval(conn, inner, all, deadline)?;
                Ok(difference(&everything(conn, all)?, &excluded))
            }
        }
    }
}

/// Every ticket number (read once per search, only when a negation needs it).
fn everything(conn: &Connection, all: &mut Option<Nums>) -> Result<Nums> {
    if let Some(list) = all {
        return Ok(list.clone());
    }
    let list = scan(conn, "SELECT group_concat(num) FROM tickets", &[])?;
    *all = Some(list.clone());
    Ok(list)
}

/// Runs a `SELECT group_concat(…)` and parses the numbers, sorted and unique.
fn scan(conn: &Connection, sql: &str, binds: &[Bind]) -> Result<Nums> {
    let text: Option<String> = query_one(conn, sql, binds)?;
    let mut nums = text
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<i64>()
                .map_err(|e| Error::Internal(format!("bad ticket number {p:?}: {e}")))
        })
        .collect::<Result<Nums>>()?;
    nums.sort_unstable();
    nums.dedup();
    Ok(nums)
}

pub fn intersect(a: &[i64], b: &[i64]) -> Nums {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

pub fn union(a: &[i64], b: &[i64]) -> Nums {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len() + b.len()));
    while i < a.len() || j < b.len() {
        if j == b.len() || (i < a.len() && a[i] < b[j]) {
            out.push(a[i]);
            i += 1;
        } else if i == a.len() || b[j] < a[i] {
            out.push(b[j]);
            j += 1;
        } else {
            out.push(a[i]);
            i += 1;
            j += 1;
        }
    }
    out
}

pub fn difference(a: &[i64], b: &[i64]) -> Nums {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len()));
    while i < a.len() {
        if j == b.len() || a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else if b[j] < a[i] {
            j += 1;
        } else {
            i += 1;
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_algebra() {
        let (a, b) = (vec![1, 3, 5, 7, 9], vec![2, 3, 4, 9, 10]);
        assert_eq!(intersect(&a, &b), vec![3, 9]);
        assert_eq!(union(&a, &b), vec![1, 2, 3, 4, 5, 7, 9, 10]);
        assert_eq!(difference(&a, &b), vec![1, 5, 7]);
        assert_eq!(difference(&b, &a), vec![2, 4, 10]);
        assert_eq!(union(&[], &b), b);
        assert!(intersect(&a, &[]).is_empty());
        assert_eq!(difference(&a, &[]), a);
    }
}
