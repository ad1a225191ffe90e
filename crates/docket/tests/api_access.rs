//! Privileges and category scoping on every ticket call (SPEC §3, §8), for API keys, roles
//! and user sessions.

mod api_support;
mod common;

use api_support::{assert_err, assert_ok, create_key, login, send, ticket, total};
use common::Server;
use serde_json::{json, Value};

/// Every ticket-changing call with parameters aimed at ticket `id` (comment `cid`).
fn writes(id: &str, cid: &str) -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("create_ticket", json!({"subject": "new"}), "create_tickets"),
        (
            "update_ticket",
            json!({"id": id, "subject": "changed"}),
            "edit_tickets",
        ),
        (
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "hi"}}),
            "edit_tickets",
        ),
        (
            "update_ticket_change",
            json!({"id": id, "change_id": cid, "change": {"body": "x"}}),
            "edit_tickets",
        ),
        (
            "update_ticket_change",
            json!({"id": id, "change_id": cid, "delete": true}),
            "edit_tickets",
        ),
        (
            "upload_user_ticket_files",
            json!({"ticket": id}),
            "edit_tickets",
        ),
        (
            "delete_ticket_file",
            json!({"id": id, "path": "files/a"}),
            "edit_tickets",
        ),
        ("delete_ticket", json!({"id": id}), "delete_tickets"),
    ]
}

#[tokio::test]
async fn each_ticket_call_needs_its_privilege() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Guarded"})).await;
    let id = t["id"].as_str().unwrap();
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "admin note"}}),
        )
        .await;
    let cid = assert_ok(&r)["ticket"]["changes"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = ticket(&s, id).await;

    let none = s.key_with(&[], &[]).await;
    let create = s.key_with(&["create_tickets"], &[]).await;
    let edit = s.key_with(&["edit_tickets"], &[]).await;
    let delete = s.key_with(&["delete_tickets"], &[]).await;
    let holder = |privilege: &str| match privilege {
        "create_tickets" => &create,
        "edit_tickets" => &edit,
        _ => &delete,
    };
    for (call, params, privilege) in writes(id, &cid) {
        for key in [&none, &create, &edit, &delete] {
            if key == holder(privilege) {
                continue;
            }
            let r = s.call_as(key, call, params.clone()).await;
            assert_err(&r, 403, "access", privilege);
        }
    }
    assert_eq!(
        ticket(&s, id).await,
        before,
        "refused calls changed nothing"
    );
    assert_eq!(total(&s, "*").await, 1);

    // Reading needs no privilege.
    for (call, params) in [
        ("get_ticket", json!({"id": id})),
        ("get_tickets", json!({"ids": [id]})),
        ("search_tickets", json!({"query": "*"})),
    ] {
        assert_ok(&s.call_as(&none, call, params).await);
    }
    // And each privilege does allow its call.
    assert_ok(
        &s.call_as(&create, "create_ticket", json!({"subject": "ok"}))
            .await,
    );
    assert_ok(
        &s.call_as(&edit, "update_ticket", json!({"id": id, "subject": "ok"}))
            .await,
    );
    assert_ok(
        &s.call_as(
            &edit,
            "add_ticket_change",
            json!({"id": id, "change": {"type": "comment", "body": "ok"}}),
        )
        .await,
    );
    assert_ok(&s.call_as(&delete, "delete_ticket", json!({"id": id})).await);
}

