//! Internal notes over real HTTP (issue 17, item 3): a comment flagged `internal` is seen
//! only by callers with `view_internal` (admin implies it) — on get_ticket, get_tickets,
//! search rows (full and compact), replies of edits — is not searchable, cannot be edited by
//! those who cannot see it, is emailed only to users who may read it (a real SMTP process)
//! and is sent only to webhook endpoints marked internal.

mod api_support;
mod common;
mod notify_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_support::{assert_err, assert_ok, changes};
use axum::routing::post;
use axum::Router;
use common::Server;
use notify_support::{aiosmtpd_available, free_port, rcpts, smtp_config, SmtpSink};
use serde_json::{json, Value};

const SECRET: &str = "rootpasswordisinthevault";

fn has_secret(v: &Value) -> bool {
    v.to_string().contains(SECRET)
}

#[tokio::test]
async fn only_callers_with_view_internal_see_internal_notes() {
    let s = Server::start().await;
    let team = s
        .key_with(&["create_tickets", "edit_tickets", "view_internal"], &[])
        .await;
    let plain = s.key_with(&["create_tickets", "edit_tickets"], &[]).await;
    let t = s.create(json!({"subject": "Customer login fails"})).await;
    let id = t["id"].clone();
    let note = json!({"id": id, "change": {"type": "comment", "body": format!("Note: {SECRET}"), "internal": true}});

    // Writing one needs the privilege too.
    assert_err(
        &s.call_as(&plain, "add_ticket_change", note.clone()).await,
        403,
        "access",
        "view_internal",
    );
    assert_err(
        &s.call_as(
            &team,
            "add_ticket_change",
            json!({"id": id, "change": {"type": "change", "key": "x", "value": 1, "internal": true}}),
        )
        .await,
        400,
        "ticket",
        "only a comment",
    );
    let r = s.call_as(&team, "add_ticket_change", note).await;
    let noted = assert_ok(&r)["ticket"].clone();
    let entry = changes(&noted).last().unwrap().clone();
    assert_eq!(entry["internal"], true);
    assert!(has_secret(&entry));
    let change_id = entry["id"].clone();
    // A public comment after it.
    assert_ok(
        &s.call_as(
            &plain,
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "We are on it"}}),
        )
        .await,
    );

    // Every read path, for each kind of caller.
    for (key, sees) in [(&s.key, true), (&team, true), (&plain, false)] {
        let reads = [
            s.call_as(key, "get_ticket", json!({"id": id})).await,
            s.call_as(key, "get_ticket", json!({"num": t["num"]})).await,
            s.call_as(key, "get_tickets", json!({"ids": [id], "verbose": true}))
                .await,
            s.call_as(key, "search_tickets", json!({"query": "customer login"}))
                .await,
        ];
        for r in &reads {
            assert_eq!(has_secret(assert_ok(r)), sees, "{sees}: {}", r.1);
        }
        let r = s
            .call_as(
                key,
                "search_tickets",
                json!({"query": "customer login", "compact": true}),
            )
            .await;
        // created + note + comment, or without the note.
        assert_eq!(
            assert_ok(&r)["rows"][0]["changes"],
            if sees { 3 } else { 2 },
            "{}",
            r.1
        );
    }
    // The reply of an edit shows the ticket as its caller may see it.
    for (key, sees) in [(&s.key, true), (&team, true), (&plain, false)] {
        let r = s
            .call_as(key, "update_ticket", json!({"id": id, "server": "web1"}))
            .await;
        assert_eq!(has_secret(assert_ok(&r)), sees);
    }

    // Not searchable by its words, for anyone (the index is shared by every caller).
    for query in [SECRET.to_string(), format!("changes:{SECRET}")] {
        let r = s.call("search_tickets", json!({"query": query})).await;
        assert_eq!(assert_ok(&r)["list"]["length"], 0, "{query}");
    }
    let r = s
        .call("search_tickets", json!({"query": "changes:\"on it\""}))
        .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);

    // A note one cannot see cannot be edited or deleted either: it is not there.
    for params in [
        json!({"id": id, "change_id": change_id, "delete": true}),
        json!({"id": id, "change_id": change_id, "change": {"body": "x"}}),
    ] {
        assert_err(
            &s.call_as(&plain, "update_ticket_change", params).await,
            404,
            "notfound",
            "change not found",
        );
    }
    assert_err(
        &s.call_as(
            &plain,
            "update_ticket_change",
            json!({"id": id, "change_id": change_id, "change": {"internal": false}}),
        )
        .await,
        403,
        "access",
        "view_internal",
    );
    // Its author makes it public; now everyone sees it.
    assert_ok(
        &s.call_as(
            &team,
            "update_ticket_change",
            json!({"id": id, "change_id": change_id, "change": {"internal": false}}),
        )
        .await,
    );
    let r = s.call_as(&plain, "get_ticket", json!({"id": id})).await;
    assert!(has_secret(assert_ok(&r)));
}

