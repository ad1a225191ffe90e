//! The access log: one structured line per request, written when the response body has been
//! sent (so the duration and byte count are those of the whole exchange, also for streamed
//! downloads and event streams), and the per-call request metrics recorded at the same point.
//!
//! Who called and the xyOps error `code` are only known deep inside a handler; instead of
//! threading them back through every return type, the handler notes them in a task-local
//! slot that this middleware reads once the response is finished ([`note_caller`],
//! [`note_error`]).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a handler learned about the request that the log line should carry.
#[derive(Debug, Default)]
struct Note {
    user: Option<String>,
    auth: Option<&'static str>,
    code: Option<&'static str>,
}

tokio::task_local! {
    static NOTE: Arc<Mutex<Note>>;
}

fn with_note(f: impl FnOnce(&mut Note)) {
    // Outside a request (CLI, background tasks) there is no slot: nothing to note.
    let _ = NOTE.try_with(|n| {
        if let Ok(mut n) = n.lock() {
            f(&mut n);
        }
    });
}

/// Records who is calling: `auth` is `key` or `session`; `user` the principal's name (an API
/// key's username, or its id when it has none).
pub fn note_caller(auth: &'static str, user: &str) {
    with_note(|n| {
        n.auth = Some(auth);
        n.user = Some(user.to_string());
    });
}

/// Records the xyOps error code of a failed call (`session`, `notfound`, …).
pub fn note_error(code: &'static str) {
    with_note(|n| n.code = Some(code));
}

/// A client's request id is kept when it is short and plain (it lands in logs verbatim, so
/// nothing that could forge a log line or blow it up); otherwise one is generated.
fn request_id(req: &Request) -> HeaderValue {
    let sane = |v: &str| {
        !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
    };
    req.headers()
        .get(&X_REQUEST_ID)
        .filter(|v| v.to_str().map(sane).unwrap_or(false))
        .cloned()
        .unwrap_or_else(|| {
            let id = hex::encode(rand::random::<[u8; 12]>());
            // Hex is always a valid header value; the fallback is never reached.
            HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("-"))
        })
}

/// The call name of `/api/NS/NAME[/v1]` (when NAME is a known call), else the path.
fn call_name(path: &str) -> (String, bool) {
    let mut parts = path.trim_start_matches('/').split('/');
    if let (Some("api"), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) {
        if crate::wire::is_call(ns, name) {
            return (name.to_string(), true);
        }
    }
    (path.to_string(), false)
}

/// The middleware (`axum::middleware::from_fn(access::layer)`).
pub async fn layer(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(&req);
    let (call, is_api) = call_name(req.uri().path());
    // Metrics need a bounded label set: the route pattern, never the raw path.
    let route = if is_api {
        call.clone()
    } else {
        req.extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "unmatched".into())
    };
    let method = req.method().to_string();
    req.headers_mut().insert(X_REQUEST_ID, id.clone());
    let note = Arc::new(Mutex::new(Note::default()));
    // What handlers log (warnings, internal errors) carries the request id through this span.
    let span = tracing::info_span!("request", id = %id.to_str().unwrap_or("-"));
    let res = NOTE
        .scope(note.clone(), next.run(req))
        .instrument(span)
        .await;
    let (mut parts, body) = res.into_parts();
    parts.headers.insert(X_REQUEST_ID, id.clone());
    let entry = Entry {
        started,
        request_id: id.to_str().unwrap_or("-").to_string(),
        method,
        call,
        route,
        status: parts.status.as_u16(),
        note,
    };
    Response::from_parts(
        parts,
        Body::new(Logged {
            inner: body,
            bytes: 0,
            entry: Some(entry),
        }),
    )
}

struct Entry {
    started: Instant,
    request_id: String,
    method: String,
    call: String,
    route: String,
    status: u16,
    note: Arc<Mutex<Note>>,
}

impl Entry {
    fn write(self, bytes: u64) {
        let seconds = self.started.elapsed().as_secs_f64();
        let (user, auth, code) = match self.note.lock() {
            Ok(n) => (n.user.clone(), n.auth, n.code),
            Err(_) => (None, None, None),
        };
        tracing::info!(
            target: "docket::access",
            request_id = %self.request_id,
            method = %self.method,
            call = %self.call,
            user = user.as_deref(),
            auth,
            status = self.status,
            code,
            duration_ms = (seconds * 1000.0 * 1000.0).round() / 1000.0,
            bytes,
            "request"
        );
        super::metrics::get().observe_request(&self.route, self.status, seconds);
    }
}

/// The response body, counting what is sent; the log line is written when it is dropped
/// (after the last byte, or when the client went away).
struct Logged {
    inner: Body,
    bytes: u64,
    entry: Option<Entry>,
}

impl http_body::Body for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.write(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_name_their_call_and_others_keep_the_path() {
        assert_eq!(
            call_name("/api/app/get_ticket/v1"),
            ("get_ticket".into(), true)
        );
        assert_eq!(call_name("/api/user/login"), ("login".into(), true));
        assert!(!call_name("/api/app/nope/v1").1);
        assert_eq!(call_name("/tickets/12"), ("/tickets/12".into(), false));
    }

    #[test]
    fn request_ids_are_kept_only_when_plain() {
        let req = |v: &str| {
            Request::builder()
                .header("x-request-id", v)
                .body(Body::empty())
                .unwrap_or_default()
        };
        assert_eq!(request_id(&req("abc-123")), "abc-123");
        let long = "x".repeat(200);
        assert_ne!(request_id(&req(&long)), long.as_str());
        assert_ne!(request_id(&req("a b")), "a b");
        assert_eq!(request_id(&req("a b")).len(), 24);
    }
}
