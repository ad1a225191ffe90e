//! SPEC §1 over real HTTP: routes with and without `/v1`, GET and POST, every way of sending
//! parameters, every way of authenticating, sessions with CSRF protection, and the error
//! shape and HTTP status of each error class.

mod api_support;
mod common;

use api_support::{
    assert_err, assert_ok, call_plain, login, multipart, post_raw, send, send_full, total,
};
use common::{Server, ADMIN_PASSWORD};
use serde_json::{json, Value};

#[tokio::test]
async fn routes_methods_and_parameter_sources() {
    let s = Server::start().await;

    // Both routes, both methods.
    for path in ["/api/app/ping/v1", "/api/app/ping"] {
        let get = send(s.client.get(s.url(path))).await;
        assert_eq!(get, (200, json!({"code": 0})), "GET {path}");
        let post = send(s.client.post(s.url(path)).json(&json!({}))).await;
        assert_eq!(post, (200, json!({"code": 0})), "POST {path}");
    }
    let t = s.create(json!({"subject": "Routes"})).await;
    let id = t["id"].as_str().unwrap();
    for path in ["/api/app/get_ticket/v1", "/api/app/get_ticket"] {
        let r = send(
            s.client
                .get(s.url(&format!("{path}?id={id}")))
                .header("X-API-Key", &s.key),
        )
        .await;
        assert_eq!(assert_ok(&r)["ticket"]["id"], id, "GET {path}");
    }

    // Query string merged over a JSON body; typed values; repeated keys become arrays.
    let r = send(
        s.client
            .post(s.url("/api/app/echo/v1?n=42&neg=-3&t=true&f=false&s=hello&lead=007&r=x&r=y"))
            .header("X-API-Key", &s.key)
            .json(&json!({"n": "from body", "keep": "yes"})),
    )
    .await;
    assert_eq!(
        assert_ok(&r)["params"],
        json!({"n": 42, "neg": -3, "t": true, "f": false, "s": "hello", "lead": "007",
               "r": ["x", "y"], "keep": "yes"})
    );
    // The query wins on a clash with the body in a real call too.
    let r = send(
        s.client
            .post(s.url("/api/app/search_tickets/v1?query=*&limit=5"))
            .header("X-API-Key", &s.key)
            .json(&json!({"query": "nosuchwordanywhere", "limit": 1})),
    )
    .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
    assert_eq!(r.1["rows"].as_array().unwrap().len(), 1);

    // Booleans from the query string: 1/true and 0/false.
    for (flag, has_body) in [
        ("compact=1", false),
        ("compact=true", false),
        ("compact=0", true),
        ("compact=false", true),
    ] {
        let r = send(
            s.client
                .get(s.url(&format!("/api/app/search_tickets/v1?{flag}")))
                .header("X-API-Key", &s.key),
        )
        .await;
        let row = &assert_ok(&r)["rows"][0];
        assert_eq!(row.get("body").is_some(), has_body, "{flag}: {row}");
    }

    // Arrays in a query string: comma-separated or repeated.
    let t2 = s.create(json!({"subject": "Second"})).await;
    let id2 = t2["id"].as_str().unwrap();
    for qs in [format!("ids={id2},{id}"), format!("ids={id2}&ids={id}")] {
        let r = send(
            s.client
                .get(s.url(&format!("/api/app/get_tickets/v1?{qs}")))
                .header("X-API-Key", &s.key),
        )
        .await;
        let ids: Vec<&Value> = assert_ok(&r)["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| &t["id"])
            .collect();
        assert_eq!(ids, vec![&json!(id2), &json!(id)], "{qs}");
    }

    // A url-encoded form (lists comma-separated).
    let r = post_raw(
        &s,
        "/api/app/create_ticket/v1",
        "application/x-www-form-urlencoded",
        "subject=From+a+form&type=bug&tags=important,flag&assignees=admin",
    )
    .await;
    let t = &assert_ok(&r)["ticket"];
    assert_eq!(
        (&t["subject"], &t["type"], &t["tags"], &t["assignees"]),
        (
            &json!("From a form"),
            &json!("bug"),
            &json!(["important", "flag"]),
            &json!(["admin"])
        )
    );

    // A multipart form whose `json` field holds the parameters.
    let (ct, body) = multipart(
        &json!({"subject": "From multipart", "status": "on_hold"}),
        &[],
    );
    let r = post_raw(&s, "/api/app/create_ticket/v1", &ct, body).await;
    let t = &assert_ok(&r)["ticket"];
    assert_eq!(
        (&t["subject"], &t["status"]),
        (&json!("From multipart"), &json!("on_hold"))
    );
    assert_eq!(total(&s, "*").await, 4);

    // `true` and numbers in a query string are still words to search for.
    let r = send(
        s.client
            .get(s.url("/api/app/search_tickets/v1?query=true"))
            .header("X-API-Key", &s.key),
    )
    .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 0);
    // A parameter the call declares text stays text when the query string makes it look
    // like a number or a boolean (the call table says which; `wire/spec.rs`).
    let r = send(
        s.client
            .get(s.url("/api/app/create_tag/v1?title=2024&notes=5&icon=true"))
            .header("X-API-Key", &s.key),
    )
    .await;
    let tag = &assert_ok(&r)["tag"];
    assert_eq!(
        (&tag["id"], &tag["title"], &tag["notes"], &tag["icon"]),
        (&json!("2024"), &json!("2024"), &json!("5"), &json!("true"))
    );
    let r = send(
        s.client
            .get(s.url("/api/app/create_ticket/v1?subject=42&tags=2024"))
            .header("X-API-Key", &s.key),
    )
    .await;
    let t = &assert_ok(&r)["ticket"];
    assert_eq!(
        (&t["subject"], &t["tags"]),
        (&json!("42"), &json!(["2024"]))
    );
    // Sent as JSON, a number where text belongs is still an error.
    let r = send(
        s.client
            .post(s.url("/api/app/create_tag/v1"))
            .header("X-API-Key", &s.key)
            .json(&json!({"title": ["x"]})),
    )
    .await;
    assert_err(&r, 400, "tag", "title (must be a string)");
    // Percent-encoded bytes that are not UTF-8: a clear error, nothing created.
    let r = send(
        s.client
            .get(s.url("/api/app/create_ticket/v1?subject=%FF%FEbad"))
            .header("X-API-Key", &s.key),
    )
    .await;
    assert_err(&r, 400, "api", "not valid utf-8");
    let r = post_raw(
        &s,
        "/api/app/create_ticket/v1",
        "application/x-www-form-urlencoded",
        "subject=%C3%28x",
    )
    .await;
    assert_err(&r, 400, "api", "not valid utf-8");
    let r = post_raw(
        &s,
        "/api/app/create_ticket/v1",
        "application/x-www-form-urlencoded",
        b"subject=\xff".to_vec(),
    )
    .await;
    assert_err(&r, 400, "api", "utf-8");
    assert_eq!(total(&s, "*").await, 5);
}

