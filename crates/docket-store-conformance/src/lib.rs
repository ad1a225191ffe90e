//! The behaviour every store backend owes the services, as one suite.
//!
//! Each test is an `async fn` over any [`Store`]; a backend instantiates all of them with
//! [`store_conformance!`], giving a function that opens a fresh, empty store (and a guard
//! that removes it afterwards). Backend-specific behaviour (SQLite's group commit, PostgreSQL
//! across two nodes, migrations and upgrades) stays in the backend's own tests.

mod feed;

use std::collections::BTreeSet;
use std::time::Duration;

use docket_core::compact_json;
use docket_core::model::Ticket;
use docket_core::model::{Change, Relation};
use docket_core::notify::{OutboxItem, OUTBOX_MAX_HOLD_SECS};
use docket_core::service::needs_presenting;
use docket_core::store::{
    CreateOutcome, CreateTicket, Dedupe, IdempotencyClaim, RecordKind, RowShape, SearchRequest,
    SortField, Store, StoredRow, TicketEvent, TicketEventKind, TicketRef,
};
use docket_core::Error;
use serde_json::{json, Value};
use tokio::sync::broadcast;

pub use feed::{
    a_read_right_after_a_write_has_its_event,
    every_ticket_write_is_in_the_feed_once_in_commit_order, feed_all,
    pruning_removes_old_events_and_raises_the_horizon,
    readers_racing_concurrent_writers_miss_and_repeat_nothing,
};

/// Instantiates every conformance test as a `#[tokio::test]` in the calling module.
/// `$fresh` is an `async fn() -> (Guard, S)`: a new empty store and whatever must outlive
/// it (a temporary directory, a test database).
#[macro_export]
macro_rules! store_conformance {
    ($fresh:path) => {
        $crate::store_conformance!(@each $fresh;
            numbers_are_unique_consecutive_and_never_reused,
            outbox_rows_commit_with_their_change_and_are_claimed_once,
            a_failed_write_leaves_no_ticket_index_or_outbox_row,
            automation_creates_replay_deduplicate_and_refuse_taken_ids,
            staged_files_are_finalised_for_the_resulting_ticket,
            concurrent_writes_with_failures_leave_the_others_intact,
            concurrent_edits_leave_each_ticket_its_last_text,
            bulk_imports_skip_known_and_repeated_ids_and_index_the_rest,
            numbered_imports_keep_numbers_and_move_the_counter,
            records_insert_find_update_expire_and_delete,
            ticket_writes_publish_events_in_commit_order,
            every_ticket_write_is_in_the_feed_once_in_commit_order,
            pruning_removes_old_events_and_raises_the_horizon,
            readers_racing_concurrent_writers_miss_and_repeat_nothing,
            a_read_right_after_a_write_has_its_event,
            compact_rows_are_the_stored_tickets_compacted_through_every_write,
        );
    };
    (@each $fresh:path; $($name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (guard, store) = $fresh().await;
                $crate::$name(store).await;
                drop(guard);
            }
        )*
    };
}

pub fn ticket(id: &str, subject: &str) -> Ticket {
    Ticket {
        id: id.into(),
        subject: subject.into(),
        status: "open".into(),
        kind: "task".into(),
        ..Default::default()
    }
}

pub fn item(grp: &str, not_before: i64, unique: Option<&str>) -> OutboxItem {
    OutboxItem {
        channel: "email".into(),
        kind: "updated".into(),
        ticket: "a".into(),
        grp: grp.into(),
        target: String::new(),
        payload: json!({}),
        not_before,
        unique_key: unique.map(str::to_string),
    }
}

/// The ids of the tickets matching `query`, by number.
pub async fn find(store: &dyn Store, query: &str) -> Vec<String> {
    let ctx = docket_query::LowerCtx {
        tz: jiff::tz::TimeZone::UTC,
        now: jiff::Timestamp::now(),
    };
    let page = store
        .search_tickets(&SearchRequest {
            filter: docket_query::compile(query, &ctx)
                .unwrap_or_else(|e| panic!("{query:?}: {}", e.message)),
            categories: None::<BTreeSet<String>>,
            sort_by: SortField::Num,
            descending: false,
            offset: 0,
            limit: 2000,
        })
        .await
        .unwrap();
    page.rows.into_iter().map(|t| t.id).collect()
}

