//! Supporting APIs (SPEC §8): fresh-server defaults, users, API keys (hashing, disabling,
//! expiry, rate limits), tags and categories with their privileges, and that no reply or
//! log line carries a secret.

mod api_support;
mod common;

use api_support::{assert_err, assert_ok, create_key, login, now, send};
use common::{Server, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn ids(v: &Value) -> Vec<&str> {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// Every file of the data directory (database, WAL, ...) as bytes, concatenated.
/// Everything the server stored: the data directory's files, and on PostgreSQL a dump of
/// its database.
fn stored_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = data_bytes(dir);
    if common::backend() == common::Backend::Postgres {
        out.extend(common::pg_dump(dir));
    }
    out
}

fn data_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir").flatten() {
        let path = entry.path();
        if path.is_file() {
            out.extend(std::fs::read(&path).unwrap_or_default());
        } else if path.is_dir() {
            out.extend(data_bytes(&path));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn fresh_server_defaults() {
    let s = Server::start().await;
    let r = s.call("get_tags", json!({})).await;
    let mut tags = ids(assert_ok(&r));
    tags.sort();
    assert_eq!(tags, vec!["flag", "important"]);
    assert_eq!(r.1["list"]["length"], 2);
    let r = s.call("get_categories", json!({})).await;
    assert_eq!(ids(assert_ok(&r)), vec!["general"]);
    let r = s.user_call("admin_get_users", json!({})).await;
    let users: Vec<&Value> = assert_ok(&r)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["username"])
        .collect();
    assert_eq!(users, vec![&json!("admin")]);
    let (status, _, v) = login(&s, "admin", ADMIN_PASSWORD).await;
    assert_eq!(
        (status, &v["user"]["privileges"]),
        (200, &json!({"admin": true})),
        "{v}"
    );
    let r = s.call("search_tickets", json!({"query": "*"})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 0);
}

#[tokio::test]
async fn users_crud_without_password_hashes() {
    let s = Server::start().await;
    let mut replies = Vec::new();
    let r = s
        .user_call(
            "admin_create",
            json!({"username": "bob", "password": "bob-password-1", "email": "bob@example.com", "full_name": "Bob"}),
        )
        .await;
    let u = assert_ok(&r)["user"].clone();
    assert_eq!(
        (&u["username"], &u["email"], &u["active"]),
        (&json!("bob"), &json!("bob@example.com"), &json!(true))
    );
    replies.push(r.1);

    for (params, phrase) in [
        (
            json!({"username": "bob", "password": "x"}),
            "already exists",
        ),
        (
            json!({"username": "no spaces", "password": "x"}),
            "not a valid username",
        ),
        (json!({"username": "carol"}), "password"),
        (
            json!({"username": "carol", "password": "x", "email": "nope"}),
            "email",
        ),
        (
            json!({"username": "carol", "password": "x", "privileges": ["fly"]}),
            "unknown privilege",
        ),
        (
            json!({"username": "carol", "password": "x", "shoe_size": 9}),
            "shoe_size",
        ),
    ] {
        assert_err(
            &s.user_call("admin_create", params).await,
            400,
            "user",
            phrase,
        );
    }

    let (status, _, v) = login(&s, "bob", "bob-password-1").await;
    assert_eq!(status, 200, "{v}");
    replies.push(v);
    let r = s
        .user_call(
            "admin_update",
            json!({"username": "bob", "password": "bob-password-2", "full_name": "Robert"}),
        )
        .await;
    assert_eq!(assert_ok(&r)["user"]["full_name"], "Robert");
    replies.push(r.1);
    let (status, _, v) = login(&s, "bob", "bob-password-1").await;
    assert_err(&(status, v), 403, "session", "incorrect");
    let (status, _, v) = login(&s, "bob", "bob-password-2").await;
    assert_eq!(status, 200, "{v}");
    let bob_session = v["session_id"].as_str().unwrap().to_string();

    let r = s
        .user_call("admin_get_user", json!({"username": "bob"}))
        .await;
    assert_eq!(assert_ok(&r)["user"]["full_name"], "Robert");
    replies.push(r.1);
    let r = s.user_call("admin_get_users", json!({})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 2);
    replies.push(r.1);
    for reply in &replies {
        let text = reply.to_string();
        assert!(
            !text.contains("$argon2") && !text.contains("\"password\""),
            "secret in {text}"
        );
    }

    // A disabled user can neither log in nor keep using a session.
    assert_ok(
        &s.user_call("admin_update", json!({"username": "bob", "active": false}))
            .await,
    );
    let (status, _, v) = login(&s, "bob", "bob-password-2").await;
    assert_err(&(status, v), 403, "session", "disabled");
    let r = send(
        s.client
            .post(s.url("/api/app/search_tickets/v1"))
            .header("X-Session-ID", &bob_session),
    )
    .await;
    assert_err(&r, 403, "session", "log in again");

    // Only admins manage users; deleted users are gone.
    let editor = s.key_with(&["edit_tickets"], &[]).await;
    let r = send(
        s.client
            .post(s.url("/api/user/admin_get_users/v1"))
            .header("X-API-Key", &editor),
    )
    .await;
    assert_err(&r, 403, "access", "admin");
    assert_ok(
        &s.user_call("admin_delete", json!({"username": "bob"}))
            .await,
    );
    assert_err(
        &s.user_call("admin_get_user", json!({"username": "bob"}))
            .await,
        404,
        "notfound",
        "bob",
    );
    assert_err(
        &s.user_call("admin_delete", json!({"username": "bob"}))
            .await,
        404,
        "notfound",
        "bob",
    );
    let (status, _, v) = login(&s, "bob", "bob-password-2").await;
    assert_err(&(status, v), 403, "session", "incorrect");
}

#[tokio::test]
async fn api_keys_are_shown_once_and_stored_hashed() {
    let s = Server::start().await;
    let r = s
        .call("create_api_key", json!({"title": "Deploy bot", "username": "deploybot", "privileges": ["create_tickets"]}))
        .await;
    let v = assert_ok(&r).clone();
    let plain = v["plain_key"].as_str().unwrap().to_string();
    let id = v["api_key"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with('k') && plain.len() >= 16, "{v}");
    assert!(
        v["api_key"].get("key").is_none(),
        "no hash in the reply: {v}"
    );
    assert_eq!(
        v["api_key"]["mask"].as_str().unwrap(),
        format!("{}…", &plain[..4])
    );

    // The key works and writes under its own username.
    let r = s
        .call_as(&plain, "create_ticket", json!({"subject": "by bot"}))
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["username"], "deploybot");

    // Never shown again.
    let listed = s.call("get_api_keys", json!({})).await;
    assert!(ids(assert_ok(&listed)).contains(&id.as_str()));
    let one = s.call("get_api_key", json!({"id": id})).await;
    assert_eq!(assert_ok(&one)["api_key"]["title"], "Deploy bot");
    for reply in [&listed.1, &one.1] {
        let text = reply.to_string();
        assert!(
            !text.contains(&plain) && !text.contains("\"key\""),
            "key material in {text}"
        );
    }
    assert_err(
        &s.call("get_api_key", json!({"id": "knope"})).await,
        404,
        "notfound",
        "knope",
    );

    // Stored hashed: the plain key is nowhere in what the server stored (database and WAL).
    let stored = stored_bytes(&s.data);
    assert!(
        contains(&stored, &id),
        "the key record should be on disk (sanity check)"
    );
    assert!(
        !contains(&stored, &plain),
        "the plain API key is stored in the data directory"
    );
    assert!(
        !contains(&stored, &s.key),
        "the CLI-made key is stored in plain"
    );
    // And not in the server log either, even when sent in a query string.
    let r = send(
        s.client
            .get(s.url(&format!("/api/app/search_tickets/v1?api_key={plain}"))),
    )
    .await;
    assert_ok(&r);
    assert!(
        !s.log_text().contains(&plain),
        "plain key in the log:\n{}",
        s.log_text()
    );

    // A client-chosen key must be long enough; secrets cannot be changed later.
    let r = s
        .call("create_api_key", json!({"title": "short", "key": "abc"}))
        .await;
    assert_err(&r, 400, "api", "key");
    let (_, chosen) = create_key(
        &s,
        json!({"title": "chosen", "key": "my-own-long-secret-key-123", "privileges": []}),
    )
    .await;
    assert_eq!(chosen, "my-own-long-secret-key-123");
    let r = s
        .call(
            "update_api_key",
            json!({"id": id, "key": "another-long-secret-key-456"}),
        )
        .await;
    assert_err(&r, 400, "api", "cannot be changed");
    let r = s
        .call("create_api_key", json!({"title": "x", "colour": "red"}))
        .await;
    assert_err(&r, 400, "api", "colour");
    let r = s.call("create_api_key", json!({})).await;
    assert_err(&r, 400, "api", "title");

    // Deleted keys stop working.
    assert_ok(&s.call("delete_api_key", json!({"id": id})).await);
    let r = s.call_as(&plain, "get_ticket", json!({"num": 1})).await;
    assert_err(&r, 400, "api", "invalid api key");
    assert_err(
        &s.call("delete_api_key", json!({"id": id})).await,
        404,
        "notfound",
        &id,
    );
}

