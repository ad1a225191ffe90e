//! A malformed search is a clear `ticket` error through the API (SPEC §6): it names the
//! problem, it is never a 500 and never a silent empty result.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test]
async fn malformed_queries_are_clear_errors() {
    let s = Server::start().await;
    s.create(json!({"subject": "Disk full on web01", "body": "the disk is full"})).await;

    // (query, words the description must contain, case-insensitively)
    let rows: &[(&str, &[&str])] = &[
        ("stauts:open", &["unknown search field", "stauts", "valid fields", "status", "tags", "due", "did you mean \"status\""]),
        ("disk bogus:1", &["unknown search field", "bogus", "valid fields"]),
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
        ("((status = \"open\") & (num > 5)", &["unbalanced parenthesis"]),
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
    ];
    for (query, needles) in rows {
        for (route, want_status) in [("/api/app/search_tickets/v1", 400), ("/api/app/search_tickets", 200)] {
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
            assert!(v.get("rows").is_none(), "an error has no rows: {query:?}: {v}");
            let desc = v["description"].as_str().unwrap_or_default().to_lowercase();
            assert!(desc.contains("position"), "query {query:?}: the description should say where: {desc}");
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
    let (_, v) = s.call("search_tickets", json!({"query": "disk status:open"})).await;
    assert_eq!((&v["code"], &v["list"]["length"]), (&json!(0), &json!(1)), "{v}");
}
