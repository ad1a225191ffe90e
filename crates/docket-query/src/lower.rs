//! Lowering: [`Ast`] → [`Filter`], the small IR the stores render. Here field names are
//! checked against the registry, values are analyzed / normalized / parsed into bounds
//! (dates at day precision in the configured time zone), and the tree is simplified.
//! The IR holds values only, never query syntax, so a backend binds them as parameters.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::analyzer::{analyze_plain, normalize_keyword};
use crate::ast::{Ast, AstKind, CompareOp, Span, Term, Value};
use crate::error::{QueryError, Result};
use crate::parser::parse;
use crate::schema::{field_by_name, unknown_field, Field, KeywordField, RangeField, TextField};

/// What lowering needs from the outside world: the time zone dates are read in, and the
/// current time (for `today`, `this month`...). Passed in so that lowering stays pure.
#[derive(Debug, Clone)]
pub struct LowerCtx {
    pub tz: TimeZone,
    pub now: Timestamp,
}

/// The lowered query: what the stores render and [`crate::matches()`] evaluates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every ticket (`*` or an empty query).
    All,
    /// No ticket (only produced by simplification, e.g. `-*`).
    None,
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// Every ticket the inner filter does not match (also at the top level: `-foo` alone
    /// means "all except foo").
    Not(Box<Filter>),
    /// All `tokens` appear in `field`; if `phrase`, consecutively in that order.
    Text {
        field: TextField,
        tokens: Vec<String>,
        phrase: bool,
    },
    /// The field (possibly multi-valued) has a value equal to `value` (normalized).
    Keyword {
        field: KeywordField,
        value: String,
    },
    /// min <= field < max (either side open). For Due, lowering always sets min >= 1 so a ticket
    /// without a due date (due = 0) never matches a due term.
    Range {
        field: RangeField,
        min: Option<i64>,
        max: Option<i64>,
    },
}

/// Longest query accepted, in bytes. Checked before parsing, so the parser, the analyzer
/// and the stores never see more; far more than anyone types (1000 fielded terms fit).
pub const MAX_QUERY_BYTES: usize = 32 * 1024;

/// Most words all phrases of one query may hold together (a quoted phrase, `foo-bar`, a
/// dotted name: every text term of several tokens). A phrase costs the stores work per
/// word and per candidate position (FTS5 position lists, PostgreSQL `<->` chains and
/// substring checks), so its length is what bounds a search's cost.
pub const MAX_PHRASE_WORDS: usize = 256;

/// Most terms (words, phrases, field values, ranges) one search may have. Each becomes a
/// condition, and often a subquery, of one SQL statement; far more than anyone types.
/// The stores check it (they render the [`Filter`]).
pub const MAX_TERMS: usize = 1_000;

/// Parses and lowers a query, within [`MAX_QUERY_BYTES`] and [`MAX_PHRASE_WORDS`].
/// Without configured priority levels, `priority:>=x` is an error (see [`compile_with`]).
pub fn compile(query: &str, ctx: &LowerCtx) -> Result<Filter> {
    compile_with(query, ctx, &[])
}

/// [`compile`] with the configured priority levels, lowest first: `priority:>=high`
/// becomes the keyword terms of `high` and every level above it, so the stores need no
/// notion of level order (the index holds the level names only).
pub fn compile_with(query: &str, ctx: &LowerCtx, priorities: &[String]) -> Result<Filter> {
    if query.len() > MAX_QUERY_BYTES {
        // The position is the first byte past the limit (on a character boundary).
        let mut at = MAX_QUERY_BYTES;
        while !query.is_char_boundary(at) {
            at -= 1;
        }
        return Err(QueryError::new(
            format!(
                "Search query too long: at most {MAX_QUERY_BYTES} bytes, this one has {} \
                 (the limit starts at position {at})",
                query.len()
            ),
            Span::new(at, query.len()),
        )
        .with_hint("narrow the query down or split it into several searches"));
    }
    let filter = lower_env(&parse(query)?, &Env { ctx, priorities })?;
    let words = phrase_words(&filter);
    if words > MAX_PHRASE_WORDS {
        return Err(QueryError::new(
            format!(
                "Search query too long: at most {MAX_PHRASE_WORDS} words in phrases, this one \
                 has {words} (from position 0)"
            ),
            Span::new(0, query.len()),
        )
        .with_hint("search for a few distinctive words of the phrase instead"));
    }
    Ok(filter)
}

