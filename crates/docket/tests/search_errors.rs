//! A malformed search is a clear `ticket` error through the API (SPEC §6): it names the
//! problem, it is never a 500 and never a silent empty result.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test]
async fn malformed_queries_are_clear_errors() {
    let s = Server::start().await;
    s.create(json!({"subject": "Disk full on web01", "body": "the disk is full"}))
        .await;

    // (query, words the description must contain, case-insensitively)
    let rows: &[(&str, &[&str])] = &[
        (
            "stauts:open",
            &[
                "unknown search field",
                "stauts",
                "valid fields",
                "status",
                "tags",
                "due",
                "did you mean \"status\"",
            ],
        ),
        (
            "disk bogus:1",
            &["unknown search field", "bogus", "valid fields"],
        ),
        ("(bogus = \"x\")", &["unknown search field", "bogus"]),
        ("created:2024-13-45", &["invalid date", "2024-13-45"]),
        ("due:>=2024-02-30", &["invalid date", "2024-02-30"]),
        ("due:next", &["invalid date", "next"]),
        ("(modified < \"soon\")", &["invalid date", "soon"]),
        ("num:abc", &["invalid number", "abc"]),
        ("num:1.5", &["invalid number", "1.5"]),
        ("num:10..5", &["empty range", "10..5"]),
        ("(num > \"x\")", &["invalid number", "x"]),
        ("(status = \"open\"", &["unbalanced parenthesis"]),
        ("(status = \"open\"))", &["unbalanced parenthesis"]),
        (
            "((status = \"open\") & (num > 5)",
            &["unbalanced parenthesis"],
        ),
        ("disk \"full on", &["unterminated quote"]),
        ("(subject = \"disk)", &["unterminated quote"]),
        ("disk |", &["dangling operator", "|"]),
        ("| disk", &["dangling operator"]),
        ("disk -", &["dangling operator", "-"]),
        ("disk + full", &["dangling operator", "+"]),
        ("(status = \"open\" &)", &["dangling operator", "&"]),
        ("(status = \"open\" & | num > 1)", &["dangling operator"]),
        ("(status = \"a\" & num > 1 | num < 3)", &["ambiguous mix"]),
        ("status:", &["missing value", "status"]),
        ("num:>=", &["missing value"]),
        ("(status open)", &["expected an operator"]),
        ("(status != \"open\")", &["unknown operator", "!="]),
        ("subject:>disk", &["operator", "subject", "text field"]),
        ("(tags < \"flag\")", &["operator", "tags", "keyword field"]),
        ("!!!", &["no searchable words"]),
        ("()", &["empty parentheses"]),
        ("tags:\"\"", &["empty value", "tags"]),
        ("created:>=", &["missing value"]),
        ("due:0", &["invalid date", "0"]),
        ("(due = \"\")", &["invalid date"]),
    ];
    for (query, needles) in rows {
        for (route, want_status) in [
            ("/api/app/search_tickets/v1", 400),
            ("/api/app/search_tickets", 200),
        ] {
            let res = s
                .client
                .post(s.url(route))
                .header("X-API-Key", &s.key)
                .json(&json!({"query": query, "limit": 100}))
                .send()
                .await
                .expect("request");
            let (status, v) = common::decode(res).await;
            assert_eq!(status, want_status, "{route} query {query:?}: {v}");
            assert_eq!(v["code"], json!("ticket"), "query {query:?}: {v}");
            assert!(
                v.get("rows").is_none(),
                "an error has no rows: {query:?}: {v}"
            );
            let desc = v["description"].as_str().unwrap_or_default().to_lowercase();
            assert!(
                desc.contains("position"),
                "query {query:?}: the description should say where: {desc}"
            );
            for needle in *needles {
                assert!(
                    desc.contains(&needle.to_lowercase()),
                    "query {query:?}: description {desc:?} should mention {needle:?}"
                );
            }
        }
    }

    // The same through a GET query string.
    let res = s
        .client
        .get(s.url("/api/app/search_tickets/v1"))
        .header("X-API-Key", &s.key)
        .query(&[("query", "num:abc")])
        .send()
        .await
        .expect("request");
    let (status, v) = common::decode(res).await;
    assert_eq!((status, &v["code"]), (400, &json!("ticket")), "{v}");

    // Valid queries next to them still work (the errors are not from an empty index).
    let (_, v) = s
        .call("search_tickets", json!({"query": "disk status:open"}))
        .await;
    assert_eq!(
        (&v["code"], &v["list"]["length"]),
        (&json!(0), &json!(1)),
        "{v}"
    );
}

