//! Email-in test support: sends real MIME messages to the server's SMTP receiver with
//! Python's smtplib (`send_mail.py`) and reports each SMTP reply.
#![allow(dead_code, reason = "each email test uses a different part")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Sends `spec` (see send_mail.py) to the receiver on `port`; returns
/// `{stage, code, message, rcpt_codes}`.
pub async fn send(port: u16, spec: Value) -> Value {
    tokio::task::spawn_blocking(move || {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/email_in_support/send_mail.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(spec.to_string().as_bytes())
            .expect("write spec");
        let out = child.wait_with_output().expect("send_mail.py");
        assert!(
            out.status.success(),
            "send_mail.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "send_mail.py output: {e}: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    })
    .await
    .expect("join")
}

/// A plain-text message from `from` to `rcpt`.
pub fn plain(from: &str, rcpt: &str, subject: &str, text: &str) -> Value {
    json!({"from": from, "rcpts": [rcpt], "subject": subject, "text": text})
}

/// Panics unless the message was accepted; returns the final reply text.
pub fn accepted(r: &Value) -> String {
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("done"), Some(250)),
        "{r}"
    );
    r["message"].as_str().unwrap_or("").to_string()
}

/// The ticket number in a "2.0.0 Ticket #N created" reply.
pub fn ticket_num(reply: &str) -> i64 {
    reply
        .split('#')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no ticket number in {reply:?}"))
}

/// The `[email_in]` section of a test server: intake `help@example.test` (type question,
/// category support, tag email), replies to `tickets@example.test`.
pub fn email_in_config(port: u16, extra: &str) -> String {
    format!(
        "\n[email_in]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\nhostname = \"mx.example.test\"\n\
         reply_address = \"tickets@example.test\"\nmax_message_bytes = 300000\n{extra}\n\
         [[email_in.intake]]\naddress = \"help@example.test\"\ntype = \"question\"\n\
         category = \"support\"\ntags = [\"email\"]\n"
    )
}

/// Whether python3 can run the sender (smtplib is in the standard library).
pub fn python_available() -> bool {
    crate::notify_support::python_can_import(
        "smtplib, email",
        "python3 is missing; CI must run the email-in tests",
        "python3 is not available",
    )
}
