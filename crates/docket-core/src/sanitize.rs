//! Cleaning of user-written text before it is stored.
//!
//! Bodies are Markdown and stay Markdown: we do not escape or render, we only remove what
//! could become active content when the Markdown is later rendered as HTML. HTML tags go but
//! their text stays, `<script>`/`<style>` elements go with their content, comments go, and
//! `javascript:`-style URL schemes are neutralized. A `<` that does not open a tag
//! (as in `2 < 3 > 1`) is ordinary text and stays.
//!
//! A sanitizer crate such as ammonia produces escaped HTML, which would corrupt the stored
//! Markdown (`2 < 3` would become `2 &lt; 3`), hence this small purpose-built pass.

/// Cleans a Markdown body or comment.
pub fn clean_markdown(input: &str) -> String {
    let without_controls: String = input
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    let stripped = defuse_leftover_tags(&strip_tags(&without_controls));
    neutralize_schemes(&stripped)
}

/// Cleans a one-line text such as a subject: tags stripped, whitespace folded, trimmed.
/// Whitespace is folded first too, so a tag split by a blank line (kept as text in a body)
/// cannot become a tag when the line is joined.
pub fn clean_line(input: &str) -> String {
    fn fold(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }
    fold(&clean_markdown(&fold(input)))
}

/// Elements whose content is removed together with their tags.
const DROP_WITH_CONTENT: [&str; 2] = ["script", "style"];

/// Removes tags, comments and dropped elements in one forward pass (linear time: every
/// search below only moves forward or is remembered).
fn strip_tags(s: &str) -> String {
    let mut scan = Scanner::new(s);
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(off) = s[pos..].find('<') {
        let lt = pos + off;
        out.push_str(&s[pos..lt]);
        match scan.tag_at(lt) {
            Some(TagKind::Comment { end }) => pos = end,
            Some(TagKind::Tag { end, name, closing }) => {
                pos = end;
                if !closing && DROP_WITH_CONTENT.contains(&name.as_str()) {
                    pos = skip_past_closing(s, pos, &name);
                }
            }
            None => {
                out.push('<');
                pos = lt + 1;
            }
        }
    }
    out.push_str(&s[pos..]);
    out
}

/// Removing a tag can join a loose `<` with the text after it (`<<b></b>img onerror=…>`
/// becomes `<img onerror=…>`). Any tag still present after stripping is such a
/// reassembly; its `<` is written as `&lt;` so it stays text.
fn defuse_leftover_tags(s: &str) -> String {
    let mut scan = Scanner::new(s);
    let mut out = String::with_capacity(s.len());
    let mut pos = 0;
    while let Some(off) = s[pos..].find('<') {
        let lt = pos + off;
        out.push_str(&s[pos..lt]);
        out.push_str(if scan.tag_at(lt).is_some() {
            "&lt;"
        } else {
            "<"
        });
        pos = lt + 1;
    }
    out.push_str(&s[pos..]);
    out
}

enum TagKind {
    /// A comment ending before byte `end`.
    Comment { end: usize },
    /// A tag ending before byte `end`.
    Tag {
        end: usize,
        name: String,
        closing: bool,
    },
}

/// The next occurrence of a pattern at or after a position. Positions asked for only grow,
/// so the last answer is reused while it is still ahead: a text with many `<` and no `>`
/// is scanned once, not once per `<`.
struct NextFinder<'a> {
    hay: &'a str,
    pattern: &'static str,
    last: Option<Option<usize>>,
}

impl<'a> NextFinder<'a> {
    fn new(hay: &'a str, pattern: &'static str) -> Self {
        NextFinder {
            hay,
            pattern,
            last: None,
        }
    }

    fn find_from(&mut self, from: usize) -> Option<usize> {
        match self.last {
            Some(None) => return None,
            Some(Some(p)) if p >= from => return Some(p),
            _ => {}
        }
        let found = self
            .hay
            .get(from..)
            .and_then(|t| t.find(self.pattern))
            .map(|i| i + from);
        self.last = Some(found);
        found
    }
}

