//! A database indexed by an older analyzer is reindexed when a node connects.

use docket_core::index_version::{stored_version, upgrade_index, ANALYZER_META};
use docket_core::store::{RecordKind, Store};

use super::{find, ticket, TestDb};

#[tokio::test]
async fn an_index_of_an_older_analyzer_is_rebuilt_at_connect() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut t = ticket("a", "dashboards");
    t.body = "see https://grafana.example.com/d/x".into();
    store.create_ticket(t).await.unwrap().unwrap();
    // What version 1 wrote: the host as one token; and no version recorded.
    let mut conn = db.conn().await;
    sqlx::query(
        "UPDATE tickets SET subject_tsv = 'dashboard:1'::tsvector, \
         body_tsv = 'see:1 grafana_example_com:2'::tsvector WHERE id = 'a'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    store
        .delete_record(RecordKind::Meta, ANALYZER_META)
        .await
        .unwrap();
    assert!(find(&store, "grafana").await.is_empty());
    store.close().await;

    let store = db.store().await;
    for query in [
        "grafana",
        "example",
        "grafana.example.com",
        "\"grafana example\"",
    ] {
        assert_eq!(find(&store, query).await, vec!["a"], "{query}");
    }
    assert_eq!(
        stored_version(&store).await.unwrap(),
        Some(docket_query::ANALYZER_VERSION)
    );
    assert_eq!(upgrade_index(&store).await.unwrap(), None, "only once");
    store.close().await;
}
