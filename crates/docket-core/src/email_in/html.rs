//! HTML mail to Markdown. ammonia first keeps a short list of structural tags (links with
//! http, https and mailto targets only; `<script>`, `<style>` and `<title>` go with their
//! content) and gives well-formed HTML back; a small converter then walks that output and
//! writes Markdown: paragraphs, headings, emphasis, links, lists, quotes, code and tables.
//! The service sanitizes the Markdown again before it is stored, like any body.

use std::collections::HashSet;

/// Elements nested deeper than this are flattened into their text.
const MAX_DEPTH: usize = 48;

const BLOCKS: [&str; 19] = [
    "p",
    "div",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "ul",
    "ol",
    "li",
    "pre",
    "table",
    "thead",
    "tbody",
    "tr",
    "hr",
    "section",
];

const INLINE: [&str; 11] = [
    "a", "strong", "b", "em", "i", "code", "span", "u", "br", "td", "th",
];

/// Converts the HTML of an email to Markdown.
pub fn html_to_markdown(html: &str) -> String {
    let tags: HashSet<&str> = BLOCKS.iter().chain(INLINE.iter()).copied().collect();
    let clean = ammonia::Builder::empty()
        .tags(tags)
        .add_tag_attributes("a", ["href"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean_content_tags(["script", "style", "title"].into_iter().collect())
        .link_rel(None)
        .clean(html)
        .to_string();
    let tree = parse(&clean);
    let blocks = render_blocks(&tree);
    blocks.join("\n\n").trim().to_string()
}

#[derive(Debug)]
enum Node {
    Text(String),
    Element {
        name: String,
        href: Option<String>,
        children: Vec<Node>,
    },
}

/// ammonia's output as a tree (it is well-formed: every element is closed, nested).
fn parse(s: &str) -> Vec<Node> {
    let mut stack: Vec<(String, Option<String>, Vec<Node>)> =
        vec![(String::new(), None, Vec::new())];
    let mut ignored = 0usize;
    let mut rest = s;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push_text(&mut stack, rest);
            break;
        };
        push_text(&mut stack, &rest[..lt]);
        let Some(gt) = rest[lt..].find('>') else {
            push_text(&mut stack, &rest[lt..]);
            break;
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if ignored > 0 {
                ignored -= 1;
                continue;
            }
            if stack.len() > 1 && stack.last().is_some_and(|(n, _, _)| n == name.trim()) {
                close_top(&mut stack);
            }
            continue;
        }
        let name = tag
            .split(|c: char| c.is_ascii_whitespace())
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let void = name == "br" || name == "hr";
        if void {
            if let Some(top) = stack.last_mut() {
                top.2.push(Node::Element {
                    name,
                    href: None,
                    children: Vec::new(),
                });
            }
            continue;
        }
        if stack.len() > MAX_DEPTH {
            ignored += 1;
            continue;
        }
        let href = attribute(tag, "href").map(|h| decode(&h));
        stack.push((name, href, Vec::new()));
    }
    // Anything left open (not expected from ammonia) is closed here.
    while stack.len() > 1 {
        close_top(&mut stack);
    }
    stack.pop().map(|(_, _, c)| c).unwrap_or_default()
}

/// Pops the innermost open element and appends it, finished, to its parent.
fn close_top(stack: &mut Vec<(String, Option<String>, Vec<Node>)>) {
    if let Some((name, href, children)) = stack.pop() {
        if let Some(parent) = stack.last_mut() {
            parent.2.push(Node::Element {
                name,
                href,
                children,
            });
        }
    }
}

fn push_text(stack: &mut [(String, Option<String>, Vec<Node>)], text: &str) {
    if text.is_empty() {
        return;
    }
    if let Some(top) = stack.last_mut() {
        top.2.push(Node::Text(decode(text)));
    }
}

/// The value of attribute `name` in a serialized start tag (`a href="…"`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_string())
}

/// The entities html5ever's serializer writes.
fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn is_block(name: &str) -> bool {
    BLOCKS.contains(&name)
}

