//! Change-feed helpers for the integration suites: a small Server-Sent Events client over
//! reqwest, a reader that hangs up at random points and resumes with `Last-Event-ID`, and
//! the whole feed read through `get_ticket_events`.

#![allow(dead_code, reason = "each suite uses a part")]

use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use super::common::Server;

/// One SSE message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// An open event stream.
pub struct Stream {
    res: reqwest::Response,
    buf: String,
}

/// Opens `GET /api/app/stream_ticket_events/v1?QUERY` with `key`, resuming after
/// `last_id` when given. The response as it came (for error statuses) or a stream.
pub async fn open(
    s: &Server,
    key: &str,
    query: &str,
    last_id: Option<i64>,
) -> Result<Stream, (u16, Value)> {
    let mut req = s
        .client
        .get(s.url(&format!("/api/app/stream_ticket_events/v1?{query}")))
        .header("X-API-Key", key);
    if let Some(id) = last_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let res = req.send().await.expect("stream request");
    if res.status() != 200 {
        return Err(super::common::decode(res).await);
    }
    let kind = super::common::content_type_of(&res);
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    Ok(Stream {
        res,
        buf: String::new(),
    })
}

impl Stream {
    /// The next message (keep-alive comments skipped), or `None` after `wait` without one.
    pub async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut m = Message::default();
                let mut any = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "id" => m.id = Some(value.to_string()),
                        "event" => m.event = Some(value.to_string()),
                        "data" => m.data.push_str(value),
                        _ => continue,
                    }
                    any = true;
                }
                if any {
                    return Some(m);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.res.chunk())
                .await
                .ok()?
                .expect("stream chunk")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next message, which must be a ticket event: (position, event JSON).
    pub async fn event(&mut self, wait: Duration) -> Option<(i64, Value)> {
        let m = self.next(wait).await?;
        assert_eq!(m.event, None, "{m:?}");
        let position: i64 = m.id.as_deref().expect("id").parse().expect("numeric id");
        let v: Value = serde_json::from_str(&m.data).expect("event JSON");
        assert_eq!(v["position"], position);
        Some((position, v))
    }
}

/// Every event of the feed the key may see, through `get_ticket_events` in pages of `limit`.
pub async fn whole_feed(s: &Server, key: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut params = json!({"limit": limit});
    loop {
        let (status, v) = s.call_as(key, "get_ticket_events", params.clone()).await;
        assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
        out.extend(v["events"].as_array().expect("events").iter().cloned());
        params["after"] = v["cursor"].clone();
        if v["more"] != json!(true) {
            return out;
        }
    }
}

/// Reads `want` events from the stream, hanging up after a random 1 to 7 events each time
/// and resuming with `Last-Event-ID`, alternating over `nodes`. Returns the positions and
/// events in the order received.
pub async fn read_resuming(
    nodes: &[&Server],
    key: &str,
    from: i64,
    want: usize,
) -> Vec<(i64, Value)> {
    let mut got = Vec::new();
    let mut last = from;
    let mut round = 0;
    while got.len() < want {
        let node = nodes[round % nodes.len()];
        round += 1;
        let mut stream = open(node, key, "", Some(last)).await.expect("stream opens");
        let take = rand::thread_rng().gen_range(1..=7);
        for _ in 0..take {
            match stream.event(Duration::from_secs(20)).await {
                Some((position, event)) => {
                    last = position;
                    got.push((position, event));
                }
                None => panic!("no event within 20 s; {} of {want} so far", got.len()),
            }
            if got.len() == want {
                break;
            }
        }
        // Dropped here: the connection is closed mid-stream.
    }
    got
}