/// Every ticket's row of a compact search, checked against its stored JSON: a row the store
/// hands over compact must be exactly `compact_json::compact` of it, and only for a ticket
/// that reads the same to every reader; any other row is the stored JSON itself. Returns
/// the ids (by number) of the tickets given compact.
pub async fn check_compact_rows(store: &dyn Store) -> Vec<String> {
    let request = SearchRequest {
        filter: docket_query::Filter::All,
        categories: None,
        sort_by: SortField::Num,
        descending: false,
        offset: 0,
        limit: 2000,
    };
    let page = store
        .search_rows(&request, RowShape::Compact)
        .await
        .unwrap();
    let full = store.search_stored(&request).await.unwrap();
    assert_eq!(page.rows.len(), full.rows.len());
    assert_eq!(page.total, full.total);
    let mut compact_ids = Vec::new();
    for (row, stored) in page.rows.iter().zip(&full.rows) {
        match row {
            StoredRow::Compact(text) => {
                assert!(
                    !needs_presenting(stored, false, true),
                    "given compact, but it reads differently to some reader: {stored}"
                );
                assert_eq!(
                    text,
                    &compact_json::compact(stored).unwrap(),
                    "for {stored}"
                );
                let t: Ticket = serde_json::from_str(stored).unwrap();
                compact_ids.push(t.id);
            }
            StoredRow::Full(text) => assert_eq!(text, stored),
        }
    }
    compact_ids
}

