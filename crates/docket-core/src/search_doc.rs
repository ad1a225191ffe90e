//! What of a ticket is searchable: the one place that turns a ticket into the analyzed
//! document every store indexes (and the in-memory evaluator checks).

use docket_query::{analyze, normalize_keyword, Doc, KeywordField, RangeField, TextField};
use serde_json::Value;

use crate::model::Ticket;

/// Placed between separately written parts (username, subject, body; history entries) so a
/// phrase never matches across a boundary. The analyzer never makes a token this long.
pub const PART_BREAK: &str = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";

fn joined(parts: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(PART_BREAK.to_string());
        }
        out.extend(analyze(part));
    }
    out
}

/// The searchable document of a ticket.
pub fn ticket_doc(t: &Ticket) -> Doc {
    let mut doc = Doc::default();
    doc.text.insert(TextField::Subject, analyze(&t.subject));
    doc.text.insert(TextField::Body, joined(&[&t.username, &t.subject, &t.body]));
    let history = changes_text(t);
    doc.text.insert(TextField::Changes, joined(&history.iter().map(String::as_str).collect::<Vec<_>>()));

    let single = |v: &str| -> Vec<String> {
        if v.is_empty() {
            Vec::new()
        } else {
            vec![normalize_keyword(v)]
        }
    };
    let many = |vs: &[String]| -> Vec<String> {
        let mut out: Vec<String> = vs.iter().map(|v| normalize_keyword(v)).filter(|v| !v.is_empty()).collect();
        out.sort();
        out.dedup();
        out
    };
    doc.keywords.insert(KeywordField::Status, single(&t.status));
    doc.keywords.insert(KeywordField::Type, single(&t.kind));
    doc.keywords.insert(KeywordField::Category, single(&t.category));
    doc.keywords.insert(KeywordField::Username, single(&t.username));
    doc.keywords.insert(KeywordField::Server, single(&t.server));
    doc.keywords.insert(KeywordField::Assignees, many(&t.assignees));
    doc.keywords.insert(KeywordField::Cc, many(&t.cc));
    doc.keywords.insert(KeywordField::Tags, many(&t.tags));
    doc.keywords.insert(KeywordField::Jobs, many(&t.jobs));

    doc.ranges.insert(RangeField::Num, t.num);
    doc.ranges.insert(RangeField::Created, t.created);
    doc.ranges.insert(RangeField::Modified, t.modified);
    doc.ranges.insert(RangeField::Due, t.due);
    doc
}

/// Comment bodies and change values, one text per history entry, in order.
fn changes_text(t: &Ticket) -> Vec<String> {
    let mut out = Vec::new();
    for c in &t.changes {
        let mut text = c.body.clone().unwrap_or_default();
        match &c.value {
            Some(Value::String(s)) => {
                text.push('\n');
                text.push_str(s);
            }
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    text.push('\n');
                    text.push_str(s);
                }
            }
            _ => {}
        }
        if !text.trim().is_empty() {
            out.push(text);
        }
    }
    out
}
