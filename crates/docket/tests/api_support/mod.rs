//! Helpers shared by the `api_*` integration tests: raw requests, error assertions, and
//! short ways to read tickets back.
#![allow(
    dead_code,
    reason = "each test file uses a different part of these helpers"
)]

use reqwest::header::HeaderMap;
use serde_json::{json, Value};

use super::common::{decode, Server};

/// HTTP status and JSON body of a reply.
pub type Resp = (u16, Value);

/// Asserts an error reply: its HTTP status, its `code`, and a phrase of its `description`
/// (case-insensitive).
#[track_caller]
pub fn assert_err(r: &Resp, status: u16, code: &str, phrase: &str) {
    let (got_status, v) = r;
    assert_eq!(v["code"], code, "expected error code {code:?}, got: {v}");
    assert_eq!(*got_status, status, "HTTP status of {v}");
    let desc = v["description"]
        .as_str()
        .unwrap_or_else(|| panic!("error without a description: {v}"));
    assert!(
        desc.to_lowercase().contains(&phrase.to_lowercase()),
        "description {desc:?} should mention {phrase:?}"
    );
}

/// Asserts a successful reply (HTTP 200, `code: 0`) and returns its body.
#[track_caller]
pub fn assert_ok(r: &Resp) -> &Value {
    assert_eq!(
        (r.0, &r.1["code"]),
        (200, &json!(0)),
        "expected success: {}",
        r.1
    );
    &r.1
}

/// Sends a prepared request; returns status, headers and JSON body.
pub async fn send_full(req: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
    let res = req.send().await.expect("request");
    let headers = res.headers().clone();
    let (status, body) = decode(res).await;
    (status, headers, body)
}

/// Sends a prepared request; returns status and JSON body.
pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let (status, _, body) = send_full(req).await;
    (status, body)
}

/// POSTs JSON to `/api/app/NAME` (the route without `/v1`) with the admin key.
pub async fn call_plain(s: &Server, name: &str, params: Value) -> Resp {
    send(
        s.client
            .post(s.url(&format!("/api/app/{name}")))
            .header("X-API-Key", &s.key)
            .json(&params),
    )
    .await
}

/// POSTs a raw body with a content type to `PATH` with the admin key.
pub async fn post_raw(
    s: &Server,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Resp {
    send(
        s.client
            .post(s.url(path))
            .header("X-API-Key", &s.key)
            .header("Content-Type", content_type)
            .body(body),
    )
    .await
}

/// A `multipart/form-data` body: a `json` field plus file parts `(field, filename, bytes)`.
/// The boundary is mixed-case, as browsers make them.
pub fn multipart(json: &Value, files: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{json}\r\n")
            .as_bytes(),
    );
    for (field, filename, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// How many tickets a search for `query` finds (as the admin).
pub async fn total(s: &Server, query: &str) -> u64 {
    let r = s.call("search_tickets", json!({"query": query})).await;
    assert_ok(&r)["list"]["length"]
        .as_u64()
        .unwrap_or_else(|| panic!("no list.length: {}", r.1))
}

/// A ticket as the admin sees it (panics if it cannot be read).
pub async fn ticket(s: &Server, id: &str) -> Value {
    let r = s.call("get_ticket", json!({"id": id})).await;
    assert_ok(&r)["ticket"].clone()
}

/// The ticket's history entries.
pub fn changes(t: &Value) -> &Vec<Value> {
    t["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes array: {t}"))
}

/// `(type, key)` of every history entry, for compact comparisons.
pub fn change_kinds(t: &Value) -> Vec<(String, String)> {
    changes(t)
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                c["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Creates an API key from full parameters; returns `(id, plain key)`.
pub async fn create_key(s: &Server, params: Value) -> (String, String) {
    let r = s.call("create_api_key", params).await;
    let v = assert_ok(&r);
    (
        v["api_key"]["id"].as_str().expect("key id").to_string(),
        v["plain_key"].as_str().expect("plain_key").to_string(),
    )
}

/// Logs in through `/api/user/login/v1`; returns the whole reply and its headers.
pub async fn login(s: &Server, username: &str, password: &str) -> (u16, HeaderMap, Value) {
    send_full(
        s.client
            .post(s.url("/api/user/login/v1"))
            .json(&json!({"username": username, "password": password})),
    )
    .await
}

/// Current start of the UTC day containing `epoch`.
pub fn day_start(epoch: i64) -> i64 {
    epoch - epoch.rem_euclid(86_400)
}

/// Now, in epoch seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
