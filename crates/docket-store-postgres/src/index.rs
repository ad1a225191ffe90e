//! The search index columns of a ticket row, built in Rust from the same analyzed document
//! the SQLite store indexes (`docket_core::search_doc::ticket_doc`).
//!
//! Text fields become a tsvector literal (`'tok':1,5 'other':2`) of the analyzer's tokens
//! with their positions (1-based token index), so phrases are matched by position exactly
//! as FTS5 matches them; the `PART_BREAK` tokens stay in, so a phrase never spans two parts.
//! PostgreSQL limits what a tsvector can say: positions above 16383 are all stored as 16383,
//! a lexeme keeps at most 256 positions, and the whole value must stay under 1 MB. A field
//! beyond any of these would match phrases wrongly (or fail to store), so it is stored as
//! its token text (`*_raw`, matched by substring) with an empty tsvector instead.

use std::collections::HashMap;

use docket_core::model::Ticket;
use docket_core::search_doc::{list_sort_key, ticket_doc};
use docket_query::{Doc, TextField};
use sha2::{Digest, Sha256};

/// The highest position a tsvector stores faithfully (PostgreSQL's MAXENTRYPOS - 1).
pub const MAX_POSITION: usize = 16_383;
/// Positions a tsvector keeps per lexeme (PostgreSQL's MAXNUMPOS is 256; one less to be safe).
pub const MAX_POSITIONS_PER_LEXEME: usize = 255;
/// A tsvector's lexeme and position data must stay under 1 MB (MAXSTRPOS); keep a margin.
pub const MAX_TSVECTOR_BYTES: usize = 1_000_000;
/// Longest keyword value stored as itself; longer ones (or ones PostgreSQL text cannot hold)
/// are stored hashed, since a GIN entry must stay under ~2.7 kB.
const MAX_PLAIN_KEYWORD: usize = 512;
/// Bytes of the subject sort key kept in the indexed column.
pub const SUBJECT_KEY_BYTES: usize = 1024;

/// One text field's index: a tsvector literal, or (beyond its limits) the raw token text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextIndex {
    pub tsv: String,
    pub raw: Option<String>,
}

/// Every derived column of a ticket row.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub num: i64,
    pub id: String,
    pub created: i64,
    pub modified: i64,
    pub due: i64,
    pub subject: String,
    pub subject_key: Vec<u8>,
    pub subject_rest: Vec<u8>,
    pub status: String,
    pub kind: String,
    pub category: String,
    pub dedupe_key: Option<String>,
    /// `search_doc::list_sort_key` of the assignees and of the tags.
    pub assignee_key: String,
    pub tag_key: String,
    /// The priority level, whose rank the statement looks up in `priority_levels`.
    pub priority: String,
    pub data: String,
    /// The keyword entries (sorted, distinct).
    pub keywords: Vec<String>,
    pub subject_text: TextIndex,
    pub body_text: TextIndex,
    pub changes_text: TextIndex,
}

/// PostgreSQL text cannot hold NUL; the columns that copy a ticket field drop it (the JSON
/// record in `data` keeps the exact value, escaped).
pub fn no_nul(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "")
    } else {
        s.to_string()
    }
}

impl TicketRow {
    /// The row of a ticket whose `num` is already set.
    pub fn new(ticket: &Ticket) -> docket_core::Result<TicketRow> {
        let data = serde_json::to_string(ticket).map_err(docket_core::Error::internal)?;
        let doc = ticket_doc(ticket);
        let (subject_key, subject_rest) = subject_key(&ticket.subject);
        let text = |f: TextField| text_index(doc.text.get(&f).map(Vec::as_slice).unwrap_or(&[]));
        Ok(TicketRow {
            num: ticket.num,
            id: ticket.id.clone(),
            created: ticket.created,
            modified: ticket.modified,
            due: ticket.due,
            subject: no_nul(&ticket.subject),
            subject_key,
            subject_rest,
            status: no_nul(&ticket.status),
            kind: no_nul(&ticket.kind),
            category: no_nul(&ticket.category),
            dedupe_key: (!ticket.dedupe_key.is_empty()).then(|| no_nul(&ticket.dedupe_key)),
            assignee_key: list_sort_key(&ticket.assignees),
            tag_key: list_sort_key(&ticket.tags),
            priority: no_nul(&ticket.priority),
            data,
            keywords: keyword_entries(&doc),
            subject_text: text(TextField::Subject),
            body_text: text(TextField::Body),
            changes_text: text(TextField::Changes),
        })
    }
}

impl TicketRow {
    /// The keyword entries as JSON array text: multi-row statements pass each row's entries
    /// through `json_array_elements_text`, so rows of different keyword counts travel in one
    /// array parameter.
    pub fn keywords_json(&self) -> String {
        serde_json::Value::from(self.keywords.clone()).to_string()
    }
}

