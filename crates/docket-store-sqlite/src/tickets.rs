//! Ticket rows and their index entries, always written together in one transaction.
//!
//! The write side runs on the writer thread's synchronous connection (`writer.rs`): every
//! statement is prepared once and cached, so a write of a dozen statements costs their SQLite
//! work and nothing else. `by_ids` and `count` read through the async pool.

use std::collections::{BTreeSet, HashSet};

use docket_core::model::Ticket;
use docket_core::search_doc::{list_sort_key, ticket_doc};
use docket_core::{Error, Result};
use docket_query::TextField;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use sqlx::SqlitePool;

use crate::compact_rows;
use crate::db_err;
use crate::text_queue::{self, TextRow};
use crate::writer::{execute, sql_err};

pub(crate) fn parse(data: &str) -> Result<Ticket> {
    serde_json::from_str(data).map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))
}

fn encode(t: &Ticket) -> Result<String> {
    serde_json::to_string(t).map_err(Error::internal)
}

/// Draws the next ticket number (the counter never goes back).
pub fn next_num(c: &Connection) -> Result<i64> {
    bump_counter(c, 1)
}

/// Moves the ticket number counter on by `by` and returns its new value.
fn bump_counter(c: &Connection, by: i64) -> Result<i64> {
    c.prepare_cached(
        "UPDATE counters SET value = value + ?1 WHERE name = 'ticket_num' RETURNING value",
    )
    .and_then(|mut s| s.query_row([by], |r| r.get(0)))
    .map_err(sql_err)
}

pub fn exists(c: &Connection, id: &str) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM tickets WHERE id = ?1")
        .and_then(|mut s| s.exists([id]))
        .map_err(sql_err)
}

/// Inserts a ticket row (not its index); `false` when its id is taken.
fn insert_ticket_row(c: &Connection, t: &Ticket) -> Result<bool> {
    let data = encode(t)?;
    let done = execute(
        c,
        &format!(
            "INSERT INTO tickets (num, id, created, modified, due, subject, status, type, \
               category, assignee_key, tag_key, data, priority_rank) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, {}) \
             ON CONFLICT (id) DO NOTHING",
            priority_rank(13)
        ),
        params![
            t.num,
            t.id,
            t.created,
            t.modified,
            t.due,
            t.subject,
            t.status,
            t.kind,
            t.category,
            list_sort_key(&t.assignees),
            list_sort_key(&t.tags),
            data,
            t.priority,
        ],
    )?;
    if done == 1 {
        compact_rows::write(c, t.num, &data)?;
    }
    Ok(done == 1)
}

/// The priority rank of the bound priority, from the configured levels (priority.rs).
fn priority_rank(param: usize) -> String {
    format!("coalesce((SELECT rank FROM priority_levels WHERE id = ?{param}), -1)")
}

/// Inserts a numbered ticket and its index; `false` when its id is taken.
pub fn insert_row(c: &Connection, ticket: &Ticket) -> Result<bool> {
    if !insert_ticket_row(c, ticket)? {
        return Ok(false);
    }
    write_index(c, ticket)?;
    Ok(true)
}

pub async fn by_ids(db: &SqlitePool, ids: &[String]) -> Result<Vec<Option<Ticket>>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut conn = db.acquire().await.map_err(db_err)?;
    for id in ids {
        let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        out.push(row.map(|(d,)| parse(&d)).transpose()?);
    }
    Ok(out)
}

