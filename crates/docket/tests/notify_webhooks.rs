//! Webhooks: signed JSON POSTs to a real HTTP receiver (axum on loopback inside the test),
//! filtered by event, retried after a failure, delivered once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::Server;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

/// (path, event header, delivery header, body)
type Hit = (String, String, String, Value);

#[derive(Clone, Default)]
struct Received {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests answered 500 before the first success (per path "/a").
    fail_first: Arc<Mutex<u32>>,
}

const SECRET_A: &str = "secret-a";
const SECRET_B: &str = "secret-b";

fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn hook(
    path: &'static str,
    secret: &'static str,
    state: Received,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let sig = headers
        .get("x-docket-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify(secret, &body, sig) {
        return StatusCode::UNAUTHORIZED;
    }
    if path == "/a" {
        let mut f = state.fail_first.lock().unwrap();
        if *f > 0 {
            *f -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let v: Value = serde_json::from_slice(&body).unwrap();
    state.hits.lock().unwrap().push((
        path.to_string(),
        h("x-docket-event"),
        h("x-docket-delivery"),
        v,
    ));
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_filtered_retried_and_once() {
    let state = Received::default();
    *state.fail_first.lock().unwrap() = 1;
    let app = Router::new()
        .route(
            "/a",
            post(
                |State(s): State<Received>, h: HeaderMap, b: axum::body::Bytes| {
                    hook("/a", SECRET_A, s, h, b)
                },
            ),
        )
        .route(
            "/b",
            post(
                |State(s): State<Received>, h: HeaderMap, b: axum::body::Bytes| {
                    hook("/b", SECRET_B, s, h, b)
                },
            ),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let config = format!(
        "[[webhooks]]\nurl = \"http://{addr}/a\"\nsecret = \"{SECRET_A}\"\n\n\
         [[webhooks]]\nurl = \"http://{addr}/b\"\nsecret = \"{SECRET_B}\"\nevents = [\"commented\", \"ticket_deleted\"]\n"
    );
    let s = Server::start_with_config(&config, &[]).await;
    let t = s.create(json!({"subject": "Hooked"})).await;
    let id = t["id"].clone();
    let (_, v) = s
        .call("update_ticket", json!({"id": id, "status": "in_progress"}))
        .await;
    assert_eq!(v["code"], 0);
    let (_, v) = s
        .call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "hello hooks"}}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let form = common::Multipart::new()
        .json(&json!({"ticket": id, "save": true}))
        .file("file1", "log.txt", "text/plain", b"log");
    let (_, v) = s.upload("upload_user_ticket_files", &form).await;
    assert_eq!(v["code"], 0, "{v}");
    let (_, v) = s
        .call(
            "update_ticket",
            json!({"id": id, "subject": "muted", "notify": false}),
        )
        .await;
    assert_eq!(v["code"], 0);
    let (_, v) = s.call("delete_ticket", json!({"id": id})).await;
    assert_eq!(v["code"], 0);
    // A draft sends nothing.
    s.create(json!({"subject": "Draft", "status": "draft"}))
        .await;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = state.hits.lock().unwrap().len();
        if n >= 7 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "got {n} webhook calls: {:#?}",
            state.hits.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let hits = state.hits.lock().unwrap().clone();
    // A retried delivery may arrive after later ones: receivers order by `delivery`.
    let on = |p: &str| {
        let mut v = hits
            .iter()
            .filter(|h| h.0 == p)
            .map(|h| (h.2.parse::<i64>().unwrap(), h.1.clone()))
            .collect::<Vec<_>>();
        v.sort();
        v.into_iter().map(|(_, e)| e).collect::<Vec<_>>()
    };
    assert_eq!(
        on("/a"),
        vec![
            "ticket_created",
            "ticket_updated",
            "ticket_commented",
            "ticket_file_added",
            "ticket_deleted"
        ],
        "{hits:#?}"
    );
    assert_eq!(
        on("/b"),
        vec!["ticket_commented", "ticket_deleted"],
        "{hits:#?}"
    );
    // The failed first POST was retried; each delivery arrived once.
    let mut deliveries: Vec<&str> = hits.iter().map(|h| h.2.as_str()).collect();
    deliveries.sort();
    deliveries.dedup();
    assert_eq!(deliveries.len(), hits.len());
    let created = &hits.iter().find(|h| h.1 == "ticket_created").unwrap().3;
    assert_eq!(created["event"], "ticket_created");
    assert_eq!(created["ticket"]["id"], id);
    assert_eq!(created["ticket"]["subject"], "Hooked");
    let commented = &hits
        .iter()
        .find(|h| h.0 == "/b" && h.1 == "ticket_commented")
        .unwrap()
        .3;
    assert_eq!(commented["data"]["changes"][0]["body"], "hello hooks");
    let file = &hits.iter().find(|h| h.1 == "ticket_file_added").unwrap().3;
    assert_eq!(file["ticket"]["files"][0]["filename"], "log.txt", "{file}");

    // An alert-storm dedupe hit is a comment on the open ticket: it notifies like one.
    let first = s
        .create(json!({"subject": "Storm", "dedupe_key": "storm-1"}))
        .await;
    let (_, v) = s
        .call(
            "create_ticket",
            json!({"subject": "Storm", "dedupe_key": "storm-1"}),
        )
        .await;
    assert_eq!(v["deduplicated"], true, "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = state.hits.lock().unwrap().iter().any(|h| {
            h.0 == "/b" && h.1 == "ticket_commented" && h.3["ticket"]["id"] == first["id"]
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no webhook for the dedupe hit: {:#?}",
            state.hits.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