fn render_blocks(nodes: &[Node]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut Vec<String>| {
        let p = paragraph(run);
        if !p.is_empty() {
            out.push(p);
        }
        run.clear();
    };
    for node in nodes {
        match node {
            Node::Element { name, .. } if is_block(name) => {
                flush(&mut run, &mut out);
                let b = block(node);
                if !b.trim().is_empty() {
                    out.push(b);
                }
            }
            _ => run.push_str(&inline(node)),
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A run of inline Markdown as a paragraph: lines trimmed, a leading character that would
/// start a block (`#`, `>`, `-`, `+`, `=`) escaped.
fn paragraph(run: &str) -> String {
    let lines: Vec<String> = run
        .split('\n')
        .map(|l| {
            let t = l.trim_matches(' ');
            if t.starts_with(['#', '>', '-', '+', '=']) {
                format!("\\{t}")
            } else {
                t.to_string()
            }
        })
        .collect();
    let joined = lines.join("  \n");
    joined
        .trim_matches(|c: char| c == '\n' || c == ' ')
        .to_string()
}

fn children(node: &Node) -> &[Node] {
    match node {
        Node::Element { children, .. } => children,
        Node::Text(_) => &[],
    }
}

fn block(node: &Node) -> String {
    let Node::Element { name, .. } = node else {
        return String::new();
    };
    let kids = children(node);
    match name.as_str() {
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
            let level = name[1..].parse::<usize>().unwrap_or(1);
            let text = one_line(&inline_all(kids));
            if text.is_empty() {
                String::new()
            } else {
                format!("{} {text}", "#".repeat(level))
            }
        }
        "blockquote" => render_blocks(kids)
            .join("\n\n")
            .lines()
            .map(|l| {
                if l.is_empty() {
                    ">".to_string()
                } else {
                    format!("> {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
        "ul" | "ol" => {
            let ordered = name == "ol";
            let mut items = Vec::new();
            let mut n = 0;
            for li in kids {
                let body = match li {
                    Node::Element { name, .. } if name == "li" => render_blocks(children(li)),
                    Node::Text(t) if t.trim().is_empty() => continue,
                    other => render_blocks(std::slice::from_ref(other)),
                };
                n += 1;
                let marker = if ordered {
                    format!("{n}. ")
                } else {
                    "- ".to_string()
                };
                let pad = " ".repeat(marker.len());
                let text = body.join("\n\n");
                let mut lines = text.lines();
                let first = lines.next().unwrap_or("");
                let mut item = format!("{marker}{first}");
                for l in lines {
                    item.push('\n');
                    if !l.is_empty() {
                        item.push_str(&pad);
                        item.push_str(l);
                    }
                }
                items.push(item);
            }
            items.join("\n")
        }
        "pre" => {
            let text = text_of(kids);
            let text = text.trim_matches('\n');
            let longest = longest_run(text, '`');
            let fence = "`".repeat(longest.max(2) + 1);
            format!("{fence}\n{text}\n{fence}")
        }
        "table" | "thead" | "tbody" => table(node),
        "tr" => row(node),
        "hr" => "---".into(),
        // p, div, li, section: their content as blocks.
        _ => render_blocks(kids).join("\n\n"),
    }
}

fn table(node: &Node) -> String {
    let mut rows = Vec::new();
    collect_rows(node, &mut rows, 0);
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        out.push(r.clone());
        if i == 0 {
            let cells = r.matches(" | ").count() + 1;
            out.push(format!("|{}", " --- |".repeat(cells)));
        }
    }
    out.join("\n")
}

fn collect_rows(node: &Node, rows: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    for kid in children(node) {
        match kid {
            Node::Element { name, .. } if name == "tr" => rows.push(row(kid)),
            Node::Element { .. } => collect_rows(kid, rows, depth + 1),
            Node::Text(_) => {}
        }
    }
}

fn row(node: &Node) -> String {
    let cells: Vec<String> = children(node)
        .iter()
        .filter(|c| matches!(c, Node::Element { name, .. } if name == "td" || name == "th"))
        .map(|c| one_line(&inline_all(children(c))).replace('|', "\\|"))
        .collect();
    format!("| {} |", cells.join(" | "))
}

fn inline_all(nodes: &[Node]) -> String {
    nodes.iter().map(inline).collect()
}

fn inline(node: &Node) -> String {
    match node {
        Node::Text(t) => escape(&collapse(t)),
        Node::Element {
            name,
            href,
            children,
        } => {
            let inner = || inline_all(children);
            match name.as_str() {
                "br" => "\n".into(),
                "strong" | "b" => wrap(&inner(), "**"),
                "em" | "i" => wrap(&inner(), "*"),
                "code" => {
                    let text = collapse(&text_of(children));
                    let ticks = "`".repeat(longest_run(&text, '`') + 1);
                    if text.trim().is_empty() {
                        String::new()
                    } else if text.starts_with('`') || text.ends_with('`') {
                        format!("{ticks} {text} {ticks}")
                    } else {
                        format!("{ticks}{text}{ticks}")
                    }
                }
                "a" => {
                    let text = inner();
                    match href.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
                        None => text,
                        Some(h) => {
                            let h = h
                                .replace(' ', "%20")
                                .replace('(', "%28")
                                .replace(')', "%29");
                            let plain = text.trim().replace('\\', "");
                            if plain.is_empty() || plain == h || format!("mailto:{plain}") == h {
                                format!("<{h}>")
                            } else {
                                format!("[{}]({h})", text.trim())
                            }
                        }
                    }
                }
                // Block elements inside inline ones, and td/th outside tables: their text.
                n if is_block(n) || n == "td" || n == "th" => format!(" {} ", inner()),
                _ => inner(),
            }
        }
    }
}

fn wrap(inner: &str, mark: &str) -> String {
    let t = inner.trim();
    if t.is_empty() {
        inner.to_string()
    } else {
        // Keep the spaces around the emphasis outside of it.
        let lead = if inner.starts_with(' ') { " " } else { "" };
        let trail = if inner.ends_with(' ') { " " } else { "" };
        format!("{lead}{mark}{t}{mark}{trail}")
    }
}

/// The text of nodes, as it is (for `pre` and `code`).
fn text_of(nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Element { name, .. } if name == "br" => out.push('\n'),
            Node::Element { children, .. } => out.push_str(&text_of(children)),
        }
    }
    out
}

/// HTML whitespace: every run is one space.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes the characters that would become Markdown syntax inside a line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let word = |j: Option<usize>| {
            j.and_then(|j| chars.get(j))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            '\\' | '*' | '`' | '[' | ']' | '<' | '>' => {
                out.push('\\');
                out.push(c);
            }
            // snake_case stays readable: only an underscore at a word edge can emphasize.
            '_' if !(word(i.checked_sub(1)) && word(Some(i + 1))) => out.push_str("\\_"),
            _ => out.push(c),
        }
    }
    out
}

