//! The ticket list: one query box speaking the whole search language, built-in views,
//! filters that write into the query, sortable columns, paging and bulk actions.

use axum::extract::{Query, RawForm, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use docket_core::model::Ticket;
use docket_core::service::SearchParams;
use docket_core::store::SortField;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{all_of, choices, directory, one_of, redirect_with, service_error, Page};
use crate::web::session::Viewer;
use crate::wire::AppState;

/// Rows per page of the list.
pub const PAGE_SIZE: u64 = 50;

/// The built-in views of the sidebar: (id, label, query for `me`, default sort).
fn builtin_views(
    me: &str,
    overdue: &str,
) -> Vec<(&'static str, &'static str, String, &'static str)> {
    vec![
        ("all", "All tickets", String::new(), "num"),
        (
            "mine",
            "My open tickets",
            format!("assignees:{me} -status:resolved -status:closed -status:draft"),
            "modified",
        ),
        ("created", "Created by me", format!("username:{me}"), "num"),
        (
            "drafts",
            "My drafts",
            format!("username:{me} status:draft"),
            "modified",
        ),
        ("overdue", "Overdue", overdue.to_string(), "due"),
        (
            "unassigned",
            "Unassigned",
            "assignees:_none -status:resolved -status:closed".to_string(),
            "num",
        ),
        ("recent", "Recently updated", String::new(), "modified"),
    ]
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    view: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<u64>,
    // Filters: each one is written into `q` and the page redirects to the result.
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    assignee: Option<String>,
    tag: Option<String>,
    category: Option<String>,
    due: Option<String>,
}

// GET /
pub async fn home() -> Redirect {
    Redirect::to("/tickets")
}

/// Adds `field:value` to a query (quoting values with spaces), replacing nothing: the query
/// stays the one source of truth for what is shown.
fn add_term(query: &str, field: &str, value: &str) -> String {
    let value = value.trim();
    if value.is_empty() {
        return query.to_string();
    }
    let term = if value.contains(char::is_whitespace) {
        format!("{field}:\"{}\"", value.replace('"', ""))
    } else {
        format!("{field}:{value}")
    };
    let q = query.trim();
    if q.is_empty() || q == "*" {
        term
    } else if q.starts_with('(') {
        // PxQL cannot take a simple term; the filter is ignored rather than breaking it.
        q.to_string()
    } else {
        format!("{q} {term}")
    }
}

/// Whether a column sorts ascending on its first click: text (A first), lists (unassigned /
/// untagged first, then A) and due dates (earliest first); numbers and times go newest first.
fn ascending_first(field: &str) -> bool {
    matches!(field, "subject" | "due" | "assignees" | "tags")
}

/// The URL of the list for a query, sort and page.
fn list_url(q: &str, view: &str, sort: &str, dir: &str, page: u64) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !q.is_empty() {
        pairs.push(("q", q.to_string()));
    }
    if !view.is_empty() {
        pairs.push(("view", view.to_string()));
    }
    if !sort.is_empty() {
        pairs.push(("sort", sort.to_string()));
        pairs.push(("dir", dir.to_string()));
    }
    if page > 1 {
        pairs.push(("page", page.to_string()));
    }
    let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if qs.is_empty() {
        "/tickets".to_string()
    } else {
        format!("/tickets?{qs}")
    }
}

/// A row of the list, in the shape the template reads.
fn row(t: &Ticket) -> Value {
    json!({
        "id": t.id, "num": t.num, "subject": t.subject, "type": t.kind, "status": t.status,
        "priority": t.priority, "assignees": t.assignees, "tags": t.tags, "due": t.due, "modified": t.modified,
        "created": t.created, "category": t.category, "username": t.username,
    })
}

/// A query error with the part of the query it points at, for highlighting.
fn query_error(q: &str, err: &docket_query::QueryError) -> Value {
    let (mut start, mut end) = (err.span.start.min(q.len()), err.span.end.min(q.len()));
    while !q.is_char_boundary(start) {
        start -= 1;
    }
    while !q.is_char_boundary(end) {
        end += 1;
    }
    let end = end.max(start);
    json!({
        "message": err.message,
        "hint": err.hint,
        "before": &q[..start],
        "at": if start == end { " " } else { &q[start..end] },
        "after": &q[end..],
    })
}

