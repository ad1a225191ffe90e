//! Text analysis: turns ticket text (Markdown, HTML, plain) into search tokens, the same way
//! at index time and at query time. Owns the token rules of SPEC §6; does no IO.
//!
//! The pipeline, in order:
//! 1. Markdown is rendered to plain text with pulldown-cmark (`analyze` only; `analyze_plain`
//!    skips this step). Text in code blocks and inline code is kept. Raw HTML tags are
//!    dropped and the text between them kept; HTML entities are decoded. A link or image
//!    destination contributes its host name (see step 4) just before the link text.
//! 2. Unicode is folded to ASCII with `deunicode` (Café → Cafe, 木 → Mu).
//! 3. Everything is lowercased.
//! 4. URLs (`http://`, `https://`, `ftp://`) are replaced by their host name, without user
//!    info or port. Step 5 then splits the host at its dots, so each part of
//!    `grafana.example.com` is a token of its own; a hyphen separates words as anywhere else.
//! 5. Words are runs of `[a-z0-9_]`. An apostrophe between two word characters is dropped
//!    (`nancy's` → `nancys`). A dot between two digits joins them with `_` (`2.5.1` →
//!    `2_5_1`, `10.0.0.1` → `10_0_0_1`: versions and addresses stay one token); any other
//!    dot separates words like a space, so every part of a dotted word (`db1.prod.acme.io`,
//!    `e.g.`, `main.rs`) is a token at the position where it stands. A dotted word in a
//!    query therefore becomes a phrase of its parts, which finds the same dotted word in a
//!    ticket, while a single part (`grafana`) finds it too.
//! 6. A word of only letters is stemmed with the English (Porter 2) Snowball stemmer
//!    (`jumps`, `jumping` → `jump`). Words with digits or underscores (versions,
//!    identifiers) are left as they are.
//! 7. A word longer than [`MAX_WORD_LEN`] characters is truncated to that length and not
//!    stemmed (long words are hashes, identifiers or junk, where stemming means nothing).
//!
//! There are no stop words and no minimum length. Tokens come out in text order, so that
//! their positions can answer phrase queries.
//!
//! Changing any rule changes the tokens of stored tickets: bump [`ANALYZER_VERSION`], and
//! stores rebuild their index when they are next opened.

use std::sync::OnceLock;

use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use rust_stemmers::{Algorithm, Stemmer};

/// The version of the rules above. Stores record the version their index was built with
/// and reindex every ticket on open when it differs (`docket_core::index_version`).
///
/// 1. The first rules: a dotted word was one token (`grafana.example.com` →
///    `grafana_example_com`).
/// 2. Only digit-dot-digit runs are joined; the parts of other dotted words are tokens.
/// 3. An empty `assignees`, `tags` or `category` is indexed as [`NONE_KEYWORD`].
pub const ANALYZER_VERSION: u32 = 3;

/// The keyword value of an empty list or field, so `assignees:_none` finds unassigned
/// tickets (and `tags:_none` untagged ones, `category:_none` uncategorized ones).
pub const NONE_KEYWORD: &str = "_none";

/// Longest token the analyzer emits; longer words are truncated to this many characters.
pub const MAX_WORD_LEN: usize = 32;

/// Text analysis shared by index time and query time: Markdown/HTML → text → tokens.
///
/// See the module documentation for the rules.
pub fn analyze(text: &str) -> Vec<String> {
    let mut plain = String::with_capacity(text.len());
    markdown_to_text(text, &mut plain);
    tokenize(&plain)
}

/// Like [`analyze`], but the input is taken as plain text rather than Markdown.
///
/// Used for search terms: a term is not a document, and reading it as Markdown would
/// misread a user (a lone `1.` is an empty list item, `<b>` a tag). On ordinary words it
/// gives the same tokens as [`analyze`].
pub fn analyze_plain(text: &str) -> Vec<String> {
    tokenize(text)
}

/// Normalizes a keyword value (status, tags, assignees...): fold to ASCII, lowercase, trim.
pub fn normalize_keyword(value: &str) -> String {
    fold_lowercase(value).trim().to_string()
}