#[tokio::test]
async fn category_scoped_key_sees_nothing_outside_its_categories() {
    let s = Server::start().await;
    assert_ok(
        &s.call(
            "create_category",
            json!({"id": "secret", "title": "Secret"}),
        )
        .await,
    );
    let open = s
        .create(json!({"subject": "Visible ticket", "category": "general"}))
        .await;
    let hidden = s
        .create(json!({"subject": "Hidden ticket", "category": "secret"}))
        .await;
    let loose = s.create(json!({"subject": "Uncategorized ticket"})).await;
    let hid = hidden["id"].as_str().unwrap();
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": hid, "change": {"type": "comment", "body": "secret note"}}),
        )
        .await;
    let hcid = assert_ok(&r)["ticket"]["changes"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let hidden = ticket(&s, hid).await;

    let scoped = s
        .key_with(
            &["create_tickets", "edit_tickets", "delete_tickets"],
            &["general"],
        )
        .await;

    // A hidden ticket answers exactly like a missing one.
    let missing = s
        .call_as(&scoped, "get_ticket", json!({"id": "tmissing"}))
        .await;
    assert_err(&missing, 404, "notfound", "tmissing");
    let r = s.call_as(&scoped, "get_ticket", json!({"id": hid})).await;
    assert_eq!(
        r,
        (
            404,
            json!({"code": "notfound", "description": format!("Ticket not found: {hid}")})
        )
    );
    assert_err(
        &s.call_as(&scoped, "get_ticket", json!({"num": hidden["num"]}))
            .await,
        404,
        "notfound",
        "not found",
    );
    assert_err(
        &s.call_as(&scoped, "get_ticket", json!({"id": loose["id"]}))
            .await,
        404,
        "notfound",
        "not found",
    );
    for (call, params, _) in writes(hid, &hcid) {
        if call == "create_ticket" || call.contains("file") {
            continue;
        }
        let r = s.call_as(&scoped, call, params.clone()).await;
        assert_err(&r, 404, "notfound", hid);
    }
    let r = s
        .call_as(
            &scoped,
            "get_tickets",
            json!({"ids": [open["id"], hid, "tmissing"], "verbose": true}),
        )
        .await;
    let slots = assert_ok(&r)["tickets"].as_array().unwrap().clone();
    assert_eq!(slots[0], open);
    assert_eq!(slots[1], json!({"err": format!("Ticket not found: {hid}")}));
    assert_eq!(slots[2], json!({"err": "Ticket not found: tmissing"}));

    // Search never returns it, and the total leaves it out.
    for query in [
        "*",
        "hidden",
        "category:secret",
        "ticket",
        "-visible",
        "secret note",
    ] {
        let r = s
            .call_as(
                &scoped,
                "search_tickets",
                json!({"query": query, "limit": 100}),
            )
            .await;
        let v = assert_ok(&r);
        let rows = v["rows"].as_array().unwrap();
        assert!(
            rows.iter().all(|t| t["category"] == "general"),
            "{query}: {v}"
        );
        assert_eq!(v["list"]["length"], json!(rows.len()), "{query}");
    }
    assert_eq!(
        assert_ok(
            &s.call_as(&scoped, "search_tickets", json!({"query": "*"}))
                .await
        )["list"]["length"],
        1
    );
    assert_eq!(total(&s, "*").await, 3, "the admin sees all three");

    // It may not file or move tickets into other categories.
    let r = s
        .call_as(
            &scoped,
            "create_ticket",
            json!({"subject": "x", "category": "secret"}),
        )
        .await;
    assert_err(&r, 403, "access", "secret");
    let r = s
        .call_as(
            &scoped,
            "update_ticket",
            json!({"id": open["id"], "category": "secret"}),
        )
        .await;
    assert_err(&r, 403, "access", "secret");
    let r = s
        .call_as(
            &scoped,
            "create_ticket",
            json!({"subject": "in general", "category": "general"}),
        )
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["category"], "general");
    assert_eq!(
        ticket(&s, hid).await,
        hidden,
        "the hidden ticket is untouched"
    );
    assert_eq!(
        ticket(&s, open["id"].as_str().unwrap()).await["category"],
        "general"
    );
}

