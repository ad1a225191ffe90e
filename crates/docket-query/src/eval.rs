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
                contains_run(words, tokens)
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

/// Whether `needle` occurs as a consecutive run in `hay`, in O(|hay| + |needle|)
/// comparisons (Knuth–Morris–Pratt): sliding windows would compare up to
/// |hay| × |needle| tokens, and a phrase of repeated words against a text of the same word
/// is exactly that worst case.
fn contains_run(hay: &[String], needle: &[String]) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.len() > hay.len() {
        return false;
    }
    // fail[i]: length of the longest proper border of needle[..=i].
    let mut fail = vec![0usize; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = fail[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        fail[i] = k;
    }
    let mut k = 0;
    for word in hay {
        while k > 0 && *word != needle[k] {
            k = fail[k - 1];
        }
        if *word == needle[k] {
            k += 1;
            if k == needle.len() {
                return true;
            }
        }
    }
    false
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

    #[test]
    fn phrase_runs_match_like_windows() {
        let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..5_000 {
            let hay: Vec<String> = (0..next() % 12)
                .map(|_| ["a", "b", "c"][(next() % 3) as usize].to_string())
                .collect();
            let needle: Vec<String> = (0..1 + next() % 4)
                .map(|_| ["a", "b", "c"][(next() % 3) as usize].to_string())
                .collect();
            let expected = hay.windows(needle.len()).any(|w| w == needle.as_slice());
            assert_eq!(contains_run(&hay, &needle), expected, "{hay:?} {needle:?}");
        }
        assert!(contains_run(&words("a a b a a a b"), &words("a a a b")));
        assert!(!contains_run(&words("a b"), &words("a b c")));
    }

    #[test]
    fn phrase_matching_is_linear() {
        // The quadratic case of sliding windows: "w w w … w x" against "w w w … w"
        // (100k × 50k token comparisons). Linear matching answers in milliseconds.
        let hay = vec!["w".to_string(); 100_000];
        let mut needle = vec!["w".to_string(); 50_000];
        needle.push("x".into());
        let started = std::time::Instant::now();
        assert!(!contains_run(&hay, &needle));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