/// Recognizes tags at increasing positions of one text.
struct Scanner<'a> {
    s: &'a str,
    gts: NextFinder<'a>,
    blank_lines: NextFinder<'a>,
    comment_ends: NextFinder<'a>,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a str) -> Self {
        Scanner {
            s,
            gts: NextFinder::new(s, ">"),
            blank_lines: NextFinder::new(s, "\n\n"),
            comment_ends: NextFinder::new(s, "-->"),
        }
    }

    /// If the `<` at byte `lt` opens a tag or comment, its kind and extent.
    fn tag_at(&mut self, lt: usize) -> Option<TagKind> {
        let s = self.s;
        if s[lt..].starts_with("<!--") {
            let end = self
                .comment_ends
                .find_from(lt + 4)
                .map(|i| i + 3)
                .unwrap_or(s.len());
            return Some(TagKind::Comment { end });
        }
        let bytes = s.as_bytes();
        let (closing, name_start) = match bytes.get(lt + 1) {
            Some(b'/') => (true, lt + 2),
            _ => (false, lt + 1),
        };
        let first = *bytes.get(name_start)?;
        if !(first.is_ascii_alphabetic() || (first == b'!' || first == b'?') && !closing) {
            return None;
        }
        let gt = self.gts.find_from(lt)?;
        // A tag never spans a blank line; this keeps `a <b and c` ... `d > e` text intact.
        if self.blank_lines.find_from(lt).is_some_and(|b| b < gt) {
            return None;
        }
        let name: String = s[name_start..gt]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect::<String>()
            .to_ascii_lowercase();
        Some(TagKind::Tag {
            end: gt + 1,
            name,
            closing,
        })
    }
}

/// The position after the closing tag of element `name` (searched from `from`), or the end.
fn skip_past_closing(s: &str, from: usize, name: &str) -> usize {
    let mut at = from;
    while let Some(off) = s[at..].find("</") {
        let i = at + off;
        let candidate = s.as_bytes().get(i + 2..i + 2 + name.len());
        if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes())) {
            return s[i..].find('>').map(|gt| i + gt + 1).unwrap_or(s.len());
        }
        at = i + 2;
    }
    s.len()
}

/// Schemes that run code when a rendered link is followed.
const ACTIVE_SCHEMES: [&str; 3] = ["javascript:", "vbscript:", "data:text/html"];

