//! The services of docket-core on a real SQLite store: ticket events as the service writes
//! tickets, and saved searches.

use std::sync::Arc;

use docket_core::auth::Principal;
use docket_core::rules::TicketRules;
use docket_core::store::{TicketEvent, TicketEventKind};
use docket_core::{Docket, Error};
use docket_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

async fn docket() -> (tempfile::TempDir, Docket) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
        .await
        .unwrap();
    (dir, Docket::new(Arc::new(store), TicketRules::default()))
}

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("params must be an object"),
    }
}

fn user(name: &str) -> Principal {
    Principal::new(
        name,
        &docket_core::privileges::Privileges::from_names(["create_tickets"]),
        &[],
        &[],
    )
}

/// The next event, failing the test if none comes.
async fn next(rx: &mut broadcast::Receiver<TicketEvent>) -> TicketEvent {
    tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv())
        .await
        .expect("an event within 2 s")
        .expect("a ticket event")
}

#[tokio::test]
async fn every_ticket_write_of_the_service_publishes_one_event() {
    let (_dir, docket) = docket().await;
    let admin = Principal::system("admin");
    let mut rx = docket.ticket_events();

    let t = docket
        .create_ticket(
            &admin,
            &admin.can_create().unwrap(),
            &params(json!({"subject": "disk full", "body": "on db1"})),
        )
        .await
        .unwrap();
    let e = next(&mut rx).await;
    assert_eq!(
        (e.id.as_str(), e.num, e.kind),
        (t.id.as_str(), t.num, TicketEventKind::Created)
    );
    assert_eq!(e.modified, t.modified);

    let edit = admin.can_edit().unwrap();
    docket
        .update_ticket(
            &admin,
            &edit,
            &params(json!({"id": t.id, "status": "closed"})),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.kind, TicketEventKind::Updated);

    let commented = docket
        .add_ticket_change(
            &admin,
            &edit,
            &params(json!({"id": t.id, "change": {"type": "comment", "body": "looking"}})),
        )
        .await
        .unwrap();
    let e = next(&mut rx).await;
    assert_eq!(
        (e.id.as_str(), e.kind),
        (t.id.as_str(), TicketEventKind::Updated)
    );
    let change_id = commented
        .changes
        .iter()
        .rev()
        .find(|c| c.kind == "comment")
        .map(|c| c.id.clone())
        .expect("the comment");
    docket
        .update_ticket_change(
            &admin,
            &edit,
            &params(json!({"id": t.id, "change_id": change_id, "change": {"body": "fixed"}})),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.kind, TicketEventKind::Updated);

    // A rejected edit writes nothing and announces nothing.
    assert!(docket
        .update_ticket(
            &admin,
            &edit,
            &params(json!({"id": t.id, "status": "nonsense"}))
        )
        .await
        .is_err());

    docket
        .delete_ticket(
            &admin,
            &admin.can_delete().unwrap(),
            &params(json!({"id": t.id})),
        )
        .await
        .unwrap();
    let e = next(&mut rx).await;
    assert_eq!(
        (e.id.as_str(), e.num, e.kind),
        (t.id.as_str(), t.num, TicketEventKind::Deleted)
    );
    assert!(rx.try_recv().is_err(), "nothing else was published");
}

