//! The change feed (`docket_core::feed`) as every store must keep it: one event per
//! committed ticket write, in the write's transaction, positions in commit order, nothing
//! skipped or repeated for a reader that resumes, pruning with a horizon.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use docket_core::feed::{FeedEvent, FeedKind};
use docket_core::kernel::now_secs;
use docket_core::model::{Change, FileRef};
use docket_core::store::Store;
use docket_core::Error;

use crate::{alert, plain, ticket};

/// Every event above `after`, read in pages of `page`.
pub async fn feed_all(store: &dyn Store, after: i64, page: u32) -> Vec<FeedEvent> {
    let mut out = Vec::new();
    let mut cursor = after;
    loop {
        let read = store.feed_after(cursor, page).await.unwrap();
        let Some(last) = read.events.last() else {
            return out;
        };
        cursor = last.position;
        out.extend(read.events);
    }
}

fn summary(events: &[FeedEvent]) -> Vec<(&str, FeedKind)> {
    events
        .iter()
        .map(|e| (e.entry.id.as_str(), e.entry.kind))
        .collect()
}

fn assert_ascending(events: &[FeedEvent]) {
    for w in events.windows(2) {
        assert!(w[0].position < w[1].position, "{:?}", summary(events));
    }
}

pub async fn every_ticket_write_is_in_the_feed_once_in_commit_order<S: Store>(store: S) {
    use FeedKind::{Commented, Created, Deleted, Files, Updated};
    let mut a = ticket("a", "disk full");
    a.category = "ops".into();
    a.modified = 1000;
    store.create_ticket(a).await.unwrap().unwrap();
    store
        .update_ticket(
            "a",
            Box::new(|t| {
                t.subject = "disk very full".into();
                t.modified = 2000;
                t.changes.push(Change {
                    id: "c1".into(),
                    kind: "change".into(),
                    key: Some("subject".into()),
                    ..Default::default()
                });
                Ok(())
            }),
        )
        .await
        .unwrap();
    store
        .update_ticket_out(
            "a",
            Box::new(|t| {
                t.changes.push(Change {
                    id: "c2".into(),
                    kind: "comment".into(),
                    body: Some("looking".into()),
                    ..Default::default()
                });
                Ok(Vec::new())
            }),
        )
        .await
        .unwrap();
    store
        .update_ticket(
            "a",
            Box::new(|t| {
                t.files.push(FileRef {
                    id: "f".into(),
                    path: "files/a/u/r/log.txt".into(),
                    filename: "log.txt".into(),
                    ..Default::default()
                });
                Ok(())
            }),
        )
        .await
        .unwrap();
    // Writes that do not happen leave no event.
    assert!(store
        .update_ticket("a", Box::new(|_| Err(Error::Ticket("no".into()))))
        .await
        .is_err());
    assert!(store
        .update_ticket("missing", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .create_ticket(ticket("a", "dup"))
        .await
        .unwrap()
        .is_none());
    let mut poisoned = plain(ticket("p", "poison"));
    poisoned.staged_files = vec!["missing".into()];
    assert!(store.create_ticket_with(poisoned).await.is_err());
    // Bulk loads are not in the feed.
    store
        .import_tickets(vec![ticket("bulk", "x")])
        .await
        .unwrap();
    store.reindex_batch(0, 100).await.unwrap();
    store
        .delete_ticket("a", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    // An automation create, a dedupe hit (an update of the absorbing ticket), a replay
    // (nothing written).
    store
        .create_ticket_with(alert("d", Some("k1"), &[], None))
        .await
        .unwrap();
    store
        .create_ticket_with(alert("e", None, &[], None))
        .await
        .unwrap();
    store
        .create_ticket_with(alert("d2", Some("k1"), &[], None))
        .await
        .unwrap();

    let events = feed_all(&store, 0, 2).await;
    assert_eq!(
        summary(&events),
        [
            ("a", Created),
            ("a", Updated),
            ("a", Commented),
            ("a", Files),
            ("a", Deleted),
            ("d", Created),
            ("d", Updated),
        ]
    );
    assert_ascending(&events);
    let e = &events;
    assert_eq!((e[0].entry.modified, e[1].entry.modified), (1000, 2000));
    assert_eq!(e[1].entry.changes.len(), 1);
    assert_eq!(e[1].entry.changes[0]["key"], "subject");
    assert_eq!(e[2].entry.changes[0]["body"], "looking");
    assert_eq!(e[3].entry.files_added[0].filename, "log.txt");
    // The category rides along (also on the delete), for the readers' checks.
    assert!(e[..5].iter().all(|e| e.entry.category == "ops"));
    assert_eq!(e[5].entry.category, "prod");
    assert!(e.iter().all(|e| e.entry.num > 0));

    // Reading from the middle returns what follows, and the newest position is known.
    let read = store.feed_after(e[4].position, 10).await.unwrap();
    assert_eq!(summary(&read.events), [("d", Created), ("d", Updated)]);
    assert_eq!(read.newest, e[6].position);
    assert_eq!(read.pruned_through, 0);
    assert!(store
        .feed_after(e[6].position, 10)
        .await
        .unwrap()
        .events
        .is_empty());
}

pub async fn pruning_removes_old_events_and_raises_the_horizon<S: Store>(store: S) {
    for i in 0..5 {
        store
            .create_ticket(ticket(&format!("t{i}"), "old"))
            .await
            .unwrap()
            .unwrap();
    }
    let before = feed_all(&store, 0, 100).await;
    assert_eq!(before.len(), 5);
    // Nothing is older than an hour ago.
    assert_eq!(store.feed_prune(now_secs() - 3600).await.unwrap(), 0);
    assert_eq!(store.feed_after(0, 10).await.unwrap().events.len(), 5);
    // Everything is older than a minute from now.
    assert_eq!(store.feed_prune(now_secs() + 60).await.unwrap(), 5);
    let read = store.feed_after(0, 10).await.unwrap();
    assert!(read.events.is_empty());
    assert_eq!(read.pruned_through, before[4].position);
    assert_eq!(read.newest, 0);
    // New events continue above the horizon: a position is never handed out again.
    store
        .create_ticket(ticket("new", "new"))
        .await
        .unwrap()
        .unwrap();
    let read = store.feed_after(read.pruned_through, 10).await.unwrap();
    assert_eq!(summary(&read.events), [("new", FeedKind::Created)]);
    assert!(read.events[0].position > before[4].position);
    assert_eq!(read.pruned_through, before[4].position);
}

/// Readers that read in small pages while many writers commit concurrently each receive
/// every event exactly once, in position order — on PostgreSQL this is what numbering rows
/// only after they commit is for (a position drawn at insert, early, and committed late
/// would be skipped by a reader that had already moved past it).
pub async fn readers_racing_concurrent_writers_miss_and_repeat_nothing<S: Store + Clone>(store: S) {
    const WRITERS: usize = 8;
    const WRITES: usize = 25;
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for page in [1u32, 3, 7] {
        let (store, done) = (store.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut got: Vec<FeedEvent> = Vec::new();
            let mut cursor = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let read = store.feed_after(cursor, page).await.unwrap();
                if let Some(last) = read.events.last() {
                    cursor = last.position;
                }
                let empty = read.events.is_empty();
                got.extend(read.events);
                if finished && empty {
                    return got;
                }
                if empty {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..WRITES {
                let id = format!("w{w}x{i}");
                store
                    .create_ticket(ticket(&id, "raced"))
                    .await
                    .unwrap()
                    .unwrap();
                if i % 2 == 0 {
                    store
                        .update_ticket(
                            &id,
                            Box::new(|t| {
                                t.modified += 1;
                                Ok(())
                            }),
                        )
                        .await
                        .unwrap();
                }
                if i % 5 == 0 {
                    // A failing write in the mix: no event, maybe a gap.
                    let _ = store
                        .update_ticket(&id, Box::new(|_| Err(Error::Ticket("no".into()))))
                        .await;
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let all = feed_all(&store, 0, 1000).await;
    let per_ticket = (WRITES + WRITES.div_ceil(2)) * WRITERS;
    assert_eq!(all.len(), per_ticket);
    assert_ascending(&all);
    let mut counts = BTreeMap::new();
    for e in &all {
        *counts
            .entry((e.entry.id.clone(), e.entry.kind.as_str()))
            .or_insert(0) += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "an event twice");
    for r in readers {
        let got = r.await.unwrap();
        let positions: Vec<i64> = got.iter().map(|e| e.position).collect();
        let expected: Vec<i64> = all.iter().map(|e| e.position).collect();
        assert_eq!(positions, expected, "a reader missed or repeated an event");
    }
}

/// A read right after a write returns (the caller's ack is the commit) has the write's
/// event: no background step stands between a commit and the feed (the desk and clients
/// that write then read rely on it).
pub async fn a_read_right_after_a_write_has_its_event<S: Store>(store: S) {
    let mut cursor = 0;
    for i in 0..10 {
        let id = format!("t{i}");
        store
            .create_ticket(ticket(&id, "read back"))
            .await
            .unwrap()
            .unwrap();
        let read = store.feed_after(cursor, 10).await.unwrap();
        assert_eq!(summary(&read.events), [(id.as_str(), FeedKind::Created)]);
        assert_eq!(read.newest, read.events[0].position);
        cursor = read.events[0].position;
        store
            .update_ticket(
                &id,
                Box::new(|t| {
                    t.modified += 1;
                    Ok(())
                }),
            )
            .await
            .unwrap()
            .unwrap();
        let read = store.feed_after(cursor, 10).await.unwrap();
        assert_eq!(summary(&read.events), [(id.as_str(), FeedKind::Updated)]);
        cursor = read.events[0].position;
    }
}
