//! Bounded work (issue 13): no request, query or connection can starve the others. Long
//! queries and phrases are refused with an error naming the limit; searches have a
//! deadline; connections time out; logins are throttled; errors do not reveal what exists.

mod api_support;
mod common;

use std::time::{Duration, Instant};

use api_support::{assert_err, assert_ok, create_key, login};
use common::{raw_sql, Server, ADMIN_PASSWORD};
use serde_json::json;

#[tokio::test]
async fn long_queries_and_phrases_are_refused_quickly() {
    let s = Server::start().await;
    s.create(json!({"subject": "Disk full on web01", "body": "the disk is full"}))
        .await;

    // A 1 MB phrase (the body limit is 8 MB): refused before it is parsed.
    let huge = format!("\"{}\"", "word ".repeat(200_000));
    let started = Instant::now();
    let r = s.call("search_tickets", json!({"query": huge})).await;
    assert_err(
        &r,
        400,
        "ticket",
        "Search query too long: at most 32768 bytes",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Within the size limit, but too many words in phrases.
    let phrase = format!("\"{}\"", vec!["disk"; 300].join(" "));
    let r = s.call("search_tickets", json!({"query": phrase})).await;
    assert_err(&r, 400, "ticket", "at most 256 words in phrases");

    // At the limit: a real answer (no ticket has 256 × "disk").
    let phrase = format!("\"{}\"", vec!["disk"; 256].join(" "));
    let r = s.call("search_tickets", json!({"query": phrase})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 0);
    let r = s
        .call("search_tickets", json!({"query": "\"disk is full\""}))
        .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
}

/// Tickets whose bodies make phrase matching slow: 1 MB of "disk full" each (200k tokens,
/// beyond a PostgreSQL tsvector, so kept raw there).
async fn seed_slow(s: &Server, n: usize) {
    let body = "disk full ".repeat(100_000);
    for i in 0..n {
        s.create(json!({"subject": format!("Big {i}"), "body": body}))
            .await;
    }
}

/// A query slow on both stores (seconds on 30 such tickets without a deadline), though
/// every phrase in it is matched in linear time: 64 phrases of four words that are in every
/// ticket but never in that order, each walking all 200k positions of its words (FTS5) or
/// searching the whole raw text (PostgreSQL).
fn slow_query() -> String {
    let words = ["disk", "full"];
    let absent: Vec<String> = (0..16usize)
        .map(|i| {
            (0..4)
                .map(|b| words[(i >> b) & 1])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !"disk full disk full disk full".contains(p.as_str()))
        .collect();
    (0..64)
        .map(|i| format!("\"{}\"", absent[i % absent.len()]))
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn slow_searches_stop_at_their_deadline_and_starve_nobody() {
    let s = std::sync::Arc::new(
        Server::start_with_env(&[
            ("DOCKET_DATABASE__SEARCH_TIMEOUT_SEC", "0.5"),
            ("DOCKET_DATABASE__SEARCH_CONNECTIONS", "2"),
            // This test is about the deadline itself (the pause has its own test).
            ("DOCKET_DATABASE__SEARCH_TIMEOUT_PENALTY_SEC", "0"),
        ])
        .await,
    );
    seed_slow(&s, 30).await;
    let small = s.create(json!({"subject": "Small one"})).await;
    let id = small["id"].as_str().unwrap().to_string();

    // One slow search: stopped at the deadline with a clear `ticket` error.
    let started = Instant::now();
    let r = s
        .call("search_tickets", json!({"query": slow_query()}))
        .await;
    assert_err(
        &r,
        400,
        "ticket",
        "Search took longer than 0.5 s and was stopped; narrow the query",
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Six at once (three times the search connections): each is stopped or waits its turn
    // no longer than the deadline, and meanwhile reads and writes answer promptly.
    let searches: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = s
                    .call("search_tickets", json!({"query": slow_query()}))
                    .await;
                (r, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        assert_ok(&s.call("get_ticket", json!({"id": id})).await);
        assert_ok(
            &s.call("create_ticket", json!({"subject": format!("During {i}")}))
                .await,
        );
        slowest = slowest.max(started.elapsed());
    }
    // Without separate search connections a read waited for a slow search (seconds).
    assert!(
        slowest < Duration::from_millis(800),
        "a read and a write took {slowest:?}"
    );
    for task in searches {
        let (r, took) = task.await.unwrap();
        assert_err(&r, 400, "ticket", "Search took longer than 0.5 s");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // Quick searches still work.
    let r = s
        .call("search_tickets", json!({"query": "subject:small"}))
        .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
}

#[tokio::test]
async fn one_caller_cannot_take_every_search_slot() {
    let s = std::sync::Arc::new(
        Server::start_with_env(&[
            ("DOCKET_DATABASE__SEARCH_TIMEOUT_SEC", "2"),
            ("DOCKET_DATABASE__SEARCH_CONNECTIONS", "2"),
            ("DOCKET_DATABASE__SEARCH_PER_CALLER", "1"),
        ])
        .await,
    );
    seed_slow(&s, 30).await;
    s.create(json!({"subject": "Small one"})).await;
    // A key with no privileges sends four slow searches at once.
    let attacker = s.key_with(&[], &[]).await;
    let searches: Vec<_> = (0..4)
        .map(|_| {
            let (s, key) = (s.clone(), attacker.clone());
            tokio::spawn(async move {
                s.call_as(&key, "search_tickets", json!({"query": slow_query()}))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Another caller's quick searches find a free slot at once: the attacker holds one of
    // the two (the others wait for the attacker's own turn), not both for 2 s.
    for _ in 0..3 {
        let started = Instant::now();
        let r = s
            .call("search_tickets", json!({"query": "subject:small"}))
            .await;
        assert_eq!(assert_ok(&r)["list"]["length"], 1);
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "a quick search waited {:?}",
            started.elapsed()
        );
    }
    // Each of the attacker's searches ran to the deadline, or (queued behind one that did)
    // found its caller paused: which of the two a queued one meets is a race with the
    // clock, but at least one ran to the deadline and none succeeded.
    let mut timed_out = 0;
    for task in searches {
        let r = task.await.unwrap();
        if r.1["code"] == "rate" {
            assert_err(&r, 429, "rate", "Searches of this caller are paused");
        } else {
            assert_err(&r, 400, "ticket", "Search took longer than 2 s");
            timed_out += 1;
        }
    }
    assert!(
        timed_out >= 1,
        "no search of the attacker ran to its deadline"
    );
}

/// A caller whose search ran to its deadline is paused (`rate`, at once, without touching
/// the database), twice as long after a second one in a row; other callers are not, and
/// the pause ends. So one caller cannot keep a core busy with deadline-long searches.
#[tokio::test]
async fn a_caller_whose_searches_run_to_the_deadline_is_paused() {
    let s = Server::start_with_env(&[
        ("DOCKET_DATABASE__SEARCH_TIMEOUT_SEC", "0.3"),
        ("DOCKET_DATABASE__SEARCH_TIMEOUT_PENALTY_SEC", "1"),
    ])
    .await;
    seed_slow(&s, 30).await;
    s.create(json!({"subject": "Small one"})).await;
    let attacker = s.key_with(&[], &[]).await;
    let slow = || s.call_as(&attacker, "search_tickets", json!({"query": slow_query()}));
    let quick = || {
        s.call_as(
            &attacker,
            "search_tickets",
            json!({"query": "subject:small"}),
        )
    };
    assert_err(
        &slow().await,
        400,
        "ticket",
        "Search took longer than 0.3 s",
    );
    let started = Instant::now();
    assert_err(
        &quick().await,
        429,
        "rate",
        "database.search_timeout_penalty_sec",
    );
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    // Another caller searches as usual.
    let r = s
        .call("search_tickets", json!({"query": "subject:small"}))
        .await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
    // The pause ends after 1 s.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_ok(&quick().await);
    // A second deadline-long search in a row: paused for 2 s.
    assert_err(
        &slow().await,
        400,
        "ticket",
        "Search took longer than 0.3 s",
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_err(&quick().await, 429, "rate", "2 of its searches in a row");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_ok(&quick().await);
}

mod connections {
    //! Connection limits, with small values so the test is quick.

    use std::time::{Duration, Instant};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::common::{Server, ADMIN_PASSWORD};

    const LIMITS: &[(&str, &str)] = &[
        ("DOCKET_SERVER__HEADER_READ_TIMEOUT_SEC", "1"),
        ("DOCKET_SERVER__BODY_READ_TIMEOUT_SEC", "1"),
        ("DOCKET_SERVER__IDLE_TIMEOUT_SEC", "1"),
        ("DOCKET_SERVER__MAX_CONNECTIONS", "20"),
    ];

    async fn connect(s: &Server) -> TcpStream {
        let addr = s.base.trim_start_matches("http://").to_string();
        TcpStream::connect(addr).await.expect("connect")
    }

    /// Reads until the server closes the connection; how long that took.
    async fn time_to_close(conn: &mut TcpStream, within: Duration) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout_at((started + within).into(), conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => panic!("the connection was still open after {within:?}"),
            }
        }
    }

    #[tokio::test]
    async fn slow_headers_stalled_bodies_and_idle_connections_are_closed() {
        let s = Server::start_with_env(LIMITS).await;

        // Slowloris: a header line every 300 ms never finishes the head.
        let mut conn = connect(&s).await;
        conn.write_all(b"GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let closed = loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if conn.write_all(b"X-Slow: yes\r\n").await.is_err() {
                break started.elapsed();
            }
            let mut buf = [0u8; 1024];
            match tokio::time::timeout(Duration::from_millis(1), conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break started.elapsed(),
                _ => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "slowloris still connected"
            );
        };
        assert!(closed >= Duration::from_millis(700), "{closed:?}");

        // A body that stops half way.
        let mut conn = connect(&s).await;
        conn.write_all(
            b"POST /api/app/search_tickets/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
        let took = time_to_close(&mut conn, Duration::from_secs(5)).await;
        assert!(took >= Duration::from_millis(700), "{took:?}");

        // A kept-alive connection after its answer.
        let mut conn = connect(&s).await;
        conn.write_all(b"GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let took = time_to_close(&mut conn, Duration::from_secs(5)).await;
        assert!(took >= Duration::from_millis(700), "{took:?}");

        // A connection that never sends a byte.
        let mut conn = connect(&s).await;
        time_to_close(&mut conn, Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_kept_alive_connection_waits_for_the_idle_timeout_not_the_header_one() {
        let s = Server::start_with_env(&[
            ("DOCKET_SERVER__HEADER_READ_TIMEOUT_SEC", "1"),
            ("DOCKET_SERVER__IDLE_TIMEOUT_SEC", "3"),
        ])
        .await;
        let mut conn = connect(&s).await;
        conn.write_all(b"GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = conn.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Past the header deadline, still open: a second request on it is answered.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        conn.write_all(b"GET /api/app/ping/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
            "closed too early"
        );
        let took = time_to_close(&mut conn, Duration::from_secs(6)).await;
        assert!(took >= Duration::from_millis(2500), "{took:?}");
    }

    #[tokio::test]
    async fn live_events_keep_streaming_past_the_idle_timeout() {
        let s = Server::start_with_env(LIMITS).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = http
            .post(format!("{}/login", s.base))
            .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with("session_id="))
            .expect("a session cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let mut stream = http
            .get(format!("{}/events?q=", s.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status().as_u16(), 200);
        // Three idle timeouts without a byte on the stream, then an event still arrives.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let t = s
            .create(serde_json::json!({"subject": "After a quiet while"}))
            .await;
        let mut got = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !got.contains("\"num\"") {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .expect("an event within 5 s");
            got.push_str(&String::from_utf8_lossy(
                &chunk.expect("the stream is still open").expect("a chunk"),
            ));
        }
        assert!(got.contains(&format!("\"num\":{}", t["num"])), "{got}");
    }

    #[tokio::test]
    async fn connections_are_capped_and_ping_answers_below_the_cap() {
        let s = Server::start_with_env(&[
            ("DOCKET_SERVER__IDLE_TIMEOUT_SEC", "2"),
            ("DOCKET_SERVER__HEADER_READ_TIMEOUT_SEC", "2"),
            ("DOCKET_SERVER__MAX_CONNECTIONS", "20"),
        ])
        .await;
        // 18 idle connections (the harness may hold one): ping still answers.
        let mut idle = Vec::new();
        for _ in 0..18 {
            idle.push(connect(&s).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, v) = s.call("ping", serde_json::json!({})).await;
        assert_eq!(
            (status, v["code"].clone()),
            (200, serde_json::json!(0)),
            "{v}"
        );
        // Past the cap: new connections are closed at once, and the log says why.
        for _ in 0..5 {
            idle.push(connect(&s).await);
        }
        let mut last = idle.pop().unwrap();
        let took = time_to_close(&mut last, Duration::from_secs(1)).await;
        assert!(took < Duration::from_millis(900), "{took:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            s.log_text()
                .contains("connection limit reached (server.max_connections = 20)"),
            "{}",
            s.log_text()
        );
        // The idle ones time out and make room again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (status, _) = s.call("ping", serde_json::json!({})).await;
        assert_eq!(status, 200);
    }
}

/// Moves every failed-login window and wait into the past, as time would.
fn age_login_failures(s: &Server) {
    let old = r#"{"count":99,"first":1000,"blocked_until":1000,"expires":2000}"#;
    let sql = format!("UPDATE records SET data = '{old}' WHERE kind = 'login_failures'");
    raw_sql(&s.data, &sql, &sql);
}

#[tokio::test]
async fn wrong_passwords_are_throttled_per_account_and_address_then_forgiven() {
    let s = Server::start().await;
    let r = |(status, _, v): (u16, reqwest::header::HeaderMap, serde_json::Value)| (status, v);

    // Five wrong passwords: each an ordinary session error.
    for _ in 0..5 {
        assert_err(
            &r(login(&s, "admin", "wrong").await),
            403,
            "session",
            "Incorrect username or password",
        );
    }
    // Now even the right password waits, with `rate` (429) and when to come back.
    let throttled = r(login(&s, "admin", ADMIN_PASSWORD).await);
    assert_err(
        &throttled,
        429,
        "rate",
        "Too many failed logins for this account; try again in",
    );
    // The web form is the same service: the same brake, a 429 page that says so.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .post(format!("{}/login", s.base))
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 429);
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("Too many failed logins"));
    // Another account is not affected.
    assert_ok(&s.user_call("admin_create", json!({"username": "bob", "password": "bob-password-1", "email": "bob@example.com", "full_name": "Bob"})).await);
    let (status, _, v) = login(&s, "bob", "bob-password-1").await;
    assert_eq!((status, v["code"].clone()), (200, json!(0)), "{v}");

    // The window passes: the right password works again, and resets the count.
    age_login_failures(&s);
    let (status, _, v) = login(&s, "admin", ADMIN_PASSWORD).await;
    assert_eq!((status, v["code"].clone()), (200, json!(0)), "{v}");

    // Per address: 20 failures spread over many (unknown) accounts, then this address waits,
    // whatever account it tries.
    for i in 0..20 {
        assert_err(
            &r(login(&s, &format!("nobody{i}"), "guess").await),
            403,
            "session",
            "Incorrect",
        );
    }
    assert_err(
        &r(login(&s, "bob", "bob-password-1").await),
        429,
        "rate",
        "from this address",
    );
    age_login_failures(&s);
    let (status, _, _) = login(&s, "bob", "bob-password-1").await;
    assert_eq!(status, 200);
}

/// A wrong-password login sent as if through a proxy that names `client`.
async fn login_via(
    s: &Server,
    user: &str,
    password: &str,
    client: &str,
) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(s.url("/api/user/login/v1"))
        .header("X-Forwarded-For", client)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    common::decode(res).await
}

#[tokio::test]
async fn x_forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    // Default: the header is the client's to forge, so a new address per guess is no way
    // around the per-address brake.
    let s = Server::start().await;
    for i in 0..20 {
        let (status, _) = login_via(
            &s,
            &format!("nobody{i}"),
            "guess",
            &format!("198.51.100.{i}"),
        )
        .await;
        assert_eq!(status, 403);
    }
    let r = login_via(&s, "admin", ADMIN_PASSWORD, "198.51.100.200").await;
    assert_err(&r, 429, "rate", "from this address");
    drop(s);

    // Behind a trusted proxy (the test connects from 127.0.0.1): each client address has
    // its own count; the proxy's peer address is not braked for all of them.
    let s = Server::start_with_env(&[(
        "DOCKET_SERVER__TRUSTED_PROXIES",
        "[\"127.0.0.0/8\", \"::1\"]",
    )])
    .await;
    for i in 0..20 {
        // A forged entry left of the one the proxy appended is ignored.
        let (status, _) = login_via(
            &s,
            &format!("nobody{i}"),
            "guess",
            &format!("203.0.113.{i}, 198.51.100.7"),
        )
        .await;
        assert_eq!(status, 403);
    }
    let r = login_via(&s, "admin", ADMIN_PASSWORD, "198.51.100.7").await;
    assert_err(&r, 429, "rate", "from this address");
    let (status, v) = login_via(&s, "admin", ADMIN_PASSWORD, "198.51.100.8").await;
    assert_eq!((status, v["code"].clone()), (200, json!(0)), "{v}");

    // A bad entry stops the server at start with a message naming it.
    let out = common::docket_command(&s.data)
        .args(["api-key", "create", "--title", "x", "--data"])
        .arg(&s.data)
        .env("DOCKET_SERVER__TRUSTED_PROXIES", "[\"nginx\"]")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("server.trusted_proxies: \"nginx\""), "{err}");
}

#[tokio::test]
async fn unknown_users_cost_a_password_check_and_disabled_keys_keep_their_id() {
    let s = Server::start().await;
    // A wrong password for a real user and for an unknown one: both run argon2 (tens of
    // ms), so the times are alike. Medians, loosely: unchecked, the unknown one took ~1 ms.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..4 {
        let started = Instant::now();
        let _ = login(&s, "admin", &format!("wrong{i}")).await;
        known.push(started.elapsed());
        let started = Instant::now();
        let _ = login(&s, &format!("ghost{i}"), "wrong").await;
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[known.len() / 2], unknown[unknown.len() / 2]);
    assert!(u * 3 >= k, "unknown user {u:?} vs known user {k:?}");

    // A disabled key: told it is disabled, not which key it is.
    let (id, key) = create_key(
        &s,
        json!({"title": "soon off", "privileges": {"create_tickets": true}}),
    )
    .await;
    assert_ok(
        &s.call("update_api_key", json!({"id": id, "active": false}))
            .await,
    );
    let r = s
        .call_as(&key, "search_tickets", json!({"query": "*"}))
        .await;
    let desc = r.1["description"].as_str().unwrap_or_default().to_string();
    assert!(desc.contains("disabled"), "{desc}");
    assert!(!desc.contains(&id), "{desc}");
}

#[tokio::test]
async fn a_scoped_key_cannot_probe_ticket_ids_of_other_categories() {
    let s = Server::start().await;
    for cat in ["prod", "dev"] {
        assert_ok(
            &s.call("create_category", json!({"id": cat, "title": cat}))
                .await,
        );
    }
    s.create(json!({"id": "dev_secret", "subject": "Dev only", "category": "dev"}))
        .await;
    let prod = s
        .key_with(&["create_tickets", "edit_tickets"], &["prod"])
        .await;
    // The taken id and a free one get the same answer: ids are not the scoped key's to choose.
    let taken = s
        .call_as(
            &prod,
            "create_ticket",
            json!({"id": "dev_secret", "subject": "x", "category": "prod"}),
        )
        .await;
    let free = s
        .call_as(
            &prod,
            "create_ticket",
            json!({"id": "never_used", "subject": "x", "category": "prod"}),
        )
        .await;
    assert_err(&taken, 403, "access", "cannot choose a ticket id");
    assert_eq!(taken, free);
    // Without an id it creates as before; an unscoped caller still chooses ids.
    let r = s
        .call_as(
            &prod,
            "create_ticket",
            json!({"subject": "Mine", "category": "prod"}),
        )
        .await;
    assert_ok(&r);
    let r = s
        .call(
            "create_ticket",
            json!({"id": "dev_secret", "subject": "Again"}),
        )
        .await;
    assert_err(&r, 400, "ticket", "already exists");
}

#[tokio::test]
async fn errors_of_the_http_layer_are_json_and_nul_and_quotes_are_kept_honest() {
    let s = Server::start().await;
    let json_err = |status: u16, v: &serde_json::Value, phrase: &str| {
        assert!(v["code"].as_str().is_some(), "{status}: {v}");
        let desc = v["description"].as_str().unwrap_or_default();
        assert!(
            desc.to_lowercase().contains(&phrase.to_lowercase()),
            "{status}: {v}"
        );
    };
    let get = |path: String| {
        let s = &s;
        async move {
            let res = s
                .client
                .get(s.url(&path))
                .header("X-API-Key", &s.key)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let text = res.text().await.unwrap();
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{path:.60}: {status} is not JSON: {text:?}"));
            (status, v)
        }
    };

    // 414: a URI longer than 32 KiB.
    let (status, v) = get(format!(
        "/api/app/search_tickets/v1?query={}",
        "a".repeat(40_000)
    ))
    .await;
    assert_eq!(status, 414);
    json_err(status, &v, "Request URI is");
    // 431: headers over server.max_header_bytes (64 KiB).
    let res = s
        .client
        .get(s.url("/api/app/ping/v1"))
        .header("X-Big", "b".repeat(70_000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 431);
    let v: serde_json::Value = serde_json::from_str(&res.text().await.unwrap()).expect("JSON 431");
    json_err(431, &v, "server.max_header_bytes");
    // 400 before routing: a path that is not UTF-8.
    let (status, v) = get("/api/app/%FF%FE/v1".to_string()).await;
    assert_eq!(status, 400);
    json_err(status, &v, "");
    // A web form with a body axum's form extractor rejects.
    let res = s
        .client
        .post(s.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xFFu8; 10])
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    assert!(status >= 400, "{status}");
    let text = res.text().await.unwrap();
    if !text.contains("<html") && !text.contains("<!DOCTYPE") {
        let v: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text:?}"));
        json_err(status, &v, "");
    }

    // A NUL byte in a field is an error, and nothing is stored.
    let before = api_support::total(&s, "*").await;
    let r = s.call("create_ticket", json!({"subject": "a\u{0}b"})).await;
    assert_err(&r, 400, "ticket", "subject (contains a NUL character");
    let r = s
        .call(
            "create_ticket",
            json!({"subject": "ok", "tags": ["x\u{0}"]}),
        )
        .await;
    assert_err(&r, 400, "ticket", "tags (contains a NUL character");
    assert_eq!(api_support::total(&s, "*").await, before);
    let t = s.create(json!({"subject": "Fine"})).await;
    let r = s
        .call(
            "add_ticket_change",
            json!({"id": t["id"], "change": {"type": "comment", "body": "x\u{0}y"}}),
        )
        .await;
    assert_err(&r, 400, "ticket", "NUL character");

    // A file name with a quote keeps its readable part.
    let boundary = "XyZbOuNdArY";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{{\"subject\": \"With file\"}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"a\\\"b.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
         --{boundary}--\r\n"
    );
    let res = s
        .client
        .post(s.url("/api/app/create_ticket/v1"))
        .header("X-API-Key", &s.key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["code"], 0, "{v}");
    let file = &v["ticket"]["files"][0];
    assert_eq!(file["filename"], "a\"b.txt", "{file}");
    assert!(
        file["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with("/a_b.txt"),
        "{file}"
    );
}
