//! The SQLite store's unit tests, on PostgreSQL.

use docket_core::store::Store;
use docket_core::Error;

use super::{find, item, ticket, TestDb};
use crate::MAX_HOLD_SECS;

#[tokio::test]
async fn outbox_rows_commit_with_the_change_and_are_claimed_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .create_ticket(ticket("a", "disk full"))
        .await
        .unwrap()
        .unwrap();
    // A failed mutation writes neither the ticket nor its outbox rows.
    let failed = store
        .update_ticket_out(
            "a",
            Box::new(|t| {
                t.subject = "changed".into();
                let _ = vec![item("g1", 0, None)];
                Err(docket_core::Error::Ticket("no".into()))
            }),
        )
        .await;
    assert!(failed.is_err());
    assert_eq!(store.outbox_list(false, 10).await.unwrap().len(), 0);
    assert_eq!(
        store.ticket_by_id("a").await.unwrap().unwrap().subject,
        "disk full"
    );
    store
        .update_ticket_out(
            "a",
            Box::new(|t| {
                t.subject = "changed".into();
                Ok(vec![item("g1", 100, None), item("g2", 500, None)])
            }),
        )
        .await
        .unwrap();
    store
        .update_ticket_out("a", Box::new(|_| Ok(vec![item("g1", 300, None)])))
        .await
        .unwrap();
    // g1 is held until its last row is due (a sliding debounce).
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(300));
    assert!(store.outbox_claim(50, 1000, 10).await.unwrap().is_empty());
    assert!(store.outbox_claim(150, 1000, 10).await.unwrap().is_empty());
    // g1 is due: both of its rows come together (the batch); g2 waits.
    let claimed = store.outbox_claim(350, 1000, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.grp.as_str()).collect::<Vec<_>>(),
        vec!["g1", "g1"]
    );
    assert!(claimed
        .iter()
        .all(|r| r.attempts == 1 && r.claimed_until == Some(1000)));
    // Leased: not claimed again until the lease runs out.
    assert!(store
        .outbox_claim(600, 1000, 10)
        .await
        .unwrap()
        .iter()
        .all(|r| r.grp == "g2"));
    let again = store.outbox_claim(1001, 2000, 10).await.unwrap();
    assert_eq!(again.len(), 3, "expired leases are claimed again");
    store
        .outbox_sent(again.iter().map(|r| r.id).collect(), 1001)
        .await
        .unwrap();
    assert!(
        store.outbox_claim(5000, 6000, 10).await.unwrap().is_empty(),
        "sent rows never come back"
    );
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
    assert_eq!(store.outbox_sent_since("email", 1000).await.unwrap(), 3);
    // Changes that never stop are still sent, at most MAX_HOLD_SECS after the first.
    for t in [7000, 7200, 7400, 7600, 7800] {
        store
            .outbox_enqueue(vec![item("busy", t, None)])
            .await
            .unwrap();
    }
    assert!(store.outbox_claim(7500, 7600, 10).await.unwrap().is_empty());
    assert_eq!(
        store
            .outbox_claim(7000 + MAX_HOLD_SECS, 9000, 10)
            .await
            .unwrap()
            .len(),
        5
    );
    // A failure releases the rows, pushes them out and records the error.
    let busy: Vec<i64> = store
        .outbox_list(true, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    store
        .outbox_failed(busy.clone(), "smtp: 451".into(), 20_000)
        .await
        .unwrap();
    let pending = store.outbox_list(true, 10).await.unwrap();
    assert!(pending.iter().all(|r| r.not_before == 20_000
        && r.claimed_until.is_none()
        && r.last_error.as_deref() == Some("smtp: 451")));
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(20_000));
    // A unique key is queued once, ever.
    assert_eq!(
        store
            .outbox_enqueue(vec![item("o", 0, Some("k")), item("o", 0, Some("k"))])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .outbox_enqueue(vec![item("o", 0, Some("k"))])
            .await
            .unwrap(),
        0
    );
    // Newest first; ids ascend in insertion order.
    let all = store.outbox_list(false, 100).await.unwrap();
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    store.close().await;
}

#[tokio::test]
async fn numbers_are_never_reused_and_reindex_restores_search() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let a = store
        .create_ticket(ticket("a", "disk full"))
        .await
        .unwrap()
        .unwrap();
    let b = store
        .create_ticket(ticket("b", "network down"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.num, b.num), (1, 2));
    assert!(store
        .create_ticket(ticket("a", "dup"))
        .await
        .unwrap()
        .is_none());
    store
        .delete_ticket("b", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    let c = store
        .create_ticket(ticket("c", "disk slow"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.num, 3, "a deleted ticket's number is not reused");
    assert_eq!(find(&store, "disk").await, vec!["a", "c"]);

    // Lose the index, then rebuild it from the records.
    sqlx::query(
        "UPDATE tickets SET keywords = '{}', subject_tsv = '', body_tsv = '', changes_tsv = '', \
         subject_raw = NULL, body_raw = NULL, changes_raw = NULL",
    )
    .execute(&mut db.conn().await)
    .await
    .unwrap();
    assert!(find(&store, "disk").await.is_empty());
    assert!(find(&store, "status:open").await.is_empty());
    assert_eq!(store.ticket_count().await.unwrap(), 2);
    let mut after = 0;
    let mut done = 0;
    while let Some((last, n)) = store.reindex_batch(after, 1).await.unwrap() {
        after = last;
        done += n;
    }
    assert_eq!(done, 2);
    assert_eq!(find(&store, "disk").await, vec!["a", "c"]);
    assert_eq!(find(&store, "status:open").await, vec!["a", "c"]);
    assert_eq!(find(&store, "\"disk slow\"").await, vec!["c"]);
    store.close().await;
}

/// The SQLite test of group commit; here every write is its own transaction, and the same
/// must hold: a failed write leaves no trace, the others are intact, numbers consecutive.
#[tokio::test]
async fn a_failed_write_among_concurrent_ones_leaves_the_others_intact() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .create_ticket(ticket("base", "base ticket"))
        .await
        .unwrap()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                // Changes the ticket, then fails: must leave no trace.
                store
                    .update_ticket(
                        "base",
                        Box::new(|t| {
                            t.subject = "poisoned".into();
                            Err(Error::Ticket("rejected".into()))
                        }),
                    )
                    .await
                    .map(|_| 0)
            } else {
                store
                    .create_ticket(ticket(&format!("t{i}"), "grouped write"))
                    .await
                    .map(|t| t.map(|t| t.num).unwrap_or(-1))
            }
        }));
    }
    let mut nums = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(num) if i % 3 != 0 => nums.push(num),
            Err(Error::Ticket(_)) if i % 3 == 0 => {}
            other => panic!("write {i}: unexpected {other:?}"),
        }
    }
    nums.sort_unstable();
    assert_eq!(
        nums,
        (2..=41).collect::<Vec<_>>(),
        "40 creates, consecutive numbers"
    );
    assert_eq!(
        store.ticket_by_id("base").await.unwrap().unwrap().subject,
        "base ticket"
    );
    assert!(find(&store, "poisoned").await.is_empty());
    assert_eq!(find(&store, "grouped").await.len(), 40);
    store.close().await;
}
