//! Ticket files over HTTP: streamed multipart uploads (`create_ticket`,
//! `upload_user_ticket_files`), `delete_ticket_file`, and downloads at `/files/PATH` and
//! `/api/app/file/v1?path=PATH` with HEAD, ETag / If-None-Match, If-Modified-Since and
//! single ranges.
//!
//! Uploads never hold a body in memory: each file part goes from the socket through multer
//! into the blob store chunk by chunk. The caller is authenticated from headers and query
//! (or the `json` part, when it comes first) before any file is stored.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use docket_core::auth::Principal;
use docket_core::files::display_name;
use docket_core::ids::{is_valid_id, new_id, IdKind};
use docket_core::model::FileRef;
use docket_core::service::{flag, required_str, UploadFailure};
use docket_core::Error;
use futures_util::StreamExt;
use serde_json::{Map, Value};

use super::{authenticate, params, reply, AppState, Auth, Call, Reply};

/// After a failed upload, up to this much of the rest of the body is read and dropped so
/// the client gets the error reply instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Whether a request goes the streaming way: multipart to a call that takes files.
pub fn is_streamed_upload(name: &str, headers: &HeaderMap) -> bool {
    matches!(name, "create_ticket" | "upload_user_ticket_files")
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

fn too_large(err: &Error) -> Response {
    let mut res = reply::json_response(StatusCode::PAYLOAD_TOO_LARGE, &reply::error_body(err));
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn upload_err(e: multer::Error, too_big: &AtomicBool) -> UploadFailure {
    match e {
        multer::Error::StreamSizeExceeded { limit }
        | multer::Error::FieldSizeExceeded { limit, .. } => {
            too_big.store(true, Ordering::Relaxed);
            UploadFailure {
                error: Error::File(format!(
                    "Upload request is larger than the limit of {limit} bytes (files.max_request_size)"
                )),
                too_large: true,
            }
        }
        other => UploadFailure::from(Error::Api(format!("Malformed multipart request: {other}"))),
    }
}

enum Target {
    Create { id: String, generated: bool },
    Upload { ticket: String, save: bool },
}

struct Upload {
    state: AppState,
    name: String,
    headers: HeaderMap,
    query: Map<String, Value>,
    json: Map<String, Value>,
    auth: Option<Auth>,
    target: Option<Target>,
    stored: Vec<FileRef>,
}

impl Upload {
    /// The JSON part and plain fields with the query string over them.
    fn params(&self) -> Map<String, Value> {
        let mut m = self.json.clone();
        for (k, v) in &self.query {
            m.insert(k.clone(), v.clone());
        }
        m
    }

    async fn authenticate(&mut self) -> Result<Option<Auth>, Error> {
        let call = Call {
            params: self.params(),
            peer: None,
            file_parts: 0,
            headers: self.headers.clone(),
            auth: None,
        };
        authenticate(&self.state.docket, &call, true)
            .await
            .transpose()
    }

    async fn who(&mut self) -> Result<Principal, Error> {
        if self.auth.is_none() {
            self.auth = self.authenticate().await?;
        }
        match &self.auth {
            Some(a) => Ok(a.principal().clone()),
            None => Err(Error::Session(
                "No Session ID or API Key could be found".into(),
            )),
        }
    }

    /// Decides where files go, once, before the first one is stored.
    async fn target(&mut self) -> Result<(), Error> {
        if self.target.is_some() {
            return Ok(());
        }
        let who = self.who().await?;
        let params = self.params();
        let target = if self.name == "create_ticket" {
            who.can_create()?;
            let (id, generated) = match params.get("id") {
                Some(Value::String(s)) if !s.is_empty() => (s.clone(), false),
                Some(Value::Number(n)) => (n.to_string(), false),
                _ => (new_id(IdKind::Ticket), true),
            };
            if !is_valid_id(&id) {
                return Err(Error::Ticket(
                    "Malformed ticket parameter: id (must match ^[a-z0-9_]{1,64}$)".into(),
                ));
            }
            Target::Create { id, generated }
        } else {
            who.can_edit()?;
            let ticket = required_str(&params, "ticket", Error::File).map_err(|_| {
                Error::File("Missing parameter: ticket (send the json part with ticket before the file parts)".into())
            })?;
            let save = flag(&params, "save")?;
            self.state.files.check_target(&who, &ticket, save).await?;
            Target::Upload { ticket, save }
        };
        self.target = Some(target);
        Ok(())
    }

    async fn run<'a>(
        &mut self,
        mp: &mut multer::Multipart<'a>,
        too_big: &Arc<AtomicBool>,
    ) -> Result<Reply, UploadFailure> {
        // Credentials in headers or the query string are checked before the body is read.
        if !self.query.contains_key("api_key") && self.headers.get("x-api-key").is_none() {
            self.auth = self.authenticate().await.ok().flatten();
        } else {
            self.auth = self.authenticate().await?;
        }
        let max_text = self.state.config.server.max_body_bytes;
        let settings = self.state.files.settings.clone();
        while let Some(mut field) = mp.next_field().await.map_err(|e| upload_err(e, too_big))? {
            let field_name = field.name().unwrap_or("").to_string();
            let Some(raw_name) = part_file_name(&field) else {
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| upload_err(e, too_big))? {
                    text.extend_from_slice(&chunk);
                    if text.len() > max_text {
                        return Err(Error::Api(format!(
                            "Multipart field {field_name:?} is larger than {max_text} bytes (server.max_body_bytes)"
                        ))
                        .into());
                    }
                }
                let text = String::from_utf8(text).map_err(|_| {
                    Error::Api(format!("Multipart field {field_name:?} is not valid UTF-8"))
                })?;
                self.add_field(&field_name, &text)?;
                continue;
            };
            if raw_name.is_empty() {
                // A form's empty file input: skip it if it really is empty.
                if field
                    .chunk()
                    .await
                    .map_err(|e| upload_err(e, too_big))?
                    .is_some_and(|c| !c.is_empty())
                {
                    return Err(Error::File("A file part has no file name".into()).into());
                }
                continue;
            }
            self.target().await?;
            if self.stored.len() >= settings.max_files {
                return Err(Error::File(format!(
                    "Too many files: at most {} per request (files.max_files)",
                    settings.max_files
                ))
                .into());
            }
            let (ticket, username) = match &self.target {
                Some(Target::Create { id, .. }) => (id.clone(), self.who().await?.username),
                Some(Target::Upload { ticket, .. }) => (ticket.clone(), self.who().await?.username),
                None => unreachable!("target decided above"),
            };
            let flag = too_big.clone();
            let mut body = field.map(move |r| r.map_err(|e| upload_err(e, &flag)));
            let file = self
                .state
                .files
                .store(&ticket, &username, &raw_name, &mut body, &media_type)
                .await?;
            self.stored.push(file);
        }
        self.finish().await.map_err(UploadFailure::from)
    }

    fn add_field(&mut self, name: &str, text: &str) -> Result<(), Error> {
        if name == "json" {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| Error::Api(format!("Malformed JSON in the json field: {e}")))?;
            let Value::Object(map) = value else {
                return Err(Error::Api(
                    "Malformed JSON: the json field must hold a JSON object".into(),
                ));
            };
            self.json.extend(map);
        } else if !self.json.contains_key(name) {
            self.json.insert(name.to_string(), params::typed(text));
        }
        // Parameters that decided where files went must not change afterwards.
        let params = self.params();
        let moved = match &self.target {
            Some(Target::Create {
                id,
                generated: true,
            }) => params.get("id").is_some_and(|v| v.as_str() != Some(id)),
            Some(Target::Create {
                id,
                generated: false,
            }) => params.get("id").and_then(Value::as_str) != Some(id),
            Some(Target::Upload { ticket, save }) => {
                params.get("ticket").and_then(Value::as_str) != Some(ticket)
                    || flag(&params, "save")? != *save
            }
            None => false,
        };
        if moved {
            return Err(Error::Api(
                "Send the json part before the file parts when it sets id, ticket or save".into(),
            ));
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<Reply, Error> {
        let files = self.state.files.clone();
        let who = self.who().await?;
        match self.target.take() {
            None if self.name == "create_ticket" => {
                let mut call = Call {
                    params: self.params(),
                    peer: None,
                    file_parts: 0,
                    headers: self.headers.clone(),
                    auth: None,
                };
                call.params.remove("api_key");
                call.auth = self.auth.clone().map(Ok);
                super::tickets::create_ticket(&self.state, &call).await
            }
            None => Err(Error::File(
                "No file upload data found in the request (send one or more file parts)".into(),
            )),
            Some(Target::Create { id, generated }) => {
                let mut params = self.params();
                params.remove("api_key");
                if generated {
                    params.insert("id".into(), Value::from(id.clone()));
                }
                super::automation::add_idempotency_header(&self.headers, &mut params)?;
                let can = who.can_create()?;
                // One transaction: the ticket with its files (or a dedupe hit adding them),
                // the file records made final, the outbox rows. On failure the staged files
                // stay in `self.stored` and are discarded with the request.
                let stored = self.stored.clone();
                let outcome = self
                    .state
                    .docket
                    .create_ticket_with_files(&who, &can, &params, stored)
                    .await?;
                let stored = std::mem::take(&mut self.stored);
                if outcome.replayed {
                    // The first request attached its files already; these copies go.
                    files.discard(&stored).await;
                }
                super::automation::created_reply(&outcome)
            }
            Some(Target::Upload { ticket, save }) => {
                let stored = std::mem::take(&mut self.stored);
                let reply_files = if save {
                    match files.attach(&who, &ticket, stored.clone()).await {
                        Ok(t) => t.files,
                        Err(e) => {
                            self.stored = stored;
                            return Err(e);
                        }
                    }
                } else {
                    stored.clone()
                };
                if let Err(e) = files.finalize(&stored, &ticket).await {
                    if save {
                        tracing::warn!(error = %e, "finalizing file records failed; the sweeper repairs them");
                    } else {
                        self.stored = stored;
                        return Err(e);
                    }
                }
                Ok(Reply::ok().with(
                    "files",
                    serde_json::to_value(&reply_files).map_err(Error::internal)?,
                ))
            }
        }
    }
}

/// The streaming path of `create_ticket` and `upload_user_ticket_files` with multipart bodies.
pub async fn upload(
    state: AppState,
    name: &str,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
    v1: bool,
) -> Response {
    let settings = state.files.settings.clone();
    let query = match uri
        .query()
        .filter(|q| !q.is_empty())
        .map(params::pairs_to_map)
        .transpose()
    {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => return reply::render(Err(e), v1),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > settings.max_request_size) {
        let err = Error::File(format!(
            "Upload request is larger than the limit of {} bytes (files.max_request_size)",
            settings.max_request_size
        ));
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let _ = axum::body::to_bytes(body, DRAIN_LIMIT as usize).await;
        }
        return too_large(&err);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = match multer::parse_boundary(&content_type) {
        Ok(b) => b,
        Err(e) => {
            return reply::render(
                Err(Error::Api(format!("Malformed multipart request: {e}"))),
                v1,
            )
        }
    };
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(settings.max_request_size));
    let mut mp =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    let too_big = Arc::new(AtomicBool::new(false));
    let mut up = Upload {
        state,
        name: name.to_string(),
        headers,
        query,
        json: Map::new(),
        auth: None,
        target: None,
        stored: Vec::new(),
    };
    let outcome = up.run(&mut mp, &too_big).await;
    match outcome {
        Ok(reply) => reply::render(Ok(reply), v1),
        Err(failure) => {
            up.state.files.discard(&up.stored).await;
            drain(&mut mp).await;
            if failure.too_large || too_big.load(Ordering::Relaxed) {
                too_large(&failure.error)
            } else {
                reply::render(Err(failure.error), v1)
            }
        }
    }
}

