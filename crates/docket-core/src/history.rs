//! A ticket's change history: which field edits are recorded, as what kind of entry, and
//! how rapid edits of one field collapse.

use serde_json::{json, Value};

use crate::ids::{new_id, IdKind};
use crate::model::{Change, Ticket};
use crate::rules::DRAFT;

/// Change entry types (SEED.md).
pub const CHANGE: &str = "change";
pub const COMMENT: &str = "comment";
pub const STATUS: &str = "status";
pub const ASSIGNMENT: &str = "assignment";
pub const CHANGE_TYPES: [&str; 4] = [CHANGE, COMMENT, STATUS, ASSIGNMENT];

/// Edits of the same key by the same user within this many seconds collapse into one.
const COLLAPSE_SECS: i64 = 60;

/// The fields whose edits are recorded, in the order entries are written.
const TRACKED: [&str; 12] = [
    "subject",
    "body",
    "type",
    "category",
    "server",
    "status",
    "priority",
    "assignees",
    "due",
    "cc",
    "notify",
    "tags",
];

fn field_value(t: &Ticket, field: &str) -> Value {
    match field {
        "subject" => json!(t.subject),
        "body" => json!(t.body),
        "type" => json!(t.kind),
        "category" => json!(t.category),
        "server" => json!(t.server),
        "status" => json!(t.status),
        "priority" => json!(t.priority),
        "assignees" => json!(t.assignees),
        "due" => json!(t.due),
        "cc" => json!(t.cc),
        "notify" => json!(t.notify),
        "tags" => json!(t.tags),
        _ => Value::Null,
    }
}

/// The entry that opens every ticket's history.
pub fn created_entry(username: &str, now: i64) -> Change {
    Change {
        id: new_id(IdKind::Change),
        kind: CHANGE.to_string(),
        username: username.to_string(),
        date: now,
        key: Some("created".to_string()),
        ..Default::default()
    }
}

/// Appends one entry per tracked field that differs between `before` and `after` to
/// `after.changes`. A ticket that stays a draft records nothing.
pub fn record_changes(before: &Ticket, after: &mut Ticket, username: &str, now: i64) {
    if before.status == DRAFT && after.status == DRAFT {
        return;
    }
    for field in TRACKED {
        let old = field_value(before, field);
        let new = field_value(after, field);
        if old == new {
            continue;
        }
        let kind = match field {
            "status" => STATUS,
            "assignees" => ASSIGNMENT,
            _ => CHANGE,
        };
        let entry = Change {
            id: new_id(IdKind::Change),
            kind: kind.to_string(),
            username: username.to_string(),
            date: now,
            key: Some(field.to_string()),
            value: (field != "body").then_some(new),
            ..Default::default()
        };
        push_collapsing(&mut after.changes, entry);
    }
}

/// Adds `entry`, first removing an entry of the same key and type by the same user made
/// less than a minute before, so a burst of edits reads as one change.
pub fn push_collapsing(changes: &mut Vec<Change>, entry: Change) {
    if entry.key.is_some() {
        if let Some(pos) = changes.iter().rposition(|c| {
            c.key == entry.key
                && c.kind == entry.kind
                && c.username == entry.username
                && entry.date - c.date < COLLAPSE_SECS
                && c.key.as_deref() != Some("created")
        }) {
            changes.remove(pos);
        }
    }
    changes.push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: &str) -> Ticket {
        Ticket {
            subject: "s".into(),
            status: status.into(),
            ..Default::default()
        }
    }

    fn keys(t: &Ticket) -> Vec<(String, String)> {
        t.changes
            .iter()
            .map(|c| (c.kind.clone(), c.key.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn one_entry_per_changed_field_with_its_type() {
        let before = ticket("open");
        let mut after = before.clone();
        after.status = "closed".into();
        after.assignees = vec!["bob".into()];
        after.body = "new".into();
        after.due = 5;
        record_changes(&before, &mut after, "ann", 1000);
        assert_eq!(
            keys(&after),
            vec![
                ("change".into(), "body".into()),
                ("status".into(), "status".into()),
                ("assignment".into(), "assignees".into()),
                ("change".into(), "due".into()),
            ]
        );
        assert_eq!(after.changes[0].value, None, "body changes carry no value");
        assert_eq!(after.changes[1].value, Some(json!("closed")));
    }

    #[test]
    fn drafts_record_nothing() {
        let before = ticket("draft");
        let mut after = before.clone();
        after.subject = "other".into();
        record_changes(&before, &mut after, "ann", 1000);
        assert!(after.changes.is_empty());
        after.status = "open".into();
        record_changes(&before, &mut after, "ann", 1000);
        assert_eq!(after.changes.len(), 2, "publishing records the edits");
    }

    #[test]
    fn same_minute_same_key_collapses() {
        let mut t = ticket("open");
        for (i, (date, status)) in [(1000, "on_hold"), (1030, "in_progress"), (1200, "closed")]
            .iter()
            .enumerate()
        {
            let before = t.clone();
            t.status = status.to_string();
            record_changes(&before, &mut t, "ann", *date);
            assert!(t.changes.len() <= i + 1);
        }
        let values: Vec<_> = t.changes.iter().map(|c| c.value.clone().unwrap()).collect();
        assert_eq!(values, vec![json!("in_progress"), json!("closed")]);
        // A different user's edit in the same minute is its own entry.
        let before = t.clone();
        t.status = "open".into();
        record_changes(&before, &mut t, "bob", 1210);
        assert_eq!(t.changes.len(), 3);
    }
}