/// The compact rows a store keeps ready stay exactly the compact form of each ticket as it
/// is written, edited (also into and out of needing presentation) and deleted.
pub async fn compact_rows_are_the_stored_tickets_compacted_through_every_write<S: Store>(store: S) {
    let comment = |body: &str, internal: bool| Change {
        id: format!("c-{body}"),
        kind: "comment".into(),
        username: "ann".into(),
        date: 1_700_000_000,
        body: Some(body.into()),
        internal,
        ..Default::default()
    };
    let mut plain = ticket("plain", "Disk full on db1");
    plain.body = "A body with \"quotes\", a \\ backslash,\ttab and\nlines".into();
    let mut unicode = ticket("unicode", "Ünïcode ✓ — 日本語 \u{1F525} \u{7f}\u{1}");
    unicode.body = "é".repeat(3000);
    unicode.tags = vec!["flag".into(), "important".into()];
    unicode.changes = vec![
        comment("first", false),
        Change {
            id: "c-status".into(),
            kind: "change".into(),
            username: "bob".into(),
            date: 1_700_000_001,
            key: Some("status".into()),
            value: Some(json!({"from": "open", "to": 2.5e-3, "n": [1, -0.0, 1e300]})),
            ..Default::default()
        },
    ];
    let mut noted = ticket("noted", "Has an internal note");
    noted.changes = vec![comment("secret", true)];
    let mut related = ticket("related", "Has a relation");
    related.relations = vec![Relation {
        kind: "relates".into(),
        num: 1,
        id: "plain".into(),
        ..Default::default()
    }];
    let empty = Ticket {
        id: "empty".into(),
        ..Default::default()
    };
    for t in [plain, unicode, noted, related, empty] {
        store.create_ticket(t).await.unwrap().unwrap();
    }
    let given = check_compact_rows(&store).await;
    assert!(!given.contains(&"noted".to_string()) && !given.contains(&"related".to_string()));

    // Edits: a comment and a new subject; an internal note added; the note and the relation
    // taken away again; a deletion.
    type Edit = (&'static str, fn(&mut Ticket));
    let edits: [Edit; 4] = [
        ("plain", |t| {
            t.subject = "Disk full on db2".into();
            t.changes.push(Change {
                id: "c-more".into(),
                kind: "comment".into(),
                body: Some("more".into()),
                ..Default::default()
            });
        }),
        ("unicode", |t| {
            t.changes.push(Change {
                id: "c-hidden".into(),
                kind: "comment".into(),
                body: Some("hidden".into()),
                internal: true,
                ..Default::default()
            })
        }),
        ("noted", |t| t.changes.clear()),
        ("related", |t| t.relations.clear()),
    ];
    for (id, edit) in edits {
        store
            .update_ticket(
                id,
                Box::new(move |t| {
                    edit(t);
                    Ok(())
                }),
            )
            .await
            .unwrap()
            .unwrap();
    }
    store
        .delete_ticket("empty", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    let given = check_compact_rows(&store).await;
    assert!(!given.contains(&"unicode".to_string()));
    let stored = store
        .stored_ticket(TicketRef::Id("plain"))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.json.contains("db2"));
}

/// A plain automation create of `t` (no dedupe, no idempotency).
fn plain(t: Ticket) -> CreateTicket {
    CreateTicket {
        ticket: t,
        dedupe: None,
        idempotency: None,
        outbox: Vec::new(),
        staged_files: Vec::new(),
    }
}

/// A `File` record of a staged upload, as the files service writes it.
fn staged_file(id: &str) -> Value {
    json!({"id": id, "path": format!("files/{id}.txt"), "filename": "a.txt", "size": 1,
           "ticket": "", "expires": 100, "pending": true, "final_expires": 9_000_000_000i64})
}

pub async fn numbers_are_unique_consecutive_and_never_reused<S: Store>(store: S) {
    let a = store.create_ticket(ticket("a", "disk full")).await.unwrap();
    let b = store
        .create_ticket(ticket("b", "network down"))
        .await
        .unwrap();
    assert_eq!((a.unwrap().num, b.unwrap().num), (1, 2));
    assert!(
        store
            .create_ticket(ticket("a", "dup"))
            .await
            .unwrap()
            .is_none(),
        "a taken id is refused"
    );
    store
        .delete_ticket("b", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    let c = store.create_ticket(ticket("c", "disk slow")).await.unwrap();
    assert_eq!(c.unwrap().num, 3, "a deleted ticket's number is not reused");
    assert!(store.ticket_by_id("b").await.unwrap().is_none());
    assert_eq!(store.ticket_by_num(3).await.unwrap().unwrap().id, "c");
    assert_eq!(
        store
            .tickets_by_ids(&["c".into(), "b".into(), "a".into()])
            .await
            .unwrap()
            .iter()
            .map(|t| t.as_ref().map(|t| t.num))
            .collect::<Vec<_>>(),
        vec![Some(3), None, Some(1)]
    );
    assert_eq!(find(&store, "disk").await, vec!["a", "c"]);
    assert_eq!(store.ticket_count().await.unwrap(), 2);
    // An update cannot change a ticket's identity, and the index follows it.
    let changed = store
        .update_ticket(
            "a",
            Box::new(|t| {
                t.id = "stolen".into();
                t.num = 99;
                t.subject = "printer jam".into();
                Ok(())
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!((changed.id.as_str(), changed.num), ("a", 1));
    assert_eq!(find(&store, "printer").await, vec!["a"]);
    assert_eq!(find(&store, "disk").await, vec!["c"]);
    // Rebuilding the index from the records changes no answer.
    let (mut after, mut done) = (0, 0);
    while let Some((last, n)) = store.reindex_batch(after, 1).await.unwrap() {
        (after, done) = (last, done + n);
    }
    assert_eq!(done, 2);
    assert_eq!(find(&store, "disk").await, vec!["c"]);
    assert_eq!(find(&store, "status:open").await, vec!["a", "c"]);
}

pub async fn outbox_rows_commit_with_their_change_and_are_claimed_once<S: Store>(store: S) {
    store.create_ticket(ticket("a", "disk full")).await.unwrap();
    store
        .update_ticket_out(
            "a",
            Box::new(|t| {
                t.subject = "changed".into();
                Ok(vec![item("g1", 100, None), item("g2", 500, None)])
            }),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .update_ticket_out("a", Box::new(|_| Ok(vec![item("g1", 300, None)])))
        .await
        .unwrap();
    assert_eq!(store.outbox_list(false, 10).await.unwrap().len(), 3);
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
        .outbox_sent(again[1..].iter().map(|r| r.id).collect(), 1001)
        .await
        .unwrap();
    // A failure releases the row for a retry at the given time.
    store
        .outbox_failed(vec![again[0].id], "smtp down".into(), 2500)
        .await
        .unwrap();
    assert!(store.outbox_claim(2400, 3000, 10).await.unwrap().is_empty());
    let retried = store.outbox_claim(2500, 3000, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("smtp down"));
    store.outbox_sent(vec![retried[0].id], 2600).await.unwrap();
    assert!(
        store.outbox_claim(5000, 6000, 10).await.unwrap().is_empty(),
        "sent rows never come back"
    );
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
    assert_eq!(store.outbox_sent_since("email", 1000).await.unwrap(), 3);
    assert_eq!(store.outbox_sent_since("email", 2000).await.unwrap(), 1);
    assert!(store.outbox_list(true, 10).await.unwrap().is_empty());
    // Changes that never stop are still sent, at most the hold time after the first.
    for t in [7000, 7200, 7400, 7600, 7800] {
        store
            .outbox_enqueue(vec![item("busy", t, None)])
            .await
            .unwrap();
    }
    assert!(store.outbox_claim(7500, 7600, 10).await.unwrap().is_empty());
    let held = store
        .outbox_claim(7000 + OUTBOX_MAX_HOLD_SECS, 9000, 10)
        .await
        .unwrap();
    assert_eq!(held.len(), 5);
    // A unique key is queued once, ever.
    let once = vec![item("o", 0, Some("k")), item("o", 0, Some("k"))];
    assert_eq!(store.outbox_enqueue(once).await.unwrap(), 1);
    let again = vec![item("o", 0, Some("k"))];
    assert_eq!(store.outbox_enqueue(again).await.unwrap(), 0);
}

/// A write that fails after it wrote rows (here: a create whose staged upload has gone,
/// noticed after the ticket and its outbox rows were written) leaves none of them behind.
pub async fn a_failed_write_leaves_no_ticket_index_or_outbox_row<S: Store>(store: S) {
    let mut request = plain(ticket("a", "half written"));
    request.outbox = vec![item("created", 0, None)];
    request.staged_files = vec!["gone".into()];
    request.idempotency = Some(IdempotencyClaim {
        id: "key".into(),
        now: 1,
        expires: i64::MAX,
    });
    let err = store.create_ticket_with(request).await.unwrap_err();
    assert!(matches!(err, Error::File(_)), "{err:?}");
    assert!(store.ticket_by_id("a").await.unwrap().is_none());
    assert!(find(&store, "written").await.is_empty());
    assert!(store.outbox_list(false, 10).await.unwrap().is_empty());
    assert!(store
        .get_record(RecordKind::Idempotency, "key")
        .await
        .unwrap()
        .is_none());
    // A mutation's error writes nothing either, and its outbox rows never exist.
    store.create_ticket(ticket("b", "kept")).await.unwrap();
    let failed = store
        .update_ticket_out(
            "b",
            Box::new(|t| {
                t.subject = "changed".into();
                Err(Error::Ticket("no".into()))
            }),
        )
        .await;
    assert!(matches!(failed, Err(Error::Ticket(_))));
    assert_eq!(
        store.ticket_by_id("b").await.unwrap().unwrap().subject,
        "kept"
    );
    let refused = store
        .delete_ticket_out("b", Box::new(|_| Err(Error::Access("no".into()))))
        .await;
    assert!(matches!(refused, Err(Error::Access(_))));
    assert!(store.ticket_by_id("b").await.unwrap().is_some());
    assert!(store.outbox_list(false, 10).await.unwrap().is_empty());
    // The delete that goes through takes its ticket out of search, with its outbox row.
    store
        .delete_ticket_out("b", Box::new(|_| Ok(vec![item("deleted", 0, None)])))
        .await
        .unwrap()
        .unwrap();
    assert!(find(&store, "kept").await.is_empty());
    assert_eq!(store.outbox_list(false, 10).await.unwrap().len(), 1);
}

fn alert(
    id: &str,
    key: Option<&str>,
    closed: &[&str],
    categories: Option<&[&str]>,
) -> CreateTicket {
    let mut t = ticket(id, "disk alert");
    t.dedupe_key = "disk".into();
    t.category = "prod".into();
    CreateTicket {
        ticket: t,
        dedupe: Some(Dedupe {
            key: "disk".into(),
            closed_statuses: closed.iter().map(|s| s.to_string()).collect(),
            categories: categories.map(|c| c.iter().map(|s| s.to_string()).collect()),
            on_duplicate: Box::new(|t| {
                t.occurrences += 1;
                Ok(vec![item("occurred", 0, None)])
            }),
        }),
        idempotency: key.map(|k| IdempotencyClaim {
            id: k.into(),
            now: 1000,
            expires: 2000,
        }),
        outbox: vec![item("created", 0, None)],
        staged_files: Vec::new(),
    }
}

pub async fn automation_creates_replay_deduplicate_and_refuse_taken_ids<S: Store>(store: S) {
    let first = store.create_ticket_with(alert("a", Some("k1"), &["closed"], None));
    let CreateOutcome::Created(a) = first.await.unwrap() else {
        panic!("the first alert makes a ticket")
    };
    assert_eq!(a.num, 1);
    // Same dedupe key, other idempotency key: absorbed by the open ticket.
    let hit = store.create_ticket_with(alert("b", Some("k2"), &["closed"], None));
    let CreateOutcome::Deduplicated(hit) = hit.await.unwrap() else {
        panic!("the second alert is absorbed")
    };
    assert_eq!((hit.id.as_str(), hit.occurrences), ("a", 1));
    // The first idempotency key replays its result and writes nothing.
    let replay = store.create_ticket_with(alert("c", Some("k1"), &["closed"], None));
    match replay.await.unwrap() {
        CreateOutcome::Replayed {
            ticket: Some(t),
            deduplicated: false,
        } => assert_eq!(t.id, "a"),
        other => panic!("expected a replay of a, got {other:?}"),
    }
    let replay = store.create_ticket_with(alert("c", Some("k2"), &["closed"], None));
    assert!(matches!(
        replay.await.unwrap(),
        CreateOutcome::Replayed {
            deduplicated: true,
            ..
        }
    ));
    assert!(store.ticket_by_id("c").await.unwrap().is_none());
    // One row from the create, one from the dedupe hit; none from the replays.
    let kinds: BTreeSet<String> = store
        .outbox_list(false, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.grp)
        .collect();
    assert_eq!(kinds, BTreeSet::from(["created".into(), "occurred".into()]));
    assert_eq!(store.outbox_list(false, 10).await.unwrap().len(), 2);
    // A caller limited to other categories never lands on the prod ticket.
    let scoped = store.create_ticket_with(alert("d", None, &["closed"], Some(&["dev"])));
    assert!(matches!(scoped.await.unwrap(), CreateOutcome::Created(t) if t.id == "d"));
    // A closed ticket absorbs nothing: "a" and "d" closed, the next alert is new.
    for id in ["a", "d"] {
        store
            .update_ticket(
                id,
                Box::new(|t| {
                    t.status = "closed".into();
                    Ok(())
                }),
            )
            .await
            .unwrap();
    }
    let fresh = store.create_ticket_with(alert("e", None, &["closed"], None));
    assert!(matches!(fresh.await.unwrap(), CreateOutcome::Created(t) if t.id == "e"));
    // A taken id.
    let taken = store.create_ticket_with(plain(ticket("e", "again")));
    assert!(matches!(taken.await.unwrap(), CreateOutcome::IdTaken));
    // An expired idempotency key may be used afresh (its record is replaced).
    let mut later = alert("f", Some("k1"), &["closed", "open"], None);
    if let Some(claim) = later.idempotency.as_mut() {
        (claim.now, claim.expires) = (3000, 4000);
    }
    assert!(
        matches!(store.create_ticket_with(later).await.unwrap(), CreateOutcome::Created(t) if t.id == "f")
    );
    let rec = store
        .get_record(RecordKind::Idempotency, "k1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (rec["ticket"].as_str(), rec["expires"].as_i64()),
        (Some("f"), Some(4000))
    );
}

pub async fn staged_files_are_finalised_for_the_resulting_ticket<S: Store>(store: S) {
    for id in ["f1", "f2", "f3"] {
        let path = format!("files/{id}.txt");
        let inserted = store
            .insert_record(RecordKind::File, id, Some(&path), &staged_file(id))
            .await
            .unwrap();
        assert!(inserted);
    }
    let mut request = alert("a", None, &["closed"], None);
    request.staged_files = vec!["f1".into(), "f2".into()];
    assert!(matches!(
        store.create_ticket_with(request).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    // A dedupe hit finalises its files for the ticket that absorbed it.
    let mut request = alert("b", None, &["closed"], None);
    request.staged_files = vec!["f3".into()];
    assert!(matches!(
        store.create_ticket_with(request).await.unwrap(),
        CreateOutcome::Deduplicated(_)
    ));
    for id in ["f1", "f2", "f3"] {
        let rec = store
            .get_record(RecordKind::File, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec["ticket"], "a", "{id}");
        assert_eq!(rec["pending"], false, "{id}");
        assert_eq!(rec["expires"], 9_000_000_000i64, "{id}");
    }
    let of_a = store
        .records_of_ticket(RecordKind::File, "a")
        .await
        .unwrap();
    assert_eq!(of_a.len(), 3);
}

pub async fn concurrent_writes_with_failures_leave_the_others_intact<S: Store + Clone>(store: S) {
    store
        .create_ticket(ticket("base", "base ticket"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                // Writes a ticket row, an outbox row and an index, then fails.
                let mut request = plain(ticket(&format!("poison{i}"), "poisoned write"));
                request.outbox = vec![item("poison", 0, None)];
                request.staged_files = vec!["missing".into()];
                store.create_ticket_with(request).await.map(|_| -1)
            } else {
                store
                    .create_ticket(ticket(&format!("t{i}"), "grouped write"))
                    .await
                    .map(|t| t.map_or(-1, |t| t.num))
            }
        }));
    }
    let mut nums = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(num) if i % 3 != 0 => nums.push(num),
            Err(Error::File(_)) if i % 3 == 0 => {}
            other => panic!("write {i}: unexpected {other:?}"),
        }
    }
    nums.sort_unstable();
    nums.dedup();
    assert_eq!(nums.len(), 40, "40 creates, 40 distinct numbers");
    assert!(find(&store, "poisoned").await.is_empty());
    assert_eq!(find(&store, "grouped").await.len(), 40);
    assert!(store.outbox_list(false, 100).await.unwrap().is_empty());
    assert_eq!(store.ticket_count().await.unwrap(), 41);
}

/// Many edits of the same tickets at once (on SQLite, several in one group transaction,
/// whose full-text rows are written together at its end): the text search finds each ticket
/// by its last subject only, a failed edit changes nothing, and a ticket deleted among edits
/// is found by none of its words.
pub async fn concurrent_edits_leave_each_ticket_its_last_text<S: Store + Clone>(store: S) {
    for id in ["kept", "gone"] {
        store
            .create_ticket(ticket(id, &format!("first{id} subject")))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = if i % 2 == 0 { "kept" } else { "gone" };
            if i == 21 {
                return store
                    .delete_ticket("gone", Box::new(|_| Ok(())))
                    .await
                    .map(drop);
            }
            store
                .update_ticket(
                    id,
                    Box::new(move |t| {
                        t.subject = format!("word{i} subject");
                        t.body = format!("body{i}");
                        if i % 5 == 0 {
                            // Writes nothing: the edit fails after changing the ticket.
                            return Err(Error::Ticket("refused".into()));
                        }
                        Ok(())
                    }),
                )
                .await
                .map(drop)
        }));
    }
    for task in tasks {
        // Edits of "gone" after its delete find no ticket; refused edits fail: both fine.
        let _ = task.await.unwrap();
    }
    let kept = store.ticket_by_id("kept").await.unwrap().unwrap();
    assert!(store.ticket_by_id("gone").await.unwrap().is_none());
    let last = kept
        .subject
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_ne!(last, "firstkept", "some edit of kept succeeded");
    assert_eq!(find(&store, &last).await, vec!["kept".to_string()]);
    assert_eq!(
        find(&store, &last.replace("word", "body")).await,
        vec!["kept".to_string()]
    );
    for i in 0..30 {
        let word = format!("word{i}");
        if word != last {
            assert!(find(&store, &word).await.is_empty(), "{word} still found");
            assert!(
                find(&store, &format!("body{i}")).await.is_empty(),
                "body{i} still found"
            );
        }
    }
    assert!(find(&store, "firstkept").await.is_empty());
    assert!(find(&store, "firstgone").await.is_empty());
    assert_eq!(find(&store, "subject").await, vec!["kept".to_string()]);
}

