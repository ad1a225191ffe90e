//! `bulk_update_tickets`: one change applied to every ticket a search matches, each ticket
//! through the same transaction, history and notifications as a single `update_ticket`.
//!
//! The matching tickets are listed first (by number, in the caller's category scope, at
//! most `tickets.bulk_max_tickets`), then each is changed in its own store transaction, a
//! few dozen at a time so the SQLite writer commits them in groups. A ticket whose change
//! fails is counted as refused and never undoes the others. The change uses set semantics
//! (a status to set, names to add or remove), so running the same call again changes
//! nothing and counts every ticket as unchanged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use docket_query::{Filter, RangeField};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::Docket;
use crate::auth::{CanEdit, Principal};
use crate::error::{Error, Result};
use crate::history::record_changes;
use crate::model::Ticket;
use crate::notify::Cause;
use crate::store::{SearchRequest, SortField};
use crate::ticket_input::{priority_field, TicketPatch};

/// How many tickets a dry run describes.
pub const BULK_PREVIEW: usize = 20;
/// How many refusals a reply lists (all are counted).
pub const BULK_REFUSALS_LISTED: usize = 20;
/// Ticket updates in flight at once: enough for the SQLite writer to commit them in groups
/// and for PostgreSQL to use several connections, few enough not to starve other callers.
const IN_FLIGHT: usize = 64;
/// Tickets listed per search while collecting the matches.
const LIST_PAGE: u64 = 1000;

/// What a bulk update sets. `None` / empty = leave as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkSet {
    pub status: Option<String>,
    pub priority: Option<String>,
    pub category: Option<String>,
    /// Epoch seconds (0 = no due date), resolved once when the call is read.
    pub due: Option<i64>,
    pub add_assignees: Vec<String>,
    pub remove_assignees: Vec<String>,
    pub add_tags: Vec<String>,
    pub remove_tags: Vec<String>,
}

impl BulkSet {
    fn is_empty(&self) -> bool {
        *self == BulkSet::default()
    }

    /// Applies the change to `t` (set semantics: adding a present name or removing an
    /// absent one does nothing).
    pub fn apply(&self, t: &mut Ticket) {
        if let Some(s) = &self.status {
            t.status.clone_from(s);
        }
        if let Some(p) = &self.priority {
            t.priority.clone_from(p);
        }
        if let Some(c) = &self.category {
            t.category.clone_from(c);
        }
        if let Some(d) = self.due {
            t.due = d;
        }
        edit_list(
            &mut t.assignees,
            &self.add_assignees,
            &self.remove_assignees,
        );
        edit_list(&mut t.tags, &self.add_tags, &self.remove_tags);
    }
}

fn edit_list(list: &mut Vec<String>, add: &[String], remove: &[String]) {
    list.retain(|v| !remove.contains(v));
    for v in add {
        if !list.contains(v) {
            list.push(v.clone());
        }
    }
}

/// One field a dry run would change.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    pub from: Value,
    pub to: Value,
}

/// A ticket of a dry run's preview.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreviewRow {
    pub id: String,
    pub num: i64,
    pub subject: String,
    /// Empty: the ticket already is as the change would make it.
    pub changes: Vec<FieldChange>,
}

/// A ticket the change could not be applied to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Refusal {
    pub id: String,
    pub num: i64,
    pub code: &'static str,
    pub description: String,
}

/// The answer of `bulk_update_tickets`.
#[derive(Debug, Clone, Serialize, PartialEq, Default)]
pub struct BulkReport {
    pub dry_run: bool,
    /// Tickets the query matches in the caller's scope.
    pub matched: u64,
    /// `tickets.bulk_max_tickets`.
    pub max_tickets: u64,
    pub changed: u64,
    pub unchanged: u64,
    pub refused: u64,
    /// The first refusals (all are counted in `refused`).
    pub refusals: Vec<Refusal>,
    /// Dry run: the first tickets by number and what would change in each.
    pub preview: Vec<PreviewRow>,
}

