//! SPEC §2–3 and §5 over real HTTP: every ticket call, its defaults and history rules,
//! sanitizing, due dates, and configured types/statuses/templates.

mod api_support;
mod common;

use api_support::{
    assert_err, assert_ok, change_kinds, changes, day_start, multipart, now, post_raw, ticket,
    total,
};
use common::Server;
use serde_json::{json, Value};

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field}: {v}"))
}

#[tokio::test]
async fn get_ticket_and_get_tickets() {
    let s = Server::start().await;
    let a = s
        .create(json!({"subject": "Alpha", "body": "alpha body"}))
        .await;
    let b = s
        .create(json!({"subject": "Bravo", "body": "bravo body"}))
        .await;
    let (ida, idb) = (str_of(&a, "id"), str_of(&b, "id"));
    assert_eq!(b["num"].as_i64().unwrap(), a["num"].as_i64().unwrap() + 1);

    // By id, by num (number or numeric text), with the whole record.
    for params in [
        json!({"id": ida}),
        json!({"num": a["num"]}),
        json!({"num": a["num"].to_string()}),
    ] {
        let r = s.call("get_ticket", params.clone()).await;
        assert_eq!(assert_ok(&r)["ticket"], a, "{params}");
    }
    assert_err(
        &s.call("get_ticket", json!({})).await,
        400,
        "ticket",
        "id or num",
    );
    assert_err(
        &s.call("get_ticket", json!({"id": ""})).await,
        400,
        "ticket",
        "missing parameter: id or num",
    );
    assert_err(
        &s.call("get_ticket", json!({"id": null, "num": null})).await,
        400,
        "ticket",
        "missing parameter: id or num",
    );
    assert_err(
        &s.call("get_ticket", json!({"id": 5})).await,
        400,
        "ticket",
        "id (must be a string)",
    );
    assert_err(
        &s.call("get_ticket", json!({"num": "x"})).await,
        400,
        "ticket",
        "num",
    );
    assert_err(
        &s.call("get_ticket", json!({"num": 0})).await,
        400,
        "ticket",
        "num",
    );
    assert_err(
        &s.call("get_ticket", json!({"id": "tmissing"})).await,
        404,
        "notfound",
        "tmissing",
    );
    assert_err(
        &s.call("get_ticket", json!({"num": 999})).await,
        404,
        "notfound",
        "#999",
    );

    // get_tickets: order kept, error slot for a missing one, brief without `verbose`.
    let r = s
        .call("get_tickets", json!({"ids": [idb, "tmissing", ida]}))
        .await;
    let slots = assert_ok(&r)["tickets"].as_array().unwrap().clone();
    assert_eq!(slots.len(), 3);
    assert_eq!(
        (&slots[0]["id"], &slots[2]["id"]),
        (&json!(idb), &json!(ida))
    );
    assert_eq!(
        slots[1].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["err"]
    );
    assert!(
        str_of(&slots[1], "err").contains("tmissing"),
        "{}",
        slots[1]
    );
    for slot in [&slots[0], &slots[2]] {
        assert!(
            slot.get("body").is_none() && slot.get("changes").is_none(),
            "brief: {slot}"
        );
        assert!(slot["subject"].is_string(), "{slot}");
    }
    let r = s
        .call(
            "get_tickets",
            json!({"ids": format!("{ida},{idb}"), "verbose": true}),
        )
        .await;
    let slots = assert_ok(&r)["tickets"].as_array().unwrap().clone();
    assert_eq!(slots, vec![a.clone(), b.clone()], "verbose: whole records");
    assert_err(
        &s.call("get_tickets", json!({})).await,
        400,
        "ticket",
        "missing parameter: ids",
    );
    assert_err(
        &s.call("get_tickets", json!({"ids": 5})).await,
        400,
        "ticket",
        "ids",
    );
    assert_err(
        &s.call("get_tickets", json!({"ids": [5]})).await,
        400,
        "ticket",
        "ids",
    );
}

/// The value a sort field orders by, as the wire shows it.
fn sort_key(t: &Value, field: &str) -> Value {
    match field {
        "_id" => t["num"].clone(),
        f => t[f].clone(),
    }
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        _ => panic!("incomparable {a} {b}"),
    }
}

