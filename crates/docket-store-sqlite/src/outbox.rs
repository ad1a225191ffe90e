//! The notification outbox: rows written in the transaction of their cause, claimed with a
//! lease by the delivery worker, marked sent after delivery.

use docket_core::notify::{OutboxColumns, OutboxItem, OutboxRow};
use docket_core::Result;
use rusqlite::{params, Connection};
use sqlx::SqlitePool;

use crate::db_err;
use crate::writer::{execute, sql_err};

const COLUMNS: &str =
    "id, channel, kind, ticket, grp, target, payload, created, not_before, attempts, claimed_until, sent_at, last_error";

/// Inserts entries inside the caller's transaction. Returns how many were new.
pub fn insert(c: &Connection, items: &[OutboxItem], now: i64) -> Result<u64> {
    let mut n = 0;
    for it in items {
        n += execute(
            c,
            "INSERT OR IGNORE INTO outbox (channel, kind, ticket, grp, target, payload, created, not_before, unique_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                it.channel,
                it.kind,
                it.ticket,
                it.grp,
                it.target,
                it.payload.to_string(),
                now,
                it.not_before,
                it.unique_key
            ],
        )? as u64;
    }
    Ok(n)
}

pub use docket_core::notify::OUTBOX_MAX_HOLD_SECS as MAX_HOLD_SECS;

pub fn claim(c: &Connection, now: i64, lease_until: i64, groups: u32) -> Result<Vec<OutboxRow>> {
    let sql = format!(
        "UPDATE outbox SET claimed_until = ?1, attempts = attempts + 1 \
         WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?2) AND grp IN ( \
           SELECT grp FROM outbox WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < ?2) \
           GROUP BY grp HAVING max(not_before) <= ?2 OR min(not_before) <= ?2 - {MAX_HOLD_SECS} \
           ORDER BY min(id) LIMIT ?3) \
         RETURNING {COLUMNS}"
    );
    let rows: Vec<OutboxColumns> = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![lease_until, now, i64::from(groups)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ))
            })?
            .collect()
        })
        .map_err(sql_err)?;
    let mut out = rows
        .into_iter()
        .map(OutboxRow::from_columns)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub fn sent(c: &Connection, ids: &[i64], now: i64) -> Result<()> {
    for id in ids {
        execute(
            c,
            "UPDATE outbox SET sent_at = ?1, claimed_until = NULL, last_error = NULL \
             WHERE id = ?2 AND sent_at IS NULL",
            [now, *id],
        )?;
    }
    Ok(())
}

pub fn failed(c: &Connection, ids: &[i64], error: &str, retry_at: i64) -> Result<()> {
    for id in ids {
        execute(
            c,
            "UPDATE outbox SET claimed_until = NULL, last_error = ?1, not_before = max(not_before, ?2) \
             WHERE id = ?3 AND sent_at IS NULL",
            params![error, retry_at, id],
        )?;
    }
    Ok(())
}

pub async fn list(db: &SqlitePool, pending_only: bool, limit: u32) -> Result<Vec<OutboxRow>> {
    let filter = if pending_only {
        "WHERE sent_at IS NULL"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT ?");
    let rows: Vec<OutboxColumns> = sqlx::query_as(&sql)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(OutboxRow::from_columns).collect()
}

pub async fn sent_since(db: &SqlitePool, channel: &str, since: i64) -> Result<u64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM outbox WHERE channel = ? AND sent_at >= ?")
            .bind(channel)
            .bind(since)
            .fetch_one(db)
            .await
            .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub async fn next_due(db: &SqlitePool) -> Result<Option<i64>> {
    let (due,): (Option<i64>,) =
        sqlx::query_as(&format!(
            "SELECT min(due) FROM (SELECT min(max(e), min(e) + {MAX_HOLD_SECS}) AS due FROM ( \
               SELECT grp, max(not_before, coalesce(claimed_until + 1, 0)) AS e FROM outbox WHERE sent_at IS NULL) \
             GROUP BY grp)"
        ))
            .fetch_one(db)
            .await
            .map_err(db_err)?;
    Ok(due)
}

/// Up to `limit` rows with an id above `after`, in id order, each with its unique key (for
/// `docket migrate`).
pub async fn export(
    db: &SqlitePool,
    after: i64,
    limit: u32,
) -> Result<Vec<(OutboxRow, Option<String>)>> {
    let sql = format!("SELECT {COLUMNS}, unique_key FROM outbox WHERE id > ? ORDER BY id LIMIT ?");
    let rows: Vec<sqlx::sqlite::SqliteRow> = sqlx::query(&sql)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    use sqlx::{FromRow, Row};
    rows.iter()
        .map(|r| {
            let raw = OutboxColumns::from_row(r).map_err(db_err)?;
            let key: Option<String> = r.try_get("unique_key").map_err(db_err)?;
            Ok((OutboxRow::from_columns(raw)?, key))
        })
        .collect()
}

pub async fn count(db: &SqlitePool) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}
