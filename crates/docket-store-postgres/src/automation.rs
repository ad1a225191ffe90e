//! The automation create: idempotency replay, alert-storm dedupe and insert, together in
//! one transaction. Several nodes may run the same create at once, so before any lookup the
//! transaction takes advisory locks (released at commit or rollback) on the idempotency id
//! and then on the dedupe key, always in that order (no deadlock between two creates): the
//! second of two identical creates waits, then its lookups (new statements, so a fresh
//! snapshot under READ COMMITTED) see the first one's ticket and records.

use docket_core::model::Ticket;
use docket_core::notify::OutboxItem;
use docket_core::store::{CreateOutcome, CreateTicket, RecordKind};
use docket_core::{Error, Result};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::tickets::{self, impossible_key};
use crate::{db_err, records};

const IDEMPOTENCY: RecordKind = RecordKind::Idempotency;

/// Advisory lock classes (`pg_advisory_xact_lock(class, hashtext(key))`).
const IDEMPOTENCY_LOCK: i32 = 1;
const DEDUPE_LOCK: i32 = 2;

async fn lock(c: &mut PgConnection, class: i32, key: &str) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(class)
        .bind(key.replace('\0', ""))
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn create_with(c: &mut PgConnection, request: CreateTicket) -> Result<CreateOutcome> {
    let CreateTicket {
        ticket,
        dedupe,
        idempotency,
        outbox,
    } = request;
    if let Some(claim) = &idempotency {
        lock(c, IDEMPOTENCY_LOCK, &claim.id).await?;
    }
    if let Some(d) = &dedupe {
        lock(c, DEDUPE_LOCK, &d.key).await?;
    }
    if let Some(claim) = &idempotency {
        if let Some(outcome) = replay(c, &claim.id, claim.now).await? {
            return Ok(outcome);
        }
    }
    let outcome = match dedupe {
        Some(d) => match open_ticket_with_key(c, &d.key, &d.closed_statuses, d.categories.as_ref())
            .await?
        {
            Some(id) => match tickets::update_out(c, &id, d.on_duplicate).await? {
                Some(t) => CreateOutcome::Deduplicated(t),
                None => insert(c, ticket, &outbox).await?,
            },
            None => insert(c, ticket, &outbox).await?,
        },
        None => insert(c, ticket, &outbox).await?,
    };
    if let Some(claim) = idempotency {
        let (id, deduplicated) = match &outcome {
            CreateOutcome::Created(t) => (t.id.clone(), false),
            CreateOutcome::Deduplicated(t) => (t.id.clone(), true),
            _ => return Ok(outcome),
        };
        let data = json!({
            "ticket": id,
            "deduplicated": deduplicated,
            "created": claim.now,
            "expires": claim.expires,
        });
        records::put(c, IDEMPOTENCY, &claim.id, None, &data).await?;
    }
    Ok(outcome)
}

async fn insert(
    c: &mut PgConnection,
    ticket: Ticket,
    outbox: &[OutboxItem],
) -> Result<CreateOutcome> {
    Ok(match tickets::insert(c, ticket).await? {
        Some(t) => {
            crate::outbox::insert(c, outbox, tickets::now_secs()).await?;
            CreateOutcome::Created(t)
        }
        None => CreateOutcome::IdTaken,
    })
}

/// The earlier result of an unexpired idempotency key.
async fn replay(c: &mut PgConnection, id: &str, now: i64) -> Result<Option<CreateOutcome>> {
    if impossible_key(id) {
        return Ok(None);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = $1 AND id = $2")
            .bind(IDEMPOTENCY.as_str())
            .bind(id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
    let Some((data,)) = row else { return Ok(None) };
    let rec: Value = serde_json::from_str(&data)
        .map_err(|e| Error::Internal(format!("corrupt idempotency record: {e}")))?;
    if rec.get("expires").and_then(Value::as_i64).unwrap_or(0) <= now {
        // Expired: the key may be used afresh; the row is replaced when this create commits.
        return Ok(None);
    }
    let ticket = match rec.get("ticket").and_then(Value::as_str) {
        Some(tid) if !impossible_key(tid) => {
            let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = $1")
                .bind(tid)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?;
            row.map(|(d,)| tickets::parse(&d)).transpose()?
        }
        _ => None,
    };
    let deduplicated = rec
        .get("deduplicated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Some(CreateOutcome::Replayed {
        ticket,
        deduplicated,
    }))
}

/// The newest ticket with this dedupe key that is not closed-like (and, for a caller
/// limited to categories, in one of them).
async fn open_ticket_with_key(
    c: &mut PgConnection,
    key: &str,
    closed: &[String],
    categories: Option<&std::collections::BTreeSet<String>>,
) -> Result<Option<String>> {
    if impossible_key(key) {
        return Ok(None);
    }
    let cats: Option<Vec<String>> = match categories {
        Some(set) if set.is_empty() => return Ok(None),
        Some(set) => Some(set.iter().filter(|c| !impossible_key(c)).cloned().collect()),
        None => None,
    };
    let closed: Vec<String> = closed
        .iter()
        .filter(|s| !impossible_key(s))
        .cloned()
        .collect();
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM tickets WHERE dedupe_key = $1 AND status <> ALL($2) \
         AND ($3::text[] IS NULL OR category = ANY($3)) ORDER BY num DESC LIMIT 1",
    )
    .bind(key)
    .bind(&closed)
    .bind(cats)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(row.map(|(id,)| id))
}
