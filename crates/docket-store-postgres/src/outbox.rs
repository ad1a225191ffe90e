//! The notification outbox: rows written in the transaction of their cause, claimed with a
//! lease by the delivery workers (several nodes may run one), marked sent after delivery.

use docket_core::notify::{OutboxColumns, OutboxItem, OutboxRow};
use docket_core::{Error, Result};
use sqlx::{PgConnection, PgPool};

use crate::db_err;
use crate::index::no_nul;

const COLUMNS: &str =
    "id, channel, kind, ticket, grp, target, payload, created, not_before, attempts, claimed_until, sent_at, last_error";

pub use docket_core::notify::OUTBOX_MAX_HOLD_SECS as MAX_HOLD_SECS;

/// Advisory lock class of a group being claimed (`pg_try_advisory_xact_lock(class, hash)`);
/// the create locks use classes 1 and 2.
const GROUP_LOCK: i32 = 3;

/// Inserts entries inside the caller's transaction, in order (ids ascend with it); an entry
/// whose `unique_key` exists (or came earlier in `items`) is skipped. Returns how many
/// were inserted.
pub async fn insert(c: &mut PgConnection, items: &[OutboxItem], now: i64) -> Result<u64> {
    // A unique key seen earlier in `items` is dropped here, and one already stored is
    // filtered out by the statement, so skipped rows do not use up ids (as in SQLite,
    // where `INSERT OR IGNORE` takes no id); ON CONFLICT only covers a concurrent insert.
    let mut keys = std::collections::HashSet::new();
    let items: Vec<&OutboxItem> = items
        .iter()
        .filter(|i| i.unique_key.as_ref().is_none_or(|k| keys.insert(no_nul(k))))
        .collect();
    if items.is_empty() {
        return Ok(0);
    }
    let text =
        |f: &dyn Fn(&OutboxItem) -> String| items.iter().map(|i| f(i)).collect::<Vec<String>>();
    let done = sqlx::query(
        "INSERT INTO outbox (channel, kind, ticket, grp, target, payload, created, not_before, unique_key) \
         SELECT u.channel, u.kind, u.ticket, u.grp, u.target, u.payload, $7, u.not_before, u.unique_key \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
           $8::bigint[], $9::text[]) \
           WITH ORDINALITY AS u(channel, kind, ticket, grp, target, payload, not_before, unique_key, ord) \
         WHERE u.unique_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox o WHERE o.unique_key = u.unique_key) \
         ORDER BY u.ord \
         ON CONFLICT (unique_key) DO NOTHING",
    )
    .bind(text(&|i| no_nul(&i.channel)))
    .bind(text(&|i| no_nul(&i.kind)))
    .bind(text(&|i| no_nul(&i.ticket)))
    .bind(text(&|i| no_nul(&i.grp)))
    .bind(text(&|i| no_nul(&i.target)))
    .bind(text(&|i| i.payload.to_string()))
    .bind(now)
    .bind(items.iter().map(|i| i.not_before).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|i| i.unique_key.as_deref().map(no_nul))
            .collect::<Vec<_>>(),
    )
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}

