//! Ticket events across nodes: a trigger on `tickets` sends a NOTIFY on [`CHANNEL`] for
//! every committed write (migration 0005), and each store keeps one task LISTENing on it
//! that re-publishes into the store's broadcast channel. PostgreSQL delivers a notification
//! only if its transaction commits, at the commit, in commit order — so a rolled-back write
//! announces nothing, and the local node hears its own writes by the same path as the
//! writes of other nodes.
//!
//! The same listener hears [`RECORDS_CHANNEL`] (migration 0007): a write of a user, API key
//! or role, or the end of a live session, on any node. It feeds
//! [`Store::record_events`](docket_core::store::Store::record_events), which keeps each node's
//! credential cache exact; `hearing` says whether those notifications can be trusted right
//! now (see [`Hearing`]).
//!
//! The listener has its own connection (not one of the pool's). When that connection
//! breaks, sqlx's `PgListener` reconnects at once and listens again; when that
//! fails too (the database is down), the task starts over with a fresh listener after a
//! backoff doubling from [`MIN_BACKOFF`] to [`MAX_BACKOFF`]. Notifications sent while no
//! connection was listening are lost (PostgreSQL keeps none for absent listeners).

use std::time::Duration;

use docket_core::store::{
    Hearing, RecordChange, RecordEvents, RecordKind, TicketEvent, TicketEventKind,
};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// The NOTIFY channel of ticket writes.
pub const CHANNEL: &str = "docket_tickets";
/// The NOTIFY channel of record writes that change who may do what (migration 0007): the
/// payload is the record kind.
pub const RECORDS_CHANNEL: &str = "docket_records";
/// Record changes a receiver may fall behind by before it is told it lagged.
const RECORD_EVENT_CAPACITY: usize = 256;
/// Sets, for the current transaction, that its ticket writes announce nothing (bulk loads).
pub const QUIET_SQL: &str = "SELECT set_config('docket.ticket_events', 'off', true)";

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long opening a store waits for its listener's first LISTEN.
const FIRST_LISTEN_WAIT: Duration = Duration::from_secs(10);

