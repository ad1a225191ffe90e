//! The web desk over plain HTTP, on both backends (`scripts/test` runs it again on
//! PostgreSQL): sessions and CSRF, what a page shows to whom, escaping of user
//! content, forms that work without JavaScript, assets and compression, and live events.

mod common;

use std::time::Duration;

use common::{Server, ADMIN_PASSWORD};
use reqwest::header::{HeaderMap, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

const PASSWORD: &str = "correct-horse-battery";

/// A browser without JavaScript: follows no redirects, keeps the session cookie by hand.
struct Person {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a csrf field") + marker.len();
        self.body[start..]
            .split('"')
            .next()
            .unwrap_or("")
            .to_string()
    }
}

impl Person {
    fn anonymous(s: &Server) -> Person {
        Person {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: s.base.clone(),
            cookie: String::new(),
        }
    }

    async fn signed_in(s: &Server, user: &str, password: &str) -> Person {
        let mut p = Person::anonymous(s);
        let page = p
            .post("/login", &[("username", user), ("password", password)])
            .await;
        assert_eq!(page.status, 303, "login of {user}: {}", page.body);
        let cookie = page
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("session_id="))
            .expect("a session cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        p.cookie = cookie.split(';').next().unwrap_or("").to_string();
        p
    }

    async fn read(res: reqwest::Response) -> Page {
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Page {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("GET");
        Person::read(res).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("form"))
            .send()
            .await
            .expect("POST");
        Person::read(res).await
    }
}

