//! A received message decoded with mail-parser (MIME, RFC 2047 headers, transfer encodings
//! and charsets, Shift_JIS/ISO-2022-JP/GB18030 and the like through encoding_rs): the From
//! address, subject, body as Markdown (the text part; else the HTML part converted), the
//! attachments, and whether it is automatic mail that must be ignored.

use docket_core::email_in::{html::html_to_markdown, loops, normalize_address, text_to_markdown};
use docket_core::service::{InboundMail, MailAttachment};
use mail_parser::{MessageParser, MimeHeaders, PartType};

/// A decoded message.
#[derive(Debug)]
pub struct Parsed {
    pub mail: InboundMail,
    /// Why it is dropped unread (auto-reply, our own notification), if it is.
    pub ignore: Option<&'static str>,
}

/// Decodes `raw`; `None` when it is not a message at all.
pub fn parse(raw: &[u8]) -> Option<Parsed> {
    let msg = MessageParser::default().parse(raw)?;
    let header = |name: &str| msg.header_raw(name.to_string()).map(str::to_string);
    let ignore = loops::ignore_reason(&header);
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(normalize_address)
        .unwrap_or_default();
    let subject = msg.subject().unwrap_or("").to_string();
    let texts: Vec<&str> = msg
        .text_bodies()
        .filter_map(|p| match &p.body {
            PartType::Text(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect();
    let body = if !texts.is_empty() {
        text_to_markdown(&texts.join("\n\n"))
    } else {
        msg.html_bodies()
            .filter_map(|p| match &p.body {
                PartType::Html(h) => Some(html_to_markdown(h)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    let attachments = msg
        .attachments()
        .enumerate()
        .map(|(i, part)| {
            let name = part
                .attachment_name()
                .map(str::to_string)
                .unwrap_or_else(|| default_name(i, part.content_type()));
            let data = match &part.body {
                // A forwarded message: its raw bytes, as a .eml file.
                PartType::Message(m) => m.raw_message().to_vec(),
                _ => part.contents().to_vec(),
            };
            MailAttachment {
                name,
                data: data.into(),
            }
        })
        .collect();
    Some(Parsed {
        mail: InboundMail {
            from,
            subject,
            body,
            attachments,
            message_id: msg.message_id().unwrap_or("").to_string(),
        },
        ignore,
    })
}

/// A name for an attachment that has none: `attachment-N.EXT` from its media type.
fn default_name(i: usize, ct: Option<&mail_parser::ContentType<'_>>) -> String {
    let kind = ct
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase())
        .unwrap_or_default();
    let ext = match kind.as_str() {
        "text/plain" => "txt",
        "text/html" => "html",
        "text/csv" => "csv",
        "application/json" => "json",
        "application/pdf" => "pdf",
        "application/zip" => "zip",
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        k if k.starts_with("message/") => "eml",
        _ => "bin",
    };
    format!("attachment-{}.{ext}", i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_with_charset_and_attachment() {
        let raw = b"From: =?ISO-8859-1?Q?Ren=E9?= <Rene@Example.org>\r\n\
Subject: =?ISO-8859-1?Q?Caf=E9_ferm=E9?=\r\n\
Message-ID: <abc@example.org>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Le caf=E9 est ferm=E9.\r\n\
Line two\r\n\
--b\r\n\
Content-Type: text/plain; name=\"log.txt\"\r\n\
Content-Disposition: attachment; filename=\"log.txt\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
aGVsbG8gbG9n\r\n\
--b--\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.ignore, None);
        assert_eq!(p.mail.from, "rene@example.org");
        assert_eq!(p.mail.subject, "Café fermé");
        assert_eq!(p.mail.body, "Le café est fermé.  \nLine two");
        assert_eq!(p.mail.message_id, "abc@example.org");
        assert_eq!(p.mail.attachments.len(), 1);
        assert_eq!(p.mail.attachments[0].name, "log.txt");
        assert_eq!(&p.mail.attachments[0].data[..], b"hello log");
    }

    #[test]
    fn html_only_and_auto_replies() {
        let raw = b"From: a@example.org\r\nSubject: x\r\nAuto-Submitted: auto-replied\r\nContent-Type: text/html\r\n\r\n<p>Out of <b>office</b></p><script>alert(1)</script>\r\n";
        let p = parse(raw).unwrap();
        assert_eq!(p.mail.body, "Out of **office**");
        assert!(p.ignore.is_some());
    }
}