#[tokio::test]
async fn saved_searches_are_per_user_sorted_and_validated() {
    let (_dir, docket) = docket().await;
    let (ann, bob) = (user("ann"), user("bob"));
    assert!(docket.saved_searches(&ann).await.unwrap().is_empty());

    let open = docket
        .save_search(&ann, None, "  Open bugs ", "status:open type:bug")
        .await
        .unwrap();
    assert_eq!(
        (
            open.name.as_str(),
            open.username.as_str(),
            open.sort_by.as_str(),
            open.sort_dir
        ),
        ("Open bugs", "ann", "", 0)
    );
    assert!(!open.id.is_empty() && open.created > 0 && open.modified == open.created);
    docket
        .save_search(&ann, None, "alerts", "tags:alert")
        .await
        .unwrap();
    docket
        .save_search(&ann, None, "Zebra", "zebra")
        .await
        .unwrap();
    let names = |list: Vec<docket_core::model::SavedSearch>| {
        list.into_iter().map(|s| s.name).collect::<Vec<_>>()
    };
    // By name, ignoring case.
    assert_eq!(
        names(docket.saved_searches(&ann).await.unwrap()),
        vec!["alerts", "Open bugs", "Zebra"]
    );

    // Update: same id, new name and query; created kept.
    let renamed = docket
        .save_search(&ann, Some(&open.id), "bugs", "type:bug")
        .await
        .unwrap();
    assert_eq!(
        (renamed.id.as_str(), renamed.created),
        (open.id.as_str(), open.created)
    );
    assert_eq!(
        (renamed.name.as_str(), renamed.query.as_str()),
        ("bugs", "type:bug")
    );
    assert_eq!(
        names(docket.saved_searches(&ann).await.unwrap()),
        vec!["alerts", "bugs", "Zebra"]
    );
    // Saving under its own name (another case) is fine.
    docket
        .save_search(&ann, Some(&open.id), "BUGS", "type:bug")
        .await
        .unwrap();

    // Names are unique per user, ignoring case; another user may reuse them.
    let dup = docket
        .save_search(&ann, None, "ALERTS", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, Error::Api(m) if m.contains("already have a saved search named \"alerts\"")),
        "{dup:?}"
    );
    let dup = docket
        .save_search(&ann, Some(&open.id), "zebra", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, Error::Api(m) if m.contains("\"Zebra\"")),
        "{dup:?}"
    );
    let bobs = docket
        .save_search(&bob, None, "alerts", "tags:alert")
        .await
        .unwrap();
    assert_eq!(
        names(docket.saved_searches(&bob).await.unwrap()),
        vec!["alerts"]
    );

    // Own only: another user's id is not found, for update and delete alike.
    for result in [
        docket
            .save_search(&bob, Some(&open.id), "mine", "x")
            .await
            .map(drop),
        docket.delete_saved_search(&bob, &open.id).await,
        docket.delete_saved_search(&ann, &bobs.id).await,
        docket
            .save_search(&user("carol"), Some(&bobs.id), "x", "x")
            .await
            .map(drop),
        docket.delete_saved_search(&ann, "s_missing").await,
    ] {
        assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
    }

    // Validation.
    let bad_query = docket
        .save_search(&ann, None, "broken", "status:open (")
        .await
        .unwrap_err();
    let parser_message = docket
        .search_tickets(
            &ann,
            &docket_core::service::SearchParams {
                query: "status:open (".into(),
                offset: 0,
                limit: 10,
                sort_by: docket_core::store::SortField::Num,
                descending: false,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(parser_message.starts_with("Invalid search query: "));
    assert_eq!(
        bad_query.to_string(),
        parser_message,
        "the parser's own message"
    );
    for (name, query) in [
        ("", "x"),
        ("   ", "x"),
        (&*"n".repeat(81), "x"),
        ("tab\tname", "x"),
        ("empty", ""),
        ("blank", "   "),
        ("long", &*"x".repeat(2001)),
    ] {
        let e = docket
            .save_search(&ann, None, name, query)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Api(_)), "{name:?} {query:?}: {e:?}");
    }
    // The limits themselves are allowed.
    docket
        .save_search(&ann, None, &"n".repeat(80), &"x".repeat(2000))
        .await
        .unwrap();

    // At most 50 per user.
    for i in docket.saved_searches(&ann).await.unwrap().len()..50 {
        docket
            .save_search(&ann, None, &format!("search {i}"), "status:open")
            .await
            .unwrap();
    }
    let full = docket
        .save_search(&ann, None, "one more", "x")
        .await
        .unwrap_err();
    assert!(
        matches!(&full, Error::Api(m) if m.contains("at most 50")),
        "{full:?}"
    );
    // Updating one is still fine when full; deleting makes room.
    docket
        .save_search(&ann, Some(&open.id), "bugs", "type:bug status:open")
        .await
        .unwrap();
    docket.delete_saved_search(&ann, &open.id).await.unwrap();
    assert!(!docket
        .saved_searches(&ann)
        .await
        .unwrap()
        .iter()
        .any(|s| s.id == open.id));
    docket
        .save_search(&ann, None, "one more", "x")
        .await
        .unwrap();
    assert_eq!(docket.saved_searches(&ann).await.unwrap().len(), 50);
    assert_eq!(docket.saved_searches(&bob).await.unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_first_saves_of_one_user_keep_both() {
    let (_dir, docket) = docket().await;
    let ann = user("ann");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (docket, ann) = (docket.clone(), ann.clone());
            tokio::spawn(async move {
                docket
                    .save_search(&ann, None, &format!("s{i}"), "status:open")
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(docket.saved_searches(&ann).await.unwrap().len(), 8);
}
