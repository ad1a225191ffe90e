//! Small JSON records (users, keys, sessions, tags, categories, roles, files, ...) in one
//! table. `expires` and `ticket` are extracted here on every write (see migration 0001).

use docket_core::store::RecordKind;
use docket_core::{Error, Result};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use crate::db_err;
use crate::tickets::impossible_key;

fn parse(data: &str) -> Result<Value> {
    serde_json::from_str(data).map_err(|e| Error::Internal(format!("corrupt record: {e}")))
}

/// `json_extract(data, '$.expires')` as SQLite compares it with an integer: a number, or
/// 1 / 0 for true / false; anything else never compares as "at or before now".
pub fn expires_of(data: &Value) -> Option<f64> {
    match data.get("expires")? {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// `json_extract(data, '$.ticket')` as SQLite compares it with a text: only a string.
pub fn ticket_of(data: &Value) -> Option<String> {
    match data.get("ticket")? {
        Value::String(s) if !impossible_key(s) => Some(s.clone()),
        _ => None,
    }
}

pub async fn get(db: &PgPool, kind: RecordKind, id: &str) -> Result<Option<Value>> {
    if impossible_key(id) {
        return Ok(None);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(db)
            .await
            .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

pub async fn find(db: &PgPool, kind: RecordKind, lookup: &str) -> Result<Option<Value>> {
    if impossible_key(lookup) {
        return Ok(None);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 AND lookup = $2")
            .bind(kind.as_str())
            .bind(lookup)
            .fetch_optional(db)
            .await
            .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

pub async fn list(db: &PgPool, kind: RecordKind) -> Result<Vec<Value>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 ORDER BY id")
            .bind(kind.as_str())
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}

fn check_keys(id: &str, lookup: Option<&str>) -> Result<()> {
    if impossible_key(id) || lookup.is_some_and(impossible_key) {
        return Err(Error::Internal(
            "postgres: a record id or lookup key cannot contain NUL".into(),
        ));
    }
    Ok(())
}

/// `false` when a record with that id or lookup exists.
pub async fn insert(
    c: &mut PgConnection,
    kind: RecordKind,
    id: &str,
    lookup: Option<&str>,
    data: &Value,
) -> Result<bool> {
    check_keys(id, lookup)?;
    let done = sqlx::query(
        "INSERT INTO records (kind, id, lookup, data, expires, ticket) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING",
    )
    .bind(kind.as_str())
    .bind(id)
    .bind(lookup)
    .bind(data.to_string())
    .bind(expires_of(data))
    .bind(ticket_of(data))
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

/// Inserts or replaces a record (SQLite's `INSERT OR REPLACE`; a replaced row counts as new
/// for the insertion order).
pub async fn put(
    c: &mut PgConnection,
    kind: RecordKind,
    id: &str,
    lookup: Option<&str>,
    data: &Value,
) -> Result<()> {
    check_keys(id, lookup)?;
    sqlx::query(
        "INSERT INTO records (kind, id, lookup, data, expires, ticket) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (kind, id) DO UPDATE SET lookup = EXCLUDED.lookup, data = EXCLUDED.data, \
           expires = EXCLUDED.expires, ticket = EXCLUDED.ticket, seq = DEFAULT",
    )
    .bind(kind.as_str())
    .bind(id)
    .bind(lookup)
    .bind(data.to_string())
    .bind(expires_of(data))
    .bind(ticket_of(data))
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Exact copies of record rows; rows whose id or lookup exists are skipped.
pub async fn copy(
    c: &mut PgConnection,
    kind: RecordKind,
    rows: Vec<(String, Option<String>, Value)>,
) -> Result<u64> {
    let mut inserted = 0;
    for chunk in rows.chunks(1000) {
        for (id, lookup, _) in chunk {
            check_keys(id, lookup.as_deref())?;
        }
        let done = sqlx::query(
            "INSERT INTO records (kind, id, lookup, data, expires, ticket) \
             SELECT $1, u.id, u.lookup, u.data, u.expires, u.ticket \
             FROM UNNEST($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[]) \
               WITH ORDINALITY AS u(id, lookup, data, expires, ticket, ord) \
             ORDER BY u.ord ON CONFLICT DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(chunk.iter().map(|r| r.0.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.1.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.2.to_string()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| expires_of(&r.2)).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| ticket_of(&r.2)).collect::<Vec<_>>())
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
        inserted += done.rows_affected();
    }
    Ok(inserted)
}

pub async fn count(db: &PgPool, kind: RecordKind) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM records WHERE kind = $1")
        .bind(kind.as_str())
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// A record read inside the write transaction, locked until it ends.
pub async fn get_for_update(
    c: &mut PgConnection,
    kind: RecordKind,
    id: &str,
) -> Result<Option<Value>> {
    if impossible_key(id) {
        return Ok(None);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 AND id = $2 FOR UPDATE")
            .bind(kind.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

/// Rewrites a record's data (and the columns derived from it); its lookup key stays.
pub async fn rewrite(
    c: &mut PgConnection,
    kind: RecordKind,
    id: &str,
    value: &Value,
) -> Result<()> {
    sqlx::query(
        "UPDATE records SET data = $1, expires = $2, ticket = $3 WHERE kind = $4 AND id = $5",
    )
    .bind(value.to_string())
    .bind(expires_of(value))
    .bind(ticket_of(value))
    .bind(kind.as_str())
    .bind(id)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn delete(c: &mut PgConnection, kind: RecordKind, id: &str) -> Result<bool> {
    if impossible_key(id) {
        return Ok(false);
    }
    let done = sqlx::query("DELETE FROM records WHERE kind = $1 AND id = $2")
        .bind(kind.as_str())
        .bind(id)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn purge_expired(c: &mut PgConnection, kind: RecordKind, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM records WHERE kind = $1 AND expires <= $2")
        .bind(kind.as_str())
        .bind(now as f64)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// Records whose `expires` is due, oldest first (ties in insertion order, as SQLite's rowid).
pub async fn expired(db: &PgPool, kind: RecordKind, now: i64, limit: u32) -> Result<Vec<Value>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT data FROM records WHERE kind = $1 AND expires <= $2 ORDER BY expires, seq LIMIT $3",
    )
    .bind(kind.as_str())
    .bind(now as f64)
    .bind(i64::from(limit))
    .fetch_all(db)
    .await
    .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}

/// Records whose `ticket` field names the ticket.
pub async fn of_ticket(db: &PgPool, kind: RecordKind, ticket: &str) -> Result<Vec<Value>> {
    if impossible_key(ticket) {
        return Ok(Vec::new());
    }
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 AND ticket = $2 ORDER BY id")
            .bind(kind.as_str())
            .bind(ticket)
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    rows.iter().map(|(d,)| parse(d)).collect()
}
