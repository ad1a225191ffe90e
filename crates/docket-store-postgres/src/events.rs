//! Ticket events across nodes: a trigger on `tickets` sends a NOTIFY on [`CHANNEL`] for
//! every committed write (migration 0005), and each store keeps one task LISTENing on it
//! that re-publishes into the store's broadcast channel. PostgreSQL delivers a notification
//! only if its transaction commits, at the commit, in commit order — so a rolled-back write
//! announces nothing, and the local node hears its own writes by the same path as the
//! writes of other nodes.
//!
//! The listener has its own connection (not one of the pool's). When that connection
//! breaks, sqlx's `PgListener` reconnects at once and listens again; when that
//! fails too (the database is down), the task starts over with a fresh listener after a
//! backoff doubling from [`MIN_BACKOFF`] to [`MAX_BACKOFF`]. Notifications sent while no
//! connection was listening are lost (PostgreSQL keeps none for absent listeners).

use std::time::Duration;

use docket_core::store::{TicketEvent, TicketEventKind};
use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

/// The NOTIFY channel of ticket writes.
pub const CHANNEL: &str = "docket_tickets";
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
        let (ready, listening) = oneshot::channel();
        let task = tokio::spawn(run(url.to_string(), pool, sender.clone(), ready));
        match tokio::time::timeout(FIRST_LISTEN_WAIT, listening).await {
            Ok(Ok(())) => {}
            _ => tracing::warn!(
                "ticket events: not listening yet; live updates start once the listener connects"
            ),
        }
        Events { sender, task }
    }

    /// Stops the listener (the store is closing).
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn run(
    url: String,
    pool: PgPool,
    sender: broadcast::Sender<TicketEvent>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = MIN_BACKOFF;
    loop {
        match listen(&url).await {
            Ok(mut listener) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                backoff = MIN_BACKOFF;
                // `try_recv` reconnects by itself after a lost connection (and then answers
                // `None`); an error means that failed as well, and the listener is replaced
                // after the backoff.
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) => {
                            if let Some(event) = decode(&pool, note.payload()).await {
                                let _ = sender.send(event);
                            }
                        }
                        Ok(None) => tracing::warn!(
                            "ticket events: the listening connection was lost and made again; \
                             writes committed meanwhile were not announced"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "ticket events: the listener failed");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
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
    listener.listen(CHANNEL).await?;
    Ok(listener)
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
}
