//! The change feed's rows (`docket_core::feed`): appended by the kernel on the writer's
//! connection inside the write's transaction, read from the read pool, pruned by age.
//! One writer, so positions (AUTOINCREMENT) are handed out in commit order.

use docket_core::feed::{FeedEntry, FeedRead};
use docket_core::Result;
use rusqlite::{params, Connection, OptionalExtension};
use sqlx::SqlitePool;

use crate::db_err;
use crate::writer::{execute, sql_err};

/// Rows one prune transaction removes at most (the writer is held for one batch).
const PRUNE_BATCH: i64 = 5000;

/// Appends one event inside the caller's transaction (its position: the next rowid).
pub fn append(c: &Connection, entry: &FeedEntry, at: i64) -> Result<()> {
    execute(
        c,
        "INSERT INTO ticket_feed (at, category, data) VALUES (?1, ?2, ?3)",
        params![at, entry.category, entry.to_json()?],
    )?;
    Ok(())
}

/// Events above `after`, then the horizon and the newest position — read after the rows, so
/// a prune that removed any of them shows (see `FeedRead::pruned_through`).
pub async fn read(db: &SqlitePool, after: i64, limit: u32) -> Result<FeedRead> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT position, category, data FROM ticket_feed WHERE position > ? \
         ORDER BY position LIMIT ?",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    let (pruned_through, newest): (i64, i64) = sqlx::query_as(
        "SELECT pruned_through, (SELECT coalesce(max(position), 0) FROM ticket_feed) \
         FROM ticket_feed_horizon WHERE id = 1",
    )
    .fetch_one(db)
    .await
    .map_err(db_err)?;
    FeedRead::from_rows(rows, pruned_through, newest)
}

/// Removes one batch of events: every position up to the highest of the oldest
/// `PRUNE_BATCH` stamped before `before` (an event stamped a little later but positioned
/// below goes with them — clocks of nodes differ — so no event at or below the horizon is
/// ever left), and raises the horizon to it, in one transaction. How many were removed.
pub fn prune_batch(c: &Connection, before: i64) -> Result<u64> {
    let highest: Option<i64> = c
        .prepare_cached(
            "SELECT max(position) FROM (SELECT position FROM ticket_feed WHERE at < ?1 \
             ORDER BY position LIMIT ?2)",
        )
        .and_then(|mut s| s.query_row(params![before, PRUNE_BATCH], |r| r.get(0)))
        .optional()
        .map_err(sql_err)?
        .flatten();
    let Some(highest) = highest else {
        return Ok(0);
    };
    let removed = execute(
        c,
        "DELETE FROM ticket_feed WHERE position <= ?1",
        params![highest],
    )?;
    execute(
        c,
        "UPDATE ticket_feed_horizon SET pruned_through = max(pruned_through, ?1) WHERE id = 1",
        params![highest],
    )?;
    Ok(removed as u64)
}
