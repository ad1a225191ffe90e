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

/// A database from before migration 0006 (no list sort keys) gets the columns and every
/// ticket its keys when a node connects.
#[tokio::test]
async fn tickets_from_before_the_list_sort_keys_get_them_at_connect() {
    use docket_core::store::SortField;

    let db = TestDb::new().await;
    let store = db.store().await;
    for (id, assignees, tags) in [
        ("a", vec!["carol"], vec!["Zulu"]),
        ("b", vec![], vec!["alpha", "Ops"]),
        ("c", vec!["Émile", "dave"], vec![]),
        ("d", vec!["bob"], vec!["ops"]),
    ] {
        let mut t = ticket(id, "old ticket");
        t.assignees = assignees.into_iter().map(String::from).collect();
        t.tags = tags.into_iter().map(String::from).collect();
        store.create_ticket(t).await.unwrap().unwrap();
    }
    store.close().await;
    // Back to schema 5: no key columns, and migration 6 not applied.
    let mut conn = db.conn().await;
    for sql in [
        "ALTER TABLE tickets DROP COLUMN assignee_key, DROP COLUMN tag_key",
        "DELETE FROM _sqlx_migrations WHERE version = 6",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }

    let store = db.store().await;
    let keys: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, assignee_key, tag_key FROM tickets ORDER BY num")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let key = |s: &str| Some(s.to_string());
    assert_eq!(
        keys,
        vec![
            ("a".into(), key("carol"), key("zulu")),
            ("b".into(), key(""), key("alpha")),
            ("c".into(), key("dave"), key("")),
            ("d".into(), key("bob"), key("ops")),
        ]
    );
    let sorted = |sort_by, descending| {
        let req = super::request("*", sort_by, descending);
        let store = &store;
        async move {
            let page = store.search_tickets(&req).await.unwrap();
            page.rows.into_iter().map(|t| t.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sorted(SortField::Assignees, false).await,
        ["b", "d", "a", "c"]
    );
    assert_eq!(sorted(SortField::Tags, true).await, ["a", "d", "b", "c"]);
    store.close().await;
}
