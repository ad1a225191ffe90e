//! Priority ranks: the configured levels in the `priority_levels` table, and each ticket's
//! rank (`tickets.priority_rank`, the `sort_by=priority` column) kept in step with them.
//!
//! Writes compute a ticket's rank from the table in the statement that writes the row
//! (tickets.rs), so only opening the store needs the configuration: [`sync`] rewrites the
//! table when the configured levels changed and then recomputes every rank, and gives
//! tickets stored before priorities existed (rank NULL) the configured default.

use docket_core::rules::PriorityLevels;
use docket_core::Result;
use rusqlite::{params, Connection};

use crate::writer::{execute, sql_err};

/// Sets the rank of every ticket whose rank is NULL (just imported, or from before
/// priorities), from its record's priority ('' when it has none: the default's rank).
pub fn fill_ranks(c: &Connection) -> Result<u64> {
    rank_where(c, "priority_rank IS NULL")
}

fn rank_where(c: &Connection, condition: &str) -> Result<u64> {
    let done = execute(
        c,
        &format!(
            "UPDATE tickets SET priority_rank = coalesce((SELECT rank FROM priority_levels \
               WHERE id = coalesce(json_extract(tickets.data, '$.priority'), '')), -1) \
             WHERE {condition}"
        ),
        [],
    )?;
    Ok(done as u64)
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
pub fn sync(c: &Connection, levels: &PriorityLevels) -> Result<Synced> {
    c.execute_batch("BEGIN IMMEDIATE").map_err(sql_err)?;
    match sync_in_transaction(c, levels) {
        Ok(synced) => {
            c.execute_batch("COMMIT").map_err(sql_err)?;
            Ok(synced)
        }
        Err(e) => {
            let _ = c.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn sync_in_transaction(c: &Connection, levels: &PriorityLevels) -> Result<Synced> {
    let mut synced = Synced::default();
    // Tickets stored before priorities: the default priority in the record (spliced in
    // front, so the rest of the stored text stays byte for byte) and its keyword row.
    let default = docket_query::normalize_keyword(&levels.default);
    let lacking = "priority_rank IS NULL AND json_extract(data, '$.priority') IS NULL";
    if !default.is_empty() {
        execute(
            c,
            &format!(
                "INSERT OR IGNORE INTO ticket_keywords (field, value, num) \
                 SELECT 'priority', ?1, num FROM tickets WHERE {lacking}"
            ),
            [&default],
        )?;
    }
    synced.defaulted = execute(
        c,
        &format!(
            "UPDATE tickets SET data = '{{\"priority\":' || json_quote(?1) || ',' || substr(data, 2) \
             WHERE {lacking} AND substr(data, 1, 1) = '{{'"
        ),
        [&levels.default],
    )? as u64;
    if synced.defaulted > 0 {
        // The stored JSON changed in SQL: its compact rows too (once, at an upgrade).
        crate::compact_rows::refill_all(c)?;
    }
    let stored: Vec<(String, i64)> = c
        .prepare("SELECT id, rank FROM priority_levels ORDER BY id")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(sql_err)?;
    let mut wanted = levels.ranks();
    wanted.sort();
    if stored != wanted {
        execute(c, "DELETE FROM priority_levels", [])?;
        for (id, rank) in &wanted {
            execute(
                c,
                "INSERT INTO priority_levels (id, rank) VALUES (?1, ?2)",
                params![id, rank],
            )?;
        }
        synced.reranked = rank_where(c, "1")?;
    } else {
        fill_ranks(c)?;
    }
    Ok(synced)
}