/// The store's broadcast channel and the task feeding it; dropping the last clone of the
/// store drops this and stops the task (and its connection).
pub struct Events {
    pub sender: broadcast::Sender<TicketEvent>,
    records: broadcast::Sender<RecordChange>,
    hearing: watch::Sender<Hearing>,
    task: JoinHandle<()>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Events {
    /// Starts listening and waits (a bounded time) until the first LISTEN is in place, so
    /// every write committed after the store is open is heard. When that first attempt
    /// fails the store opens anyway and the task keeps trying.
    pub async fn start(url: &str, pool: PgPool, capacity: usize) -> Events {
        let sender = broadcast::channel(capacity).0;
        let records = broadcast::channel(RECORD_EVENT_CAPACITY).0;
        let hearing = watch::channel(Hearing::default()).0;
        let (ready, listening) = oneshot::channel();
        let out = Outputs {
            tickets: sender.clone(),
            records: records.clone(),
            hearing: hearing.clone(),
        };
        let task = tokio::spawn(run(url.to_string(), pool, out, ready));
        match tokio::time::timeout(FIRST_LISTEN_WAIT, listening).await {
            Ok(Ok(())) => {}
            _ => tracing::warn!(
                "ticket events: not listening yet; live updates start once the listener connects"
            ),
        }
        Events {
            sender,
            records,
            hearing,
            task,
        }
    }

    /// A receiver of record changes from now on, and of whether they are being heard.
    pub fn record_events(&self) -> RecordEvents {
        RecordEvents {
            changes: self.records.subscribe(),
            hearing: self.hearing.subscribe(),
        }
    }

    /// Stops the listener (the store is closing).
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Where the listener publishes.
struct Outputs {
    tickets: broadcast::Sender<TicketEvent>,
    records: broadcast::Sender<RecordChange>,
    hearing: watch::Sender<Hearing>,
}

impl Outputs {
    /// Listening (again): whatever was cached from records may be stale.
    fn heard_from_now(&self) {
        // Always marked changed, also when it was listening already (a reconnect).
        self.hearing.send_modify(|h| h.listening = true);
    }

    fn deaf(&self) {
        self.hearing.send_modify(|h| h.listening = false);
    }
}

async fn run(url: String, pool: PgPool, out: Outputs, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&url).await {
            Ok(mut listener) => {
                out.heard_from_now();
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                backoff = MIN_BACKOFF;
                // `try_recv` reconnects by itself after a lost connection (and then answers
                // `None`); an error means that failed as well, and the listener is replaced
                // after the backoff.
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) if note.channel() == RECORDS_CHANNEL => {
                            match record_kind(note.payload()) {
                                Some(kind) => {
                                    let _ = out.records.send(RecordChange { kind });
                                }
                                // Unknown: treat as "anything may have changed".
                                None => out.heard_from_now(),
                            }
                        }
                        Ok(Some(note)) => {
                            if let Some(event) = decode(&pool, note.payload()).await {
                                let _ = out.tickets.send(event);
                            }
                        }
                        Ok(None) => {
                            out.heard_from_now();
                            tracing::warn!(
                                "ticket events: the listening connection was lost and made again; \
                                 writes committed meanwhile were not announced"
                            )
                        }
                        Err(e) => {
                            out.deaf();
                            tracing::warn!(error = %e, "ticket events: the listener failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                out.deaf();
                tracing::warn!(error = %e, retry_in = ?backoff, "ticket events: cannot listen")
            }
        }
        // Opening the store waits for the first attempt only.
        drop(ready.take());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn listen(url: &str) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen_all([CHANNEL, RECORDS_CHANNEL]).await?;
    Ok(listener)
}

/// The record kind a [`RECORDS_CHANNEL`] payload names.
fn record_kind(payload: &str) -> Option<RecordKind> {
    RecordKind::ALL.into_iter().find(|k| k.as_str() == payload)
}

/// Reads a payload of the trigger; `None` (logged) for one that is not.
async fn decode(pool: &PgPool, payload: &str) -> Option<TicketEvent> {
    let parsed = parse(payload);
    if parsed.is_none() {
        tracing::warn!(payload, "ticket events: an unreadable notification");
    }
    let (id, num, kind, modified) = parsed?;
    let id = match id {
        Some(id) => id,
        // The trigger leaves out an id too long for a notification.
        None => sqlx::query_as::<_, (String,)>("SELECT id FROM tickets WHERE num = $1")
            .bind(num)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten()
            .map(|(id,)| id)
            .unwrap_or_default(),
    };
    Some(TicketEvent {
        id,
        num,
        kind,
        modified,
    })
}

/// The payload's id (None when the trigger left it out), number, kind and time.
fn parse(payload: &str) -> Option<(Option<String>, i64, TicketEventKind, i64)> {
    let v: Value = serde_json::from_str(payload).ok()?;
    let id = match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        _ => return None,
    };
    let num = v.get("num")?.as_i64()?;
    let kind = TicketEventKind::parse(v.get("kind")?.as_str()?)?;
    let modified = v.get("modified")?.as_i64()?;
    Some((id, num, kind, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(
            parse(r#"{"id" : "t1", "num" : 7, "kind" : "deleted", "modified" : 5}"#),
            Some((Some("t1".into()), 7, TicketEventKind::Deleted, 5))
        );
        assert_eq!(
            parse(r#"{"id":null,"num":7,"kind":"created","modified":5}"#),
            Some((None, 7, TicketEventKind::Created, 5))
        );
        assert_eq!(
            parse(r#"{"id":"t1","num":7,"kind":"moved","modified":5}"#),
            None
        );
        assert_eq!(parse("not json"), None);
    }

    #[test]
    fn record_payloads() {
        assert_eq!(record_kind("api_key"), Some(RecordKind::ApiKey));
        assert_eq!(record_kind("role"), Some(RecordKind::Role));
        assert_eq!(record_kind("nonsense"), None);
    }
}
