//! `docket reindex` rebuilds the index of a data directory from its records; opening a
//! database indexed by an older analyzer version rebuilds it on its own; and the parts of a
//! dotted host name are searchable (analyzer version 2).

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

/// Finds `query` with the admin key; returns the ids found.
async fn found(s: &Server, query: &str) -> Vec<String> {
    let (_, v) = s
        .call("search_tickets", json!({"query": query, "limit": 100}))
        .await;
    assert_eq!(v["code"], 0, "{query:?}: {v}");
    v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// Every way of asking for a linked host finds the ticket.
const HOST_QUERIES: [&str; 5] = [
    "grafana",
    "example",
    "grafana.example.com",
    "\"grafana example\"",
    "body:grafana.example.com",
];

#[tokio::test]
async fn every_part_of_a_host_name_is_searchable() {
    let s = Server::start().await;
    let t = s
        .create(json!({"subject": "Dashboards", "body": "see https://grafana.example.com/d/x"}))
        .await;
    let db = s
        .create(json!({"subject": "Replica lag on db1.prod.acme.io", "body": "version 2.5.1"}))
        .await;
    for query in HOST_QUERIES {
        assert_eq!(
            found(&s, query).await,
            vec![t["id"].as_str().unwrap()],
            "{query}"
        );
    }
    let db_id = db["id"].as_str().unwrap();
    for query in [
        "db1",
        "acme",
        "db1.prod.acme.io",
        "\"prod acme\"",
        "2.5.1",
        "subject:db1",
    ] {
        assert_eq!(found(&s, query).await, vec![db_id], "{query}");
    }
    for query in [
        "grafana.example.org",
        "\"example grafana\"",
        "2.5",
        "\"1 prod\"",
    ] {
        assert!(found(&s, query).await.is_empty(), "{query}");
    }
}

#[tokio::test]
async fn a_database_indexed_by_the_old_analyzer_is_reindexed_when_opened() {
    use docket_core::index_version::ANALYZER_META;
    use docket_core::store::RecordKind;
    let mut s = Server::start().await;
    let t = s
        .create(json!({"subject": "Dashboards", "body": "see https://grafana.example.com/d/x"}))
        .await;
    let id = t["id"].as_str().unwrap().to_string();
    assert!(s.terminate());
    // The tokens version 1 wrote: the host as one word.
    common::raw_sql(
        &s.data,
        "DELETE FROM ticket_text; INSERT INTO ticket_text (rowid, subject, body, changes) \
         SELECT num, 'dashboard', 'admin zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz dashboard \
         zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz see grafana_example_com', '' FROM tickets;",
        "UPDATE tickets SET subject_tsv = 'dashboard:1'::tsvector, \
         body_tsv = 'see:5 grafana_example_com:6'::tsvector;",
    );
    // While the recorded version is current, nothing is rebuilt: the old tokens answer.
    s.restart();
    assert!(found(&s, "grafana").await.is_empty());
    assert_eq!(found(&s, "grafana_example_com").await, vec![id.clone()]);
    assert!(s.terminate());

    // A database from before the change records version 1 (or nothing).
    let raw = common::RawStore::open(&s.data).await;
    let updated = raw
        .store()
        .update_record(
            RecordKind::Meta,
            ANALYZER_META,
            Box::new(|v: &mut serde_json::Value| {
                v["version"] = json!(1);
                Ok(())
            }),
        )
        .await
        .expect("set the analyzer version");
    assert!(updated.is_some());
    raw.close().await;

    s.restart();
    for query in HOST_QUERIES {
        assert_eq!(found(&s, query).await, vec![id.clone()], "{query}");
    }
    assert!(found(&s, "grafana_example_com").await.is_empty());
    assert!(
        s.log_text().contains("search index rebuilt"),
        "{}",
        s.log_text()
    );
}
