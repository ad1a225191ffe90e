//! Email in: the rules of turning a received email into a ticket or a comment, free of IO.
//! The binary's `email_in` module speaks SMTP and parses MIME; the service
//! (`service/email_in.rs`) writes the result through the ordinary ticket calls.
//!
//! - `reply`: the reply address of a ticket (`tickets+NUM.TOKEN@domain`) and its token, an
//!   HMAC of the ticket id under a server secret.
//! - `quote`: strips quoted history and signatures from a reply.
//! - `html`: HTML (already cleaned by ammonia) to Markdown.
//! - `loops`: auto-replies and our own messages coming back.
//! - `rate`: the per-sender limit.

pub mod html;
pub mod loops;
pub mod quote;
pub mod rate;
pub mod reply;

/// Lowercased, trimmed email address (the form senders and recipients are compared in).
pub fn normalize_address(addr: &str) -> String {
    addr.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_ascii_lowercase()
}

/// A plain-text mail body as Markdown: line ends normalized, and every line break kept (a
/// line followed by another ends in a Markdown hard break), as a mail program shows it.
pub fn text_to_markdown(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = String::with_capacity(text.len() + lines.len() * 2);
    for (i, line) in lines.iter().enumerate() {
        out.push_str(line);
        let next_has_text = lines.get(i + 1).is_some_and(|n| !n.is_empty());
        if !line.is_empty() && next_has_text {
            out.push_str("  ");
        }
        out.push('\n');
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_keeps_its_lines() {
        assert_eq!(text_to_markdown("a\r\nb \r\n\r\nc\r\n"), "a  \nb\n\nc");
        assert_eq!(normalize_address(" <Ann@Example.COM> "), "ann@example.com");
    }
}