pub async fn bulk_imports_skip_known_and_repeated_ids_and_index_the_rest<S: Store>(store: S) {
    store.create_ticket(ticket("a", "disk full")).await.unwrap();
    // More than one multi-row statement's worth, with a known id and a repeat inside.
    let mut batch = vec![ticket("a", "again"), ticket("b", "network down")];
    batch.push(ticket("b", "repeated id"));
    for i in 0..1200 {
        let mut t = ticket(&format!("bulk{i}"), &format!("bulk ticket {i}"));
        t.tags = vec!["flag".into()];
        batch.push(t);
    }
    assert_eq!(store.import_tickets(batch).await.unwrap(), 1201);
    assert_eq!(store.ticket_count().await.unwrap(), 1202);
    assert_eq!(
        store.ticket_by_id("a").await.unwrap().unwrap().subject,
        "disk full"
    );
    let b = store.ticket_by_id("b").await.unwrap().unwrap();
    assert_eq!((b.num, b.subject.as_str()), (2, "network down"));
    assert_eq!(
        store.ticket_by_num(1202).await.unwrap().unwrap().id,
        "bulk1199"
    );
    assert_eq!(find(&store, "network").await, vec!["b"]);
    assert_eq!(find(&store, "tags:flag bulk").await.len(), 1200);
    // Numbers go on after the bulk ones.
    let next = store.create_ticket(ticket("z", "after")).await.unwrap();
    assert_eq!(next.unwrap().num, 1203);
}

