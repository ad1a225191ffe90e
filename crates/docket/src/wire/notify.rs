//! `get_outbox` (admin): the notification queue — pending rows (default) or the latest rows
//! of every state (`all: true`), with attempts and the last error.

use docket_core::Error;
use serde_json::{json, Value};

use super::reply::Reply;
use super::{AppState, Call};

pub async fn get_outbox(s: &AppState, c: &Call) -> Result<Reply, Error> {
    c.who()?.can_admin()?;
    let all = matches!(c.params.get("all"), Some(Value::Bool(true)))
        || matches!(c.params.get("all"), Some(Value::String(v)) if v == "true" || v == "1");
    let limit = c
        .params
        .get("limit")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(100)
        .clamp(1, 10_000);
    let rows = s.docket.store.outbox_list(!all, limit as u32).await?;
    let length = rows.len();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.id, "channel": r.channel, "kind": r.kind, "ticket": r.ticket, "target": r.target,
                "created": r.created, "not_before": r.not_before, "attempts": r.attempts,
                "claimed_until": r.claimed_until, "sent_at": r.sent_at, "last_error": r.last_error,
                "status": if r.sent_at.is_some() { "sent" } else if r.last_error.is_some() { "retrying" } else { "pending" },
            })
        })
        .collect();
    Ok(Reply::ok()
        .with("rows", Value::Array(rows))
        .with("list", json!({ "length": length })))
}
