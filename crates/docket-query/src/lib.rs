//! Docket's text analyzer and search language (SPEC §6). Pure: no IO, no clock (the current
//! time and time zone come in through [`LowerCtx`]).
//!
//! The pipeline is `query text → parse → Ast (with byte spans) → lower → Filter`, and
//! documents go through [`analyze`] / [`normalize_keyword`] at index time. Stores render a
//! [`Filter`] (its values are data, to be bound as parameters, never spliced into SQL);
//! [`matches()`] evaluates one in memory with the same semantics.
//!
//! # Grammar
//!
//! Whitespace (`ws`) is any Unicode white space. A query whose first non-space character
//! is `(` is PxQL; any other query uses the simple syntax.
//!
//! ```text
//! query      = simple | ws* pxql                        (* chosen by the first non-space char *)
//!
//! (* ---- simple syntax ---- *)
//! simple     = ws* [ clause { ws+ clause } ] ws*         (* clauses are ANDed; empty = everything *)
//! clause     = unit { ws* ("|" | "||") ws* unit }        (* units are ORed *)
//! unit       = [ sign ] "*"                             (* everything, when followed by ws, | or end *)
//!            | [ sign ] [ name ":" [ sign ] ] [ op ] value
//! sign       = "+" | "-"                                (* "-" negates; "+" is a no-op *)
//! name       = ( letter | "_" ) { letter | digit | "_" } (* not followed by "//": "https://..." is a word *)
//! op         = ">=" | "<=" | ">" | "<" | "="
//! value      = '"' { any char but '"' } '"'              (* phrase; no escapes *)
//!            | word
//!            | "this" ws+ ("month" | "year")           (* only after a date field *)
//! word       = { any char but ws, '"', "|" }-            (* at least one char *)
//! ```
//!
//! A unit without `name:` takes the field of the nearest fielded unit before it in the same
//! clause (`status:open|closed`), else the default field `body`. Two signs (`-f:-v`) cancel.
//!
//! ```text
//! (* ---- PxQL ---- *)
//! pxql       = group ws*
//! group      = "(" ws* operand { ws* logic ws* operand } ws* ")"   (* one logic kind per group *)
//! operand    = group | comparison
//! comparison = name ws* pxop ws* pxvalue
//! logic      = "&&" | "&" | "||" | "|"
//! pxop       = "==" | "=~" | "=" | "!~" | ">=" | "<=" | ">" | "<"
//! pxvalue    = '"' { char | "\" escape } '"'           (* JSON string escapes *)
//!            | { any char but ws ( ) & | " = ! < > ~ }-   (* bare numbers and words *)
//! ```
//!
//! A query is at most [`MAX_QUERY_BYTES`] long, its phrases hold at most
//! [`MAX_PHRASE_WORDS`] words together, and the stores take at most [`MAX_TERMS`] terms.
//! Groups nest at most [`MAX_DEPTH`] deep. Mixing `&` and `|` in one group is an error (as
//! in the reference): group with parentheses.
//!
//! # Value rules (lowering)
//!
//! * Field names are case-insensitive; an unknown one is an error listing the valid ones.
//! * Text fields (`subject`, `body`, `changes`): the value goes through the analyzer
//!   ([`analyze_plain`]); one token is a word match, several (a quoted phrase, `foo-bar`,
//!   a dotted name like `grafana.example.com`) an exact phrase; no token at all is an
//!   error. Digit-dot-digit runs (`2.5`) are one token.
//! * Keyword fields: the whole value, [`normalize_keyword`]ed, must equal one of the field's
//!   values. `=`, `==`, `=~` and the simple `field:value` all mean this (`=~` is equality,
//!   not substring: keyword values are whole values).
//! * `num`: an integer; `5` = [5, 6), `>5` = [6, ∞), `<=5` = (−∞, 6), `5..10` = [5, 11);
//!   either side of `..` may be left empty.
//! * Dates (`created`, `modified`, `due`), at day precision in [`LowerCtx::tz`]:
//!   `YYYY-MM-DD`, `YYYY/MM/DD`, `MM-DD-YYYY` (also `/`, and `_` anywhere), `YYYY-MM`,
//!   `YYYY`, epoch seconds (5 to 12 digits; the day containing it), `today`, `now` (today),
//!   `yesterday`, `tomorrow`, `this month`, `this year`. Each names a period X: `=` X is
//!   [start X, end X), `>` X is [end X, ∞), `>=` X is [start X, ∞), `<` X is (−∞, start X),
//!   `<=` X is (−∞, end X), `a..b` is [start a, end b). A start after the end is an error.
//! * `due` terms always require `due >= 1`, so a ticket without a due date (0) never
//!   matches one (its negation, `-due:today`, does match it).
//! * `>`, `<`, `>=`, `<=` on a text or keyword field are errors, except `priority`, whose
//!   levels are ordered by configuration ([`compile_with`]): `priority:>=high` is the OR of
//!   `high` and every level above it; `=`, `==`, `=~` and no operator mean the same on
//!   every field.
//! * `!~` and `-` are logical NOT; a query of only negative terms means "all except".
//!
//! Error messages are one sentence with the byte position (`at position N`); the
//! [`QueryError`] also carries the span and, often, a hint.
//!
//! # Example
//!
//! ```
//! use docket_query::{compile, Filter, KeywordField, LowerCtx, TextField};
//!
//! let ctx = LowerCtx { tz: jiff::tz::TimeZone::UTC, now: jiff::Timestamp::UNIX_EPOCH };
//! let filter = compile("status:Open \"disk full\"", &ctx).unwrap();
//! assert_eq!(
//!     filter,
//!     Filter::And(vec![
//!         Filter::Keyword { field: KeywordField::Status, value: "open".into() },
//!         Filter::Text { field: TextField::Body, tokens: vec!["disk".into(), "full".into()], phrase: true },
//!     ])
//! );
//! let err = compile("stauts:open", &ctx).unwrap_err();
//! assert!(err.message.starts_with("Unknown search field \"stauts\" at position 0"));
//! assert_eq!(err.hint.as_deref(), Some("did you mean \"status\"?"));
//! ```

