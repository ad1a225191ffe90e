//! `docket reindex` rebuilds the index of a data directory from its records.

mod common;

use common::{cli, Server};
use serde_json::json;

#[tokio::test]
async fn reindex_command_rebuilds_and_search_still_works() {
    let mut s = Server::start().await;
    for i in 0..25 {
        s.create(json!({"subject": format!("reindex probe {i}"), "body": "zebra crossing"}))
            .await;
    }
    assert!(s.terminate());
    let out = cli(&s.data, &["reindex", "--batch", "7"]);
    assert!(out.contains("Reindexed 25 tickets"), "{out}");
    s.restart();
    let (_, v) = s
        .call("search_tickets", json!({"query": "zebra", "limit": 100}))
        .await;
    assert_eq!(v["list"]["length"], 25, "{v}");
}
