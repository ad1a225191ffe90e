//! The harness itself: a server starts, answers ping, and stops cleanly on SIGTERM.

mod common;

use common::Server;
use serde_json::json;

#[tokio::test]
async fn starts_answers_and_stops_cleanly() {
    let mut s = Server::start().await;
    let (status, v) = s.call("ping", json!({})).await;
    assert_eq!((status, v), (200, json!({"code": 0})));
    assert!(s.terminate(), "SIGTERM should end the server with success");
}