#[tokio::test]
async fn search_sorts_pages_and_compact_rows() {
    let s = Server::start().await;
    // Duplicate values in each field so the `num` tie-break shows.
    let specs = [
        ("delta", "open", "bug", 1_900_000_000),
        ("alpha", "closed", "task", 0),
        ("charlie", "open", "bug", 1_800_000_000),
        ("alpha", "draft", "feature", 1_900_000_000),
        ("bravo", "in_progress", "task", 0),
        ("echo", "open", "incident", 1_700_000_000),
    ];
    let mut made = Vec::new();
    for (subject, status, kind, due) in specs {
        made.push(
            s.create(json!({"subject": subject, "status": status, "type": kind, "due": due, "body": "some text"}))
                .await,
        );
    }
    // A later edit so `modified` differs from `created` for one ticket.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = s
        .call(
            "update_ticket",
            json!({"id": made[1]["id"], "server": "db1"}),
        )
        .await;
    made[1] = assert_ok(&r)["ticket"].clone();

    for field in [
        "_id", "num", "created", "modified", "due", "subject", "status", "type",
    ] {
        for dir in [1, -1] {
            let r = s
                .call(
                    "search_tickets",
                    json!({"query": "*", "sort_by": field, "sort_dir": dir, "limit": 100}),
                )
                .await;
            let got: Vec<i64> = assert_ok(&r)["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["num"].as_i64().unwrap())
                .collect();
            let mut expect = made.clone();
            expect.sort_by(|x, y| {
                cmp_values(&sort_key(x, field), &sort_key(y, field))
                    .then(x["num"].as_i64().cmp(&y["num"].as_i64()))
            });
            if dir < 0 {
                expect.reverse();
            }
            let expect: Vec<i64> = expect.iter().map(|t| t["num"].as_i64().unwrap()).collect();
            assert_eq!(got, expect, "sort_by {field} dir {dir}");
            assert_eq!(r.1["list"]["length"], 6);
        }
    }

    // Defaults: query *, limit 1, newest first.
    let r = s.call("search_tickets", json!({})).await;
    let v = assert_ok(&r);
    assert_eq!(
        (v["rows"].as_array().unwrap().len(), &v["list"]["length"]),
        (1, &json!(6))
    );
    assert_eq!(v["rows"][0]["num"], made[5]["num"]);
    assert_eq!(
        v["rows"][0]["changes"].as_array().map(Vec::len),
        Some(1),
        "full rows by default"
    );
    assert_eq!(v["rows"][0]["body"], "some text");

    // offset + limit, with an exact total.
    let r = s
        .call("search_tickets", json!({"query": "status:open", "sort_by": "num", "sort_dir": 1, "offset": 1, "limit": 1}))
        .await;
    let v = assert_ok(&r);
    assert_eq!(v["list"]["length"], 3);
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    assert_eq!(v["rows"][0]["num"], made[2]["num"]);
    let r = s
        .call(
            "search_tickets",
            json!({"query": "*", "offset": 10, "limit": 5}),
        )
        .await;
    assert_eq!(assert_ok(&r)["rows"], json!([]));
    assert_eq!(r.1["list"]["length"], 6);

    // compact: no body, changes become their count.
    let r = s
        .call(
            "search_tickets",
            json!({"query": "*", "compact": true, "limit": 100, "sort_dir": 1}),
        )
        .await;
    for (row, full) in assert_ok(&r)["rows"].as_array().unwrap().iter().zip(&made) {
        assert!(row.get("body").is_none(), "{row}");
        assert_eq!(row["changes"], json!(changes(full).len()), "{row}");
        assert_eq!(row["subject"], full["subject"]);
    }
    assert_eq!(total(&s, "alpha").await, 2);
    assert_eq!(total(&s, "type:bug status:open").await, 2);

    // Bad search parameters name the problem.
    let bad = [
        (json!({"sort_by": "color"}), "sort_by"),
        (json!({"sort_dir": 0}), "sort_dir"),
        (json!({"sort_dir": 2}), "sort_dir"),
        (json!({"limit": 0}), "limit"),
        (json!({"limit": "ten"}), "limit"),
        (json!({"offset": -1}), "offset"),
        (json!({"query": ["a"]}), "query"),
        (json!({"compact": "maybe"}), "compact"),
    ];
    for (params, phrase) in bad {
        let r = s.call("search_tickets", params.clone()).await;
        assert_eq!(r.0, 400, "{params}: {}", r.1);
        assert!(
            str_of(&r.1, "description").contains(phrase),
            "{params}: {}",
            r.1
        );
    }
    assert_err(
        &s.call("search_tickets", json!({"query": "colour:red"}))
            .await,
        400,
        "ticket",
        "invalid search query",
    );
}

#[tokio::test]
async fn create_ticket_defaults_ids_and_rejections() {
    let s = Server::start().await;
    let before = now();
    let t = s.create(json!({"subject": "Minimal"})).await;
    assert_eq!(t["num"], 1);
    assert!(str_of(&t, "id").starts_with('t'), "{t}");
    for (field, expect) in [
        ("status", json!("open")),
        ("body", json!("")),
        ("due", json!(0)),
        ("type", json!("issue")),
        ("category", json!("")),
        ("assignees", json!([])),
        ("cc", json!([])),
        ("notify", json!([])),
        ("tags", json!([])),
        ("events", json!([])),
        ("jobs", json!([])),
        ("files", json!([])),
    ] {
        assert_eq!(t[field], expect, "default {field}");
    }
    let created = t["created"].as_i64().unwrap();
    assert!(created >= before && created <= now() + 1);
    assert_eq!(t["modified"], t["created"]);
    assert_eq!(change_kinds(&t), vec![("change".into(), "created".into())]);
    let key_user = str_of(&t, "username").to_string();
    assert!(
        key_user.starts_with('k'),
        "an API key writes as its own id: {key_user}"
    );
    assert_eq!(changes(&t)[0]["username"], key_user.as_str());

    // Every field set at once.
    let full = s
        .create(json!({
            "subject": "Full", "body": "**md**", "type": "bug", "status": "in_progress",
            "category": "general", "server": "db1", "assignees": ["admin", "bob"],
            "cc": ["carol", "ops@example.com"], "notify": ["pager@example.com"],
            "tags": ["important"], "due": 1_900_000_000, "jobs": ["jabc"],
            "events": [{"id": "ev1", "targets": ["main"], "params": {"x": 1}}]
        }))
        .await;
    assert_eq!(full["category"], "general");
    assert_eq!(full["cc"], json!(["carol", "ops@example.com"]));
    assert_eq!(
        full["events"],
        json!([{"id": "ev1", "targets": ["main"], "params": {"x": 1}}])
    );
    assert_eq!(full["due"], 1_900_000_000);

    // Server-owned fields are ignored.
    let t = s
        .create(json!({
            "subject": "Owned", "num": 999, "created": 5, "modified": 5, "username": "mallory",
            "changes": [{"type": "comment", "body": "forged"}],
            "files": [{"id": "fx", "path": "files/x"}]
        }))
        .await;
    assert_eq!(t["num"], 3);
    assert!(t["created"].as_i64().unwrap() >= before);
    assert_eq!(t["username"], key_user.as_str());
    assert_eq!(change_kinds(&t).len(), 1);
    assert_eq!(t["files"], json!([]));

    // A client id is accepted; a duplicate is an error.
    let mine = s
        .create(json!({"id": "my_ticket_1", "subject": "Mine"}))
        .await;
    assert_eq!(mine["id"], "my_ticket_1");
    assert_eq!(ticket(&s, "my_ticket_1").await["subject"], "Mine");
    let count = total(&s, "*").await;
    let rejects: Vec<(Value, &str, &str)> = vec![
        (
            json!({"id": "my_ticket_1", "subject": "Again"}),
            "ticket",
            "already exists",
        ),
        (json!({"id": "Bad-Id", "subject": "x"}), "ticket", "id"),
        (
            json!({"id": "x".repeat(65), "subject": "x"}),
            "ticket",
            "id",
        ),
        (
            json!({"subject": "x", "colour": "red"}),
            "ticket",
            "\"colour\"",
        ),
        (
            json!({"subject": "x", "template": "incident", "job": "jabc"}),
            "ticket",
            "unknown template",
        ),
        (
            json!({"subject": "x", "template": "alert"}),
            "ticket",
            "missing parameter: alert",
        ),
        (json!({}), "ticket", "subject"),
        (json!({"subject": "   "}), "ticket", "subject"),
        (json!({"subject": "<b></b>"}), "ticket", "subject"),
    ];
    for (params, code, phrase) in rejects {
        let r = s.call("create_ticket", params.clone()).await;
        assert_err(&r, 400, code, phrase);
    }
    // A rejected create with files: a clear error, nothing created (files: files_api.rs).
    let (ct, body) = multipart(&json!({"subject": "   "}), &[("file1", "a.txt", b"hello")]);
    let r = post_raw(&s, "/api/app/create_ticket/v1", &ct, body).await;
    assert_err(&r, 400, "ticket", "subject");
    assert_eq!(
        total(&s, "*").await,
        count,
        "no rejected create left a ticket"
    );
    // A failed create does not use up a number.
    assert_eq!(s.create(json!({"subject": "Next"})).await["num"], count + 1);
}

#[tokio::test]
async fn update_ticket_merges_and_records_history() {
    let s = Server::start().await;
    let t = s
        .create(
            json!({"subject": "Original", "body": "first", "tags": ["flag"], "assignees": ["bob"]}),
        )
        .await;
    let id = str_of(&t, "id").to_string();
    let user = str_of(&t, "username").to_string();

    // Shallow merge: only the sent fields change.
    let r = s
        .call("update_ticket", json!({"id": id, "subject": "Renamed"}))
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    assert_eq!(
        (&u["subject"], &u["body"], &u["tags"], &u["assignees"]),
        (
            &json!("Renamed"),
            &json!("first"),
            &json!(["flag"]),
            &json!(["bob"])
        )
    );
    assert_eq!((&u["num"], &u["created"]), (&t["num"], &t["created"]));

    let r = s
        .call(
            "update_ticket",
            json!({"id": id, "status": "closed", "assignees": ["alice"], "body": "second",
                   "tags": ["flag", "important"], "due": 1_900_000_000, "type": "bug",
                   "cc": ["ops@example.com"], "notify": ["n@example.com"], "server": "db2",
                   "category": "general"}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    let by_key = |key: &str| -> Value {
        changes(&u)
            .iter()
            .find(|c| c["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} entry: {u}"))
    };
    for (key, kind, value) in [
        ("subject", "change", Some(json!("Renamed"))),
        ("body", "change", None),
        ("type", "change", Some(json!("bug"))),
        ("category", "change", Some(json!("general"))),
        ("server", "change", Some(json!("db2"))),
        ("status", "status", Some(json!("closed"))),
        ("assignees", "assignment", Some(json!(["alice"]))),
        ("due", "change", Some(json!(1_900_000_000))),
        ("cc", "change", Some(json!(["ops@example.com"]))),
        ("notify", "change", Some(json!(["n@example.com"]))),
        ("tags", "change", Some(json!(["flag", "important"]))),
    ] {
        let c = by_key(key);
        assert_eq!(c["type"], kind, "{c}");
        assert_eq!(c.get("value").cloned(), value, "{c}");
        assert_eq!(c["username"], user.as_str());
        assert!(str_of(&c, "id").starts_with('c'), "{c}");
        assert!(c["date"].as_i64().unwrap() >= t["created"].as_i64().unwrap());
    }
    assert_eq!(
        changes(&u).len(),
        12,
        "created + one per changed field: {u}"
    );

    // Same key, same minute, same user: collapses into the latest entry.
    let r = s
        .call("update_ticket", json!({"id": id, "status": "on_hold"}))
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    let statuses: Vec<&Value> = changes(&u)
        .iter()
        .filter(|c| c["key"] == "status")
        .collect();
    assert_eq!(statuses.len(), 1, "{u}");
    assert_eq!(statuses[0]["value"], "on_hold");
    assert_eq!(changes(&u).len(), 12);
    // An update that changes nothing records nothing.
    let r = s
        .call(
            "update_ticket",
            json!({"id": id, "status": "on_hold", "subject": "Renamed"}),
        )
        .await;
    assert_eq!(changes(&assert_ok(&r)["ticket"]).len(), 12);
    // A different author gets an entry of their own.
    let other = s.key_with(&["edit_tickets"], &[]).await;
    let r = s
        .call_as(&other, "update_ticket", json!({"id": id, "status": "open"}))
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    assert_eq!(
        changes(&u).iter().filter(|c| c["key"] == "status").count(),
        2
    );

    // Drafts record nothing; publishing records the edits.
    let d = s
        .create(json!({"subject": "Draft", "status": "draft"}))
        .await;
    let did = str_of(&d, "id");
    let r = s
        .call(
            "update_ticket",
            json!({"id": did, "subject": "Draft 2", "body": "x", "tags": ["flag"]}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    assert_eq!(u["subject"], "Draft 2");
    assert_eq!(change_kinds(&u), vec![("change".into(), "created".into())]);
    let r = s
        .call("update_ticket", json!({"id": did, "status": "open"}))
        .await;
    let kinds = change_kinds(&assert_ok(&r)["ticket"]);
    assert!(
        kinds.contains(&("status".into(), "status".into())),
        "{kinds:?}"
    );

    // Errors, and the ticket is unchanged by them.
    let before = ticket(&s, &id).await;
    assert_err(
        &s.call("update_ticket", json!({"subject": "x"})).await,
        400,
        "ticket",
        "missing parameter: id",
    );
    assert_err(
        &s.call("update_ticket", json!({"id": "tnope", "subject": "x"}))
            .await,
        404,
        "notfound",
        "tnope",
    );
    assert_err(
        &s.call("update_ticket", json!({"id": id, "subject": ""}))
            .await,
        400,
        "ticket",
        "subject",
    );
    assert_err(
        &s.call(
            "update_ticket",
            json!({"id": id, "num": 5, "colour": "red"}),
        )
        .await,
        400,
        "ticket",
        "colour",
    );
    assert_eq!(ticket(&s, &id).await, before);
}

#[tokio::test]
async fn comments_edits_and_deletes() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Talk"})).await;
    let id = str_of(&t, "id").to_string();

    let r = s
        .call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "First!", "id": "cforged", "username": "mallory", "date": 1}}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    let c = changes(&u).last().unwrap().clone();
    assert_eq!(
        (&c["type"], &c["body"], &c["username"]),
        (&json!("comment"), &json!("First!"), &t["username"])
    );
    assert!(
        str_of(&c, "id").starts_with('c') && c["id"] != "cforged",
        "{c}"
    );
    assert!(c["date"].as_i64().unwrap() >= t["created"].as_i64().unwrap());
    assert!(u["modified"].as_i64() >= t["modified"].as_i64());
    let cid = str_of(&c, "id").to_string();

    for (change, phrase) in [
        (json!({"type": "comment"}), "non-blank body"),
        (json!({"type": "comment", "body": "  "}), "non-blank body"),
        (json!({"type": "shout", "body": "x"}), "type must be one of"),
        (json!({"body": "x"}), "change.type"),
        (json!({"type": "comment", "body": 5}), "body"),
        (
            json!({"type": "comment", "body": "x", "mood": "happy"}),
            "mood",
        ),
    ] {
        let r = s
            .call("add_ticket_change", json!({"id": id, "change": change}))
            .await;
        assert_err(&r, 400, "ticket", phrase);
    }
    assert_err(
        &s.call("add_ticket_change", json!({"id": id})).await,
        400,
        "ticket",
        "missing parameter: change",
    );
    assert_err(
        &s.call("add_ticket_change", json!({"id": id, "change": "hi"}))
            .await,
        400,
        "ticket",
        "change",
    );
    assert_err(
        &s.call(
            "add_ticket_change",
            json!({"id": "tnope", "change": {"type": "comment", "body": "x"}}),
        )
        .await,
        404,
        "notfound",
        "tnope",
    );
    assert_eq!(
        changes(&ticket(&s, &id).await).len(),
        2,
        "rejected comments left nothing"
    );

    // Edit: merged, marked edited.
    let r = s
        .call(
            "update_ticket_change",
            json!({"id": id, "change_id": cid, "change": {"body": "First (edited)"}}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    let c = changes(&u)
        .iter()
        .find(|c| c["id"] == cid.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (&c["body"], &c["type"]),
        (&json!("First (edited)"), &json!("comment"))
    );
    assert!(c["edited"].as_i64().is_some(), "{c}");
    assert_err(
        &s.call(
            "update_ticket_change",
            json!({"id": id, "change_id": cid, "change": {"body": ""}}),
        )
        .await,
        400,
        "ticket",
        "non-blank body",
    );
    assert_err(
        &s.call("update_ticket_change", json!({"id": id, "change_id": cid}))
            .await,
        400,
        "ticket",
        "change",
    );
    assert_err(
        &s.call("update_ticket_change", json!({"id": id, "change": {}}))
            .await,
        400,
        "ticket",
        "change_id",
    );
    assert_err(
        &s.call(
            "update_ticket_change",
            json!({"id": id, "change_id": "cnope", "delete": true}),
        )
        .await,
        404,
        "notfound",
        "cnope",
    );

    // Delete: gone, and a {type: change, key: delete} entry records it.
    let r = s
        .call(
            "update_ticket_change",
            json!({"id": id, "change_id": cid, "delete": true}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    assert!(!changes(&u).iter().any(|c| c["id"] == cid.as_str()));
    assert_eq!(
        change_kinds(&u),
        vec![
            ("change".into(), "created".into()),
            ("change".into(), "delete".into())
        ]
    );

    // On a draft a delete leaves no trace.
    let d = s
        .create(json!({"subject": "Draft talk", "status": "draft"}))
        .await;
    let did = str_of(&d, "id");
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": did, "change": {"type": "comment", "body": "note"}}),
        )
        .await;
    let dcid = changes(&assert_ok(&r)["ticket"]).last().unwrap()["id"].clone();
    let r = s
        .call(
            "update_ticket_change",
            json!({"id": did, "change_id": dcid, "delete": true}),
        )
        .await;
    assert_eq!(
        change_kinds(&assert_ok(&r)["ticket"]),
        vec![("change".into(), "created".into())]
    );

    // Only the author or an admin may edit or delete a change.
    let ann = s.key_with(&["edit_tickets"], &[]).await;
    let bob = s.key_with(&["edit_tickets"], &[]).await;
    let r = s
        .call_as(
            &ann,
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "ann's"}}),
        )
        .await;
    let ann_cid = changes(&assert_ok(&r)["ticket"]).last().unwrap()["id"].clone();
    let before = ticket(&s, &id).await;
    for params in [
        json!({"id": id, "change_id": ann_cid, "change": {"body": "bob was here"}}),
        json!({"id": id, "change_id": ann_cid, "delete": true}),
    ] {
        assert_err(
            &s.call_as(&bob, "update_ticket_change", params).await,
            403,
            "access",
            "author",
        );
    }
    assert_eq!(ticket(&s, &id).await, before);
    let r = s
        .call_as(
            &ann,
            "update_ticket_change",
            json!({"id": id, "change_id": ann_cid, "change": {"body": "ann's, edited"}}),
        )
        .await;
    assert_ok(&r);
    let r = s
        .call(
            "update_ticket_change",
            json!({"id": id, "change_id": ann_cid, "delete": true}),
        )
        .await;
    assert!(!changes(&assert_ok(&r)["ticket"])
        .iter()
        .any(|c| c["id"] == ann_cid));
}

#[tokio::test]
async fn files_calls_and_delete_ticket() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Doomed"})).await;
    let keep = s.create(json!({"subject": "Kept"})).await;
    let id = str_of(&t, "id");

    let r = s
        .call("upload_user_ticket_files", json!({"ticket": id}))
        .await;
    assert_err(&r, 400, "file", "no file upload data");
    let (ct, body) = multipart(
        &json!({"ticket": id, "save": true}),
        &[("file1", "a.txt", b"hi")],
    );
    let r = post_raw(&s, "/api/app/upload_user_ticket_files/v1", &ct, body).await;
    assert_eq!(assert_ok(&r)["files"].as_array().map(Vec::len), Some(1));
    let r = s
        .call(
            "delete_ticket_file",
            json!({"id": id, "path": "files/x/y/z/a.txt"}),
        )
        .await;
    assert_err(&r, 404, "notfound", "file not found");
    assert_eq!(
        ticket(&s, id).await["files"].as_array().map(Vec::len),
        Some(1)
    );

    assert_err(
        &s.call("delete_ticket", json!({})).await,
        400,
        "ticket",
        "missing parameter: id",
    );
    assert_ok(&s.call("delete_ticket", json!({"id": id})).await);
    assert_err(
        &s.call("get_ticket", json!({"id": id})).await,
        404,
        "notfound",
        id,
    );
    assert_err(
        &s.call("get_ticket", json!({"num": t["num"]})).await,
        404,
        "notfound",
        "#1",
    );
    assert_err(
        &s.call("delete_ticket", json!({"id": id})).await,
        404,
        "notfound",
        id,
    );
    assert_err(
        &s.call("update_ticket", json!({"id": id, "subject": "back"}))
            .await,
        404,
        "notfound",
        id,
    );
    assert_eq!(total(&s, "*").await, 1);
    assert_eq!(total(&s, "doomed").await, 0, "gone from the search index");
    assert_eq!(ticket(&s, str_of(&keep, "id")).await, keep);
    // Numbers are never reused.
    assert_eq!(s.create(json!({"subject": "After"})).await["num"], 3);
}

#[tokio::test]
async fn html_is_sanitized_in_subjects_bodies_and_comments() {
    let s = Server::start().await;
    let t = s
        .create(json!({
            "subject": "<b>Disk</b> full <script>alert(1)</script>on <i>db1</i>",
            "body": "Hello <em>world</em><script>steal()</script><style>p{}</style>\n\n\
                     [x](javascript:alert(1)) and 2 < 3 > 1 **bold** <a href=\"javascript:evil()\">link</a>"
        }))
        .await;
    assert_eq!(t["subject"], "Disk full on db1");
    let body = str_of(&t, "body");
    assert_eq!(
        body,
        "Hello world\n\n[x](blocked:alert(1)) and 2 < 3 > 1 **bold** link"
    );
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": "ok <img src=x onerror=alert(1)>fine<script>x</script> [a](JAVASCRIPT:y) 2 < 3"}}),
        )
        .await;
    let c = changes(&assert_ok(&r)["ticket"]).last().unwrap().clone();
    assert_eq!(c["body"], "ok fine [a](blocked:y) 2 < 3");
    let r = s
        .call(
            "update_ticket",
            json!({"id": t["id"], "body": "<script>x</script>", "subject": "<u>New</u> subject"}),
        )
        .await;
    let u = assert_ok(&r)["ticket"].clone();
    assert_eq!(
        (&u["body"], &u["subject"]),
        (&json!(""), &json!("New subject"))
    );
    // Sanitized text is what search sees.
    assert_eq!(total(&s, "steal").await, 0);

    // Stripping must not glue a loose `<` to what follows a removed tag, and a scheme
    // spelled with character references or escapes is still a scheme.
    for (input, expect) in [
        (
            "<<script></script>img src=x onerror=alert(1)>",
            "&lt;img src=x onerror=alert(1)>",
        ),
        (
            "<</b>script>alert(1)<</b>/script>",
            "&lt;script>alert(1)&lt;/script>",
        ),
        ("[x](&#106;avascript:alert(1))", "[x](blocked:alert(1))"),
        ("[x](&#x6A;avascript:alert(1))", "[x](blocked:alert(1))"),
        ("[x](javascript&colon;alert(1))", "[x](blocked:alert(1))"),
        ("[x](javascript\\:alert(1))", "[x](blocked:alert(1))"),
        ("AT&T: a <b and c\n\nd > e", "AT&T: a <b and c\n\nd > e"),
    ] {
        let t = s.create(json!({"subject": "Tricky", "body": input})).await;
        assert_eq!(t["body"], expect, "body {input:?}");
        let r = s
            .call(
                "add_ticket_change",
                json!({"id": t["id"], "change": {"type": "comment", "body": input}}),
            )
            .await;
        assert_eq!(
            changes(&assert_ok(&r)["ticket"]).last().unwrap()["body"],
            expect,
            "comment {input:?}"
        );
    }
    // A subject is one line: a tag split by a blank line is still a tag there.
    let t = s
        .create(json!({"subject": "<a\n\nonmouseover=alert(1)>Hover me"}))
        .await;
    assert_eq!(t["subject"], "Hover me");
}

