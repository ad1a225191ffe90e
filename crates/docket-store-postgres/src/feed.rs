//! The change feed's rows (`docket_core::feed`) on PostgreSQL, where several nodes write.
//!
//! A ticket write inserts its feed row as its last statement WITHOUT a position
//! ([`append`]; a create, in its ticket `INSERT`: `tickets::insert_row_with_event`); the row's `seq` (an identity) records insertion order. Positions are given
//! later by a sequencing step ([`sequence_batch`]) in its own short transaction: under the
//! transaction-scoped advisory lock [`FEED_LOCK`] (only sequencers take it), it numbers the
//! committed unpositioned rows, lowest `seq` first, with the next values of the sequence
//! `ticket_feed_position`, and commits. Every read runs the step first (`PgStore::feed_after`),
//! so a reader sees every write committed before its call. Ticket writes no longer queue for
//! one lock through their commits (they did until migration 0011).
//!
//! Why a reader never skips an event (it resumes "after P" and must find everything it has
//! not seen above P):
//! - a step sees only committed rows, so a position, once visible, belongs to a committed
//!   event, and an uncommitted write has no position yet that a reader could move past;
//! - steps run one at a time under the lock, and each sees the previous one's commit (under
//!   READ COMMITTED every statement takes a fresh snapshot, and the step's first statement
//!   runs after the lock is granted, which is after the previous holder's commit is
//!   visible); the block it draws from the sequence lies above every earlier draw, so every
//!   position it assigns is above every position assigned before;
//! - a step commits atomically: a reader's snapshot holds all of it or none of it, and all
//!   earlier steps. So the positions a reader sees are always a prefix of the final order
//!   (less what was pruned, which the horizon reports).
//!
//! Why events of one ticket stay in order: a second write to a ticket locks the ticket row
//! (`FOR UPDATE`; a delete after a create waits the same way) and so inserts its feed row
//! only after the first write committed; its `seq` is larger (identity, CACHE 1), and a
//! step that sees it also sees the first one, which it numbers first, if an earlier step has
//! not already. Events of different tickets are in the order the steps found them committed.
//!
//! A node of the previous version draws positions from the same sequence under the same
//! lock as it inserts, so mixed versions during an upgrade stay consistent. Rolled-back
//! writes and steps leave gaps, which is fine; positions are never reused.

use docket_core::feed::{FeedEntry, FeedRead};
use docket_core::Result;
use sqlx::{PgConnection, PgPool};

use crate::db_err;

/// The advisory lock `(class, key)` serialising the sequencing steps (classes 1 and 2 are
/// the create locks, 3 the outbox group claims).
const FEED_LOCK: (i32, i32) = (4, 0);
/// Rows one sequencing step positions at most (the step holds the lock for one batch).
pub const SEQUENCE_BATCH: u64 = 10_000;
/// Rows one prune transaction removes at most.
const PRUNE_BATCH: i64 = 5000;

/// Appends one event, without a position, inside the caller's transaction.
pub async fn append(c: &mut PgConnection, entry: &FeedEntry, at: i64) -> Result<()> {
    sqlx::query("INSERT INTO ticket_feed (at, category, data) VALUES ($1, $2, $3)")
        .bind(at)
        .bind(entry.category.replace('\0', ""))
        .bind(entry.to_json()?)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Whether some committed feed row still waits for its position (an index-only look at the
/// partial index `ticket_feed_unpositioned`): the cheap check before a sequencing step.
pub async fn has_unpositioned(db: &PgPool) -> Result<bool> {
    let (pending,): (bool,) =
        sqlx::query_as("SELECT EXISTS (SELECT 1 FROM ticket_feed WHERE position IS NULL)")
            .fetch_one(db)
            .await
            .map_err(db_err)?;
    Ok(pending)
}

/// One sequencing step, inside the caller's (fresh) transaction: takes the feed lock, then
/// positions up to [`SEQUENCE_BATCH`] committed unpositioned rows, lowest `seq` first, with
/// a block drawn from the position sequence. How many it positioned (fewer than the batch:
/// every row committed before the step began now has a position once it commits).
pub async fn sequence_batch(c: &mut PgConnection) -> Result<u64> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(FEED_LOCK.0)
        .bind(FEED_LOCK.1)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    // A fresh snapshot, taken after the lock: the previous step's positions are visible.
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM ticket_feed WHERE position IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(SEQUENCE_BATCH as i64)
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?;
    let count = seqs.len() as i64;
    if count == 0 {
        return Ok(0);
    }
    // A block of `count` positions, drawn in one statement so it is contiguous (only
    // holders of the feed lock draw from this sequence).
    let (last,): (i64,) = sqlx::query_as(
        "SELECT setval('ticket_feed_position', nextval('ticket_feed_position') + $1 - 1)",
    )
    .bind(count)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    let first = last - count + 1;
    // The i-th lowest seq gets first + i - 1: the numbering follows insertion order.
    let positioned = sqlx::query(
        "UPDATE ticket_feed f SET position = $2 + b.ord - 1 \
         FROM unnest($1::bigint[]) WITH ORDINALITY AS b(seq, ord) \
         WHERE f.seq = b.seq AND f.position IS NULL",
    )
    .bind(&seqs)
    .bind(first)
    .execute(&mut *c)
    .await
    .map_err(db_err)?
    .rows_affected();
    Ok(positioned)
}

/// Positioned events above `after` (sequence first: `PgStore::feed_after`), then the horizon
/// and the newest position in a later statement (a fresh snapshot under READ COMMITTED), so
/// a prune that removed any of them shows.
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

/// Removes one batch of positioned events (a row waiting for its position stays until a
/// sequencing step numbers it): every position up to the highest of the oldest
/// `PRUNE_BATCH` stamped before `before` (an event stamped a little later but positioned
/// below goes with them — clocks of nodes differ — so no event at or below the horizon is
/// ever left), and raises the horizon to it, in one transaction. How many were removed.
pub async fn prune_batch(c: &mut PgConnection, before: i64) -> Result<u64> {
    let (highest,): (Option<i64>,) = sqlx::query_as(
        "SELECT max(position) FROM (SELECT position FROM ticket_feed \
         WHERE at < $1 AND position IS NOT NULL ORDER BY position LIMIT $2) batch",
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
