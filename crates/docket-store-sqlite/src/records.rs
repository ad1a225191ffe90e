//! Small JSON records (users, keys, sessions, tags, categories, roles) in one table.

use docket_core::store::RecordKind;
use docket_core::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;
use sqlx::SqlitePool;

use crate::db_err;
use crate::writer::{execute, sql_err};

pub(crate) fn parse(data: &str) -> Result<Value> {
    serde_json::from_str(data).map_err(|e| Error::Internal(format!("corrupt record: {e}")))
}

pub async fn list(db: &SqlitePool, kind: RecordKind) -> Result<Vec<Value>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = ? ORDER BY id")
            .bind(kind.as_str())
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}

pub fn insert(
    c: &Connection,
    kind: RecordKind,
    id: &str,
    lookup: Option<&str>,
    data: &str,
) -> Result<bool> {
    let done = execute(
        c,
        "INSERT INTO records (kind, id, lookup, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        params![kind.as_str(), id, lookup, data],
    )?;
    Ok(done == 1)
}

/// A record read inside the write transaction.
pub fn get_in(c: &Connection, kind: RecordKind, id: &str) -> Result<Option<Value>> {
    let data: Option<String> = c
        .prepare_cached("SELECT data FROM records WHERE kind = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row([kind.as_str(), id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    data.map(|d| parse(&d)).transpose()
}

pub fn rewrite(c: &Connection, kind: RecordKind, id: &str, data: &str) -> Result<()> {
    execute(
        c,
        "UPDATE records SET data = ?1 WHERE kind = ?2 AND id = ?3",
        [data, kind.as_str(), id],
    )?;
    Ok(())
}

/// Inserts or replaces a record without a lookup key.
pub fn put(c: &Connection, kind: RecordKind, id: &str, data: &str) -> Result<()> {
    execute(
        c,
        "INSERT OR REPLACE INTO records (kind, id, lookup, data) VALUES (?1, ?2, NULL, ?3)",
        [kind.as_str(), id, data],
    )?;
    Ok(())
}

pub fn delete(c: &Connection, kind: RecordKind, id: &str) -> Result<bool> {
    let done = execute(
        c,
        "DELETE FROM records WHERE kind = ?1 AND id = ?2",
        [kind.as_str(), id],
    )?;
    Ok(done > 0)
}

pub fn purge_expired(c: &Connection, kind: RecordKind, now: i64) -> Result<u64> {
    let done = execute(
        c,
        "DELETE FROM records WHERE kind = ?1 AND json_extract(data, '$.expires') <= ?2",
        params![kind.as_str(), now],
    )?;
    Ok(done as u64)
}

/// Records whose `expires` is due, oldest first (indexed by migration 0002).
pub async fn expired(
    db: &SqlitePool,
    kind: RecordKind,
    now: i64,
    limit: u32,
) -> Result<Vec<Value>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT data FROM records WHERE kind = ? AND json_extract(data, '$.expires') <= ? \
         ORDER BY json_extract(data, '$.expires') LIMIT ?",
    )
    .bind(kind.as_str())
    .bind(now)
    .bind(limit as i64)
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}

/// Records whose `ticket` field names the ticket (indexed by migration 0002).
pub async fn of_ticket(db: &SqlitePool, kind: RecordKind, ticket: &str) -> Result<Vec<Value>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = ? AND json_extract(data, '$.ticket') = ? ORDER BY id")
            .bind(kind.as_str())
            .bind(ticket)
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}

/// Every record of `kind` as stored: (id, lookup, data), in id order (for `docket migrate`).
pub async fn export(
    db: &SqlitePool,
    kind: RecordKind,
) -> Result<Vec<(String, Option<String>, Value)>> {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT id, lookup, data FROM records WHERE kind = ? ORDER BY id")
            .bind(kind.as_str())
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.into_iter()
        .map(|(id, lookup, data)| Ok((id, lookup, parse(&data)?)))
        .collect()
}

pub async fn count(db: &SqlitePool, kind: RecordKind) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM records WHERE kind = ?")
        .bind(kind.as_str())
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}
