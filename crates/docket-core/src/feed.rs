//! The change feed: one ordered list of every committed ticket event, which readers page
//! through and resume by position.
//!
//! The kernel builds a [`FeedEntry`] for each ticket write (create, update, comment, file
//! change, delete) and appends it through `WriteTx::append_feed` in the SAME transaction as
//! the change, as the transaction's last statement (a create's goes in with the ticket,
//! `WriteTx::insert_ticket_with_event`); the store gives it a position. Both
//! stores give positions in commit order (SQLite: one writer numbers rows as it inserts
//! them; PostgreSQL: rows are inserted unnumbered and a sequencing step, one at a time under
//! an advisory lock, numbers committed rows before every read), so a reader that has seen
//! position P has seen every event committed before it: resuming "after P" never skips one.
//! Positions are never reused; gaps (a rolled-back write) are normal.
//!
//! Bulk loads (`import_tickets`, `import_numbered`, `reindex_batch`, `docket migrate`'s
//! copies) write no events. Events older than the retention are pruned; the highest pruned
//! position is kept (`FeedRead::pruned_through`) so a cursor older than that is refused
//! instead of silently skipping what was pruned.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Principal;
use crate::model::{Change, FileRef, Ticket};

/// Days of events kept by default (`events.retention_days`).
pub const DEFAULT_RETENTION_DAYS: f64 = 30.0;
/// The most events one `get_ticket_events` page holds.
pub const MAX_PAGE: u32 = 1000;
/// The privilege that shows history entries flagged `internal` (internal notes).
pub const VIEW_INTERNAL: &str = "view_internal";

/// What happened to the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    Created,
    /// Fields changed (or an automation create was absorbed by this ticket).
    #[default]
    Updated,
    /// A comment was added or edited.
    Commented,
    /// Files were attached or removed, nothing else.
    Files,
    Deleted,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Created => "created",
            FeedKind::Updated => "updated",
            FeedKind::Commented => "commented",
            FeedKind::Files => "files",
            FeedKind::Deleted => "deleted",
        }
    }
}

/// One ticket event as written into the feed (everything but its position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct FeedEntry {
    /// The ticket's id.
    pub id: String,
    pub num: i64,
    pub kind: FeedKind,
    /// The ticket's `modified` after the write; for `deleted`, the time of the delete.
    pub modified: i64,
    /// The history entries this write added or changed (as stored in the ticket's
    /// `changes`; see [`FeedEvent::as_seen_by`] for who sees which).
    pub changes: Vec<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_added: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_removed: Vec<FileRef>,
    /// The ticket's category after the write (before it, for a delete): who may see the
    /// event. A column of its own in the stores, not part of the payload.
    #[serde(skip)]
    pub category: String,
}

/// A feed entry with its position: what readers get.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FeedEvent {
    pub position: i64,
    #[serde(flatten)]
    pub entry: FeedEntry,
}

/// One read of the feed (see `Store::feed_after`).
#[derive(Debug, Clone, Default)]
pub struct FeedRead {
    /// Events above the cursor, by position.
    pub events: Vec<FeedEvent>,
    /// The highest position pruned so far (read after the events): a cursor below it may
    /// have missed pruned events.
    pub pruned_through: i64,
    /// The highest position in the feed (0 when empty).
    pub newest: i64,
}

impl FeedRead {
    /// A read from the stores' rows `(position, category, data)` and the horizon read after
    /// them.
    pub fn from_rows(
        rows: Vec<(i64, String, String)>,
        pruned_through: i64,
        newest: i64,
    ) -> crate::Result<FeedRead> {
        let events = rows
            .into_iter()
            .map(|(position, category, data)| {
                Ok(FeedEvent {
                    position,
                    entry: FeedEntry::from_json(&data, category)?,
                })
            })
            .collect::<crate::Result<_>>()?;
        Ok(FeedRead {
            events,
            pruned_through,
            newest,
        })
    }
}

impl FeedEntry {
    /// The event of an inserted ticket.
    pub fn created(ticket: &Ticket) -> FeedEntry {
        FeedEntry {
            kind: FeedKind::Created,
            changes: ticket.changes.iter().map(change_value).collect(),
            files_added: ticket.files.clone(),
            ..FeedEntry::of(ticket, ticket.modified)
        }
    }