#[tokio::test]
async fn roles_add_privileges_and_categories() {
    let s = Server::start().await;
    assert_ok(
        &s.call("create_category", json!({"id": "ops", "title": "Ops"}))
            .await,
    );
    let r = s
        .call("create_role", json!({"id": "ops_editor", "title": "Ops editor", "privileges": ["edit_tickets"], "categories": ["ops"]}))
        .await;
    assert_ok(&r);
    let ops = s
        .create(json!({"subject": "Ops ticket", "category": "ops"}))
        .await;
    let general = s
        .create(json!({"subject": "General ticket", "category": "general"}))
        .await;
    let (_, key) = create_key(
        &s,
        json!({"title": "with role", "privileges": ["create_tickets"], "categories": ["general"], "roles": ["ops_editor"]}),
    )
    .await;
    // The role's privilege and category come on top of the key's own.
    assert_ok(
        &s.call_as(
            &key,
            "update_ticket",
            json!({"id": ops["id"], "status": "closed"}),
        )
        .await,
    );
    assert_ok(
        &s.call_as(
            &key,
            "update_ticket",
            json!({"id": general["id"], "status": "closed"}),
        )
        .await,
    );
    assert_ok(
        &s.call_as(
            &key,
            "create_ticket",
            json!({"subject": "x", "category": "general"}),
        )
        .await,
    );
    assert_err(
        &s.call_as(&key, "delete_ticket", json!({"id": ops["id"]}))
            .await,
        403,
        "access",
        "delete_tickets",
    );
    let r = s
        .call_as(&key, "search_tickets", json!({"query": "*"}))
        .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 3);

    // Without the role the key is back to its own grants.
    let (_, plain) = create_key(
        &s,
        json!({"title": "no role", "privileges": ["create_tickets"], "categories": ["general"]}),
    )
    .await;
    assert_err(
        &s.call_as(
            &plain,
            "update_ticket",
            json!({"id": general["id"], "status": "open"}),
        )
        .await,
        403,
        "access",
        "edit_tickets",
    );
    assert_err(
        &s.call_as(&plain, "get_ticket", json!({"id": ops["id"]}))
            .await,
        404,
        "notfound",
        "not found",
    );

    // Unknown roles and privileges are refused when granting.
    let r = s
        .call("create_api_key", json!({"title": "bad", "roles": ["nope"]}))
        .await;
    assert_err(&r, 400, "api", "unknown role");
    let r = s
        .call(
            "create_role",
            json!({"title": "Bad", "privileges": ["fly"]}),
        )
        .await;
    assert_err(&r, 400, "role", "unknown privilege");
    // Roles are admin business.
    let r = s
        .call_as(
            &key,
            "create_role",
            json!({"title": "Mine", "privileges": ["admin"]}),
        )
        .await;
    assert_err(&r, 403, "access", "admin");
}

#[tokio::test]
async fn user_sessions_are_scoped_too() {
    let s = Server::start().await;
    assert_ok(
        &s.call(
            "create_category",
            json!({"id": "secret", "title": "Secret"}),
        )
        .await,
    );
    let hidden = s
        .create(json!({"subject": "Hidden", "category": "secret"}))
        .await;
    s.create(json!({"subject": "Shown", "category": "general"}))
        .await;
    let r = s
        .user_call(
            "admin_create",
            json!({"username": "scoped", "password": "scoped-password", "privileges": ["edit_tickets"], "categories": ["general"]}),
        )
        .await;
    assert_ok(&r);
    let (status, _, v) = login(&s, "scoped", "scoped-password").await;
    assert_eq!(status, 200, "{v}");
    let sid = v["session_id"].as_str().unwrap().to_string();
    let as_user = |call: &str, params: Value| {
        s.client
            .post(s.url(&format!("/api/app/{call}/v1")))
            .header("X-Session-ID", sid.clone())
            .json(&params)
    };
    assert_err(
        &send(as_user("get_ticket", json!({"id": hidden["id"]}))).await,
        404,
        "notfound",
        "not found",
    );
    let r = send(as_user("search_tickets", json!({"query": "*"}))).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
    assert_err(
        &send(as_user("create_ticket", json!({"subject": "x"}))).await,
        403,
        "access",
        "create_tickets",
    );
    let r = send(as_user("get_api_keys", json!({}))).await;
    assert_err(&r, 403, "access", "admin");
}

