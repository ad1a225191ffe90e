//! The change feed over HTTP: `get_ticket_events` pages, the Server-Sent Events stream
//! resuming from `Last-Event-ID`, category scope, retention and expired cursors, and a
//! reader that hangs up at random points while writers write.

mod common;
mod feed_support;

use std::sync::Arc;
use std::time::Duration;

use common::Server;
use feed_support::{open, read_resuming, whole_feed};
use serde_json::{json, Value};

fn ok(r: &(u16, Value)) -> &Value {
    assert_eq!((r.0, &r.1["code"]), (200, &json!(0)), "{}", r.1);
    &r.1
}

fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or("").to_string(),
                e["kind"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn events_page_through_every_write_once_in_order() {
    let s = Server::start().await;
    let t1 = s.create(json!({"subject": "Disk full on db1"})).await;
    let id1 = t1["id"].as_str().unwrap().to_string();
    ok(&s
        .call("update_ticket", json!({"id": id1, "status": "closed"}))
        .await);
    ok(&s
        .call(
            "add_ticket_change",
            json!({"id": id1, "change": {"type": "comment", "body": "Cleaned up /var"}}),
        )
        .await);
    let t2 = s.create(json!({"subject": "Printer jam"})).await;
    let id2 = t2["id"].as_str().unwrap().to_string();
    ok(&s.call("delete_ticket", json!({"id": id2})).await);

    let all = whole_feed(&s, &s.key, 100).await;
    let expected: Vec<(String, String)> = [
        (&id1, "created"),
        (&id1, "updated"),
        (&id1, "commented"),
        (&id2, "created"),
        (&id2, "deleted"),
    ]
    .iter()
    .map(|(i, k)| (i.to_string(), k.to_string()))
    .collect();
    assert_eq!(kinds(&all), expected);
    // The same events, whatever the page size.
    for limit in [1, 2, 3] {
        assert_eq!(whole_feed(&s, &s.key, limit).await, all, "limit {limit}");
    }
    let positions: Vec<i64> = all
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(all[0]["num"], t1["num"]);
    assert!(all[1]["modified"].as_i64().unwrap() > 0);
    let status_change = &all[1]["changes"][0];
    assert_eq!(
        (&status_change["key"], &status_change["value"]),
        (&json!("status"), &json!("closed"))
    );
    assert_eq!(all[2]["changes"][0]["body"], "Cleaned up /var");

    // At the end: nothing more, and the cursor stays.
    let last = *positions.last().unwrap();
    let r = s.call("get_ticket_events", json!({"after": last})).await;
    let v = ok(&r);
    assert_eq!(
        (&v["events"], &v["cursor"], &v["more"]),
        (&json!([]), &json!(last), &json!(false))
    );
    // A page of two says there is more and where to go on.
    let r = s.call("get_ticket_events", json!({"limit": 2})).await;
    let v = ok(&r);
    assert_eq!(
        (&v["cursor"], &v["more"]),
        (&json!(positions[1]), &json!(true))
    );

    // Only events of tickets matching a query now; a delete passes any query.
    let r = s
        .call("get_ticket_events", json!({"query": "status:closed"}))
        .await;
    let v = ok(&r);
    assert_eq!(
        kinds(v["events"].as_array().unwrap()),
        [
            (id1.clone(), "created".to_string()),
            (id1.clone(), "updated".to_string()),
            (id1.clone(), "commented".to_string()),
            (id2.clone(), "deleted".to_string()),
        ]
    );

    // Bad cursors and limits are refused, naming the problem.
    for (params, needle) in [
        (json!({"after": last + 1000}), "past the newest event"),
        (json!({"after": "soon"}), "after"),
        (json!({"after": -1}), "after"),
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 1001}), "limit"),
        (json!({"query": "status:"}), "query"),
    ] {
        let (status, v) = s.call("get_ticket_events", params.clone()).await;
        assert_eq!(status, 400, "{params}: {v}");
        assert!(
            v["description"].as_str().unwrap().contains(needle),
            "{params}: {v}"
        );
    }
}