    /// The event of a write that turned `before` into `after`: the history entries it added
    /// or edited, the files it attached or removed, and a kind that says which.
    pub fn updated(before: &Ticket, after: &Ticket) -> FeedEntry {
        let changes = new_entries(&before.changes, &after.changes);
        let files_added = files_missing_from(&after.files, &before.files);
        let files_removed = files_missing_from(&before.files, &after.files);
        let kind = if changes.iter().any(|c| c.kind == crate::history::COMMENT) {
            FeedKind::Commented
        } else if changes.is_empty() && !(files_added.is_empty() && files_removed.is_empty()) {
            FeedKind::Files
        } else {
            FeedKind::Updated
        };
        FeedEntry {
            kind,
            changes: changes.into_iter().map(change_value).collect(),
            files_added,
            files_removed,
            ..FeedEntry::of(after, after.modified)
        }
    }

    /// The event of a deleted ticket, at `now`.
    pub fn deleted(ticket: &Ticket, now: i64) -> FeedEntry {
        FeedEntry {
            kind: FeedKind::Deleted,
            ..FeedEntry::of(ticket, now)
        }
    }

    fn of(ticket: &Ticket, modified: i64) -> FeedEntry {
        FeedEntry {
            id: ticket.id.clone(),
            num: ticket.num,
            kind: FeedKind::Updated,
            modified,
            changes: Vec::new(),
            files_added: Vec::new(),
            files_removed: Vec::new(),
            category: ticket.category.clone(),
        }
    }

    /// The payload the stores keep (JSON text; the category is a column of its own).
    pub fn to_json(&self) -> crate::Result<String> {
        serde_json::to_string(self).map_err(crate::Error::internal)
    }

    /// An entry from its stored JSON and category.
    pub fn from_json(json: &str, category: String) -> crate::Result<FeedEntry> {
        let mut entry: FeedEntry = serde_json::from_str(json).map_err(crate::Error::internal)?;
        entry.category = category;
        Ok(entry)
    }
}

impl FeedEvent {
    /// The event as `who` may see it, or `None` when they may not see it at all. The ONE
    /// place that decides what of an event a caller sees (the API, the SSE stream and the
    /// desk's live view all go through it):
    /// - the ticket's category must be one `who` sees (`Principal::sees_category`; a deleted
    ///   ticket's event carries the category it had), else nothing;
    /// - history entries flagged `"internal": true` (internal notes) are left out unless
    ///   `who` holds [`VIEW_INTERNAL`]; an event whose entries were ALL internal is left out
    ///   entirely (a caller who may not read internal notes does not learn one was written).
    pub fn as_seen_by(mut self, who: &Principal) -> Option<FeedEvent> {
        if !who.sees_category(&self.entry.category) {
            return None;
        }
        if !who.has(VIEW_INTERNAL) {
            let before = self.entry.changes.len();
            self.entry.changes.retain(|c| !is_internal(c));
            if before > 0 && self.entry.changes.is_empty() && self.entry.kind != FeedKind::Created {
                return None;
            }
        }
        Some(self)
    }
}

/// Whether a history entry is an internal note.
fn is_internal(change: &Value) -> bool {
    change.get("internal").and_then(Value::as_bool) == Some(true)
}

fn change_value(change: &Change) -> Value {
    serde_json::to_value(change).unwrap_or(Value::Null)
}

/// Entries of `after` that `before` does not hold as they are: added ones, edited ones
/// (same id, other content) and re-added ones (the same-minute collapse removes an entry
/// and pushes its successor). Linear: by id, with equality for entries without one.
fn new_entries<'a>(before: &[Change], after: &'a [Change]) -> Vec<&'a Change> {
    // Most writes append at the end: skip the common prefix first.
    let same = before.iter().zip(after).take_while(|(b, a)| b == a).count();
    let (before, after) = (&before[same..], &after[same..]);
    let by_id: HashMap<&str, &Change> = before
        .iter()
        .filter(|c| !c.id.is_empty())
        .map(|c| (c.id.as_str(), c))
        .collect();
    after
        .iter()
        .filter(|c| {
            if c.id.is_empty() {
                !before.contains(c)
            } else {
                by_id.get(c.id.as_str()) != Some(c)
            }
        })
        .collect()
}