/// A `due` input and its expected value as a function of now.
type DueCase = (Value, fn(i64) -> i64);

#[tokio::test]
async fn due_dates_through_the_api() {
    let s = Server::start().await;
    // (input, expected as a function of now); computed before and after to be midnight-safe.
    let cases: Vec<DueCase> = vec![
        (json!("3 days"), |n| day_start(n + 3 * 86_400)),
        (json!("1d"), |n| day_start(n + 86_400)),
        (json!("1 week"), |n| day_start(n + 7 * 86_400)),
        (json!(86_400), |n| day_start(n + 86_400)),
        (json!("172800"), |n| day_start(n + 2 * 86_400)),
        (json!(1_900_000_000), |_| 1_900_000_000),
        (json!("1900000000"), |_| 1_900_000_000),
        (json!("2030-01-02"), |_| 1_893_542_400),
        (json!(0), |_| 0),
        (json!(null), |_| 0),
    ];
    for (due, expect) in cases {
        let before = now();
        let t = s
            .create(json!({"subject": "Due", "due": due.clone()}))
            .await;
        let after = now();
        let got = t["due"].as_i64().unwrap();
        assert!(
            got == expect(before) || got == expect(after),
            "due {due} → {got}"
        );
        let r = s
            .call("update_ticket", json!({"id": t["id"], "due": due.clone()}))
            .await;
        let got = assert_ok(&r)["ticket"]["due"].as_i64().unwrap();
        assert!(
            got == expect(before) || got == expect(now()),
            "update due {due} → {got}"
        );
    }
    let count = total(&s, "*").await;
    let t = s
        .create(json!({"subject": "Due stays", "due": 1_900_000_000}))
        .await;
    for bad in [
        json!("soon"),
        json!(-5),
        json!([1]),
        json!({"days": 3}),
        json!("3 fortnights"),
        json!(999_999_999_999i64),
    ] {
        let r = s
            .call(
                "create_ticket",
                json!({"subject": "Bad due", "due": bad.clone()}),
            )
            .await;
        assert_err(&r, 400, "ticket", "due");
        let r = s
            .call("update_ticket", json!({"id": t["id"], "due": bad.clone()}))
            .await;
        assert_err(&r, 400, "ticket", "due");
    }
    assert_eq!(total(&s, "*").await, count + 1);
    assert_eq!(ticket(&s, str_of(&t, "id")).await, t);
}

