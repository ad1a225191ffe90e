//! `/health` (the process answers; touches nothing) and `/ready` (the database answers too),
//! for load balancers, orchestrators and `systemd`-style watchdogs. Neither needs credentials
//! and neither says more than up or down.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use docket_core::store::RecordKind;
use serde_json::json;

use crate::wire::reply::json_response;
use crate::wire::AppState;

/// How long `/ready` waits for the database before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET /health`: 200 while the process serves requests.
pub async fn health() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /ready`: 200 when a database read succeeds, else 503. Migrations run before the
/// server listens, so a node that answers at all has a migrated schema; the read proves the
/// database is reachable now.
pub async fn ready(State(state): State<AppState>) -> Response {
    let read = state.docket.store.get_record(RecordKind::Meta, "analyzer");
    match tokio::time::timeout(READY_TIMEOUT, read).await {
        Ok(Ok(_)) => json_response(
            StatusCode::OK,
            &json!({"status": "ready", "database": "ok", "migrations": "done"}),
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database read failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "unavailable", "database": "error"}),
            )
        }
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "database": "timeout"}),
        ),
    }
}