fn longest_run(s: &str, ch: char) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == ch {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_becomes_markdown() {
        let html = r#"<html><head><title>T</title><style>p{color:red}</style></head>
<body><h2>Disk   alert</h2><p>The <b>disk</b> on <i>db1</i> is <a href="https://grafana.example.com/d/1">full</a>.</p>
<ul><li>one</li><li>two <code>df -h</code></li></ul><blockquote><p>quoted</p></blockquote>
<pre>line 1
  line 2</pre><p>a_b and _c_ 2 &lt; 3</p><table><tr><th>host</th><th>use</th></tr><tr><td>db1</td><td>99%</td></tr></table></body></html>"#;
        let md = html_to_markdown(html);
        assert_eq!(
            md,
            "## Disk alert\n\nThe **disk** on *db1* is [full](https://grafana.example.com/d/1).\n\n\
             - one\n- two `df -h`\n\n> quoted\n\n```\nline 1\n  line 2\n```\n\n\
             a_b and \\_c\\_ 2 \\< 3\n\n| host | use |\n| --- | --- |\n| db1 | 99% |"
        );
    }

    #[test]
    fn active_content_goes() {
        let html = r#"<p onclick="x()">Hi<script>alert(1)</script><img src="http://t/x.gif"><a href="javascript:alert(1)">click</a></p><iframe src="http://evil"></iframe><style>body{}</style>"#;
        let md = html_to_markdown(html);
        assert_eq!(md, "Hiclick");
        let deep = "<div>".repeat(5000) + "deep" + &"</div>".repeat(5000);
        assert_eq!(html_to_markdown(&deep), "deep");
    }

    #[test]
    fn breaks_and_lines() {
        let md = html_to_markdown(
            "<div>First line<br>second line<br># not a heading</div><p>- not a list</p>",
        );
        assert_eq!(
            md,
            "First line  \nsecond line  \n\\# not a heading\n\n\\- not a list"
        );
    }
}
