//! Ticket events between nodes: two `PgStore`s on one database play two nodes, and what one
//! writes the other hears through LISTEN/NOTIFY.

use std::time::Duration;

use docket_core::store::{Store, TicketEvent, TicketEventKind};
use docket_core::Error;
use sqlx::Connection;
use tokio::sync::broadcast;

use super::{ticket, TestDb};

async fn next(rx: &mut broadcast::Receiver<TicketEvent>) -> TicketEvent {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("an event within 2 s")
        .expect("a ticket event")
}

/// Fails if an event arrives within a short wait.
async fn silent(rx: &mut broadcast::Receiver<TicketEvent>) {
    if let Ok(got) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("no event expected, got {got:?}");
    }
}

fn summary(e: &TicketEvent) -> (&str, i64, TicketEventKind) {
    (e.id.as_str(), e.num, e.kind)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_reaches_the_other_nodes_subscribers() {
    use TicketEventKind::{Created, Deleted, Updated};
    let db = TestDb::new().await;
    let (a, b) = (db.store().await, db.store().await);
    let mut on_b = b.ticket_events();
    let mut on_a = a.ticket_events();

    let mut t = ticket("t1", "disk full");
    t.modified = 1000;
    let t = a.create_ticket(t).await.unwrap().unwrap();
    let e = next(&mut on_b).await;
    assert_eq!(summary(&e), ("t1", t.num, Created));
    assert_eq!(e.modified, 1000);

    a.update_ticket(
        "t1",
        Box::new(|t| {
            t.modified = 2000;
            t.subject = "disk very full".into();
            Ok(())
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let e = next(&mut on_b).await;
    assert_eq!((summary(&e), e.modified), (("t1", t.num, Updated), 2000));

    // A rolled-back write announces nothing (NOTIFY is delivered only at COMMIT).
    assert!(a
        .update_ticket("t1", Box::new(|_| Err(Error::Ticket("no".into()))))
        .await
        .is_err());

    let before = jiff::Timestamp::now().as_second();
    a.delete_ticket("t1", Box::new(|_| Ok(())))
        .await
        .unwrap()
        .unwrap();
    let e = next(&mut on_b).await;
    assert_eq!(summary(&e), ("t1", t.num, Deleted));
    assert!(
        e.modified >= before - 1,
        "a delete is stamped with its time"
    );

    // The writing node hears its own writes by the same path, in the same order.
    let mine: Vec<_> = [
        next(&mut on_a).await,
        next(&mut on_a).await,
        next(&mut on_a).await,
    ]
    .iter()
    .map(|e| e.kind)
    .collect();
    assert_eq!(mine, vec![Created, Updated, Deleted]);
    silent(&mut on_b).await;

    // And the other way round.
    let u = b
        .create_ticket(ticket("t2", "from b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary(&next(&mut on_a).await), ("t2", u.num, Created));
    assert_eq!(summary(&next(&mut on_b).await), ("t2", u.num, Created));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_loads_and_reindexing_announce_nothing() {
    let db = TestDb::new().await;
    let (a, b) = (db.store().await, db.store().await);
    let mut on_b = b.ticket_events();
    a.import_tickets(vec![ticket("i1", "x"), ticket("i2", "y")])
        .await
        .unwrap();
    let mut copied = ticket("c1", "copy");
    copied.num = 50;
    a.copy_tickets(vec![copied]).await.unwrap();
    assert!(a.reindex_batch(0, 100).await.unwrap().is_some());
    silent(&mut on_b).await;
    // The quiet setting ended with those transactions: the next write is heard.
    a.update_ticket("i2", Box::new(|_| Ok(()))).await.unwrap();
    let e = next(&mut on_b).await;
    assert_eq!((e.id.as_str(), e.kind), ("i2", TicketEventKind::Updated));
}

/// Terminates every listening connection of database `db` (both nodes'); returns how many.
async fn kill_listeners(admin: &mut sqlx::PgConnection, db: &str) -> usize {
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(db)
    .fetch_all(&mut *admin)
    .await
    .unwrap();
    killed.len()
}

/// Waits until `n` listener connections are open on `db` (each node reconnects on its own
/// schedule, so hearing one node again says nothing of the other).
async fn wait_listeners(admin: &mut sqlx::PgConnection, db: &str, n: i64) {
    for _ in 0..150 {
        let (open,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
        )
        .bind(db)
        .fetch_one(&mut *admin)
        .await
        .unwrap();
        if open == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} listeners did not come back within 15 s");
}

/// Writes until B hears one (writes made before its listener is back are lost).
async fn heard_again(a: &crate::PgStore, on_b: &mut broadcast::Receiver<TicketEvent>) {
    for _ in 0..30 {
        a.update_ticket("t1", Box::new(|_| Ok(()))).await.unwrap();
        if let Ok(got) = tokio::time::timeout(Duration::from_millis(500), on_b.recv()).await {
            let e = got.unwrap();
            assert_eq!((e.id.as_str(), e.kind), ("t1", TicketEventKind::Updated));
            return;
        }
    }
    panic!("the listener did not come back within 15 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_comes_back_after_its_connection_is_lost() {
    let db = TestDb::new().await;
    let (a, b) = (db.store().await, db.store().await);
    let mut on_b = b.ticket_events();
    a.create_ticket(ticket("t1", "x")).await.unwrap().unwrap();
    assert_eq!(next(&mut on_b).await.kind, TicketEventKind::Created);
    // From another database: the test database itself will refuse connections below.
    let mut admin = sqlx::PgConnection::connect(&super::admin_url())
        .await
        .unwrap();

    // A dropped connection: sqlx's listener connects again at once.
    assert_eq!(
        kill_listeners(&mut admin, &db.name).await,
        2,
        "one listener per node"
    );
    heard_again(&a, &mut on_b).await;
    wait_listeners(&mut admin, &db.name, 2).await;

    // Dropped while the database refuses connections: reconnecting fails, and the store's
    // task tries again with backoff until the database takes connections again.
    let name = &db.name;
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS false"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(kill_listeners(&mut admin, &db.name).await, 2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" WITH ALLOW_CONNECTIONS true"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    heard_again(&a, &mut on_b).await;
}