// GET /tickets
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(lq): Query<ListQuery>,
) -> Response {
    let me = viewer.user.username.clone();
    let views = builtin_views(&me, &state.config.tickets.overdue_query);
    let mut q = lq.q.clone().unwrap_or_default();
    let view = lq.view.clone().unwrap_or_default();
    let chosen = views.iter().find(|v| v.0 == view);
    if lq.q.is_none() {
        if let Some(v) = chosen {
            q = v.2.clone();
        }
    }
    // Filters from the filter bar become part of the query, then the page reloads on it.
    let filters = [
        ("type", &lq.kind),
        ("status", &lq.status),
        ("priority", &lq.priority),
        ("assignees", &lq.assignee),
        ("tags", &lq.tag),
        ("category", &lq.category),
        ("due", &lq.due),
    ];
    if filters
        .iter()
        .any(|(_, v)| v.as_deref().is_some_and(|v| !v.trim().is_empty()))
    {
        let mut merged = q.clone();
        for (field, value) in filters {
            if let Some(v) = value {
                merged = add_term(&merged, field, v);
            }
        }
        let sort = lq.sort.clone().unwrap_or_default();
        let dir = lq.dir.clone().unwrap_or_else(|| "desc".into());
        return Redirect::to(&list_url(&merged, "", &sort, &dir, 1)).into_response();
    }

    let default_sort = chosen.map(|v| v.3).unwrap_or("num");
    let sort = lq
        .sort
        .clone()
        .filter(|s| SortField::parse(s).is_some())
        .unwrap_or_else(|| default_sort.to_string());
    let dir = match lq.dir.as_deref() {
        Some("asc") => "asc",
        Some("desc") => "desc",
        _ if ascending_first(&sort) => "asc",
        _ => "desc",
    };
    let page = lq.page.unwrap_or(1).clamp(1, 100_000);

    let mut p = Page::new(Some(&viewer), &headers, "Tickets")
        .set("nav", "tickets")
        .set("q", q.clone())
        .set("view", view.clone())
        .set("sort", sort.clone())
        .set("dir", dir)
        .set("choices", choices(&state))
        .set(
            "views",
            views
                .iter()
                .map(|v| json!({"id": v.0, "label": v.1, "url": format!("/tickets?view={}", v.0)}))
                .collect::<Vec<_>>(),
        );
    match directory(&state, &viewer).await {
        Ok(d) => p = p.set("dir_lists", d),
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    }
    match state.docket.saved_searches(&viewer.principal).await {
        Ok(saved) => p = p.set("saved", json!(saved)),
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    }

    let ctx = docket_query::LowerCtx {
        tz: state.docket.rules.timezone.clone(),
        now: jiff::Timestamp::now(),
    };
    let effective = if q.trim().is_empty() { "*" } else { q.as_str() };
    if let Err(err) = docket_query::compile(effective, &ctx) {
        return p
            .set("query_error", query_error(&q, &err))
            .set("rows", json!([]))
            .set("total", 0)
            .render_status(&state, axum::http::StatusCode::BAD_REQUEST, "tickets.html");
    }
    let search = SearchParams {
        query: effective.to_string(),
        offset: (page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE,
        sort_by: SortField::parse(&sort).unwrap_or(SortField::Num),
        descending: dir == "desc",
    };
    // Read before the search: the list's live stream starts here (see `live::events`).
    let feed_at = state.docket.feed_head().await.ok();
    let found = match state
        .docket
        .search_tickets(&viewer.principal, &search)
        .await
    {
        Ok(f) => f,
        Err(e) => return service_error(&state, &viewer, &headers, &e),
    };
    let pages = found.total.div_ceil(PAGE_SIZE).max(1);
    let first = if found.total == 0 {
        0
    } else {
        search.offset + 1
    };
    let last = search.offset + found.rows.len() as u64;
    // Column headers: a click sorts by the column, a second click flips the direction.
    let columns: Vec<Value> = [
        ("num", "#"),
        ("subject", "Subject"),
        ("type", "Type"),
        ("status", "Status"),
        ("priority", "Priority"),
        ("assignees", "Assignees"),
        ("tags", "Tags"),
        ("due", "Due"),
        ("modified", "Updated"),
    ]
    .iter()
    .map(|(field, label)| {
        let active = !field.is_empty() && *field == sort;
        let next_dir = if active && dir == "desc" { "asc" } else if active { "desc" } else if ascending_first(field) { "asc" } else { "desc" };
        json!({
            "label": label,
            "field": field,
            "active": active,
            "aria": if active { if dir == "asc" { "ascending" } else { "descending" } } else { "none" },
            "url": if field.is_empty() { String::new() } else { list_url(&q, &view, field, next_dir, 1) },
        })
    })
    .collect();
    let here = list_url(&q, &view, &sort, dir, page);
    p.set("rows", found.rows.iter().map(row).collect::<Vec<_>>())
        .set("total", found.total)
        .set("first", first)
        .set("last", last)
        .set("page", page)
        .set("pages", pages)
        .set("columns", columns)
        .set("here", here)
        .set(
            "prev_url",
            if page > 1 {
                list_url(&q, &view, &sort, dir, page - 1)
            } else {
                String::new()
            },
        )
        .set(
            "next_url",
            if page < pages {
                list_url(&q, &view, &sort, dir, page + 1)
            } else {
                String::new()
            },
        )
        .set("feed_at", feed_at)
        .set("now", jiff::Timestamp::now().as_second())
        .render(&state, "tickets.html")
}

/// Where a form asks to go back to: a local list URL only.
fn back_to(pairs: &[(String, String)]) -> String {
    match one_of(pairs, "back") {
        Some(b) if b.starts_with("/tickets") && !b.starts_with("//") => b.to_string(),
        _ => "/tickets".to_string(),
    }
}

// POST /tickets/bulk — one action on every selected ticket, through the same service call
// as the API's `bulk_update_tickets` (each ticket its own transaction, history and email).
pub async fn bulk(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match viewer.signed_form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let back = back_to(&pairs);
    let can = match viewer.principal.can_edit() {
        Ok(c) => c,
        Err(e) => return redirect_with(&back, "error", &e.description()),
    };
    let ids = all_of(&pairs, "ids");
    let action = one_of(&pairs, "action").unwrap_or("");
    let value = one_of(&pairs, "value").unwrap_or("").trim().to_string();
    if ids.is_empty() {
        return redirect_with(&back, "error", "Select at least one ticket first");
    }
    if value.is_empty() {
        return redirect_with(&back, "error", "Choose a value for the bulk action");
    }
    let set = match action {
        "status" => json!({"status": value}),
        "priority" => json!({"priority": value}),
        "assign" => json!({"assignees": {"add": [value]}}),
        "tag" => json!({"tags": {"add": [value]}}),
        _ => return redirect_with(&back, "error", "Unknown bulk action"),
    };
    let docket = &state.docket;
    let report = match docket_core::service::bulk_set_from_params(docket, &set) {
        Ok(set) => {
            docket
                .bulk_update_ids(
                    &viewer.principal,
                    &can,
                    ids,
                    set,
                    state.config.tickets.bulk_max_tickets,
                )
                .await
        }
        Err(e) => Err(e),
    };
    match report {
        Err(e) => redirect_with(&back, "error", &e.description()),
        Ok(r) if r.refused > 0 => {
            let first = r
                .refusals
                .first()
                .map(|f| format!(" ({})", f.description))
                .unwrap_or_default();
            redirect_with(
                &back,
                "error",
                &format!(
                    "{} updated, {} already so, {} refused{first}",
                    r.changed, r.unchanged, r.refused
                ),
            )
        }
        Ok(r) => {
            let noun = if r.changed == 1 { "ticket" } else { "tickets" };
            let same = if r.unchanged > 0 {
                format!(", {} already so", r.unchanged)
            } else {
                String::new()
            };
            redirect_with(&back, "ok", &format!("{} {noun} updated{same}", r.changed))
        }
    }
}

// POST /searches — save (or rename) a search of the viewer's.
pub async fn save_search(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let pairs = match viewer.signed_form(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = one_of(&pairs, "name").unwrap_or("");
    let query = one_of(&pairs, "query").unwrap_or("");
    let id = one_of(&pairs, "id").filter(|s| !s.is_empty());
    let back = back_to(&pairs);
    match state
        .docket
        .save_search(&viewer.principal, id, name, query)
        .await
    {
        Ok(saved) => {
            let url = list_url(&saved.query, "", "", "", 1);
            redirect_with(
                &url,
                "ok",
                &format!("Saved search \u{201c}{}\u{201d}", saved.name),
            )
        }
        Err(e) => redirect_with(&back, "error", &e.description()),
    }
}

// POST /searches/{id}/delete
pub async fn delete_search(
    State(state): State<AppState>,
    viewer: Viewer,
    axum::extract::Path(id): axum::extract::Path<String>,
    RawForm(body): RawForm,
) -> Response {
    if let Err(r) = viewer.signed_form(&body) {
        return r;
    }
    match state
        .docket
        .delete_saved_search(&viewer.principal, &id)
        .await
    {
        Ok(()) => redirect_with("/tickets", "ok", "Saved search deleted"),
        Err(e) => redirect_with("/tickets", "error", &e.description()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_write_into_the_query() {
        assert_eq!(add_term("", "status", "open"), "status:open");
        assert_eq!(add_term("*", "status", "open"), "status:open");
        assert_eq!(add_term("disk", "tags", "db"), "disk tags:db");
        assert_eq!(add_term("disk", "assignees", " "), "disk");
        assert_eq!(
            add_term("x", "category", "two words"),
            "x category:\"two words\""
        );
        assert_eq!(
            add_term("(status = open)", "type", "bug"),
            "(status = open)"
        );
    }

    #[test]
    fn error_spans_are_cut_on_char_boundaries() {
        let q = "é stauts:open";
        let err = docket_query::QueryError {
            message: "m".into(),
            span: docket_query::Span { start: 3, end: 9 },
            hint: None,
        };
        let v = query_error(q, &err);
        assert_eq!(v["before"], "é ");
        assert_eq!(v["at"], "stauts");
    }
}