#[tokio::test]
async fn api_keys_in_header_query_or_json_property() {
    let s = Server::start().await;
    let key = s.key.clone();

    let by_header = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .header("X-API-Key", &key)
            .json(&json!({"subject": "header"})),
    )
    .await;
    assert_ok(&by_header);
    let by_query = send(
        s.client
            .post(s.url(&format!("/api/app/create_ticket/v1?api_key={key}")))
            .json(&json!({"subject": "query"})),
    )
    .await;
    assert_ok(&by_query);
    let by_property = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .json(&json!({"subject": "property", "api_key": key})),
    )
    .await;
    assert_ok(&by_property);
    assert_eq!(total(&s, "*").await, 3);

    // The key is a credential, not a parameter: echo does not return it.
    let r = send(
        s.client
            .post(s.url("/api/app/echo/v1"))
            .json(&json!({"api_key": key, "x": 1})),
    )
    .await;
    assert_eq!(assert_ok(&r)["params"], json!({"x": 1}));

    // No credentials, a wrong key: refused and nothing is created.
    let none = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .json(&json!({"subject": "anon"})),
    )
    .await;
    assert_err(&none, 403, "session", "no session id or api key");
    let none_plain = send(
        s.client
            .post(s.url("/api/app/create_ticket"))
            .json(&json!({"subject": "anon"})),
    )
    .await;
    assert_err(&none_plain, 200, "session", "no session id or api key");
    let wrong = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .header("X-API-Key", "0123456789abcdef0123456789abcdef")
            .json(&json!({"subject": "wrong key"})),
    )
    .await;
    assert_err(&wrong, 400, "api", "invalid api key");
    assert_eq!(total(&s, "*").await, 3);
}