fn neutralize_schemes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        if let Some(len) = active_scheme_at(s, i) {
            out.push_str("blocked:");
            i += len;
            continue;
        }
        let ch_len = utf8_len(bytes[i]);
        out.push_str(&s[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// Matches an active scheme at byte `i`, ignoring case and whitespace between its letters
/// (browsers ignore tabs and newlines inside a scheme), and seeing through what Markdown
/// decodes in a link: character references (`&#106;`, `&#x6A;`, `&colon;`) and backslash
/// escapes (`javascript\:`).
fn active_scheme_at(s: &str, i: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    // Only at a word start, so `nojavascript:` in prose is left alone.
    if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    'schemes: for scheme in ACTIVE_SCHEMES {
        let mut j = i;
        for (k, want) in scheme.bytes().enumerate() {
            loop {
                let Some((b, len)) = decoded_at(s, j) else {
                    continue 'schemes;
                };
                if k > 0 && matches!(b, b' ' | b'\t' | b'\n') {
                    j += len;
                    continue;
                }
                if b.eq_ignore_ascii_case(&want) {
                    j += len;
                    break;
                }
                continue 'schemes;
            }
        }
        return Some(j - i);
    }
    None
}

/// The ASCII character a link destination has at byte `j` once Markdown decodes it, and how
/// many bytes of `s` it takes. Non-ASCII characters come back as 0x80.
fn decoded_at(s: &str, j: usize) -> Option<(u8, usize)> {
    let bytes = s.as_bytes();
    let b = *bytes.get(j)?;
    if b == b'\\' {
        if let Some(&next) = bytes.get(j + 1) {
            if next.is_ascii_punctuation() {
                return Some((next, 2));
            }
        }
    }
    if b == b'&' {
        if let Some(decoded) = char_reference_at(&bytes[j..]) {
            return Some(decoded);
        }
    }
    Some((if b.is_ascii() { b } else { 0x80 }, 1))
}

/// A character reference at the start of `bytes`: `&#DDD;`, `&#xHH;` (the `;` optional, as
/// browsers take them) or one of the named references that spell a scheme's parts.
fn char_reference_at(bytes: &[u8]) -> Option<(u8, usize)> {
    const NAMED: [(&str, u8); 5] = [
        ("&colon;", b':'),
        ("&tab;", b'\t'),
        ("&newline;", b'\n'),
        ("&sol;", b'/'),
        ("&period;", b'.'),
    ];
    for (name, ch) in NAMED {
        if bytes.len() >= name.len() && bytes[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return Some((ch, name.len()));
        }
    }
    if bytes.get(1) != Some(&b'#') {
        return None;
    }
    let hex = matches!(bytes.get(2), Some(b'x' | b'X'));
    let start = if hex { 3 } else { 2 };
    let digits = bytes[start..]
        .iter()
        .take_while(|b| {
            if hex {
                b.is_ascii_hexdigit()
            } else {
                b.is_ascii_digit()
            }
        })
        .count();
    if digits == 0 {
        return None;
    }
    let mut len = start + digits;
    // Leading zeros are allowed in any number; the value saturates instead of overflowing.
    let code = bytes[start..len].iter().fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(if hex { 16 } else { 10 }).unwrap_or(0);
        acc.saturating_mul(if hex { 16 } else { 10 })
            .saturating_add(v)
    });
    if bytes.get(len) == Some(&b';') {
        len += 1;
    }
    let ch = u8::try_from(code).ok().filter(u8::is_ascii).unwrap_or(0x80);
    Some((ch, len))
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        assert_eq!(clean_markdown(input), expect, "input: {input:?}");
    }

    #[test]
    fn markdown_rules() {
        check("**bold** and `code`", "**bold** and `code`");
        check("2 < 3 > 1", "2 < 3 > 1");
        check("a <b>bold</b> word", "a bold word");
        check("x<script>alert(1)</script>y", "xy");
        check("x<SCRIPT src=a>alert(1)</SCRIPT >y", "xy");
        check("x<style>p{}</style>y", "xy");
        check("before<!-- hidden -->after", "beforeafter");
        check("[click](javascript:alert(1))", "[click](blocked:alert(1))");
        check("[click](JavaScript:alert(1))", "[click](blocked:alert(1))");
        check("[c](java\tscript:x)", "[c](blocked:x)");
        check("<a href=\"x\" onclick=\"y\">link</a>", "link");
        check("> quote\n\n- item", "> quote\n\n- item");
        check("a\u{0}b\u{7}c", "abc");
        check("unterminated <script>forever", "unterminated ");
        check("if a<b then", "if a<b then");
        check("café <i>ünïcode</i>", "café ünïcode");
        check("a <b and c\n\nd > e", "a <b and c\n\nd > e");
    }

    #[test]
    fn removed_tags_cannot_reassemble_new_ones() {
        check(
            "<<script></script>img src=x onerror=alert(1)>",
            "&lt;img src=x onerror=alert(1)>",
        );
        check(
            "<</b>script>alert(1)<</b>/script>",
            "&lt;script>alert(1)&lt;/script>",
        );
        check("2 <<b>3</b>", "2 <3");
        assert_eq!(clean_line("<a\n\nonmouseover=alert(1)>x"), "x");
    }

    #[test]
    fn encoded_schemes_are_neutralized() {
        check("[x](&#106;avascript:alert(1))", "[x](blocked:alert(1))");
        check("[x](&#x6A;avascript:alert(1))", "[x](blocked:alert(1))");
        check(
            "[x](&#0000106&#0000097vascript:alert(1))",
            "[x](blocked:alert(1))",
        );
        check("[x](javascript&colon;alert(1))", "[x](blocked:alert(1))");
        check("[x](javascript\\:alert(1))", "[x](blocked:alert(1))");
        check("[x](java&Tab;script:alert(1))", "[x](blocked:alert(1))");
        check(
            "AT&T and &#38; stay; nojavascript: too",
            "AT&T and &#38; stay; nojavascript: too",
        );
    }

    #[test]
    fn pathological_input_is_linear() {
        let started = std::time::Instant::now();
        for input in [
            "<a".repeat(100_000),
            "<script></script>".repeat(30_000),
            "<a<a<a".repeat(30_000) + "\n\n>",
            "<!--".repeat(100_000),
            "<script>".to_string() + &"</scrip".repeat(50_000),
            "&#".repeat(100_000) + "&#1111111111111111111111",
        ] {
            clean_markdown(&input);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn line_rules() {
        assert_eq!(
            clean_line("  Disk <b>full</b>\n on  db1 "),
            "Disk full on db1"
        );
    }
}