#[tokio::test]
async fn inactive_expired_and_rate_limited_keys() {
    let s = Server::start().await;
    // Disabled.
    let (id, key) = create_key(
        &s,
        json!({"title": "off", "active": false, "privileges": ["create_tickets"]}),
    )
    .await;
    let r = s
        .call_as(&key, "create_ticket", json!({"subject": "x"}))
        .await;
    assert_err(&r, 400, "api", "disabled");
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "active": true}))
            .await,
    );
    assert_ok(
        &s.call_as(&key, "create_ticket", json!({"subject": "now on"}))
            .await,
    );

    // Expired.
    let (id, key) = create_key(&s, json!({"title": "old", "expires": now() - 60})).await;
    assert_err(
        &s.call_as(&key, "search_tickets", json!({})).await,
        400,
        "api",
        "expired",
    );
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "expires": now() + 3600}))
            .await,
    );
    assert_ok(&s.call_as(&key, "search_tickets", json!({})).await);

    // Rate limited: 429 on /v1, 200 with code "rate" without.
    let (_, key) = create_key(
        &s,
        json!({"title": "slow", "max_per_sec": 2, "privileges": ["create_tickets"]}),
    )
    .await;
    let mut limited = None;
    let mut plain_limited = None;
    for _ in 0..20 {
        let r = s
            .call_as(&key, "create_ticket", json!({"subject": "burst"}))
            .await;
        if r.1["code"] == "rate" {
            limited = Some(r);
        }
        let r = send(
            s.client
                .post(s.url("/api/app/search_tickets"))
                .header("X-API-Key", &key),
        )
        .await;
        if r.1["code"] == "rate" {
            plain_limited = Some(r);
        }
    }
    assert_err(
        &limited.expect("some requests limited"),
        429,
        "rate",
        "requests per second",
    );
    assert_err(
        &plain_limited.expect("some requests limited"),
        200,
        "rate",
        "requests per second",
    );
    let created = s.call("search_tickets", json!({"query": "burst"})).await;
    let n = assert_ok(&created)["list"]["length"].as_u64().unwrap();
    assert!(
        (1..20).contains(&n),
        "limited requests created nothing ({n} of 20 went through)"
    );

    // Bad grants.
    for (params, phrase) in [
        (
            json!({"title": "t", "privileges": ["root"]}),
            "unknown privilege",
        ),
        (
            json!({"title": "t", "categories": ["nope"]}),
            "unknown category",
        ),
        (json!({"title": "t", "max_per_sec": -1}), "max_per_sec"),
        (json!({"title": "t", "expires": "tomorrow"}), "expires"),
        (json!({"title": "t", "active": "perhaps"}), "active"),
    ] {
        assert_err(&s.call("create_api_key", params).await, 400, "api", phrase);
    }
    // Only admins manage keys.
    let editor = s.key_with(&["edit_tickets"], &[]).await;
    assert_err(
        &s.call_as(&editor, "create_api_key", json!({"title": "t"}))
            .await,
        403,
        "access",
        "admin",
    );
    assert_err(
        &s.call_as(&editor, "get_api_keys", json!({})).await,
        403,
        "access",
        "admin",
    );
}

