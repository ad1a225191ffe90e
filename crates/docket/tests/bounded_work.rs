//! Bounded work (issue 13): no request, query or connection can starve the others. Long
//! queries and phrases are refused with an error naming the limit; searches have a
//! deadline; connections time out; logins are throttled; errors do not reveal what exists.

mod api_support;
mod common;

use std::time::{Duration, Instant};

use api_support::{assert_err, assert_ok};
use common::Server;
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
    assert_err(&r, 400, "ticket", "Search query too long: at most 32768 bytes");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // Within the size limit, but too many words in phrases.
    let phrase = format!("\"{}\"", vec!["disk"; 300].join(" "));
    let r = s.call("search_tickets", json!({"query": phrase})).await;
    assert_err(&r, 400, "ticket", "at most 256 words in phrases");

    // At the limit: a real answer (no ticket has 256 × "disk").
    let phrase = format!("\"{}\"", vec!["disk"; 256].join(" "));
    let r = s.call("search_tickets", json!({"query": phrase})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 0);
    let r = s.call("search_tickets", json!({"query": "\"disk is full\""})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
}

/// Tickets whose bodies make phrase matching slow: 1 MB of "disk full" each (200k tokens,
/// beyond a PostgreSQL tsvector, so kept raw there).
async fn seed_slow(s: &Server, n: usize) {
    let body = "disk full ".repeat(100_000);
    for i in 0..n {
        s.create(json!({"subject": format!("Big {i}"), "body": body})).await;
    }
}

/// A query slow on both stores (seconds on 30 such tickets without a deadline): FTS5 walks
/// every position of every word of the first phrase (they all occur, its end does not);
/// PostgreSQL's substring check of the raw text compares the second phrase backwards almost
/// to its start at every offset.
fn slow_query() -> String {
    let first = format!("{}disk disk", "disk full ".repeat(49));
    let second = format!("zzz {}", "disk full ".repeat(77));
    format!("\"{}\" | \"{}\"", first.trim(), second.trim())
}

#[tokio::test]
async fn slow_searches_stop_at_their_deadline_and_starve_nobody() {
    let s = std::sync::Arc::new(
        Server::start_with_env(&[
            ("DOCKET_DATABASE__SEARCH_TIMEOUT_SEC", "0.5"),
            ("DOCKET_DATABASE__SEARCH_CONNECTIONS", "2"),
        ])
        .await,
    );
    seed_slow(&s, 30).await;
    let small = s.create(json!({"subject": "Small one"})).await;
    let id = small["id"].as_str().unwrap().to_string();

    // One slow search: stopped at the deadline with a clear `ticket` error.
    let started = Instant::now();
    let r = s.call("search_tickets", json!({"query": slow_query()})).await;
    assert_err(&r, 400, "ticket", "Search took longer than 0.5 s and was stopped; narrow the query");
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());

    // Six at once (three times the search connections): each is stopped or waits its turn
    // no longer than the deadline, and meanwhile reads and writes answer promptly.
    let searches: Vec<_> = (0..6)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let r = s.call("search_tickets", json!({"query": slow_query()})).await;
                (r, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        assert_ok(&s.call("get_ticket", json!({"id": id})).await);
        assert_ok(&s.call("create_ticket", json!({"subject": format!("During {i}")})).await);
        slowest = slowest.max(started.elapsed());
    }
    // Without separate search connections a read waited for a slow search (seconds).
    assert!(slowest < Duration::from_millis(800), "a read and a write took {slowest:?}");
    for task in searches {
        let (r, took) = task.await.unwrap();
        assert_err(&r, 400, "ticket", "Search took longer than 0.5 s");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    // Quick searches still work.
    let r = s.call("search_tickets", json!({"query": "subject:small"})).await;
    assert_eq!(assert_ok(&r)["list"]["length"], 1);
}
