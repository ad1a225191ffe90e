//! The new-ticket form. Without files it posts here; with files the page script sends the
//! same fields to the API's streaming `create_ticket`, so uploads never pass through memory.

use axum::extract::{RawForm, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Map, Value};

use super::{all_of, choices, directory, one_of, redirect_with, service_error, split_list, Page};
use crate::web::session::Viewer;
use crate::wire::AppState;

// GET /tickets/new
pub async fn form(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap) -> Response {
    if let Err(e) = viewer.principal.can_create() {
        return service_error(&state, &viewer, &headers, &e);
    }
    let dir = match directory(&state, &viewer).await {
        Ok(d) => d,
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    };
    let tpl = &state.docket.rules.template;
    // The template's due ("3 days", a date, seconds) as the date the picker shows.
    let tz = state.docket.rules.timezone.clone();
    let due = tpl
        .due
        .as_ref()
        .and_then(|v| docket_core::due::parse_due(v, jiff::Timestamp::now(), &tz).ok())
        .filter(|secs| *secs > 0)
        .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let defaults = json!({
        "type": tpl.kind.clone().unwrap_or_else(|| state.docket.rules.types.first().map(|t| t.id.clone()).unwrap_or_default()),
        "status": tpl.status.clone().unwrap_or_else(|| "open".into()),
        "priority": tpl.priority.clone().unwrap_or_else(|| state.docket.rules.default_priority.clone()),
        "assignees": tpl.assignees.clone().unwrap_or_default(),
        "cc": tpl.cc.clone().unwrap_or_default().join(", "),
        "tags": tpl.tags.clone().unwrap_or_default(),
        "due": due,
    });
    Page::new(Some(&viewer), &headers, "New ticket")
        .set("nav", "new")
        .set("d", defaults)
        .set("choices", choices(&state))
        .set("dir_lists", dir)
        .render(&state, "new_ticket.html")
}

/// The form again, with what was typed and what was wrong with it.
async fn form_again(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    error: &str,
) -> Response {
    let dir = match directory(state, viewer).await {
        Ok(d) => d,
        Err(e) => return service_error(state, viewer, headers, &e),
    };
    let typed = json!({
        "subject": one_of(pairs, "subject").unwrap_or(""),
        "body": one_of(pairs, "body").unwrap_or(""),
        "type": one_of(pairs, "type").unwrap_or(""),
        "status": one_of(pairs, "status").unwrap_or(""),
        "priority": one_of(pairs, "priority").unwrap_or(""),
        "category": one_of(pairs, "category").unwrap_or(""),
        "assignees": all_of(pairs, "assignees"),
        "tags": all_of(pairs, "tags"),
        "cc": one_of(pairs, "cc").unwrap_or(""),
        "due": one_of(pairs, "due").unwrap_or(""),
    });
    Page::new(Some(viewer), headers, "New ticket")
        .set("nav", "new")
        .set("d", typed)
        .set("error", error)
        .set("choices", choices(state))
        .set("dir_lists", dir)
        .render_status(
            state,
            axum::http::StatusCode::BAD_REQUEST,
            "new_ticket.html",
        )
}

/// The create parameters of a submitted form (the same names the API takes).
pub fn create_params(pairs: &[(String, String)]) -> Map<String, Value> {
    let mut params = Map::new();
    for field in [
        "subject", "body", "type", "status", "priority", "category", "server",
    ] {
        if let Some(v) = one_of(pairs, field).filter(|v| !v.trim().is_empty()) {
            params.insert(field.into(), json!(v));
        }
    }
    params.insert("assignees".into(), json!(all_of(pairs, "assignees")));
    params.insert("tags".into(), json!(all_of(pairs, "tags")));
    params.insert(
        "cc".into(),
        json!(split_list(one_of(pairs, "cc").unwrap_or(""))),
    );
    if let Some(due) = one_of(pairs, "due").filter(|v| !v.trim().is_empty()) {
        params.insert("due".into(), json!(due.trim()));
    }
    params
}

// POST /tickets/new
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match viewer.signed_form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let can = match viewer.principal.can_create() {
        Ok(c) => c,
        Err(e) => return redirect_with("/tickets", "error", &e.description()),
    };
    let params = create_params(&pairs);
    match state
        .docket
        .create_ticket(&viewer.principal, &can, &params)
        .await
    {
        Ok(t) => redirect_with(
            &format!("/tickets/{}", t.num),
            "ok",
            &format!("Ticket #{} created", t.num),
        ),
        Err(e) => form_again(&state, &viewer, &headers, &pairs, &e.description()).await,
    }
}
