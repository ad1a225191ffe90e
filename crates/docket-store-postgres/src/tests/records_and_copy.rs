//! Records, ticket reads, import and the exact-copy API; record behaviour is compared with
//! the SQLite store step by step.

use docket_core::notify::OutboxRow;
use docket_core::store::{RecordKind, Store};
use docket_core::Error;
use docket_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Value};

use super::{find, item, ticket, TestDb};

async fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
        .await
        .unwrap();
    (dir, store)
}

/// The same record calls on both stores give the same answers.
async fn record_script(s: &dyn Store) -> Vec<Value> {
    let mut out = Vec::new();
    let k = RecordKind::File;
    let rows = [
        (
            "f3",
            Some("files/t1/a"),
            json!({"id": "f3", "ticket": "t1", "expires": 50}),
        ),
        (
            "f1",
            Some("files/t1/b"),
            json!({"id": "f1", "ticket": "t1", "expires": 10.5}),
        ),
        (
            "F2",
            Some("files/t2/c"),
            json!({"id": "F2", "ticket": "t2", "expires": 10}),
        ),
        ("f4", None, json!({"id": "f4", "ticket": 7, "expires": "5"})),
        (
            "f5",
            None,
            json!({"id": "f5", "ticket": "t1", "expires": true}),
        ),
        ("f6", None, json!({"id": "f6", "ticket": "t1"})),
        (
            "f7",
            None,
            json!({"id": "f7", "ticket": "t2", "expires": 10, "log": "a\u{0}b"}),
        ),
        ("f8", None, json!({"id": "f8", "expires": null})),
    ];
    for (id, lookup, data) in &rows {
        out.push(json!(s.insert_record(k, id, *lookup, data).await.unwrap()));
    }
    // Duplicate id, duplicate lookup.
    out.push(json!(s
        .insert_record(k, "f1", None, &json!({"x": 1}))
        .await
        .unwrap()));
    out.push(json!(s
        .insert_record(k, "f9", Some("files/t1/a"), &json!({"x": 1}))
        .await
        .unwrap()));
    // The same id under another kind is another record.
    out.push(json!(s
        .insert_record(
            RecordKind::Tag,
            "f1",
            Some("files/t1/a"),
            &json!({"tag": 1})
        )
        .await
        .unwrap()));
    out.push(json!(s.list_records(k).await.unwrap()));
    out.push(json!(s.get_record(k, "f7").await.unwrap()));
    out.push(json!(s.get_record(k, "nope").await.unwrap()));
    out.push(json!(s.find_record(k, "files/t2/c").await.unwrap()));
    out.push(json!(s.find_record(k, "nope").await.unwrap()));
    out.push(json!(s.records_of_ticket(k, "t1").await.unwrap()));
    out.push(json!(s.records_of_ticket(k, "7").await.unwrap()));
    out.push(json!(s.expired_records(k, 10, 100).await.unwrap()));
    out.push(json!(s.expired_records(k, 60, 3).await.unwrap()));
    out.push(json!(s.expired_records(k, 60, 100).await.unwrap()));
    // A failing mutation changes nothing; a good one is written (and its fields re-read).
    let failed = s
        .update_record(
            k,
            "f3",
            Box::new(|v| {
                v["expires"] = json!(1);
                Err(Error::File("no".into()))
            }),
        )
        .await;
    out.push(json!(failed.is_err()));
    out.push(json!(s
        .update_record(
            k,
            "f3",
            Box::new(|v| {
                v["expires"] = json!(1);
                v["ticket"] = json!("t9");
                Ok(())
            })
        )
        .await
        .unwrap()));
    out.push(json!(s
        .update_record(k, "nope", Box::new(|_| Ok(())))
        .await
        .unwrap()));
    out.push(json!(s.records_of_ticket(k, "t9").await.unwrap()));
    out.push(json!(s.expired_records(k, 10, 100).await.unwrap()));
    out.push(json!(s.purge_expired(k, 10).await.unwrap()));
    out.push(json!(s.list_records(k).await.unwrap()));
    out.push(json!(s.delete_record(k, "f6").await.unwrap()));
    out.push(json!(s.delete_record(k, "f6").await.unwrap()));
    out.push(json!(s.list_records(k).await.unwrap()));
    out.push(json!(s.list_records(RecordKind::Tag).await.unwrap()));
    out
}

#[tokio::test]
async fn records_behave_as_in_the_sqlite_store() {
    let db = TestDb::new().await;
    let pg = db.store().await;
    let (_dir, lite) = sqlite().await;
    let expected = record_script(&lite).await;
    let got = record_script(&pg).await;
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "step {i}");
    }
    assert_eq!(got.len(), expected.len());
    // Keys PostgreSQL text cannot hold are simply absent.
    assert!(pg
        .get_record(RecordKind::File, "a\0b")
        .await
        .unwrap()
        .is_none());
    assert!(pg
        .find_record(RecordKind::File, "a\0b")
        .await
        .unwrap()
        .is_none());
    assert!(pg.ticket_by_id("a\0b").await.unwrap().is_none());
    assert_eq!(pg.record_count(RecordKind::File).await.unwrap(), 3);
    pg.close().await;
    lite.close().await;
}

