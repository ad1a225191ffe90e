//! Relations between tickets over real HTTP (issue 17, item 2): both ends written together,
//! history on both, the record's `relations` with the other ticket's current subject and
//! status, search keywords, the rules (self, missing, duplicates, parents, cycles), closing
//! duplicates, category scope and deletes.

mod api_support;
mod common;

use api_support::{assert_err, assert_ok, changes, total};
use common::Server;
use serde_json::{json, Value};

fn rels(t: &Value) -> Vec<(String, i64)> {
    t["relations"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["type"].as_str().unwrap_or("").to_string(),
                        r["num"].as_i64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn relation_entries(t: &Value) -> Vec<Value> {
    changes(t)
        .iter()
        .filter(|c| c["key"] == "relation")
        .map(|c| c["value"].clone())
        .collect()
}

async fn get(s: &Server, key: &str, id: &Value) -> Value {
    let r = s.call_as(key, "get_ticket", json!({"id": id})).await;
    assert_ok(&r)["ticket"].clone()
}

#[tokio::test]
async fn relations_are_kept_on_both_ends_shown_current_and_searchable() {
    let s = Server::start().await;
    let a = s.create(json!({"subject": "Database down"})).await;
    let b = s.create(json!({"subject": "Deploy blocked"})).await;
    let (na, nb) = (a["num"].as_i64().unwrap(), b["num"].as_i64().unwrap());

    let r = s
        .call(
            "add_ticket_relation",
            json!({"id": a["id"], "type": "blocks", "other": b["id"]}),
        )
        .await;
    let v = assert_ok(&r);
    assert_eq!(rels(&v["ticket"]), vec![("blocks".to_string(), nb)]);
    assert_eq!(rels(&v["other"]), vec![("blocked_by".to_string(), na)]);
    assert_eq!(v["ticket"]["relations"][0]["subject"], "Deploy blocked");
    assert_eq!(v["ticket"]["relations"][0]["status"], "open");
    assert_eq!(v["ticket"]["relations"][0]["id"], b["id"]);

    // The other ticket's subject and status are read when the ticket is: always current,
    // on the stored-JSON path (get_ticket, search rows) and the typed one (get_tickets).
    assert_ok(
        &s.call(
            "update_ticket",
            json!({"id": b["id"], "subject": "Deploy waits", "status": "on_hold"}),
        )
        .await,
    );
    let a_now = get(&s, &s.key, &a["id"]).await;
    assert_eq!(a_now["relations"][0]["subject"], "Deploy waits");
    assert_eq!(a_now["relations"][0]["status"], "on_hold");
    let r = s
        .call("get_tickets", json!({"ids": [a["id"]], "verbose": true}))
        .await;
    assert_eq!(
        assert_ok(&r)["tickets"][0]["relations"][0]["subject"],
        "Deploy waits"
    );
    let r = s
        .call("search_tickets", json!({"query": format!("num:{na}")}))
        .await;
    assert_eq!(
        assert_ok(&r)["rows"][0]["relations"][0]["status"],
        "on_hold"
    );
    let r = s
        .call(
            "search_tickets",
            json!({"query": format!("num:{na}"), "compact": true}),
        )
        .await;
    assert_eq!(
        assert_ok(&r)["rows"][0]["relations"][0]["subject"],
        "Deploy waits"
    );

    // Both histories record it.
    let b_now = get(&s, &s.key, &b["id"]).await;
    assert_eq!(
        relation_entries(&a_now),
        vec![json!({"action": "added", "type": "blocks", "num": nb, "id": b["id"]})]
    );
    assert_eq!(
        relation_entries(&b_now),
        vec![json!({"action": "added", "type": "blocked_by", "num": na, "id": a["id"]})]
    );

    // Search keywords.
    assert_eq!(total(&s, &format!("blocks:{nb}")).await, 1);
    assert_eq!(total(&s, &format!("blocked_by:{na}")).await, 1);
    assert_eq!(total(&s, "blocked_by:*").await, 1);
    assert_eq!(total(&s, "blocks:*").await, 1);
    assert_eq!(total(&s, "is:blocked").await, 1);
    assert_eq!(total(&s, "-is:blocked").await, 1);
    assert_eq!(total(&s, "parent:*").await, 0);

    // Removing it: from either end, naming the type as that end sees it.
    let r = s
        .call(
            "remove_ticket_relation",
            json!({"id": b["id"], "type": "blocked_by", "other_num": na}),
        )
        .await;
    let v = assert_ok(&r);
    assert!(rels(&v["ticket"]).is_empty() && rels(&v["other"]).is_empty());
    assert!(get(&s, &s.key, &a["id"]).await.get("relations").is_none());
    assert_eq!(total(&s, "is:blocked").await, 0);
    assert_eq!(total(&s, &format!("blocks:{nb}")).await, 0);
    let a_now = get(&s, &s.key, &a["id"]).await;
    assert_eq!(relation_entries(&a_now)[1]["action"], "removed");
    assert_err(
        &s.call(
            "remove_ticket_relation",
            json!({"id": b["id"], "type": "blocked_by", "other": a["id"]}),
        )
        .await,
        404,
        "notfound",
        "no blocked_by relation",
    );
}

#[tokio::test]
async fn the_rules_of_a_relation() {
    let s = Server::start().await;
    let a = s.create(json!({"subject": "A"})).await;
    let b = s.create(json!({"subject": "B"})).await;
    let c = s.create(json!({"subject": "C"})).await;
    let add =
        |id: &Value, kind: &str, other: &Value| json!({"id": id, "type": kind, "other": other});
    assert_err(
        &s.call("add_ticket_relation", add(&a["id"], "blocks", &a["id"]))
            .await,
        400,
        "ticket",
        "itself",
    );
    assert_err(
        &s.call(
            "add_ticket_relation",
            add(&a["id"], "blocks", &json!("nosuch")),
        )
        .await,
        404,
        "notfound",
        "ticket not found: nosuch",
    );
    assert_err(
        &s.call(
            "add_ticket_relation",
            json!({"id": a["id"], "type": "blocks", "other_num": 999999}),
        )
        .await,
        404,
        "notfound",
        "#999999",
    );
    assert_err(
        &s.call("add_ticket_relation", add(&a["id"], "sibling", &b["id"]))
            .await,
        400,
        "ticket",
        "type",
    );
    assert_err(
        &s.call(
            "add_ticket_relation",
            json!({"id": a["id"], "type": "blocks"}),
        )
        .await,
        400,
        "ticket",
        "other",
    );
    // a's parent is b.
    assert_ok(
        &s.call("add_ticket_relation", add(&a["id"], "parent", &b["id"]))
            .await,
    );
    // The same again, or its inverse from the other side, or any second link of the pair.
    assert_err(
        &s.call("add_ticket_relation", add(&b["id"], "parent", &a["id"]))
            .await,
        400,
        "ticket",
        "own ancestor",
    );
    for (id, kind, other) in [
        (&a["id"], "parent", &b["id"]),
        (&b["id"], "child", &a["id"]),
        (&a["id"], "relates", &b["id"]),
    ] {
        assert_err(
            &s.call("add_ticket_relation", add(id, kind, other)).await,
            400,
            "ticket",
            "already related",
        );
    }
    // One parent only.
    assert_err(
        &s.call("add_ticket_relation", add(&a["id"], "parent", &c["id"]))
            .await,
        400,
        "ticket",
        "already has a parent",
    );
    // b's parent is c; then c's parent a would close the cycle a → b → c → a.
    assert_ok(
        &s.call("add_ticket_relation", add(&c["id"], "child", &b["id"]))
            .await,
    );
    assert_err(
        &s.call("add_ticket_relation", add(&c["id"], "parent", &a["id"]))
            .await,
        400,
        "ticket",
        "own ancestor",
    );
    assert_err(
        &s.call("add_ticket_relation", add(&a["id"], "child", &c["id"]))
            .await,
        400,
        "ticket",
        "own ancestor",
    );
    // Nothing of the refused calls was written.
    let a_now = get(&s, &s.key, &a["id"]).await;
    assert_eq!(rels(&a_now).len(), 1);
    assert_eq!(relation_entries(&a_now).len(), 1);
    let nb = b["num"].as_i64().unwrap();
    let nc = c["num"].as_i64().unwrap();
    assert_eq!(total(&s, &format!("parent:{nb}")).await, 1);
    assert_eq!(total(&s, &format!("child:{nb}")).await, 1);
    assert_eq!(total(&s, &format!("parent:{nc}")).await, 1);
    assert_eq!(total(&s, "is:child").await, 2);
    assert_eq!(total(&s, "is:parent").await, 2);

    // Editing a relation needs edit_tickets.
    let reader = s.key_with(&["create_tickets"], &[]).await;
    assert_err(
        &s.call_as(
            &reader,
            "add_ticket_relation",
            add(&a["id"], "relates", &c["id"]),
        )
        .await,
        403,
        "access",
        "edit_tickets",
    );
}

#[tokio::test]
async fn marking_a_duplicate_closes_it_when_configured() {
    let s = Server::start_with_env(&[("DOCKET_TICKETS__CLOSE_DUPLICATES", "closed")]).await;
    let original = s.create(json!({"subject": "Disk full"})).await;
    let dup = s.create(json!({"subject": "Disk is full again"})).await;
    let r = s
        .call(
            "add_ticket_relation",
            json!({"id": original["id"], "type": "duplicates", "other": dup["id"]}),
        )
        .await;
    let v = assert_ok(&r);
    assert_eq!(v["ticket"]["status"], "open");
    assert_eq!(v["other"]["status"], "closed");
    assert!(changes(&v["other"])
        .iter()
        .any(|c| c["key"] == "status" && c["value"] == "closed"));
    assert_eq!(total(&s, "is:duplicate").await, 1);
    assert_eq!(total(&s, "is:duplicate status:closed").await, 1);

    // Without the setting a duplicate keeps its status.
    let s = Server::start().await;
    let original = s.create(json!({"subject": "Disk full"})).await;
    let dup = s.create(json!({"subject": "Disk is full again"})).await;
    let r = s
        .call(
            "add_ticket_relation",
            json!({"id": dup["id"], "type": "duplicate_of", "other": original["id"]}),
        )
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["status"], "open");
}

#[tokio::test]
async fn a_relation_to_a_hidden_ticket_is_not_shown() {
    let s = Server::start().await;
    for cat in ["public", "secret"] {
        assert_ok(
            &s.call("create_category", json!({"id": cat, "title": cat}))
                .await,
        );
    }
    let open = s
        .create(json!({"subject": "Visible", "category": "public"}))
        .await;
    let hidden = s
        .create(json!({"subject": "Hidden subject", "category": "secret"}))
        .await;
    let peer = s
        .create(json!({"subject": "Visible peer", "category": "public"}))
        .await;
    for (kind, other) in [("blocked_by", &hidden), ("relates", &peer)] {
        assert_ok(
            &s.call(
                "add_ticket_relation",
                json!({"id": open["id"], "type": kind, "other": other["id"]}),
            )
            .await,
        );
    }
    let limited = s
        .key_with(&["create_tickets", "edit_tickets"], &["public"])
        .await;
    let seen = get(&s, &limited, &open["id"]).await;
    assert_eq!(
        rels(&seen),
        vec![("relates".to_string(), peer["num"].as_i64().unwrap())]
    );
    assert!(!seen.to_string().contains("Hidden subject"), "{seen}");
    // Not even its id or number in the history.
    assert!(
        !seen.to_string().contains(hidden["id"].as_str().unwrap()),
        "{seen}"
    );
    assert_eq!(relation_entries(&seen).len(), 1, "{seen}");
    let r = s
        .call_as(
            &limited,
            "search_tickets",
            json!({"query": "relates:*", "limit": 10}),
        )
        .await;
    let rows = assert_ok(&r)["rows"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert!(
        !rows.to_string().contains(hidden["id"].as_str().unwrap()),
        "{rows}"
    );
    let r = s
        .call_as(
            &limited,
            "get_tickets",
            json!({"ids": [open["id"]], "verbose": true}),
        )
        .await;
    assert!(!assert_ok(&r).to_string().contains("Hidden subject"));
    // The admin sees both.
    assert_eq!(rels(&get(&s, &s.key, &open["id"]).await).len(), 2);
    // Linking to (or from) a hidden ticket is linking to a missing one.
    assert_err(
        &s.call_as(
            &limited,
            "add_ticket_relation",
            json!({"id": peer["id"], "type": "blocks", "other": hidden["id"]}),
        )
        .await,
        404,
        "notfound",
        "ticket not found",
    );
    assert_err(
        &s.call_as(
            &limited,
            "add_ticket_relation",
            json!({"id": peer["id"], "type": "blocks", "other_num": hidden["num"]}),
        )
        .await,
        404,
        "notfound",
        "ticket not found",
    );
    assert_err(
        &s.call_as(
            &limited,
            "remove_ticket_relation",
            json!({"id": hidden["id"], "type": "blocks", "other": open["id"]}),
        )
        .await,
        404,
        "notfound",
        "ticket not found",
    );
    assert_eq!(rels(&get(&s, &s.key, &hidden["id"]).await).len(), 1);
}

#[tokio::test]
async fn deleting_a_ticket_removes_its_relations() {
    let s = Server::start().await;
    let a = s.create(json!({"subject": "Parent"})).await;
    let b = s.create(json!({"subject": "Child one"})).await;
    let c = s.create(json!({"subject": "Child two"})).await;
    for child in [&b, &c] {
        assert_ok(
            &s.call(
                "add_ticket_relation",
                json!({"id": child["id"], "type": "parent", "other": a["id"]}),
            )
            .await,
        );
    }
    assert_ok(
        &s.call(
            "add_ticket_relation",
            json!({"id": b["id"], "type": "relates", "other": c["id"]}),
        )
        .await,
    );
    let na = a["num"].as_i64().unwrap();
    assert_eq!(total(&s, &format!("parent:{na}")).await, 2);
    assert_ok(&s.call("delete_ticket", json!({"id": a["id"]})).await);
    assert_eq!(total(&s, &format!("parent:{na}")).await, 0);
    assert_eq!(total(&s, "is:child").await, 0);
    let b_now = get(&s, &s.key, &b["id"]).await;
    assert_eq!(
        rels(&b_now),
        vec![("relates".to_string(), c["num"].as_i64().unwrap())]
    );
    let last = relation_entries(&b_now).pop().unwrap();
    assert_eq!(
        (&last["action"], &last["type"], &last["reason"]),
        (&json!("removed"), &json!("parent"), &json!("deleted"))
    );
}