pub fn load_for_write(c: &Connection, id: &str) -> Result<Option<Ticket>> {
    let data: Option<String> = c
        .prepare_cached("SELECT data FROM tickets WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    data.map(|d| parse(&d)).transpose()
}

/// Rewrites a stored ticket's row and index (its number and id unchanged; `created` is
/// not rewritten).
pub fn rewrite_row(c: &Connection, t: &Ticket) -> Result<()> {
    let data = encode(t)?;
    execute(
        c,
        &format!(
            "UPDATE tickets SET modified = ?1, due = ?2, subject = ?3, status = ?4, type = ?5, \
               category = ?6, assignee_key = ?7, tag_key = ?8, data = ?9, \
               priority_rank = {} \
             WHERE num = ?10",
            priority_rank(11)
        ),
        params![
            t.modified,
            t.due,
            t.subject,
            t.status,
            t.kind,
            t.category,
            list_sort_key(&t.assignees),
            list_sort_key(&t.tags),
            data,
            t.num,
            t.priority,
        ],
    )?;
    compact_rows::write(c, t.num, &data)?;
    rewrite_index(c, t)
}

/// Brings a stored ticket's index up to date: only the keyword rows that changed are
/// deleted or inserted (an edit usually changes one or two of a ticket's dozen or more, and
/// each row written is also a change the in-memory keyword index must apply); the text row
/// is queued to be replaced.
fn rewrite_index(c: &Connection, ticket: &Ticket) -> Result<()> {
    let doc = ticket_doc(ticket);
    let stored: HashSet<(String, String)> = c
        .prepare_cached("SELECT field, value FROM ticket_keywords WHERE num = ?1")
        .and_then(|mut s| {
            s.query_map([ticket.num], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(sql_err)?;
    let wanted: HashSet<(String, String)> = doc
        .keywords
        .iter()
        .flat_map(|(field, values)| {
            values
                .iter()
                .map(move |v| (field.name().to_string(), v.clone()))
        })
        .collect();
    for (field, value) in stored.difference(&wanted) {
        execute(
            c,
            "DELETE FROM ticket_keywords WHERE field = ?1 AND value = ?2 AND num = ?3",
            params![field, value, ticket.num],
        )?;
    }
    for (field, value) in wanted.difference(&stored) {
        insert_keyword(c, ticket.num, field, value)?;
    }
    insert_text(c, ticket.num, &doc, true)
}

/// Removes a ticket's row and index.
pub fn remove_row(c: &Connection, num: i64) -> Result<()> {
    clear_index(c, num)?;
    execute(c, "DELETE FROM tickets WHERE num = ?1", [num])?;
    compact_rows::remove(c, num)
}

/// The newest ticket with this dedupe key that is not closed-like (and, for a caller
/// limited to categories, in one of them).
pub fn open_with_dedupe_key(
    c: &Connection,
    key: &str,
    closed: &[String],
    categories: Option<&BTreeSet<String>>,
) -> Result<Option<String>> {
    let mut sql = String::from("SELECT id FROM tickets WHERE dedupe_key = ?");
    if !closed.is_empty() {
        sql.push_str(" AND status NOT IN (");
        sql.push_str(&vec!["?"; closed.len()].join(", "));
        sql.push(')');
    }
    if let Some(cats) = categories {
        if cats.is_empty() {
            return Ok(None);
        }
        sql.push_str(" AND category IN (");
        sql.push_str(&vec!["?"; cats.len()].join(", "));
        sql.push(')');
    }
    sql.push_str(" ORDER BY num DESC LIMIT 1");
    let values = std::iter::once(key)
        .chain(closed.iter().map(String::as_str))
        .chain(categories.into_iter().flatten().map(String::as_str));
    c.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(values), |r| r.get(0))
                .optional()
        })
        .map_err(sql_err)
}

pub async fn count(db: &SqlitePool) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tickets")
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// Stored tickets of a number range, in number order.
fn data_after(c: &Connection, after: i64, limit: u32) -> Result<Vec<String>> {
    c.prepare_cached("SELECT data FROM tickets WHERE num > ?1 ORDER BY num LIMIT ?2")
        .and_then(|mut s| {
            s.query_map(params![after, i64::from(limit)], |r| r.get(0))?
                .collect()
        })
        .map_err(sql_err)
}

pub fn reindex_batch(c: &Connection, after: i64, limit: u32) -> Result<Option<(i64, u64)>> {
    let rows = data_after(c, after, limit)?;
    let mut last = None;
    let count = rows.len() as u64;
    for data in rows {
        let ticket = parse(&data)?;
        clear_index(c, ticket.num)?;
        write_index(c, &ticket)?;
        write_sort_keys(c, &ticket)?;
        last = Some(ticket.num);
    }
    Ok(last.map(|num| (num, count)))
}

/// Rewrites the sort keys of a stored ticket from its record.
fn write_sort_keys(c: &Connection, ticket: &Ticket) -> Result<()> {
    execute(
        c,
        &format!(
            "UPDATE tickets SET assignee_key = ?1, tag_key = ?2, priority_rank = {} \
             WHERE num = ?3",
            priority_rank(4)
        ),
        params![
            list_sort_key(&ticket.assignees),
            list_sort_key(&ticket.tags),
            ticket.num,
            ticket.priority
        ],
    )?;
    Ok(())
}

/// Tickets given their sort keys per transaction by [`backfill_sort_keys`].
const BACKFILL_BATCH: i64 = 500;

/// Fills the list sort keys of rows that have none (NULL: written before migration 0006),
/// in batches of one transaction each, before the store serves. Rows are found through the
/// keys' own indexes (NULL sorts first), so an up-to-date database costs two index probes.
/// Returns how many tickets were updated.
pub fn backfill_sort_keys(c: &Connection) -> Result<u64> {
    let mut done = 0u64;
    for column in ["assignee_key", "tag_key"] {
        let select = format!(
            "SELECT data FROM tickets WHERE {column} IS NULL ORDER BY {column}, num LIMIT ?1"
        );
        loop {
            c.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
            let batch = (|| -> Result<usize> {
                let rows: Vec<String> = c
                    .prepare(&select)
                    .and_then(|mut s| s.query_map([BACKFILL_BATCH], |r| r.get(0))?.collect())
                    .map_err(sql_err)?;
                for data in &rows {
                    write_sort_keys(c, &parse(data)?)?;
                }
                Ok(rows.len())
            })();
            let n = match batch {
                Ok(n) => {
                    c.execute_batch("COMMIT").map_err(sql_err)?;
                    n
                }
                Err(e) => {
                    let _ = c.execute_batch("ROLLBACK");
                    return Err(e);
                }
            };
            done += n as u64;
            if (n as i64) < BACKFILL_BATCH {
                break;
            }
        }
    }
    Ok(done)
}

fn clear_index(c: &Connection, num: i64) -> Result<()> {
    execute(c, "DELETE FROM ticket_keywords WHERE num = ?1", [num])?;
    text_queue::queue_removal(c, num)
}

/// Writes the keyword rows and queues the full-text row of a ticket whose index is empty
/// (a new number, or one just cleared).
pub fn write_index(c: &Connection, ticket: &Ticket) -> Result<()> {
    let doc = ticket_doc(ticket);
    insert_keywords(c, ticket.num, &doc)?;
    insert_text(c, ticket.num, &doc, false)
}

/// Inserts every keyword row of a ticket's search document.
fn insert_keywords(c: &Connection, num: i64, doc: &docket_query::Doc) -> Result<()> {
    for (field, values) in &doc.keywords {
        for value in values {
            insert_keyword(c, num, field.name(), value)?;
        }
    }
    Ok(())
}

fn insert_keyword(c: &Connection, num: i64, field: &str, value: &str) -> Result<()> {
    execute(
        c,
        "INSERT OR IGNORE INTO ticket_keywords (field, value, num) VALUES (?1, ?2, ?3)",
        params![field, value, num],
    )?;
    Ok(())
}

/// Queues the full-text row of one ticket (`text_queue`: written at the batch's end);
/// `replaces` when a stored row of its number may exist.
fn insert_text(c: &Connection, num: i64, doc: &docket_query::Doc, replaces: bool) -> Result<()> {
    let text = |f: TextField| doc.text.get(&f).map(|t| t.join(" ")).unwrap_or_default();
    let row = TextRow {
        subject: text(TextField::Subject),
        body: text(TextField::Body),
        changes: text(TextField::Changes),
    };
    text_queue::queue(c, num, row, replaces)
}

/// Inserts many tickets in the caller's transaction. Tickets whose id exists (or repeats
/// within `tickets`) are skipped; the others get consecutive numbers in order. Returns how
/// many were inserted.
pub fn insert_many(c: &Connection, tickets: Vec<Ticket>) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut fresh = Vec::with_capacity(tickets.len());
    for t in tickets {
        if seen.insert(t.id.clone()) && !exists(c, &t.id)? {
            fresh.push(t);
        }
    }
    if fresh.is_empty() {
        return Ok(0);
    }
    let count = fresh.len() as i64;
    let last = bump_counter(c, count)?;
    for (i, t) in fresh.iter_mut().enumerate() {
        t.num = last - count + 1 + i as i64;
    }
    insert_rows(c, &fresh)?;
    Ok(count as u64)
}

