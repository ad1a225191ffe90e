//! Saved searches (docket-core's service) on PostgreSQL: one record per user, changed
//! under a row lock, so concurrent saves from two nodes keep every search and the limits.

use std::sync::Arc;

use docket_core::auth::Principal;
use docket_core::rules::TicketRules;
use docket_core::service::MAX_SAVED_SEARCHES;
use docket_core::{Docket, Error};

use super::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_saves_on_two_nodes_keep_every_search_and_the_limit() {
    let db = TestDb::new().await;
    let nodes = [
        Docket::new(Arc::new(db.store().await), TicketRules::default()),
        Docket::new(Arc::new(db.store().await), TicketRules::default()),
    ];
    let ann = Principal::new(
        "ann",
        &docket_core::privileges::Privileges::default(),
        &[],
        &[],
    );
    // More than the limit, all at once, the user's first saves among them.
    let tasks: Vec<_> = (0..MAX_SAVED_SEARCHES + 10)
        .map(|i| {
            let (docket, ann) = (nodes[i % 2].clone(), ann.clone());
            tokio::spawn(async move {
                docket
                    .save_search(&ann, None, &format!("search {i}"), "status:open")
                    .await
            })
        })
        .collect();
    let (mut saved, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => saved += 1,
            Err(Error::Api(m)) if m.contains("at most") => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((saved, refused), (MAX_SAVED_SEARCHES, 10));
    let list = nodes[1].saved_searches(&ann).await.unwrap();
    assert_eq!(list.len(), MAX_SAVED_SEARCHES);
    // A name taken on one node is taken on the other.
    let taken = &list[0];
    let dup = nodes[0]
        .save_search(&ann, None, &taken.name.to_uppercase(), "x")
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Api(m) if m.contains("already have")));
    nodes[1].delete_saved_search(&ann, &taken.id).await.unwrap();
    assert!(matches!(
        nodes[0].delete_saved_search(&ann, &taken.id).await,
        Err(Error::NotFound(_))
    ));
}
