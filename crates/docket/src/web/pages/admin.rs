//! The admin area: users, API keys (a new key is shown once), tags and categories. Only
//! administrators reach it; each form is the matching admin service call.

use axum::extract::{Path, RawForm, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use docket_core::service::{CATEGORIES, ROLES, TAGS};
use serde_json::{json, Map, Value};

use super::{all_of, one_of, redirect_with, service_error, Page};
use crate::web::session::Viewer;
use crate::wire::AppState;

async fn admin_page(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    new_key: Option<Value>,
) -> Response {
    let can = match viewer.principal.can_admin() {
        Ok(c) => c,
        Err(e) => return service_error(state, viewer, headers, &e),
    };
    let d = &state.docket;
    let loaded = async {
        Ok::<_, docket_core::Error>((
            d.get_users(&can).await?,
            d.get_api_keys(&can).await?,
            d.list_directory(&TAGS).await?,
            d.list_directory(&CATEGORIES).await?,
            d.list_directory(&ROLES).await?,
        ))
    }
    .await;
    let (users, keys, tags, categories, roles) = match loaded {
        Ok(x) => x,
        Err(e) => return service_error(state, viewer, headers, &e),
    };
    let mut page = Page::new(Some(viewer), headers, "Administration")
        .set("nav", "admin")
        .set("users", json!(users))
        .set("keys", json!(keys))
        .set("tags", json!(tags))
        .set("categories", json!(categories))
        .set("roles", json!(roles))
        .set("privileges", json!(docket_core::auth::PRIVILEGES));
    if let Some(k) = new_key {
        page = page.set("new_key", k);
    }
    page.render(state, "admin.html")
}

// GET /admin
pub async fn overview(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> Response {
    admin_page(&state, &viewer, &headers, None).await
}

/// Checks the form's CSRF token and the admin privilege.
#[allow(
    clippy::result_large_err,
    reason = "the error is the page answered at once, never carried further; boxing it buys nothing"
)]
fn admin_form(
    viewer: &Viewer,
    body: &[u8],
) -> Result<(Vec<(String, String)>, docket_core::auth::CanAdmin), Response> {
    let pairs = viewer.signed_form(body)?;
    let can = viewer
        .principal
        .can_admin()
        .map_err(|e| super::error_page(StatusCode::FORBIDDEN, &e.description()))?;
    Ok((pairs, can))
}

// POST /admin/users — create (mode=create) or update a user.
pub async fn save_user(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, can) = match admin_form(&viewer, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut params = Map::new();
    for field in ["username", "full_name", "email"] {
        if let Some(v) = one_of(&pairs, field) {
            params.insert(field.into(), json!(v.trim()));
        }
    }
    if let Some(pw) = one_of(&pairs, "password").filter(|p| !p.is_empty()) {
        params.insert("password".into(), json!(pw));
    }
    params.insert("privileges".into(), json!(all_of(&pairs, "privileges")));
    params.insert("roles".into(), json!(all_of(&pairs, "roles")));
    params.insert("categories".into(), json!(all_of(&pairs, "categories")));
    params.insert("active".into(), json!(one_of(&pairs, "active").is_some()));
    let creating = one_of(&pairs, "mode") == Some("create");
    let result = if creating {
        state.docket.create_user(&can, &params).await
    } else {
        state.docket.update_user(&can, &params).await
    };
    match result {
        Ok(u) => redirect_with(
            "/admin#users",
            "ok",
            &format!(
                "User {} {}",
                u.username,
                if creating { "created" } else { "updated" }
            ),
        ),
        Err(e) => redirect_with("/admin#users", "error", &e.description()),
    }
}

// POST /admin/keys — the new key is shown on this response only.
pub async fn create_key(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> Response {
    let (pairs, can) = match admin_form(&viewer, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut params = Map::new();
    for field in ["title", "description"] {
        if let Some(v) = one_of(&pairs, field) {
            params.insert(field.into(), json!(v.trim()));
        }
    }
    params.insert("privileges".into(), json!(all_of(&pairs, "privileges")));
    params.insert("categories".into(), json!(all_of(&pairs, "categories")));
    match state.docket.create_api_key(&can, &params).await {
        Ok((key, plain)) => {
            let shown = json!({"title": key.title, "plain": plain});
            admin_page(&state, &viewer, &headers, Some(shown)).await
        }
        Err(e) => redirect_with("/admin#keys", "error", &e.description()),
    }
}

// POST /admin/keys/{id}/delete
pub async fn delete_key(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    RawForm(body): RawForm,
) -> Response {
    let can = match admin_form(&viewer, &body) {
        Ok((_, can)) => can,
        Err(r) => return r,
    };
    let mut params = Map::new();
    params.insert("id".into(), json!(id));
    match state.docket.delete_api_key(&can, &params).await {
        Ok(()) => redirect_with("/admin#keys", "ok", "API key deleted"),
        Err(e) => redirect_with("/admin#keys", "error", &e.description()),
    }
}

async fn save_directory(
    state: &AppState,
    viewer: &Viewer,
    body: &[u8],
    dir: &docket_core::service::DirectoryKind,
    fields: &[&str],
    anchor: &str,
) -> Response {
    let pairs = match admin_form(viewer, body) {
        Ok((pairs, _)) => pairs,
        Err(r) => return r,
    };
    let pairs = pairs.as_slice();
    let mut params = Map::new();
    for field in fields {
        if let Some(v) = one_of(pairs, field).filter(|v| !v.trim().is_empty()) {
            params.insert((*field).into(), json!(v.trim()));
        }
    }
    let noun = dir.noun();
    let result = if one_of(pairs, "mode") == Some("create") {
        state
            .docket
            .create_directory(&viewer.principal, dir, &params)
            .await
            .map(|_| "created")
    } else {
        state
            .docket
            .update_directory(&viewer.principal, dir, &params)
            .await
            .map(|_| "updated")
    };
    match result {
        Ok(what) => redirect_with(
            &format!("/admin#{anchor}"),
            "ok",
            &format!("The {noun} was {what}"),
        ),
        Err(e) => redirect_with(&format!("/admin#{anchor}"), "error", &e.description()),
    }
}

// POST /admin/tags
pub async fn save_tag(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    save_directory(
        &state,
        &viewer,
        &body,
        &TAGS,
        &["id", "title", "notes"],
        "tags",
    )
    .await
}

// POST /admin/categories
pub async fn save_category(
    State(state): State<AppState>,
    viewer: Viewer,
    RawForm(body): RawForm,
) -> Response {
    save_directory(
        &state,
        &viewer,
        &body,
        &CATEGORIES,
        &["id", "title", "color", "notes"],
        "categories",
    )
    .await
}