#[tokio::test]
async fn long_queries_work_or_fail_clearly() {
    let s = Server::start().await;
    s.create(json!({"subject": "Disk full on web01", "body": "the disk is full"}))
        .await;
    // Up to the limit every shape works (SQLite refuses expressions nested deeper than
    // 1000, so long flat lists must not become deep trees).
    let at_limit = [
        vec!["disk"; 1000].join("|"),
        vec!["disk"; 1000].join(" "),
        vec!["status:open"; 1000].join(" "),
        vec!["-nope"; 1000].join(" "),
        format!("tags:{}", vec!["x"; 1000].join("|")),
        format!("disk {}", vec!["num:>0"; 999].join(" ")),
        format!("({})", vec!["subject =~ \"disk\""; 1000].join(" | ")),
    ];
    for q in &at_limit {
        let started = std::time::Instant::now();
        let (status, v) = s.call("search_tickets", json!({"query": q})).await;
        assert_eq!(
            (status, &v["code"]),
            (200, &json!(0)),
            "{}...: {v}",
            &q[..40]
        );
        let expected = if q.starts_with("tags:") { 0 } else { 1 };
        assert_eq!(v["list"]["length"], json!(expected), "{}...", &q[..40]);
        assert!(
            started.elapsed().as_secs() < 10,
            "{}... took {:?}",
            &q[..40],
            started.elapsed()
        );
    }
    for q in [
        vec!["disk"; 1001].join("|"),
        vec!["disk"; 20_000].join(" "),
        vec!["a"; 100_000].join("|"),
    ] {
        let (status, v) = s.call("search_tickets", json!({"query": q})).await;
        assert_eq!((status, &v["code"]), (400, &json!("ticket")), "{v}");
        let desc = v["description"].as_str().unwrap_or_default();
        // Over 32 KiB the query is refused for its size before its terms are counted.
        let expected = if q.len() > 32 * 1024 {
            desc.contains("Search query too long: at most 32768 bytes")
        } else {
            desc.contains("search terms") && desc.contains("limit of 1000")
        };
        assert!(expected, "{desc}");
    }
}

/// Random junk from the query alphabet: every answer is a result or a `ticket` error that
/// says where the problem is, never a 500 or another code.
#[tokio::test]
async fn random_junk_never_500s() {
    let s = Server::start().await;
    s.create(json!({"subject": "Disk full on web01", "body": "the disk is full", "tags": []}))
        .await;
    const PIECES: &[&str] = &[
        "(",
        ")",
        "\"",
        "|",
        "||",
        "&",
        "&&",
        "-",
        "+",
        ":",
        "<",
        ">",
        "=",
        "~",
        "!~",
        "=~",
        "..",
        "*",
        " ",
        " ",
        "status",
        "subject",
        "due",
        "num",
        "tags",
        "created",
        "body",
        "changes",
        "bogus",
        "open",
        "disk",
        "2024-01-15",
        "this month",
        "today",
        "5",
        "-3",
        "Café",
        "\\",
        "\\u00e9",
        "https://x.io/a",
        "\u{200b}",
        "木",
        "'",
        "2.5.1",
        "```",
        "<b>",
        "&amp;",
    ];
    let mut state: u64 = 0x1234_5678_9ABC_DEF1;
    let mut next = move |n: usize| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    };
    let (mut ok, mut err) = (0, 0);
    for i in 0..400 {
        let len = 1 + next(12);
        let mut q: String = (0..len).map(|_| PIECES[next(PIECES.len())]).collect();
        if i % 2 == 0 {
            q.insert(0, '(');
        }
        let (status, v) = s
            .call("search_tickets", json!({"query": q, "limit": 5}))
            .await;
        match (status, v["code"].as_str()) {
            (200, None) if v["code"] == json!(0) => ok += 1,
            (400, Some("ticket")) => {
                let desc = v["description"].as_str().unwrap_or_default();
                assert!(
                    desc.contains("position") || desc.contains("search terms"),
                    "query {q:?}: {desc}"
                );
                err += 1;
            }
            _ => panic!("query {q:?}: HTTP {status} {v}"),
        }
    }
    assert!(ok > 20 && err > 20, "ok {ok}, errors {err}");
}
