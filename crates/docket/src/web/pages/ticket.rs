//! One ticket at `/tickets/NUM`: the page, and the forms that work it (edit fields,
//! comment, edit or delete a comment, delete the ticket). Every action is one service call
//! with the viewer's principal, exactly as the API makes it.

use std::collections::HashMap;

use axum::extract::{Path, RawForm, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use docket_core::auth::CanEdit;
use docket_core::model::{Change, Ticket};
use docket_core::rules::Choice;
use docket_core::Error;
use serde_json::{json, Map, Value};

use super::{all_of, choices, directory, one_of, redirect_with, service_error, split_list, Page};
use crate::web::session::Viewer;
use crate::wire::AppState;

/// Finds ticket `num` as the viewer may see it (a hidden ticket is a missing one).
async fn load(state: &AppState, viewer: &Viewer, num: &str) -> Result<Ticket, Error> {
    let n: i64 = num
        .trim_start_matches('#')
        .parse()
        .map_err(|_| Error::NotFound(format!("Ticket not found: {num}")))?;
    let mut params = Map::new();
    params.insert("num".into(), json!(n));
    state.docket.get_ticket(&viewer.principal, &params).await
}

fn title_of(choices: &[Choice], id: &str) -> String {
    choices
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.title.clone())
        .unwrap_or_else(|| id.to_string())
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) if s.is_empty() => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

