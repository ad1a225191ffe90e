//! The automation create: idempotency replay, alert-storm dedupe and insert, together in
//! one write transaction. SQLite has one writer, so the lookups and the write below can
//! never interleave with another create (PostgreSQL would take a transaction-scoped
//! advisory lock on the dedupe key and rely on the records primary key for idempotency).

use docket_core::model::Ticket;
use docket_core::notify::OutboxItem;
use docket_core::store::{CreateOutcome, CreateTicket, RecordKind};
use docket_core::{Error, Result};
use serde_json::{json, Value};
use sqlx::SqliteConnection;

use crate::{db_err, tickets};

const IDEMPOTENCY: RecordKind = RecordKind::Idempotency;

pub async fn create_with(c: &mut SqliteConnection, request: CreateTicket) -> Result<CreateOutcome> {
    let CreateTicket {
        ticket,
        dedupe,
        idempotency,
        outbox,
    } = request;
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
        sqlx::query(
            "INSERT OR REPLACE INTO records (kind, id, lookup, data) VALUES (?, ?, NULL, ?)",
        )
        .bind(IDEMPOTENCY.as_str())
        .bind(&claim.id)
        .bind(data.to_string())
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(outcome)
}

async fn insert(
    c: &mut SqliteConnection,
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
async fn replay(c: &mut SqliteConnection, id: &str, now: i64) -> Result<Option<CreateOutcome>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM records WHERE kind = ? AND id = ?")
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
        Some(tid) => {
            let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = ?")
                .bind(tid)
                .fetch_optional(&mut *c)
                .await
                .map_err(db_err)?;
            match row {
                Some((d,)) => Some(
                    serde_json::from_str::<Ticket>(&d)
                        .map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))?,
                ),
                None => None,
            }
        }
        None => None,
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
    c: &mut SqliteConnection,
    key: &str,
    closed: &[String],
    categories: Option<&std::collections::BTreeSet<String>>,
) -> Result<Option<String>> {
    let mut sql = String::from("SELECT id FROM tickets WHERE dedupe_key = ?");
    if !closed.is_empty() {
        sql.push_str(" AND status NOT IN (");
        sql.push_str(&vec!["?"; closed.len()].join(", "));
        sql.push(')');
    }
    if let Some(cats) = categories {
        if cats.is_empty() {
            return Ok(None);
        }
        sql.push_str(" AND category IN (");
        sql.push_str(&vec!["?"; cats.len()].join(", "));
        sql.push(')');
    }
    sql.push_str(" ORDER BY num DESC LIMIT 1");
    let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(key);
    for s in closed {
        q = q.bind(s);
    }
    for cat in categories.into_iter().flatten() {
        q = q.bind(cat);
    }
    let row = q.fetch_optional(&mut *c).await.map_err(db_err)?;
    Ok(row.map(|(id,)| id))
}
