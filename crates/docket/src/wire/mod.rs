//! The HTTP wire layer: xyOps routes and conventions (params merging, credentials,
//! `code`/`description` replies). It knows the JSON shapes and nothing about SQL.

mod accounts;
mod automation;
pub mod client_ip;
mod directory;
mod export;
mod feed;
pub mod files;
mod notify;
pub mod params;
pub mod reply;
pub mod spec;
mod stored_json;
mod tickets;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use docket_core::auth::Principal;
use docket_core::{Docket, Error};
use serde_json::{Map, Value};

use crate::config::Config;
use reply::{render, Reply};

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub docket: Docket,
    pub config: Arc<Config>,
    pub files: docket_core::service::Files,
    /// The web desk's compiled page templates.
    pub views: Arc<crate::web::Views>,
    /// `server.trusted_proxies`, parsed.
    pub proxies: Arc<client_ip::TrustedProxies>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/{ns}/{name}", any(api_call))
        .route("/api/{ns}/{name}/v1", any(api_call_v1))
        .route("/api/app/file", any(files::serve_api))
        .route("/api/app/file/v1", any(files::serve_api))
        .route("/api/app/stream_ticket_events", any(feed::stream))
        .route("/api/app/stream_ticket_events/v1", any(feed::stream))
        .route("/files/{*path}", any(files::serve_files))
        .merge(crate::web::routes())
        .merge(crate::ops::routes())
        .fallback(unknown_route)
        // Errors made below the handlers (extractor rejections, body limits) as JSON too.
        .layer(axum::middleware::map_response(reply::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            head_limits,
        ))
        // Compressed when the client accepts it (event streams and images are left alone).
        .layer(tower_http::compression::CompressionLayer::new())
        // Outermost, so it sees the bytes as sent (compressed) and every answer, 404s too.
        .layer(axum::middleware::from_fn(crate::ops::access::layer))
        .with_state(state)
}

/// Longest request URI (path and query) accepted; long parameters belong in a POST body.
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// A URI over [`MAX_URI_BYTES`] is answered 414 and headers over `server.max_header_bytes`
/// 431, with the JSON error every other failure has (hyper itself would answer these with
/// an empty body; its buffer is sized so that such requests reach this check).
async fn head_limits(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        let err = Error::Api(format!(
            "Request URI is {uri} bytes, more than the limit of {MAX_URI_BYTES}; send long \
             parameters in a POST body"
        ));
        return reply::json_response(StatusCode::URI_TOO_LONG, &reply::error_body(&err));
    }
    let limit = state.config.server.max_header_bytes;
    let head: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if head > limit {
        let err = Error::Api(format!(
            "Request headers are {head} bytes, more than the limit of {limit} bytes \
             (server.max_header_bytes)"
        ));
        return reply::json_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &reply::error_body(&err),
        );
    }
    next.run(req).await
}

/// One API request after parsing: its parameters and who sent it.
pub struct Call {
    pub params: Map<String, Value>,
    /// The client's IP address (login throttling), when the server loop gave one.
    pub peer: Option<std::net::IpAddr>,
    pub file_parts: usize,
    pub headers: HeaderMap,
    auth: Option<Result<Auth, Error>>,
}

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Auth {
    ApiKey(Principal),
    Session {
        principal: Principal,
        session_id: String,
        // Boxed: a session carries whole records, an API key only its principal.
        user: Box<docket_core::model::User>,
        session: Box<docket_core::model::Session>,
    },
}

impl Auth {
    pub fn principal(&self) -> &Principal {
        match self {
            Auth::ApiKey(p) => p,
            Auth::Session { principal, .. } => principal,
        }
    }
}

impl Call {
    /// The authenticated caller, or the reason there is none.
    pub fn auth(&self) -> Result<&Auth, Error> {
        match &self.auth {
            Some(Ok(a)) => Ok(a),
            Some(Err(e)) => Err(clone_err(e)),
            None => Err(Error::Session(
                "No Session ID or API Key could be found".into(),
            )),
        }
    }

    pub fn who(&self) -> Result<&Principal, Error> {
        self.auth().map(Auth::principal)
    }
}

