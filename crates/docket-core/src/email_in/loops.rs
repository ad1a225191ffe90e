//! Mail that must not become a ticket or a comment: auto-replies (RFC 3834
//! `Auto-Submitted`, `Precedence: bulk|junk|list`, `X-Autoreply`, `X-Autorespond`), and our
//! own notifications coming back (their Message-ID is `<docket.outbox.FIRST.LAST@domain>`
//! and they carry `X-Docket-Outbox`). Such mail is accepted and dropped: refusing it would
//! make the sending server bounce to an auto-responder, the loop this rule is there to stop.

/// Why a message is ignored, or `None` when it is not. `header` gives a header's raw value.
pub fn ignore_reason(header: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
    let value = |name: &str| header(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = value("Auto-Submitted") {
        // `no` (a person wrote it) is the only value that is not automatic.
        let kind = v.split(';').next().unwrap_or("").trim().to_string();
        if !kind.is_empty() && kind != "no" {
            return Some("an automatic message (Auto-Submitted)");
        }
    }
    if let Some(v) = value("Precedence") {
        if matches!(v.as_str(), "bulk" | "junk" | "list" | "auto_reply") {
            return Some("bulk or list mail (Precedence)");
        }
    }
    if value("X-Autoreply").is_some()
        || value("X-Autorespond").is_some()
        || value("X-Auto-Response-Suppress").is_some_and(|v| v.contains("all"))
    {
        return Some("an auto-reply (X-Autoreply)");
    }
    if value("X-Docket-Outbox").is_some() {
        return Some("our own notification coming back (X-Docket-Outbox)");
    }
    if let Some(id) = value("Message-ID") {
        if is_own_message_id(&id) {
            return Some("our own notification coming back (Message-ID)");
        }
    }
    None
}

/// Whether a Message-ID is one of ours (`docket.outbox.FIRST.LAST@…`).
pub fn is_own_message_id(id: &str) -> bool {
    let id = id.trim().trim_start_matches('<').to_ascii_lowercase();
    id.strip_prefix("docket.outbox.").is_some_and(|rest| {
        rest.split('@').next().is_some_and(|ids| {
            ids.split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

/// Whether a sender is a mail system reporting on delivery (a bounce): the empty envelope
/// sender, `MAILER-DAEMON` or `postmaster`. (`noreply@` senders are kept: monitoring
/// systems send from such addresses.)
pub fn is_daemon_sender(addr: &str) -> bool {
    let a = super::normalize_address(addr);
    let local = a.split('@').next().unwrap_or("");
    a.is_empty() || matches!(local, "mailer-daemon" | "postmaster")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(headers: &[(&str, &str)]) -> Option<&'static str> {
        let h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        ignore_reason(&move |name: &str| {
            h.iter()
                .find(|(k, _)| *k == name.to_ascii_lowercase())
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn automatic_mail_is_recognized() {
        assert!(reason(&[("Auto-Submitted", "auto-replied")]).is_some());
        assert!(reason(&[("Auto-Submitted", "auto-generated; owner-email=x@y")]).is_some());
        assert!(reason(&[("Auto-Submitted", "no")]).is_none());
        assert!(reason(&[("Precedence", "Bulk")]).is_some());
        assert!(reason(&[("Precedence", "first-class")]).is_none());
        assert!(reason(&[("X-Autoreply", "yes")]).is_some());
        assert!(reason(&[("Message-ID", "<docket.outbox.12.15@example.com>")]).is_some());
        assert!(reason(&[("Message-ID", "<CAF=abc@mail.example.com>")]).is_none());
        assert!(reason(&[("X-Docket-Outbox", "1,2")]).is_some());
        assert!(reason(&[]).is_none());
        assert!(!is_own_message_id("<docket.outbox.x.1@e>"));
        assert!(is_daemon_sender("MAILER-DAEMON@example.com"));
        assert!(is_daemon_sender(""));
        assert!(!is_daemon_sender("ann@example.com"));
        assert!(!is_daemon_sender("noreply@monitoring.example.com"));
    }
}
