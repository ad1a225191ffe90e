//! `add_ticket_relation` / `remove_ticket_relation`: link two tickets, both ends in one
//! store transaction (`Store::update_ticket_pair` → `kernel::update_pair`), each with a
//! history entry and its notifications. The rules of a link are in `relations.rs`.

use serde_json::{Map, Value};
use tracing::instrument;

use super::{int_param, Docket};
use crate::auth::{CanEdit, Principal};
use crate::error::{Error, Result};
use crate::history::record_changes;
use crate::model::Ticket;
use crate::notify::{self, Cause};
use crate::relations::{self, DUPLICATES, DUPLICATE_OF};
use crate::store::TicketPairEdit;

/// The result of a relation call: both tickets as the caller may see them.
#[derive(Debug)]
pub struct RelationChange {
    pub ticket: Ticket,
    pub other: Ticket,
}

fn not_found(label: &str) -> Error {
    Error::NotFound(format!("Ticket not found: {label}"))
}

impl Docket {
    /// `add_ticket_relation {id|num, type, other|other_num}`.
    #[instrument(skip_all)]
    pub async fn add_ticket_relation(
        &self,
        who: &Principal,
        can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<RelationChange> {
        self.change_relation(who, can, params, true).await
    }

    /// `remove_ticket_relation {id|num, type, other|other_num}`.
    #[instrument(skip_all)]
    pub async fn remove_ticket_relation(
        &self,
        who: &Principal,
        can: &CanEdit,
        params: &Map<String, Value>,
    ) -> Result<RelationChange> {
        self.change_relation(who, can, params, false).await
    }

    /// Both tickets must exist and be visible to the caller, who holds `edit_tickets` (the
    /// right to edit every ticket they may see): editing a relation edits both tickets.
    async fn change_relation(
        &self,
        who: &Principal,
        _can: &CanEdit,
        params: &Map<String, Value>,
        add: bool,
    ) -> Result<RelationChange> {
        let kind = match params.get("type") {
            Some(Value::String(t)) => relations::parse_type(t)?,
            None | Some(Value::Null) => {
                return Err(Error::Ticket("Missing parameter: type".into()))
            }
            Some(_) => {
                return Err(Error::Ticket(
                    "Malformed parameter: type (must be a string)".into(),
                ))
            }
        };
        let (id, label) = self.resolve(who, params, "id", "num").await?;
        let (other, other_label) = self.resolve(who, params, "other", "other_num").await?;
        if id == other {
            return Err(Error::Ticket("A ticket cannot be related to itself".into()));
        }
        let now = self.now();
        let close = add
            .then(|| self.rules.close_duplicates.clone())
            .filter(|s| !s.is_empty());
        let send = super::sends(params);
        let ns = self.notify.clone();
        let actor = who.clone();
        let (l1, l2) = (label.clone(), other_label.clone());
        let mutate = Box::new(move |a: &mut Ticket, b: &mut Ticket| {
            if !actor.sees(a) {
                return Err(not_found(&l1));
            }
            if !actor.sees(b) {
                return Err(not_found(&l2));
            }
            let (before_a, before_b) = (a.clone(), b.clone());
            let user = actor.username.as_str();
            if add {
                relations::link(a, b, kind, user, now)?;
                // The ticket that became a duplicate is closed, when so configured.
                let duplicate = match kind {
                    DUPLICATE_OF => Some(&mut *a),
                    DUPLICATES => Some(&mut *b),
                    _ => None,
                };
                if let (Some(t), Some(status)) = (duplicate, &close) {
                    if &t.status != status && t.status != crate::rules::DRAFT {
                        let before = t.clone();
                        t.status.clone_from(status);
                        record_changes(&before, t, user, now);
                    }
                }
            } else {
                relations::unlink(a, b, kind, user, now)?;
            }
            a.modified = now;
            b.modified = now;
            let mut out = Vec::new();
            if send {
                out.extend(notify::on_change(
                    &ns,
                    &before_a,
                    a,
                    user,
                    Cause::Update,
                    now,
                ));
                out.extend(notify::on_change(
                    &ns,
                    &before_b,
                    b,
                    user,
                    Cause::Update,
                    now,
                ));
            }
            Ok(out)
        });
        let edit = TicketPairEdit {
            new_parent_link: add
                .then(|| relations::parent_link(kind, &id, &other))
                .flatten()
                .map(|(c, p)| (c.to_string(), p.to_string())),
            id: id.clone(),
            other: other.clone(),
            mutate,
        };
        match self.store.update_ticket_pair(edit).await? {
            Some((a, b)) => Ok(RelationChange {
                ticket: self.present(who, a).await?,
                other: self.present(who, b).await?,
            }),
            // One of them is missing (or was deleted since it was resolved): name it.
            None => {
                let first = self.store.ticket_by_id(&id).await?;
                Err(not_found(if first.is_some_and(|t| who.sees(&t)) {
                    &other_label
                } else {
                    &label
                }))
            }
        }
    }

    /// The id of the ticket named by parameter `id_param` (an id) or `num_param` (a
    /// number), and how "not found" names it. A ticket the caller may not see is missing.
    async fn resolve(
        &self,
        who: &Principal,
        params: &Map<String, Value>,
        id_param: &str,
        num_param: &str,
    ) -> Result<(String, String)> {
        if let Some(Value::String(id)) = params.get(id_param).filter(|v| !v.is_null()) {
            if id.trim().is_empty() {
                return Err(Error::Ticket(format!("Missing parameter: {id_param}")));
            }
            return Ok((id.clone(), id.clone()));
        }
        if let Some(Value::Number(n)) = params.get(id_param) {
            // A query string types digits as a number; an id like `123` is still an id.
            return Ok((n.to_string(), n.to_string()));
        }
        if params.get(id_param).is_some_and(|v| !v.is_null()) {
            return Err(Error::Ticket(format!(
                "Malformed parameter: {id_param} (must be a string)"
            )));
        }
        if params.get(num_param).is_none_or(Value::is_null) {
            return Err(Error::Ticket(format!(
                "Missing parameter: {id_param} or {num_param}"
            )));
        }
        let num = int_param(params, num_param, 0, 1, i64::MAX).map_err(|_| {
            Error::Ticket(format!(
                "Malformed parameter: {num_param} (must be a positive whole number)"
            ))
        })?;
        let label = format!("#{num}");
        match self.store.ticket_by_num(num).await? {
            Some(t) if who.sees(&t) => Ok((t.id, label)),
            _ => Err(not_found(&label)),
        }
    }
}
