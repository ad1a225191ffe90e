//! The documentation cannot drift from the server: every search example in `docs/search.md`
//! runs against a real server seeded with the page's own example tickets, and every call of
//! the call table has a section in `docs/api.md`.
//!
//! `docs/search.md` conventions (see the page):
//! - a ```` ```corpus ```` block: one JSON object per line, the `create_ticket` parameters of
//!   ticket 1, 2, …; a `comments` array in it is added afterwards as comments, and each
//!   `[type, num]` of a `relations` array with `add_ticket_relation` (to an earlier ticket);
//! - ```` ```search ```` blocks: `QUERY => NUMS` per line, run with every row in `num` order;
//! - ```` ```search-params ```` blocks: `REQUEST-JSON => NUMS [(of TOTAL)]`, run as given.
//!
//! `NUMS` is `none`, a comma-separated list of ticket numbers, or `error: PHRASE` (the call
//! must fail with a description containing PHRASE, case-insensitively).

mod common;

use std::path::PathBuf;

use common::Server;
use serde_json::{json, Map, Value};

fn repo_file(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bodies of the fenced blocks whose info string is exactly `info`.
fn blocks(doc: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, l) if l.strip_prefix("```") == Some(info) => current = Some(String::new()),
            (Some(_), "```") => out.extend(current.take()),
            (Some(body), l) => {
                body.push_str(l);
                body.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unclosed ```{info} block");
    out
}

/// What an example expects.
#[derive(Debug, PartialEq)]
enum Expect {
    Rows { nums: Vec<i64>, total: Option<u64> },
    Error(String),
}

fn parse_expect(text: &str) -> Expect {
    let text = text.trim();
    if let Some(phrase) = text.strip_prefix("error:") {
        return Expect::Error(phrase.trim().to_string());
    }
    let (list, total) = match text.split_once("(of ") {
        Some((list, rest)) => {
            let n = rest.trim_end_matches(')').trim();
            (
                list,
                Some(
                    n.parse()
                        .unwrap_or_else(|_| panic!("bad total in {text:?}")),
                ),
            )
        }
        None => (text, None),
    };
    let nums = if list.trim() == "none" {
        Vec::new()
    } else {
        list.split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("bad number in {text:?}"))
            })
            .collect()
    };
    Expect::Rows { nums, total }
}

/// `(request, expectation, the line)` of every example.
fn examples(doc: &str) -> Vec<(Value, Expect, String)> {
    let mut out = Vec::new();
    for body in blocks(doc, "search") {
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let (query, expect) = line.rsplit_once("=>").expect("QUERY => RESULT");
            let request =
                json!({"query": query.trim(), "limit": 100, "sort_by": "num", "sort_dir": 1});
            out.push((request, parse_expect(expect), line.to_string()));
        }
    }
    for body in blocks(doc, "search-params") {
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let (request, expect) = line.rsplit_once("=>").expect("REQUEST => RESULT");
            let request: Value = serde_json::from_str(request.trim())
                .unwrap_or_else(|e| panic!("{line:?}: request is not JSON: {e}"));
            out.push((request, parse_expect(expect), line.to_string()));
        }
    }
    out
}

/// Creates the corpus tickets in order, as the user `admin`.
async fn seed(s: &Server, corpus: &str) {
    let (_, v) = s
        .call(
            "create_api_key",
            json!({"title": "docs", "username": "admin", "privileges": {"admin": true}}),
        )
        .await;
    let key = v["plain_key"].as_str().expect("plain key").to_string();
    for (i, line) in corpus.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut params: Map<String, Value> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("corpus line {line:?}: {e}"));
        let comments = params.remove("comments");
        let relations = params.remove("relations");
        let (_, v) = s
            .call_as(&key, "create_ticket", Value::Object(params))
            .await;
        assert_eq!(v["code"], 0, "corpus ticket {}: {v}", i + 1);
        assert_eq!(
            v["ticket"]["num"],
            json!(i + 1),
            "corpus tickets are numbered in order"
        );
        let id = v["ticket"]["id"].clone();
        for body in comments
            .iter()
            .flat_map(|c| c.as_array().cloned().unwrap_or_default())
        {
            let change = json!({"id": id, "change": {"type": "comment", "body": body}});
            let (_, v) = s.call_as(&key, "add_ticket_change", change).await;
            assert_eq!(v["code"], 0, "comment on ticket {}: {v}", i + 1);
        }
        for pair in relations
            .iter()
            .flat_map(|r| r.as_array().cloned().unwrap_or_default())
        {
            let link = json!({"id": id, "type": pair[0], "other_num": pair[1]});
            let (_, v) = s.call_as(&key, "add_ticket_relation", link).await;
            assert_eq!(v["code"], 0, "relation of ticket {}: {v}", i + 1);
        }
    }
}

#[tokio::test]
async fn search_examples_in_the_docs_hold() {
    let doc = repo_file("docs/search.md");
    let corpus = blocks(&doc, "corpus");
    assert_eq!(corpus.len(), 1, "docs/search.md has one corpus block");
    let examples = examples(&doc);
    assert!(
        examples.len() >= 60,
        "only {} examples found: is the block format intact?",
        examples.len()
    );
    let s = Server::start().await;
    seed(&s, &corpus[0]).await;

    let mut failures = Vec::new();
    for (request, expect, line) in &examples {
        let (_, v) = s.call("search_tickets", request.clone()).await;
        let got = if v["code"] == json!(0) {
            let nums = v["rows"]
                .as_array()
                .expect("rows")
                .iter()
                .map(|t| t["num"].as_i64().expect("num"))
                .collect();
            let total = v["list"]["length"].as_u64();
            match expect {
                Expect::Rows { total: None, .. } => Expect::Rows { nums, total: None },
                _ => Expect::Rows { nums, total },
            }
        } else {
            let description = v["description"].as_str().unwrap_or_default();
            match expect {
                Expect::Error(phrase)
                    if description.to_lowercase().contains(&phrase.to_lowercase()) =>
                {
                    Expect::Error(phrase.clone())
                }
                _ => Expect::Error(description.to_string()),
            }
        };
        if &got != expect {
            failures.push(format!("{line}\n    got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples in docs/search.md do not hold:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
}

/// The call names of the server's call table, read from the OpenAPI document it generates
/// from that table (`docket openapi`).
fn route_table_calls() -> Vec<String> {
    let out = std::process::Command::new(common::bin())
        .arg("openapi")
        .output()
        .expect("run docket openapi");
    assert!(out.status.success(), "docket openapi failed");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("OpenAPI JSON");
    doc["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .filter(|p| p.starts_with("/api/") && p.ends_with("/v1") && *p != "/api/app/file/v1")
        .filter_map(|p| {
            p.trim_end_matches("/v1")
                .rsplit('/')
                .next()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn every_call_has_a_section_in_the_api_docs() {
    let calls = route_table_calls();
    assert!(
        calls.len() >= 40,
        "only {} calls read from the table",
        calls.len()
    );
    let doc = repo_file("docs/api.md");
    let headings: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|h| h.trim().trim_matches('`'))
        .collect();
    let missing: Vec<&String> = calls
        .iter()
        .filter(|c| !headings.contains(&c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "calls without a `### name` section in docs/api.md: {missing:?}"
    );
    let unknown: Vec<&&str> = headings
        .iter()
        .filter(|h| !calls.iter().any(|c| c == *h))
        .collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md documents calls the server does not have: {unknown:?}"
    );
}