/// Privileges as xyOps writes them — objects of `name: true` pairs — on keys, roles and
/// users: created with objects, read back as objects, and granting exactly the true ones.
#[tokio::test]
async fn xyops_shaped_privileges_round_trip() {
    let s = Server::start().await;
    let granted = json!({"create_tickets": true, "edit_tickets": true});

    // An API key: `false` is not granted, and the reply carries the object form.
    let r = s
        .call(
            "create_api_key",
            json!({"title": "CI", "privileges": {"create_tickets": true, "edit_tickets": true, "delete_tickets": false}}),
        )
        .await;
    let v = assert_ok(&r);
    assert_eq!(v["api_key"]["privileges"], granted, "{v}");
    let id = v["api_key"]["id"].as_str().expect("key id").to_string();
    let key = v["plain_key"].as_str().expect("plain key").to_string();
    let r = s.call("get_api_key", json!({"id": id})).await;
    assert_eq!(assert_ok(&r)["api_key"]["privileges"], granted, "{}", r.1);
    let r = s.call("get_api_keys", json!({})).await;
    let rows = assert_ok(&r)["rows"].as_array().expect("rows").clone();
    let row = rows.iter().find(|k| k["id"] == json!(id)).expect("the key");
    assert_eq!(row["privileges"], granted);
    let t = assert_ok(
        &s.call_as(&key, "create_ticket", json!({"subject": "from CI"}))
            .await,
    )["ticket"]
        .clone();
    assert_ok(
        &s.call_as(
            &key,
            "update_ticket",
            json!({"id": t["id"], "status": "closed"}),
        )
        .await,
    );
    assert_err(
        &s.call_as(&key, "delete_ticket", json!({"id": t["id"]}))
            .await,
        403,
        "access",
        "delete_tickets",
    );

    // A value that is neither true nor falsy: an error naming the field; nothing changes.
    let r = s
        .call(
            "update_api_key",
            json!({"id": id, "title": "renamed", "privileges": {"create_tickets": true, "admin": "yes"}}),
        )
        .await;
    assert_err(&r, 400, "api", "privileges.admin");
    let r = s.call("get_api_key", json!({"id": id})).await;
    let k = &assert_ok(&r)["api_key"];
    assert_eq!((&k["title"], &k["privileges"]), (&json!("CI"), &granted));
    let r = s
        .call(
            "create_api_key",
            json!({"title": "bad", "privileges": {"admin": [true]}}),
        )
        .await;
    assert_err(&r, 400, "api", "privileges.admin");
    let r = s
        .call(
            "update_api_key",
            json!({"id": id, "privileges": {"delete_tickets": 1, "create_tickets": 0}}),
        )
        .await;
    assert_eq!(
        assert_ok(&r)["api_key"]["privileges"],
        json!({"delete_tickets": true})
    );

    // A role.
    let r = s
        .call(
            "create_role",
            json!({"id": "deleter", "title": "Deleter", "privileges": {"delete_tickets": true, "admin": false}}),
        )
        .await;
    assert_eq!(
        assert_ok(&r)["role"]["privileges"],
        json!({"delete_tickets": true}),
        "{}",
        r.1
    );
    let r = s.call("get_role", json!({"id": "deleter"})).await;
    assert_eq!(
        assert_ok(&r)["role"]["privileges"],
        json!({"delete_tickets": true})
    );
    let r = s
        .call(
            "update_role",
            json!({"id": "deleter", "privileges": {"delete_tickets": "sure"}}),
        )
        .await;
    assert_err(&r, 400, "role", "privileges.delete_tickets");
    // The array form is still understood, and answered as an object.
    let r = s
        .call(
            "update_role",
            json!({"id": "deleter", "privileges": ["delete_tickets", "edit_tickets"]}),
        )
        .await;
    let both = json!({"delete_tickets": true, "edit_tickets": true});
    assert_eq!(assert_ok(&r)["role"]["privileges"], both, "{}", r.1);
    let r = s.call("get_roles", json!({})).await;
    assert_eq!(assert_ok(&r)["rows"][0]["privileges"], both);

    // A user with the role: own privileges plus the role's.
    let r = s
        .user_call(
            "admin_create",
            json!({"username": "xy", "password": "xy-password-1", "privileges": {"create_tickets": true, "edit_tickets": false}, "roles": ["deleter"]}),
        )
        .await;
    assert_eq!(
        assert_ok(&r)["user"]["privileges"],
        json!({"create_tickets": true}),
        "{}",
        r.1
    );
    let r = s
        .user_call(
            "admin_update",
            json!({"username": "xy", "privileges": {"create_tickets": {}}}),
        )
        .await;
    assert_err(&r, 400, "user", "privileges.create_tickets");
    let r = s
        .user_call("admin_get_user", json!({"username": "xy"}))
        .await;
    assert_eq!(
        assert_ok(&r)["user"]["privileges"],
        json!({"create_tickets": true})
    );
    let (status, _, v) = login(&s, "xy", "xy-password-1").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["user"]["privileges"],
        json!({"create_tickets": true}),
        "{v}"
    );
    let sid = v["session_id"].as_str().expect("session").to_string();
    let csrf = v["csrf_token"].as_str().unwrap_or_default().to_string();
    let r = send(
        s.client
            .post(s.url("/api/app/delete_ticket/v1"))
            .header("X-Session-ID", &sid)
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"id": t["id"]})),
    )
    .await;
    assert_ok(&r);
}

