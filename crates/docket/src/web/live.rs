//! Live updates: a Server-Sent Events stream per open page. A ticket page hears about its
//! own ticket; a list page hears about tickets that now match its query (or left it).
//!
//! The events come from the change feed (`docket_core::feed`), through the same
//! [`FeedFollower`] as the API's event stream: read by position after a wake-up from the
//! store (on PostgreSQL a NOTIFY, so a write on another node arrives too), and only what
//! the viewer may see (`FeedEvent::as_seen_by`). Every message carries its position as the
//! SSE `id`, so when the browser reconnects (it sends `Last-Event-ID`) the stream resumes
//! where it stopped: nothing is lost across a reconnect or a slow reader.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use docket_core::feed::{FeedEvent, FeedKind};
use docket_core::service::FeedFollower;
use docket_core::Error;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;

use super::session::Viewer;
use crate::wire::AppState;

#[derive(Deserialize)]
pub struct Watch {
    /// A ticket page: the ticket's id.
    ticket: Option<String>,
    /// A list page: its query ("" = everything).
    q: Option<String>,
    /// The feed position the page was built at (its `data-feed-at`): a new stream starts
    /// after it, so a change committed while the page was built is not missed.
    after: Option<i64>,
}

enum Target {
    Ticket(String),
    Search(docket_query::Filter),
}

struct Listener {
    state: AppState,
    viewer: Viewer,
    target: Target,
    follower: FeedFollower,
    /// Events read from the feed and not yet judged.
    pending: std::vec::IntoIter<FeedEvent>,
}

/// Feed events read at once.
const BATCH: u32 = 100;

impl Listener {
    /// What to tell the page about one feed event (already one the viewer may see), if
    /// anything.
    async fn judge(&self, ev: &FeedEvent) -> Option<Event> {
        let e = &ev.entry;
        let kind = e.kind.as_str();
        let deleted = e.kind == FeedKind::Deleted;
        let out = match &self.target {
            Target::Ticket(id) if *id != e.id => return None,
            Target::Ticket(_) if deleted => Event::default()
                .event("ticket")
                .data(json!({"kind": kind}).to_string()),
            Target::Ticket(_) => Event::default()
                .event("ticket")
                .data(json!({"kind": kind, "modified": e.modified}).to_string()),
            // The page decides on a deleted number: it refreshes only if it shows that row.
            Target::Search(_) if deleted => Event::default()
                .event("search")
                .data(json!({"num": e.num, "kind": kind, "matches": false}).to_string()),
            // A ticket outside the query is still worth a refresh if it is on the page (it
            // may have just left the query).
            Target::Search(filter) => {
                let matches = self
                    .state
                    .docket
                    .ticket_matches(&self.viewer.principal, filter, e.num)
                    .await
                    .ok()?;
                Event::default()
                    .event("search")
                    .data(json!({"num": e.num, "kind": kind, "matches": matches}).to_string())
            }
        };
        Some(out.id(ev.position.to_string()))
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
            if let Some(ev) = self.pending.next() {
                if let Some(out) = self.judge(&ev).await {
                    if !self.still_signed_in().await {
                        return None;
                    }
                    return Some((Ok(out), self));
                }
                continue;
            }
            match self.follower.next(BATCH).await {
                Ok(batch) => self.pending = batch.into_iter(),
                // Events the page missed are gone: it reloads what it shows and follows
                // from now on.
                Err(Error::CursorExpired(_)) => {
                    let head = self.state.docket.feed_head().await.ok()?;
                    self.follower =
                        self.state
                            .docket
                            .follow_feed(self.viewer.principal.clone(), head, None);
                    let refresh = Event::default()
                        .event("refresh")
                        .data("{}")
                        .id(head.to_string());
                    return Some((Ok(refresh), self));
                }
                Err(e) => {
                    // The browser reconnects and resumes from the last id it got.
                    tracing::warn!(error = %e, "live view: reading the change feed failed");
                    return None;
                }
            }
        }
    }
}

fn listen(listener: Listener) -> impl Stream<Item = Result<Event, Infallible>> {
    // Fused: a body may be polled again after its end (the compression layer does).
    stream::unfold(listener, Listener::next).fuse()
}

// GET /events?ticket=ID | /events?q=QUERY (resumes after `Last-Event-ID`)
pub async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
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
    // A reconnect resumes after the last event the page got; a new page after the position
    // it was built at, or else from now.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(watch.after)
        .filter(|n| *n >= 0);
    let cursor = match resume {
        Some(c) => c,
        None => match state.docket.feed_head().await {
            Ok(head) => head,
            Err(_) => {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "try again").into_response()
            }
        },
    };
    let follower = state
        .docket
        .follow_feed(viewer.principal.clone(), cursor, None);
    let listener = Listener {
        state,
        viewer,
        target,
        follower,
        pending: Vec::new().into_iter(),
    };
    Sse::new(listen(listener))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