pub async fn numbered_imports_keep_numbers_and_move_the_counter<S: Store>(store: S) {
    store.create_ticket(ticket("a", "first")).await.unwrap();
    let numbered = |id: &str, num: i64| Ticket {
        num,
        ..ticket(id, "imported")
    };
    // A known id, a known number and a repeat are skipped.
    let batch = vec![
        numbered("a", 50),
        numbered("x", 1),
        numbered("b", 7),
        numbered("c", 40),
        numbered("c", 41),
    ];
    assert_eq!(store.import_numbered(batch).await.unwrap(), 2);
    assert_eq!(store.ticket_by_num(7).await.unwrap().unwrap().id, "b");
    assert_eq!(store.ticket_by_num(40).await.unwrap().unwrap().id, "c");
    assert_eq!(find(&store, "imported").await, vec!["b", "c"]);
    let next = store.create_ticket(ticket("d", "after")).await.unwrap();
    assert_eq!(next.unwrap().num, 41);
}

pub async fn records_insert_find_update_expire_and_delete<S: Store>(store: S) {
    let key = |id: &str, expires: i64| json!({"id": id, "expires": expires, "ticket": "t1"});
    assert!(store
        .insert_record(RecordKind::Session, "s1", Some("hash1"), &key("s1", 100))
        .await
        .unwrap());
    assert!(
        !store
            .insert_record(RecordKind::Session, "s1", Some("other"), &key("s1", 100))
            .await
            .unwrap(),
        "a taken id"
    );
    assert!(
        !store
            .insert_record(RecordKind::Session, "s9", Some("hash1"), &key("s9", 100))
            .await
            .unwrap(),
        "a taken lookup key"
    );
    // Kinds are separate namespaces.
    assert!(store
        .insert_record(RecordKind::Tag, "s1", None, &json!({"id": "s1"}))
        .await
        .unwrap());
    store
        .insert_record(RecordKind::Session, "s2", Some("hash2"), &key("s2", 300))
        .await
        .unwrap();
    store
        .insert_record(RecordKind::Session, "s3", None, &key("s3", 200))
        .await
        .unwrap();
    assert_eq!(
        store
            .find_record(RecordKind::Session, "hash2")
            .await
            .unwrap()
            .unwrap()["id"],
        "s2"
    );
    assert!(store
        .find_record(RecordKind::Tag, "hash2")
        .await
        .unwrap()
        .is_none());
    let ids = |v: Vec<Value>| {
        v.iter()
            .map(|r| r["id"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_records(RecordKind::Session).await.unwrap()),
        ["s1", "s2", "s3"]
    );
    let updated = store
        .update_record(
            RecordKind::Session,
            "s1",
            Box::new(|v| {
                v["expires"] = json!(400);
                Ok(())
            }),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated["expires"], 400);
    // A failed mutation changes nothing; a missing record is None.
    assert!(store
        .update_record(
            RecordKind::Session,
            "s1",
            Box::new(|_| Err(Error::Api("no".into())))
        )
        .await
        .is_err());
    assert!(store
        .update_record(RecordKind::Session, "nope", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .is_none());
    // The lookup key stays with the record through an update.
    assert_eq!(
        store
            .find_record(RecordKind::Session, "hash1")
            .await
            .unwrap()
            .unwrap()["expires"],
        400
    );
    // Expiry: oldest first, then purged.
    assert_eq!(
        ids(store
            .expired_records(RecordKind::Session, 350, 10)
            .await
            .unwrap()),
        ["s3", "s2"]
    );
    assert_eq!(
        ids(store
            .expired_records(RecordKind::Session, 350, 1)
            .await
            .unwrap()),
        ["s3"]
    );
    assert_eq!(
        store
            .records_of_ticket(RecordKind::Session, "t1")
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        store.purge_expired(RecordKind::Session, 350).await.unwrap(),
        2
    );
    assert_eq!(
        ids(store.list_records(RecordKind::Session).await.unwrap()),
        ["s1"]
    );
    assert!(store
        .delete_record(RecordKind::Session, "s1")
        .await
        .unwrap());
    assert!(!store
        .delete_record(RecordKind::Session, "s1")
        .await
        .unwrap());
    assert!(store
        .get_record(RecordKind::Tag, "s1")
        .await
        .unwrap()
        .is_some());
}

async fn next_event(rx: &mut broadcast::Receiver<TicketEvent>) -> TicketEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("a ticket event")
}

pub async fn ticket_writes_publish_events_in_commit_order<S: Store>(store: S) {
    use TicketEventKind::{Created, Deleted, Updated};
    let mut rx = store.ticket_events();
    // A subscriber that joined just now may miss writes of the first moments (PostgreSQL's
    // listener connects in the background): wait until one event comes through.
    store.create_ticket(ticket("probe", "probe")).await.unwrap();
    assert_eq!(next_event(&mut rx).await.id, "probe");
    let mut a = ticket("a", "disk full");
    a.modified = 1000;
    store.create_ticket(a).await.unwrap().unwrap();
    store
        .update_ticket(
            "a",
            Box::new(|t| {
                t.modified = 2000;
                Ok(())
            }),
        )
        .await
        .unwrap();
    store
        .update_ticket_out(
            "a",
            Box::new(|t| {
                t.modified = 3000;
                Ok(vec![item("g", 0, None)])
            }),
        )
        .await
        .unwrap();
    // Writes that do not happen announce nothing.
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
    assert!(store
        .delete_ticket("a", Box::new(|_| Err(Error::Ticket("kept".into()))))
        .await
        .is_err());
    let mut poisoned = plain(ticket("p", "poison"));
    poisoned.staged_files = vec!["missing".into()];
    assert!(store.create_ticket_with(poisoned).await.is_err());
    store
        .insert_record(RecordKind::Tag, "x", None, &json!({"id": "x"}))
        .await
        .unwrap();
    // A bulk import announces nothing.
    store
        .import_tickets(vec![ticket("bulk", "x")])
        .await
        .unwrap();
    store
        .delete_ticket("a", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    let hit = alert("d", None, &[], None);
    store.create_ticket_with(hit).await.unwrap();
    store
        .create_ticket_with(alert("e", None, &[], None))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..6 {
        let e = next_event(&mut rx).await;
        got.push((e.id, e.kind, e.modified));
    }
    // (A failed create may use up a number on PostgreSQL, whose sequences ignore rollbacks,
    // so only the order of ids and kinds is compared.)
    assert_eq!(
        got.iter()
            .map(|(id, kind, _)| (id.as_str(), *kind))
            .collect::<Vec<_>>(),
        vec![
            ("a", Created),
            ("a", Updated),
            ("a", Updated),
            ("a", Deleted),
            ("d", Created),
            ("d", Updated),
        ]
    );
    assert_eq!(
        got[..3].iter().map(|e| e.2).collect::<Vec<_>>(),
        vec![1000, 2000, 3000]
    );
    // Nothing else: the next write's event is the next one heard.
    store
        .update_ticket("bulk", Box::new(|_| Ok(())))
        .await
        .unwrap();
    let e = next_event(&mut rx).await;
    assert_eq!((e.id.as_str(), e.kind), ("bulk", Updated));
}
