//! Handlers of the ten ticket calls (SPEC §3) and the ticket JSON shapes they reply with.

use docket_core::model::Ticket;
use docket_core::service::SearchParams;
use docket_core::Error;
use serde_json::{json, Value};

use super::{AppState, Call, Reply};
use docket_core::service::flag;

fn full(t: &Ticket) -> Result<Value, Error> {
    serde_json::to_value(t).map_err(Error::internal)
}

/// Without `verbose`: no body and no history.
fn brief(t: &Ticket) -> Result<Value, Error> {
    let mut v = full(t)?;
    if let Value::Object(m) = &mut v {
        m.remove("body");
        m.remove("changes");
    }
    Ok(v)
}

fn files_not_supported() -> Error {
    Error::File("File uploads are not supported by this server yet".into())
}

// `get_ticket`: /api/app/get_ticket/v1 — the stored JSON is the reply's `ticket` as it is.
pub async fn get_ticket(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let t = s.docket.get_ticket_json(c.who()?, &c.params).await?;
    Ok(Reply::ok().with_json("ticket", t.into_bytes()))
}

// `get_tickets`: /api/app/get_tickets/v1
pub async fn get_tickets(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let verbose = flag(&c.params, "verbose")?;
    let slots = s.docket.get_tickets(c.who()?, &c.params).await?;
    let tickets = slots
        .iter()
        .map(|slot| match slot {
            Ok(t) if verbose => full(t),
            Ok(t) => brief(t),
            Err(msg) => Ok(json!({"err": msg})),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Reply::ok().with("tickets", tickets))
}

// `search_tickets`: /api/app/search_tickets/v1 — rows written from the stored JSON; with
// `compact`, without `body` and with `changes` as its length (docket_core::compact_json).
pub async fn search_tickets(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let search = SearchParams::from_params(&c.params)?;
    let compact = flag(&c.params, "compact")?;
    let page = s.docket.search_tickets_json(who, &search, compact).await?;
    Ok(Reply::ok()
        .with("list", json!({"length": page.total}))
        .with_json("rows", super::stored_json::rows(&page.rows)))
}

// `create_ticket`: /api/app/create_ticket/v1
pub async fn create_ticket(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_create()?;
    if c.file_parts > 0 {
        return Err(files_not_supported());
    }
    let with_key = super::automation::with_idempotency_header(c)?;
    let params = with_key.as_ref().unwrap_or(&c.params);
    let created = s.docket.create_ticket_outcome(who, &can, params).await?;
    super::automation::created_reply(&created)
}

// `update_ticket`: /api/app/update_ticket/v1
pub async fn update_ticket(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let t = s.docket.update_ticket(who, &can, &c.params).await?;
    Ok(Reply::ok().with("ticket", full(&t)?))
}

// `add_ticket_change`: /api/app/add_ticket_change/v1
pub async fn add_ticket_change(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let t = s.docket.add_ticket_change(who, &can, &c.params).await?;
    Ok(Reply::ok().with("ticket", full(&t)?))
}

// `update_ticket_change`: /api/app/update_ticket_change/v1
pub async fn update_ticket_change(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let t = s.docket.update_ticket_change(who, &can, &c.params).await?;
    Ok(Reply::ok().with("ticket", full(&t)?))
}

// `upload_user_ticket_files`: /api/app/upload_user_ticket_files/v1. Multipart requests
// take the streaming path (wire/files.rs); anything else carries no file.
pub async fn upload_user_ticket_files(_s: &AppState, c: &Call) -> Result<Reply, Error> {
    c.who()?.can_edit()?;
    Err(Error::File(
        "No file upload data found in the request (send multipart/form-data with a json part and file parts)".into(),
    ))
}

// `delete_ticket_file`: /api/app/delete_ticket_file/v1 (see wire/files.rs)
pub async fn delete_ticket_file(s: &AppState, c: &Call) -> Result<Reply, Error> {
    super::files::delete_ticket_file(s, c).await
}

// `delete_ticket`: /api/app/delete_ticket/v1
pub async fn delete_ticket(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_delete()?;
    let gone = s.docket.delete_ticket(who, &can, &c.params).await?;
    // The ticket is gone first (one transaction); then its objects, attached or not.
    s.files.purge_ticket(&gone).await;
    Ok(Reply::ok())
}

// `add_ticket_relation`: /api/app/add_ticket_relation/v1
pub async fn add_ticket_relation(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let r = s.docket.add_ticket_relation(who, &can, &c.params).await?;
    Ok(Reply::ok()
        .with("ticket", full(&r.ticket)?)
        .with("other", full(&r.other)?))
}

// `remove_ticket_relation`: /api/app/remove_ticket_relation/v1
pub async fn remove_ticket_relation(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let r = s
        .docket
        .remove_ticket_relation(who, &can, &c.params)
        .await?;
    Ok(Reply::ok()
        .with("ticket", full(&r.ticket)?)
        .with("other", full(&r.other)?))
}

// `bulk_update_tickets`: /api/app/bulk_update_tickets/v1 — the report's fields beside
// `code` (see `docket_core::service::BulkReport`).
pub async fn bulk_update_tickets(s: &AppState, c: &Call) -> Result<Reply, Error> {
    let who = c.who()?;
    let can = who.can_edit()?;
    let report = s
        .docket
        .bulk_update_tickets(who, &can, &c.params, s.config.tickets.bulk_max_tickets)
        .await?;
    let Value::Object(fields) = serde_json::to_value(&report).map_err(Error::internal)? else {
        return Err(Error::Internal("bulk report is not an object".into()));
    };
    Ok(fields
        .into_iter()
        .fold(Reply::ok(), |reply, (k, v)| reply.with(&k, v)))
}
