//! Relations between tickets: their types, the rules of adding and removing one, and the
//! history entries both tickets get. No IO: the kernel loads both tickets and applies
//! [`link`] / [`unlink`] to them in one transaction.
//!
//! An entry `{type, num, id}` on ticket T says what ticket `num` is to T:
//!
//! | type           | meaning on T                        | entry on the other ticket |
//! |----------------|-------------------------------------|---------------------------|
//! | `parent`       | `num` is T's parent                 | `child`                   |
//! | `child`        | `num` is a child of T               | `parent`                  |
//! | `blocks`       | T blocks `num`                      | `blocked_by`              |
//! | `blocked_by`   | T is blocked by `num`               | `blocks`                  |
//! | `duplicate_of` | T is a duplicate of `num`           | `duplicates`              |
//! | `duplicates`   | `num` is a duplicate of T           | `duplicate_of`            |
//! | `relates`      | T and `num` are related             | `relates`                 |

use serde_json::json;

use crate::error::{Error, Result};
use crate::ids::{new_id, IdKind};
use crate::model::{Change, Relation, Ticket};

pub const PARENT: &str = "parent";
pub const CHILD: &str = "child";
pub const BLOCKS: &str = "blocks";
pub const BLOCKED_BY: &str = "blocked_by";
pub const DUPLICATE_OF: &str = "duplicate_of";
pub const DUPLICATES: &str = "duplicates";
pub const RELATES: &str = "relates";

/// Every relation type, in the order the documentation lists them.
pub const TYPES: [&str; 7] = [
    PARENT,
    CHILD,
    BLOCKS,
    BLOCKED_BY,
    DUPLICATE_OF,
    DUPLICATES,
    RELATES,
];

/// The history key of relation entries (`value`: `{action, type, num, id}`).
pub const HISTORY_KEY: &str = "relation";

/// The most relations one ticket may hold.
pub const MAX_RELATIONS: usize = 200;

/// How far up a parent chain a new parent link is checked for a cycle.
pub const MAX_PARENT_DEPTH: usize = 100;

/// The type the other ticket records for a link of `kind` (`None`: not a relation type).
pub fn inverse(kind: &str) -> Option<&'static str> {
    Some(match kind {
        PARENT => CHILD,
        CHILD => PARENT,
        BLOCKS => BLOCKED_BY,
        BLOCKED_BY => BLOCKS,
        DUPLICATE_OF => DUPLICATES,
        DUPLICATES => DUPLICATE_OF,
        RELATES => RELATES,
        _ => return None,
    })
}

/// The relation type named `kind`, or an error listing the types.
pub fn parse_type(kind: &str) -> Result<&'static str> {
    TYPES.iter().find(|t| **t == kind).copied().ok_or_else(|| {
        Error::Ticket(format!(
            "Unknown relation type: {kind:?}; the types are: {}",
            TYPES.join(", ")
        ))
    })
}

/// When a new link makes `child` a child of `parent`: `(child id, parent id)` for a link
/// of `kind` from `id` to `other`.
pub fn parent_link<'a>(kind: &str, id: &'a str, other: &'a str) -> Option<(&'a str, &'a str)> {
    match kind {
        PARENT => Some((id, other)),
        CHILD => Some((other, id)),
        _ => None,
    }
}

/// The parent of a ticket, if it has one.
pub fn parent_of(t: &Ticket) -> Option<&str> {
    t.relations
        .iter()
        .find(|r| r.kind == PARENT)
        .map(|r| r.id.as_str())
}

fn entry(kind: &str, to: &Ticket) -> Relation {
    Relation {
        kind: kind.to_string(),
        num: to.num,
        id: to.id.clone(),
        ..Default::default()
    }
}

/// The history entry of a link added or removed (`action`: `added` / `removed`).
pub fn history_entry(action: &str, kind: &str, to: &Ticket, username: &str, now: i64) -> Change {
    Change {
        id: new_id(IdKind::Change),
        kind: crate::history::CHANGE.to_string(),
        username: username.to_string(),
        date: now,
        key: Some(HISTORY_KEY.to_string()),
        value: Some(json!({"action": action, "type": kind, "num": to.num, "id": to.id})),
        ..Default::default()
    }
}

/// Checks that `a` may link to `b` as `kind` (and `b` back with the inverse).
fn check_link(a: &Ticket, b: &Ticket, kind: &str) -> Result<()> {
    let back = inverse(parse_type(kind)?).unwrap_or(RELATES);
    if a.id == b.id {
        return Err(Error::Ticket("A ticket cannot be related to itself".into()));
    }
    if let Some(r) = a.relations.iter().find(|r| r.id == b.id) {
        return Err(Error::Ticket(if r.kind == kind {
            format!(
                "Ticket #{} is already related to #{} as {kind}",
                a.num, b.num
            )
        } else {
            format!(
                "Ticket #{} is already related to #{} as {}; remove that relation first",
                a.num, b.num, r.kind
            )
        }));
    }
    for (t, k) in [(a, kind), (b, back)] {
        if t.relations.len() >= MAX_RELATIONS {
            return Err(Error::Ticket(format!(
                "Ticket #{} has {MAX_RELATIONS} relations, the most a ticket may have",
                t.num
            )));
        }
        // One parent, and a duplicate of one ticket only.
        if matches!(k, PARENT | DUPLICATE_OF) {
            if let Some(r) = t.relations.iter().find(|r| r.kind == k) {
                return Err(Error::Ticket(format!(
                    "Ticket #{} already has a {k} (#{}); remove that relation first",
                    t.num, r.num
                )));
            }
        }
    }
    Ok(())
}