#[tokio::test]
async fn callers_see_only_events_of_tickets_they_may_see() {
    let s = Server::start().await;
    for (id, title) in [("ops", "Ops"), ("sec", "Security")] {
        ok(&s
            .call("create_category", json!({"id": id, "title": title}))
            .await);
    }
    let ops_key = s.key_with(&[], &["ops"]).await;
    let router = s
        .create(json!({"subject": "Router reboot", "category": "ops"}))
        .await;
    let hidden = s
        .create(json!({"subject": "Pen test findings", "category": "sec"}))
        .await;
    let moved = s
        .create(json!({"subject": "Moves away", "category": "ops"}))
        .await;
    ok(&s
        .call(
            "update_ticket",
            json!({"id": hidden["id"], "status": "closed"}),
        )
        .await);
    // Moved out of her categories: the move and what follows are not hers to see.
    ok(&s
        .call(
            "update_ticket",
            json!({"id": moved["id"], "category": "sec"}),
        )
        .await);
    ok(&s.call("delete_ticket", json!({"id": hidden["id"]})).await);
    ok(&s.call("delete_ticket", json!({"id": router["id"]})).await);

    let mine = whole_feed(&s, &ops_key, 1).await;
    let oid = router["id"].as_str().unwrap().to_string();
    let mid = moved["id"].as_str().unwrap().to_string();
    assert_eq!(
        kinds(&mine),
        [
            (oid.clone(), "created".to_string()),
            (mid.clone(), "created".to_string()),
            (oid.clone(), "deleted".to_string()),
        ]
    );
    let everything = whole_feed(&s, &s.key, 100).await;
    assert_eq!(everything.len(), 7);
    let text = serde_json::to_string(&mine).unwrap();
    assert!(!text.contains(hidden["id"].as_str().unwrap()), "{text}");

    // The stream applies the same rule.
    let mut stream = open(&s, &ops_key, "", None).await.expect("stream");
    s.create(json!({"subject": "Hidden again", "category": "sec"}))
        .await;
    let seen = s
        .create(json!({"subject": "Hers", "category": "ops"}))
        .await;
    let (_, e) = stream
        .event(Duration::from_secs(10))
        .await
        .expect("an event");
    assert_eq!((&e["id"], &e["kind"]), (&seen["id"], &json!("created")));
}

