//! Running in production: the access log (text and JSON), request ids, `/health`, `/ready`
//! and the Prometheus `/metrics` endpoint against known data.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

/// The log lines (JSON objects) of the access log so far.
fn access_lines(s: &Server) -> Vec<Value> {
    s.log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "request")
        .collect()
}

/// Waits for the access-log line of `request_id` (written once the body has been sent).
async fn access_line(s: &Server, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = access_lines(s)
            .into_iter()
            .find(|v| v["request_id"] == request_id)
        {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no access line for {request_id} in:\n{}",
            s.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn json_access_log_has_one_line_per_request_and_request_ids_round_trip() {
    let s = Server::start_with_env(&[("DOCKET_LOG_FORMAT", "json")]).await;

    let res = s
        .client
        .post(s.url("/api/app/ping/v1"))
        .header("X-API-Key", &s.key)
        .header("X-Request-Id", "client-id-1")
        .json(&json!({}))
        .send()
        .await
        .expect("ping");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "client-id-1");
    let body = res.bytes().await.expect("body");

    let line = access_line(&s, "client-id-1").await;
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(
        line["timestamp"].as_str().is_some_and(|t| t.len() >= 20),
        "{line}"
    );
    assert_eq!(line["call"], "ping", "{line}");
    assert_eq!(line["method"], "POST", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["auth"], "key", "{line}");
    assert!(
        line["user"].as_str().is_some_and(|u| !u.is_empty()),
        "{line}"
    );
    assert_eq!(line["bytes"], body.len() as u64, "{line}");
    assert!(line["duration_ms"].as_f64().is_some(), "{line}");
    assert!(line.get("code").is_none(), "no code on success: {line}");

    // An error carries its xyOps code; a client id that is not plain is replaced.
    let res = s
        .client
        .post(s.url("/api/app/get_ticket/v1"))
        .header("X-API-Key", &s.key)
        .header("X-Request-Id", "bad id\twith spaces")
        .json(&json!({"id": "tnope"}))
        .send()
        .await
        .expect("get_ticket");
    assert_eq!(res.status(), 404);
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert_eq!(id.len(), 24, "generated id: {id}");
    let line = access_line(&s, &id).await;
    assert_eq!(
        (&line["call"], &line["status"], &line["code"]),
        (&json!("get_ticket"), &json!(404), &json!("notfound")),
        "{line}"
    );

    // No credentials: no user; pages log their path; every response gets an id.
    let res = s.client.get(s.url("/health")).send().await.expect("health");
    let id = res.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let line = access_line(&s, &id).await;
    assert_eq!(
        (&line["call"], &line["status"]),
        (&json!("/health"), &json!(200))
    );
    assert!(line.get("user").is_none(), "{line}");

    // One line per request: three requests so far.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(access_lines(&s).len(), 3, "{}", s.log_text());
}

#[tokio::test]
async fn text_access_log_is_the_default() {
    let s = Server::start().await;
    let res = s
        .client
        .get(s.url("/api/app/ping/v1?api_key=") + &s.key)
        .header("X-Request-Id", "text-1")
        .send()
        .await
        .expect("ping");
    assert_eq!(res.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        if let Some(l) = s
            .log_text()
            .lines()
            .find(|l| l.contains("request_id=text-1"))
        {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "{}", s.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for part in [
        "INFO",
        "request",
        "call=ping",
        "status=200",
        "auth=\"key\"",
        "bytes=",
        "duration_ms=",
    ] {
        assert!(line.contains(part), "{part} missing in: {line}");
    }
}

#[tokio::test]
async fn health_and_ready_answer_json() {
    let s = Server::start().await;
    let res = s.client.get(s.url("/health")).send().await.expect("health");
    assert_eq!(common::decode(res).await, (200, json!({"status": "ok"})));
    let res = s.client.get(s.url("/ready")).send().await.expect("ready");
    let (status, v) = common::decode(res).await;
    assert_eq!(
        (status, &v["status"], &v["database"]),
        (200, &json!("ready"), &json!("ok"))
    );

    // Without its database the node is alive but not ready.
    if common::backend() == common::Backend::Postgres {
        common::drop_database(&s.data);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let res = s.client.get(s.url("/ready")).send().await.expect("ready");
            if res.status() == 503 {
                let (_, v) = common::decode(res).await;
                assert_eq!(v["status"], "unavailable", "{v}");
                break;
            }
            assert!(Instant::now() < deadline, "still ready without a database");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let res = s.client.get(s.url("/health")).send().await.expect("health");
        assert_eq!(res.status(), 200);
    }
}

/// The value of the sample `name` (with its labels, as printed) in a scrape.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_report_ticket_flow_and_requests() {
    let s = Server::start().await;
    s.create(json!({"subject": "a", "type": "bug", "status": "open", "due": "2020-01-01"}))
        .await;
    s.create(json!({"subject": "b", "type": "task", "status": "in_progress"}))
        .await;
    let done = s
        .create(json!({"subject": "c", "type": "bug", "status": "open"}))
        .await;
    let (_, v) = s
        .call(
            "update_ticket",
            json!({"id": done["id"], "status": "closed"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    s.create(json!({"subject": "d", "type": "bug", "status": "draft"}))
        .await;

    let res = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .is_ok_and(|c| c.starts_with("application/openmetrics-text")));
    let text = res.text().await.expect("text");
    let expect = [
        ("docket_tickets{status=\"open\"}", 1.0),
        ("docket_tickets{status=\"in_progress\"}", 1.0),
        ("docket_tickets{status=\"closed\"}", 1.0),
        ("docket_tickets{status=\"draft\"}", 1.0),
        ("docket_tickets_open{type=\"bug\"}", 1.0),
        ("docket_tickets_open{type=\"task\"}", 1.0),
        ("docket_tickets_open{type=\"incident\"}", 0.0),
        ("docket_tickets_overdue", 1.0),
        ("docket_tickets_created_last_hour", 4.0),
        ("docket_tickets_resolved_last_hour", 1.0),
        ("docket_ticket_resolve_seconds_count", 1.0),
        ("docket_ticket_resolve_seconds_bucket{le=\"+Inf\"}", 1.0),
        ("docket_outbox_pending", 0.0),
        (
            "docket_http_requests_total{call=\"create_ticket\",status=\"200\"}",
            4.0,
        ),
        (
            "docket_http_requests_total{call=\"update_ticket\",status=\"200\"}",
            1.0,
        ),
    ];
    for (name, want) in expect {
        assert_eq!(sample(&text, name), Some(want), "{name} in:\n{text}");
    }
    let age = sample(&text, "docket_oldest_open_ticket_age_seconds").expect("age");
    assert!((0.0..120.0).contains(&age), "{age}");
    assert!(
        text.contains("docket_http_request_duration_seconds_bucket{"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

#[tokio::test]
async fn metrics_token_and_switch() {
    let s = Server::start_with_env(&[("DOCKET_METRICS__TOKEN", "scrape-secret")]).await;
    let res = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 401);
    let res = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 401);
    let res = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth("scrape-secret")
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 200);

    let s = Server::start_with_env(&[("DOCKET_METRICS__ENABLED", "false")]).await;
    let res = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_openapi_document_is_served() {
    let s = Server::start().await;
    let res = s
        .client
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi");
    let (status, v) = common::decode(res).await;
    assert_eq!((status, &v["openapi"]), (200, &json!("3.1.0")));
    assert!(v["paths"]["/api/app/create_ticket/v1"]["post"].is_object());

    // A method the API does not take is a 405 that says which ones it does (RFC 9110).
    let res = s
        .client
        .put(s.url("/api/app/ping/v1"))
        .send()
        .await
        .expect("put");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST, HEAD");
}