/// Reads `set` of a bulk update: every value checked as `update_ticket` checks it.
pub fn bulk_set_from_params(docket: &Docket, set: &Value) -> Result<BulkSet> {
    let Value::Object(set) = set else {
        return Err(Error::Ticket(
            "Malformed parameter: set (must be an object such as {\"status\": \"closed\"})".into(),
        ));
    };
    let rules = &docket.rules;
    let mut out = BulkSet::default();
    for (key, value) in set {
        crate::ticket_input::reject_nul(key, value)?;
        match key.as_str() {
            "status" | "category" => {
                let patch = TicketPatch::from_params(&one(key, value.clone()), rules)?;
                if key == "status" {
                    out.status = patch.status;
                } else {
                    out.category = patch.category;
                }
            }
            "priority" => out.priority = Some(priority_field(value, rules)?),
            "due" => out.due = Some(docket.parse_due(value)?),
            "assignees" | "tags" => {
                let (add, remove) = add_remove(key, value, rules)?;
                if key == "assignees" {
                    (out.add_assignees, out.remove_assignees) = (add, remove);
                } else {
                    (out.add_tags, out.remove_tags) = (add, remove);
                }
            }
            other => {
                return Err(Error::Ticket(format!(
                    "Unknown field in set: {other:?}. A bulk update can set status, priority, \
                     category, due, assignees {{add, remove}} and tags {{add, remove}}"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Ticket(
            "Nothing to change: set names no field (status, priority, category, due, \
             assignees, tags)"
                .into(),
        ));
    }
    Ok(out)
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    m
}

/// `{add: [...], remove: [...]}` of a list field, each list checked as the field's values.
fn add_remove(
    field: &str,
    value: &Value,
    rules: &crate::rules::TicketRules,
) -> Result<(Vec<String>, Vec<String>)> {
    let Value::Object(ops) = value else {
        return Err(Error::Ticket(format!(
            "Malformed parameter: set.{field} (must be an object {{\"add\": [...], \
             \"remove\": [...]}})"
        )));
    };
    let mut lists = (Vec::new(), Vec::new());
    for (op, names) in ops {
        let patch = TicketPatch::from_params(&one(field, names.clone()), rules)?;
        let names = if field == "assignees" {
            patch.assignees
        } else {
            patch.tags
        }
        .unwrap_or_default();
        match op.as_str() {
            "add" => lists.0 = names,
            "remove" => lists.1 = names,
            other => {
                return Err(Error::Ticket(format!(
                    "Malformed parameter: set.{field}.{other} (only add and remove are known)"
                )))
            }
        }
    }
    Ok(lists)
}

/// The tickets with a number above `after` that `filter` matches, in number order.
pub(crate) fn after_num(filter: &Filter, after: i64) -> Filter {
    if after <= 0 {
        return filter.clone();
    }
    let range = Filter::Range {
        field: RangeField::Num,
        min: Some(after.saturating_add(1)),
        max: None,
    };
    match filter {
        Filter::All => range,
        other => Filter::And(vec![other.clone(), range]),
    }
}

/// Id and number of a stored ticket, read from its JSON text without the rest.
#[derive(serde::Deserialize)]
struct IdNum {
    id: String,
    num: i64,
}

impl Docket {
    /// `bulk_update_tickets`.
    pub async fn bulk_update_tickets(
        &self,
        who: &Principal,
        can: &CanEdit,
        params: &Map<String, Value>,
        max_tickets: u64,
    ) -> Result<BulkReport> {
        let query = match params.get("query") {
            Some(Value::String(q)) if !q.trim().is_empty() => q.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(Error::Ticket(
                    "Missing parameter: query (the tickets to change; `*` means every ticket \
                     you may see)"
                        .into(),
                ))
            }
            Some(_) => {
                return Err(Error::Ticket(
                    "Malformed parameter: query (must be a string)".into(),
                ))
            }
        };
        let filter = self.compile_query(&query).map_err(Error::Ticket)?;
        let set = bulk_set_from_params(
            self,
            params
                .get("set")
                .ok_or_else(|| Error::Ticket("Missing parameter: set".into()))?,
        )?;
        self.check_bulk_references(who, &set).await?;
        let dry_run = super::flag(params, "dry_run")?;
        let matched = self.count_matching(who, &filter).await?;
        let mut report = BulkReport {
            dry_run,
            matched,
            max_tickets,
            ..Default::default()
        };
        if dry_run {
            report.preview = self.bulk_preview(who, &filter, &set).await?;
            return Ok(report);
        }
        if matched > max_tickets {
            return Err(Error::Ticket(format!(
                "The query matches {matched} tickets, more than the {max_tickets} one bulk \
                 update may change (tickets.bulk_max_tickets); narrow the query, or run it \
                 again on what remains (changed tickets no longer match a query that excludes \
                 the new value)"
            )));
        }
        let targets = self.matching_ids(who, &filter, max_tickets).await?;
        self.apply_bulk(who, can, targets, set, super::sends(params), &mut report)
            .await;
        Ok(report)
    }

    /// `bulk_update_tickets` on tickets chosen by id (the web desk's selection): the same
    /// per-ticket path; a ticket the caller may not see is refused as not found.
    pub async fn bulk_update_ids(
        &self,
        who: &Principal,
        can: &CanEdit,
        ids: Vec<String>,
        set: BulkSet,
        max_tickets: u64,
    ) -> Result<BulkReport> {
        if ids.len() as u64 > max_tickets {
            return Err(Error::Ticket(format!(
                "{} tickets selected, more than the {max_tickets} one bulk update may change",
                ids.len()
            )));
        }
        self.check_bulk_references(who, &set).await?;
        let mut report = BulkReport {
            matched: ids.len() as u64,
            max_tickets,
            ..Default::default()
        };
        let targets = ids.into_iter().map(|id| (id, 0)).collect();
        self.apply_bulk(who, can, targets, set, true, &mut report)
            .await;
        Ok(report)
    }

    /// Tags to add must exist; a category to set must exist and be one the caller may file
    /// tickets in.
    async fn check_bulk_references(&self, who: &Principal, set: &BulkSet) -> Result<()> {
        let refs = TicketPatch {
            tags: (!set.add_tags.is_empty()).then(|| set.add_tags.clone()),
            category: set.category.clone(),
            ..Default::default()
        };
        if refs.category.is_some() {
            self.check_references(who, &refs).await
        } else {
            self.check_references(&Principal::system(&who.username), &refs)
                .await
        }
    }

    fn scoped(&self, who: &Principal, filter: Filter, limit: u64) -> SearchRequest {
        SearchRequest {
            filter,
            categories: who.categories.clone(),
            sort_by: SortField::Num,
            descending: false,
            offset: 0,
            limit,
        }
    }

    async fn count_matching(&self, who: &Principal, filter: &Filter) -> Result<u64> {
        let request = self.scoped(who, filter.clone(), 1);
        let page = self
            .searches
            .run(Some(&who.username), self.store.search_stored(&request))
            .await?;
        Ok(page.total)
    }

    /// Id and number of every ticket `filter` matches in the caller's scope (at most
    /// `max + 1`), paging by number so each page costs the same.
    async fn matching_ids(
        &self,
        who: &Principal,
        filter: &Filter,
        max: u64,
    ) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let request = self.scoped(who, after_num(filter, after), LIST_PAGE);
            let page = self
                .searches
                .run(Some(&who.username), self.store.search_stored(&request))
                .await?;
            let n = page.rows.len() as u64;
            for row in &page.rows {
                let IdNum { id, num } = serde_json::from_str(row)
                    .map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))?;
                after = num;
                out.push((id, num));
            }
            if n < LIST_PAGE || out.len() as u64 > max {
                return Ok(out);
            }
        }
    }

    async fn bulk_preview(
        &self,
        who: &Principal,
        filter: &Filter,
        set: &BulkSet,
    ) -> Result<Vec<PreviewRow>> {
        let request = self.scoped(who, filter.clone(), BULK_PREVIEW as u64);
        let page = self.run_search(Some(&who.username), &request).await?;
        Ok(page
            .rows
            .into_iter()
            .map(|mut before| {
                if before.priority.is_empty() {
                    before.priority.clone_from(&self.rules.default_priority);
                }
                let mut after = before.clone();
                set.apply(&mut after);
                PreviewRow {
                    changes: field_changes(&before, &after),
                    id: before.id,
                    num: before.num,
                    subject: before.subject,
                }
            })
            .collect())
    }

    /// Changes each target in its own transaction, [`IN_FLIGHT`] at a time, counting the
    /// outcomes into `report`.
    async fn apply_bulk(
        &self,
        who: &Principal,
        _can: &CanEdit,
        targets: Vec<(String, i64)>,
        set: BulkSet,
        send: bool,
        report: &mut BulkReport,
    ) {
        let set = Arc::new(set);
        let mut running = tokio::task::JoinSet::new();
        let mut targets = targets.into_iter();
        loop {
            while running.len() < IN_FLIGHT {
                let Some((id, num)) = targets.next() else {
                    break;
                };
                let (docket, who, set) = (self.clone(), who.clone(), set.clone());
                running.spawn(async move {
                    let outcome = docket.bulk_one(&who, &id, &set, send).await;
                    (id, num, outcome)
                });
            }
            let Some(done) = running.join_next().await else {
                break;
            };
            let (id, num, outcome) = match done {
                Ok(r) => r,
                Err(e) => (
                    String::new(),
                    0,
                    Err(Error::Internal(format!("bulk update task: {e}"))),
                ),
            };
            match outcome {
                Ok(true) => report.changed += 1,
                Ok(false) => report.unchanged += 1,
                Err(e) => {
                    if let Error::Internal(detail) = &e {
                        tracing::error!(error = %detail, ticket = %id, "bulk update of a ticket failed");
                    }
                    report.refused += 1;
                    if report.refusals.len() < BULK_REFUSALS_LISTED {
                        report.refusals.push(Refusal {
                            id,
                            num,
                            code: e.code(),
                            description: e.description(),
                        });
                    }
                }
            }
        }
        report.refusals.sort_by_key(|r| r.num);
    }

    /// One ticket of a bulk update, as `update_ticket` changes it: `Ok(true)` changed,
    /// `Ok(false)` already as asked (nothing written).
    async fn bulk_one(&self, who: &Principal, id: &str, set: &BulkSet, send: bool) -> Result<bool> {
        let now = self.now();
        let unchanged = Arc::new(AtomicBool::new(false));
        let flag = unchanged.clone();
        let who2 = who.clone();
        let missing = id.to_string();
        let ns = self.notify.clone();
        let default_priority = self.rules.default_priority.clone();
        let set = set.clone();
        let written = self
            .store
            .update_ticket_out(
                id,
                Box::new(move |t: &mut Ticket| {
                    if !who2.sees(t) {
                        return Err(Error::NotFound(format!("Ticket not found: {missing}")));
                    }
                    if t.priority.is_empty() {
                        t.priority = default_priority;
                    }
                    let before = t.clone();
                    set.apply(t);
                    if *t == before {
                        // Abandons this write (nothing stored, no history, no email).
                        flag.store(true, Ordering::Relaxed);
                        return Err(Error::Ticket("unchanged".into()));
                    }
                    record_changes(&before, t, &who2.username, now);
                    t.modified = now;
                    Ok(super::tickets::outbox_for(
                        send,
                        &ns,
                        &before,
                        t,
                        &who2.username,
                        Cause::Update,
                        now,
                    ))
                }),
            )
            .await;
        if unchanged.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match written? {
            Some(_) => Ok(true),
            None => Err(Error::NotFound(format!("Ticket not found: {id}"))),
        }
    }
}

