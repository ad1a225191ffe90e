//! Handlers of the record calls (`put_job`, `get_job`, `put_alert`, `get_alert`) and the
//! reply shape of an automated create.

use docket_core::service::{Created, RecordType};
use docket_core::Error;
use serde_json::{json, Value};

use super::{AppState, Call, Reply};

// `put_job`: /api/app/put_job/v1 — `{job: {…}}`, privilege import_records (or admin)
pub async fn put_job(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_import()?;
    let job = s
        .docket
        .put_automation_record(&can, RecordType::Job, &c.params)
        .await?;
    Ok(Reply::ok().with("job", job))
}

// `get_job`: /api/app/get_job/v1 — `{id}`; local record, else the upstream xyOps server
pub async fn get_job(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let job = s
        .docket
        .get_automation_record(c.who()?, RecordType::Job, &c.params)
        .await?;
    Ok(Reply::ok().with("job", job))
}

// `put_alert`: /api/app/put_alert/v1 — `{alert: {…}}` (an AlertInvocation)
pub async fn put_alert(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let can = c.who()?.can_import()?;
    let alert = s
        .docket
        .put_automation_record(&can, RecordType::Alert, &c.params)
        .await?;
    Ok(Reply::ok().with("alert", alert))
}

// `get_alert`: /api/app/get_alert/v1 — `{id}` of an alert invocation
pub async fn get_alert(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let alert = s
        .docket
        .get_automation_record(c.who()?, RecordType::Alert, &c.params)
        .await?;
    Ok(Reply::ok().with("alert", alert))
}

/// The `Idempotency-Key` header, passed to the service as the `idempotency_key` parameter
/// (the header wins over a parameter of the same name).
pub fn with_idempotency_header(c: &Call) -> Result<Option<serde_json::Map<String, Value>>, Error> {
    let mut params = c.params.clone();
    Ok(add_idempotency_header(&c.headers, &mut params)?.then_some(params))
}

/// Copies an `Idempotency-Key` header into `params` as `idempotency_key`; whether there was one.
pub fn add_idempotency_header(
    headers: &axum::http::HeaderMap,
    params: &mut serde_json::Map<String, Value>,
) -> Result<bool, Error> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(false);
    };
    let key = v
        .to_str()
        .map_err(|_| {
            Error::Api("Malformed Idempotency-Key header (must be printable ASCII)".into())
        })?
        .trim();
    if key.is_empty() {
        return Ok(false);
    }
    params.insert("idempotency_key".into(), Value::String(key.to_string()));
    Ok(true)
}

/// The reply of `create_ticket`: `{ticket}`, and `deduplicated: true` (beside the ticket and
/// inside it) when an open ticket with the same `dedupe_key` absorbed the create.
pub fn created_reply(created: &Created) -> Result<Reply, Error> {
    let mut ticket = serde_json::to_value(&created.ticket).map_err(Error::internal)?;
    if !created.deduplicated {
        return Ok(Reply::ok().with("ticket", ticket));
    }
    if let Value::Object(m) = &mut ticket {
        m.insert("deduplicated".into(), json!(true));
    }
    Ok(Reply::ok()
        .with("ticket", ticket)
        .with("deduplicated", true))
}