/// Folds to ASCII and lowercases. Folding goes character by character because `deunicode`
/// on a whole string drops control characters such as newlines, which would glue words.
fn fold_lowercase(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if c.is_whitespace() {
            out.push(' ');
        } else {
            match deunicode::deunicode_char(c) {
                Some(folded) => out.extend(folded.chars().map(|f| f.to_ascii_lowercase())),
                None => out.push(' '),
            }
        }
    }
    out
}

/// Steps 2–7 of the pipeline on text that is already plain.
fn tokenize(plain: &str) -> Vec<String> {
    let folded = fold_lowercase(plain);
    let reduced = reduce_urls(&folded);
    split_words(&reduced)
}

// ---------------------------------------------------------------------------------------
// Step 1: Markdown and HTML to text
// ---------------------------------------------------------------------------------------

fn markdown_to_text(src: &str, out: &mut String) {
    // Tables and strikethrough change what is text (`|` cells, `~~`), so turn them on;
    // footnotes, math and the like only add structure we would throw away.
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut html = HtmlStripper::default();
    for event in Parser::new_ext(src, options) {
        match event {
            Event::Html(raw) | Event::InlineHtml(raw) => {
                html.feed(&raw, out);
                continue;
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                out.push_str(&t)
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                ..
            })
            | Event::Start(Tag::Image {
                link_type,
                dest_url,
                ..
            }) => {
                // An autolink's text is the URL itself, which step 4 reduces already.
                if !matches!(link_type, LinkType::Autolink | LinkType::Email) {
                    if let Some(host) = url_host(&dest_url) {
                        out.push(' ');
                        out.push_str(host);
                        out.push(' ');
                    }
                }
            }
            Event::Start(tag) => {
                if !is_inline_tag(&tag) {
                    out.push('\n');
                }
            }
            Event::End(tag) => {
                if !is_inline_tag_end(tag) {
                    out.push('\n');
                }
            }
            Event::SoftBreak | Event::HardBreak | Event::Rule => out.push('\n'),
            Event::FootnoteReference(_) | Event::TaskListMarker(_) => out.push(' '),
        }
        html.reset();
    }
}