/// Reads and drops what is left of a failed upload (up to [`DRAIN_LIMIT`]).
async fn drain(mp: &mut multer::Multipart<'_>) {
    let mut drained = 0u64;
    while let Ok(Some(mut field)) = mp.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            drained += chunk.len() as u64;
            if drained > DRAIN_LIMIT {
                return;
            }
        }
    }
}

// `delete_ticket_file`: /api/app/delete_ticket_file/v1 — `id`, `path` → `{files}` remaining.
pub async fn delete_ticket_file(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let files = s.files.delete_file(who, &can, &c.params).await?;
    Ok(Reply::ok().with(
        "files",
        serde_json::to_value(&files).map_err(Error::internal)?,
    ))
}

// ---- media types ------------------------------------------------------------------------

/// The media type of an upload from its name and its first bytes. Content that looks like
/// markup is labelled as such whatever its name says, so it is never served inline.
pub fn media_type(name: &str, head: &[u8]) -> String {
    let by_name = mime_guess::from_path(name).first_raw();
    if looks_like_markup(head) {
        return match by_name {
            Some(t) if !is_inline_safe(t) && t != "text/plain" => t.to_string(),
            _ => "text/html".to_string(),
        };
    }
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    match by_name {
        Some(t) => t.to_string(),
        None if !head.is_empty() && std::str::from_utf8(&head[..head.len().min(1024)]).is_ok() => {
            "text/plain".into()
        }
        None => "application/octet-stream".into(),
    }
}