/// Exact copies of rows (ids kept); rows whose id or unique key exists are skipped. Then
/// the id sequence is moved past the highest id.
pub async fn copy(
    c: &mut PgConnection,
    rows: Vec<OutboxRow>,
    unique_keys: Vec<Option<String>>,
) -> Result<u64> {
    if rows.len() != unique_keys.len() {
        return Err(Error::Internal(format!(
            "postgres: copy_outbox got {} rows and {} unique keys",
            rows.len(),
            unique_keys.len()
        )));
    }
    let mut inserted = 0;
    let pairs: Vec<(OutboxRow, Option<String>)> = rows.into_iter().zip(unique_keys).collect();
    for chunk in pairs.chunks(1000) {
        let text = |f: &dyn Fn(&OutboxRow) -> String| {
            chunk.iter().map(|(r, _)| f(r)).collect::<Vec<String>>()
        };
        let int =
            |f: &dyn Fn(&OutboxRow) -> i64| chunk.iter().map(|(r, _)| f(r)).collect::<Vec<i64>>();
        let opt = |f: &dyn Fn(&OutboxRow) -> Option<i64>| {
            chunk
                .iter()
                .map(|(r, _)| f(r))
                .collect::<Vec<Option<i64>>>()
        };
        let done = sqlx::query(
            "INSERT INTO outbox (id, channel, kind, ticket, grp, target, payload, created, not_before, \
               attempts, claimed_until, sent_at, last_error, unique_key) \
             SELECT u.id, u.channel, u.kind, u.ticket, u.grp, u.target, u.payload, u.created, u.not_before, \
               u.attempts, u.claimed_until, u.sent_at, u.last_error, u.unique_key \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
               $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::text[]) \
               WITH ORDINALITY AS u(id, channel, kind, ticket, grp, target, payload, created, not_before, \
               attempts, claimed_until, sent_at, last_error, unique_key, ord) \
             ORDER BY u.ord ON CONFLICT DO NOTHING",
        )
        .bind(int(&|r| r.id))
        .bind(text(&|r| no_nul(&r.channel)))
        .bind(text(&|r| no_nul(&r.kind)))
        .bind(text(&|r| no_nul(&r.ticket)))
        .bind(text(&|r| no_nul(&r.grp)))
        .bind(text(&|r| no_nul(&r.target)))
        .bind(text(&|r| r.payload.to_string()))
        .bind(int(&|r| r.created))
        .bind(int(&|r| r.not_before))
        .bind(int(&|r| r.attempts))
        .bind(opt(&|r| r.claimed_until))
        .bind(opt(&|r| r.sent_at))
        .bind(
            chunk
                .iter()
                .map(|(r, _)| r.last_error.as_deref().map(no_nul))
                .collect::<Vec<_>>(),
        )
        .bind(
            chunk
                .iter()
                .map(|(_, k)| k.as_deref().map(no_nul))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
        inserted += done.rows_affected();
    }
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('outbox', 'id'), m) FROM ( \
           SELECT max(id) AS m FROM outbox) t, outbox_id_seq s \
         WHERE m IS NOT NULL AND m > CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END",
    )
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(inserted)
}

pub async fn count(db: &PgPool) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM outbox")
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// Whether unsent rows `(not_before)` of one group, unleased at `now`, make the group due:
/// all of them are due, or the first is older than the hold limit.
fn group_due(not_befores: &[i64], now: i64) -> bool {
    let max = not_befores.iter().copied().max();
    let min = not_befores.iter().copied().min();
    match (min, max) {
        (Some(min), Some(max)) => max <= now || min <= now - MAX_HOLD_SECS,
        _ => false,
    }
}