/// One history entry in words ("changed status from Open to In Progress"), given the value
/// the same field had before (from the previous entry of that field, when there is one).
fn describe(
    c: &Change,
    before: Option<&Value>,
    state: &AppState,
    tz_day: &dyn Fn(i64) -> String,
) -> String {
    let rules = &state.docket.rules;
    let key = c.key.as_deref().unwrap_or("");
    let value = c.value.clone().unwrap_or(Value::Null);
    let label = |k: &str, v: &Value| match k {
        "status" => title_of(&rules.statuses, &shown(v)),
        "type" => title_of(&rules.types, &shown(v)),
        "priority" => title_of(&rules.priorities, &shown(v)),
        "due" => match v.as_i64() {
            Some(0) | None => "(none)".to_string(),
            Some(d) => tz_day(d),
        },
        _ => shown(v),
    };
    match key {
        docket_core::relations::HISTORY_KEY => {
            let action = value
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("changed");
            let kind = value.get("type").and_then(Value::as_str).unwrap_or("");
            let num = value.get("num").and_then(Value::as_i64).unwrap_or(0);
            let gone = value.get("reason").and_then(Value::as_str) == Some("deleted");
            format!(
                "{action} relation: {} #{num}{}",
                relation_title(kind).to_lowercase(),
                if gone {
                    " (the ticket was deleted)"
                } else {
                    ""
                }
            )
        }
        "created" => "created the ticket".into(),
        "body" => "edited the description".into(),
        "delete" => "deleted a history entry".into(),
        "assignees" | "cc" | "tags" | "notify" | "files" | "jobs" => {
            let now = as_list(&value);
            let Some(prev) = before.map(as_list) else {
                return if now.is_empty() {
                    format!("cleared {key}")
                } else {
                    format!("set {key} to {}", now.join(", "))
                };
            };
            let added: Vec<&String> = now.iter().filter(|x| !prev.contains(x)).collect();
            let removed: Vec<&String> = prev.iter().filter(|x| !now.contains(x)).collect();
            let mut parts = Vec::new();
            let noun = match key {
                "assignees" => "assignee",
                "tags" => "tag",
                "cc" => "cc",
                _ => key,
            };
            if !added.is_empty() {
                parts.push(format!(
                    "added {noun} {}",
                    added
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if !removed.is_empty() {
                parts.push(format!(
                    "removed {noun} {}",
                    removed
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if parts.is_empty() {
                format!(
                    "set {key} to {}",
                    if now.is_empty() {
                        "(none)".into()
                    } else {
                        now.join(", ")
                    }
                )
            } else {
                parts.join(" and ")
            }
        }
        "" => format!("added a {} entry", c.kind),
        k => {
            let name = k.replace('_', " ");
            match before {
                Some(prev) => format!(
                    "changed {name} from {} to {}",
                    label(k, prev),
                    label(k, &value)
                ),
                None => format!("set {name} to {}", label(k, &value)),
            }
        }
    }
}

/// The timeline: comments with their Markdown, other entries in words.
fn timeline(t: &Ticket, viewer: &Viewer, state: &AppState) -> Vec<Value> {
    let tz = state.docket.rules.timezone.clone();
    let tz_day = move |secs: i64| {
        jiff::Timestamp::from_second(secs)
            .map(|ts| ts.to_zoned(tz.clone()).strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let mut last: HashMap<String, Value> = HashMap::new();
    let may_edit = viewer.principal.has("edit_tickets");
    t.changes
        .iter()
        .map(|c| {
            if c.kind == "comment" {
                let own = c.username == viewer.user.username || viewer.principal.is_admin();
                json!({
                    "kind": "comment", "id": c.id, "username": c.username, "date": c.date,
                    "body": c.body.clone().unwrap_or_default(), "edited": c.edited.unwrap_or(0),
                    "can_edit": may_edit && own && !c.id.is_empty(), "internal": c.internal,
                })
            } else {
                let key = c.key.clone().unwrap_or_default();
                let text = describe(c, last.get(&key), state, &tz_day);
                if let Some(v) = &c.value {
                    last.insert(key, v.clone());
                }
                let text = if c.kind != "change" && c.body.as_deref().is_some_and(|b| !b.is_empty())
                {
                    format!("{text}: {}", c.body.clone().unwrap_or_default())
                } else {
                    text
                };
                json!({"kind": "event", "username": c.username, "date": c.date, "text": text})
            }
        })
        .collect()
}

fn ticket_json(t: &Ticket, state: &AppState) -> Value {
    let rules = &state.docket.rules;
    let now = jiff::Timestamp::now().as_second();
    let closed = ["resolved", "closed"].contains(&t.status.as_str());
    json!({
        "id": t.id, "num": t.num, "subject": t.subject, "body": t.body,
        "type": t.kind, "type_title": title_of(&rules.types, &t.kind),
        "status": t.status, "status_title": title_of(&rules.statuses, &t.status),
        "priority": t.priority, "priority_title": title_of(&rules.priorities, &t.priority),
        "category": t.category, "server": t.server, "username": t.username,
        "assignees": t.assignees, "cc": t.cc, "tags": t.tags,
        "due": t.due, "overdue": t.due > 0 && t.due < now && !closed,
        "created": t.created, "modified": t.modified,
        "files": t.files.iter().map(|f| json!({
            "filename": f.filename, "path": f.path, "size": f.size, "username": f.username,
            "date": f.date, "is_image": f.media_type.starts_with("image/") && f.media_type != "image/svg+xml",
        })).collect::<Vec<_>>(),
        "occurrences": t.occurrences,
        "relations": t.relations.iter().map(|r| json!({
            "type": r.kind, "type_title": relation_title(&r.kind), "num": r.num,
            "subject": r.subject, "status": r.status,
            "status_title": title_of(&rules.statuses, &r.status),
        })).collect::<Vec<_>>(),
    })
}

/// How the page names a relation type: what the other ticket is to this one.
fn relation_title(kind: &str) -> &'static str {
    use docket_core::relations as r;
    match kind {
        r::PARENT => "Parent",
        r::CHILD => "Child",
        r::BLOCKS => "Blocks",
        r::BLOCKED_BY => "Blocked by",
        r::DUPLICATE_OF => "Duplicate of",
        r::DUPLICATES => "Duplicated by",
        r::RELATES => "Related to",
        _ => "Related",
    }
}

/// The relation types offered by the page's form, with their titles.
fn relation_choices() -> Vec<Value> {
    docket_core::relations::TYPES
        .iter()
        .map(|k| json!({"id": k, "title": relation_title(k)}))
        .collect()
}

// GET /tickets/{num}
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(num): Path<String>,
) -> Response {
    // Read before the ticket: the page's live stream starts here, so a change committed
    // while the page is built is still delivered to it.
    let feed_at = state.docket.feed_head().await.ok();
    let t = match load(&state, &viewer, &num).await {
        Ok(t) => t,
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    };
    let dir = match directory(&state, &viewer).await {
        Ok(d) => d,
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    };
    let names = match state.docket.key_titles().await {
        Ok(n) => n,
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    };
    let title = format!("#{} {}", t.num, t.subject);
    Page::new(Some(&viewer), &headers, &title)
        .set("nav", "tickets")
        .set("t", ticket_json(&t, &state))
        .set("timeline", timeline(&t, &viewer, &state))
        .set("names", json!(names))
        .set("choices", choices(&state))
        .set("dir_lists", dir)
        .set("relation_types", relation_choices())
        .set("can_internal", viewer.principal.sees_internal())
        .set("feed_at", feed_at)
        .set("now", jiff::Timestamp::now().as_second())
        .render(&state, "ticket.html")
}

// GET /tickets/id/{id} — the old `#Tickets?id=ID` links land here, then on the number.
pub async fn by_id(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let mut params = Map::new();
    params.insert("id".into(), json!(id));
    match state.docket.get_ticket(&viewer.principal, &params).await {
        Ok(t) => {
            axum::response::Redirect::permanent(&format!("/tickets/{}", t.num)).into_response()
        }
        Err(e) => service_error(&state, &viewer, &headers, &e),
    }
}

/// The most Markdown one preview renders (the body limit of a ticket).
const PREVIEW_LIMIT: usize = 1024 * 1024;

// POST /preview — Markdown (the request body) → sanitized HTML, for the editor's Preview tab.
pub async fn preview(viewer: Viewer, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let token = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Err(r) = viewer.check_csrf(token) {
        return r;
    }
    if body.len() > PREVIEW_LIMIT {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "Too long to preview",
        )
            .into_response();
    }
    let text = String::from_utf8_lossy(&body);
    axum::response::Html(crate::web::markdown::to_safe_html(&text)).into_response()
}

/// An editing form posted on a ticket's page, checked: its fields, the ticket as the viewer
/// may see it, and the edit privilege. A ticket that is gone (or hidden) sends the browser
/// back to the list; a missing privilege back to the ticket.
async fn edit_form(
    state: &AppState,
    viewer: &Viewer,
    num: &str,
    body: &[u8],
) -> Result<(Vec<(String, String)>, Ticket, CanEdit), Response> {
    let pairs = viewer.signed_form(body)?;
    let ticket = load(state, viewer, num)
        .await
        .map_err(|e| redirect_with("/tickets", "error", &e.description()))?;
    let can = viewer
        .principal
        .can_edit()
        .map_err(|e| redirect_with(&format!("/tickets/{num}"), "error", &e.description()))?;
    Ok((pairs, ticket, can))
}

// POST /tickets/{num}/update — the fields of the edit and metadata forms that were sent.
pub async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(num): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, t, can) = match edit_form(&state, &viewer, &num, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let here = format!("/tickets/{num}");
    let mut params = Map::new();
    params.insert("id".into(), json!(t.id));
    for field in [
        "subject", "body", "type", "status", "priority", "category", "server",
    ] {
        if let Some(v) = one_of(&pairs, field) {
            params.insert(field.into(), json!(v));
        }
    }
    // Multi-value pickers send a marker so an emptied list is told from an absent one.
    for field in ["assignees", "tags"] {
        if one_of(&pairs, &format!("{field}_sent")).is_some() {
            params.insert(field.into(), json!(all_of(&pairs, field)));
        }
    }
    if let Some(cc) = one_of(&pairs, "cc") {
        params.insert("cc".into(), json!(split_list(cc)));
    }
    if let Some(due) = one_of(&pairs, "due") {
        params.insert("due".into(), json!(due.trim()));
    }
    match state
        .docket
        .update_ticket(&viewer.principal, &can, &params)
        .await
    {
        Ok(_) => redirect_with(&here, "ok", "Ticket updated"),
        Err(e) => redirect_with(&here, "error", &e.description()),
    }
}

// POST /tickets/{num}/comment
pub async fn comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(num): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, t, can) = match edit_form(&state, &viewer, &num, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let here = format!("/tickets/{num}");
    let text = one_of(&pairs, "body").unwrap_or("");
    let internal = one_of(&pairs, "internal") == Some("1");
    let mut params = Map::new();
    params.insert("id".into(), json!(t.id));
    params.insert(
        "change".into(),
        json!({"type": "comment", "body": text, "internal": internal}),
    );
    match state
        .docket
        .add_ticket_change(&viewer.principal, &can, &params)
        .await
    {
        Ok(_) => redirect_with(
            &format!("{here}#latest"),
            "ok",
            if internal {
                "Internal note added"
            } else {
                "Comment added"
            },
        ),
        Err(e) => redirect_with(&here, "error", &e.description()),
    }
}

// POST /tickets/{num}/comments/{change} — edit (`body`) or delete (`delete=1`) a comment.
pub async fn edit_comment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((num, change)): Path<(String, String)>,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, t, can) = match edit_form(&state, &viewer, &num, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let here = format!("/tickets/{num}");
    let delete = one_of(&pairs, "delete").is_some();
    let mut params = Map::new();
    params.insert("id".into(), json!(t.id));
    params.insert("change_id".into(), json!(change));
    if delete {
        params.insert("delete".into(), json!(true));
    } else {
        params.insert(
            "change".into(),
            json!({"body": one_of(&pairs, "body").unwrap_or("")}),
        );
    }
    match state
        .docket
        .update_ticket_change(&viewer.principal, &can, &params)
        .await
    {
        Ok(_) => redirect_with(
            &here,
            "ok",
            if delete {
                "Comment deleted"
            } else {
                "Comment updated"
            },
        ),
        Err(e) => redirect_with(&here, "error", &e.description()),
    }
}

// POST /tickets/{num}/relations — add a relation (`type`, `other` = a ticket number), or
// remove one (`remove=1`).
pub async fn relation(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(num): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, t, can) = match edit_form(&state, &viewer, &num, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let here = format!("/tickets/{num}");
    let other = one_of(&pairs, "other")
        .unwrap_or("")
        .trim()
        .trim_start_matches('#');
    let Ok(other) = other.parse::<i64>() else {
        return redirect_with(&here, "error", "Enter the other ticket's number, e.g. 42");
    };
    let remove = one_of(&pairs, "remove").is_some();
    let mut params = Map::new();
    params.insert("id".into(), json!(t.id));
    params.insert("type".into(), json!(one_of(&pairs, "type").unwrap_or("")));
    params.insert("other_num".into(), json!(other));
    let docket = &state.docket;
    let done = if remove {
        docket
            .remove_ticket_relation(&viewer.principal, &can, &params)
            .await
    } else {
        docket
            .add_ticket_relation(&viewer.principal, &can, &params)
            .await
    };
    match done {
        Ok(_) if remove => redirect_with(&here, "ok", "Relation removed"),
        Ok(_) => redirect_with(&here, "ok", "Relation added"),
        Err(e) => redirect_with(&here, "error", &e.description()),
    }
}

// POST /tickets/{num}/delete — needs the confirmation box ticked.
pub async fn delete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(num): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match viewer.signed_form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let here = format!("/tickets/{num}");
    if one_of(&pairs, "confirm") != Some("yes") {
        return redirect_with(
            &here,
            "error",
            "Tick the confirmation box to delete the ticket",
        );
    }
    let t = match load(&state, &viewer, &num).await {
        Ok(t) => t,
        Err(e) => return redirect_with("/tickets", "error", &e.description()),
    };
    let can = match viewer.principal.can_delete() {
        Ok(c) => c,
        Err(e) => return redirect_with(&here, "error", &e.description()),
    };
    let mut params = Map::new();
    params.insert("id".into(), json!(t.id));
    match state
        .docket
        .delete_ticket(&viewer.principal, &can, &params)
        .await
    {
        Ok(_) => redirect_with("/tickets", "ok", &format!("Ticket #{} deleted", t.num)),
        Err(e) => redirect_with(&here, "error", &e.description()),
    }
}
