//! A small in-memory evaluator of [`Filter`] with the same semantics the stores implement.
//! It is the executable definition of those semantics, used by the differential tests.

use std::collections::HashMap;

use crate::lower::Filter;
use crate::schema::{KeywordField, RangeField, TextField};

/// A ticket as the search sees it.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    /// Analyzed tokens per text field, in text order (see [`crate::analyze`]).
    pub text: HashMap<TextField, Vec<String>>,
    /// Normalized values per keyword field (see [`crate::normalize_keyword`]).
    pub keywords: HashMap<KeywordField, Vec<String>>,
    /// Number and date values; `due` = 0 means "no due date". A missing field matches no
    /// range.
    pub ranges: HashMap<RangeField, i64>,
}

/// Whether `doc` satisfies `filter`.
pub fn matches(filter: &Filter, doc: &Doc) -> bool {
    match filter {
        Filter::All => true,
        Filter::None => false,
        Filter::And(items) => items.iter().all(|f| matches(f, doc)),
        Filter::Or(items) => items.iter().any(|f| matches(f, doc)),
        Filter::Not(inner) => !matches(inner, doc),
        Filter::Text {
            field,
            tokens,
            phrase,
        } => {
            let words = doc.text.get(field).map(Vec::as_slice).unwrap_or_default();
            if *phrase && !tokens.is_empty() {
                words.windows(tokens.len()).any(|w| w == tokens.as_slice())
            } else {
                tokens.iter().all(|t| words.contains(t))
            }
        }
        Filter::Keyword { field, value } => doc
            .keywords
            .get(field)
            .is_some_and(|values| values.contains(value)),
        Filter::Range { field, min, max } => doc
            .ranges
            .get(field)
            .is_some_and(|&v| min.is_none_or(|m| v >= m) && max.is_none_or(|m| v < m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::{analyze, normalize_keyword};
    use crate::lower::{compile, LowerCtx};

    fn doc(subject: &str, body: &str, status: &str, tags: &[&str], num: i64, due: i64) -> Doc {
        let mut d = Doc::default();
        d.text.insert(TextField::Subject, analyze(subject));
        d.text
            .insert(TextField::Body, analyze(&format!("{subject}\n\n{body}")));
        d.keywords
            .insert(KeywordField::Status, vec![normalize_keyword(status)]);
        d.keywords.insert(
            KeywordField::Tags,
            tags.iter().map(|t| normalize_keyword(t)).collect(),
        );
        d.ranges.insert(RangeField::Num, num);
        d.ranges.insert(RangeField::Created, 1_718_452_800); // 2024-06-15T12:00Z
        d.ranges.insert(RangeField::Due, due);
        d
    }

    fn docs() -> Vec<Doc> {
        vec![
            doc(
                "Disk full on web01",
                "The **disk** is full. See https://grafana.example.com/d/1",
                "Open",
                &["ops", "Urgent"],
                1,
                0,
            ),
            doc(
                "Jumping cats",
                "Big cats jump over the fence; version 2.5.1",
                "closed",
                &["fun"],
                2,
                1_718_409_600,
            ),
            doc(
                "Café menu",
                "Nancy's café serves `cargo test` coffee",
                "open",
                &[],
                3,
                1_700_000_000,
            ),
        ]
    }

    #[track_caller]
    fn check(query: &str, expected: &[i64]) {
        let ctx = LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        };
        let filter = compile(query, &ctx).unwrap_or_else(|e| panic!("{query:?}: {}", e.message));
        let hits: Vec<i64> = docs()
            .iter()
            .filter(|d| matches(&filter, d))
            .map(|d| d.ranges[&RangeField::Num])
            .collect();
        assert_eq!(hits, expected, "query {query:?} ({filter:?})");
    }

    #[test]
    fn evaluates_queries() {
        let rows: &[(&str, &[i64])] = &[
            ("*", &[1, 2, 3]),
            ("", &[1, 2, 3]),
            ("disk", &[1]),
            ("jumps", &[2]),
            ("\"big cats\"", &[2]),
            ("\"fence over\"", &[]),
            ("cats big", &[2]),
            ("-cats", &[1, 3]),
            ("-cats -disk", &[3]),
            ("subject:cafe", &[3]),
            ("nancys", &[3]),
            ("2.5.1", &[2]),
            ("grafana.example.com", &[1]),
            ("grafana", &[1]),
            ("example", &[1]),
            ("\"grafana example\"", &[1]),
            ("\"see grafana.example.com\"", &[1]),
            ("grafana.example.org", &[]),
            ("cargo", &[3]),
            ("status:OPEN", &[1, 3]),
            ("tags:urgent", &[1]),
            ("tags:urgent|fun", &[1, 2]),
            ("disk|cats status:open", &[1]),
            ("num:>=2", &[2, 3]),
            ("num:1..2", &[1, 2]),
            ("due:<2024-06-16", &[2, 3]),
            ("-due:<2024-06-16", &[1]),
            ("due:2024-06-15", &[2]),
            ("created:today", &[1, 2, 3]),
            ("created:<today", &[]),
            (
                "(status = \"open\" & (subject =~ \"disk\" | body =~ \"coffee\"))",
                &[1, 3],
            ),
            ("(subject !~ \"disk full\")", &[2, 3]),
            ("changes:anything", &[]),
            ("-changes:anything", &[1, 2, 3]),
        ];
        for (query, expected) in rows {
            check(query, expected);
        }
    }

    #[test]
    fn missing_fields() {
        let empty = Doc::default();
        let range = Filter::Range {
            field: RangeField::Num,
            min: None,
            max: None,
        };
        assert!(!matches(&range, &empty));
        let kw = Filter::Keyword {
            field: KeywordField::Tags,
            value: "x".into(),
        };
        assert!(!matches(&kw, &empty));
        assert!(matches(&Filter::Not(Box::new(kw)), &empty));
    }
}