fn is_inline_tag(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

fn is_inline_tag_end(tag: TagEnd) -> bool {
    matches!(
        tag,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

/// Removes tags from raw HTML, keeping (entity-decoded) text. The state survives across
/// consecutive HTML events because pulldown-cmark hands an HTML block over line by line,
/// and a tag may span lines.
#[derive(Default)]
struct HtmlStripper {
    state: HtmlState,
    tag_name: String,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum HtmlState {
    #[default]
    Text,
    /// Inside `<...>`; `name_done` once the tag name has ended.
    Tag { name_done: bool },
    /// Inside `<!-- ... -->`; counts the dashes just seen.
    Comment { dashes: u8 },
}

/// Tags that format text inside a word (`foo<b>bar</b>` reads "foobar"); any other tag
/// separates words.
const INLINE_HTML_TAGS: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "del", "dfn", "em", "font", "i", "ins", "kbd",
    "mark", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "tt", "u", "var",
];

impl HtmlStripper {
    fn reset(&mut self) {
        self.state = HtmlState::Text;
        self.tag_name.clear();
    }

    fn feed(&mut self, raw: &str, out: &mut String) {
        let mut text_start = 0;
        let mut chars = raw.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match self.state {
                HtmlState::Text => {
                    let next = chars.peek().map(|&(_, n)| n);
                    let opens_tag = c == '<'
                        && next.is_some_and(|n| {
                            n.is_ascii_alphabetic() || n == '/' || n == '!' || n == '?'
                        });
                    if opens_tag {
                        push_decoded(&raw[text_start..i], out);
                        if raw[i..].starts_with("<!--") {
                            self.state = HtmlState::Comment { dashes: 0 };
                            // Skip "!--" so that "<!-->" is not read as a closed comment.
                            chars.next();
                            chars.next();
                            chars.next();
                        } else {
                            self.state = HtmlState::Tag { name_done: false };
                            self.tag_name.clear();
                        }
                    }
                }
                HtmlState::Tag { name_done } => {
                    if c == '>' {
                        let name = self.tag_name.trim_start_matches('/').to_ascii_lowercase();
                        if !INLINE_HTML_TAGS.contains(&name.as_str()) {
                            out.push(' ');
                        }
                        self.state = HtmlState::Text;
                        text_start = i + c.len_utf8();
                    } else if !name_done {
                        if c.is_ascii_alphanumeric() || (c == '/' && self.tag_name.is_empty()) {
                            self.tag_name.push(c);
                        } else {
                            self.state = HtmlState::Tag { name_done: true };
                        }
                    }
                }
                HtmlState::Comment { dashes } => {
                    self.state = match c {
                        '-' => HtmlState::Comment {
                            dashes: dashes.saturating_add(1),
                        },
                        '>' if dashes >= 2 => {
                            out.push(' ');
                            text_start = i + 1;
                            HtmlState::Text
                        }
                        _ => HtmlState::Comment { dashes: 0 },
                    };
                }
            }
        }
        if self.state == HtmlState::Text {
            push_decoded(&raw[text_start..], out);
        }
    }
}

/// Appends `text` with HTML character references decoded. Unknown named references become
/// a space (they are punctuation far more often than letters).
fn push_decoded(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after
            .char_indices()
            .take(12)
            .find(|&(_, c)| c == ';')
            .map(|(i, _)| i);
        let Some(end) = end else {
            out.push('&');
            rest = after;
            continue;
        };
        let entity = &after[..end];
        match decode_entity(entity) {
            Some(c) => out.push(c),
            None => out.push(' '),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
}

fn decode_entity(entity: &str) -> Option<char> {
    if let Some(num) = entity.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match entity {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "rsquo" | "lsquo" => '\'',
        "eacute" => 'é',
        "egrave" => 'è',
        "aacute" => 'á',
        "agrave" => 'à',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "auml" => 'ä',
        "ccedil" => 'ç',
        "ntilde" => 'ñ',
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Step 4: URLs to host names
// ---------------------------------------------------------------------------------------

const URL_SCHEMES: &[&str] = &["https://", "http://", "ftp://"];

/// The host of an absolute http/https/ftp URL (any case), or `None` for anything else.
fn url_host(url: &str) -> Option<&str> {
    let scheme = URL_SCHEMES.iter().find(|s| {
        url.len() >= s.len() && url.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
    })?;
    let rest = &url[scheme.len()..];
    let authority_end = rest
        .find(|c: char| matches!(c, '/' | '?' | '#') || is_url_end(c))
        .unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host_port.rfind(':') {
        Some(colon) if host_port[colon + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &host_port[..colon]
        }
        _ => host_port,
    };
    (!host.is_empty()).then_some(host)
}

/// Characters that end a URL found in running text.
fn is_url_end(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '<' | '>' | '"' | '\'' | '`' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
        )
}

/// Replaces each URL in (lowercase ASCII) text by its host name.
fn reduce_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = URL_SCHEMES
            .iter()
            .filter_map(|s| rest.find(s).map(|at| (at, s.len())))
            .min();
        let Some((at, _)) = found else {
            out.push_str(rest);
            return out;
        };
        // `xhttp://` is not a URL start; a word character before the scheme means we are
        // in the middle of something else.
        let preceded_by_word = rest[..at]
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        out.push_str(&rest[..at]);
        let url_len = rest[at..].find(is_url_end).unwrap_or(rest.len() - at);
        let url = &rest[at..at + url_len];
        if preceded_by_word {
            out.push_str(url);
        } else {
            out.push(' ');
            out.push_str(url_host(url).unwrap_or(""));
            out.push(' ');
        }
        rest = &rest[at + url_len..];
    }
}

// ---------------------------------------------------------------------------------------
// Steps 5–7: words, stemming, length
// ---------------------------------------------------------------------------------------

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

fn split_words(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut word = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        if is_word_byte(b) {
            word.push(b as char);
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let joins = match b {
            b'\'' => !word.is_empty() && next.is_some_and(is_word_byte),
            b'.' => joins_digits(&word, next),
            _ => false,
        };
        if joins {
            if b == b'.' {
                word.push('_');
            }
        } else if !word.is_empty() {
            tokens.push(finish_word(&word));
            word.clear();
        }
    }
    if !word.is_empty() {
        tokens.push(finish_word(&word));
    }
    tokens
}

/// Whether a dot after `word` and before `next` stands between two digits (a version or an
/// address), so that it joins rather than separates.
fn joins_digits(word: &str, next: Option<u8>) -> bool {
    word.as_bytes().last().is_some_and(u8::is_ascii_digit)
        && next.is_some_and(|n| n.is_ascii_digit())
}

fn finish_word(word: &str) -> String {
    if word.len() > MAX_WORD_LEN {
        return word[..MAX_WORD_LEN].to_string();
    }
    if word.bytes().all(|b| b.is_ascii_lowercase()) {
        stem_cached(word)
    } else {
        word.to_string()
    }
}

/// Stems with a per-thread memo: real text repeats a small vocabulary (Zipf), and the
/// stemmer was the analyzer's largest cost when indexing.
fn stem_cached(word: &str) -> String {
    /// Entries kept before the memo is emptied, bounding its memory (~2 MB).
    const MEMO_LIMIT: usize = 20_000;
    thread_local! {
        static MEMO: std::cell::RefCell<std::collections::HashMap<String, String>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    MEMO.with(|memo| {
        let mut memo = memo.borrow_mut();
        if let Some(stem) = memo.get(word) {
            return stem.clone();
        }
        let stem = stemmer().stem(word).into_owned();
        if memo.len() >= MEMO_LIMIT {
            memo.clear();
        }
        memo.insert(word.to_string(), stem.clone());
        stem
    })
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &[&str]) {
        assert_eq!(analyze(input), expected, "analyze({input:?})");
    }

    #[test]
    fn analyzer_rules() {
        let long = "a".repeat(40);
        let rows: &[(&str, &[&str])] = &[
            // plain words, lowercase, punctuation separates
            ("Hello, World!", &["hello", "world"]),
            ("foo-bar/baz;qux", &["foo", "bar", "baz", "qux"]),
            ("!!! ... ---", &[]),
            ("", &[]),
            // stemming (Porter 2), only for letter-only words
            (
                "jumps jumping jumped jump",
                &["jump", "jump", "jump", "jump"],
            ),
            ("argue argued arguing", &["argu", "argu", "argu"]),
            ("running2 foo_bars", &["running2", "foo_bars"]),
            // apostrophes inside words are removed
            ("Nancy's", &["nanci"]),
            ("Nancy's cat", &["nanci", "cat"]),
            ("rock'n'roll", &["rocknrol"]),
            ("the dogs' bone", &["the", "dog", "bone"]),
            ("'quoted'", &["quot"]),
            // dots between word characters join with `_`
            ("version 2.5.1 released.", &["version", "2_5_1", "releas"]),
            ("2.5", &["2_5"]),
            ("e.g. this", &["e", "g", "this"]),
            ("end. Next", &["end", "next"]),
            ("main.rs", &["main", "rs"]),
            // ... but only between digits: other dotted words are split into their parts
            ("db1.prod.acme.io", &["db1", "prod", "acm", "io"]),
            ("v1.2.3-rc1 web01.prod", &["v1_2_3", "rc1", "web01", "prod"]),
            ("10.0.0.1:8080", &["10_0_0_1", "8080"]),
            ("1.x file2.txt", &["1", "x", "file2", "txt"]),
            // Unicode folded to ASCII
            ("Café", &["cafe"]),
            ("El Niño Doppelgänger", &["el", "nino", "doppelgang"]),
            ("naïve ﬁle", &["naiv", "file"]),
            ("木 ネコ", &["mu", "neko"]),
            ("Café menu\n\nNancy's", &["cafe", "menu", "nanci"]),
            // URLs reduced to their host
            (
                "see https://www.example.com/a/b?x=1 now",
                &["see", "www", "exampl", "com", "now"],
            ),
            (
                "HTTP://User:pw@Host.Example.org:8080/path",
                &["host", "exampl", "org"],
            ),
            (
                "ftp://files.my-site.net/pub.",
                &["file", "my", "site", "net"],
            ),
            ("(https://a.io/x)", &["a", "io"]),
            ("www.example.com", &["www", "exampl", "com"]),
            (
                "see https://grafana.example.com/d/x",
                &["see", "grafana", "exampl", "com"],
            ),
            // Markdown reduced to text
            (
                "# Title\n\nSome *emphasis* and **bold**text",
                &["titl", "some", "emphasi", "and", "boldtext"],
            ),
            ("- item one\n- item two", &["item", "one", "item", "two"]),
            ("para one\n\npara two", &["para", "one", "para", "two"]),
            (
                "| a | b |\n|---|---|\n| cell | data |",
                &["a", "b", "cell", "data"],
            ),
            ("~~gone~~ here", &["gone", "here"]),
            // Markdown links: destination → host, text kept
            (
                "[the docs](https://docs.rs/jiff/latest) here",
                &["doc", "rs", "the", "doc", "here"],
            ),
            ("[local](/wiki/page)", &["local"]),
            ("<https://github.com/foo/bar>", &["github", "com"]),
            (
                "![diagram](http://img.example.com/x.png)",
                &["img", "exampl", "com", "diagram"],
            ),
            // code blocks and inline code are kept
            (
                "```rust\nfn main() { panic!(\"boom\") }\n```",
                &["fn", "main", "panic", "boom"],
            ),
            ("run `cargo test` now", &["run", "cargo", "test", "now"]),
            ("    indented code\n", &["indent", "code"]),
            // HTML: tags dropped, text kept, entities decoded
            (
                "This <b>may contain HTML</b> and\nlines",
                &["this", "may", "contain", "html", "and", "line"],
            ),
            (
                "<div class=\"x\">\nInside <i>div</i>\n</div>",
                &["insid", "div"],
            ),
            ("foo<b>bar</b>", &["foobar"]),
            ("one<br>two", &["one", "two"]),
            (
                "<p>AT&amp;T &lt;tag&gt; caf&eacute;</p>",
                &["at", "t", "tag", "cafe"],
            ),
            ("a <!-- hidden words --> b", &["a", "b"]),
            ("x < y and y > z", &["x", "y", "and", "y", "z"]),
            // word length: longer words are truncated to 32, not stemmed
            (long.as_str(), &["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]),
            (
                "abcdefghijklmnopqrstuvwxyz0123456789",
                &["abcdefghijklmnopqrstuvwxyz012345"],
            ),
            // no stop words, text order kept
            ("the big cats", &["the", "big", "cat"]),
        ];
        for (input, expected) in rows {
            check(input, expected);
        }
    }

    #[test]
    fn analyze_plain_ignores_markdown() {
        assert_eq!(analyze_plain("1."), ["1"]);
        assert_eq!(analyze("1."), Vec::<String>::new());
        assert_eq!(
            analyze_plain("Jumping 2.5 Café"),
            analyze("Jumping 2.5 Café")
        );
        assert_eq!(analyze_plain("https://x.org/y"), ["x", "org"]);
    }

    #[test]
    fn normalize_keyword_folds_lowercases_trims() {
        let rows = [
            ("Open", "open"),
            ("  In Progress ", "in progress"),
            ("Café", "cafe"),
            ("JHuckaby", "jhuckaby"),
            ("", ""),
        ];
        for (input, expected) in rows {
            assert_eq!(
                normalize_keyword(input),
                expected,
                "normalize_keyword({input:?})"
            );
        }
    }

    #[test]
    fn tokens_never_exceed_limit() {
        let text = format!(
            "{} {}.{} https://{}.com",
            "x".repeat(100),
            "9".repeat(50),
            "y".repeat(50),
            "h".repeat(80)
        );
        for token in analyze(&text) {
            assert!(token.len() <= MAX_WORD_LEN, "{token}");
        }
    }
}
