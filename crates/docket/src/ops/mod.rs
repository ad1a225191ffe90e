//! Running Docket in production: the access log and request ids (`access`), Prometheus
//! metrics (`metrics`), the health and readiness probes (`health`), and the OpenAPI
//! document (`openapi`, with `schema` and `openapi_ops`). Kept apart from the
//! API (`wire`) and the desk (`web`): these routes have no xyOps meaning and no session.

pub mod access;
pub mod health;
pub mod metrics;
pub mod openapi;
mod openapi_ops;
mod schema;

use axum::routing::get;
use axum::Router;

use crate::wire::AppState;

/// `/health`, `/ready` and `/metrics`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(metrics::scrape))
        .route("/api/openapi.json", get(openapi::document))
}