mod analyzer;
mod ast;
mod error;
mod eval;
mod lower;
mod parser;
pub mod phrase;
mod schema;

pub use analyzer::{
    analyze, analyze_plain, normalize_keyword, ANALYZER_VERSION, MAX_WORD_LEN, NONE_KEYWORD,
};
pub use ast::{Ast, AstKind, CompareOp, Ident, Span, Term, Value};
pub use error::QueryError;
pub use eval::{matches, Doc};
pub use lower::{
    compile, compile_with, lower, phrase_words, Filter, LowerCtx, MAX_PHRASE_WORDS,
    MAX_QUERY_BYTES, MAX_TERMS,
};
pub use parser::{parse, MAX_DEPTH};
pub use schema::{field_by_name, Field, KeywordField, RangeField, TextField};

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// xorshift64*: a tiny deterministic PRNG so the fuzz test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    const SYNTAX: &[char] = &[
        '(', ')', '"', '|', '&', '-', '+', ':', '<', '>', '=', '~', '.', '*', '!', '\\', ' ', ' ',
        ' ', '\t', '\n', '\'', '/', '#', '`', '[', ']',
    ];
    const UNICODE: &[char] = &[
        'é', 'ß', '木', 'ネ', '😀', '\u{0}', '\u{301}', 'İ', 'ﬁ', '\u{200b}', '’',
    ];
    const WORDS: &[&str] = &[
        "status",
        "subject",
        "body",
        "num",
        "created",
        "due",
        "tags",
        "this",
        "month",
        "year",
        "today",
        "2024-01-15",
        "5..10",
        "https://x.com/a",
        "<b>",
        "```",
        "&amp;",
        "open",
        "(status = \"open\"",
        " & ",
        " | ",
        "!~",
        "..",
    ];

    fn random_query(rng: &mut Rng) -> String {
        let len = rng.below(200);
        let mut s = String::new();
        while s.len() < len {
            match rng.below(10) {
                0..=3 => s.push(SYNTAX[rng.below(SYNTAX.len())]),
                4..=5 => s.push((b'a' + rng.below(26) as u8) as char),
                6 => s.push((b'0' + rng.below(10) as u8) as char),
                7 => s.push(UNICODE[rng.below(UNICODE.len())]),
                _ => s.push_str(WORDS[rng.below(WORDS.len())]),
            }
        }
        s
    }

    #[test]
    fn fuzz_parse_lower_analyze_never_panic() {
        let ctx = LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        };
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let started = Instant::now();
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..10_000 {
            let query = random_query(&mut rng);
            // PxQL half the time, so both parsers get exercised.
            let query = if rng.below(2) == 0 {
                format!("({query}")
            } else {
                query
            };
            match compile(&query, &ctx) {
                Ok(filter) => {
                    ok += 1;
                    let _ = matches(&filter, &Doc::default());
                }
                Err(e) => {
                    failed += 1;
                    assert!(!e.message.is_empty());
                    assert!(
                        e.span.start <= e.span.end && e.span.end <= query.len(),
                        "{query:?}: {e:?}"
                    );
                    assert!(e.message.contains("position"), "{query:?}: {}", e.message);
                }
            }
            for token in analyze(&query) {
                assert!(
                    !token.is_empty() && token.len() <= MAX_WORD_LEN,
                    "{query:?} → {token:?}"
                );
                assert!(token
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            }
        }
        assert!(ok > 100 && failed > 100, "ok={ok} failed={failed}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "fuzzing took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn pathological_inputs_are_errors_not_crashes() {
        let ctx = LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        };
        let deep = "(".repeat(10_000);
        let err = compile(&deep, &ctx).unwrap_err();
        assert!(err.message.contains("nested too deeply"), "{}", err.message);
        let deep_balanced = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(compile(&deep_balanced, &ctx).is_err());
        // Deep structure the simple syntax cannot nest: only long flat lists.
        let wide = vec!["a"; 10_000].join("|");
        assert!(matches!(compile(&wide, &ctx), Ok(Filter::Or(items)) if items.len() == 10_000));
        let _ = analyze(&"[".repeat(10_000));
        let _ = analyze(&">".repeat(10_000));
        let _ = analyze(&"<div>".repeat(10_000));
        let _ = analyze(&"- ".repeat(5_000));
    }

    #[test]
    fn query_size_and_phrase_words_are_bounded() {
        let ctx = LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        };
        // An 8 MB phrase is refused before it is parsed, quickly.
        let huge = format!("\"{}\"", "word ".repeat(8 * 1024 * 1024 / 5));
        let started = Instant::now();
        let err = compile(&huge, &ctx).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "{:?}",
            started.elapsed()
        );
        assert!(
            err.message.starts_with(&format!(
                "Search query too long: at most {MAX_QUERY_BYTES} bytes"
            )),
            "{}",
            err.message
        );
        assert!(err.message.contains("position"), "{}", err.message);
        let exact = "a".repeat(MAX_QUERY_BYTES);
        assert!(compile(&exact, &ctx).is_ok());
        // A multi-byte character across the limit: the span stays on a boundary.
        let err = compile(&format!("{}é", "a".repeat(MAX_QUERY_BYTES - 1)), &ctx).unwrap_err();
        assert_eq!(err.span.start, MAX_QUERY_BYTES - 1);

        // Words in phrases count over the whole query, whatever makes the phrase.
        let phrase = |n: usize| format!("\"{}\"", vec!["disk"; n].join(" "));
        assert!(compile(&phrase(MAX_PHRASE_WORDS), &ctx).is_ok());
        let err = compile(&phrase(MAX_PHRASE_WORDS + 1), &ctx).unwrap_err();
        assert!(
            err.message.starts_with(&format!(
                "Search query too long: at most {MAX_PHRASE_WORDS} words in phrases, this one has {}",
                MAX_PHRASE_WORDS + 1
            )),
            "{}",
            err.message
        );
        let split = format!("{} subject:{}", phrase(200), phrase(100));
        assert!(compile(&split, &ctx)
            .unwrap_err()
            .message
            .contains("has 300"));
        let dotted = vec!["a"; MAX_PHRASE_WORDS + 1].join(".");
        assert!(compile(&dotted, &ctx).is_err());
        let pxql = format!("(body = \"{}\")", vec!["x"; MAX_PHRASE_WORDS + 1].join(" "));
        assert!(compile(&pxql, &ctx).is_err());
        // Single words are terms, not phrase words (the stores bound those by MAX_TERMS).
        assert!(compile(&vec!["disk"; 900].join(" "), &ctx).is_ok());
    }

    /// Long inputs of every shape: phrases near and past the word limit, long dotted and
    /// hyphenated words, many terms, queries near the byte limit. Each must compile or fail
    /// with a message within a time bound (no quadratic blow-up), and every accepted query's
    /// phrases stay within the limit. `DOCKET_FUZZ_ITERATIONS=N cargo test -p docket-query
    /// fuzz_long` runs it longer (default 300).
    #[test]
    fn fuzz_long_inputs_stay_bounded() {
        let ctx = LowerCtx {
            tz: jiff::tz::TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        };
        let iterations: usize = std::env::var("DOCKET_FUZZ_ITERATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(300);
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let started = Instant::now();
        for _ in 0..iterations {
            let words = 1 + rng.below(2 * MAX_PHRASE_WORDS);
            let pick = |rng: &mut Rng| WORDS[rng.below(WORDS.len())].replace('"', "");
            let joiner = [" ", ".", "-", "_", " | "][rng.below(5)];
            let body: Vec<String> = (0..words).map(|_| pick(&mut rng)).collect();
            let body = body.join(joiner);
            let query = match rng.below(4) {
                0 => format!("\"{body}\""),
                1 => format!("(body = \"{body}\")"),
                2 => format!("{} {body}", random_query(&mut rng)),
                _ => body.repeat(1 + rng.below(40)),
            };
            let one = Instant::now();
            match compile(&query, &ctx) {
                Ok(filter) => {
                    assert!(query.len() <= MAX_QUERY_BYTES);
                    assert!(phrase_words(&filter) <= MAX_PHRASE_WORDS, "{query:.80}");
                    let mut doc = Doc::default();
                    doc.text.insert(TextField::Body, analyze(&query));
                    let _ = matches(&filter, &doc);
                }
                Err(e) => assert!(e.span.end <= query.len() && !e.message.is_empty()),
            }
            assert!(
                one.elapsed() < Duration::from_secs(2),
                "{:?} for a {}-byte query",
                one.elapsed(),
                query.len()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{:?}",
            started.elapsed()
        );
    }
}
