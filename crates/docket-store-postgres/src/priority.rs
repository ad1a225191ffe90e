//! Priority ranks: the configured levels in the `priority_levels` table, and each ticket's
//! rank (`tickets.priority_rank`, the `sort_by=priority` column) kept in step with them.
//!
//! Writes compute a ticket's rank from the table in the statement that writes the row
//! (tickets.rs), so only connecting needs the configuration: [`sync`] rewrites the table
//! when the configured levels changed and then recomputes every rank, and gives tickets
//! stored before priorities existed (rank NULL) the configured default. Nodes of one
//! database share one configuration; a node started with another one re-ranks for it.

use docket_core::rules::PriorityLevels;
use docket_core::Result;
use sqlx::PgPool;

use crate::db_err;
use crate::index::keyword_entry;

/// Serialises nodes that connect at once (any constant unused elsewhere).
const SYNC_LOCK: i64 = 0x646f_636b_7072_696f;

/// What [`sync`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Tickets from before priorities that got the default priority.
    pub defaulted: u64,
    /// Tickets whose rank was (re)computed.
    pub reranked: u64,
}

const RANK_OF_ROW: &str = "coalesce((SELECT p.rank FROM priority_levels p \
     WHERE p.id = coalesce(tickets.data::jsonb ->> 'priority', '')), -1)";

/// Brings the stored levels and ranks in step with `levels`, in one transaction.
pub async fn sync(db: &PgPool, levels: &PriorityLevels) -> Result<Synced> {
    let mut tx = db.begin().await.map_err(db_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SYNC_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    // Rewriting records here is not news for the nodes' live views.
    sqlx::query(crate::events::QUIET_SQL)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let mut synced = Synced::default();
    // Tickets stored before priorities: the default priority in the record (spliced in
    // front, so the rest of the stored text stays byte for byte) and its keyword.
    let default = docket_query::normalize_keyword(&levels.default);
    let keyword: Vec<String> = if default.is_empty() {
        Vec::new()
    } else {
        vec![keyword_entry("priority", &default)]
    };
    synced.defaulted = sqlx::query(
        "UPDATE tickets SET keywords = keywords || $1::text[], \
           data = '{\"priority\":' || to_json($2::text)::text || ',' || substr(data, 2) \
         WHERE priority_rank IS NULL AND left(data, 1) = '{' AND NOT (data::jsonb ? 'priority')",
    )
    .bind(&keyword)
    .bind(&levels.default)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    let mut stored: Vec<(String, i64)> = sqlx::query_as("SELECT id, rank FROM priority_levels")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    stored.sort();
    let mut wanted = levels.ranks();
    wanted.sort();
    let which = if stored != wanted {
        sqlx::query("DELETE FROM priority_levels")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for (id, rank) in &wanted {
            sqlx::query("INSERT INTO priority_levels (id, rank) VALUES ($1, $2)")
                .bind(id)
                .bind(rank)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        "TRUE"
    } else {
        "priority_rank IS NULL"
    };
    synced.reranked = sqlx::query(&format!(
        "UPDATE tickets SET priority_rank = {RANK_OF_ROW} WHERE {which}"
    ))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?
    .rows_affected();
    tx.commit().await.map_err(db_err)?;
    Ok(synced)
}
