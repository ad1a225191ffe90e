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
    pub set_cookie: Option<String>,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::default()
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Reply {
        self.fields.insert(key.to_string(), value.into());
        self
    }
}

/// The HTTP status for an error on a `/v1` route (other routes always answer 200).
fn status_of(err: &Error) -> StatusCode {
    match err {
        Error::Session(_) | Error::Access(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Rate(_) => StatusCode::TOO_MANY_REQUESTS,
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
    let mut res = (status, body.to_string()).into_response();
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
        Ok(reply) => {
            let mut body = Map::new();
            body.insert("code".into(), Value::from(0));
            body.extend(reply.fields);
            let mut res = json_response(StatusCode::OK, &Value::Object(body));
            if let Some(cookie) = reply
                .set_cookie
                .and_then(|c| HeaderValue::from_str(&c).ok())
            {
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
