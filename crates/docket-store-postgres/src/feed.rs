//! The change feed's rows (`docket_core::feed`) on PostgreSQL, where several nodes write.
//!
//! A sequence alone would not give readers a gap-free order: transaction A draws 10, B draws
//! 11 and commits first, a reader reads 11 and moves its cursor past 10, then A commits 10 —
//! and that reader never sees it. So the position is drawn under a transaction-scoped
//! advisory lock ([`FEED_LOCK`]), which the kernel takes as the LAST step of a ticket write
//! and PostgreSQL releases only after the commit is visible. Whoever draws the next position
//! waits until every earlier drawer committed or rolled back: positions are in commit
//! order, and a reader that sees P sees everything below it that will ever exist. The lock
//! is held only for one INSERT and the COMMIT (ticket writes of all nodes serialise there,
//! not over their whole transactions).

use docket_core::feed::{FeedEntry, FeedRead};
use docket_core::Result;
use sqlx::{PgConnection, PgPool};

use crate::db_err;

/// The advisory lock `(class, key)` serialising feed appends (classes 1 and 2 are the create
/// locks, 3 the outbox group claims).
const FEED_LOCK: (i32, i32) = (4, 0);
/// Rows one prune transaction removes at most.
const PRUNE_BATCH: i64 = 5000;

/// Appends one event inside the caller's transaction, holding the feed lock to its end.
pub async fn append(c: &mut PgConnection, entry: &FeedEntry, at: i64) -> Result<i64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(FEED_LOCK.0)
        .bind(FEED_LOCK.1)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    let (position,): (i64,) = sqlx::query_as(
        "INSERT INTO ticket_feed (position, at, category, data) \
         VALUES (nextval('ticket_feed_position'), $1, $2, $3) RETURNING position",
    )
    .bind(at)
    .bind(entry.category.replace('\0', ""))
    .bind(entry.to_json()?)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(position)
}

/// Events above `after`, then the horizon and the newest position in a later statement (a
/// fresh snapshot under READ COMMITTED), so a prune that removed any of them shows.
pub async fn read(db: &PgPool, after: i64, limit: u32) -> Result<FeedRead> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT position, category, data FROM ticket_feed WHERE position > $1 \
         ORDER BY position LIMIT $2",
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
pub async fn prune_batch(c: &mut PgConnection, before: i64) -> Result<u64> {
    let (highest,): (Option<i64>,) = sqlx::query_as(
        "SELECT max(position) FROM (SELECT position FROM ticket_feed WHERE at < $1 \
         ORDER BY position LIMIT $2) batch",
    )
    .bind(before)
    .bind(PRUNE_BATCH)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    let Some(highest) = highest else {
        return Ok(0);
    };
    let removed = sqlx::query("DELETE FROM ticket_feed WHERE position <= $1")
        .bind(highest)
        .execute(&mut *c)
        .await
        .map_err(db_err)?
        .rows_affected();
    sqlx::query(
        "UPDATE ticket_feed_horizon SET pruned_through = GREATEST(pruned_through, $1) WHERE id = 1",
    )
    .bind(highest)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(removed)
}