/// Files of `these` whose path is not among `others`.
fn files_missing_from(these: &[FileRef], others: &[FileRef]) -> Vec<FileRef> {
    these
        .iter()
        .filter(|f| !others.iter().any(|o| o.path == f.path))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(id: &str, kind: &str) -> Change {
        Change {
            id: id.into(),
            kind: kind.into(),
            username: "u".into(),
            ..Default::default()
        }
    }

    fn ticket(changes: Vec<Change>) -> Ticket {
        Ticket {
            id: "t".into(),
            num: 3,
            category: "ops".into(),
            changes,
            modified: 9,
            ..Default::default()
        }
    }

    #[test]
    fn an_update_names_the_entries_it_added_or_edited() {
        let before = ticket(vec![change("a", "change"), change("b", "status")]);
        let mut edited = change("b", "status");
        edited.edited = Some(5);
        let after = ticket(vec![change("a", "change"), edited, change("c", "comment")]);
        let e = FeedEntry::updated(&before, &after);
        assert_eq!(e.kind, FeedKind::Commented);
        let ids: Vec<_> = e.changes.iter().map(|c| c["id"].clone()).collect();
        assert_eq!(ids, [json!("b"), json!("c")]);
        assert_eq!(e.category, "ops");
        assert_eq!(e.modified, 9);
    }

    #[test]
    fn a_file_only_write_is_a_files_event() {
        let before = ticket(vec![change("a", "change")]);
        let mut after = before.clone();
        after.files.push(FileRef {
            path: "files/t/u/r/x.txt".into(),
            ..Default::default()
        });
        let e = FeedEntry::updated(&before, &after);
        assert_eq!(e.kind, FeedKind::Files);
        assert_eq!(e.files_added.len(), 1);
        let back = FeedEntry::updated(&after, &before);
        assert_eq!(back.files_removed.len(), 1);
        assert_eq!(FeedEntry::updated(&before, &before).kind, FeedKind::Updated);
    }

    #[test]
    fn the_payload_round_trips_without_the_category() {
        let e = FeedEntry::updated(&ticket(vec![]), &ticket(vec![change("c", "comment")]));
        let text = e.to_json().unwrap();
        assert!(!text.contains("ops"), "{text}");
        assert_eq!(FeedEntry::from_json(&text, "ops".into()).unwrap(), e);
        let ev = serde_json::to_value(FeedEvent {
            position: 7,
            entry: e,
        })
        .unwrap();
        assert_eq!(ev["position"], 7);
        assert_eq!(ev["kind"], "commented");
        assert_eq!(ev["id"], "t");
    }

    fn who(categories: Option<&[&str]>, privileges: &[&str]) -> Principal {
        Principal {
            username: "u".into(),
            privileges: privileges.iter().map(|p| p.to_string()).collect(),
            categories: categories.map(|c| c.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn callers_see_events_of_their_categories_and_internal_notes_by_privilege() {
        let mut note = json!({"id": "n", "type": "comment", "body": "x", "internal": true});
        let public = json!({"id": "p", "type": "comment", "body": "y"});
        let event = |changes: Vec<Value>| FeedEvent {
            position: 1,
            entry: FeedEntry {
                kind: FeedKind::Commented,
                category: "ops".into(),
                changes,
                ..Default::default()
            },
        };
        assert!(event(vec![public.clone()])
            .as_seen_by(&who(Some(&["dev"]), &[]))
            .is_none());
        let seen = event(vec![note.clone(), public.clone()])
            .as_seen_by(&who(Some(&["ops"]), &[]))
            .unwrap();
        assert_eq!(seen.entry.changes, std::slice::from_ref(&public));
        assert!(event(vec![note.clone()])
            .as_seen_by(&who(None, &[]))
            .is_none());
        let seen = event(vec![note.clone()])
            .as_seen_by(&who(None, &[VIEW_INTERNAL]))
            .unwrap();
        assert_eq!(seen.entry.changes.len(), 1);
        note["internal"] = json!(false);
        assert!(event(vec![note]).as_seen_by(&who(None, &[])).is_some());
    }
}
