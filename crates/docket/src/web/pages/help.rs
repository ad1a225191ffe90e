//! The search syntax, one click from the query box.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::Page;
use crate::web::session::Viewer;
use crate::wire::AppState;

// GET /help/search
pub async fn search(State(state): State<AppState>, viewer: Viewer, headers: HeaderMap) -> Response {
    let fields: Vec<serde_json::Value> = docket_query::Field::all()
        .map(|f| serde_json::json!({"name": f.name(), "kind": f.kind()}))
        .collect();
    Page::new(Some(&viewer), &headers, "Search syntax")
        .set("fields", fields)
        .render(&state, "help_search.html")
}