/// Keys, roles and users stored before privileges were objects (arrays of names) keep
/// working, and are answered in the object form.
#[tokio::test]
async fn privileges_stored_as_arrays_still_work() {
    use docket_core::store::RecordKind;
    let mut s = Server::start().await;
    let t = s.create(json!({"subject": "old records"})).await;
    let (id, key) = create_key(
        &s,
        json!({"title": "old", "privileges": {"create_tickets": true}}),
    )
    .await;
    assert_ok(
        &s.call(
            "create_role",
            json!({"id": "old_role", "title": "Old role"}),
        )
        .await,
    );
    assert_ok(
        &s.user_call(
            "admin_create",
            json!({"username": "olduser", "password": "old-password-1"}),
        )
        .await,
    );
    assert!(s.terminate());

    // Rewrite the three records as an older version stored them.
    let raw = common::RawStore::open(&s.data).await;
    for (kind, rid, privileges) in [
        (RecordKind::ApiKey, id.as_str(), json!(["edit_tickets"])),
        (RecordKind::Role, "old_role", json!(["delete_tickets"])),
        (RecordKind::User, "olduser", json!(["create_tickets"])),
    ] {
        let changed = raw
            .store()
            .update_record(
                kind,
                rid,
                Box::new(move |v: &mut Value| {
                    v["privileges"] = privileges;
                    Ok(())
                }),
            )
            .await
            .expect("rewrite the record");
        assert!(changed.is_some(), "{rid} exists");
    }
    raw.close().await;
    s.restart();

    let r = s.call("get_api_key", json!({"id": id})).await;
    assert_eq!(
        assert_ok(&r)["api_key"]["privileges"],
        json!({"edit_tickets": true})
    );
    let r = s.call("get_role", json!({"id": "old_role"})).await;
    assert_eq!(
        assert_ok(&r)["role"]["privileges"],
        json!({"delete_tickets": true})
    );
    let r = s.call("get_roles", json!({})).await;
    assert_eq!(
        assert_ok(&r)["rows"][0]["privileges"],
        json!({"delete_tickets": true})
    );
    let r = s
        .user_call("admin_get_user", json!({"username": "olduser"}))
        .await;
    assert_eq!(
        assert_ok(&r)["user"]["privileges"],
        json!({"create_tickets": true})
    );

    // The key grants what its array said (edit, no longer create).
    assert_ok(
        &s.call_as(
            &key,
            "update_ticket",
            json!({"id": t["id"], "status": "closed"}),
        )
        .await,
    );
    assert_err(
        &s.call_as(&key, "create_ticket", json!({"subject": "x"}))
            .await,
        403,
        "access",
        "create_tickets",
    );
    // The role's array grants too, once a key carries the role.
    let r = s
        .call("update_api_key", json!({"id": id, "roles": ["old_role"]}))
        .await;
    assert_eq!(
        assert_ok(&r)["api_key"]["privileges"],
        json!({"edit_tickets": true})
    );
    assert_ok(
        &s.call_as(&key, "delete_ticket", json!({"id": t["id"]}))
            .await,
    );
    // An update of an old role writes it in the new form.
    let r = s
        .call("update_role", json!({"id": "old_role", "title": "Renamed"}))
        .await;
    assert_eq!(
        assert_ok(&r)["role"]["privileges"],
        json!({"delete_tickets": true})
    );
    let (status, _, v) = login(&s, "olduser", "old-password-1").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["user"]["privileges"],
        json!({"create_tickets": true}),
        "{v}"
    );
}