/// The words of all phrase terms (text terms of several tokens) of `filter`.
pub fn phrase_words(filter: &Filter) -> usize {
    match filter {
        Filter::All | Filter::None | Filter::Keyword { .. } | Filter::Range { .. } => 0,
        Filter::And(items) | Filter::Or(items) => items.iter().map(phrase_words).sum(),
        Filter::Not(inner) => phrase_words(inner),
        Filter::Text { tokens, phrase, .. } => {
            if *phrase && tokens.len() > 1 {
                tokens.len()
            } else {
                0
            }
        }
    }
}

/// What lowering reads besides the tree.
struct Env<'a> {
    ctx: &'a LowerCtx,
    /// Priority levels, lowest first (empty: level comparisons are refused).
    priorities: &'a [String],
}

/// Lowers a parsed query to a simplified [`Filter`].
pub fn lower(ast: &Ast, ctx: &LowerCtx) -> Result<Filter> {
    lower_env(
        ast,
        &Env {
            ctx,
            priorities: &[],
        },
    )
}

fn lower_env(ast: &Ast, env: &Env) -> Result<Filter> {
    Ok(match &ast.kind {
        AstKind::All => Filter::All,
        AstKind::And(items) => and(items
            .iter()
            .map(|a| lower_env(a, env))
            .collect::<Result<_>>()?),
        AstKind::Or(items) => or(items
            .iter()
            .map(|a| lower_env(a, env))
            .collect::<Result<_>>()?),
        AstKind::Not(inner) => not(lower_env(inner, env)?),
        AstKind::Term(term) => lower_term(term, env)?,
    })
}

/// AND with flattening; `All` items vanish, a `None` item wins.
fn and(items: Vec<Filter>) -> Filter {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Filter::All => {}
            Filter::None => return Filter::None,
            Filter::And(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Filter::All,
        1 => out.remove(0),
        _ => Filter::And(out),
    }
}

/// OR with flattening; `None` items vanish, an `All` item wins.
fn or(items: Vec<Filter>) -> Filter {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Filter::None => {}
            Filter::All => return Filter::All,
            Filter::Or(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => Filter::None,
        1 => out.remove(0),
        _ => Filter::Or(out),
    }
}

fn not(inner: Filter) -> Filter {
    match inner {
        Filter::All => Filter::None,
        Filter::None => Filter::All,
        Filter::Not(x) => *x,
        other => Filter::Not(Box::new(other)),
    }
}

fn resolve_field(term: &Term) -> Result<Field> {
    let Some(ident) = &term.field else {
        return Ok(Field::DEFAULT);
    };
    field_by_name(&ident.name).ok_or_else(|| unknown_field(ident))
}

fn lower_term(term: &Term, env: &Env) -> Result<Filter> {
    let field = resolve_field(term)?;
    let value = &term.value;
    match field {
        Field::Keyword(KeywordField::Priority) if term.op.is_ordering() => {
            lower_priority_order(term, env.priorities)
        }
        Field::Text(_) | Field::Keyword(_) if term.op.is_ordering() => Err(QueryError::new(
            format!(
                "Operator \"{}\" at position {} needs a number or date field, but \"{}\" is a {} field",
                term.op.symbol(),
                term.op_span.start,
                field.name(),
                field.kind()
            ),
            term.op_span,
        )
        .with_hint("comparisons work on num, created, modified, due and priority")),
        Field::Text(field) => {
            let tokens = analyze_plain(&value.text);
            if tokens.is_empty() {
                return Err(QueryError::new(
                    format!(
                        "Search term {} at position {} has no searchable words",
                        quote_for_message(value),
                        value.span.start
                    ),
                    value.span,
                )
                .with_hint("words are made of letters and digits; punctuation alone is not searchable"));
            }
            let phrase = tokens.len() > 1;
            Ok(Filter::Text { field, tokens, phrase })
        }
        Field::Keyword(field) => {
            let normalized = normalize_keyword(&value.text);
            if normalized.is_empty() {
                return Err(QueryError::new(
                    format!("Empty value for field \"{}\" at position {}", field.name(), value.span.start),
                    value.span,
                ));
            }
            Ok(Filter::Keyword { field, value: normalized })
        }
        Field::Range(field) => lower_range(field, term.op, value, env.ctx),
    }
}

