//! Live updates: a Server-Sent Events stream per open page. A ticket page hears about its
//! own ticket; a list page hears about tickets that now match its query (or left it). The
//! events come from the store (after commit; on PostgreSQL through LISTEN/NOTIFY, so a write
//! on another node arrives too), and each one is checked against the viewer's rights before
//! anything is sent: a hidden ticket sends nothing.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use docket_core::store::{TicketEvent, TicketEventKind};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Map};
use tokio::sync::broadcast::error::RecvError;

use super::session::Viewer;
use crate::wire::AppState;

#[derive(Deserialize)]
pub struct Watch {
    /// A ticket page: the ticket's id.
    ticket: Option<String>,
    /// A list page: its query ("" = everything).
    q: Option<String>,
}

enum Target {
    Ticket(String),
    Search(docket_query::Filter),
}

struct Listener {
    state: AppState,
    viewer: Viewer,
    target: Target,
    events: tokio::sync::broadcast::Receiver<TicketEvent>,
}

impl Listener {
    /// What to tell the page about one store event, if anything.
    async fn judge(&self, ev: &TicketEvent) -> Option<Event> {
        let kind = match ev.kind {
            TicketEventKind::Created => "created",
            TicketEventKind::Updated => "updated",
            TicketEventKind::Deleted => "deleted",
        };
        match &self.target {
            Target::Ticket(id) if *id != ev.id => None,
            Target::Ticket(_) if ev.kind == TicketEventKind::Deleted => Some(
                Event::default()
                    .event("ticket")
                    .data(json!({"kind": kind}).to_string()),
            ),
            Target::Ticket(id) => {
                let t = self.visible(id).await?;
                Some(
                    Event::default()
                        .event("ticket")
                        .data(json!({"kind": kind, "modified": t.modified}).to_string()),
                )
            }
            // The page decides on a deleted number: it refreshes only if it shows that row.
            Target::Search(_) if ev.kind == TicketEventKind::Deleted => Some(
                Event::default()
                    .event("search")
                    .data(json!({"num": ev.num, "kind": kind, "matches": false}).to_string()),
            ),
            Target::Search(filter) => {
                let matches = self
                    .state
                    .docket
                    .ticket_matches(&self.viewer.principal, filter, ev.num)
                    .await
                    .ok()?;
                // A ticket the viewer cannot see, or one outside the query, is still worth a
                // refresh if it is on the page (it may have just left the query); numbers of
                // tickets the viewer cannot see are never sent.
                if !matches {
                    self.visible(&ev.id).await?;
                }
                Some(
                    Event::default()
                        .event("search")
                        .data(json!({"num": ev.num, "kind": kind, "matches": matches}).to_string()),
                )
            }
        }
    }

    /// Ticket `id` as the viewer may see it (`None`: missing or hidden).
    async fn visible(&self, id: &str) -> Option<docket_core::model::Ticket> {
        let mut params = Map::new();
        params.insert("id".into(), json!(id));
        self.state
            .docket
            .get_ticket(&self.viewer.principal, &params)
            .await
            .ok()
    }

    /// Whether the viewer's session still holds (a logout ends the stream).
    async fn still_signed_in(&self) -> bool {
        self.state
            .docket
            .authenticate_session(&self.viewer.session_id)
            .await
            .is_ok()
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Listener)> {
        loop {
            match self.events.recv().await {
                Ok(ev) => {
                    if let Some(out) = self.judge(&ev).await {
                        if !self.still_signed_in().await {
                            return None;
                        }
                        return Some((Ok(out), self));
                    }
                }
                // Too slow to keep up: the page reloads what it shows.
                Err(RecvError::Lagged(_)) => {
                    return Some((Ok(Event::default().event("refresh").data("{}")), self));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn listen(listener: Listener) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(listener, Listener::next)
}

// GET /events?ticket=ID | /events?q=QUERY
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(watch): Query<Watch>,
) -> Response {
    let target = match (watch.ticket, watch.q) {
        (Some(id), _) => Target::Ticket(id),
        (None, q) => {
            let q = q.unwrap_or_default();
            let q = if q.trim().is_empty() {
                "*".to_string()
            } else {
                q
            };
            match state.docket.compile_query(&q) {
                Ok(f) => Target::Search(f),
                Err(message) => {
                    return (axum::http::StatusCode::BAD_REQUEST, message).into_response()
                }
            }
        }
    };
    let events = state.docket.ticket_events();
    let listener = Listener {
        state,
        viewer,
        target,
        events,
    };
    Sse::new(listen(listener))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
