//! What of a ticket is searchable: the one place that turns a ticket into the analyzed
//! document every store indexes (and the in-memory evaluator checks).

use docket_query::{
    analyze, analyze_plain, normalize_keyword, Doc, KeywordField, RangeField, TextField,
    NONE_KEYWORD,
};
use serde_json::Value;

use crate::model::Ticket;

/// Placed between separately written parts (username, subject, body; history entries) so a
/// phrase never matches across a boundary. The analyzer never makes a token this long.
pub const PART_BREAK: &str = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

/// Analyzed tokens of several parts, with a [`PART_BREAK`] between them.
fn joined(parts: Vec<Vec<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(PART_BREAK.to_string());
        }
        out.extend(part);
    }
    out
}

/// The searchable document of a ticket. Bodies (of the ticket and of comments) are Markdown;
/// the subject, the username and change values are plain text lines, read as such (as
/// Markdown, a subject like `2024. Year in review` would lose its number to a list marker).
pub fn ticket_doc(t: &Ticket) -> Doc {
    let mut doc = Doc::default();
    doc.text
        .insert(TextField::Subject, analyze_plain(&t.subject));
    doc.text.insert(
        TextField::Body,
        joined(vec![
            analyze_plain(&t.username),
            analyze_plain(&t.subject),
            analyze(&t.body),
        ]),
    );
    doc.text
        .insert(TextField::Changes, joined(changes_tokens(t)));

    let single = |v: &str| -> Vec<String> {
        if v.is_empty() {
            Vec::new()
        } else {
            vec![normalize_keyword(v)]
        }
    };
    let many = |vs: &[String]| -> Vec<String> {
        let mut out: Vec<String> = vs
            .iter()
            .map(|v| normalize_keyword(v))
            .filter(|v| !v.is_empty())
            .collect();
        out.sort();
        out.dedup();
        out
    };
    doc.keywords.insert(KeywordField::Status, single(&t.status));
    doc.keywords.insert(KeywordField::Type, single(&t.kind));
    // Empty values that people search for ("unassigned", "untagged") get a keyword too.
    let or_none = |mut values: Vec<String>| {
        if values.is_empty() {
            values.push(NONE_KEYWORD.to_string());
        }
        values
    };
    doc.keywords
        .insert(KeywordField::Category, or_none(single(&t.category)));
    doc.keywords
        .insert(KeywordField::Username, single(&t.username));
    doc.keywords.insert(KeywordField::Server, single(&t.server));
    doc.keywords
        .insert(KeywordField::Assignees, or_none(many(&t.assignees)));
    doc.keywords.insert(KeywordField::Cc, many(&t.cc));
    doc.keywords
        .insert(KeywordField::Tags, or_none(many(&t.tags)));
    doc.keywords.insert(KeywordField::Jobs, many(&t.jobs));
    relation_keywords(t, &mut doc);
    doc.keywords
        .insert(KeywordField::Priority, single(&t.priority));

    doc.ranges.insert(RangeField::Num, t.num);
    doc.ranges.insert(RangeField::Created, t.created);
    doc.ranges.insert(RangeField::Modified, t.modified);
    doc.ranges.insert(RangeField::Due, t.due);
    doc
}

/// `parent:12`, `blocked_by:*`, `is:blocked`: per relation type the other tickets'
/// numbers and `*` (any), and the states relations give a ticket. Only fields with values
/// are inserted, so tickets without relations index nothing more.
fn relation_keywords(t: &Ticket, doc: &mut Doc) {
    use crate::relations as r;
    let mut is = Vec::new();
    for (kind, field, state) in [
        (r::PARENT, KeywordField::Parent, Some("child")),
        (r::CHILD, KeywordField::Child, Some("parent")),
        (r::BLOCKS, KeywordField::Blocks, None),
        (r::BLOCKED_BY, KeywordField::BlockedBy, Some("blocked")),
        (
            r::DUPLICATE_OF,
            KeywordField::DuplicateOf,
            Some("duplicate"),
        ),
        (r::DUPLICATES, KeywordField::Duplicates, None),
        (r::RELATES, KeywordField::Relates, None),
    ] {
        let mut values: Vec<String> = t
            .relations
            .iter()
            .filter(|x| x.kind == kind)
            .map(|x| x.num.to_string())
            .collect();
        if values.is_empty() {
            continue;
        }
        values.push("*".to_string());
        values.sort();
        values.dedup();
        doc.keywords.insert(field, values);
        is.extend(state.map(str::to_string));
    }
    if !is.is_empty() {
        is.sort();
        doc.keywords.insert(KeywordField::Is, is);
    }
}

/// Longest list sort key kept, in bytes: a PostgreSQL btree entry must stay under ~2.7 kB,
/// and real usernames and tag ids are far shorter. Both stores store the same cut key, so
/// they order identically.
pub const LIST_SORT_KEY_BYTES: usize = 512;

/// The sort key of a list field (`assignees`, `tags`): its alphabetically first value,
/// normalized as the keyword index normalizes it (ASCII-folded, lowercased, trimmed; values
/// that normalize to nothing are ignored, as the index ignores them), or `""` for an empty
/// list, so such tickets sort first going up. NUL is dropped (PostgreSQL text cannot hold
/// it) and the key is cut at [`LIST_SORT_KEY_BYTES`]. Normalized values are ASCII, so byte
/// order (SQLite BINARY, PostgreSQL `COLLATE "C"`) is alphabetical order.
pub fn list_sort_key(values: &[String]) -> String {
    let Some(mut key) = values
        .iter()
        .map(|v| normalize_keyword(v).replace('\0', ""))
        .filter(|v| !v.is_empty())
        .min()
    else {
        return String::new();
    };
    if key.len() > LIST_SORT_KEY_BYTES {
        let mut cut = LIST_SORT_KEY_BYTES;
        while !key.is_char_boundary(cut) {
            cut -= 1;
        }
        key.truncate(cut);
    }
    key
}

/// Comment bodies (Markdown) and change values (plain), one token list per history entry,
/// in order. Internal notes are left out: the index is shared by every caller, and one who
/// may not read them must not find a ticket by their words.
fn changes_tokens(t: &Ticket) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for c in t.changes.iter().filter(|c| !c.internal) {
        let mut tokens = c.body.as_deref().map(analyze).unwrap_or_default();
        match &c.value {
            Some(Value::String(s)) => tokens.extend(analyze_plain(s)),
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    tokens.extend(analyze_plain(s));
                }
            }
            _ => {}
        }
        if !tokens.is_empty() {
            out.push(tokens);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: &[&str]) -> String {
        list_sort_key(&values.iter().map(|v| v.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn list_sort_keys_are_the_first_normalized_value() {
        assert_eq!(key(&[]), "");
        assert_eq!(key(&["  "]), "");
        assert_eq!(key(&["carol", "Bob", "alice2"]), "alice2");
        assert_eq!(key(&["Zoë", "zoe"]), "zoe");
        assert_eq!(key(&["Émile", "frank"]), "emile");
        assert_eq!(key(&["a\0b"]), "ab");
        assert_eq!(key(&[&"x".repeat(600)]).len(), LIST_SORT_KEY_BYTES);
    }
}