/// `priority:>=high` (and `>`, `<`, `<=`): the levels on that side of the named one, in
/// the configured order, as an OR of keyword terms.
fn lower_priority_order(term: &Term, levels: &[String]) -> Result<Filter> {
    let value = &term.value;
    let wanted = normalize_keyword(&value.text);
    let Some(at) = levels.iter().position(|l| normalize_keyword(l) == wanted) else {
        let known = if levels.is_empty() {
            "no priority levels are configured".to_string()
        } else {
            format!("the levels are, lowest first: {}", levels.join(", "))
        };
        return Err(QueryError::new(
            format!(
                "Unknown priority level {} at position {}; {known}",
                quote_for_message(value),
                value.span.start
            ),
            value.span,
        )
        .with_hint("compare with a configured level, e.g. priority:>=high"));
    };
    let chosen: Vec<&String> = match term.op {
        CompareOp::Gt => levels.iter().skip(at + 1).collect(),
        CompareOp::Ge => levels.iter().skip(at).collect(),
        CompareOp::Lt => levels.iter().take(at).collect(),
        _ => levels.iter().take(at + 1).collect(),
    };
    Ok(or(chosen
        .into_iter()
        .map(|l| Filter::Keyword {
            field: KeywordField::Priority,
            value: normalize_keyword(l),
        })
        .collect()))
}

/// `"value"` for messages; a quoted value shows its quotes only once.
fn quote_for_message(value: &Value) -> String {
    format!("\"{}\"", value.text)
}

/// The interval `[start, end)` a number or date value stands for.
type Bounds = (i64, i64);

fn lower_range(field: RangeField, op: CompareOp, value: &Value, ctx: &LowerCtx) -> Result<Filter> {
    let text = value.text.as_str();
    let (min, max) = if let Some(dots) = text.find("..") {
        if op.is_ordering() {
            return Err(QueryError::new(
                format!(
                    "A range \"{text}\" at position {} cannot follow \"{}\"",
                    value.span.start,
                    op.symbol()
                ),
                value.span,
            )
            .with_hint("write either a range like 5..10 or a comparison like >=5"));
        }
        let (lo, hi) = (&text[..dots], &text[dots + 2..]);
        if lo.trim().is_empty() && hi.trim().is_empty() {
            return Err(invalid_value(field, text, value.span.start, value.span));
        }
        let lo_bounds = bound_part(field, lo, value, 0, ctx)?;
        let hi_bounds = bound_part(field, hi, value, dots + 2, ctx)?;
        let (min, max) = (lo_bounds.map(|b| b.0), hi_bounds.map(|b| b.1));
        if let (Some(a), Some(b)) = (min, max) {
            if a >= b {
                return Err(QueryError::new(
                    format!(
                        "Empty range \"{text}\" at position {}: the start is after the end",
                        value.span.start
                    ),
                    value.span,
                ));
            }
        }
        (min, max)
    } else {
        let (start, end) = bounds(field, text, value.position_of(0), value.span, ctx)?;
        match op {
            CompareOp::Eq | CompareOp::Contains => (Some(start), Some(end)),
            CompareOp::Gt => (Some(end), None),
            CompareOp::Ge => (Some(start), None),
            CompareOp::Lt => (None, Some(start)),
            CompareOp::Le => (None, Some(end)),
        }
    };
    // Due 0 means "no due date": no due term may match it.
    let min = if field == RangeField::Due {
        Some(min.map_or(1, |m| m.max(1)))
    } else {
        min
    };
    Ok(Filter::Range { field, min, max })
}

