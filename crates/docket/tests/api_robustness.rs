//! Concurrency, durability after SIGKILL, and bad input on every ticket call: each gets a
//! clear error naming the problem and changes nothing.

mod api_support;
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use api_support::{assert_err, assert_ok, call_plain, changes, post_raw, send, ticket, total};
use common::Server;
use serde_json::{json, Value};

#[tokio::test]
async fn concurrent_creates_comments_and_updates() {
    let s = Arc::new(Server::start().await);

    // 200 creates at once: 200 distinct, consecutive numbers.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.create(json!({"subject": format!("Concurrent {i}")}))
                    .await
            })
        })
        .collect();
    let mut nums = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for task in tasks {
        let t = task.await.unwrap();
        nums.insert(t["num"].as_i64().unwrap());
        ids.insert(t["id"].as_str().unwrap().to_string());
    }
    assert_eq!(nums, (1..=200).collect::<BTreeSet<i64>>());
    assert_eq!(ids.len(), 200);
    assert_eq!(total(&s, "*").await, 200);

    // 100 comments at once on one ticket: all kept.
    let target = s.create(json!({"subject": "Busy"})).await;
    let id = target["id"].as_str().unwrap().to_string();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let (s, id) = (s.clone(), id.clone());
            tokio::spawn(async move {
                let r = s.call("add_ticket_change", json!({"id": id, "change": {"type": "comment", "body": format!("comment {i}")}})).await;
                assert_ok(&r);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let t = ticket(&s, &id).await;
    let bodies: BTreeSet<String> = changes(&t)
        .iter()
        .filter(|c| c["type"] == "comment")
        .map(|c| c["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        bodies,
        (0..100)
            .map(|i| format!("comment {i}"))
            .collect::<BTreeSet<_>>()
    );

    // Concurrent updates of different fields of one ticket: none lost.
    let edits = vec![
        json!({"subject": "All fields"}),
        json!({"status": "in_progress"}),
        json!({"assignees": ["alice", "bob"]}),
        json!({"tags": ["flag"]}),
        json!({"due": 1_900_000_000}),
        json!({"server": "db7"}),
        json!({"cc": ["ops@example.com"]}),
        json!({"notify": ["pager@example.com"]}),
        json!({"category": "general"}),
        json!({"body": "new body"}),
        json!({"type": "bug"}),
        json!({"jobs": ["jxyz"]}),
    ];
    let tasks: Vec<_> = edits
        .iter()
        .cloned()
        .map(|mut edit| {
            let (s, id) = (s.clone(), id.clone());
            edit["id"] = json!(id);
            tokio::spawn(async move { assert_ok(&s.call("update_ticket", edit).await).clone() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let t = ticket(&s, &id).await;
    for edit in &edits {
        let (field, value) = edit.as_object().unwrap().iter().next().unwrap();
        assert_eq!(&t[field], value, "lost update of {field}");
    }
    assert_eq!(
        changes(&t)
            .iter()
            .filter(|c| c["type"] == "comment")
            .count(),
        100,
        "comments survived the updates"
    );
}

#[tokio::test]
async fn acknowledged_creates_survive_sigkill() {
    let mut s = Server::start().await;
    let shared = Arc::new((
        s.client.clone(),
        s.url("/api/app/create_ticket/v1"),
        s.key.clone(),
    ));
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let (client, url, key) = &*shared;
                let mut acked = Vec::new();
                for i in 0..19 {
                    let res = client
                        .post(url)
                        .header("X-API-Key", key)
                        .json(&json!({"subject": format!("Durable {task}-{i}"), "body": "x".repeat(200)}))
                        .send()
                        .await
                        .expect("request");
                    let v: Value = res.json().await.expect("json");
                    assert_eq!(v["code"], 0, "{v}");
                    acked.push((v["ticket"]["id"].as_str().unwrap().to_string(), v["ticket"]["num"].as_i64().unwrap()));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    s.kill9();
    s.restart();
    assert_eq!(acked.len(), 304);
    for (id, num) in &acked {
        let r = s.call("get_ticket", json!({"id": id})).await;
        assert_eq!(
            assert_ok(&r)["ticket"]["num"],
            *num,
            "ticket {id} after the crash"
        );
        let r = s.call("get_ticket", json!({"num": num})).await;
        assert_eq!(assert_ok(&r)["ticket"]["id"], id.as_str());
    }
    assert_eq!(total(&s, "*").await, 304);
    assert_eq!(
        total(&s, "durable").await,
        304,
        "the search index survived too"
    );
    // Numbering continues after the crash without reuse.
    assert_eq!(s.create(json!({"subject": "after"})).await["num"], 305);
}

/// Bad parameters for each ticket call: (call, params, code, phrase).
fn bad_inputs(id: &str, cid: &str) -> Vec<(&'static str, Value, &'static str, String)> {
    let long_subject = "s".repeat(1001);
    let big_body = "b".repeat(1024 * 1024 + 1);
    let mut cases: Vec<(&'static str, Value, &'static str, String)> = Vec::new();
    let mut add = |call, params: Value, code, phrase: &str| {
        cases.push((call, params, code, phrase.to_string()))
    };
    // Ticket fields, checked the same way by create and update.
    for call in ["create_ticket", "update_ticket"] {
        let with = |extra: Value| {
            let mut p = json!({"subject": "Bad input"});
            if call == "update_ticket" {
                p = json!({"id": id});
            }
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            p
        };
        add(
            call,
            with(json!({"subject": 5.5})),
            "ticket",
            "subject (must be a string)",
        );
        add(
            call,
            with(json!({"subject": long_subject})),
            "ticket",
            "subject (longer than 1000 characters)",
        );
        add(
            call,
            with(json!({"body": big_body})),
            "ticket",
            "body (larger than 1048576 bytes)",
        );
        add(
            call,
            with(json!({"body": ["x"]})),
            "ticket",
            "body (must be a string)",
        );
        add(
            call,
            with(json!({"type": "saga"})),
            "ticket",
            "unknown ticket type: \"saga\"",
        );
        add(
            call,
            with(json!({"type": 3})),
            "ticket",
            "ticket type: \"3\"",
        );
        add(
            call,
            with(json!({"status": "limbo"})),
            "ticket",
            "unknown ticket status: \"limbo\"",
        );
        add(
            call,
            with(json!({"tags": ["nosuchtag"]})),
            "ticket",
            "unknown tag: \"nosuchtag\"",
        );
        add(call, with(json!({"tags": ["Bad Tag"]})), "ticket", "tags");
        add(
            call,
            with(json!({"tags": "flag", "category": "nosuchcat"})),
            "ticket",
            "unknown category: \"nosuchcat\"",
        );
        add(
            call,
            with(json!({"category": "Not An Id"})),
            "ticket",
            "category",
        );
        add(
            call,
            with(json!({"notify": ["not-an-email"]})),
            "ticket",
            "\"not-an-email\" is not a valid email address",
        );
        add(call, with(json!({"notify": ["a@b"]})), "ticket", "notify");
        add(
            call,
            with(json!({"cc": ["bad@@example.com"]})),
            "ticket",
            "cc",
        );
        add(
            call,
            with(json!({"assignees": 5})),
            "ticket",
            "assignees (must be an array)",
        );
        add(
            call,
            with(json!({"assignees": [1, 2]})),
            "ticket",
            "assignees (must be an array of strings)",
        );
        add(
            call,
            with(json!({"assignees": ["no spaces allowed"]})),
            "ticket",
            "not a valid username",
        );
        add(
            call,
            with(
                json!({"assignees": vec!["u"; 0].into_iter().chain((0..201).map(|_| "x")).collect::<Vec<_>>()}),
            ),
            "ticket",
            "assignees",
        );
        add(call, with(json!({"due": "whenever"})), "ticket", "due");
        add(
            call,
            with(json!({"events": {"id": "e"}})),
            "ticket",
            "events",
        );
        add(
            call,
            with(json!({"events": [{"id": "e", "bogus": 1}]})),
            "ticket",
            "bogus",
        );
        add(
            call,
            with(json!({"server": "x".repeat(300)})),
            "ticket",
            "server",
        );
        add(call, with(json!({"jobs": [5]})), "ticket", "jobs");
        add(
            call,
            with(json!({"priority": 3})),
            "ticket",
            "unknown ticket priority",
        );
        add(
            call,
            with(json!({"priority": "asap"})),
            "ticket",
            "unknown ticket priority: \"asap\"",
        );
    }
    add(
        "update_ticket",
        json!({"subject": "no id"}),
        "ticket",
        "missing parameter: id",
    );
    add(
        "update_ticket",
        json!({"id": [7], "subject": "x"}),
        "ticket",
        "id (must be a string)",
    );
    add(
        "update_ticket",
        json!({"id": id, "subject": " "}),
        "ticket",
        "subject (must not be blank)",
    );
    add(
        "create_ticket",
        json!({"subject": "x", "id": -12}),
        "ticket",
        "id",
    );
    add("get_ticket", json!({"num": -1}), "ticket", "num");
    add("get_ticket", json!({"id": ["a"]}), "ticket", "id");
    add("get_tickets", json!({"ids": {"a": 1}}), "ticket", "ids");
    add(
        "get_tickets",
        json!({"verbose": "loud", "ids": [id]}),
        "api",
        "verbose",
    );
    add("search_tickets", json!({"limit": 10_001}), "api", "limit");
    add(
        "search_tickets",
        json!({"query": "(status = )"}),
        "ticket",
        "invalid search query",
    );
    add(
        "add_ticket_change",
        json!({"change": {"type": "comment", "body": "x"}}),
        "ticket",
        "missing parameter: id",
    );
    add(
        "add_ticket_change",
        json!({"id": id, "change": []}),
        "ticket",
        "change (must be an object)",
    );
    add(
        "add_ticket_change",
        json!({"id": id, "change": {"type": "comment", "body": "b".repeat(1024 * 1024 + 1)}}),
        "ticket",
        "body (larger than",
    );
    add(
        "add_ticket_change",
        json!({"id": id, "change": {"type": "change", "key": "Bad Key"}}),
        "ticket",
        "key",
    );
    add(
        "update_ticket_change",
        json!({"id": id, "change_id": cid, "delete": "yes please"}),
        "api",
        "delete",
    );
    add(
        "update_ticket_change",
        json!({"id": id, "change_id": cid, "change": {"type": "shout"}}),
        "ticket",
        "type must be one of",
    );
    add(
        "update_ticket_change",
        json!({"id": id, "change_id": 5.5, "change": {}}),
        "ticket",
        "change_id",
    );
    add(
        "delete_ticket",
        json!({"id": 5.5}),
        "ticket",
        "id (must be a string)",
    );
    add(
        "delete_ticket",
        json!({"id": ""}),
        "ticket",
        "missing parameter: id",
    );
    cases
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let s = Server::start().await;
    let t = s
        .create(json!({"subject": "Target", "body": "original", "tags": ["flag"]}))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "keep me"}}),
        )
        .await;
    let cid = changes(&assert_ok(&r)["ticket"]).last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = ticket(&s, &id).await;

    for (call, params, code, phrase) in bad_inputs(&id, &cid) {
        let r = s.call(call, params.clone()).await;
        let shown = params.to_string();
        let shown = &shown[..shown.len().min(120)];
        assert_eq!(r.1["code"], code, "{call} {shown}: {}", r.1);
        assert_eq!(r.0, 400, "{call} {shown}: {}", r.1);
        let desc = r.1["description"].as_str().unwrap().to_lowercase();
        assert!(
            desc.contains(&phrase.to_lowercase()),
            "{call} {shown}: {desc:?} should mention {phrase:?}"
        );
        // The same through the route without /v1: HTTP 200, same code.
        let r = call_plain(&s, call, params).await;
        assert_eq!(
            (r.0, &r.1["code"]),
            (200, &json!(code)),
            "{call} {shown} without /v1"
        );
    }
    assert_eq!(
        ticket(&s, &id).await,
        before,
        "no bad call changed the ticket"
    );
    assert_eq!(total(&s, "*").await, 1, "no bad call created a ticket");

    // Malformed JSON, wrong content type: JSON errors, nothing changes.
    for call in [
        "create_ticket",
        "update_ticket",
        "add_ticket_change",
        "delete_ticket",
    ] {
        let path = format!("/api/app/{call}/v1");
        let r = post_raw(
            &s,
            &path,
            "application/json",
            format!("{{\"id\": \"{id}\", \"subject\": "),
        )
        .await;
        assert_err(&r, 400, "api", "malformed json");
        let r = post_raw(&s, &path, "text/csv", "id,subject").await;
        assert_err(&r, 400, "api", "content type");
    }
    assert_eq!(ticket(&s, &id).await, before);
    assert_eq!(total(&s, "*").await, 1);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let s = Server::start_with_env(&[("DOCKET_SERVER__MAX_BODY_BYTES", "2048")]).await;
    let t = s.create(json!({"subject": "Small"})).await;
    let id = t["id"].as_str().unwrap().to_string();
    let big = "x".repeat(3000);
    let cases = [
        ("create_ticket", json!({"subject": "Big", "body": big})),
        ("update_ticket", json!({"id": id, "body": big})),
        (
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": big}}),
        ),
    ];
    for (call, params) in &cases {
        for path in [format!("/api/app/{call}/v1"), format!("/api/app/{call}")] {
            let r = send(
                s.client
                    .post(s.url(&path))
                    .header("X-API-Key", &s.key)
                    .json(params),
            )
            .await;
            assert_err(&r, 413, "api", "max_body_bytes");
        }
    }
    // A url-encoded form and a multipart body over the limit too.
    let r = post_raw(
        &s,
        "/api/app/create_ticket/v1",
        "application/x-www-form-urlencoded",
        format!("subject=big&body={big}"),
    )
    .await;
    assert_err(&r, 413, "api", "2048 bytes");
    assert_eq!(ticket(&s, &id).await, t);
    assert_eq!(total(&s, "*").await, 1);
    // Under the limit still works.
    assert_ok(
        &s.call("update_ticket", json!({"id": id, "body": "x".repeat(1000)}))
            .await,
    );
}

#[tokio::test]
async fn pathological_bodies_are_cleaned_in_linear_time() {
    let s = Server::start().await;
    // Each close to the 1 MiB body limit; a quadratic sanitizer takes minutes on these.
    let bodies = [
        "<script></script>".repeat(61_000),
        "<a".repeat(520_000),
        "<a<a<a".repeat(170_000) + "\n\n>",
        "<!--".repeat(260_000),
        "javascript".repeat(104_000),
    ];
    for body in bodies {
        assert!(body.len() <= 1024 * 1024);
        let started = std::time::Instant::now();
        let t = s.create(json!({"subject": "Heavy", "body": body})).await;
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(5),
            "took {took:?} for {}",
            &body[..12]
        );
        assert!(
            !t["body"].as_str().unwrap().contains("<script"),
            "no script survived"
        );
    }
}