/// Links `a` to `b` as `kind` and `b` to `a` as its inverse, with a history entry on each.
pub fn link(a: &mut Ticket, b: &mut Ticket, kind: &str, username: &str, now: i64) -> Result<()> {
    let back = inverse(parse_type(kind)?).unwrap_or(RELATES);
    check_link(a, b, kind)?;
    a.relations.push(entry(kind, b));
    b.relations.push(entry(back, a));
    a.changes
        .push(history_entry("added", kind, b, username, now));
    b.changes
        .push(history_entry("added", back, a, username, now));
    Ok(())
}

/// Removes the link of `a` to `b` as `kind` (and its inverse on `b`), with a history entry
/// on each. An error when there is no such link.
pub fn unlink(a: &mut Ticket, b: &mut Ticket, kind: &str, username: &str, now: i64) -> Result<()> {
    let back = inverse(parse_type(kind)?).unwrap_or(RELATES);
    let before = a.relations.len();
    a.relations.retain(|r| !(r.id == b.id && r.kind == kind));
    if a.relations.len() == before {
        return Err(Error::NotFound(format!(
            "Ticket #{} has no {kind} relation to #{}",
            a.num, b.num
        )));
    }
    b.relations.retain(|r| !(r.id == a.id && r.kind == back));
    a.changes
        .push(history_entry("removed", kind, b, username, now));
    b.changes
        .push(history_entry("removed", back, a, username, now));
    Ok(())
}

/// Removes every link of `t` to the deleted ticket `gone`, with a history entry. `false`
/// when `t` had none.
pub fn forget(t: &mut Ticket, gone: &Ticket, now: i64) -> bool {
    let removed: Vec<Relation> = t
        .relations
        .iter()
        .filter(|r| r.id == gone.id)
        .cloned()
        .collect();
    if removed.is_empty() {
        return false;
    }
    t.relations.retain(|r| r.id != gone.id);
    for r in removed {
        let mut c = history_entry("removed", &r.kind, gone, "", now);
        if let Some(v) = c.value.as_mut().and_then(|v| v.as_object_mut()) {
            v.insert("reason".into(), json!("deleted"));
        }
        t.changes.push(c);
    }
    t.modified = now;
    true
}

/// The words of a relation history entry, e.g. "Relation added: blocks #12".
pub fn describe(value: &serde_json::Value) -> String {
    let action = value.get("action").and_then(|v| v.as_str()).unwrap_or("");
    let kind = value.get("type").and_then(|v| v.as_str()).unwrap_or("");
    let num = value.get("num").and_then(|v| v.as_i64()).unwrap_or(0);
    let deleted = value.get("reason").and_then(|v| v.as_str()) == Some("deleted");
    format!(
        "Relation {action}: {} #{num}{}",
        kind.replace('_', " "),
        if deleted { " (ticket deleted)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, num: i64) -> Ticket {
        Ticket {
            id: id.into(),
            num,
            ..Default::default()
        }
    }

    #[test]
    fn every_type_has_an_inverse_that_inverts_back() {
        for kind in TYPES {
            let back = inverse(kind).expect("inverse");
            assert_eq!(inverse(back), Some(kind));
        }
        assert!(inverse("sibling").is_none());
        assert!(parse_type("sibling")
            .unwrap_err()
            .to_string()
            .contains("blocked_by"));
    }

    #[test]
    fn link_and_unlink_keep_both_ends() {
        let (mut a, mut b) = (t("a", 1), t("b", 2));
        link(&mut a, &mut b, BLOCKS, "ann", 5).unwrap();
        assert_eq!(
            (a.relations[0].kind.as_str(), a.relations[0].num),
            (BLOCKS, 2)
        );
        assert_eq!(
            (b.relations[0].kind.as_str(), b.relations[0].num),
            (BLOCKED_BY, 1)
        );
        assert_eq!(a.changes.len(), 1);
        assert_eq!(b.changes.len(), 1);
        // The same link again, or its inverse: refused.
        assert!(link(&mut a, &mut b, BLOCKS, "ann", 5).is_err());
        assert!(link(&mut b, &mut a, BLOCKS, "ann", 5).is_err());
        assert!(unlink(&mut a, &mut b, BLOCKED_BY, "ann", 6).is_err());
        unlink(&mut b, &mut a, BLOCKED_BY, "ann", 6).unwrap();
        assert!(a.relations.is_empty() && b.relations.is_empty());
        assert_eq!(a.changes.len(), 2);
    }

    #[test]
    fn self_links_second_parents_and_direct_cycles_are_refused() {
        let (mut a, mut b, mut c) = (t("a", 1), t("b", 2), t("c", 3));
        let mut a2 = a.clone();
        assert!(link(&mut a, &mut a2, RELATES, "ann", 5).is_err());
        link(&mut a, &mut b, PARENT, "ann", 5).unwrap();
        let err = link(&mut a, &mut c, PARENT, "ann", 5).unwrap_err();
        assert!(err.to_string().contains("already has a parent"), "{err}");
        // b is a's parent: a cannot become b's parent too.
        assert!(link(&mut b, &mut a, PARENT, "ann", 5).is_err());
        // c may take b as its child... b has no parent yet, so yes.
        link(&mut c, &mut b, CHILD, "ann", 5).unwrap();
        assert_eq!(parent_of(&b), Some("c"));
    }

    #[test]
    fn forgetting_a_deleted_ticket() {
        let (mut a, mut b) = (t("a", 1), t("b", 2));
        link(&mut a, &mut b, DUPLICATE_OF, "ann", 5).unwrap();
        assert!(forget(&mut b, &a, 9));
        assert!(b.relations.is_empty());
        assert!(!forget(&mut b, &a, 9));
        let last = b.changes.last().unwrap();
        assert_eq!(
            describe(last.value.as_ref().unwrap()),
            "Relation removed: duplicates #1 (ticket deleted)"
        );
    }
}
