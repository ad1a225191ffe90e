//! Scale-out: two `docket serve` processes on one PostgreSQL database and one file store
//! (the same data directory). Numbers stay unique and consecutive when creates are spread
//! over both, a write on one node is visible on the other at once (search included), a
//! file uploaded through one is served by the other, each notification is mailed once
//! although both nodes run delivery workers, a node killed mid-burst loses no
//! acknowledged write, sessions, API-key rate limits and the login brake are one for the cluster,
//! and a change-feed reader resuming on either node gets the events of both once, in order.

mod common;
mod feed_support;
mod notify_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Multipart, Server};
use notify_support::{aiosmtpd_available, free_port, smtp_config, SmtpSink};
use serde_json::{json, Value};

fn ok(r: &(u16, Value)) -> &Value {
    assert_eq!((r.0, &r.1["code"]), (200, &json!(0)), "{}", r.1);
    &r.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_over_two_nodes_get_distinct_consecutive_numbers_and_are_seen_by_both() {
    let a = Arc::new(Server::start().await);
    let b = Arc::new(a.another_node());

    // 240 creates, 16 in flight, alternating between the nodes.
    let mut tasks = Vec::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..240 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let r = node
                .call(
                    "create_ticket",
                    json!({"subject": format!("burst ticket {i}"), "tags": ["flag"]}),
                )
                .await;
            ok(&r)["ticket"]["num"].as_i64().unwrap()
        }));
    }
    let mut nums = Vec::new();
    for t in tasks {
        nums.push(t.await.unwrap());
    }
    nums.sort_unstable();
    assert_eq!(
        nums,
        (1..=240).collect::<Vec<_>>(),
        "distinct and consecutive"
    );

    // A write on A is visible on B at once: by id, by number and in search.
    let t = ok(&a
        .call(
            "create_ticket",
            json!({"subject": "Quokka migration stalled", "body": "the zanzibar batch"}),
        )
        .await)["ticket"]
        .clone();
    let id = t["id"].as_str().unwrap();
    let got = b.call("get_ticket", json!({"id": id})).await;
    assert_eq!(ok(&got)["ticket"]["subject"], "Quokka migration stalled");
    let got = b.call("get_ticket", json!({"num": t["num"]})).await;
    assert_eq!(ok(&got)["ticket"]["id"], id);
    let found = b
        .call("search_tickets", json!({"query": "zanzibar quokka"}))
        .await;
    let rows = ok(&found)["rows"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 1, "{found:?}");
    assert_eq!(rows[0]["id"], id);

    // And the other way: B changes it, A sees the change and searches by it.
    ok(&b
        .call(
            "update_ticket",
            json!({"id": id, "status": "closed", "tags": ["important"]}),
        )
        .await);
    let got = a.call("get_ticket", json!({"id": id})).await;
    assert_eq!(ok(&got)["ticket"]["status"], "closed");
    let found = a
        .call(
            "search_tickets",
            json!({"query": "status:closed tags:important"}),
        )
        .await;
    assert_eq!(ok(&found)["list"]["length"], 1);
    let all = a
        .call("search_tickets", json!({"query": "tags:flag", "limit": 1}))
        .await;
    assert_eq!(ok(&all)["list"]["length"], 240);

    // A file uploaded through A is served by B (one file store).
    let form = Multipart::new()
        .json(&json!({"subject": "with a file"}))
        .file("file1", "notes.txt", "text/plain", b"shared bytes");
    let up = a.upload("create_ticket", &form).await;
    let path = ok(&up)["ticket"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let res = b
        .client
        .get(b.url(&format!("/{path}")))
        .header("X-API-Key", &b.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "shared bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_comment_is_mailed_once_although_both_nodes_deliver() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let a = Server::start_with_config(
        &smtp_config(sink.port),
        &[("DOCKET_TICKETS__EMAIL_DEBOUNCE_SEC", "1")],
    )
    .await;
    let b = a.another_node();
    ok(&a
        .user_call(
            "admin_create",
            json!({"username": "ann", "password": "password-123456", "email": "ann@example.com", "full_name": "Ann"}),
        )
        .await);

    // Ten tickets assigned to ann, each commented on the other node than it was made on.
    let mut ids = Vec::new();
    for i in 0..10 {
        let (make, comment) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let t = ok(&make
            .call(
                "create_ticket",
                json!({"subject": format!("Mail once {i}"), "assignees": ["ann"]}),
            )
            .await)["ticket"]
            .clone();
        let id = t["id"].as_str().unwrap().to_string();
        ok(&comment
            .call(
                "add_ticket_change",
                json!({"id": id, "change": {"type": "comment", "body": format!("comment-marker-{i}")}}),
            )
            .await);
        ids.push(id);
    }
    // Every comment reaches ann; then, once all is quiet, none has gone out twice.
    let marked = |i: usize| {
        let marker = format!("comment-marker-{i}");
        sink.messages()
            .iter()
            .filter(|m| m["text"].as_str().unwrap_or("").contains(&marker))
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(40);
    while (0..10).any(|i| marked(i) == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "comments not mailed: {:#?}",
            sink.messages()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    for i in 0..10 {
        assert_eq!(marked(i), 1, "comment {i} mailed {} times", marked(i));
    }
    // At most one "new" and one "updated" message a ticket.
    let messages = sink.messages();
    assert!(messages.len() <= 20, "{messages:#?}");
    let (_, v) = a.call("get_ticket", json!({"id": ids[0]})).await;
    assert_eq!(v["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_burst_loses_no_acknowledged_write() {
    let a = Server::start().await;
    let mut b = a.another_node();
    let base = b.base.clone();
    let key = b.key.clone();

    // 16 writers hammer B; B is killed with SIGKILL while they run.
    let acked = Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let mut writers = Vec::new();
    for w in 0..16 {
        let (base, key, acked) = (base.clone(), key.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let res = client
                    .post(format!("{base}/api/app/create_ticket/v1"))
                    .header("X-API-Key", &key)
                    .json(&json!({"subject": format!("kill test {w}-{i}")}))
                    .send()
                    .await;
                let Ok(res) = res else { break };
                let Ok(v) = res.json::<Value>().await else {
                    break;
                };
                if v["code"] == 0 {
                    let t = &v["ticket"];
                    acked.lock().unwrap().push((
                        t["id"].as_str().unwrap().to_string(),
                        t["num"].as_i64().unwrap(),
                    ));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    b.kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "the burst was too short: {}", acked.len());

    // Every acknowledged create is on A, with the number B reported.
    let mut nums = BTreeSet::new();
    for (id, num) in &acked {
        let r = a.call("get_ticket", json!({"id": id})).await;
        assert_eq!(ok(&r)["ticket"]["num"], *num, "ticket {id}");
        assert!(nums.insert(*num), "number {num} given twice");
    }
    // A keeps numbering after the highest number B handed out.
    let t = ok(&a
        .call("create_ticket", json!({"subject": "after the kill"}))
        .await)["ticket"]
        .clone();
    assert!(t["num"].as_i64().unwrap() > *nums.last().unwrap());
}

/// POSTs `params` to `/api/app/NAME/v1` on `node` with the session id.
async fn with_session(node: &Server, sid: &str, name: &str, params: Value) -> Value {
    let res = node
        .client
        .post(node.url(&format!("/api/app/{name}/v1")))
        .header("X-Session-ID", sid)
        .json(&params)
        .send()
        .await
        .unwrap();
    common::decode(res).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_rate_limits_hold_across_nodes() {
    let a = Server::start().await;
    let b = a.another_node();

    // A session made on A works on B; logging out on B ends it on A too.
    let res = a
        .client
        .post(a.url("/api/user/login/v1"))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let v = common::decode(res).await.1;
    let sid = v["session_id"].as_str().expect("session id").to_string();
    let on_b = with_session(&b, &sid, "search_tickets", json!({"query": "*"})).await;
    assert_eq!(on_b["code"], 0, "{on_b}");
    let res = b
        .client
        .post(b.url("/api/user/logout/v1"))
        .header("X-Session-ID", &sid)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::decode(res).await.1["code"], 0);
    let on_a = with_session(&a, &sid, "search_tickets", json!({"query": "*"})).await;
    assert_ne!(
        on_a["code"], 0,
        "the session ended on B still works on A: {on_a}"
    );

    // A key limited to 3 requests a second gets 3 in one second from both nodes together,
    // not 3 from each.
    let key = ok(&a
        .call(
            "create_api_key",
            json!({"title": "slow", "max_per_sec": 3, "privileges": ["create_tickets"]}),
        )
        .await)["plain_key"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = (Arc::new(a), Arc::new(b));
    for attempt in 0..5 {
        // Start just after a second begins so the burst falls in one window.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        tokio::time::sleep(Duration::from_nanos(
            1_000_000_000 - u64::from(now.subsec_nanos()) + 20_000_000,
        ))
        .await;
        let started = std::time::Instant::now();
        let mut burst = Vec::new();
        for i in 0..8 {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let key = key.clone();
            burst.push(tokio::spawn(async move {
                node.call_as(&key, "create_ticket", json!({"subject": "rate"}))
                    .await
                    .1["code"]
                    == 0
            }));
        }
        let mut passed = 0;
        for t in burst {
            passed += usize::from(t.await.unwrap());
        }
        if started.elapsed() < Duration::from_millis(900) {
            assert_eq!(passed, 3, "8 requests in one second over two nodes");
            return;
        }
        eprintln!("attempt {attempt}: the burst took too long to fall in one second, again");
    }
    panic!("no burst fitted in one second");
}

/// A session on A with the login page's cookie: (client, cookie header).
async fn web_session(node: &Server) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(node.url("/login"))
        .form(&[("username", "admin"), ("password", common::ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("session_id="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (http, cookie)
}

/// Reads an event stream until `want` appears (or panics after `limit`); returns the wait.
async fn wait_for_event(res: &mut reqwest::Response, want: &str, limit: Duration) -> Duration {
    let started = std::time::Instant::now();
    let mut got = String::new();
    while !got.contains(want) {
        let chunk = tokio::time::timeout(limit.saturating_sub(started.elapsed()), res.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {want} within {limit:?}; got {got}"));
        got.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_one_node_hears_changes_made_through_the_other_within_a_second() {
    let a = Server::start().await;
    let b = a.another_node();
    let t = ok(&a
        .call("create_ticket", json!({"subject": "Watched on A"}))
        .await)["ticket"]
        .clone();
    let (http, cookie) = web_session(&a).await;

    // A ticket page on A: a comment made through B arrives.
    let mut page = http
        .get(a.url(&format!("/events?ticket={}", t["id"].as_str().unwrap())))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    ok(&b
        .call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": "from B"}}),
        )
        .await);
    // (The desk's events carry the change feed's kinds: a comment is `commented`.)
    let took = wait_for_event(&mut page, "\"kind\":\"commented\"", Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(1),
        "the ticket event took {took:?}"
    );

    // A list page on A: a matching ticket created through B arrives.
    let mut list = http
        .get(a.url("/events?q=tags%3Aflag"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let created = ok(&b
        .call(
            "create_ticket",
            json!({"subject": "New on B", "tags": ["flag"]}),
        )
        .await)["ticket"]
        .clone();
    let want = format!(
        "\"kind\":\"created\",\"matches\":true,\"num\":{}",
        created["num"]
    );
    let took = wait_for_event(&mut list, &want, Duration::from_secs(5)).await;
    assert!(
        took < Duration::from_secs(1),
        "the search event took {took:?}"
    );
}

/// Wrong passwords on one node count on the other: the counts are database records.
#[tokio::test]
async fn failed_logins_are_counted_across_nodes() {
    let a = Server::start().await;
    let b = a.another_node();
    let login = |node: &Server, password: &str| {
        let req = node
            .client
            .post(node.url("/api/user/login/v1"))
            .json(&json!({"username": "admin", "password": password}));
        async move {
            let res = req.send().await.expect("login");
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or_default())
        }
    };
    for i in 0..5 {
        let node = if i % 2 == 0 { &a } else { &b };
        let (status, v) = login(node, "wrong").await;
        assert_eq!((status, v["code"].as_str()), (403, Some("session")), "{v}");
    }
    for node in [&a, &b] {
        let (status, v) = login(node, common::ADMIN_PASSWORD).await;
        assert_eq!((status, v["code"].as_str()), (429, Some("rate")), "{v}");
    }
}

/// How long a change on one node may take to reach the other's credential cache: the
/// records trigger's NOTIFY is delivered at commit to the other node's listener, which
/// applies it before its next authentication — milliseconds; the bound is generous for a
/// loaded test machine (the cache's own backstop, 60 s, is far above it).
const CROSS_NODE_BOUND: Duration = Duration::from_secs(2);

/// Polls `call` until it is refused; returns how long that took, failing past the bound.
async fn refused_within<F, Fut>(what: &str, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let started = std::time::Instant::now();
    loop {
        let v = call().await;
        if v["code"] != 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CROSS_NODE_BOUND,
            "{what}: still accepted on the other node after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_changed_on_one_node_are_refused_on_the_other() {
    let a = Server::start().await;
    let b = a.another_node();
    let t = ok(&a
        .call("create_ticket", json!({"subject": "two caches"}))
        .await)["ticket"]
        .clone();

    // A key used on B (so B has it in memory), then disabled on A.
    let made = ok(&a
        .call(
            "create_api_key",
            json!({"title": "roaming", "privileges": ["edit_tickets"]}),
        )
        .await)
    .clone();
    let (id, key) = (
        made["api_key"]["id"].as_str().unwrap().to_string(),
        made["plain_key"].as_str().unwrap().to_string(),
    );
    let get_on_b = || async {
        b.call_as(&key, "get_ticket", json!({"id": t["id"]}))
            .await
            .1
    };
    for _ in 0..3 {
        assert_eq!(get_on_b().await["code"], 0);
    }
    ok(&a
        .call("update_api_key", json!({"id": id, "active": false}))
        .await);
    let took = refused_within("a key disabled on A", get_on_b).await;
    eprintln!("key disabled on A, refused on B after {took:?}");
    let v = get_on_b().await;
    assert!(
        v["description"].as_str().unwrap().contains("disabled"),
        "{v}"
    );

    // A role changed on A: a key holding it loses the privilege on B.
    ok(&a
        .call(
            "create_role",
            json!({"id": "editor", "title": "Editor", "privileges": ["edit_tickets"]}),
        )
        .await);
    let key = ok(&a
        .call(
            "create_api_key",
            json!({"title": "by role", "roles": ["editor"]}),
        )
        .await)["plain_key"]
        .as_str()
        .unwrap()
        .to_string();
    let edit_on_b = || async {
        b.call_as(
            &key,
            "update_ticket",
            json!({"id": t["id"], "status": "open"}),
        )
        .await
        .1
    };
    for _ in 0..3 {
        assert_eq!(edit_on_b().await["code"], 0);
    }
    ok(&a
        .call("update_role", json!({"id": "editor", "privileges": []}))
        .await);
    let took = refused_within("a role changed on A", edit_on_b).await;
    eprintln!("role changed on A, refused on B after {took:?}");

    // A session used on B, ended on A.
    let res = a
        .client
        .post(a.url("/api/user/login/v1"))
        .json(&json!({"username": "admin", "password": common::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let sid = common::decode(res).await.1["session_id"]
        .as_str()
        .expect("session id")
        .to_string();
    let search_on_b = || with_session(&b, &sid, "search_tickets", json!({"query": "*"}));
    for _ in 0..3 {
        assert_eq!(search_on_b().await["code"], 0);
    }
    let res = a
        .client
        .post(a.url("/api/user/logout/v1"))
        .header("X-Session-ID", &sid)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::decode(res).await.1["code"], 0);
    let took = refused_within("a session ended on A", search_on_b).await;
    eprintln!("session ended on A, refused on B after {took:?}");
}

/// Both nodes write (creates, updates, comments) while a reader follows the event stream,
/// hanging up after a random few events and resuming with `Last-Event-ID` on the other
/// node: it receives every event of both nodes exactly once, in position order — no event
/// committed late on one node is skipped (rows are numbered only after they commit,
/// docket-store-postgres/src/feed.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_reader_resuming_on_either_node_gets_every_event_of_both_once_in_order() {
    let a = Arc::new(Server::start().await);
    let b = Arc::new(a.another_node());
    let start = ok(&a.call("get_ticket_events", json!({})).await)["cursor"]
        .as_i64()
        .unwrap();
    const PER_WRITER: usize = 10;
    let mut writers = Vec::new();
    for w in 0..6 {
        let node = if w % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                let t = ok(&node
                    .call(
                        "create_ticket",
                        json!({"subject": format!("node writer {w} ticket {i}")}),
                    )
                    .await)["ticket"]
                    .clone();
                ok(&node
                    .call("update_ticket", json!({"id": t["id"], "status": "closed"}))
                    .await);
                ok(&node
                    .call(
                        "add_ticket_change",
                        json!({"id": t["id"], "change": {"type": "comment", "body": "ok"}}),
                    )
                    .await);
            }
        }));
    }
    let want = 6 * PER_WRITER * 3;
    let got = feed_support::read_resuming(&[&a, &b], &a.key, start, want).await;
    for w in writers {
        w.await.unwrap();
    }
    let all = feed_support::whole_feed(&b, &b.key, 1000).await;
    assert_eq!(all.len(), want);
    let expected: Vec<i64> = all
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    let received: Vec<i64> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(received, expected, "every event once, in order");
    // Nothing more arrives on either node.
    let last = *expected.last().unwrap();
    for node in [&a, &b] {
        let mut s = feed_support::open(node, &node.key, "", Some(last))
            .await
            .expect("stream");
        assert!(s.next(Duration::from_millis(500)).await.is_none());
    }
}
