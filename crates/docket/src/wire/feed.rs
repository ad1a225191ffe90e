//! The change feed over HTTP: `get_ticket_events` (a page, in the call table) and
//! `GET /api/app/stream_ticket_events/v1` (the same events live, as Server-Sent Events).
//!
//! The stream starts after `Last-Event-ID` (what a browser's EventSource sends when it
//! reconnects), else after `after`, else at the newest event (only what comes next). Each
//! event's SSE `id` is its position, so a reconnect resumes exactly where it stopped. An
//! expired or impossible cursor is refused before the stream starts, with the status and
//! `{code, description}` of the call; a failure while streaming ends the stream with an
//! `event: feed_error` message holding the same JSON.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use docket_core::feed::FeedEvent;
use docket_core::service::FeedFollower;
use docket_core::{Docket, Error};
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::json;

use super::reply::{self, render, Reply};
use super::{authenticate, params, AppState, Call, Peer};

/// Events one SSE message batch reads at most.
const STREAM_BATCH: u32 = 100;
/// How often a stream checks that its credential still holds (a revoked key or ended
/// session stops it within this time of its next event).
const RECHECK: Duration = Duration::from_secs(5);

// `get_ticket_events`: /api/app/get_ticket_events/v1
pub async fn get_ticket_events(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let page = s.docket.get_ticket_events(who, &c.params).await?;
    let events = serde_json::to_value(&page.events).map_err(Error::internal)?;
    Ok(Reply::ok()
        .with("events", events)
        .with("cursor", page.cursor)
        .with("more", page.more))
}

// GET /api/app/stream_ticket_events/v1?after=CURSOR&query=Q (or `Last-Event-ID`)
pub async fn stream(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Peer(peer): Peer,
    uri: Uri,
) -> Response {
    if method != Method::GET {
        let err = Error::Api(format!("Method {method} is not allowed; use GET"));
        let mut res =
            reply::json_response(StatusCode::METHOD_NOT_ALLOWED, &reply::error_body(&err));
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return res;
    }
    match start(&state.docket, headers, peer, &uri).await {
        Ok(follow) => Sse::new(events(follow))
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response(),
        Err(e) => render(Err(e), true),
    }
}

/// Authenticates, reads the parameters and checks the cursor: a stream ready to follow.
async fn start(
    docket: &Docket,
    headers: HeaderMap,
    peer: Option<std::net::IpAddr>,
    uri: &Uri,
) -> Result<Follow, Error> {
    let params = match uri.query().filter(|q| !q.is_empty()) {
        Some(q) => params::pairs_to_map(q)?,
        None => Default::default(),
    };
    let mut call = Call {
        params,
        peer,
        file_parts: 0,
        headers,
        auth: None,
    };
    call.auth = authenticate(docket, &call, false).await;
    call.params.remove("api_key");
    let who = call.who()?.clone();
    let p = docket.feed_params(&call.params)?;
    let resume = match call.headers.get("last-event-id") {
        Some(v) => {
            let text = v.to_str().unwrap_or("").trim();
            Some(
                text.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        Error::Api(format!(
                            "Malformed Last-Event-ID header ({text:?}): must be an event position"
                        ))
                    })?,
            )
        }
        None => p.after,
    };
    let cursor = match resume {
        Some(c) => {
            // Refuses an expired or impossible cursor now, as an HTTP error.
            docket.read_feed(&who, Some(c), 1, None).await?;
            c
        }
        None => docket.feed_head().await?,
    };
    Ok(Follow {
        follower: docket.follow_feed(who, cursor, p.filter),
        docket: docket.clone(),
        call,
        checked: Instant::now(),
        pending: Vec::new().into_iter(),
        done: false,
    })
}

struct Follow {
    follower: FeedFollower,
    docket: Docket,
    /// The request, to authenticate again (a revoked key ends the stream).
    call: Call,
    checked: Instant,
    pending: std::vec::IntoIter<FeedEvent>,
    done: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Follow)> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.pending.next() {
                return Some((Ok(message(&event)), self));
            }
            let batch = match self.follower.next(STREAM_BATCH).await {
                Ok(batch) => batch,
                Err(e) => return Some(self.fail(&e)),
            };
            if self.checked.elapsed() >= RECHECK {
                if let Some(Err(e)) = authenticate(&self.docket, &self.call, false).await {
                    return Some(self.fail(&e));
                }
                self.checked = Instant::now();
            }
            self.pending = batch.into_iter();
        }
    }

    /// The last message: the error, then the stream ends.
    fn fail(mut self, err: &Error) -> (Result<Event, Infallible>, Follow) {
        self.done = true;
        if matches!(err, Error::Internal(_)) {
            tracing::error!(error = %err, "event stream failed");
        }
        let body = json!({"code": err.code(), "description": err.description()});
        (
            Ok(Event::default().event("feed_error").data(body.to_string())),
            self,
        )
    }
}

/// One event as an SSE message: `id` the position, `data` the event's JSON.
fn message(event: &FeedEvent) -> Event {
    Event::default()
        .id(event.position.to_string())
        .data(serde_json::to_string(event).unwrap_or_default())
}

fn events(follow: Follow) -> impl Stream<Item = Result<Event, Infallible>> {
    // Fused: a body may be polled again after its end (the compression layer does).
    stream::unfold(follow, Follow::next).fuse()
}