/// A test's webhook receiver: the bodies it got, per path.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<(String, Value)>>>);

impl Hooks {
    fn got(&self, path: &str) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_notes_reach_only_internal_webhooks() {
    let hooks = Hooks::default();
    let (h1, h2) = (hooks.clone(), hooks.clone());
    let app = Router::new()
        .route(
            "/public",
            post(move |b: axum::Json<Value>| async move {
                h1.0.lock().unwrap().push(("/public".into(), b.0));
            }),
        )
        .route(
            "/team",
            post(move |b: axum::Json<Value>| async move {
                h2.0.lock().unwrap().push(("/team".into(), b.0));
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "[[webhooks]]\nurl = \"http://{addr}/public\"\nsecret = \"p\"\n\n\
         [[webhooks]]\nurl = \"http://{addr}/team\"\nsecret = \"t\"\ninternal = true\n"
    );
    let s = Server::start_with_config(&config, &[]).await;
    let t = s.create(json!({"subject": "Hooked"})).await;
    let id = t["id"].clone();
    assert_ok(
        &s.call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": SECRET, "internal": true}}),
        )
        .await,
    );
    assert_ok(
        &s.call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "public words"}}),
        )
        .await,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while hooks.got("/team").len() < 3 || hooks.got("/public").len() < 2 {
        assert!(Instant::now() < deadline, "{:?}", hooks.0.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let public = hooks.got("/public");
    let team = hooks.got("/team");
    // The public endpoint: created and the public comment, never the note.
    let events: Vec<&str> = public
        .iter()
        .map(|v| v["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        vec!["ticket_created", "ticket_commented"],
        "{public:?}"
    );
    assert!(public.iter().all(|v| !has_secret(v)), "{public:?}");
    assert_eq!(public[1]["data"]["changes"][0]["body"], "public words");
    // The internal endpoint: everything, the note too.
    assert_eq!(team.len(), 3, "{team:?}");
    assert!(team.iter().any(|v| v["event"] == "ticket_commented"
        && v["data"]["changes"][0]["body"] == SECRET
        && v["data"]["changes"][0]["internal"] == true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_notes_are_emailed_only_to_users_who_may_read_them() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let s = Server::start_with_config(
        &smtp_config(sink.port),
        &[("DOCKET_TICKETS__EMAIL_DEBOUNCE_SEC", "1")],
    )
    .await;
    // ann may read internal notes (a role grants it), bob may not.
    assert_ok(
        &s.call(
            "create_role",
            json!({"id": "team", "title": "Team", "privileges": {"view_internal": true}}),
        )
        .await,
    );
    for (name, roles) in [("ann", json!(["team"])), ("bob", json!([]))] {
        assert_ok(
            &s.user_call(
                "admin_create",
                json!({"username": name, "password": "password-123456", "email": format!("{name}@example.com"), "roles": roles, "privileges": {"edit_tickets": true}}),
            )
            .await,
        );
    }
    let t = s
        .create(json!({
            "subject": "Outage",
            "assignees": ["ann", "bob"],
            "cc": ["ext@example.org"],
            "notify": ["ops@example.org"],
        }))
        .await;
    sink.wait_for(1, 15).await;
    assert_ok(
        &s.call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": SECRET, "internal": true}}),
        )
        .await,
    );
    assert_ok(
        &s.call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": "A public update"}}),
        )
        .await,
    );
    let m = sink.wait_for(3, 20).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = if sink.messages().len() > m.len() {
        sink.messages()
    } else {
        m
    };
    assert_eq!(m.len(), 3, "{m:#?}");
    let with_secret: Vec<&Value> = m.iter().filter(|x| has_secret(x)).collect();
    assert_eq!(with_secret.len(), 1, "{m:#?}");
    assert_eq!(rcpts(with_secret[0]), vec!["ann@example.com"]);
    let public: Vec<&Value> = m
        .iter()
        .filter(|x| x.to_string().contains("A public update"))
        .collect();
    assert_eq!(public.len(), 1, "{m:#?}");
    assert_eq!(
        rcpts(public[0]),
        vec![
            "ann@example.com",
            "bob@example.com",
            "ext@example.org",
            "ops@example.org"
        ]
    );
}
