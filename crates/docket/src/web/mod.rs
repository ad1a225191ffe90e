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
        .route("/login", get(pages::auth::login_page).post(pages::auth::login))
        .route("/logout", post(pages::auth::logout))
        .route("/account", get(pages::account::page).post(pages::account::change_password))
        .route("/tickets", get(pages::tickets::list))
        .route("/tickets/bulk", post(pages::tickets::bulk))
        .route("/tickets/new", get(pages::new_ticket::form).post(pages::new_ticket::create))
        .route("/tickets/id/{id}", get(pages::ticket::by_id))
        .route("/tickets/{num}", get(pages::ticket::show))
        .route("/tickets/{num}/update", post(pages::ticket::update))
        .route("/tickets/{num}/comment", post(pages::ticket::comment))
        .route("/tickets/{num}/comments/{change}", post(pages::ticket::edit_comment))
        .route("/tickets/{num}/delete", post(pages::ticket::delete))
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
        .layer(middleware::from_fn(security_headers))
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
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}