async fn add_user(s: &Server, user: &str, privileges: &[&str], categories: &[&str]) {
    let (_, v) = s
        .user_call(
            "admin_create",
            json!({"username": user, "password": PASSWORD, "privileges": privileges, "categories": categories}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
}

async fn ticket(s: &Server, num: i64) -> serde_json::Value {
    let (_, v) = s.call("get_ticket", json!({"num": num})).await;
    v["ticket"].clone()
}

#[tokio::test]
async fn pages_need_a_session_and_logout_ends_it() {
    let s = Server::start().await;
    let anon = Person::anonymous(&s);
    let home = anon.get("/").await;
    assert_eq!((home.status, home.location().as_str()), (303, "/tickets"));
    for path in [
        "/tickets",
        "/tickets/1",
        "/tickets/new",
        "/admin",
        "/account",
        "/events?q=x",
    ] {
        let page = anon.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        assert!(
            page.location().starts_with("/login?next="),
            "{path}: {}",
            page.location()
        );
    }
    // A login page never sends anyone to another site afterwards.
    let evil = anon
        .post(
            "/login",
            &[
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(evil.location(), "/tickets");
    let wrong = anon
        .post("/login", &[("username", "admin"), ("password", "nope")])
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Incorrect username or password"));
    assert!(!wrong.body.contains("nope"), "the password is never echoed");

    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let list = admin.get("/tickets").await;
    assert_eq!(list.status, 200);
    let csp = list
        .headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !list.body.contains("<script>") && !list.body.contains(" style=\""),
        "no inline script or style"
    );

    // Logging out needs the token; then the session is gone for the API too.
    let no_token = admin.post("/logout", &[]).await;
    assert_eq!(no_token.status, 403);
    assert_eq!(admin.get("/tickets").await.status, 200);
    let out = admin.post("/logout", &[("csrf", &list.csrf())]).await;
    assert_eq!((out.status, out.location().as_str()), (303, "/login"));
    assert_eq!(admin.get("/tickets").await.status, 303);
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_change_nothing_without_it() {
    let s = Server::start().await;
    let t = s
        .create(json!({"subject": "Printer on fire", "status": "open"}))
        .await;
    let num = t["num"].as_i64().expect("num");
    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let page = admin.get(&format!("/tickets/{num}")).await;
    let token = page.csrf();
    for (path, form) in [
        (format!("/tickets/{num}/comment"), vec![("body", "hello")]),
        (format!("/tickets/{num}/update"), vec![("status", "closed")]),
        (format!("/tickets/{num}/delete"), vec![("confirm", "yes")]),
        ("/tickets/new".to_string(), vec![("subject", "sneaky")]),
    ] {
        for bad in ["", "0123456789abcdef0123456789abcdef"] {
            let mut f = form.clone();
            f.push(("csrf", bad));
            let res = admin.post(&path, &f).await;
            assert_eq!(res.status, 403, "{path} with csrf {bad:?}");
        }
    }
    let after = ticket(&s, num).await;
    assert_eq!(after["status"], "open");
    assert_eq!(
        after["changes"].as_array().map(Vec::len),
        t["changes"].as_array().map(Vec::len)
    );
    let (_, v) = s.call("search_tickets", json!({"query": "sneaky"})).await;
    assert_eq!(v["list"]["length"], 0);

    // With the token: a comment, a field change, then the delete (only with the box ticked).
    let res = admin
        .post(
            &format!("/tickets/{num}/comment"),
            &[("csrf", &token), ("body", "**Fire** is out")],
        )
        .await;
    assert_eq!(res.status, 303);
    let res = admin
        .post(
            &format!("/tickets/{num}/update"),
            &[
                ("csrf", &token),
                ("status", "resolved"),
                ("due", "2031-02-03"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let after = ticket(&s, num).await;
    assert_eq!(after["status"], "resolved");
    assert!(after["due"].as_i64().unwrap_or(0) > 0);
    let shown = admin.get(&format!("/tickets/{num}")).await.body;
    assert!(
        shown.contains("<strong>Fire</strong> is out"),
        "the comment is rendered Markdown"
    );
    assert!(
        shown.contains("changed status from") || shown.contains("set status to Resolved"),
        "{shown}"
    );
    let unticked = admin
        .post(&format!("/tickets/{num}/delete"), &[("csrf", &token)])
        .await;
    assert_eq!(unticked.status, 303);
    assert_eq!(ticket(&s, num).await["num"], num);
    admin
        .post(
            &format!("/tickets/{num}/delete"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    let (_, v) = s.call("get_ticket", json!({"num": num})).await;
    assert_eq!(v["code"], "notfound");
}

#[tokio::test]
async fn a_hidden_ticket_does_not_exist_in_the_ui() {
    let s = Server::start().await;
    for id in ["ops", "sec"] {
        s.call("create_category", json!({"id": id, "title": id}))
            .await;
    }
    add_user(
        &s,
        "carol",
        &["create_tickets", "edit_tickets", "delete_tickets"],
        &["ops"],
    )
    .await;
    let seen = s
        .create(json!({"subject": "Visible outage", "category": "ops"}))
        .await;
    let hidden = s
        .create(json!({"subject": "Secret audit", "category": "sec", "body": "classified"}))
        .await;
    let (hid, hnum) = (
        hidden["id"].as_str().expect("id"),
        hidden["num"].as_i64().expect("num"),
    );
    let carol = Person::signed_in(&s, "carol", PASSWORD).await;

    let list = carol.get("/tickets").await;
    assert!(list.body.contains("Visible outage"));
    assert!(!list.body.contains("Secret audit"));
    assert!(!carol
        .get("/tickets?q=classified")
        .await
        .body
        .contains("Secret audit"));
    let token = list.csrf();
    for path in [format!("/tickets/{hnum}"), format!("/tickets/id/{hid}")] {
        let page = carol.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(
            !page.body.contains("Secret audit") && !page.body.contains("classified"),
            "{path}"
        );
    }
    // Her forms cannot touch it either, and a category she may not use is refused.
    carol
        .post(
            &format!("/tickets/{hnum}/comment"),
            &[("csrf", &token), ("body", "peek")],
        )
        .await;
    carol
        .post(
            &format!("/tickets/{hnum}/update"),
            &[("csrf", &token), ("status", "closed")],
        )
        .await;
    carol
        .post(
            &format!("/tickets/{hnum}/delete"),
            &[("csrf", &token), ("confirm", "yes")],
        )
        .await;
    carol
        .post(
            "/tickets/bulk",
            &[
                ("csrf", &token),
                ("ids", hid),
                ("action", "status"),
                ("value", "closed"),
            ],
        )
        .await;
    let after = ticket(&s, hnum).await;
    assert_eq!(after["status"], hidden["status"]);
    assert_eq!(after["changes"], hidden["changes"]);
    // The category picker offers only hers.
    let new = carol.get("/tickets/new").await.body;
    assert!(new.contains("value=\"ops\"") && !new.contains("value=\"sec\""));

    // Live events: a change to the hidden ticket sends her nothing; one she may see arrives.
    let stream = carol
        .http
        .get(format!("{}/events?q=", s.base))
        .header(COOKIE, &carol.cookie)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status().as_u16(), 200);
    let mut stream = stream;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.call("update_ticket", json!({"id": hid, "status": "closed"}))
        .await;
    s.call(
        "update_ticket",
        json!({"id": seen["id"], "status": "in_progress"}),
    )
    .await;
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.contains("\"num\"") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an event within 5 s");
        got.push_str(&String::from_utf8_lossy(
            &chunk.expect("stream").expect("chunk"),
        ));
    }
    assert!(got.contains(&format!("\"num\":{}", seen["num"])), "{got}");
    assert!(!got.contains(&format!("\"num\":{hnum}")), "{got}");
}

#[tokio::test]
async fn controls_follow_privileges() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Read only here"})).await;
    let num = t["num"].as_i64().expect("num");
    add_user(&s, "viewer", &[], &[]).await;
    let viewer = Person::signed_in(&s, "viewer", PASSWORD).await;
    let page = viewer.get(&format!("/tickets/{num}")).await;
    assert_eq!(page.status, 200);
    for control in [
        "comment-form",
        "/update\"",
        "Delete ticket",
        "href=\"/tickets/new\"",
    ] {
        assert!(!page.body.contains(control), "a viewer sees {control}");
    }
    assert!(!viewer.get("/tickets").await.body.contains("With selected"));
    let admin_page = viewer.get("/admin").await;
    assert_eq!(admin_page.status, 403);
    assert!(!admin_page.body.contains("API keys"));
    assert_eq!(viewer.get("/tickets/new").await.status, 403);
    let token = page.csrf();
    let res = viewer
        .post(
            &format!("/tickets/{num}/comment"),
            &[("csrf", &token), ("body", "hi")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert_eq!(
        ticket(&s, num).await["changes"],
        t["changes"],
        "no privilege, no change"
    );
    let res = viewer
        .post("/admin/keys", &[("csrf", &token), ("title", "mine")])
        .await;
    assert_eq!(res.status, 403);
    let (_, keys) = s.call("get_api_keys", json!({})).await;
    assert_eq!(
        keys["rows"].as_array().map(Vec::len),
        Some(1),
        "only the harness's key"
    );
}

#[tokio::test]
async fn user_content_is_escaped_and_sanitized() {
    let s = Server::start().await;
    let t = s
        .create(json!({"subject": "Disk < 5% & load > 9 <script>alert(1)</script>",
                       "body": "<img src=x onerror=alert(2)> [x](javascript:alert(3)) <a href=\"/ok\" onclick=\"y()\">l</a>"}))
        .await;
    s.call("add_ticket_change", json!({"id": t["id"], "change": {"type": "comment", "body": "<iframe src=\"//evil\"></iframe> fine"}})).await;
    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    // Whatever the service kept of the subject is shown as text, never as markup.
    let subject = t["subject"].as_str().expect("subject");
    assert!(subject.starts_with("Disk < 5% & load > 9"), "{subject}");
    let escaped = "Disk &lt; 5% &amp; load &gt; 9";
    for path in [format!("/tickets/{}", t["num"]), "/tickets".to_string()] {
        let body = admin.get(&path).await.body;
        assert!(body.contains(escaped), "{path}: {escaped}");
        for bad in [
            "<script>alert",
            "onerror",
            "javascript:",
            "onclick",
            "<iframe",
        ] {
            assert!(!body.contains(bad), "{path} contains {bad}");
        }
    }
    // The preview renders and sanitizes the same way, and needs the token.
    let token = admin.get("/tickets").await.csrf();
    let res = admin
        .http
        .post(format!("{}/preview", s.base))
        .header(COOKIE, &admin.cookie)
        .header("X-CSRF-Token", &token)
        .body("**hi** <script>x()</script>")
        .send()
        .await
        .expect("preview");
    let html = res.text().await.expect("html");
    assert!(
        html.contains("<strong>hi</strong>") && !html.contains("<script"),
        "{html}"
    );
    let res = admin
        .http
        .post(format!("{}/preview", s.base))
        .header(COOKIE, &admin.cookie)
        .body("x")
        .send()
        .await
        .expect("preview");
    assert_eq!(res.status().as_u16(), 403);
}

#[tokio::test]
async fn searching_filtering_and_bulk_work_without_javascript() {
    let s = Server::start().await;
    add_user(&s, "alice", &["create_tickets", "edit_tickets"], &[]).await;
    let mut nums = Vec::new();
    for i in 0..60 {
        let t = s
            .create(json!({"subject": format!("Batch job {i:02} failed"), "status": if i % 2 == 0 { "open" } else { "closed" },
                           "tags": if i < 3 { json!(["important"]) } else { json!([]) }}))
            .await;
        nums.push(t["num"].as_i64().expect("num"));
    }
    let alice = Person::signed_in(&s, "alice", PASSWORD).await;
    let page = alice.get("/tickets?q=batch").await;
    assert!(page.body.contains("1–50 of 60 tickets"), "paged by 50");
    assert!(page.body.contains("rel=\"next\""));
    let second = alice.get("/tickets?q=batch&page=2").await;
    assert!(second.body.contains("51–60 of 60 tickets"));

    // A filter becomes part of the query.
    let filtered = alice
        .get("/tickets?q=batch&status=open&tag=important")
        .await;
    assert_eq!(filtered.status, 303);
    assert_eq!(
        filtered.location(),
        "/tickets?q=batch+status%3Aopen+tags%3Aimportant"
    );
    let shown = alice.get(&filtered.location()).await;
    assert!(
        shown.body.contains("1–2 of 2 tickets"),
        "tickets 0 and 2 are open and important"
    );

    // A bad query says where it is wrong.
    let bad = alice.get("/tickets?q=status%3Aopen+(").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("<mark>"), "the error span is highlighted");

    // Sorting by subject ascending puts job 00 first.
    let sorted = alice.get("/tickets?q=batch&sort=subject&dir=asc").await;
    let first = sorted.body.find("Batch job 00").expect("00 listed");
    let other = sorted.body.find("Batch job 01").expect("01 listed");
    assert!(first < other);

    // The Assignees header sorts by the first assignee, ascending on the first click
    // (unassigned first); descending puts the assigned ones first, `carol` before `alice`.
    assert!(
        page.body
            .contains("href=\"&#x2f;tickets?q=batch&amp;sort=assignees&amp;dir=asc\""),
        "an Assignees sort link"
    );
    assert!(
        page.body
            .contains("href=\"&#x2f;tickets?q=batch&amp;sort=tags&amp;dir=asc\""),
        "a Tags sort link"
    );
    for (subject, assignees) in [
        ("Batch assigned to alice", json!(["alice"])),
        ("Batch assigned to carol", json!(["carol", "dave"])),
    ] {
        s.create(json!({"subject": subject, "assignees": assignees}))
            .await;
    }
    let by_assignee = alice.get("/tickets?q=batch&sort=assignees&dir=desc").await;
    assert_eq!(by_assignee.status, 200);
    assert!(
        by_assignee.body.contains("aria-sort=\"descending\""),
        "the column shows the sort"
    );
    let carol = by_assignee
        .body
        .find("Batch assigned to carol")
        .expect("carol's ticket listed");
    let alice_row = by_assignee
        .body
        .find("Batch assigned to alice")
        .expect("alice's ticket listed");
    let unassigned = by_assignee
        .body
        .find("Batch job ")
        .expect("unassigned tickets listed");
    assert!(
        carol < alice_row && alice_row < unassigned,
        "carol, alice, then the unassigned"
    );
    let ascending = alice.get("/tickets?q=batch&sort=assignees").await;
    assert!(
        ascending.body.contains("aria-sort=\"ascending\""),
        "ascending by default"
    );
    assert!(
        !ascending.body.contains("Batch assigned to"),
        "page 1 of 62 holds only unassigned tickets"
    );

    // Bulk: close two tickets and tag them.
    let token = page.csrf();
    let ids: Vec<String> = {
        let (_, v) = s
            .call(
                "search_tickets",
                json!({"query": "subject:\"batch job 00\" | subject:\"batch job 02\"", "limit": 5}),
            )
            .await;
        v["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(ids.len(), 2);
    let form: Vec<(&str, &str)> = vec![
        ("csrf", &token),
        ("action", "status"),
        ("value", "on_hold"),
        ("ids", &ids[0]),
        ("ids", &ids[1]),
        ("back", "/tickets?q=batch"),
    ];
    let res = alice.post("/tickets/bulk", &form).await;
    assert_eq!(
        (res.status, res.location().as_str()),
        (303, "/tickets?q=batch")
    );
    let form: Vec<(&str, &str)> = vec![
        ("csrf", &token),
        ("action", "tag"),
        ("value", "flag"),
        ("ids", &ids[0]),
        ("ids", &ids[1]),
    ];
    alice.post("/tickets/bulk", &form).await;
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "status:on_hold tags:flag", "limit": 5}),
        )
        .await;
    assert_eq!(v["list"]["length"], 2, "{v}");
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "tags:important tags:flag", "limit": 5}),
        )
        .await;
    assert_eq!(v["list"]["length"], 2, "the existing tag stays: {v}");
}

#[tokio::test]
async fn saved_searches_and_the_own_password() {
    let s = Server::start().await;
    add_user(&s, "alice", &["create_tickets"], &[]).await;
    add_user(&s, "bob", &["create_tickets"], &[]).await;
    let alice = Person::signed_in(&s, "alice", PASSWORD).await;
    let token = alice.get("/tickets").await.csrf();
    let res = alice
        .post(
            "/searches",
            &[
                ("csrf", &token),
                ("name", "Mine"),
                ("query", "assignees:alice"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let bad = alice
        .post(
            "/searches",
            &[
                ("csrf", &token),
                ("name", "Broken"),
                ("query", "stauts:open"),
            ],
        )
        .await;
    assert_eq!(bad.status, 303);
    let list = alice.get("/tickets").await.body;
    assert!(
        list.contains(">Mine</a>") && !list.contains("Broken"),
        "a bad query is not saved"
    );
    let id_start =
        list.find("name=\"id\" value=\"").expect("an id field") + "name=\"id\" value=\"".len();
    let id = list[id_start..].split('"').next().unwrap_or("").to_string();
    let bob = Person::signed_in(&s, "bob", PASSWORD).await;
    let bob_token = bob.get("/tickets").await.csrf();
    assert!(
        !bob.get("/tickets").await.body.contains(">Mine</a>"),
        "saved searches are per user"
    );
    bob.post(&format!("/searches/{id}/delete"), &[("csrf", &bob_token)])
        .await;
    assert!(
        alice.get("/tickets").await.body.contains(">Mine</a>"),
        "bob cannot delete it"
    );
    alice
        .post(
            "/searches",
            &[
                ("csrf", &token),
                ("id", &id),
                ("name", "My work"),
                ("query", "assignees:alice status:open"),
            ],
        )
        .await;
    assert!(alice.get("/tickets").await.body.contains(">My work</a>"));
    alice
        .post(&format!("/searches/{id}/delete"), &[("csrf", &token)])
        .await;
    assert!(!alice.get("/tickets").await.body.contains(">My work</a>"));

    // A new password: the current one is checked, the confirmation must match.
    let wrong = alice
        .post(
            "/account",
            &[
                ("csrf", &token),
                ("current", "nope"),
                ("new", "another-password"),
                ("confirm", "another-password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 303);
    let short = alice
        .post(
            "/account",
            &[
                ("csrf", &token),
                ("current", PASSWORD),
                ("new", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 303);
    Person::signed_in(&s, "alice", PASSWORD).await;
    alice
        .post(
            "/account",
            &[
                ("csrf", &token),
                ("current", PASSWORD),
                ("new", "another-password"),
                ("confirm", "another-password"),
            ],
        )
        .await;
    Person::signed_in(&s, "alice", "another-password").await;
    let old = Person::anonymous(&s)
        .post("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(old.status, 401);
}

#[tokio::test]
async fn assets_are_cached_and_pages_compressed() {
    let s = Server::start().await;
    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let page = admin.get("/tickets").await;
    let start = page.body.find("/assets/app.css?v=").expect("css link");
    let href = page.body[start..]
        .split('"')
        .next()
        .unwrap_or("")
        .to_string();
    let css = admin.get(&href).await;
    assert_eq!(css.status, 200);
    let cache = css
        .headers
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(cache.contains("immutable"), "{cache}");
    let etag = css
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let again = admin
        .http
        .get(format!("{}{href}", s.base))
        .header("If-None-Match", &etag)
        .send()
        .await
        .expect("conditional get");
    assert_eq!(again.status().as_u16(), 304);
    let gz = admin
        .http
        .get(format!("{}/tickets", s.base))
        .header(COOKIE, &admin.cookie)
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("gzip");
    assert_eq!(
        gz.headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert_eq!(admin.get("/assets/nope.js").await.status, 404);
}

#[tokio::test]
async fn the_built_in_views_show_what_they_say() {
    let s = Server::start().await;
    add_user(&s, "alice", &["create_tickets", "edit_tickets"], &[]).await;
    s.create(json!({"subject": "Mine and open", "assignees": ["alice"], "status": "open"}))
        .await;
    s.create(json!({"subject": "Mine but closed", "assignees": ["alice"], "status": "closed"}))
        .await;
    s.create(json!({"subject": "Nobody's", "status": "open"}))
        .await;
    s.create(
        json!({"subject": "Late one", "status": "open", "assignees": ["bob"], "due": "2020-01-01"}),
    )
    .await;
    let alice = Person::signed_in(&s, "alice", PASSWORD).await;
    let token = alice.get("/tickets").await.csrf();
    alice
        .post(
            "/tickets/new",
            &[
                ("csrf", &token),
                ("subject", "Alice's draft"),
                ("status", "draft"),
            ],
        )
        .await;
    alice
        .post(
            "/tickets/new",
            &[
                ("csrf", &token),
                ("subject", "Alice's open one"),
                ("status", "open"),
            ],
        )
        .await;
    let rows = |body: &str| -> Vec<String> {
        body.split("<td class=\"subject\"><a href=\"/tickets/")
            .skip(1)
            .filter_map(|part| {
                part.split_once("\">")
                    .and_then(|(_, rest)| rest.split_once("</a>"))
                    .map(|(s, _)| s.replace("&#x27;", "'").replace("&#39;", "'"))
            })
            .collect()
    };
    let seen = |view: &'static str| {
        let alice = &alice;
        async move {
            let mut r = rows(&alice.get(&format!("/tickets?view={view}")).await.body);
            r.sort();
            r
        }
    };
    assert_eq!(seen("mine").await, ["Mine and open"]);
    assert_eq!(seen("created").await, ["Alice's draft", "Alice's open one"]);
    assert_eq!(seen("drafts").await, ["Alice's draft"]);
    assert_eq!(seen("overdue").await, ["Late one"]);
    assert_eq!(
        seen("unassigned").await,
        ["Alice's draft", "Alice's open one", "Nobody's"]
    );
    assert_eq!(seen("all").await.len(), 6);
    let recent = rows(&alice.get("/tickets?view=recent").await.body);
    assert_eq!(
        recent.first().map(String::as_str),
        Some("Alice's open one"),
        "newest change first"
    );
}

#[tokio::test]
async fn the_new_ticket_form_starts_from_the_template() {
    let s = Server::start_with_config(
        "[tickets.new_ticket_template]\ntype = \"incident\"\ndue = \"3 days\"\ntags = [\"flag\"]\n",
        &[],
    )
    .await;
    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let form = admin.get("/tickets/new").await.body;
    assert!(
        form.contains("<option value=\"incident\" selected>"),
        "the template's type"
    );
    assert!(
        form.contains("<option value=\"flag\" selected>"),
        "the template's tag"
    );
    let in_three_days = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .checked_add(jiff::Span::new().days(3))
        .expect("date")
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(
        form.contains(&format!(
            "name=\"due\" type=\"date\" value=\"{in_three_days}\""
        )),
        "{in_three_days}"
    );
}

#[tokio::test]
async fn forms_sent_from_another_site_are_refused() {
    let s = Server::start().await;
    let anon = Person::anonymous(&s);
    let res = anon
        .http
        .post(format!("{}/login", s.base))
        .header("Origin", "https://evil.example")
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 403);
    assert!(
        res.headers().get(SET_COOKIE).is_none(),
        "no session for a cross-site login"
    );
    let res = anon
        .http
        .post(format!("{}/login", s.base))
        .header("Sec-Fetch-Site", "cross-site")
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 403);
    let host = s.base.trim_start_matches("http://").to_string();
    let res = anon
        .http
        .post(format!("{}/login", s.base))
        .header("Origin", format!("http://{host}"))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 303, "the same site may sign in");
}

#[tokio::test]
async fn internal_notes_and_relations_on_the_ticket_page() {
    const SECRET: &str = "vaultcombinationisfortytwo";
    let s = Server::start().await;
    let a = s.create(json!({"subject": "Checkout fails"})).await;
    let b = s
        .create(json!({"subject": "Payment provider outage"}))
        .await;
    let (na, nb) = (
        a["num"].as_i64().expect("num"),
        b["num"].as_i64().expect("num"),
    );
    add_user(&s, "lead", &["edit_tickets", "view_internal"], &[]).await;
    add_user(&s, "agent", &["edit_tickets"], &[]).await;
    let lead = Person::signed_in(&s, "lead", PASSWORD).await;
    let agent = Person::signed_in(&s, "agent", PASSWORD).await;
    let here = format!("/tickets/{na}");

    // The lead links the tickets and writes an internal note, with the page's forms.
    let page = lead.get(&here).await;
    assert!(page.body.contains("id=\"comment-internal\""));
    assert!(page.body.contains("id=\"relation-form\""));
    let token = page.csrf();
    let res = lead
        .post(
            &format!("{here}/relations"),
            &[
                ("csrf", &token),
                ("type", "blocked_by"),
                ("other", &format!("#{nb}")),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let flash = format!(
        "{:?}",
        res.headers.get_all(SET_COOKIE).iter().collect::<Vec<_>>()
    );
    assert!(flash.contains("Relation+added"), "{flash}");
    assert_eq!(ticket(&s, na).await["relations"][0]["num"], nb);
    assert_eq!(ticket(&s, nb).await["relations"][0]["type"], "blocks");
    let res = lead
        .post(
            &format!("{here}/comment"),
            &[("csrf", &token), ("body", SECRET), ("internal", "1")],
        )
        .await;
    assert_eq!(res.status, 303);
    let t = ticket(&s, na).await;
    let note = t["changes"]
        .as_array()
        .expect("changes")
        .last()
        .expect("the note")
        .clone();
    assert_eq!(
        (note["body"].as_str(), &note["internal"]),
        (Some(SECRET), &json!(true))
    );

    let page = lead.get(&here).await;
    assert!(page.body.contains(SECRET));
    assert!(page.body.contains("comment card internal"));
    assert!(page.body.contains("Payment provider outage"));
    assert!(page.body.contains("Blocked by"));

    // The agent sees the relation but never the note, nor a way to write one.
    let page = agent.get(&here).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(SECRET));
    assert!(!page.body.contains("comment-internal"));
    assert!(page.body.contains("Payment provider outage"));
    let token = page.csrf();
    let res = agent
        .post(
            &format!("{here}/comment"),
            &[("csrf", &token), ("body", "sneaky"), ("internal", "1")],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(!ticket(&s, na).await.to_string().contains("sneaky"));

    // The agent removes the relation with the page's button.
    let res = agent
        .post(
            &format!("{here}/relations"),
            &[
                ("csrf", &token),
                ("type", "blocked_by"),
                ("other", &nb.to_string()),
                ("remove", "1"),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    assert!(ticket(&s, na).await.get("relations").is_none());
    assert!(agent.get(&here).await.body.contains("No related tickets"));
}

/// Reads SSE text from `stream` until `want` appears or `wait` passes; what arrived.
async fn read_events(stream: &mut reqwest::Response, want: &str, wait: Duration) -> String {
    let mut got = String::new();
    let deadline = tokio::time::Instant::now() + wait;
    while !got.contains(want) {
        match tokio::time::timeout_at(deadline, stream.chunk()).await {
            Ok(Ok(Some(chunk))) => got.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    got
}

/// A ticket page carries the feed position it was built at, and its live stream starts
/// after that position: a change committed between building the page and opening the
/// stream still reaches it (a stream opened without it follows from "now" and misses it).
#[tokio::test]
async fn a_change_made_while_the_page_was_built_reaches_its_stream() {
    let s = Server::start().await;
    let t = s.create(json!({"subject": "Watched while loading"})).await;
    let (id, num) = (
        t["id"].as_str().expect("id"),
        t["num"].as_i64().expect("num"),
    );
    let admin = Person::signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let page = admin.get(&format!("/tickets/{num}")).await;
    let at = page
        .body
        .split("data-feed-at=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|n| n.parse::<i64>().ok())
        .expect("the page carries data-feed-at");
    // Committed after the page was built, before its stream is opened.
    s.call("update_ticket", json!({"id": id, "status": "closed"}))
        .await;
    let open = |after: Option<i64>| {
        let url = match after {
            Some(a) => format!("{}/events?ticket={id}&after={a}", s.base),
            None => format!("{}/events?ticket={id}", s.base),
        };
        admin.http.get(url).header(COOKIE, &admin.cookie).send()
    };
    let mut late = open(None).await.expect("events");
    let mut resumed = open(Some(at)).await.expect("events");
    assert_eq!(resumed.status().as_u16(), 200);
    let want = "event: ticket";
    let got = read_events(&mut resumed, want, Duration::from_secs(5)).await;
    assert!(
        got.contains("\"kind\":\"updated\""),
        "the stream from data-feed-at: {got}"
    );
    let missed = read_events(&mut late, want, Duration::from_millis(700)).await;
    assert!(!missed.contains(want), "a stream from now: {missed}");
}