#[tokio::test]
async fn tags_and_categories_with_privileges() {
    let s = Server::start().await;
    for (noun, plural) in [("tag", "tags"), ("category", "categories")] {
        let creator = s.key_with(&[&format!("create_{plural}")], &[]).await;
        let editor = s.key_with(&[&format!("edit_{plural}")], &[]).await;
        let deleter = s.key_with(&[&format!("delete_{plural}")], &[]).await;
        let (create, update, delete, get, list) = (
            format!("create_{noun}"),
            format!("update_{noun}"),
            format!("delete_{noun}"),
            format!("get_{noun}"),
            format!("get_{plural}"),
        );

        // Without the privilege: refused.
        for key in [&editor, &deleter] {
            let r = s.call_as(key, &create, json!({"title": "On Call"})).await;
            assert_err(&r, 403, "access", &format!("create_{plural}"));
        }
        let r = s
            .call_as(
                &creator,
                &create,
                json!({"title": "On Call!", "notes": "pager"}),
            )
            .await;
        let rec = assert_ok(&r)[noun].clone();
        assert_eq!(
            (&rec["id"], &rec["title"], &rec["notes"]),
            (&json!("on_call"), &json!("On Call!"), &json!("pager"))
        );
        let r = s
            .call_as(
                &creator,
                &create,
                json!({"id": "on_call", "title": "Again"}),
            )
            .await;
        assert_err(&r, 400, noun, "already exists");
        for (params, phrase) in [
            (json!({"notes": "x"}), "title"),
            (json!({"title": ""}), "title"),
            (json!({"title": "T", "id": "Bad Id"}), "id"),
            (json!({"title": "T", "wings": 2}), "wings"),
            (json!({"title": "T", "notes": 5}), "notes"),
        ] {
            assert_err(
                &s.call_as(&creator, &create, params).await,
                400,
                noun,
                phrase,
            );
        }

        assert_err(
            &s.call_as(&creator, &update, json!({"id": "on_call", "title": "X"}))
                .await,
            403,
            "access",
            &format!("edit_{plural}"),
        );
        let r = s
            .call_as(
                &editor,
                &update,
                json!({"id": "on_call", "title": "On call"}),
            )
            .await;
        assert_eq!(
            (&assert_ok(&r)[noun]["title"], &r.1[noun]["notes"]),
            (&json!("On call"), &json!("pager"))
        );
        assert_err(
            &s.call_as(&editor, &update, json!({"id": "nope", "title": "X"}))
                .await,
            404,
            "notfound",
            "nope",
        );
        let r = s.call(&get, json!({"id": "on_call"})).await;
        assert_eq!(assert_ok(&r)[noun]["title"], "On call");
        let r = s.call(&list, json!({})).await;
        assert!(ids(assert_ok(&r)).contains(&"on_call"));

        // Tickets may now use it.
        let field = if noun == "tag" {
            json!({"subject": "uses it", "tags": ["on_call"]})
        } else {
            json!({"subject": "uses it", "category": "on_call"})
        };
        let t = s.create(field).await;

        assert_err(
            &s.call_as(&editor, &delete, json!({"id": "on_call"})).await,
            403,
            "access",
            &format!("delete_{plural}"),
        );
        if noun == "category" {
            // A category still in use cannot go.
            assert_err(
                &s.call_as(&deleter, &delete, json!({"id": "on_call"})).await,
                400,
                "category",
                "still has 1 ticket",
            );
            assert_ok(&s.call("delete_ticket", json!({"id": t["id"]})).await);
        }
        assert_ok(&s.call_as(&deleter, &delete, json!({"id": "on_call"})).await);
        assert_err(
            &s.call(&get, json!({"id": "on_call"})).await,
            404,
            "notfound",
            "on_call",
        );
        assert_err(
            &s.call_as(&deleter, &delete, json!({"id": "on_call"})).await,
            404,
            "notfound",
            "on_call",
        );
    }
    // Tickets refuse tags and categories that do not exist.
    let r = s
        .call(
            "create_ticket",
            json!({"subject": "x", "tags": ["on_call"]}),
        )
        .await;
    assert_err(&r, 400, "ticket", "unknown tag");
    let r = s
        .call(
            "create_ticket",
            json!({"subject": "x", "category": "on_call"}),
        )
        .await;
    assert_err(&r, 400, "ticket", "unknown category");
}