#[tokio::test]
async fn error_shape_and_status_per_route_family() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Existing"})).await;
    let readonly = s.key_with(&[], &[]).await;

    // (call, params, key, v1 status, code, phrase)
    let cases: Vec<(&str, Value, &str, u16, &str, &str)> = vec![
        (
            "create_ticket",
            json!({"subject": "x", "type": "nope"}),
            s.key.as_str(),
            400,
            "ticket",
            "unknown ticket type",
        ),
        (
            "get_ticket",
            json!({}),
            s.key.as_str(),
            400,
            "ticket",
            "missing parameter: id or num",
        ),
        (
            "get_ticket",
            json!({"id": "tnosuchticket"}),
            s.key.as_str(),
            404,
            "notfound",
            "ticket not found",
        ),
        (
            "create_ticket",
            json!({"subject": "x"}),
            &readonly,
            403,
            "access",
            "create_tickets",
        ),
    ];
    for (call, params, key, status, code, phrase) in cases {
        let v1 = s.call_as(key, call, params.clone()).await;
        assert_err(&v1, status, code, phrase);
        assert_eq!(
            v1.1.as_object().unwrap().len(),
            2,
            "only code and description: {}",
            v1.1
        );
        let plain = send(
            s.client
                .post(s.url(&format!("/api/app/{call}")))
                .header("X-API-Key", key)
                .json(&params),
        )
        .await;
        assert_err(&plain, 200, code, phrase);
    }

    // Unknown calls and routes: 404 with code "api" on both route families.
    for path in [
        "/api/app/no_such_call/v1",
        "/api/app/no_such_call",
        "/api/nope/ping/v1",
        "/not/an/api",
    ] {
        let r = send(
            s.client
                .post(s.url(path))
                .header("X-API-Key", &s.key)
                .json(&json!({})),
        )
        .await;
        assert_err(&r, 404, "api", "unknown");
    }

    // Malformed JSON: a JSON error, code "api", never plain text.
    for (path, status) in [
        ("/api/app/create_ticket/v1", 400),
        ("/api/app/create_ticket", 200),
    ] {
        let r = post_raw(&s, path, "application/json", r#"{"subject": "half"#).await;
        assert_err(&r, status, "api", "malformed json");
        let r = post_raw(&s, path, "application/json", r#"["subject"]"#).await;
        assert_err(&r, status, "api", "json object");
    }
    // Invalid UTF-8 inside JSON.
    let r = post_raw(
        &s,
        "/api/app/create_ticket/v1",
        "application/json",
        b"{\"subject\": \"\xff\xfe\"}".to_vec(),
    )
    .await;
    assert_err(&r, 400, "api", "malformed json");
    let r = call_plain(&s, "get_ticket", json!({"id": t["id"]})).await;
    assert_ok(&r);
    assert_eq!(total(&s, "*").await, 1, "no failed call created anything");
}

#[tokio::test]
async fn sessions_cookies_and_csrf() {
    let s = Server::start().await;

    // Wrong password: a `session` error, no cookie.
    let (status, headers, v) = login(&s, "admin", "wrong password").await;
    assert_err(
        &(status, v),
        403,
        "session",
        "incorrect username or password",
    );
    assert!(headers.get("set-cookie").is_none());
    let (status, _, v) = login(&s, "nobody", ADMIN_PASSWORD).await;
    assert_err(&(status, v), 403, "session", "incorrect");

    let (status, headers, v) = login(&s, "admin", ADMIN_PASSWORD).await;
    assert_ok(&(status, v.clone()));
    let sid = v["session_id"].as_str().expect("session_id").to_string();
    let csrf = v["csrf_token"].as_str().expect("csrf_token").to_string();
    assert_eq!(v["user"]["username"], "admin");
    assert!(v["user"].get("password").is_none(), "no password hash: {v}");
    let cookie = headers
        .get("set-cookie")
        .expect("login sets a cookie")
        .to_str()
        .unwrap();
    assert!(
        cookie.starts_with(&format!("session_id={sid};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie_hdr = format!("session_id={sid}");

    // X-Session-ID header: no CSRF token needed.
    let r = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .header("X-Session-ID", &sid)
            .json(&json!({"subject": "by session header"})),
    )
    .await;
    assert_eq!(assert_ok(&r)["ticket"]["username"], "admin");
    let id = r.1["ticket"]["id"].as_str().unwrap().to_string();

    // The cookie alone reads ...
    let r = send(
        s.client
            .get(s.url(&format!("/api/app/get_ticket/v1?id={id}")))
            .header("Cookie", &cookie_hdr),
    )
    .await;
    assert_ok(&r);
    // ... but may not change anything without the CSRF token (nor with a wrong one).
    for token in [None, Some("not-the-token")] {
        let mut req = s
            .client
            .post(s.url("/api/app/update_ticket/v1"))
            .header("Cookie", &cookie_hdr)
            .json(&json!({"id": id, "subject": "csrf attack"}));
        if let Some(t) = token {
            req = req.header("X-CSRF-Token", t);
        }
        assert_err(&send(req).await, 403, "session", "x-csrf-token");
        let r = send(
            s.client
                .post(s.url("/api/app/create_ticket/v1"))
                .header("Cookie", &cookie_hdr)
                .json(&json!({"subject": "csrf create"})),
        )
        .await;
        assert_err(&r, 403, "session", "x-csrf-token");
    }
    assert_eq!(
        api_support::ticket(&s, &id).await["subject"],
        "by session header"
    );
    assert_eq!(total(&s, "*").await, 1);
    // With the token it works.
    let r = send(
        s.client
            .post(s.url("/api/app/update_ticket/v1"))
            .header("Cookie", &cookie_hdr)
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"id": id, "subject": "edited by cookie"})),
    )
    .await;
    assert_eq!(assert_ok(&r)["ticket"]["subject"], "edited by cookie");

    // resume_session by cookie gives the user and the same CSRF token.
    let r = send(
        s.client
            .post(s.url("/api/user/resume_session/v1"))
            .header("Cookie", &cookie_hdr),
    )
    .await;
    let v = assert_ok(&r);
    assert_eq!(
        (&v["user"]["username"], &v["csrf_token"]),
        (&json!("admin"), &json!(csrf))
    );
    assert!(v["user"].get("password").is_none());

    // Logout invalidates the session and clears the cookie.
    let (status, headers, v) = send_full(
        s.client
            .post(s.url("/api/user/logout/v1"))
            .header("X-Session-ID", &sid),
    )
    .await;
    assert_ok(&(status, v));
    let cleared = headers
        .get("set-cookie")
        .expect("logout clears the cookie")
        .to_str()
        .unwrap();
    assert!(
        cleared.starts_with("session_id=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for req in [
        s.client
            .post(s.url("/api/app/get_ticket/v1"))
            .header("X-Session-ID", &sid),
        s.client
            .post(s.url("/api/app/get_ticket/v1"))
            .header("Cookie", &cookie_hdr),
        s.client
            .post(s.url("/api/user/resume_session/v1"))
            .header("X-Session-ID", &sid),
    ] {
        let r = send(req.json(&json!({"id": id}))).await;
        assert_err(&r, 403, "session", "log in again");
    }
}