#[tokio::test]
async fn ticket_reads_and_import() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store.create_ticket(ticket("a", "alpha")).await.unwrap();
    store.create_ticket(ticket("b", "beta")).await.unwrap();
    let got = store
        .tickets_by_ids(&[
            "b".into(),
            "zz".into(),
            "a".into(),
            "b".into(),
            "x\0".into(),
        ])
        .await
        .unwrap();
    let ids: Vec<Option<String>> = got.into_iter().map(|t| t.map(|t| t.id)).collect();
    assert_eq!(
        ids,
        vec![
            Some("b".into()),
            None,
            Some("a".into()),
            Some("b".into()),
            None
        ]
    );
    assert_eq!(store.ticket_by_num(2).await.unwrap().unwrap().id, "b");
    assert!(store.ticket_by_num(3).await.unwrap().is_none());
    // Existing ids and repeats within the batch are skipped; the rest get new numbers.
    let batch = vec![
        ticket("a", "again"),
        ticket("c", "gamma ray"),
        ticket("d", "delta ray"),
        ticket("c", "gamma twice"),
    ];
    assert_eq!(store.import_tickets(batch).await.unwrap(), 2);
    assert_eq!(store.ticket_by_id("c").await.unwrap().unwrap().num, 3);
    assert_eq!(store.ticket_by_id("d").await.unwrap().unwrap().num, 4);
    assert_eq!(
        store.ticket_by_id("a").await.unwrap().unwrap().subject,
        "alpha"
    );
    assert_eq!(find(&store, "ray").await, vec!["c", "d"]);
    assert_eq!(store.import_tickets(Vec::new()).await.unwrap(), 0);
    // Deleting returns the ticket and removes it from the index.
    let gone = store
        .delete_ticket("c", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.num, 3);
    assert!(store
        .delete_ticket("c", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .is_none());
    let refused = store
        .delete_ticket("d", Box::new(|_| Err(Error::Access("no".into()))))
        .await;
    assert!(matches!(refused, Err(Error::Access(_))));
    assert_eq!(find(&store, "ray").await, vec!["d"]);
    // delete_ticket_out writes its outbox rows with the delete.
    store
        .delete_ticket_out("d", Box::new(|_| Ok(vec![item("del", 0, None)])))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.outbox_count().await.unwrap(), 1);
    assert!(find(&store, "ray").await.is_empty());
    store.close().await;
}

#[tokio::test]
async fn exact_copies_are_idempotent_and_move_the_sequences() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut tickets = Vec::new();
    for (num, id) in [(3, "c"), (7, "g"), (5, "e")] {
        let mut t = ticket(id, &format!("copied ticket {id}"));
        t.num = num;
        t.tags = vec!["moved".into()];
        tickets.push(t);
    }
    assert_eq!(store.copy_tickets(tickets.clone()).await.unwrap(), 3);
    assert_eq!(store.copy_tickets(tickets.clone()).await.unwrap(), 0);
    // A number or id clash is skipped too.
    let mut clash = ticket("other", "x");
    clash.num = 7;
    assert_eq!(store.copy_tickets(vec![clash]).await.unwrap(), 0);
    assert_eq!(store.ticket_count().await.unwrap(), 3);
    assert_eq!(find(&store, "tags:moved").await, vec!["c", "e", "g"]);
    assert_eq!(find(&store, "\"copied ticket\"").await.len(), 3);
    let next = store
        .create_ticket(ticket("new", "after the copy"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.num, 8);
    // Copying lower numbers never moves the sequence back.
    let mut low = ticket("low", "x");
    low.num = 1;
    assert_eq!(store.copy_tickets(vec![low]).await.unwrap(), 1);
    assert_eq!(
        store
            .create_ticket(ticket("new2", "x"))
            .await
            .unwrap()
            .unwrap()
            .num,
        9
    );

    let rows = vec![
        (
            "u1".to_string(),
            Some("h1".to_string()),
            json!({"id": "u1"}),
        ),
        ("u2".to_string(), None, json!({"id": "u2", "expires": 5})),
    ];
    assert_eq!(
        store
            .copy_records(RecordKind::Session, rows.clone())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.copy_records(RecordKind::Session, rows).await.unwrap(),
        0
    );
    assert_eq!(store.record_count(RecordKind::Session).await.unwrap(), 2);
    assert_eq!(
        store.find_record(RecordKind::Session, "h1").await.unwrap(),
        Some(json!({"id": "u1"}))
    );
    assert_eq!(
        store.purge_expired(RecordKind::Session, 10).await.unwrap(),
        1
    );

    let outbox = |id: i64, sent: Option<i64>| OutboxRow {
        id,
        channel: "email".into(),
        kind: "overdue".into(),
        ticket: "c".into(),
        grp: format!("od:{id}"),
        target: String::new(),
        payload: json!({"n": id}),
        created: 10,
        not_before: 20,
        attempts: 2,
        claimed_until: None,
        sent_at: sent,
        last_error: Some("earlier".into()),
    };
    let rows = vec![outbox(10, Some(30)), outbox(12, None)];
    let keys = vec![Some("c:2024-01-01".to_string()), None];
    assert_eq!(
        store.copy_outbox(rows.clone(), keys.clone()).await.unwrap(),
        2
    );
    assert_eq!(store.copy_outbox(rows.clone(), keys).await.unwrap(), 0);
    assert_eq!(store.outbox_count().await.unwrap(), 2);
    let listed = store.outbox_list(false, 10).await.unwrap();
    assert_eq!(listed, vec![rows[1].clone(), rows[0].clone()]);
    // New rows continue after the copied ids; the copied unique key still holds.
    assert_eq!(
        store
            .outbox_enqueue(vec![
                item("od", 0, Some("c:2024-01-01")),
                item("x", 0, None)
            ])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.outbox_list(false, 1).await.unwrap()[0].id, 13);
    assert!(store
        .copy_outbox(vec![outbox(20, None)], Vec::new())
        .await
        .is_err());
    store.close().await;
}
