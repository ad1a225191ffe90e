//! Delivery is durable and exactly once: an SMTP server that is down and comes back gets
//! every queued email once; a server killed with -9 and a full queue delivers each queued
//! message exactly once after the restart.

mod common;
mod notify_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;
use notify_support::{aiosmtpd_available, free_port, smtp_config, SmtpSink};
use serde_json::{json, Value};

async fn pending(s: &Server) -> usize {
    let (_, v) = s.call("get_outbox", json!({})).await;
    assert_eq!(v["code"], 0, "{v}");
    v["rows"].as_array().map_or(0, Vec::len)
}

async fn drain(s: &Server, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while pending(s).await > 0 {
        assert!(
            Instant::now() < deadline,
            "outbox not drained: {}",
            s.call("get_outbox", json!({})).await.1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Subject → how many times it arrived.
fn counts(sink: &SmtpSink) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for m in sink.messages() {
        *c.entry(m["subject"].as_str().unwrap_or("").to_string())
            .or_insert(0) += 1;
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_and_kill9_deliver_exactly_once() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // The sink's port is reserved but nothing listens yet: SMTP is down.
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    let mut s = Server::start_with_config(
        &smtp_config(sink.port),
        &[("DOCKET_TICKETS__EMAIL_DEBOUNCE_SEC", "1")],
    )
    .await;
    let (_, v) = s
        .user_call(
            "admin_create",
            json!({"username": "bob", "password": "password-123456", "email": "bob@example.com"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");

    // Phase 1: SMTP down; deliveries fail, are retried with backoff and visible.
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            s.create(json!({"subject": format!("down {i}"), "assignees": ["bob"]}))
                .await["id"]
                .clone(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, q) = s.call("get_outbox", json!({})).await;
        let rows = q["rows"].as_array().cloned().unwrap_or_default();
        if rows.iter().any(|r| {
            r["status"] == "retrying" && r["last_error"].as_str().is_some_and(|e| !e.is_empty())
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempt recorded: {q}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        s.log_text().contains("delivery failed; will retry"),
        "{}",
        s.log_text()
    );
    sink.start();
    drain(&s, 40).await;
    let c = counts(&sink);
    for i in 0..3 {
        assert_eq!(
            c.iter()
                .filter(|(k, _)| k.ends_with(&format!(": down {i}")))
                .map(|(_, n)| *n)
                .sum::<usize>(),
            1,
            "{c:#?}"
        );
    }
    assert_eq!(sink.messages().len(), 3, "{c:#?}");

    // Phase 2: SMTP down again, a full queue (new tickets, comments), then kill -9.
    sink.stop();
    for i in 0..5 {
        let t = s
            .create(json!({"subject": format!("queued {i}"), "assignees": ["bob"]}))
            .await;
        let (_, v) = s.call("add_ticket_change", json!({"id": t["id"], "change": {"type": "comment", "body": format!("comment {i}")}})).await;
        assert_eq!(v["code"], 0, "{v}");
    }
    for id in &ids {
        let (_, v) = s
            .call("update_ticket", json!({"id": id, "status": "closed"}))
            .await;
        assert_eq!(v["code"], 0, "{v}");
    }
    assert!(
        pending(&s).await >= 10,
        "{}",
        s.call("get_outbox", json!({})).await.1
    );
    s.kill9();
    sink.start();
    s.restart();
    drain(&s, 60).await;
    // Anything still in flight would show up now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let msgs: Vec<Value> = sink.messages();
    let c = counts(&sink);
    for i in 0..5 {
        let new = c
            .iter()
            .filter(|(k, _)| !k.starts_with("Re:") && k.ends_with(&format!(": queued {i}")))
            .map(|(_, n)| *n)
            .sum::<usize>();
        let upd = c
            .iter()
            .filter(|(k, _)| k.starts_with("Re:") && k.ends_with(&format!(": queued {i}")))
            .map(|(_, n)| *n)
            .sum::<usize>();
        assert_eq!((new, upd), (1, 1), "ticket queued {i}: {c:#?}");
    }
    for i in 0..3 {
        let upd = c
            .iter()
            .filter(|(k, _)| k.starts_with("Re:") && k.ends_with(&format!(": down {i}")))
            .map(|(_, n)| *n)
            .sum::<usize>();
        assert_eq!(upd, 1, "{c:#?}");
    }
    assert_eq!(msgs.len(), 3 + 10 + 3, "{c:#?}");
    // Every message has its own outbox identity (no row went out twice).
    let mut mids: Vec<&str> = msgs
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    mids.sort();
    mids.dedup();
    assert_eq!(mids.len(), msgs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_emails_per_day_caps_a_runaway() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let config = format!("{}max_emails_per_day = 2\n", smtp_config(sink.port));
    let s = Server::start_with_config(&config, &[]).await;
    let (_, v) = s
        .user_call(
            "admin_create",
            json!({"username": "bob", "password": "password-123456", "email": "bob@example.com"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    for i in 0..3 {
        s.create(json!({"subject": format!("storm {i}"), "assignees": ["bob"]}))
            .await;
    }
    sink.wait_for(2, 15).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 2);
    let (_, q) = s.call("get_outbox", json!({})).await;
    let rows = q["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{q}");
    assert!(
        rows[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("max_emails_per_day"),
        "{q}"
    );
}
