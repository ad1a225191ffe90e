//! The web desk: server-rendered pages for people, beside the JSON API. Every page and form
//! calls the same service functions with the same `Principal` as the API (no second set of
//! rules); this module only turns forms into parameters and results into HTML.
//!
//! Security: a strict Content-Security-Policy (no inline script or style), a CSRF token in
//! every form that changes data, and a ticket a viewer may not see answers like a missing one.

mod assets;
mod live;
mod markdown;
mod pages;
mod session;
mod view;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use crate::wire::AppState;

pub use view::Views;

/// The UI routes (merged into the one router of the binary).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::tickets::home))
        .route(
            "/login",
            get(pages::auth::login_page).post(pages::auth::login),
        )
        .route("/logout", post(pages::auth::logout))
        .route(
            "/account",
            get(pages::account::page).post(pages::account::change_password),
        )
        .route("/tickets", get(pages::tickets::list))
        .route("/tickets/bulk", post(pages::tickets::bulk))
        .route(
            "/tickets/new",
            get(pages::new_ticket::form).post(pages::new_ticket::create),
        )
        .route("/tickets/id/{id}", get(pages::ticket::by_id))
        .route("/tickets/{num}", get(pages::ticket::show))
        .route("/tickets/{num}/update", post(pages::ticket::update))
        .route("/tickets/{num}/comment", post(pages::ticket::comment))
        .route(
            "/tickets/{num}/comments/{change}",
            post(pages::ticket::edit_comment),
        )
        .route("/tickets/{num}/delete", post(pages::ticket::delete))
        .route("/tickets/{num}/relations", post(pages::ticket::relation))
        .route("/searches", post(pages::tickets::save_search))
        .route("/searches/{id}/delete", post(pages::tickets::delete_search))
        .route("/help/search", get(pages::help::search))
        .route("/preview", post(pages::ticket::preview))
        .route("/admin", get(pages::admin::overview))
        .route("/admin/users", post(pages::admin::save_user))
        .route("/admin/keys", post(pages::admin::create_key))
        .route("/admin/keys/{id}/delete", post(pages::admin::delete_key))
        .route("/admin/tags", post(pages::admin::save_tag))
        .route("/admin/categories", post(pages::admin::save_category))
        .route("/events", get(live::events))
        .route("/assets/{name}", get(assets::serve))
        .layer(middleware::from_fn(same_origin_posts))
        .layer(middleware::from_fn(security_headers))
}

/// Refuses a form post that another site made a browser send (the browser says so in
/// `Sec-Fetch-Site`, or its `Origin` names another host). CSRF tokens protect the forms of
/// a signed-in session; this also covers the login form, which has no session yet.
async fn same_origin_posts(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST && is_cross_site(request.headers()) {
        return pages::error_page(
            axum::http::StatusCode::FORBIDDEN,
            "This form was sent from another site, so it was refused.",
        );
    }
    next.run(request).await
}

fn is_cross_site(headers: &axum::http::HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    if text(header::HeaderName::from_static("sec-fetch-site")) == Some("cross-site") {
        return true;
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Headers every UI response carries: what may run, be framed or be sniffed.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
             connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::is_cross_site;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        assert!(!is_cross_site(&headers(&[])));
        assert!(!is_cross_site(&headers(&[
            ("host", "desk:5580"),
            ("origin", "http://desk:5580")
        ])));
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[
            ("host", "desk:5580"),
            ("origin", "https://evil.example")
        ])));
        assert!(is_cross_site(&headers(&[
            ("host", "desk:5580"),
            ("origin", "null")
        ])));
    }
}