fn looks_like_markup(head: &[u8]) -> bool {
    let n = head.len().min(1024);
    let text = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    let start = text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    start.starts_with('<')
        && [
            "<html",
            "<!doctype",
            "<script",
            "<svg",
            "<?xml",
            "<body",
            "<iframe",
            "<head",
            "<object",
            "<embed",
        ]
        .iter()
        .any(|tag| text.contains(tag))
}

/// Types a browser shows without running anything; everything else is an attachment.
fn is_inline_safe(media: &str) -> bool {
    let base = media
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        base.as_str(),
        "image/png"
            | "image/jpeg"
            | "image/gif"
            | "image/webp"
            | "image/avif"
            | "image/bmp"
            | "image/x-icon"
            | "image/vnd.microsoft.icon"
            | "text/plain"
            | "application/pdf"
            | "application/json"
    ) || base.starts_with("audio/")
        || base.starts_with("video/")
}

// ---- downloads --------------------------------------------------------------------------

fn file_error(err: Error, method: &Method) -> Response {
    let status = match &err {
        Error::Session(_) | Error::Access(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Rate(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Internal(d) => {
            tracing::error!(error = %d, "internal error serving a file");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let mut res = reply::json_response(status, &reply::error_body(&err));
    res.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if method == Method::HEAD {
        *res.body_mut() = Body::empty();
    }
    res
}

/// `GET|HEAD /files/PATH`
pub async fn serve_files(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let raw = uri.path().strip_prefix("/files/").unwrap_or("").to_string();
    let query = match uri
        .query()
        .filter(|q| !q.is_empty())
        .map(params::pairs_to_map)
        .transpose()
    {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => return file_error(e, &method),
    };
    serve(state, method, headers, query, raw).await
}

/// `GET|HEAD /api/app/file/v1?path=PATH` (and without `/v1`).
pub async fn serve_api(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = match uri
        .query()
        .filter(|q| !q.is_empty())
        .map(params::pairs_to_map)
        .transpose()
    {
        Ok(q) => q.unwrap_or_default(),
        Err(e) => return file_error(e, &method),
    };
    let path = match query.get("path") {
        Some(Value::String(p)) => p.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return file_error(Error::File("Missing parameter: path".into()), &method),
    };
    serve(state, method, headers, query, path).await
}

async fn serve(
    state: AppState,
    method: Method,
    headers: HeaderMap,
    query: Map<String, Value>,
    raw_path: String,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let err = Error::Api(format!("Method {method} is not allowed; use GET or HEAD"));
        let mut res =
            reply::json_response(StatusCode::METHOD_NOT_ALLOWED, &reply::error_body(&err));
        res.headers_mut().insert(
            axum::http::header::ALLOW,
            axum::http::HeaderValue::from_static("GET, HEAD"),
        );
        return res;
    }
    match serve_inner(&state, &method, &headers, &query, &raw_path).await {
        Ok(res) => res,
        Err(e) => file_error(e, &method),
    }
}

async fn serve_inner(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query: &Map<String, Value>,
    raw_path: &str,
) -> Result<Response, Error> {
    let call = Call {
        params: query.clone(),
        peer: None,
        file_parts: 0,
        headers: headers.clone(),
        auth: None,
    };
    // A bad key is `api` on API calls; for a download every credential failure is a 403.
    let auth = authenticate(&state.docket, &call, false)
        .await
        .ok_or_else(|| Error::Session("No Session ID or API Key could be found".into()))?
        .map_err(|e| match e {
            Error::Api(m) => Error::Access(m),
            other => other,
        })?;
    let file = state.files.find(auth.principal(), raw_path).await?.file;

    let etag = format!("\"{}-{:x}\"", file.id, file.size);
    let modified = UNIX_EPOCH + Duration::from_secs(file.date.max(0) as u64);
    let last_modified = httpdate::fmt_http_date(modified);
    let media = if file.media_type.is_empty() {
        media_type(&file.filename, &[])
    } else {
        file.media_type.clone()
    };
    let download = match query.get("download") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => None,
        Some(Value::Number(n)) if n.as_i64() == Some(0) => None,
        Some(Value::String(s)) if s.is_empty() || s == "0" => None,
        Some(Value::String(s)) if s != "1" && s != "true" => Some(display_name(s)),
        Some(_) => Some(file.filename.clone()),
    };
    let attachment = download.is_some() || !is_inline_safe(&media);
    let name = download.unwrap_or_else(|| file.filename.clone());

    let mut res = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, &last_modified)
        .header(header::CACHE_CONTROL, "private, no-cache")
        .header("x-content-type-options", "nosniff")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        )
        .header(header::ACCEPT_RANGES, "bytes");

    // Conditional requests: If-None-Match wins over If-Modified-Since.
    let header_str = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let not_modified = match header_str(header::IF_NONE_MATCH) {
        Some(inm) => etag_matches(inm, &etag),
        None => header_str(header::IF_MODIFIED_SINCE)
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| modified <= since),
    };
    if not_modified {
        return res
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(Error::internal);
    }

    let size = file.size;
    let if_range_ok = match header_str(header::IF_RANGE) {
        None => true,
        Some(v) if v.starts_with('"') || v.starts_with("W/") => v == etag,
        Some(v) => httpdate::parse_http_date(v).is_ok_and(|d| d >= modified),
    };
    let range = match header_str(header::RANGE) {
        Some(r) if if_range_ok => match parse_range(r, size) {
            RangeAsk::Whole => None,
            RangeAsk::Part(a, b) => Some(a..b),
            RangeAsk::Unsatisfiable => {
                return res
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(if *method == Method::HEAD {
                        Body::empty()
                    } else {
                        Body::from(
                            reply::error_body(&Error::File(format!(
                                "Requested range is not satisfiable (the file has {size} bytes)"
                            )))
                            .to_string(),
                        )
                    })
                    .map_err(Error::internal);
            }
        },
        _ => None,
    };

    res = res
        .header(header::CONTENT_TYPE, &media)
        .header(header::CONTENT_DISPOSITION, disposition(attachment, &name));
    let (status, length) = match &range {
        Some(r) => {
            res = res.header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", r.start, r.end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, size),
    };
    res = res.status(status).header(header::CONTENT_LENGTH, length);
    if *method == Method::HEAD {
        if state.files.blobs.head(&file.path).await?.is_none() {
            return Err(Error::NotFound(format!("File not found: {}", file.path)));
        }
        return res.body(Body::empty()).map_err(Error::internal);
    }
    let read = match state.files.open(&file, range.clone()).await? {
        Some(r) => r,
        None => return Err(Error::NotFound(format!("File not found: {}", file.path))),
    };
    if read.range.end - read.range.start != length {
        return Err(Error::Internal(format!(
            "stored size of {} differs from its record",
            file.path
        )));
    }
    res.body(Body::from_stream(read.body))
        .map_err(Error::internal)
}

fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

enum RangeAsk {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range against a size; several ranges or another unit are served whole.
fn parse_range(header: &str, size: u64) -> RangeAsk {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            s.parse::<u64>().ok()
        } else {
            None
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, false) => match num(b) {
            Some(n) if n > 0 && size > 0 => RangeAsk::Part(size - n.min(size), size),
            _ => RangeAsk::Unsatisfiable,
        },
        (false, _) => {
            let Some(start) = num(a) else {
                return RangeAsk::Unsatisfiable;
            };
            let end = if b.is_empty() {
                Some(size.saturating_sub(1))
            } else {
                num(b)
            };
            match end {
                Some(end) if start <= end && start < size => {
                    RangeAsk::Part(start, end.min(size - 1) + 1)
                }
                _ => RangeAsk::Unsatisfiable,
            }
        }
        (true, true) => RangeAsk::Unsatisfiable,
    }
}

/// The `filename` of a part, read in full from its Content-Disposition: multer stops at
/// the first quote, so `filename="a\"b.txt"` (a quote escaped, as RFC 7578 clients send it)
/// became `a`. Browsers send a quote as `%22` (the HTML form encoding): decoded too.
fn part_file_name(field: &multer::Field<'_>) -> Option<String> {
    field
        .headers()
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| quoted_filename(v.as_bytes()))
        .or_else(|| field.file_name().map(str::to_string))
}

