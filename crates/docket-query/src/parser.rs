//! The parser: query text → [`Ast`], for both syntaxes (grammar in the crate docs). It
//! checks syntax only; field names, value formats and operator/field combinations are
//! checked by lowering. It must not recurse without bound: PxQL groups count their depth.

use crate::ast::{Ast, AstKind, CompareOp, Ident, Span, Term, Value};
use crate::error::{QueryError, Result};
use crate::schema::{field_by_name, unknown_field, Field, RangeField};

/// Deepest PxQL parenthesis nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Parses a query in either syntax: PxQL if its first non-space character is `(`, the
/// simple syntax otherwise.
///
/// Grammar rule: `query`.
pub fn parse(query: &str) -> Result<Ast> {
    let mut p = Parser {
        src: query,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.peek() == Some('(') {
        p.pxql()
    } else {
        p.simple()
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

fn dangling(op: &str, at: usize) -> QueryError {
    QueryError::new(
        format!("Dangling operator \"{op}\" at position {at}"),
        Span::new(at, at + op.len()),
    )
    .with_hint("an operator needs a search term on each side (or, for + and -, right after it)")
}

fn unterminated_quote(at: usize, end: usize) -> QueryError {
    QueryError::new(
        format!("Unterminated quote at position {at}"),
        Span::new(at, end),
    )
    .with_hint("close the phrase with a double quote")
}

/// Characters that end a bare word of the simple syntax.
fn ends_simple_word(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == '|'
}

/// Characters that end a bare PxQL value.
fn ends_pxql_bare(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '&' | '|' | '"' | '=' | '!' | '<' | '>' | '~')
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn eof(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.src.len() - trimmed.len();
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consumes `s` if the input continues with it.
    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    /// Length of an identifier (`[A-Za-z_][A-Za-z0-9_]*`) at the cursor, 0 if none.
    fn ident_len(&self) -> usize {
        let rest = self.rest().as_bytes();
        if !rest
            .first()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
        {
            return 0;
        }
        rest.iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count()
    }

    // -----------------------------------------------------------------------------------
    // Simple syntax
    // -----------------------------------------------------------------------------------

    /// Rule `simple`: clauses separated by whitespace, ANDed.
    fn simple(&mut self) -> Result<Ast> {
        let mut clauses = Vec::new();
        loop {
            self.skip_ws();
            if self.eof() {
                break;
            }
            clauses.push(self.clause()?);
        }
        Ok(match clauses.len() {
            0 => Ast {
                kind: AstKind::All,
                span: Span::new(0, self.src.len()),
            },
            1 => clauses.remove(0),
            _ => {
                let span = clauses[0].span.to(clauses[clauses.len() - 1].span);
                Ast {
                    kind: AstKind::And(clauses),
                    span,
                }
            }
        })
    }

    /// Rule `clause`: units separated by `|`, ORed. A unit without a field takes the field
    /// of the nearest fielded unit before it in the clause (`status:open|closed`).
    fn clause(&mut self) -> Result<Ast> {
        let mut inherited: Option<Ident> = None;
        let mut alts = vec![self.unit(&mut inherited)?];
        loop {
            let before_ws = self.pos;
            self.skip_ws();
            if self.peek() != Some('|') {
                self.pos = before_ws;
                break;
            }
            let bar = self.pos;
            let op = if self.eat("||") {
                "||"
            } else {
                self.pos += 1;
                "|"
            };
            self.skip_ws();
            if self.eof() || self.peek() == Some('|') {
                return Err(dangling(op, bar));
            }
            alts.push(self.unit(&mut inherited)?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            let span = alts[0].span.to(alts[alts.len() - 1].span);
            Ast {
                kind: AstKind::Or(alts),
                span,
            }
        })
    }

    /// Rule `sign`: reads an optional `+`/`-`; returns whether it negates. A sign must be followed by
    /// the rest of its unit.
    fn sign(&mut self) -> Result<bool> {
        let at = self.pos;
        let negate = match self.peek() {
            Some('-') => true,
            Some('+') => false,
            _ => return Ok(false),
        };
        self.pos += 1;
        match self.peek() {
            None | Some('+' | '-' | '|') => Err(dangling(&self.src[at..at + 1], at)),
            Some(c) if c.is_whitespace() => Err(dangling(&self.src[at..at + 1], at)),
            _ => Ok(negate),
        }
    }

    /// Rule `unit`: `*`, or `[sign] [field ":" [sign]] [op] value`.
    fn unit(&mut self, inherited: &mut Option<Ident>) -> Result<Ast> {
        let start = self.pos;
        if self.peek() == Some('|') {
            let op = if self.rest().starts_with("||") {
                "||"
            } else {
                "|"
            };
            return Err(dangling(op, start));
        }
        let mut negate = self.sign()?;
        if self.peek() == Some('*') && self.peek_at(1).is_none_or(ends_simple_word) {
            self.pos += 1;
            let span = Span::new(start, self.pos);
            let all = Ast {
                kind: AstKind::All,
                span,
            };
            return Ok(if negate {
                Ast {
                    kind: AstKind::Not(Box::new(all)),
                    span,
                }
            } else {
                all
            });
        }

        // `name:` starts a fielded unit, except `scheme://` (a URL typed as a word).
        let len = self.ident_len();
        let fielded = len > 0
            && self.rest()[len..].starts_with(':')
            && !self.rest()[len + 1..].starts_with("//");
        let field = if fielded {
            let ident = Ident {
                name: self.rest()[..len].to_string(),
                span: Span::new(self.pos, self.pos + len),
            };
            self.pos += len + 1;
            *inherited = Some(ident.clone());
            if self.peek().is_none_or(ends_simple_word) && self.peek() != Some('"') {
                if field_by_name(&ident.name).is_none() {
                    return Err(unknown_field(&ident));
                }
                return Err(QueryError::new(
                    format!(
                        "Missing value for field \"{}\" at position {}",
                        ident.name, self.pos
                    ),
                    Span::new(ident.span.start, self.pos),
                )
                .with_hint(format!(
                    "write the value right after the colon, e.g. {}:value",
                    ident.name
                )));
            }
            negate ^= self.sign()?;
            Some(ident)
        } else {
            inherited.clone()
        };

        let op_at = self.pos;
        let op = self.op_prefix();
        let op_end = self.pos;
        if op != CompareOp::Eq
            && self.peek().is_none_or(ends_simple_word)
            && self.peek() != Some('"')
        {
            return Err(QueryError::new(
                format!(
                    "Missing value after \"{}\" at position {}",
                    &self.src[op_at..self.pos],
                    op_at
                ),
                Span::new(op_at, self.pos),
            ));
        }
        let mut value = self.simple_value()?;
        if let Some(ident) = &field {
            self.merge_this_period(ident, &mut value);
        }
        let span = Span::new(start, self.pos);
        let op_span = Span::new(op_at, op_end);
        let term = Ast {
            kind: AstKind::Term(Term {
                field,
                op,
                op_span,
                value,
            }),
            span,
        };
        Ok(if negate {
            Ast {
                kind: AstKind::Not(Box::new(term)),
                span,
            }
        } else {
            term
        })
    }

    /// Rule `op`: an optional comparison prefix of a simple value. `=` is accepted and
    /// means the same as no prefix.
    fn op_prefix(&mut self) -> CompareOp {
        for (text, op) in [
            (">=", CompareOp::Ge),
            ("<=", CompareOp::Le),
            (">", CompareOp::Gt),
            ("<", CompareOp::Lt),
            ("=", CompareOp::Eq),
        ] {
            if self.eat(text) {
                return op;
            }
        }
        CompareOp::Eq
    }

    /// Rule `value` of the simple syntax: a `"phrase"` (no escapes) or a bare word.
    fn simple_value(&mut self) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some('"') {
            let body = &self.rest()[1..];
            let Some(close) = body.find('"') else {
                return Err(unterminated_quote(start, self.src.len()));
            };
            self.pos += close + 2;
            return Ok(Value {
                text: body[..close].to_string(),
                quoted: true,
                span: Span::new(start, self.pos),
            });
        }
        let len = self
            .rest()
            .find(ends_simple_word)
            .unwrap_or(self.rest().len());
        self.pos += len;
        Ok(Value {
            text: self.src[start..self.pos].to_string(),
            quoted: false,
            span: Span::new(start, self.pos),
        })
    }

    /// Rule `value`, last alternative: after a date field, `this month` and `this year` are one value although they contain
    /// a space (also as the end of a range: `created:2024-01..this month`).
    fn merge_this_period(&mut self, field: &Ident, value: &mut Value) {
        let is_date =
            matches!(field_by_name(&field.name), Some(Field::Range(f)) if RangeField::is_date(&f));
        let lower = value.text.to_ascii_lowercase();
        if !is_date || value.quoted || !(lower == "this" || lower.ends_with("..this")) {
            return;
        }
        let after_ws = self.rest().trim_start();
        if after_ws.len() == self.rest().len() {
            return;
        }
        for unit in ["month", "year"] {
            let matches_unit = after_ws.len() >= unit.len()
                && after_ws.as_bytes()[..unit.len()].eq_ignore_ascii_case(unit.as_bytes())
                && after_ws[unit.len()..]
                    .chars()
                    .next()
                    .is_none_or(ends_simple_word);
            if matches_unit {
                let unit_start = self.src.len() - after_ws.len();
                self.pos = unit_start + unit.len();
                value.text = format!("{} {}", value.text, &self.src[unit_start..self.pos]);
                value.span.end = self.pos;
                return;
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // PxQL
    // -----------------------------------------------------------------------------------

    /// Rule `pxql`: one group, nothing after it.
    fn pxql(&mut self) -> Result<Ast> {
        let ast = self.group()?;
        self.skip_ws();
        match self.peek() {
            None => Ok(ast),
            Some(')') => Err(QueryError::new(
                format!("Unbalanced parenthesis at position {}", self.pos),
                Span::new(self.pos, self.pos + 1),
            )
            .with_hint("this closing parenthesis has no opening one")),
            Some(c) => Err(QueryError::new(
                format!(
                    "Unexpected \"{c}\" at position {} after the end of the query",
                    self.pos
                ),
                Span::new(self.pos, self.pos + c.len_utf8()),
            )
            .with_hint("a PxQL query is one parenthesized group; join expressions with & or |")),
        }
    }

    /// Rule `group`: `(` operands joined by one kind of logic operator `)`.
    fn group(&mut self) -> Result<Ast> {
        let open = self.pos;
        self.pos += 1; // the caller saw '('
        if self.depth >= MAX_DEPTH {
            return Err(QueryError::new(
                format!("Query nested too deeply at position {open}; the limit is {MAX_DEPTH} levels of parentheses"),
                Span::new(open, open + 1),
            ));
        }
        self.depth += 1;
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(QueryError::new(
                format!("Empty parentheses at position {open}"),
                Span::new(open, self.pos + 1),
            ));
        }
        let mut items = vec![self.operand()?];
        // The logic operator of this group and where it was first seen.
        let mut mode: Option<(bool, usize)> = None;
        loop {
            self.skip_ws();
            let at = self.pos;
            match self.peek() {
                None => {
                    return Err(QueryError::new(
                        format!("Unbalanced parenthesis at position {open}"),
                        Span::new(open, self.src.len()),
                    )
                    .with_hint("this opening parenthesis is never closed"))
                }
                Some(')') => {
                    self.pos += 1;
                    break;
                }
                Some(c @ ('&' | '|')) => {
                    let doubled = self.peek_at(1) == Some(c);
                    self.pos += if doubled { 2 } else { 1 };
                    let op = &self.src[at..self.pos];
                    let is_or = c == '|';
                    match mode {
                        Some((was_or, _)) if was_or != is_or => return Err(QueryError::new(
                            format!("Ambiguous mix of \"&\" and \"|\" at position {at}"),
                            Span::new(at, self.pos),
                        )
                        .with_hint(
                            "use parentheses to group, e.g. (a = \"x\" & (b = \"y\" | c = \"z\"))",
                        )),
                        Some(_) => {}
                        None => mode = Some((is_or, at)),
                    }
                    self.skip_ws();
                    if matches!(self.peek(), None | Some(')' | '&' | '|')) {
                        return Err(dangling(op, at));
                    }
                    items.push(self.operand()?);
                }
                Some(c) => {
                    return Err(QueryError::new(
                        format!(
                            "Expected \"&\", \"|\" or \")\" at position {at} but found \"{c}\""
                        ),
                        Span::new(at, at + c.len_utf8()),
                    )
                    .with_hint("PxQL values need double quotes when they contain spaces"))
                }
            }
        }
        self.depth -= 1;
        let span = Span::new(open, self.pos);
        Ok(if items.len() == 1 {
            items.remove(0)
        } else if matches!(mode, Some((true, _))) {
            Ast {
                kind: AstKind::Or(items),
                span,
            }
        } else {
            Ast {
                kind: AstKind::And(items),
                span,
            }
        })
    }

    /// Rule `operand`: a nested group or a comparison.
    fn operand(&mut self) -> Result<Ast> {
        if self.peek() == Some('(') {
            self.group()
        } else {
            self.comparison()
        }
    }

    /// Rule `comparison`: `ident op value`.
    fn comparison(&mut self) -> Result<Ast> {
        let start = self.pos;
        if let Some(c @ ('&' | '|')) = self.peek() {
            let len = if self.peek_at(1) == Some(c) { 2 } else { 1 };
            return Err(dangling(&self.src[start..start + len], start));
        }
        let len = self.ident_len();
        if len == 0 {
            let found = self
                .peek()
                .map(|c| format!(" but found \"{c}\""))
                .unwrap_or_default();
            return Err(QueryError::new(
                format!("Expected a field name at position {start}{found}"),
                Span::new(start, start + self.peek().map_or(0, char::len_utf8)),
            )
            .with_hint("PxQL expressions look like: field = \"value\""));
        }
        let ident = Ident {
            name: self.rest()[..len].to_string(),
            span: Span::new(start, start + len),
        };
        self.pos += len;
        self.skip_ws();
        let op_at = self.pos;
        let (op, negate) = if self.eat("==") || self.eat("=~") || self.eat("=") {
            let op = if &self.src[op_at..self.pos] == "=~" {
                CompareOp::Contains
            } else {
                CompareOp::Eq
            };
            (op, false)
        } else if self.eat("!~") {
            (CompareOp::Contains, true)
        } else if self.eat(">=") {
            (CompareOp::Ge, false)
        } else if self.eat("<=") {
            (CompareOp::Le, false)
        } else if self.eat(">") {
            (CompareOp::Gt, false)
        } else if self.eat("<") {
            (CompareOp::Lt, false)
        } else if self.rest().starts_with("!=") {
            return Err(QueryError::new(
                format!("Unknown operator \"!=\" at position {op_at}"),
                Span::new(op_at, op_at + 2),
            )
            .with_hint("use !~ for \"does not contain\""));
        } else {
            return Err(QueryError::new(
                format!(
                    "Expected an operator after field \"{}\" at position {op_at}",
                    ident.name
                ),
                Span::new(op_at, op_at + self.peek().map_or(0, char::len_utf8)),
            )
            .with_hint("operators are = == =~ !~ > < >= <="));
        };
        let op_span = Span::new(op_at, self.pos);
        let op_text = &self.src[op_at..self.pos];
        self.skip_ws();
        let value = self.pxql_value(op_text, op_at)?;
        let span = Span::new(start, self.pos);
        let term = Ast {
            kind: AstKind::Term(Term {
                field: Some(ident),
                op,
                op_span,
                value,
            }),
            span,
        };
        Ok(if negate {
            Ast {
                kind: AstKind::Not(Box::new(term)),
                span,
            }
        } else {
            term
        })
    }

    /// Rule `pxvalue`: a JSON-style string, or a bare word (numbers need no quotes).
    fn pxql_value(&mut self, op_text: &str, op_at: usize) -> Result<Value> {
        let start = self.pos;
        if self.peek() == Some('"') {
            self.pos += 1;
            let mut text = String::new();
            loop {
                let Some(c) = self.bump() else {
                    return Err(unterminated_quote(start, self.src.len()));
                };
                match c {
                    '"' => break,
                    '\\' => {
                        let esc_at = self.pos - 1;
                        let decoded = match self.bump() {
                            Some('"') => Some('"'),
                            Some('\\') => Some('\\'),
                            Some('/') => Some('/'),
                            Some('b') => Some('\u{8}'),
                            Some('f') => Some('\u{c}'),
                            Some('n') => Some('\n'),
                            Some('r') => Some('\r'),
                            Some('t') => Some('\t'),
                            Some('u') => {
                                let hex = self
                                    .rest()
                                    .get(..4)
                                    .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
                                let c = hex
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                                    .and_then(char::from_u32);
                                if c.is_some() {
                                    self.pos += 4;
                                }
                                c
                            }
                            _ => None,
                        };
                        let Some(decoded) = decoded else {
                            return Err(QueryError::new(
                                format!("Invalid escape in string at position {esc_at}"),
                                Span::new(esc_at, self.pos.max(esc_at + 1)),
                            )
                            .with_hint(
                                "valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
                            ));
                        };
                        text.push(decoded);
                    }
                    c => text.push(c),
                }
            }
            return Ok(Value {
                text,
                quoted: true,
                span: Span::new(start, self.pos),
            });
        }
        let len = self
            .rest()
            .find(ends_pxql_bare)
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(QueryError::new(
                format!("Expected a value after \"{op_text}\" at position {start}"),
                Span::new(op_at, start + self.peek().map_or(0, char::len_utf8)),
            )
            .with_hint("put the value in double quotes, e.g. status = \"open\""));
        }
        self.pos += len;
        Ok(Value {
            text: self.src[start..self.pos].to_string(),
            quoted: false,
            span: Span::new(start, self.pos),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders a tree compactly: `and(...)`, `or(...)`, `not(...)`, `field OP value`.
    fn render(ast: &Ast) -> String {
        let list = |items: &[Ast]| items.iter().map(render).collect::<Vec<_>>().join(", ");
        match &ast.kind {
            AstKind::All => "*".to_string(),
            AstKind::And(items) => format!("and({})", list(items)),
            AstKind::Or(items) => format!("or({})", list(items)),
            AstKind::Not(inner) => format!("not({})", render(inner)),
            AstKind::Term(t) => format!(
                "{}{}{}",
                t.field.as_ref().map_or("_", |f| f.name.as_str()),
                t.op.symbol(),
                t.value.display()
            ),
        }
    }

    #[track_caller]
    fn check(input: &str, expected: &str) {
        match parse(input) {
            Ok(ast) => assert_eq!(render(&ast), expected, "parse({input:?})"),
            Err(e) => panic!("parse({input:?}) failed: {}", e.message),
        }
    }

    #[track_caller]
    fn check_err(input: &str, expected: &str) {
        match parse(input) {
            Ok(ast) => panic!("parse({input:?}) gave {} instead of an error", render(&ast)),
            Err(e) => assert_eq!(e.message, expected, "parse({input:?})"),
        }
    }

    #[test]
    fn simple_syntax() {
        let rows = [
            ("", "*"),
            ("   ", "*"),
            ("*", "*"),
            ("foo", "_=foo"),
            ("+foo -bar", "and(_=foo, not(_=bar))"),
            ("\"big cats\"", "_=\"big cats\""),
            ("-\"big cats\"", "not(_=\"big cats\")"),
            ("subject:\"disk full\"", "subject=\"disk full\""),
            ("a|b c", "and(or(_=a, _=b), _=c)"),
            ("a | b || c", "or(_=a, _=b, _=c)"),
            ("status:open|closed", "or(status=open, status=closed)"),
            ("status:open|body:x|y", "or(status=open, body=x, body=y)"),
            ("status:-open", "not(status=open)"),
            ("-status:open", "not(status=open)"),
            ("-status:-open", "status=open"),
            ("num:>=5 num:<3", "and(num>=5, num<3)"),
            ("num:5..10", "num=5..10"),
            ("created:2024-01-15", "created=2024-01-15"),
            ("due:this month", "due=this month"),
            ("due:<=THIS  Year foo", "and(due<=THIS Year, _=foo)"),
            ("created:2024-01..this month", "created=2024-01..this month"),
            ("subject:this month", "and(subject=this, _=month)"),
            ("due:this monthly", "and(due=this, _=monthly)"),
            ("foo-bar 2.5", "and(_=foo-bar, _=2.5)"),
            ("https://example.com/x", "_=https://example.com/x"),
            ("12:30", "_=12:30"),
            ("foo\"bar baz\"", "and(_=foo, _=\"bar baz\")"),
            ("tags:\"needs review\"", "tags=\"needs review\""),
            ("* status:open", "and(*, status=open)"),
            ("café", "_=café"),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn pxql_syntax() {
        let rows = [
            ("(status = \"open\")", "status=\"open\""),
            ("  (status == \"open\" & title =~ \"Released to Preproduction\")", "and(status=\"open\", title=~\"Released to Preproduction\")"),
            ("(status = \"open\" && title !~ \"x y\")", "and(status=\"open\", not(title=~\"x y\"))"),
            (
                "(modified >= \"2016-02-22\" & (title =~ \"amazon\" | title =~ \"monitor\") & (status = \"open\" || status = \"closed\"))",
                "and(modified>=\"2016-02-22\", or(title=~\"amazon\", title=~\"monitor\"), or(status=\"open\", status=\"closed\"))",
            ),
            ("(\n\tnum > 5 &\n\tnum <= 10\n)", "and(num>5, num<=10)"),
            ("((status = open))", "status=open"),
            ("(subject = \"say \\\"hi\\\" \\u00e9\")", "subject=\"say \"hi\" é\""),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn syntax_errors() {
        let rows = [
            ("foo \"bar", "Unterminated quote at position 4"),
            ("subject:\"disk", "Unterminated quote at position 8"),
            ("a |", "Dangling operator \"|\" at position 2"),
            ("| a", "Dangling operator \"|\" at position 0"),
            ("a || | b", "Dangling operator \"||\" at position 2"),
            ("foo - bar", "Dangling operator \"-\" at position 4"),
            ("foo +", "Dangling operator \"+\" at position 4"),
            ("--foo", "Dangling operator \"-\" at position 0"),
            (
                "status:",
                "Missing value for field \"status\" at position 7",
            ),
            (
                "status: open",
                "Missing value for field \"status\" at position 7",
            ),
            (
                "error: disk",
                "Unknown search field \"error\" at position 0; valid fields are: subject, body, changes, \
                 status, type, category, username, assignees, cc, tags, server, jobs, parent, child, blocks, blocked_by, duplicate_of, duplicates, relates, is, priority, num, created, \
                 modified, due",
            ),
            ("num:>=", "Missing value after \">=\" at position 4"),
            ("(status = \"open\"", "Unbalanced parenthesis at position 0"),
            ("(a = 1))", "Unbalanced parenthesis at position 7"),
            (
                "(a = 1) b",
                "Unexpected \"b\" at position 8 after the end of the query",
            ),
            ("()", "Empty parentheses at position 0"),
            ("(a = 1 & )", "Dangling operator \"&\" at position 7"),
            (
                "(a = 1 & b = 2 | c = 3)",
                "Ambiguous mix of \"&\" and \"|\" at position 15",
            ),
            ("(& a = 1)", "Dangling operator \"&\" at position 1"),
            ("(a != 1)", "Unknown operator \"!=\" at position 3"),
            (
                "(a 1)",
                "Expected an operator after field \"a\" at position 3",
            ),
            ("(a = )", "Expected a value after \"=\" at position 5"),
            (
                "(a = open closed)",
                "Expected \"&\", \"|\" or \")\" at position 10 but found \"c\"",
            ),
            ("(a = \"x)", "Unterminated quote at position 5"),
            ("(a = \"\\q\")", "Invalid escape in string at position 6"),
            (
                "(= 1)",
                "Expected a field name at position 1 but found \"=\"",
            ),
        ];
        for (input, expected) in rows {
            check_err(input, expected);
        }
    }

    #[test]
    fn nesting_is_limited() {
        let ok = format!("{}a = 1{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let too_deep = format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        let err = parse(&too_deep).unwrap_err();
        assert_eq!(err.message, format!("Query nested too deeply at position {MAX_DEPTH}; the limit is 32 levels of parentheses"));
        let err = parse(&"(".repeat(10_000)).unwrap_err();
        assert!(
            err.message.starts_with("Query nested too deeply"),
            "{}",
            err.message
        );
    }

    #[test]
    fn spans_point_at_source() {
        let ast = parse("foo status:open").unwrap();
        let AstKind::And(items) = &ast.kind else {
            panic!("{ast:?}")
        };
        assert_eq!(items[0].span, Span::new(0, 3));
        assert_eq!(items[1].span, Span::new(4, 15));
        let AstKind::Term(term) = &items[1].kind else {
            panic!()
        };
        assert_eq!(term.field.as_ref().unwrap().span, Span::new(4, 10));
        assert_eq!(term.value.span, Span::new(11, 15));
    }
}
