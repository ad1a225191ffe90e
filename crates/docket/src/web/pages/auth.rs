//! Signing in and out. The session is the API's own (`login`): same cookie, same expiry.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use super::Page;
use crate::web::session::{safe_next, session_cookie, Viewer};
use crate::wire::{AppState, Peer};

#[derive(Deserialize, Default)]
pub struct NextParam {
    next: Option<String>,
}

// GET /login
pub async fn login_page(
    State(state): State<AppState>,
    viewer: Option<Viewer>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Response {
    if viewer.is_some() {
        return Redirect::to(&safe_next(q.next.as_deref())).into_response();
    }
    Page::new(None, &headers, "Sign in")
        .set("next", safe_next(q.next.as_deref()))
        .render(&state, "login.html")
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

// POST /login
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Peer(peer): Peer,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    match state
        .docket
        .login(form.username.trim(), &form.password, peer)
        .await
    {
        Ok(login) => {
            let mut response = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&session_cookie(&login.session_id, 30 * 86_400)) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => {
            let status = match e {
                docket_core::Error::Rate(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            Page::new(None, &headers, "Sign in")
                .set("next", next)
                .set("username", form.username)
                .set("error", e.description())
                .render_status(&state, status, "login.html")
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

// POST /logout
pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(r) = viewer.check_csrf(&form.csrf) {
        return r;
    }
    if let Err(e) = state.docket.logout(&viewer.session_id).await {
        tracing::warn!(error = %e, "logout could not delete the session");
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session_cookie("", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}