/// The access the OpenAPI document states for each call (`x-docket-access`, from the call
/// table) is what the server enforces: open calls need no credential, the others refuse a
/// request without one (`session`), and a call that needs a privilege refuses a valid key
/// holding none (`access`).
#[tokio::test]
async fn the_documented_access_of_every_call_is_enforced() {
    let s = Server::start().await;
    let doc: Value = s
        .client
        .get(s.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let nothing = s.key_with(&[], &[]).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let Some(access) = item["post"]["x-docket-access"].as_str() else {
            continue;
        };
        let post = |key: Option<&str>| {
            let mut req = s.client.post(s.url(path)).json(&json!({}));
            if let Some(k) = key {
                req = req.header("X-API-Key", k);
            }
            async move {
                let res = req.send().await.expect("request");
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap_or(Value::Null);
                let text = |k: &str| body[k].as_str().unwrap_or("").to_string();
                (status, text("code"), text("description"))
            }
        };
        let anonymous = post(None).await;
        let unprivileged = post(Some(&nothing)).await;
        let no_credential = |r: &(u16, String, String)| {
            r.0 == 403 && r.1 == "session" && r.2.contains("No Session ID or API Key")
        };
        match access {
            "open" => assert!(!no_credential(&anonymous), "{path} is open: {anonymous:?}"),
            "caller" => {
                assert!(no_credential(&anonymous), "{path}: {anonymous:?}");
                assert_ne!(unprivileged.1, "access", "{path} needs no privilege");
            }
            _ => {
                assert!(no_credential(&anonymous), "{path}: {anonymous:?}");
                assert_eq!(
                    (unprivileged.0, unprivileged.1.as_str()),
                    (403, "access"),
                    "{path} needs {access}: {unprivileged:?}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 45, "{checked} calls checked");
}

/// Credentials are checked from memory (docket-core `service/auth_cache.rs`), yet every
/// change to a key, user, role or session applies at the very next call.
#[tokio::test]
async fn changes_to_keys_users_roles_and_sessions_apply_at_the_next_call() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "cached"})).await;
    assert_ok(
        &s.call(
            "create_role",
            json!({"id": "closer", "title": "Closer", "privileges": ["edit_tickets"]}),
        )
        .await,
    );
    let (id, key) = create_key(
        &s,
        json!({"title": "cached", "privileges": ["create_tickets"], "roles": ["closer"]}),
    )
    .await;
    let edit = || {
        s.call_as(
            &key,
            "update_ticket",
            json!({"id": t["id"], "status": "open"}),
        )
    };
    // Twice: the second call is answered from memory.
    assert_ok(&edit().await);
    assert_ok(&edit().await);

    // The role loses the privilege: the key's next edit is refused.
    assert_ok(
        &s.call("update_role", json!({"id": "closer", "privileges": []}))
            .await,
    );
    assert_err(&edit().await, 403, "access", "edit_tickets");
    // The key itself gets it.
    assert_ok(
        &s.call(
            "update_api_key",
            json!({"id": id, "privileges": ["edit_tickets"]}),
        )
        .await,
    );
    assert_ok(&edit().await);
    // A category scope applies at once too.
    assert_ok(
        &s.call("create_category", json!({"id": "ops", "title": "Ops"}))
            .await,
    );
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "categories": ["ops"]}))
            .await,
    );
    assert_err(&edit().await, 404, "notfound", "not found");
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "categories": []}))
            .await,
    );
    assert_ok(&edit().await);
    // Disabled, enabled, expired, deleted.
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "active": false}))
            .await,
    );
    assert_err(&edit().await, 400, "api", "disabled");
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "active": true}))
            .await,
    );
    assert_ok(&edit().await);
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "expires": 1}))
            .await,
    );
    assert_err(&edit().await, 400, "api", "expired");
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "expires": 0}))
            .await,
    );
    assert_ok(&edit().await);
    assert_ok(&s.call("delete_api_key", json!({"id": id})).await);
    assert_err(&edit().await, 400, "api", "invalid api key");

    // A session: disabled user, scope change, logout, deleted user.
    assert_ok(
        &s.user_call(
            "admin_create",
            json!({"username": "cached", "password": "cached-password", "privileges": ["edit_tickets"]}),
        )
        .await,
    );
    let session = |sid: String| {
        let s = &s;
        let t = &t;
        move || {
            send(
                s.client
                    .post(s.url("/api/app/get_ticket/v1"))
                    .header("X-Session-ID", sid.clone())
                    .json(&json!({"id": t["id"]})),
            )
        }
    };
    let (status, _, v) = login(&s, "cached", "cached-password").await;
    assert_eq!(status, 200, "{v}");
    let get = session(v["session_id"].as_str().unwrap().to_string());
    assert_ok(&get().await);
    assert_ok(&get().await);
    assert_ok(
        &s.user_call(
            "admin_update",
            json!({"username": "cached", "active": false}),
        )
        .await,
    );
    assert_err(&get().await, 403, "session", "expired or is invalid");
    assert_ok(
        &s.user_call(
            "admin_update",
            json!({"username": "cached", "active": true}),
        )
        .await,
    );
    assert_ok(&get().await);
    assert_ok(
        &s.user_call(
            "admin_update",
            json!({"username": "cached", "categories": ["ops"]}),
        )
        .await,
    );
    assert_err(&get().await, 404, "notfound", "not found");
    assert_ok(
        &s.user_call(
            "admin_update",
            json!({"username": "cached", "categories": []}),
        )
        .await,
    );
    assert_ok(&get().await);
    let res = send(
        s.client
            .post(s.url("/api/user/logout/v1"))
            .header("X-Session-ID", v["session_id"].as_str().unwrap())
            .json(&json!({})),
    )
    .await;
    assert_ok(&res);
    assert_err(&get().await, 403, "session", "expired or is invalid");

    let (_, _, v) = login(&s, "cached", "cached-password").await;
    let get = session(v["session_id"].as_str().unwrap().to_string());
    assert_ok(&get().await);
    assert_ok(
        &s.user_call("admin_delete", json!({"username": "cached"}))
            .await,
    );
    assert_err(&get().await, 403, "session", "expired or is invalid");
}