#[tokio::test]
async fn configured_types_statuses_and_template() {
    let config = r#"
[tickets]
types = [{ id = "bug", title = "Bug" }, { id = "chore", title = "Chore" }]
statuses = [{ id = "draft", title = "Draft" }, { id = "open", title = "Open" },
            { id = "blocked", title = "Blocked" }, { id = "closed", title = "Closed" }]
new_ticket_template = { type = "chore", tags = ["flag"], assignees = ["admin"], due = "3 days" }
"#;
    let s = Server::start_with_config(config, &[]).await;
    let before = now();
    let t = s.create(json!({"subject": "Templated"})).await;
    assert_eq!(
        (&t["type"], &t["status"], &t["tags"], &t["assignees"]),
        (
            &json!("chore"),
            &json!("open"),
            &json!(["flag"]),
            &json!(["admin"])
        )
    );
    let due = t["due"].as_i64().unwrap();
    assert!(
        due == day_start(before + 3 * 86_400) || due == day_start(now() + 3 * 86_400),
        "{due}"
    );
    // What the request sends wins over the template.
    let t = s
        .create(json!({"subject": "Own", "type": "bug", "tags": [], "due": 0, "status": "blocked"}))
        .await;
    assert_eq!(
        (&t["type"], &t["tags"], &t["due"], &t["status"]),
        (&json!("bug"), &json!([]), &json!(0), &json!("blocked"))
    );
    let r = s
        .call("create_ticket", json!({"subject": "x", "type": "feature"}))
        .await;
    assert_err(&r, 400, "ticket", "valid types are: bug, chore");
    let r = s
        .call(
            "create_ticket",
            json!({"subject": "x", "status": "in_progress"}),
        )
        .await;
    assert_err(
        &r,
        400,
        "ticket",
        "valid statuses are: draft, open, blocked, closed",
    );
    let r = s
        .call(
            "update_ticket",
            json!({"id": t["id"], "status": "resolved"}),
        )
        .await;
    assert_err(&r, 400, "ticket", "unknown ticket status");
    drop(s);

    // The same through the environment (values are TOML).
    let s = Server::start_with_env(&[(
        "DOCKET_TICKETS__NEW_TICKET_TEMPLATE",
        r#"{ type = "incident", tags = ["flag"], status = "draft" }"#,
    )])
    .await;
    let t = s.create(json!({"subject": "From env"})).await;
    assert_eq!(
        (&t["type"], &t["tags"], &t["status"]),
        (&json!("incident"), &json!(["flag"]), &json!("draft"))
    );
}

