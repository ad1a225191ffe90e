//! Rebuilding a lost search index from the records (the generic behaviour of stores is in
//! the conformance suite, instantiated in `mod.rs`).

use docket_core::store::Store;

use super::{find, ticket, TestDb};

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_records() {
    let db = TestDb::new().await;
    let store = db.store().await;
    for (id, subject) in [("a", "disk full"), ("c", "disk slow")] {
        store.create_ticket(ticket(id, subject)).await.unwrap();
    }
    sqlx::query(
        "UPDATE tickets SET keywords = '{}', subject_tsv = '', body_tsv = '', changes_tsv = '', \
         subject_raw = NULL, body_raw = NULL, changes_raw = NULL",
    )
    .execute(&mut db.conn().await)
    .await
    .unwrap();
    assert!(find(&store, "disk").await.is_empty());
    assert!(find(&store, "status:open").await.is_empty());
    let (mut after, mut done) = (0, 0);
    while let Some((last, n)) = store.reindex_batch(after, 1).await.unwrap() {
        (after, done) = (last, done + n);
    }
    assert_eq!(done, 2);
    assert_eq!(find(&store, "disk").await, vec!["a", "c"]);
    assert_eq!(find(&store, "status:open").await, vec!["a", "c"]);
    assert_eq!(find(&store, "\"disk slow\"").await, vec!["c"]);
    store.close().await;
}
