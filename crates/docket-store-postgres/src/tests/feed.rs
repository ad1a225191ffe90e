//! The feed's sequencing on PostgreSQL (feed.rs): rows are numbered after they commit, in
//! an order readers can follow without skipping.

use docket_core::feed::{FeedEntry, FeedEvent};
use docket_core::store::Store;
use sqlx::Connection;

use super::{ticket, TestDb};
use crate::feed;

fn ids(events: &[FeedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.entry.id.as_str()).collect()
}

/// What a naive design gets wrong: a position drawn (or a row inserted) first but committed
/// last must not end up below a position a reader has already passed. Two transactions on
/// their own connections: `early` inserts its feed row first and commits last; a reader
/// reads between the two commits and again after, and gets each event once, its cursor only
/// moving forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_inserted_first_and_committed_last_is_read_once_after_the_cursor() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let mut early_conn = db.conn().await;
    let mut late_conn = db.conn().await;
    let mut early = early_conn.begin().await.unwrap();
    feed::append(&mut early, &FeedEntry::created(&ticket("early", "x")), 1)
        .await
        .unwrap();
    let mut late = late_conn.begin().await.unwrap();
    feed::append(&mut late, &FeedEntry::created(&ticket("late", "x")), 1)
        .await
        .unwrap();
    late.commit().await.unwrap();

    let first = store.feed_after(0, 10).await.unwrap();
    assert_eq!(ids(&first.events), ["late"], "only the committed row");
    let cursor = first.events[0].position;
    assert_eq!(first.newest, cursor);

    early.commit().await.unwrap();
    let second = store.feed_after(cursor, 10).await.unwrap();
    assert_eq!(
        ids(&second.events),
        ["early"],
        "the late commit comes after the cursor"
    );
    assert!(second.events[0].position > cursor);
    // From the start: both, once, in the order they were positioned.
    let all = store.feed_after(0, 10).await.unwrap();
    assert_eq!(ids(&all.events), ["late", "early"]);
    early_conn.close().await.unwrap();
    late_conn.close().await.unwrap();
}

/// A write committed on one node is in the very next read on another (no background task
/// involved: the reader numbers what is committed before it reads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_one_node_is_in_the_next_read_on_another() {
    let db = TestDb::new().await;
    let (writer, reader) = (db.store().await, db.store().await);
    let mut cursor = 0;
    for i in 0..20 {
        let id = format!("t{i}");
        writer
            .create_ticket(ticket(&id, "seen at once"))
            .await
            .unwrap()
            .unwrap();
        let read = reader.feed_after(cursor, 10).await.unwrap();
        assert_eq!(ids(&read.events), [id.as_str()]);
        assert_eq!(read.newest, read.events[0].position);
        cursor = read.events[0].position;
    }
}

/// Rows written the previous version's way (a position drawn under the feed lock at insert)
/// and rows written unnumbered share one order: a node of each version during an upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_positioned_at_insert_and_rows_sequenced_later_share_one_order() {
    let db = TestDb::new().await;
    let store = db.store().await;
    store
        .create_ticket(ticket("new1", "x"))
        .await
        .unwrap()
        .unwrap();
    let mut old_node = db.conn().await;
    let mut tx = old_node.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(4, 0)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let entry = FeedEntry::created(&ticket("old", "x"));
    sqlx::query(
        "INSERT INTO ticket_feed (position, at, category, data) \
         VALUES (nextval('ticket_feed_position'), 1, $1, $2)",
    )
    .bind(&entry.category)
    .bind(entry.to_json().unwrap())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    store
        .create_ticket(ticket("new2", "x"))
        .await
        .unwrap()
        .unwrap();
    let all = store.feed_after(0, 10).await.unwrap();
    // new1 was still unnumbered when the old node drew its position.
    assert_eq!(ids(&all.events), ["old", "new1", "new2"]);
    assert!(all.events.windows(2).all(|w| w[0].position < w[1].position));
    old_node.close().await.unwrap();
}

/// A batch bigger than one sequencing step is numbered completely, in insertion order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_rows_than_one_step_are_all_numbered_in_insertion_order() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let rows = feed::SEQUENCE_BATCH as i64 + 5;
    let mut conn = db.conn().await;
    sqlx::query(
        "INSERT INTO ticket_feed (at, category, data) \
         SELECT 1, '', '{\"id\":\"t' || i || '\",\"num\":' || i || ',\"kind\":\"created\",\"modified\":0,\"changes\":[]}' \
         FROM generate_series(1, $1) i",
    )
    .bind(rows)
    .execute(&mut conn)
    .await
    .unwrap();
    let read = store.feed_after(0, 1000).await.unwrap();
    assert_eq!(read.events.len(), 1000);
    assert_eq!(read.events[0].entry.id, "t1");
    let (unnumbered, out_of_order): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE position IS NULL), \
         count(*) FILTER (WHERE position - seq <> (SELECT min(position - seq) FROM ticket_feed)) \
         FROM ticket_feed",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((unnumbered, out_of_order), (0, 0));
    assert_eq!(read.newest, read.events[0].position + rows - 1);
    conn.close().await.unwrap();
}
