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
    let stripped = strip_tags(&without_controls);
    neutralize_schemes(&stripped)
}

/// Cleans a one-line text such as a subject: tags stripped, whitespace folded, trimmed.
pub fn clean_line(input: &str) -> String {
    let stripped = clean_markdown(input);
    stripped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Elements whose content is removed together with their tags.
const DROP_WITH_CONTENT: [&str; 2] = ["script", "style"];

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let tail = &rest[lt..];
        match tag_extent(tail) {
            Some(TagKind::Comment(len)) => rest = &tail[len..],
            Some(TagKind::Tag { len, name, closing }) => {
                rest = &tail[len..];
                if !closing && DROP_WITH_CONTENT.contains(&name.as_str()) {
                    rest = skip_past_closing(rest, &name);
                }
            }
            None => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

enum TagKind {
    Comment(usize),
    Tag {
        len: usize,
        name: String,
        closing: bool,
    },
}

/// If `s` (which starts with `<`) opens a tag or comment, how long it is.
fn tag_extent(s: &str) -> Option<TagKind> {
    if let Some(after) = s.strip_prefix("<!--") {
        let end = after.find("-->").map(|i| i + 3).unwrap_or(after.len());
        return Some(TagKind::Comment(4 + end));
    }
    let bytes = s.as_bytes();
    let (closing, name_start) = match bytes.get(1) {
        Some(b'/') => (true, 2),
        Some(b'!') | Some(b'?') => (false, 1),
        _ => (false, 1),
    };
    let first = *bytes.get(name_start)?;
    if !(first.is_ascii_alphabetic() || (first == b'!' || first == b'?') && !closing) {
        return None;
    }
    let gt = s.find('>')?;
    // A tag never spans a blank line; this keeps `a <b and c` ... `d > e` text intact.
    if s[..gt].contains("\n\n") {
        return None;
    }
    let name: String = s[name_start..gt]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase();
    Some(TagKind::Tag {
        len: gt + 1,
        name,
        closing,
    })
}

fn skip_past_closing<'a>(s: &'a str, name: &str) -> &'a str {
    let lower = s.to_ascii_lowercase();
    let needle = format!("</{name}");
    match lower.find(&needle) {
        Some(i) => match s[i..].find('>') {
            Some(gt) => &s[i + gt + 1..],
            None => "",
        },
        None => "",
    }
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
/// (browsers ignore tabs and newlines inside a scheme).
fn active_scheme_at(s: &str, i: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    'schemes: for scheme in ACTIVE_SCHEMES {
        let mut j = i;
        for want in scheme.bytes() {
            while j < bytes.len() && j > i && matches!(bytes[j], b' ' | b'\t' | b'\n') {
                j += 1;
            }
            match bytes.get(j) {
                Some(b) if b.eq_ignore_ascii_case(&want) => j += 1,
                _ => continue 'schemes,
            }
        }
        // Only at a word start, so `nojavascript:` in prose is left alone.
        if i > 0 && bytes[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        return Some(j - i);
    }
    None
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
    }

    #[test]
    fn line_rules() {
        assert_eq!(clean_line("  Disk <b>full</b>\n on  db1 "), "Disk full on db1");
    }
}