/// Inserts whole records with the numbers they carry (an xyOps backup): records whose id
/// or number exists already are skipped; the number counter moves past the highest number,
/// so tickets created afterwards continue from there. Returns how many were inserted.
pub fn insert_numbered(c: &Connection, tickets: Vec<Ticket>) -> Result<u64> {
    let mut seen_ids = HashSet::new();
    let mut seen_nums = HashSet::new();
    let mut fresh = Vec::with_capacity(tickets.len());
    for t in tickets {
        if t.num > 0
            && seen_ids.insert(t.id.clone())
            && seen_nums.insert(t.num)
            && !exists(c, &t.id)?
            && !number_taken(c, t.num)?
        {
            fresh.push(t);
        }
    }
    if fresh.is_empty() {
        return Ok(0);
    }
    let highest = fresh.iter().map(|t| t.num).max().unwrap_or(0);
    execute(
        c,
        "UPDATE counters SET value = max(value, ?1) WHERE name = 'ticket_num'",
        [highest],
    )?;
    insert_rows(c, &fresh)?;
    Ok(fresh.len() as u64)
}

fn number_taken(c: &Connection, num: i64) -> Result<bool> {
    c.prepare_cached("SELECT 1 FROM tickets WHERE num = ?1")
        .and_then(|mut s| s.exists([num]))
        .map_err(sql_err)
}

/// Writes numbered records (whose ids and numbers are free), then all their keyword rows,
/// then all their full-text rows: each table's pages are touched in one run.
fn insert_rows(c: &Connection, fresh: &[Ticket]) -> Result<()> {
    for t in fresh {
        if !insert_ticket_row(c, t)? {
            return Err(Error::Internal(format!(
                "ticket {} was inserted twice",
                t.id
            )));
        }
    }
    let docs: Vec<(i64, docket_query::Doc)> =
        fresh.iter().map(|t| (t.num, ticket_doc(t))).collect();
    for (num, doc) in &docs {
        insert_keywords(c, *num, doc)?;
    }
    for (num, doc) in &docs {
        insert_text(c, *num, doc, false)?;
    }
    Ok(())
}
