//! The full-text rows of a write batch, handed to FTS5 once, just before the batch commits.
//!
//! Every write of a group transaction runs in its own SAVEPOINT (`writer.rs`), and FTS5
//! flushes the terms it buffers in memory to a new on-disk segment at every savepoint and
//! release. With each write putting its text into `ticket_text` itself, a batch of 64
//! ticket updates made 64 tiny segments, which FTS5 then merged again: flushing and merging
//! were a third of the writer thread's time in a bulk update (BENCHMARKS.md, "Issue 17:
//! bulk update"). So a write only queues its text rows in a TEMP table — undone with the
//! write's savepoint like any other row it wrote — and the writer applies the queue after
//! the batch's last write, outside any savepoint ([`apply`]): FTS5 buffers the whole batch
//! and writes one segment at the COMMIT.
//!
//! Nothing on the writer connection reads `ticket_text` between a write and its batch's
//! COMMIT (searches run on the read connections, which see committed data only).

use rusqlite::{params, Connection};

use docket_core::Result;

use crate::writer::{execute, sql_err};

/// Creates the queue on the write connection (TEMP objects live only on it).
pub fn install(conn: &Connection) -> Result<()> {
    // `subject` NULL: the ticket's text is to be removed. `replaces`: a stored row of this
    // number may exist and must be deleted first (false only for a ticket just numbered).
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS pending_text (
             num INTEGER PRIMARY KEY,
             subject TEXT, body TEXT, changes TEXT,
             replaces INTEGER NOT NULL)",
    )
    .map_err(sql_err)
}

/// The text columns of one ticket.
pub struct TextRow {
    pub subject: String,
    pub body: String,
    pub changes: String,
}

/// Queues the text of ticket `num`; `replaces` as in [`install`]. A later queueing of the
/// same number in the batch wins, and keeps an earlier one's need to delete.
pub fn queue(c: &Connection, num: i64, row: TextRow, replaces: bool) -> Result<()> {
    execute(
        c,
        "INSERT INTO temp.pending_text (num, subject, body, changes, replaces) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (num) DO UPDATE SET subject = excluded.subject, body = excluded.body, \
           changes = excluded.changes, replaces = replaces OR excluded.replaces",
        params![num, row.subject, row.body, row.changes, replaces],
    )
    .map(drop)
}

/// Queues the removal of ticket `num`'s text.
pub fn queue_removal(c: &Connection, num: i64) -> Result<()> {
    execute(
        c,
        "INSERT INTO temp.pending_text (num, subject, body, changes, replaces) \
         VALUES (?1, NULL, NULL, NULL, 1) \
         ON CONFLICT (num) DO UPDATE SET subject = NULL, body = NULL, changes = NULL, \
           replaces = 1",
        [num],
    )
    .map(drop)
}

type Pending = (i64, Option<String>, Option<String>, Option<String>, bool);

/// Writes the queued rows to `ticket_text` and empties the queue, in the current
/// transaction (outside any savepoint).
pub fn apply(c: &Connection) -> Result<()> {
    let mut rows: Vec<Pending> = c
        .prepare_cached(
            "DELETE FROM temp.pending_text RETURNING num, subject, body, changes, replaces",
        )
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(sql_err)?;
    // In number order: the FTS5 buffer then holds each term's new rowids ascending.
    rows.sort_unstable_by_key(|r| r.0);
    for (num, subject, body, changes, replaces) in rows {
        if replaces {
            execute(c, "DELETE FROM main.ticket_text WHERE rowid = ?1", [num])?;
        }
        if let Some(subject) = subject {
            execute(
                c,
                "INSERT INTO main.ticket_text (rowid, subject, body, changes) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![num, subject, body, changes],
            )?;
        }
    }
    Ok(())
}