/// The fields a bulk update may change that differ between `before` and `after`.
fn field_changes(before: &Ticket, after: &Ticket) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut push = |field: &'static str, from: Value, to: Value| {
        if from != to {
            out.push(FieldChange { field, from, to });
        }
    };
    push("status", json!(before.status), json!(after.status));
    push("priority", json!(before.priority), json!(after.priority));
    push("category", json!(before.category), json!(after.category));
    push("due", json!(before.due), json!(after.due));
    push("assignees", json!(before.assignees), json!(after.assignees));
    push("tags", json!(before.tags), json!(after.tags));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_semantics_make_a_second_run_change_nothing() {
        let set = BulkSet {
            status: Some("closed".into()),
            add_tags: vec!["flag".into()],
            remove_assignees: vec!["bob".into()],
            add_assignees: vec!["ann".into()],
            ..Default::default()
        };
        let mut t = Ticket {
            status: "open".into(),
            assignees: vec!["bob".into(), "carl".into()],
            ..Default::default()
        };
        set.apply(&mut t);
        assert_eq!(t.status, "closed");
        assert_eq!(t.assignees, vec!["carl".to_string(), "ann".to_string()]);
        assert_eq!(t.tags, vec!["flag".to_string()]);
        let again = t.clone();
        set.apply(&mut t);
        assert_eq!(t, again);
    }

    #[test]
    fn paging_filter_adds_a_number_bound() {
        assert_eq!(after_num(&Filter::All, 0), Filter::All);
        assert_eq!(
            after_num(&Filter::All, 7),
            Filter::Range {
                field: RangeField::Num,
                min: Some(8),
                max: None
            }
        );
    }
}