/// The quoted `filename="…"` parameter of a Content-Disposition value (backslash escapes
/// honoured), or None when there is none or it is not quoted.
fn quoted_filename(value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    let rest = loop {
        let at = lower[from..].find("filename")? + from;
        from = at + "filename".len();
        let before = text[..at].trim_end();
        if !(before.is_empty() || before.ends_with(';')) {
            continue; // inside another parameter's value
        }
        let Some(after_eq) = text[from..].trim_start().strip_prefix('=') else {
            continue; // `filename*=` and the like
        };
        break after_eq.trim_start().strip_prefix('"')?;
    };
    let mut name = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.extend(chars.next()),
            '"' => return Some(name.replace("%22", "\"")),
            c => name.push(c),
        }
    }
    None
}

/// `inline|attachment; filename="ascii"; filename*=UTF-8''percent-encoded`.
fn disposition(attachment: bool, name: &str) -> String {
    let kind = if attachment { "attachment" } else { "inline" };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random multipart bodies through the streaming upload reader, in random chunks, with
    /// and without credentials: broken boundaries and headers, fields over the text limit,
    /// file parts with odd names, bodies over the request limit. Each must end with a JSON
    /// reply (success, 4xx error or 413) within a time bound, never a panic or a hang.
    /// `DOCKET_FUZZ_ITERATIONS=N cargo test -p
    /// docket --bin docket fuzz_streamed` runs it longer (default 300).
    #[tokio::test]
    async fn fuzz_streamed_multipart_never_panics_or_hangs() {
        let iterations: u64 = std::env::var("DOCKET_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::config::Config::default();
        config.server.max_body_bytes = 2048;
        config.files.max_request_size = 256 * 1024;
        config.files.max_files = 3;
        let app = crate::app::App::open(&dir.path().join("data"), config)
            .await
            .unwrap();
        let system = Principal::system("fuzz");
        let (_, key) = app
            .docket
            .create_api_key(
                &system.can_admin().unwrap(),
                &serde_json::json!({"title": "fuzz", "privileges": {"admin": 1}})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .await
            .unwrap();
        let state = AppState {
            docket: app.docket.clone(),
            config: app.config.clone(),
            files: app.files.clone(),
            views: Arc::new(crate::web::Views::new(app.docket.rules.timezone.clone()).unwrap()),
            proxies: Default::default(),
        };
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const PIECES: &[&str] = &[
            "--XX\r\n",
            "--XX--\r\n",
            "--XX",
            "--X",
            "\r\n",
            "\r\n\r\n",
            "Content-Disposition: form-data; name=\"json\"\r\n\r\n",
            "Content-Disposition: form-data; name=\"json\"\r\n\r\n{\"subject\":\"fuzz\"}\r\n",
            "Content-Disposition: form-data; name=\"subject\"\r\n\r\nhello\r\n",
            "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n",
            "Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\n",
            "Content-Disposition: form-data; name=\"f\"; filename=\"a\\\"b.txt\"\r\n",
            "Content-Disposition: form-data; name=\"f\"; filename=\"../../x\"\r\n",
            "Content-Disposition: form-data\r\n",
            "Content-Disposition: form-data; name=\"ticket\"\r\n\r\nnope\r\n",
            "Content-Type: text/plain\r\n\r\n",
            "Content-Type: \u{0}\r\n",
            "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            "file body bytes",
            "{\"id\":\"t1\"}",
            "{",
            "\u{0}",
            "é",
        ];
        const VALID: &str = "--XX\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n\
            {\"subject\":\"fuzz\"}\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; \
            filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n";
        let started = std::time::Instant::now();
        let mut seen = std::collections::BTreeMap::<u16, u64>::new();
        for i in 0..iterations {
            let mut body = Vec::new();
            if next(3) != 0 {
                // A valid body (a json part and a file), then maybe cut or spliced.
                body.extend_from_slice(VALID.as_bytes());
                match next(4) {
                    0 => body.truncate(next(body.len())),
                    1 => {
                        let at = next(body.len());
                        let piece = PIECES[next(PIECES.len())].as_bytes();
                        body.splice(at..at, piece.iter().copied());
                    }
                    _ => {}
                }
            }
            for _ in 0..next(24) {
                body.extend_from_slice(PIECES[next(PIECES.len())].as_bytes());
                match next(40) {
                    // A field or file over a limit (the text limit, or the request limit).
                    0 => body.extend(std::iter::repeat_n(b'a', 3000)),
                    1 => body.extend(std::iter::repeat_n(b'z', 300 * 1024)),
                    _ => {}
                }
            }
            let mut chunks: Vec<Result<bytes::Bytes, std::io::Error>> = Vec::new();
            let mut rest = bytes::Bytes::from(body);
            while !rest.is_empty() {
                let n = (1 + next(4096)).min(rest.len());
                chunks.push(Ok(rest.split_to(n)));
            }
            if next(20) == 0 {
                // The client's connection breaks mid-body.
                chunks.push(Err(std::io::Error::other("reset")));
            }
            let mut headers = HeaderMap::new();
            let boundary = [
                "multipart/form-data; boundary=XX",
                "multipart/form-data",
                "multipart/form-data; boundary=\"\"",
            ][next(3)];
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(boundary));
            if next(4) != 0 {
                headers.insert("x-api-key", HeaderValue::from_str(&key).unwrap());
            }
            let name = ["create_ticket", "upload_user_ticket_files"][next(2)];
            let uri: Uri = [
                "/x",
                "/x?ticket=nope",
                "/x?id=Bad%20Id",
                "/x?save=1&ticket=t1",
            ][next(4)]
            .parse()
            .unwrap();
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            let one = std::time::Instant::now();
            let res = tokio::time::timeout(
                Duration::from_secs(10),
                upload(state.clone(), name, headers, uri, body, true),
            )
            .await
            .unwrap_or_else(|_| panic!("iteration {i} did not finish"));
            let status = res.status().as_u16();
            let reply = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            let reply: Value = serde_json::from_slice(&reply)
                .unwrap_or_else(|e| panic!("iteration {i}: not JSON ({e}): {reply:?}"));
            assert!(
                matches!(status, 200 | 400 | 403 | 404 | 413),
                "iteration {i}: HTTP {status} {reply}"
            );
            assert!(reply.get("code").is_some(), "iteration {i}: {reply}");
            *seen.entry(status).or_default() += 1;
            assert!(
                one.elapsed() < Duration::from_secs(5),
                "iteration {i}: {:?}",
                one.elapsed()
            );
        }
        eprintln!("{iterations} uploads in {:?}: {seen:?}", started.elapsed());
        // The inputs reach every outcome: stored uploads, refusals and the size limit.
        if iterations >= 300 {
            for status in [200, 400, 413] {
                assert!(seen.contains_key(&status), "no HTTP {status} in {seen:?}");
            }
        }
    }

    #[test]
    fn file_names_keep_their_quotes() {
        let name = |v: &str| quoted_filename(v.as_bytes());
        assert_eq!(
            name(r#"form-data; name="file"; filename="a\"b.txt""#).as_deref(),
            Some("a\"b.txt")
        );
        assert_eq!(
            name(r#"form-data; name="file"; filename="a%22b.txt""#).as_deref(),
            Some("a\"b.txt")
        );
        assert_eq!(
            name(r#"form-data; name="filename"; filename="x.txt""#).as_deref(),
            Some("x.txt")
        );
        assert_eq!(name(r#"form-data; filename*=UTF-8''x.txt"#), None);
        assert_eq!(name(r#"form-data; name="f""#), None);
        assert_eq!(name(r#"form-data; filename="open"#), None);
    }

    #[test]
    fn ranges() {
        let p = |h| match parse_range(h, 100) {
            RangeAsk::Whole => "whole".to_string(),
            RangeAsk::Part(a, b) => format!("{a}..{b}"),
            RangeAsk::Unsatisfiable => "416".to_string(),
        };
        assert_eq!(p("bytes=0-9"), "0..10");
        assert_eq!(p("bytes=90-"), "90..100");
        assert_eq!(p("bytes=-10"), "90..100");
        assert_eq!(p("bytes=-1000"), "0..100");
        assert_eq!(p("bytes=50-1000"), "50..100");
        assert_eq!(p("bytes=100-"), "416");
        assert_eq!(p("bytes=9-5"), "416");
        assert_eq!(p("bytes=-0"), "416");
        assert_eq!(p("bytes=x-y"), "416");
        assert_eq!(p("bytes=0-1,5-6"), "whole");
        assert_eq!(p("items=0-1"), "whole");
    }

    #[test]
    fn media_types() {
        assert_eq!(media_type("a.txt", b"hello"), "text/plain");
        assert_eq!(
            media_type("a.png", b"<html><script>alert(1)</script>"),
            "text/html"
        );
        assert_eq!(
            media_type("a.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            "image/svg+xml"
        );
        assert_eq!(
            media_type("x.bin", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "image/png"
        );
        assert!(
            !is_inline_safe("image/svg+xml")
                && !is_inline_safe("text/html")
                && is_inline_safe("image/png")
        );
        assert_eq!(
            disposition(true, "ré port.pdf"),
            "attachment; filename=\"r_ port.pdf\"; filename*=UTF-8''r%C3%A9%20port.pdf"
        );
    }
}
