//! Who is looking: the login session behind the `session_id` cookie (the same sessions and
//! cookie as the API's `login`), and the CSRF check of forms that change data.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use axum::response::{IntoResponse, Redirect, Response};
use docket_core::auth::Principal;
use docket_core::model::User;

use crate::wire::AppState;

/// A signed-in person: their user record (without the password hash), their session's CSRF
/// token and the principal every service call is made with.
#[derive(Clone)]
pub struct Viewer {
    pub user: User,
    pub principal: Principal,
    pub csrf_token: String,
    pub session_id: String,
}

impl Viewer {
    /// Checks a form's `csrf` field against the session: every UI request that changes data
    /// carries it, so another site cannot make a signed-in browser act.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the page answered at once, never carried further; boxing it buys nothing"
    )]
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Response> {
        if !submitted.is_empty()
            && constant_time_eq(submitted.as_bytes(), self.csrf_token.as_bytes())
        {
            Ok(())
        } else {
            Err(super::pages::error_page(
                axum::http::StatusCode::FORBIDDEN,
                "This form has expired (its security token does not match your session). Go back, reload the page and try again.",
            ))
        }
    }

    /// The fields of a posted form, once its `csrf` field matched the session.
    #[allow(
        clippy::result_large_err,
        reason = "the error is the page answered at once, never carried further; boxing it buys nothing"
    )]
    pub fn signed_form(&self, body: &[u8]) -> Result<Vec<(String, String)>, Response> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let token = pairs
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        self.check_csrf(token)?;
        Ok(pairs)
    }

    /// What the page templates need to know about the viewer.
    pub fn context(&self) -> serde_json::Value {
        let p = &self.principal;
        serde_json::json!({
            "username": self.user.username,
            "full_name": if self.user.full_name.is_empty() { &self.user.username } else { &self.user.full_name },
            "email": self.user.email,
            "csrf": self.csrf_token,
            "is_admin": p.is_admin(),
            "can_create": p.has("create_tickets"),
            "can_edit": p.has("edit_tickets"),
            "can_delete": p.has("delete_tickets"),
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) use crate::wire::cookie;

async fn viewer_of(parts: &Parts, state: &AppState) -> Option<Viewer> {
    let session_id = cookie(&parts.headers, "session_id")?;
    let (user, session, principal) = state.docket.authenticate_session(&session_id).await.ok()?;
    crate::ops::access::note_caller("session", &principal.username);
    Some(Viewer {
        user,
        principal,
        csrf_token: session.csrf_token,
        session_id,
    })
}

/// A page that needs a signed-in viewer sends everyone else to the login page, and back
/// here afterwards.
impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match viewer_of(parts, state).await {
            Some(v) => Ok(v),
            None => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|pq| pq.as_str())
                    .unwrap_or("/");
                // Only a GET can be replayed after login; a form post goes back to the list.
                let next = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    "/tickets"
                };
                let target = format!(
                    "/login?next={}",
                    serde_urlencoded::to_string([("", next)])
                        .unwrap_or_default()
                        .trim_start_matches('=')
                );
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(viewer_of(parts, state).await)
    }
}

/// The `Set-Cookie` value of a UI or API session (HttpOnly, SameSite=Lax).
pub fn session_cookie(value: &str, max_age: i64) -> String {
    format!("session_id={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// Where to go after login: a local path only (never `//host` or a full URL), so the login
/// page cannot be used to send people to another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.contains(['\r', '\n']) =>
        {
            n.to_string()
        }
        _ => "/tickets".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/tickets/5")), "/tickets/5");
        assert_eq!(safe_next(Some("//evil.example/x")), "/tickets");
        assert_eq!(safe_next(Some("https://evil.example/")), "/tickets");
        assert_eq!(safe_next(Some("/\\evil.example")), "/tickets");
        assert_eq!(safe_next(None), "/tickets");
    }

    #[test]
    fn csrf_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