/// Bounds of one side of `a..b`; `None` for an empty side (`5..` or `..10`).
fn bound_part(
    field: RangeField,
    part: &str,
    value: &Value,
    offset: usize,
    ctx: &LowerCtx,
) -> Result<Option<Bounds>> {
    let trimmed = part.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let lead = part.len() - part.trim_start().len();
    let at = value.position_of(offset + lead);
    let span = Span::new(at, at + trimmed.len());
    bounds(field, trimmed, at, span, ctx).map(Some)
}

fn invalid_value(field: RangeField, text: &str, at: usize, span: Span) -> QueryError {
    if field.is_date() {
        QueryError::new(format!("Invalid date \"{text}\" at position {at}"), span).with_hint(
            "dates look like 2024-01-15, 2024/01/15, 01-15-2024, 2024-01, 2024, epoch seconds, \
             today, yesterday, tomorrow, now, this month or this year",
        )
    } else {
        QueryError::new(
            format!(
                "Invalid number \"{text}\" for field {} at position {at}",
                field.name()
            ),
            span,
        )
        .with_hint("num takes whole numbers, e.g. num:42, num:>=10 or num:5..10")
    }
}

fn bounds(field: RangeField, text: &str, at: usize, span: Span, ctx: &LowerCtx) -> Result<Bounds> {
    let found = if field.is_date() {
        parse_date(text, ctx).and_then(|p| p.bounds(&ctx.tz))
    } else {
        text.trim()
            .parse::<i64>()
            .ok()
            .and_then(|n| Some((n, n.checked_add(1)?)))
    };
    found.ok_or_else(|| invalid_value(field, text, at, span))
}

/// A calendar period a date value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Day(Date),
    Month(Date),
    Year(i16),
}

