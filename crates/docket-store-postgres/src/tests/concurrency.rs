//! Several server processes on one database: two `PgStore`s (two pools) play two nodes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use docket_core::notify::OutboxRow;
use docket_core::store::{CreateOutcome, CreateTicket, Dedupe, IdempotencyClaim, Store};
use tokio::sync::Barrier;

use super::{find, item, ticket, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_two_nodes_get_distinct_consecutive_numbers() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    let barrier = Arc::new(Barrier::new(100));
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = nodes[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .create_ticket(ticket(&format!("t{i}"), "concurrent create"))
                .await
                .unwrap()
                .unwrap()
                .num
        }));
    }
    let mut nums = Vec::new();
    for t in tasks {
        nums.push(t.await.unwrap());
    }
    nums.sort_unstable();
    assert_eq!(nums, (1..=100).collect::<Vec<_>>());
    // The same id from both nodes at once: one ticket, the other sees it taken.
    let (a, b) = tokio::join!(
        nodes[0].create_ticket(ticket("same", "x")),
        nodes[1].create_ticket(ticket("same", "x"))
    );
    let made: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(made.len(), 1);
    assert_eq!(nodes[0].ticket_count().await.unwrap(), 101);
    assert_eq!(find(&nodes[1], "concurrent").await.len(), 100);
    for n in nodes {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_on_two_nodes_never_share_a_row_and_never_split_a_group() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    // 50 groups of 1 to 4 rows, enqueued from both nodes.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for g in 0..50 {
        let grp = format!("upd:{g}");
        let rows = 1 + g % 4;
        let items: Vec<_> = (0..rows).map(|r| item(&grp, r as i64, None)).collect();
        nodes[g % 2].outbox_enqueue(items).await.unwrap();
        expected.insert(grp, rows);
    }
    let total: usize = expected.values().sum();
    let barrier = Arc::new(Barrier::new(4));
    let mut tasks = Vec::new();
    // Two claimers per node, all at once, in a loop until nothing is left.
    for w in 0..4 {
        let store = nodes[w % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut batches: Vec<Vec<OutboxRow>> = Vec::new();
            let mut idle = 0;
            let mut rounds = 0;
            while idle < 3 {
                rounds += 1;
                assert!(rounds < 10_000, "claims do not finish");
                let rows = store.outbox_claim(100, 1_000_000, 2).await.unwrap();
                if rows.is_empty() {
                    if store.outbox_next_due().await.unwrap().unwrap_or(i64::MAX) > 100 {
                        idle += 1;
                    }
                    tokio::task::yield_now().await;
                } else {
                    batches.push(rows);
                }
            }
            batches
        }));
    }
    let mut seen = HashSet::new();
    let mut claimed = 0;
    let mut workers_with_work = 0;
    for t in tasks {
        let batches = t.await.unwrap();
        workers_with_work += usize::from(!batches.is_empty());
        for batch in batches {
            let groups: BTreeSet<&str> = batch.iter().map(|r| r.grp.as_str()).collect();
            assert!(groups.len() <= 2, "at most `groups` groups per claim");
            for grp in groups {
                assert_eq!(
                    batch.iter().filter(|r| r.grp == grp).count(),
                    expected[grp],
                    "group {grp} claimed whole"
                );
            }
            for r in batch {
                assert!(seen.insert(r.id), "row {} claimed twice", r.id);
                assert_eq!(r.attempts, 1);
                claimed += 1;
            }
        }
    }
    assert_eq!(claimed, total, "every row claimed");
    assert!(workers_with_work >= 2, "the claimers ran concurrently");
    assert!(nodes[0]
        .outbox_claim(100, 2_000_000, 100)
        .await
        .unwrap()
        .is_empty());
    for n in nodes {
        n.close().await;
    }
}

