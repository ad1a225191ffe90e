//! Small JSON records (users, keys, sessions, tags, categories, roles) in one table.

use docket_core::store::RecordKind;
use docket_core::{Error, Result};
use serde_json::Value;
use sqlx::{SqliteConnection, SqlitePool};

use crate::db_err;

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

pub async fn insert(
    c: &mut SqliteConnection,
    kind: RecordKind,
    id: &str,
    lookup: Option<&str>,
    data: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO records (kind, id, lookup, data) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(id)
    .bind(lookup)
    .bind(data)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

/// A record read inside the write transaction.
pub async fn get_in(c: &mut SqliteConnection, kind: RecordKind, id: &str) -> Result<Option<Value>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = ? AND id = ?")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

pub async fn rewrite(
    c: &mut SqliteConnection,
    kind: RecordKind,
    id: &str,
    data: &str,
) -> Result<()> {
    sqlx::query("UPDATE records SET data = ? WHERE kind = ? AND id = ?")
        .bind(data)
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Inserts or replaces a record without a lookup key.
pub async fn put(c: &mut SqliteConnection, kind: RecordKind, id: &str, data: &str) -> Result<()> {
    sqlx::query("INSERT OR REPLACE INTO records (kind, id, lookup, data) VALUES (?, ?, NULL, ?)")
        .bind(kind.as_str())
        .bind(id)
        .bind(data)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn delete(c: &mut SqliteConnection, kind: RecordKind, id: &str) -> Result<bool> {
    let done = sqlx::query("DELETE FROM records WHERE kind = ? AND id = ?")
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn purge_expired(c: &mut SqliteConnection, kind: RecordKind, now: i64) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM records WHERE kind = ? AND json_extract(data, '$.expires') <= ?")
            .bind(kind.as_str())
            .bind(now)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    Ok(done.rows_affected())
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