impl Period {
    /// `[start of the period, start of the next period)` in epoch seconds in `tz`.
    fn bounds(self, tz: &TimeZone) -> Option<Bounds> {
        let (first, next) = match self {
            Period::Day(d) => (d, d.tomorrow().ok()),
            Period::Month(d) => (d.first_of_month(), d.last_of_month().tomorrow().ok()),
            Period::Year(y) => (
                Date::new(y, 1, 1).ok()?,
                y.checked_add(1).and_then(|n| Date::new(n, 1, 1).ok()),
            ),
        };
        let day_start = |d: Date| {
            d.to_zoned(tz.clone())
                .ok()
                .map(|z| z.timestamp().as_second())
        };
        let end = match next {
            Some(d) => day_start(d)?,
            None => Timestamp::MAX.as_second(),
        };
        Some((day_start(first)?, end))
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Reads a date value: `YYYY-MM-DD`, `YYYY/MM/DD`, `MM-DD-YYYY`, `YYYY-MM`, `YYYY` (with
/// `-`, `/` or `_`), epoch seconds (5+ digits), `today`, `now`, `yesterday`, `tomorrow`,
/// `this month`, `this year`.
fn parse_date(text: &str, ctx: &LowerCtx) -> Option<Period> {
    let norm = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase();
    let today = ctx.now.to_zoned(ctx.tz.clone()).date();
    match norm.as_str() {
        "today" | "now" => return Some(Period::Day(today)),
        "yesterday" => return today.yesterday().ok().map(Period::Day),
        "tomorrow" => return today.tomorrow().ok().map(Period::Day),
        "this month" => return Some(Period::Month(today)),
        "this year" => return Some(Period::Year(today.year())),
        _ => {}
    }
    if all_digits(&norm) {
        return match norm.len() {
            4 => norm.parse().ok().filter(|&y| y >= 1).map(Period::Year),
            5..=12 => {
                let ts = Timestamp::from_second(norm.parse().ok()?).ok()?;
                Some(Period::Day(ts.to_zoned(ctx.tz.clone()).date()))
            }
            _ => None,
        };
    }
    let parts: Vec<&str> = norm.split(['-', '/', '_']).collect();
    if !parts.iter().all(|p| all_digits(p)) {
        return None;
    }
    let num = |s: &str| s.parse::<i8>().ok();
    let year = |s: &str| {
        (s.len() == 4)
            .then(|| s.parse::<i16>().ok())
            .flatten()
            .filter(|&y| y >= 1)
    };
    let short = |s: &str| s.len() <= 2;
    match parts.as_slice() {
        [y, m] if short(m) => Date::new(year(y)?, num(m)?, 1).ok().map(Period::Month),
        [y, m, d] if y.len() == 4 && short(m) && short(d) => {
            Date::new(year(y)?, num(m)?, num(d)?).ok().map(Period::Day)
        }
        [m, d, y] if short(m) && short(d) => {
            Date::new(year(y)?, num(m)?, num(d)?).ok().map(Period::Day)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_ctx() -> LowerCtx {
        LowerCtx {
            tz: TimeZone::UTC,
            now: "2024-06-15T12:00:00Z".parse().unwrap(),
        }
    }

    /// Epoch seconds of midnight UTC on a date.
    fn day(s: &str) -> i64 {
        let d: Date = s.parse().unwrap();
        d.to_zoned(TimeZone::UTC).unwrap().timestamp().as_second()
    }

    fn text(field: TextField, tokens: &[&str]) -> Filter {
        Filter::Text {
            field,
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            phrase: tokens.len() > 1,
        }
    }

    fn body(tokens: &[&str]) -> Filter {
        text(TextField::Body, tokens)
    }

    fn kw(field: KeywordField, value: &str) -> Filter {
        Filter::Keyword {
            field,
            value: value.to_string(),
        }
    }

    fn range(field: RangeField, min: Option<i64>, max: Option<i64>) -> Filter {
        Filter::Range { field, min, max }
    }

    fn not_(f: Filter) -> Filter {
        Filter::Not(Box::new(f))
    }

    #[track_caller]
    fn check_in(ctx: &LowerCtx, input: &str, expected: Filter) {
        match compile(input, ctx) {
            Ok(f) => assert_eq!(f, expected, "compile({input:?})"),
            Err(e) => panic!("compile({input:?}) failed: {}", e.message),
        }
    }

    #[track_caller]
    fn check(input: &str, expected: Filter) {
        check_in(&utc_ctx(), input, expected);
    }

    #[track_caller]
    fn check_err(input: &str, expected: &str) {
        match compile(input, &utc_ctx()) {
            Ok(f) => panic!("compile({input:?}) gave {f:?} instead of an error"),
            Err(e) => assert_eq!(e.message, expected, "compile({input:?})"),
        }
    }

    use KeywordField as K;
    use RangeField as R;
    use TextField as T;

    #[test]
    fn simple_queries() {
        let rows = vec![
            ("", Filter::All),
            ("  ", Filter::All),
            ("*", Filter::All),
            ("-*", Filter::None),
            ("jumping", body(&["jump"])),
            ("+Jumping", body(&["jump"])),
            ("-bees", not_(body(&["bee"]))),
            (
                "-bees -wasps",
                Filter::And(vec![not_(body(&["bee"])), not_(body(&["wasp"]))]),
            ),
            (
                "wildlife +jungle \"big cats\" -bees",
                Filter::And(vec![
                    body(&["wildlif"]),
                    body(&["jungl"]),
                    body(&["big", "cat"]),
                    not_(body(&["bee"])),
                ]),
            ),
            ("\"cats\"", body(&["cat"])),
            ("foo-bar", body(&["foo", "bar"])),
            ("2.5", body(&["2_5"])),
            ("Café", body(&["cafe"])),
            ("subject:\"disk full\"", text(T::Subject, &["disk", "full"])),
            (
                "-subject:\"disk full\"",
                not_(text(T::Subject, &["disk", "full"])),
            ),
            ("changes:Fixed", text(T::Changes, &["fix"])),
            ("Subject:x", text(T::Subject, &["x"])),
            ("a|b", Filter::Or(vec![body(&["a"]), body(&["b"])])),
            (
                "a|b c",
                Filter::And(vec![
                    Filter::Or(vec![body(&["a"]), body(&["b"])]),
                    body(&["c"]),
                ]),
            ),
            ("a|*", Filter::All),
            ("* foo", body(&["foo"])),
            ("status:Open", kw(K::Status, "open")),
            (
                "status:open|closed",
                Filter::Or(vec![kw(K::Status, "open"), kw(K::Status, "closed")]),
            ),
            ("status:-closed", not_(kw(K::Status, "closed"))),
            ("tags:\"Needs Review\"", kw(K::Tags, "needs review")),
            (
                "assignees:JHuckaby cc:Bob",
                Filter::And(vec![kw(K::Assignees, "jhuckaby"), kw(K::Cc, "bob")]),
            ),
            (
                "type:bug category:ops username:joe server:web01 jobs:j123",
                Filter::And(vec![
                    kw(K::Type, "bug"),
                    kw(K::Category, "ops"),
                    kw(K::Username, "joe"),
                    kw(K::Server, "web01"),
                    kw(K::Jobs, "j123"),
                ]),
            ),
            (
                "status:open body:x",
                Filter::And(vec![kw(K::Status, "open"), body(&["x"])]),
            ),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn number_queries() {
        let rows = [
            ("num:5", range(R::Num, Some(5), Some(6))),
            ("num:=5", range(R::Num, Some(5), Some(6))),
            ("num:>5", range(R::Num, Some(6), None)),
            ("num:>=5", range(R::Num, Some(5), None)),
            ("num:<5", range(R::Num, None, Some(5))),
            ("num:<=5", range(R::Num, None, Some(6))),
            ("num:5..10", range(R::Num, Some(5), Some(11))),
            ("num:5..5", range(R::Num, Some(5), Some(6))),
            ("num:5..", range(R::Num, Some(5), None)),
            ("num:..10", range(R::Num, None, Some(11))),
            ("num:>-3", range(R::Num, Some(-2), None)),
            ("num:-5", not_(range(R::Num, Some(5), Some(6)))),
            (
                "num:1|3",
                Filter::Or(vec![
                    range(R::Num, Some(1), Some(2)),
                    range(R::Num, Some(3), Some(4)),
                ]),
            ),
            ("(num > 5)", range(R::Num, Some(6), None)),
            ("(num = \"7\")", range(R::Num, Some(7), Some(8))),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn date_queries_utc() {
        let d15 = day("2024-01-15");
        let d16 = day("2024-01-16");
        let rows = [
            (
                "created:2024-01-15",
                range(R::Created, Some(d15), Some(d16)),
            ),
            (
                "created:2024/01/15",
                range(R::Created, Some(d15), Some(d16)),
            ),
            (
                "created:01-15-2024",
                range(R::Created, Some(d15), Some(d16)),
            ),
            ("created:1/15/2024", range(R::Created, Some(d15), Some(d16))),
            (
                "created:2024_01_15",
                range(R::Created, Some(d15), Some(d16)),
            ),
            (
                "created:2024-01",
                range(R::Created, Some(day("2024-01-01")), Some(day("2024-02-01"))),
            ),
            (
                "created:2024-12",
                range(R::Created, Some(day("2024-12-01")), Some(day("2025-01-01"))),
            ),
            (
                "created:2024",
                range(R::Created, Some(day("2024-01-01")), Some(day("2025-01-01"))),
            ),
            ("created:>2024-01-15", range(R::Created, Some(d16), None)),
            ("created:>=2024-01-15", range(R::Created, Some(d15), None)),
            ("created:<2024-01-15", range(R::Created, None, Some(d15))),
            ("created:<=2024-01-15", range(R::Created, None, Some(d16))),
            (
                "created:>2024-01",
                range(R::Created, Some(day("2024-02-01")), None),
            ),
            (
                "created:<=2024",
                range(R::Created, None, Some(day("2025-01-01"))),
            ),
            (
                "modified:2024-01-15..2024-02",
                range(R::Modified, Some(d15), Some(day("2024-03-01"))),
            ),
            (
                "modified:1705312800",
                range(R::Modified, Some(d15), Some(d16)),
            ), // 2024-01-15T10:00Z
            (
                "modified:today",
                range(
                    R::Modified,
                    Some(day("2024-06-15")),
                    Some(day("2024-06-16")),
                ),
            ),
            (
                "modified:now",
                range(
                    R::Modified,
                    Some(day("2024-06-15")),
                    Some(day("2024-06-16")),
                ),
            ),
            (
                "modified:yesterday",
                range(
                    R::Modified,
                    Some(day("2024-06-14")),
                    Some(day("2024-06-15")),
                ),
            ),
            (
                "modified:this month",
                range(
                    R::Modified,
                    Some(day("2024-06-01")),
                    Some(day("2024-07-01")),
                ),
            ),
            (
                "modified:>=this year",
                range(R::Modified, Some(day("2024-01-01")), None),
            ),
            (
                "modified:2024-01..this month",
                range(
                    R::Modified,
                    Some(day("2024-01-01")),
                    Some(day("2024-07-01")),
                ),
            ),
            (
                "modified:\"this month\"",
                range(
                    R::Modified,
                    Some(day("2024-06-01")),
                    Some(day("2024-07-01")),
                ),
            ),
            // due never matches tickets without a due date (due = 0)
            (
                "due:<today",
                range(R::Due, Some(1), Some(day("2024-06-15"))),
            ),
            ("due:<=1970-01-01", range(R::Due, Some(1), Some(86_400))),
            (
                "due:today",
                range(R::Due, Some(day("2024-06-15")), Some(day("2024-06-16"))),
            ),
            (
                "due:>=this month",
                range(R::Due, Some(day("2024-06-01")), None),
            ),
            (
                "(due < \"2024-07-01\")",
                range(R::Due, Some(1), Some(day("2024-07-01"))),
            ),
            (
                "(modified >= \"2016-02-22\")",
                range(R::Modified, Some(day("2016-02-22")), None),
            ),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn date_queries_move_with_time_zone() {
        let ny = LowerCtx {
            tz: TimeZone::get("America/New_York").unwrap(),
            now: "2024-06-15T02:00:00Z".parse().unwrap(),
        };
        // Midnight in New York is 05:00Z in winter (EST) and 04:00Z in summer (EDT).
        let h = 3600;
        check_in(
            &ny,
            "created:2024-01-15",
            range(
                R::Created,
                Some(day("2024-01-15") + 5 * h),
                Some(day("2024-01-16") + 5 * h),
            ),
        );
        check_in(
            &ny,
            "created:2024-07-04",
            range(
                R::Created,
                Some(day("2024-07-04") + 4 * h),
                Some(day("2024-07-05") + 4 * h),
            ),
        );
        // The DST change on 2024-03-10 makes that day 23 hours long.
        check_in(
            &ny,
            "created:2024-03-10",
            range(
                R::Created,
                Some(day("2024-03-10") + 5 * h),
                Some(day("2024-03-11") + 4 * h),
            ),
        );
        // At 02:00Z on June 15 it is still June 14 in New York.
        check_in(
            &ny,
            "created:today",
            range(
                R::Created,
                Some(day("2024-06-14") + 4 * h),
                Some(day("2024-06-15") + 4 * h),
            ),
        );
        // Epoch seconds name the New York day containing them.
        check_in(
            &ny,
            "created:1705291200",
            range(
                R::Created,
                Some(day("2024-01-14") + 5 * h),
                Some(day("2024-01-15") + 5 * h),
            ),
        );
    }

    #[test]
    fn pxql_queries() {
        let rows = vec![
            ("(status = \"open\")", kw(K::Status, "open")),
            ("(status =~ \"Open\")", kw(K::Status, "open")),
            ("(status !~ \"open\")", not_(kw(K::Status, "open"))),
            (
                "(subject = \"Released to Preproduction\")",
                text(T::Subject, &["releas", "to", "preproduct"]),
            ),
            ("(subject =~ \"amazon\")", text(T::Subject, &["amazon"])),
            (
                "(subject !~ \"big cats\")",
                not_(text(T::Subject, &["big", "cat"])),
            ),
            (
                "(status = \"open\" & (subject =~ \"amazon\" | subject =~ \"monitor\"))",
                Filter::And(vec![
                    kw(K::Status, "open"),
                    Filter::Or(vec![
                        text(T::Subject, &["amazon"]),
                        text(T::Subject, &["monitor"]),
                    ]),
                ]),
            ),
            (
                "(status = \"a\" & (status = \"b\" & (status = \"c\")))",
                Filter::And(vec![
                    kw(K::Status, "a"),
                    kw(K::Status, "b"),
                    kw(K::Status, "c"),
                ]),
            ),
            ("((body = \"x\"))", body(&["x"])),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn priority_comparisons_follow_level_order() {
        let levels: Vec<String> = ["none", "low", "normal", "high", "urgent"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let run = |q: &str| compile_with(q, &utc_ctx(), &levels);
        let p = |v: &str| kw(K::Priority, v);
        assert_eq!(
            run("priority:>=high").unwrap(),
            Filter::Or(vec![p("high"), p("urgent")])
        );
        assert_eq!(run("priority:>high").unwrap(), p("urgent"));
        assert_eq!(run("priority:<low").unwrap(), p("none"));
        assert_eq!(
            run("priority:<=low").unwrap(),
            Filter::Or(vec![p("none"), p("low")])
        );
        assert_eq!(run("priority:>urgent").unwrap(), Filter::None);
        assert_eq!(
            run("(priority >= \"High\")").unwrap(),
            Filter::Or(vec![p("high"), p("urgent")])
        );
        assert_eq!(run("priority:urgent").unwrap(), p("urgent"));
        let err = run("priority:>=hgh").unwrap_err();
        assert!(err.message.starts_with("Unknown priority level \"hgh\" at position 11; the levels are, lowest first: none, low"), "{}", err.message);
        let err = compile("priority:>=high", &utc_ctx()).unwrap_err();
        assert!(
            err.message.contains("no priority levels are configured"),
            "{}",
            err.message
        );
    }

    #[test]
    fn lowering_errors() {
        let rows = [
            (
                "stauts:open",
                "Unknown search field \"stauts\" at position 0; valid fields are: subject, body, changes, status, type, \
                 category, username, assignees, cc, tags, server, jobs, parent, child, blocks, blocked_by, duplicate_of, duplicates, relates, is, priority, num, created, modified, due",
            ),
            ("created:2024-13-45", "Invalid date \"2024-13-45\" at position 8"),
            ("x created:>=2024-02-30", "Invalid date \"2024-02-30\" at position 12"),
            ("due:next week", "Invalid date \"next\" at position 4"),
            ("created:2024-01-01..soon", "Invalid date \"soon\" at position 20"),
            ("created:123", "Invalid date \"123\" at position 8"),
            ("num:abc", "Invalid number \"abc\" for field num at position 4"),
            ("num:1.5", "Invalid number \"1.5\" for field num at position 4"),
            ("num:..", "Invalid number \"..\" for field num at position 4"),
            ("num:10..5", "Empty range \"10..5\" at position 4: the start is after the end"),
            ("num:>5..10", "A range \"5..10\" at position 5 cannot follow \">\""),
            ("!!!", "Search term \"!!!\" at position 0 has no searchable words"),
            ("foo \"...\"", "Search term \"...\" at position 4 has no searchable words"),
            ("subject:>foo", "Operator \">\" at position 8 needs a number or date field, but \"subject\" is a text field"),
            (">5", "Operator \">\" at position 0 needs a number or date field, but \"body\" is a text field"),
            ("(status > \"open\")", "Operator \">\" at position 8 needs a number or date field, but \"status\" is a keyword field"),
            ("tags:\"  \"", "Empty value for field \"tags\" at position 5"),
            ("(bogus = 1)", "Unknown search field \"bogus\" at position 1; valid fields are: subject, body, changes, status, type, \
                 category, username, assignees, cc, tags, server, jobs, parent, child, blocks, blocked_by, duplicate_of, duplicates, relates, is, priority, num, created, modified, due"),
        ];
        for (input, expected) in rows {
            check_err(input, expected);
        }
    }

    #[test]
    fn errors_carry_span_and_hint() {
        let err = compile("foo stauts:open", &utc_ctx()).unwrap_err();
        assert_eq!(err.span, Span::new(4, 10));
        assert_eq!(err.hint.as_deref(), Some("did you mean \"status\"?"));
        let err = compile("created:2024-13-45", &utc_ctx()).unwrap_err();
        assert_eq!(err.span, Span::new(8, 18));
        assert!(err.hint.unwrap().contains("2024-01-15"));
    }
}