#[tokio::test]
async fn the_stream_resumes_after_last_event_id() {
    let s = Server::start().await;
    s.create(json!({"subject": "Before the stream"})).await;
    // Without a cursor the stream starts at the newest event: only what comes next.
    let mut stream = open(&s, &s.key, "", None).await.expect("stream");
    let mut made = Vec::new();
    for i in 0..3 {
        made.push(s.create(json!({"subject": format!("Streamed {i}")})).await);
    }
    let (p0, e0) = stream.event(Duration::from_secs(10)).await.expect("first");
    let (p1, e1) = stream.event(Duration::from_secs(10)).await.expect("second");
    assert_eq!((&e0["id"], &e1["id"]), (&made[0]["id"], &made[1]["id"]));
    assert!(p0 < p1);
    drop(stream);
    for i in 3..5 {
        made.push(s.create(json!({"subject": format!("Streamed {i}")})).await);
    }
    // Resumed after the second: the third (sent before the hang-up or not) and the rest.
    let mut stream = open(&s, &s.key, "", Some(p1)).await.expect("resumed");
    for t in &made[2..] {
        let (_, e) = stream
            .event(Duration::from_secs(10))
            .await
            .expect("resumed event");
        assert_eq!(e["id"], t["id"]);
    }
    assert!(
        stream.next(Duration::from_millis(300)).await.is_none(),
        "nothing repeated"
    );
    // `after` in the query does the same; `Last-Event-ID` wins over it.
    let mut stream = open(&s, &s.key, &format!("after={p0}"), None)
        .await
        .expect("after");
    let (_, e) = stream.event(Duration::from_secs(10)).await.expect("event");
    assert_eq!(e["id"], made[1]["id"]);
    let mut stream = open(&s, &s.key, &format!("after={p0}"), Some(p1))
        .await
        .expect("both");
    let (_, e) = stream.event(Duration::from_secs(10)).await.expect("event");
    assert_eq!(e["id"], made[2]["id"]);
    // A query filters the stream too.
    let mut stream = open(&s, &s.key, "query=urgent", Some(p1))
        .await
        .expect("query");
    s.create(json!({"subject": "Not this one"})).await;
    let urgent = s.create(json!({"subject": "urgent: pager"})).await;
    let (_, e) = stream.event(Duration::from_secs(10)).await.expect("event");
    assert_eq!(e["id"], urgent["id"]);

    // Refused before streaming: a bad header, no credential, another method.
    let res = s
        .client
        .get(s.url("/api/app/stream_ticket_events/v1"))
        .header("X-API-Key", &s.key)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    let (status, v) = common::decode(res).await;
    assert_eq!((status, &v["code"]), (400, &json!("api")), "{v}");
    assert!(v["description"].as_str().unwrap().contains("Last-Event-ID"));
    let res = s
        .client
        .get(s.url("/api/app/stream_ticket_events/v1"))
        .send()
        .await
        .unwrap();
    let (status, v) = common::decode(res).await;
    assert_eq!((status, &v["code"]), (403, &json!("session")), "{v}");
    let res = s
        .client
        .post(s.url("/api/app/stream_ticket_events/v1"))
        .header("X-API-Key", &s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
}

#[tokio::test]
async fn an_expired_cursor_is_refused_with_410_and_a_fresh_start_works() {
    // About 2.6 seconds of retention; the sweeper prunes at start and hourly.
    let mut s = Server::start_with_config("[events]\nretention_days = 0.00003\n", &[]).await;
    let first = s.create(json!({"subject": "Old news"})).await;
    s.create(json!({"subject": "Older news"})).await;
    let old = whole_feed(&s, &s.key, 100).await;
    assert_eq!(old.len(), 2);
    let p_first = old[0]["position"].as_i64().unwrap();
    let p_last = old[1]["position"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.restart();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = s.call("get_ticket_events", json!({})).await;
        if ok(&r)["events"] == json!([]) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The ticket is still there; only its events are gone.
    ok(&s.call("get_ticket", json!({"id": first["id"]})).await);
    let (status, v) = s.call("get_ticket_events", json!({"after": p_first})).await;
    assert_eq!((status, &v["code"]), (410, &json!("cursor_expired")), "{v}");
    let text = v["description"].as_str().unwrap();
    assert!(text.contains("without `after`"), "{text}");
    // Without /v1 the status is 200, as for every error there.
    let res = s
        .client
        .post(s.url("/api/app/get_ticket_events"))
        .header("X-API-Key", &s.key)
        .json(&json!({"after": p_first}))
        .send()
        .await
        .unwrap();
    let (status, v) = common::decode(res).await;
    assert_eq!((status, &v["code"]), (200, &json!("cursor_expired")));
    match open(&s, &s.key, "", Some(p_first)).await {
        Err((status, v)) => assert_eq!((status, &v["code"]), (410, &json!("cursor_expired"))),
        Ok(_) => panic!("an expired cursor streamed"),
    }
    // The newest pruned position is still a good cursor; starting afresh works too.
    let r = s.call("get_ticket_events", json!({"after": p_last})).await;
    assert_eq!(ok(&r)["events"], json!([]));
    let fresh = s.create(json!({"subject": "Fresh news"})).await;
    let r = s.call("get_ticket_events", json!({})).await;
    let events = ok(&r)["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], fresh["id"]);
    assert!(events[0]["position"].as_i64().unwrap() > p_last);
}

/// Writers write concurrently while a reader hangs up at random points and resumes with
/// `Last-Event-ID`: it receives every event exactly once, in order. (On PostgreSQL the same
/// runs with two nodes in postgres_two_nodes.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_hanging_up_at_random_misses_and_repeats_nothing_while_writers_write() {
    let s = Arc::new(Server::start().await);
    let start = {
        let r = s.call("get_ticket_events", json!({})).await;
        ok(&r)["cursor"].as_i64().unwrap()
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            tokio::spawn(async move { write_some(&s, w, 15).await })
        })
        .collect();
    let want = 4 * 15 * 3;
    let got = read_resuming(&[&s], &s.key, start, want).await;
    for w in writers {
        w.await.unwrap();
    }
    let all = whole_feed(&s, &s.key, 1000).await;
    assert_eq!(all.len(), want);
    let expected: Vec<i64> = all
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    let received: Vec<i64> = got.iter().map(|(p, _)| *p).collect();
    assert_eq!(received, expected, "every event once, in order");
    assert_eq!(got.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), all);
}

/// `n` tickets by writer `w`, each created, updated and commented: three events each.
async fn write_some(s: &Server, w: usize, n: usize) {
    for i in 0..n {
        let t = s
            .create(json!({"subject": format!("writer {w} ticket {i}")}))
            .await;
        ok(&s
            .call("update_ticket", json!({"id": t["id"], "status": "closed"}))
            .await);
        ok(&s
            .call(
                "add_ticket_change",
                json!({"id": t["id"], "change": {"type": "comment", "body": "done"}}),
            )
            .await);
    }
}