fn clone_err(e: &Error) -> Error {
    match e {
        Error::Session(m) => Error::Session(m.clone()),
        Error::Api(m) => Error::Api(m.clone()),
        Error::Rate(m) => Error::Rate(m.clone()),
        Error::Access(m) => Error::Access(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

/// The client's IP address: the TCP peer the accept loop (`crate::server`) recorded as
/// `ConnectInfo`, or, when that peer is one of `server.trusted_proxies`, the client its
/// `X-Forwarded-For` names (see `client_ip`). Otherwise never read from headers
/// (`X-Forwarded-For` is the client's to forge).
#[derive(Debug, Clone, Copy, Default)]
pub struct Peer(pub Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Peer(state.proxies.client(peer, &parts.headers)))
    }
}

async fn api_call(
    state: State<AppState>,
    path: Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    peer: Peer,
    uri: Uri,
    body: Body,
) -> Response {
    handle(state, path, method, headers, peer, uri, body, false).await
}

async fn api_call_v1(
    state: State<AppState>,
    path: Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    peer: Peer,
    uri: Uri,
    body: Body,
) -> Response {
    handle(state, path, method, headers, peer, uri, body, true).await
}

async fn unknown_route(uri: Uri) -> Response {
    let err = Error::Api(format!("Unknown route: {}", uri.path()));
    reply::json_response(StatusCode::NOT_FOUND, &reply::error_body(&err))
}

#[allow(clippy::too_many_arguments, reason = "the extractors of one request")]
async fn handle(
    State(state): State<AppState>,
    Path((ns, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    Peer(peer): Peer,
    uri: Uri,
    body: Body,
    v1: bool,
) -> Response {
    let Some(spec) = spec::find(&ns, &name) else {
        let err = Error::Api(format!("Unknown API call: {ns}/{name}"));
        return reply::json_response(StatusCode::NOT_FOUND, &reply::error_body(&err));
    };
    if !METHODS.contains(&method) {
        let err = Error::Api(format!("Method {method} is not allowed; use GET or POST"));
        let mut res =
            reply::json_response(StatusCode::METHOD_NOT_ALLOWED, &reply::error_body(&err));
        // RFC 9110: a 405 names the methods that are allowed.
        res.headers_mut().insert(
            header::ALLOW,
            header::HeaderValue::from_static("GET, POST, HEAD"),
        );
        return res;
    }
    if files::is_streamed_upload(&name, &headers) {
        return files::upload(state, &name, headers, uri, body, v1).await;
    }
    let limit = state.config.server.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let err = Error::Api(format!(
                "Request body is larger than the limit of {limit} bytes (server.max_body_bytes)"
            ));
            return reply::json_response(StatusCode::PAYLOAD_TOO_LARGE, &reply::error_body(&err));
        }
    };
    let parsed = match params::parse(&headers, uri.query(), bytes).await {
        Ok(p) => p,
        Err(e) => return render(Err(e), v1),
    };
    let mut call = Call {
        params: parsed.map,
        peer,
        file_parts: parsed.file_parts,
        headers,
        auth: None,
    };
    call.auth = authenticate(&state.docket, &call, !spec.read_only).await;
    call.params.remove("api_key");
    // Parameters are checked once the caller is known, so a request without (good)
    // credentials is told that first, as before.
    if spec.access == spec::Access::Open || matches!(call.auth, Some(Ok(_))) {
        if let Err(e) = spec.prepare(&mut call.params, &parsed.from_text) {
            return render(Err(e), v1);
        }
    }
    let result = (spec.run)(state, call).await;
    render(result, v1)
}

/// The methods every call takes (the OpenAPI document describes each).
pub const METHODS: [Method; 3] = [Method::POST, Method::GET, Method::HEAD];

/// Whether `/api/NS/NAME` names a call (the access log's and metrics' call label).
pub fn is_call(ns: &str, name: &str) -> bool {
    spec::find(ns, name).is_some()
}

type CallFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, Error>> + Send>>;
/// A call's handler, as the call table (`spec.rs`) holds it.
type CallFn = fn(AppState, Call) -> CallFuture;

/// Finds the caller's credentials: an API key (header, query or body), else a session
/// (header, or cookie plus CSRF token for calls that change state).
async fn authenticate(
    docket: &Docket,
    call: &Call,
    changes_state: bool,
) -> Option<Result<Auth, Error>> {
    let header = |name: &str| {
        call.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let key =
        header("x-api-key")
            .map(str::to_string)
            .or_else(|| match call.params.get("api_key") {
                Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
                _ => None,
            });
    if let Some(key) = key {
        let auth = docket.authenticate_key(&key).await.map(Auth::ApiKey);
        if let Ok(a) = &auth {
            crate::ops::access::note_caller("key", &a.principal().username);
        }
        return Some(auth);
    }
    let (session_id, by_cookie) = match header("x-session-id") {
        Some(id) => (id.to_string(), false),
        None => (cookie(&call.headers, "session_id")?, true),
    };
    let result = docket.authenticate_session(&session_id).await.and_then(|(user, session, principal)| {
        if by_cookie && changes_state && header("x-csrf-token") != Some(session.csrf_token.as_str()) {
            return Err(Error::Session(
                "Missing or wrong X-CSRF-Token header (required with cookie sessions for calls that change data)".into(),
            ));
        }
        Ok(Auth::Session { principal, session_id, user: Box::new(user), session: Box::new(session) })
    });
    if let Ok(a) = &result {
        crate::ops::access::note_caller("session", &a.principal().username);
    }
    Some(result)
}

/// The value of cookie `name`, if the request carries one (also used by the web desk).
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

// `ping`: GET/POST /api/app/ping/v1
async fn ping(_s: &AppState, _c: &Call) -> Result<Reply, Error> {
    Ok(Reply::ok())
}

// `echo`: GET/POST /api/app/echo/v1 — returns the parameters (secrets removed).
async fn echo(_s: &AppState, c: &Call) -> Result<Reply, Error> {
    let mut params = c.params.clone();
    for secret in ["password", "session_id"] {
        params.remove(secret);
    }
    Ok(Reply::ok().with("params", Value::Object(params)))
}
