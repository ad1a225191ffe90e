//! `GET /api/openapi.json`: the API as an OpenAPI 3.1 document.
//!
//! Hand-maintained in `docs/openapi.json` (beside the prose reference `docs/api.md`) and
//! built into the binary; the test below fails when a call of the route table is missing
//! from it or it names a call the server does not have.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

const DOCUMENT: &str = include_str!("../../../../docs/openapi.json");

pub async fn document() -> Response {
    let mut res = DOCUMENT.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_call_of_the_route_table_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let paths: BTreeSet<String> = doc["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let calls: BTreeSet<String> = crate::wire::CALLS
            .iter()
            .map(|(ns, name)| format!("/api/{ns}/{name}/v1"))
            .collect();
        let missing: Vec<_> = calls.difference(&paths).collect();
        assert!(
            missing.is_empty(),
            "calls missing from docs/openapi.json: {missing:?}"
        );
        let unknown: Vec<_> = paths
            .iter()
            .filter(|p| p.ends_with("/v1") && p.starts_with("/api/") && *p != "/api/app/file/v1")
            .filter(|p| !calls.contains(*p))
            .collect();
        assert!(
            unknown.is_empty(),
            "docs/openapi.json names calls the server lacks: {unknown:?}"
        );
        for p in ["/health", "/ready", "/metrics", "/api/openapi.json"] {
            assert!(paths.contains(p), "{p}");
        }
        // Every reference resolves.
        let text = DOCUMENT;
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