/// SQLite's NOCASE key: ASCII A-Z folded to a-z, every other byte as is; split at
/// [`SUBJECT_KEY_BYTES`].
pub fn subject_key(subject: &str) -> (Vec<u8>, Vec<u8>) {
    let mut key: Vec<u8> = subject.bytes().map(|b| b.to_ascii_lowercase()).collect();
    let rest = if key.len() > SUBJECT_KEY_BYTES {
        key.split_off(SUBJECT_KEY_BYTES)
    } else {
        Vec::new()
    };
    (key, rest)
}

/// The stored form of one keyword: `field:value`, or `field:§<sha256 hex>` for a value that
/// is long, not ASCII or holds NUL (normalized values are ASCII, so the two forms never
/// collide). Queries map their values the same way.
pub fn keyword_entry(field: &str, value: &str) -> String {
    if value.len() <= MAX_PLAIN_KEYWORD && value.bytes().all(|b| b != 0 && b.is_ascii()) {
        format!("{field}:{value}")
    } else {
        format!(
            "{field}:\u{a7}{}",
            hex::encode(Sha256::digest(value.as_bytes()))
        )
    }
}

fn keyword_entries(doc: &Doc) -> Vec<String> {
    let mut out: Vec<String> = doc
        .keywords
        .iter()
        .flat_map(|(field, values)| values.iter().map(|v| keyword_entry(field.name(), v)))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Quotes a lexeme for a tsvector / tsquery literal. Analyzer tokens are `[a-z0-9_]`, so
/// this never changes one, but a quote or backslash could not break out anyway.
pub fn quote_lexeme(token: &str) -> String {
    let mut out = String::with_capacity(token.len() + 2);
    out.push('\'');
    for c in token.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The index of one text field's tokens.
pub fn text_index(tokens: &[String]) -> TextIndex {
    let mut positions: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let entry = positions.entry(t.as_str()).or_default();
        if entry.is_empty() {
            order.push(t.as_str());
        }
        entry.push(i + 1);
    }
    let too_long = tokens.len() > MAX_POSITION;
    let too_many = positions
        .values()
        .any(|p| p.len() > MAX_POSITIONS_PER_LEXEME);
    // Lexeme bytes (aligned) plus a count and two bytes per position, as PostgreSQL stores it.
    let size: usize = positions
        .iter()
        .map(|(t, p)| t.len() + 1 + 2 + 2 * p.len())
        .sum();
    let unusual = tokens
        .iter()
        .any(|t| t.is_empty() || t.contains('\0') || t.contains(' ') || t.len() > 2000);
    if too_long || too_many || size > MAX_TSVECTOR_BYTES || unusual {
        let mut raw = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum::<usize>() + 1);
        raw.push(' ');
        for t in tokens {
            raw.push_str(&t.replace('\0', ""));
            raw.push(' ');
        }
        return TextIndex {
            tsv: String::new(),
            raw: Some(raw),
        };
    }
    let mut tsv = String::new();
    for t in order {
        if !tsv.is_empty() {
            tsv.push(' ');
        }
        tsv.push_str(&quote_lexeme(t));
        tsv.push(':');
        for (i, p) in positions[t].iter().enumerate() {
            if i > 0 {
                tsv.push(',');
            }
            tsv.push_str(&p.to_string());
        }
    }
    TextIndex { tsv, raw: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn tsvector_literals_keep_positions() {
        let idx = text_index(&toks("disk full disk"));
        assert_eq!(idx.tsv, "'disk':1,3 'full':2");
        assert_eq!(idx.raw, None);
        assert_eq!(quote_lexeme("a'b\\c"), "'a''b\\\\c'");
        assert_eq!(text_index(&[]).tsv, "");
    }

    #[test]
    fn fields_beyond_tsvector_limits_are_kept_raw() {
        let long: Vec<String> = (0..=MAX_POSITION)
            .map(|i| format!("w{}", i % 100))
            .collect();
        let idx = text_index(&long);
        assert!(idx.tsv.is_empty());
        assert!(idx.raw.as_deref().unwrap().starts_with(" w0 w1 "));
        let repeated: Vec<String> = (0..300).map(|_| "same".to_string()).collect();
        assert!(text_index(&repeated).raw.is_some());
        let fits: Vec<String> = (0..255).map(|_| "same".to_string()).collect();
        assert!(text_index(&fits).raw.is_none());
    }

    #[test]
    fn subject_keys_fold_ascii_only() {
        assert_eq!(subject_key("ÀbC").0, "Àbc".as_bytes());
        let long = "A".repeat(SUBJECT_KEY_BYTES + 3);
        let (key, rest) = subject_key(&long);
        assert_eq!((key.len(), rest), (SUBJECT_KEY_BYTES, b"aaa".to_vec()));
    }

    #[test]
    fn odd_keywords_are_hashed() {
        assert_eq!(keyword_entry("tags", "ops"), "tags:ops");
        let h = keyword_entry("tags", "a\0b");
        assert!(h.starts_with("tags:\u{a7}") && h.len() == 5 + 2 + 64);
        assert_ne!(keyword_entry("tags", &"x".repeat(600)), h);
    }
}