/// `get_ticket` and `search_tickets` write the stored JSON (no re-encoding); what they send
/// equals the ticket as the typed paths (`update_ticket`'s reply) shape it, in both the full
/// and the `compact` form.
#[tokio::test]
async fn stored_json_replies_equal_the_typed_shapes() {
    let s = Server::start().await;
    let t = s
        .create(json!({
            "subject": "Stored \"quoted\" ünïcode \\ subject",
            "body": "Body with `code`, <b>bold</b> and a line\nbreak",
            "tags": ["flag"],
            "assignees": ["admin"],
        }))
        .await;
    assert_ok(
        &s.call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": "first"}}),
        )
        .await,
    );
    let typed = assert_ok(
        &s.call(
            "update_ticket",
            json!({"id": t["id"], "status": "closed", "due": "2030-01-02"}),
        )
        .await,
    )["ticket"]
        .clone();
    assert!(changes(&typed).len() >= 3, "{typed}");

    let by_id = s.call("get_ticket", json!({"id": t["id"]})).await;
    assert_eq!(assert_ok(&by_id)["ticket"], typed);
    let by_num = s.call("get_ticket", json!({"num": t["num"]})).await;
    assert_eq!(assert_ok(&by_num)["ticket"], typed);

    let full = s.call("search_tickets", json!({"query": "quoted"})).await;
    assert_eq!(assert_ok(&full)["rows"], json!([typed.clone()]));
    assert_eq!(full.1["list"]["length"], 1);
    let mut compact = typed.clone();
    let fields = compact.as_object_mut().unwrap();
    fields.remove("body");
    fields.insert("changes".into(), json!(changes(&typed).len()));
    let r = s
        .call("search_tickets", json!({"query": "quoted", "compact": 1}))
        .await;
    assert_eq!(assert_ok(&r)["rows"], json!([compact]));
}