/// Claims due groups (the SQLite store's semantics), safe with several claimers at once:
///
/// 1. the candidate groups (due at `now`, first row first) are read without locks;
/// 2. they are taken, in that order, with transaction-scoped advisory try-locks on the
///    group — a group another node is claiming right now is skipped, not waited for (the
///    group-level SKIP LOCKED, so a group is never split between two claimers);
/// 3. the unsent, unleased rows of the taken groups are locked (`FOR UPDATE`, which
///    re-checks them against the latest committed version, so rows claimed meanwhile
///    drop out), the group condition is checked again on exactly those rows, and they are
///    leased in the same transaction.
pub async fn claim(
    c: &mut PgConnection,
    now: i64,
    lease_until: i64,
    groups: u32,
) -> Result<Vec<OutboxRow>> {
    if groups == 0 {
        return Ok(Vec::new());
    }
    // A few more candidates than wanted, so groups being claimed elsewhere can be skipped.
    let wanted = i64::from(groups);
    let candidates: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT grp FROM outbox WHERE sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $1) \
         GROUP BY grp HAVING max(not_before) <= $1 OR min(not_before) <= $1 - {MAX_HOLD_SECS} \
         ORDER BY min(id) LIMIT $2"
    ))
    .bind(now)
    .bind(wanted.saturating_mul(2).saturating_add(8))
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?;
    // One statement try-locks candidates in order until `wanted` are held (a candidate past
    // that may be locked too, and is then just left alone until this transaction ends).
    let candidates: Vec<String> = candidates.into_iter().map(|(g,)| g).collect();
    let locked: Vec<(String,)> = sqlx::query_as(
        "SELECT u.g FROM unnest($1::text[]) AS u(g) \
         WHERE pg_try_advisory_xact_lock($2, hashtext(u.g)) LIMIT $3",
    )
    .bind(&candidates)
    .bind(GROUP_LOCK)
    .bind(wanted)
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?;
    let locked: std::collections::HashSet<String> = locked.into_iter().map(|(g,)| g).collect();
    let taken: Vec<String> = candidates
        .into_iter()
        .filter(|g| locked.contains(g))
        .take(groups as usize)
        .collect();
    if taken.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT id, grp, not_before FROM outbox \
         WHERE grp = ANY($1) AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $2) \
         ORDER BY id FOR UPDATE",
    )
    .bind(&taken)
    .bind(now)
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?;
    let mut ids = Vec::new();
    for grp in &taken {
        let of_group: Vec<&(i64, String, i64)> = rows.iter().filter(|r| &r.1 == grp).collect();
        let nb: Vec<i64> = of_group.iter().map(|r| r.2).collect();
        if group_due(&nb, now) {
            ids.extend(of_group.iter().map(|r| r.0));
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let claimed: Vec<OutboxColumns> = sqlx::query_as(&format!(
        "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id = ANY($2) \
         RETURNING {COLUMNS}"
    ))
    .bind(lease_until)
    .bind(&ids)
    .fetch_all(&mut *c)
    .await
    .map_err(db_err)?;
    let mut out = claimed
        .into_iter()
        .map(OutboxRow::from_columns)
        .collect::<Result<Vec<_>>>()?;
    out.sort_by_key(|r| r.id);
    Ok(out)
}

pub async fn sent(c: &mut PgConnection, ids: &[i64], now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET sent_at = $1, claimed_until = NULL, last_error = NULL \
         WHERE id = ANY($2) AND sent_at IS NULL",
    )
    .bind(now)
    .bind(ids)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn failed(c: &mut PgConnection, ids: &[i64], error: &str, retry_at: i64) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET claimed_until = NULL, last_error = $1, not_before = GREATEST(not_before, $2) \
         WHERE id = ANY($3) AND sent_at IS NULL",
    )
    .bind(no_nul(error))
    .bind(retry_at)
    .bind(ids)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn list(db: &PgPool, pending_only: bool, limit: u32) -> Result<Vec<OutboxRow>> {
    let filter = if pending_only {
        "WHERE sent_at IS NULL"
    } else {
        ""
    };
    let sql = format!("SELECT {COLUMNS} FROM outbox {filter} ORDER BY id DESC LIMIT $1");
    let rows: Vec<OutboxColumns> = sqlx::query_as(&sql)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(db_err)?;
    rows.into_iter().map(OutboxRow::from_columns).collect()
}

pub async fn sent_since(db: &PgPool, channel: &str, since: i64) -> Result<u64> {
    if channel.contains('\0') {
        return Ok(0);
    }
    let (n,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM outbox WHERE channel = $1 AND sent_at >= $2")
            .bind(channel)
            .bind(since)
            .fetch_one(db)
            .await
            .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub async fn next_due(db: &PgPool) -> Result<Option<i64>> {
    let (due,): (Option<i64>,) = sqlx::query_as(&format!(
        "SELECT min(due) FROM (SELECT LEAST(max(e), min(e) + {MAX_HOLD_SECS}) AS due FROM ( \
           SELECT grp, GREATEST(not_before, coalesce(claimed_until + 1, 0)) AS e \
           FROM outbox WHERE sent_at IS NULL) r \
         GROUP BY grp) g"
    ))
    .fetch_one(db)
    .await
    .map_err(db_err)?;
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_due_is_the_sliding_debounce_with_a_hold_limit() {
        assert!(group_due(&[100, 300], 300));
        assert!(!group_due(&[100, 300], 299));
        assert!(group_due(&[100, 5000], 100 + MAX_HOLD_SECS));
        assert!(!group_due(&[], 0));
    }
}