#[tokio::test]
async fn no_reply_carries_a_secret() {
    let s = Server::start().await;
    let mut transcript: Vec<(String, String)> = Vec::new();
    let mut record = |call: &str, v: &Value| transcript.push((call.to_string(), v.to_string()));

    let (_, _, v) = login(&s, "admin", ADMIN_PASSWORD).await;
    let session = v["session_id"].as_str().unwrap().to_string();
    let csrf = v["csrf_token"].as_str().unwrap().to_string();
    let r = s
        .call(
            "create_api_key",
            json!({"title": "secret test", "privileges": ["admin"]}),
        )
        .await;
    let plain = assert_ok(&r)["plain_key"].as_str().unwrap().to_string();

    let t = s.create(json!({"subject": "Secrets"})).await;
    let calls: Vec<(&str, bool, Value)> = vec![
        ("resume_session", true, json!({})),
        ("admin_get_users", true, json!({})),
        ("admin_get_user", true, json!({"username": "admin"})),
        (
            "admin_create",
            true,
            json!({"username": "eve", "password": "eve-password"}),
        ),
        (
            "admin_update",
            true,
            json!({"username": "eve", "password": "eve-password-2"}),
        ),
        ("get_api_keys", false, json!({})),
        (
            "echo",
            false,
            json!({"password": "p", "session_id": session, "api_key": plain}),
        ),
        ("get_ticket", false, json!({"id": t["id"]})),
        ("search_tickets", false, json!({"query": "*"})),
        ("update_ticket", false, json!({"id": t["id"], "body": "x"})),
        ("get_roles", false, json!({})),
    ];
    for (call, user_ns, params) in calls {
        let ns = if user_ns { "user" } else { "app" };
        for auth in ["session", "key"] {
            let mut req = s
                .client
                .post(s.url(&format!("/api/{ns}/{call}/v1")))
                .json(&params);
            req = if auth == "session" {
                req.header("X-Session-ID", &session)
                    .header("X-CSRF-Token", &csrf)
            } else {
                req.header("X-API-Key", &plain)
            };
            let r = send(req).await;
            record(call, &r.1);
        }
    }
    for (call, text) in &transcript {
        assert!(
            !text.contains(&session),
            "{call} reply contains the session id: {text}"
        );
        assert!(
            !text.contains(&plain),
            "{call} reply contains the API key: {text}"
        );
        assert!(
            !text.contains(&s.key),
            "{call} reply contains the admin API key: {text}"
        );
        assert!(
            !text.contains("$argon2"),
            "{call} reply contains a password hash: {text}"
        );
        assert!(
            !text.contains("eve-password"),
            "{call} reply contains a password: {text}"
        );
    }
    let log = s.log_text();
    assert!(
        !log.contains(&plain) && !log.contains(&session),
        "secret in the server log:\n{log}"
    );
}
