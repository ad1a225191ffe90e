//! The new text of a reply: quoted history and signatures removed.
//!
//! Cut at the first line that starts the quoted message ("On … wrote:", also when the mail
//! program wrapped it over two lines, and its German, French, Spanish and Dutch forms;
//! "-----Original Message-----"; Outlook's underscore rule or a `From:` header block), or
//! that starts a signature ("-- "). Lines starting with `>` go wherever they are, and a
//! trailing "Sent from my …" line goes. What is left is trimmed.

/// Strips quoted history and signatures from the text of a reply.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).copied().unwrap_or("");
        if starts_history(line, next) || line.trim_end() == "--" {
            break;
        }
        if !line.trim_start().starts_with('>') {
            kept.push(line);
        }
        i += 1;
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    if kept
        .last()
        .is_some_and(|l| l.trim().to_ascii_lowercase().starts_with("sent from my "))
    {
        kept.pop();
    }
    kept.join("\n").trim().to_string()
}

/// The verb of an attribution line ("On Monday, Ann wrote:", "Am … schrieb Ann:").
const WROTE: [&str; 5] = [" wrote", " schrieb", " a écrit", " escribió", " schreef"];
/// Words that start one.
const ON: [&str; 5] = ["on ", "am ", "le ", "el ", "op "];

fn starts_history(line: &str, next: &str) -> bool {
    let t = line.trim();
    let lower = t.to_lowercase();
    if lower.starts_with("-----original message-----")
        || lower.starts_with("----- original message -----")
        || lower.starts_with("-------- original message --------")
        || lower.starts_with("begin forwarded message:")
    {
        return true;
    }
    if t.len() >= 20 && t.chars().all(|c| c == '_') {
        return true;
    }
    // An Outlook header block: "From: …" followed by "Sent:" / "Date:" soon after.
    if lower.starts_with("from:") {
        let n = next.trim().to_lowercase();
        if n.starts_with("sent:") || n.starts_with("date:") || n.starts_with("to:") {
            return true;
        }
    }
    let attribution = |s: &str| s.ends_with(':') && WROTE.iter().any(|w| s.contains(w));
    if ON.iter().any(|on| lower.starts_with(on)) {
        if attribution(&lower) {
            return true;
        }
        // Wrapped: "On Mon, 1 Jan 2024 at 10:00, Ann <ann@example.com>" / "wrote:".
        let n = format!(" {}", next.trim().to_lowercase());
        if attribution(&n) && n.len() < 60 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribution_and_quotes_go() {
        let t = "Thanks, restarted it.\n\nOn Mon, 1 Jan 2024 at 10:00, Docket <d@example.com> wrote:\n> The disk is full\n> on db1";
        assert_eq!(strip_quoted(t), "Thanks, restarted it.");
        let wrapped = "Done.\nOn Mon, 1 Jan 2024 at 10:00, Docket <d@example.com>\nwrote:\n\n> old";
        assert_eq!(strip_quoted(wrapped), "Done.");
        let german = "Erledigt.\n\nAm 01.01.2024 um 10:00 schrieb Docket <d@example.com>:\n> alt";
        assert_eq!(strip_quoted(german), "Erledigt.");
    }

    #[test]
    fn inline_quotes_signatures_and_outlook() {
        let t = "> question one\nanswer one\n> question two\nanswer two\n-- \nAnn\nOps team";
        assert_eq!(strip_quoted(t), "answer one\nanswer two");
        let outlook = "Fixed now.\r\n\r\n________________________________\r\nFrom: Docket\r\nSent: Monday\r\nold text";
        assert_eq!(strip_quoted(outlook), "Fixed now.");
        let headers = "Fixed.\nFrom: Docket <d@example.com>\nSent: Monday\nSubject: x";
        assert_eq!(strip_quoted(headers), "Fixed.");
        let orig = "Yes.\n-----Original Message-----\nFrom: x";
        assert_eq!(strip_quoted(orig), "Yes.");
        let hard_breaks = crate::email_in::text_to_markdown("Done.\n-- \nAnn");
        assert_eq!(strip_quoted(&hard_breaks), "Done.");
        let phone = "Ok\n\nSent from my phone\n";
        assert_eq!(strip_quoted(phone), "Ok");
        // Text that merely mentions "on" or "from:" stays.
        let plain = "On second thought, keep it.\nFrom: the logs it looks fine.";
        assert_eq!(strip_quoted(plain), plain);
    }
}