fn dedupe_request(i: usize, key: &str, idempotency: Option<&str>) -> CreateTicket {
    let mut t = ticket(&format!("alert{i}"), "disk alert");
    t.dedupe_key = key.into();
    t.occurrences = 1;
    CreateTicket {
        ticket: t,
        dedupe: Some(Dedupe {
            key: key.into(),
            closed_statuses: vec!["closed".into(), "resolved".into()],
            categories: None,
            on_duplicate: Box::new(|t| {
                t.occurrences += 1;
                Ok(vec![item(&format!("upd:{}", t.id), 0, None)])
            }),
        }),
        idempotency: idempotency.map(|id| IdempotencyClaim {
            id: id.into(),
            now: 1000,
            expires: 5000,
        }),
        outbox: vec![item("new", 0, None)],
        staged_files: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_dedupe_creates_on_two_nodes_make_one_ticket() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    let barrier = Arc::new(Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = nodes[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .create_ticket_with(dedupe_request(i, "host1/disk", None))
                .await
                .unwrap()
        }));
    }
    let (mut created, mut deduplicated) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            CreateOutcome::Created(_) => created += 1,
            CreateOutcome::Deduplicated(_) => deduplicated += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, deduplicated), (1, 19));
    assert_eq!(nodes[0].ticket_count().await.unwrap(), 1);
    let page = nodes[1]
        .search_tickets(&super::request(
            "*",
            docket_core::store::SortField::Num,
            false,
        ))
        .await
        .unwrap();
    assert_eq!(page.rows[0].occurrences, 20);
    // One "new" row and one row per absorbed create, all in the create transactions.
    assert_eq!(nodes[0].outbox_count().await.unwrap(), 20);

    // A closed ticket no longer absorbs: the next create makes a new ticket.
    let id = page.rows[0].id.clone();
    nodes[0]
        .update_ticket(
            &id,
            Box::new(|t| {
                t.status = "closed".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert!(matches!(
        nodes[1]
            .create_ticket_with(dedupe_request(100, "host1/disk", None))
            .await
            .unwrap(),
        CreateOutcome::Created(_)
    ));
    // Scoped to categories the ticket is not in: not a candidate.
    let mut scoped = dedupe_request(101, "host1/disk", None);
    if let Some(d) = scoped.dedupe.as_mut() {
        d.categories = Some(BTreeSet::from(["ops".to_string()]));
    }
    assert!(matches!(
        nodes[1].create_ticket_with(scoped).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    for n in nodes {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_idempotent_creates_on_two_nodes_make_one_ticket_and_replay() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = nodes[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut req = dedupe_request(i, "", Some("caller:key1"));
            req.dedupe = None;
            req.ticket.dedupe_key = String::new();
            store.create_ticket_with(req).await.unwrap()
        }));
    }
    let mut created = Vec::new();
    let mut replayed = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            CreateOutcome::Created(t) => created.push(t.id),
            CreateOutcome::Replayed {
                ticket: Some(t),
                deduplicated: false,
            } => replayed.push(t.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(replayed.len(), 9);
    assert!(replayed.iter().all(|id| *id == created[0]));
    assert_eq!(nodes[0].ticket_count().await.unwrap(), 1);
    // Once expired, the key is used afresh (and its record replaced).
    let mut later = dedupe_request(50, "", Some("caller:key1"));
    later.dedupe = None;
    later.ticket.dedupe_key = String::new();
    if let Some(claim) = later.idempotency.as_mut() {
        claim.now = 6000;
        claim.expires = 9000;
    }
    assert!(matches!(
        nodes[1].create_ticket_with(later).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    let rec = nodes[0]
        .get_record(docket_core::store::RecordKind::Idempotency, "caller:key1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec["ticket"], "alert50");
    assert_eq!(rec["expires"], 9000);
    // The id of an existing ticket: IdTaken, nothing recorded for a new key.
    let mut taken = dedupe_request(50, "", Some("caller:key2"));
    taken.dedupe = None;
    assert!(matches!(
        nodes[1].create_ticket_with(taken).await.unwrap(),
        CreateOutcome::IdTaken
    ));
    assert!(nodes[0]
        .get_record(docket_core::store::RecordKind::Idempotency, "caller:key2")
        .await
        .unwrap()
        .is_none());
    for n in nodes {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_mutations_on_two_nodes_lose_no_update() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    nodes[0]
        .create_ticket(ticket("a", "counter"))
        .await
        .unwrap();
    nodes[0]
        .insert_record(
            docket_core::store::RecordKind::Meta,
            "counter",
            None,
            &serde_json::json!({"n": 0}),
        )
        .await
        .unwrap();
    let barrier = Arc::new(Barrier::new(40));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = nodes[i % 2].clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            if i % 2 == 0 {
                store
                    .update_ticket(
                        "a",
                        Box::new(move |t| {
                            t.tags.push(format!("tag{i}"));
                            Ok(())
                        }),
                    )
                    .await
                    .unwrap()
                    .unwrap();
            } else {
                store
                    .update_record(
                        docket_core::store::RecordKind::Meta,
                        "counter",
                        Box::new(|v| {
                            v["n"] = serde_json::json!(v["n"].as_i64().unwrap_or(0) + 1);
                            Ok(())
                        }),
                    )
                    .await
                    .unwrap()
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let t = nodes[1].ticket_by_id("a").await.unwrap().unwrap();
    assert_eq!(t.tags.len(), 20, "every concurrent ticket mutation kept");
    assert_eq!(find(&nodes[0], "tags:tag38").await, vec!["a"]);
    let rec = nodes[1]
        .get_record(docket_core::store::RecordKind::Meta, "counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec["n"], 20, "every concurrent record mutation kept");
    for n in nodes {
        n.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_counts_are_shared_by_the_nodes() {
    let db = TestDb::new().await;
    let nodes = [db.store().await, db.store().await];
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = nodes[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            store.count_request("key1", 100).await.unwrap().unwrap()
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        counts.push(t.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=30).collect::<Vec<u32>>(),
        "one count across both nodes"
    );
    assert_eq!(nodes[1].count_request("key2", 100).await.unwrap(), Some(1));
    // A new second starts a new window; a late request counts in the current one.
    assert_eq!(nodes[0].count_request("key1", 101).await.unwrap(), Some(1));
    assert_eq!(nodes[1].count_request("key1", 100).await.unwrap(), Some(2));
    for n in nodes {
        n.close().await;
    }
}
