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
