//! The pages of the web desk, one module per area. Shared here: the context every page
//! starts from, one-time notices carried across a redirect ("flash"), and error pages.

pub mod account;
pub mod admin;
pub mod auth;
pub mod help;
pub mod new_ticket;
pub mod ticket;
pub mod tickets;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use docket_core::Error;
use serde_json::{json, Map, Value};

use super::session::{cookie, Viewer};
use crate::wire::AppState;

/// A notice for the next page: `ok` (green) or `error` (red), and its text.
const FLASH_COOKIE: &str = "docket_flash";

/// Redirects (303, so the browser GETs) and leaves a notice for the page it lands on.
pub fn redirect_with(to: &str, kind: &str, message: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    let value = serde_urlencoded::to_string([("k", kind), ("m", message)]).unwrap_or_default();
    // URL-encoded (`;` and `,` included), so it never breaks the header; HttpOnly.
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{FLASH_COOKIE}={value}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax"
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// The notice left by the previous request, if any.
fn take_flash(headers: &HeaderMap) -> Option<Value> {
    let raw = cookie(headers, FLASH_COOKIE)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&raw).ok()?;
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let kind = match get("k")?.as_str() {
        "error" => "error",
        _ => "ok",
    };
    Some(json!({"kind": kind, "message": get("m")?}))
}

/// A page about to be rendered: its context (viewer, notice, settings) and whether a
/// notice was shown (and so must be cleared).
pub struct Page {
    pub ctx: Map<String, Value>,
    shown_flash: bool,
}

impl Page {
    pub fn new(viewer: Option<&Viewer>, headers: &HeaderMap, title: &str) -> Page {
        let mut ctx = Map::new();
        ctx.insert("title".into(), json!(title));
        if let Some(v) = viewer {
            ctx.insert("me".into(), v.context());
        }
        let flash = take_flash(headers);
        let shown_flash = flash.is_some();
        if let Some(f) = flash {
            ctx.insert("flash".into(), f);
        }
        let theme = match cookie(headers, "docket_theme").as_deref() {
            Some("dark") => "dark",
            Some("light") => "light",
            _ => "auto",
        };
        ctx.insert("theme".into(), json!(theme));
        Page { ctx, shown_flash }
    }

    pub fn set(mut self, key: &str, value: impl Into<Value>) -> Page {
        self.ctx.insert(key.to_string(), value.into());
        self
    }

    pub fn render(self, state: &AppState, template: &str) -> Response {
        self.render_status(state, StatusCode::OK, template)
    }

    pub fn render_status(self, state: &AppState, status: StatusCode, template: &str) -> Response {
        let mut response = state
            .views
            .page_with_status(status, template, &Value::Object(self.ctx));
        if self.shown_flash {
            response.headers_mut().append(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "docket_flash=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax",
                ),
            );
        }
        response
    }
}

/// A plain error page for failures before a viewer or the templates are at hand.
pub fn error_page(status: StatusCode, message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Docket</title><link rel=\"stylesheet\" href=\"/assets/app.css?v={}\"></head>\
         <body><main id=\"main\" class=\"narrow\"><h1>{}</h1><p>{escaped}</p><p><a href=\"/tickets\">Back to tickets</a></p></main></body></html>",
        status.canonical_reason().unwrap_or("Error"),
        super::assets::version(),
        status.canonical_reason().unwrap_or("Error"),
    );
    (status, Html(html)).into_response()
}

/// The page for a failed service call: what went wrong, in the service's own words.
pub fn service_error(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    err: &Error,
) -> Response {
    let status = match err {
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Access(_) => StatusCode::FORBIDDEN,
        Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    Page::new(
        Some(viewer),
        headers,
        status.canonical_reason().unwrap_or("Error"),
    )
    .set("status", status.as_u16())
    .set("message", err.description())
    .render_status(state, status, "error.html")
}

/// The configured types, statuses and priorities, for pickers and labels.
pub fn choices(state: &AppState) -> Value {
    json!({
        "types": state.docket.rules.types,
        "statuses": state.docket.rules.statuses,
        "priorities": state.docket.rules.priorities,
    })
}

/// A form's repeated field (`<select multiple>`, checkboxes) from url-encoded pairs.
pub fn all_of(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// A form's single field.
pub fn one_of<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A comma-separated list field ("a, b, c") as items.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The people and tags pickers offer.
pub async fn directory(state: &AppState, viewer: &Viewer) -> Result<Value, Error> {
    let people = state.docket.people().await?;
    let tags = state
        .docket
        .list_directory(&docket_core::service::TAGS)
        .await?;
    let categories = state
        .docket
        .list_directory(&docket_core::service::CATEGORIES)
        .await?
        .into_iter()
        .filter(|c| {
            c.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| viewer.principal.sees_category(id))
        })
        .collect::<Vec<_>>();
    Ok(json!({"people": people, "tags": tags, "categories": categories}))
}
