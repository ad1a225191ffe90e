//! Replies in the xyOps shape: `{code: 0, ...}` on success, `{code, description}` on failure,
//! with the HTTP status the route family calls for.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use docket_core::Error;
use serde_json::{Map, Value};

/// A successful reply: the fields beside `code: 0`, and maybe a cookie to set.
#[derive(Debug, Default)]
pub struct Reply {
    pub fields: Map<String, Value>,
    /// Fields whose value is JSON text already (stored tickets), written as they are.
    pub raw: Vec<(&'static str, Vec<u8>)>,
    pub set_cookie: Option<String>,
    /// A response that is not JSON (an export's streamed body), sent as it is.
    pub stream: Option<Response>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::default()
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Reply {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// Adds a field whose value is `json`, JSON text the caller vouches for (it comes from
    /// the store, which only keeps what serde_json wrote).
    pub fn with_json(mut self, key: &'static str, json: Vec<u8>) -> Reply {
        self.raw.push((key, json));
        self
    }

    /// A reply that is this response, not a JSON object (see [`Reply::stream`]).
    pub fn streamed(response: Response) -> Reply {
        Reply {
            stream: Some(response),
            ..Reply::default()
        }
    }

    /// The reply's JSON text: `code: 0`, the fields, then the raw fields.
    fn body(self) -> Vec<u8> {
        if self.raw.is_empty() {
            let mut body = Map::new();
            body.insert("code".into(), Value::from(0));
            body.extend(self.fields);
            return Value::Object(body).to_string().into_bytes();
        }
        let size: usize = self.raw.iter().map(|(_, v)| v.len() + 16).sum();
        let mut out = Vec::with_capacity(size + 256);
        out.extend_from_slice(b"{\"code\":0");
        let typed = self
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_string().into_bytes()));
        for (key, value) in typed.chain(self.raw) {
            out.push(b',');
            out.extend_from_slice(Value::from(key).to_string().as_bytes());
            out.push(b':');
            out.extend_from_slice(&value);
        }
        out.push(b'}');
        out
    }
}

/// The HTTP status for an error on a `/v1` route (other routes always answer 200).
fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::Session(_) | Error::Access(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Rate(_) => StatusCode::TOO_MANY_REQUESTS,
        // The events after the cursor are gone for good: start again without one.
        Error::CursorExpired(_) => StatusCode::GONE,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// Turns an error response made below the handlers — axum's extractor rejections (bad
/// path, form or JSON), body limits, anything in plain text or empty — into the
/// `{code, description}` JSON of every other error, keeping its status and its text.
/// JSON and HTML (the web desk's pages) pass unchanged.
pub async fn json_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let kind = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if kind.starts_with("application/json") || kind.starts_with("text/html") {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let description = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("The request failed")
            .to_string()
    } else {
        text
    };
    let code = match status {
        StatusCode::TOO_MANY_REQUESTS => "rate",
        s if s.is_server_error() => "internal",
        _ => "api",
    };
    let mut out = json_response(
        status,
        &serde_json::json!({"code": code, "description": description}),
    );
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
        header::CONTENT_RANGE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    json_bytes_response(status, body.to_string().into_bytes())
}

fn json_bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub fn error_body(err: &Error) -> Value {
    crate::ops::access::note_error(err.code());
    serde_json::json!({"code": err.code(), "description": err.description()})
}

/// Renders the outcome of a call. `v1` selects status codes by error class.
pub fn render(result: Result<Reply, Error>, v1: bool) -> Response {
    match result {
        Ok(mut reply) => {
            if let Some(response) = reply.stream.take() {
                return response;
            }
            let cookie = reply.set_cookie.take();
            let mut res = json_bytes_response(StatusCode::OK, reply.body());
            if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                res.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            res
        }
        Err(err) => {
            if let Error::Internal(detail) = &err {
                tracing::error!(error = %detail, "internal error");
            }
            let status = if v1 { status_of(&err) } else { StatusCode::OK };
            json_response(status, &error_body(&err))
        }
    }
}
