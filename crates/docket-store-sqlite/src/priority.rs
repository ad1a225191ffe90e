//! Priority ranks: the configured levels in the `priority_levels` table, and each ticket's
//! rank (`tickets.priority_rank`, the `sort_by=priority` column) kept in step with them.
//!
//! Writes compute a ticket's rank from the table in the statement that writes the row
//! (tickets.rs), so only opening the store needs the configuration: [`sync`] rewrites the
//! table when the configured levels changed and then recomputes every rank, and gives
//! tickets stored before priorities existed (rank NULL) the configured default.

use docket_core::rules::PriorityLevels;
use docket_core::Result;
use sqlx::SqliteConnection;

use crate::db_err;

/// Sets the rank of every ticket whose rank is NULL (just imported, or from before
/// priorities), from its record's priority ('' when it has none: the default's rank).
pub async fn fill_ranks(c: &mut SqliteConnection) -> Result<u64> {
    rank_where(c, "priority_rank IS NULL").await
}

async fn rank_where(c: &mut SqliteConnection, condition: &str) -> Result<u64> {
    let done = sqlx::query(&format!(
        "UPDATE tickets SET priority_rank = coalesce((SELECT rank FROM priority_levels \
           WHERE id = coalesce(json_extract(tickets.data, '$.priority'), '')), -1) \
         WHERE {condition}"
    ))
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// What [`sync`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Tickets from before priorities that got the default priority.
    pub defaulted: u64,
    /// Tickets whose rank was recomputed because the configured levels changed.
    pub reranked: u64,
}

/// Brings the stored levels and ranks in step with `levels`, in one transaction, before
/// the store serves (and before the keyword bitmaps are built, so the keyword rows added
/// here are in them).
pub async fn sync(c: &mut SqliteConnection, levels: &PriorityLevels) -> Result<Synced> {
    let mut tx = sqlx::Connection::begin(&mut *c).await.map_err(db_err)?;
    let mut synced = Synced::default();
    // Tickets stored before priorities: the default priority in the record (spliced in
    // front, so the rest of the stored text stays byte for byte) and its keyword row.
    let default = docket_query::normalize_keyword(&levels.default);
    let lacking = "priority_rank IS NULL AND json_extract(data, '$.priority') IS NULL";
    if !default.is_empty() {
        sqlx::query(&format!(
            "INSERT OR IGNORE INTO ticket_keywords (field, value, num) \
             SELECT 'priority', ?, num FROM tickets WHERE {lacking}"
        ))
        .bind(&default)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    synced.defaulted = sqlx::query(&format!(
        "UPDATE tickets SET data = '{{\"priority\":' || json_quote(?) || ',' || substr(data, 2) \
         WHERE {lacking} AND substr(data, 1, 1) = '{{'"
    ))
    .bind(&levels.default)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    let stored: Vec<(String, i64)> =
        sqlx::query_as("SELECT id, rank FROM priority_levels ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
    let mut wanted = levels.ranks();
    wanted.sort();
    if stored != wanted {
        sqlx::query("DELETE FROM priority_levels")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (id, rank) in &wanted {
            sqlx::query("INSERT INTO priority_levels (id, rank) VALUES (?, ?)")
                .bind(id)
                .bind(rank)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        synced.reranked = rank_where(&mut tx, "1").await?;
    } else {
        fill_ranks(&mut tx).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(synced)
}
