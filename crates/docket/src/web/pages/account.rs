//! The viewer's own account: who they are, and a new password.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::{redirect_with, Page};
use crate::web::session::Viewer;
use crate::wire::AppState;

// GET /account
pub async fn page(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap) -> Response {
    let privileges: Vec<&String> = viewer.principal.privileges.iter().collect();
    let categories: Option<Vec<&String>> = viewer
        .principal
        .categories
        .as_ref()
        .map(|c| c.iter().collect());
    Page::new(Some(&viewer), &headers, "Your account")
        .set("privileges", serde_json::json!(privileges))
        .set("categories", serde_json::json!(categories))
        .set("min_password", docket_core::service::MIN_PASSWORD_CHARS)
        .render(&state, "account.html")
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

// POST /account
pub async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<PasswordForm>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&form.csrf) {
        return r;
    }
    if form.new != form.confirm {
        return redirect_with(
            "/account",
            "error",
            "The new password and its confirmation differ",
        );
    }
    match state
        .docket
        .change_own_password(&viewer.user.username, &form.current, &form.new)
        .await
    {
        Ok(()) => redirect_with("/account", "ok", "Your password was changed"),
        Err(e) => redirect_with("/account", "error", &e.description()),
    }
}
