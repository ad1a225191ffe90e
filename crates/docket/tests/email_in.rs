//! Email in against the real server: Python's smtplib sends real MIME messages to the
//! built-in SMTP receiver; tickets, comments and files are checked over the API. Replies
//! use the Reply-To of a real notification email (captured by aiosmtpd).

mod common;
mod email_in_support;
mod notify_support;

use common::Server;
use email_in_support::{accepted, email_in_config, plain, python_available, send, ticket_num};
use notify_support::{aiosmtpd_available, free_port, smtp_config, SmtpSink};
use serde_json::{json, Value};

async fn ok(r: (u16, Value)) -> Value {
    assert_eq!((r.0, &r.1["code"]), (200, &json!(0)), "{}", r.1);
    r.1
}

async fn ticket(s: &Server, num: i64) -> Value {
    ok(s.call("get_ticket", json!({"num": num})).await).await["ticket"].clone()
}

async fn ticket_count(s: &Server) -> i64 {
    ok(s.call("search_tickets", json!({"query": "*", "limit": 1}))
        .await)
    .await["list"]["length"]
        .as_i64()
        .unwrap()
}

/// The category and tag the intake address files into, and users: ann (may edit) and
/// carl (may not), each with an email.
async fn setup(s: &Server) {
    ok(s.call(
        "create_category",
        json!({"id": "support", "title": "Support"}),
    )
    .await)
    .await;
    ok(
        s.call("create_tag", json!({"id": "email", "title": "Email"}))
            .await,
    )
    .await;
    for (name, privileges) in [
        ("ann", json!({"create_tickets": true, "edit_tickets": true})),
        ("carl", json!({})),
    ] {
        ok(s.user_call(
            "admin_create",
            json!({"username": name, "password": "password-123456", "email": format!("{name}@example.com"),
                   "full_name": name, "privileges": privileges}),
        )
        .await)
        .await;
    }
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_the_intake_address_opens_tickets() {
    if !python_available() {
        return;
    }
    let port = free_port();
    let s = Server::start_with_config(&email_in_config(port, ""), &[]).await;
    setup(&s).await;

    // An external sender: plain text with an attachment.
    let log = b"disk usage 99%\nnode db1\n".to_vec();
    let mut spec = plain(
        "Vendor Support <Vendor@Example.org>",
        "help@example.test",
        "Disk full on db1",
        "The disk on db1 is full.\nPlease check.\n",
    );
    spec["attachments"] = json!([{"name": "df.log", "hex": hex(&log), "type": "text/plain"}]);
    spec["headers"] = json!({"Message-ID": "<first-1@example.org>"});
    let reply = accepted(&send(port, spec.clone()).await);
    let num = ticket_num(&reply);
    let t = ticket(&s, num).await;
    assert_eq!(t["subject"], "Disk full on db1");
    assert_eq!(t["body"], "The disk on db1 is full.  \nPlease check.");
    assert_eq!(t["type"], "question");
    assert_eq!(t["category"], "support");
    assert_eq!(t["tags"], json!(["email"]));
    assert_eq!(
        t["username"], "vendor@example.org",
        "the external reporter is the creator"
    );
    assert_eq!(t["notify"], json!(["vendor@example.org"]));
    let files = t["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{t}");
    assert_eq!(files[0]["filename"], "df.log");
    let res = s
        .client
        .get(s.url(&format!("/{}", files[0]["path"].as_str().unwrap())))
        .header("X-API-Key", &s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), &log[..]);

    // The same message delivered again (a retry) makes no second ticket.
    let before = ticket_count(&s).await;
    let again = accepted(&send(port, spec).await);
    assert_eq!(ticket_num(&again), num);
    assert_eq!(ticket_count(&s).await, before);

    // A sender who is a user: the ticket is theirs and they are on its cc.
    let reply = accepted(
        &send(
            port,
            plain(
                "ann@EXAMPLE.com",
                "Help@Example.Test",
                "VPN down",
                "Since 9:00.",
            ),
        )
        .await,
    );
    let t = ticket(&s, ticket_num(&reply)).await;
    assert_eq!(t["username"], "ann");
    assert_eq!(t["cc"], json!(["ann"]));
    assert_eq!(t["notify"], json!([]));

    // HTML-only mail: converted to Markdown, nothing active survives.
    let html = r#"<html><head><style>p{color:red}</style></head><body><p>Server <b>web2</b> is <a href="https://status.example.org/web2">down</a>.</p><script>alert('x')</script><p onclick="steal()">Second <img src="https://track.example/x.gif">para</p></body></html>"#;
    let reply = accepted(
        &send(port, json!({"from": "mon@example.org", "rcpts": ["help@example.test"], "subject": "web2 down", "html": html})).await,
    );
    let t = ticket(&s, ticket_num(&reply)).await;
    let body = t["body"].as_str().unwrap();
    assert_eq!(
        body,
        "Server **web2** is [down](https://status.example.org/web2).\n\nSecond para"
    );
    for bad in [
        "script",
        "alert",
        "onclick",
        "steal",
        "<img",
        "track.example",
        "color:red",
    ] {
        assert!(!body.contains(bad), "{bad} survived: {body}");
    }

    // Non-UTF-8 charsets: ISO-8859-1 and Shift_JIS subjects and bodies decode.
    for (charset, subject, text) in [
        (
            "iso-8859-1",
            "Café fermé à Zürich",
            "Le café est fermé. Grüße",
        ),
        (
            "shift_jis",
            "ディスク容量の警告",
            "ディスクがいっぱいです。",
        ),
    ] {
        let mut spec = plain("jp@example.org", "help@example.test", subject, text);
        spec["charset"] = json!(charset);
        let reply = accepted(&send(port, spec).await);
        let t = ticket(&s, ticket_num(&reply)).await;
        assert_eq!(t["subject"], subject, "{charset}");
        assert_eq!(t["body"], text, "{charset}");
    }

    // Auto-replies and our own notifications coming back are accepted and dropped.
    let before = ticket_count(&s).await;
    for headers in [
        json!({"Auto-Submitted": "auto-replied"}),
        json!({"Precedence": "bulk"}),
        json!({"X-Autoreply": "yes"}),
        json!({"Message-ID": "<docket.outbox.7.9@example.test>"}),
    ] {
        let mut spec = plain(
            "ooo@example.org",
            "help@example.test",
            "Out of office",
            "Back Monday.",
        );
        spec["headers"] = headers.clone();
        let reply = accepted(&send(port, spec).await);
        assert!(reply.contains("ignored"), "{headers}: {reply}");
    }
    // A bounce (empty envelope sender) too.
    let mut bounce = plain(
        "MAILER-DAEMON@example.org",
        "help@example.test",
        "Undelivered",
        "x",
    );
    bounce["mail_from"] = json!("");
    assert!(accepted(&send(port, bounce).await).contains("ignored"));
    assert_eq!(
        ticket_count(&s).await,
        before,
        "ignored mail opened a ticket"
    );

    // Not an open relay: other recipients are refused at RCPT.
    let r = send(
        port,
        plain("a@example.org", "someone@elsewhere.example", "x", "y"),
    )
    .await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("rcpt"), Some(550)),
        "{r}"
    );

    // Over email_in.max_message_bytes: refused (552), no ticket, no file.
    let mut big = plain("big@example.org", "help@example.test", "Huge", "x");
    big["attachments"] = json!([{"name": "big.bin", "hex": hex(&vec![7u8; 400_000]), "type": "application/octet-stream"}]);
    let r = send(port, big).await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("data"), Some(552)),
        "{r}"
    );
    assert_eq!(ticket_count(&s).await, before);
    assert!(
        !common::files_under(&s.data)
            .iter()
            .any(|f| f.contains("big.bin")),
        "an oversized message left a file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_notifications_become_comments() {
    if !python_available() || !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let port = free_port();
    let config = smtp_config(sink.port) + &email_in_config(port, "");
    let s =
        Server::start_with_config(&config, &[("DOCKET_TICKETS__EMAIL_DEBOUNCE_SEC", "1")]).await;
    setup(&s).await;

    // A ticket the vendor is notified about: its "new" email carries the reply address.
    let t = s
        .create(json!({"subject": "Backup failed", "notify": ["vendor@example.org"], "category": "support"}))
        .await;
    let (id, num) = (
        t["id"].as_str().unwrap().to_string(),
        t["num"].as_i64().unwrap(),
    );
    let mails = sink.wait_for(1, 15).await;
    let reply_to = mails[0]["reply_to"].as_str().unwrap().to_string();
    let prefix = format!("tickets+{num}.");
    assert!(
        reply_to.starts_with(&prefix) && reply_to.ends_with("@example.test"),
        "no reply address in the notification: {}",
        mails[0]
    );
    let token = &reply_to[prefix.len()..reply_to.find('@').unwrap()];
    assert_eq!(token.len(), 24, "{reply_to}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));

    // The vendor (in notify) replies: a comment under their address, quote stripped.
    let text = "Restarted the job, it runs now.\n\nOn Mon, 1 Jan 2024 at 10:00, Docket <docket@example.test> wrote:\n> Backup failed\n> more";
    let r = accepted(
        &send(
            port,
            plain("vendor@example.org", &reply_to, "Re: Backup failed", text),
        )
        .await,
    );
    assert!(r.contains(&format!("#{num}")), "{r}");
    let t = ticket(&s, num).await;
    let comments: Vec<&Value> = t["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "comment")
        .collect();
    assert_eq!(comments.len(), 1, "{t}");
    assert_eq!(comments[0]["username"], "vendor@example.org");
    assert_eq!(comments[0]["body"], "Restarted the job, it runs now.");

    // ann (a user who may edit) replies with an attachment: her comment, and the file.
    let mut spec = plain(
        "ann@example.com",
        &reply_to,
        "Re: Backup failed",
        "Confirmed.\n-- \nAnn, ops",
    );
    spec["attachments"] = json!([{"name": "job.log", "hex": hex(b"ok"), "type": "text/plain"}]);
    accepted(&send(port, spec).await);
    let t = ticket(&s, num).await;
    let last = t["changes"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|c| c["type"] == "comment")
        .unwrap();
    assert_eq!(
        (last["username"].as_str(), last["body"].as_str()),
        (Some("ann"), Some("Confirmed."))
    );
    assert_eq!(t["files"].as_array().unwrap().len(), 1, "{t}");
    let changes = t["changes"].as_array().unwrap().len();

    // Refused, and nothing changes: a wrong token (at RCPT), a stranger, a user who may
    // not comment, a reply with only quoted text.
    let mut wrong = reply_to.clone();
    let flip = prefix.len();
    let c = if &wrong[flip..=flip] == "0" { "1" } else { "0" };
    wrong.replace_range(flip..=flip, c);
    let r = send(port, plain("vendor@example.org", &wrong, "Re", "sneaky")).await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("rcpt"), Some(550)),
        "{r}"
    );
    let other = format!("tickets+{}.{token}@example.test", num + 1000);
    let r = send(port, plain("vendor@example.org", &other, "Re", "sneaky")).await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("rcpt"), Some(550)),
        "{r}"
    );
    for (from, body) in [
        ("stranger@example.org", "let me in"),
        ("carl@example.com", "no edit right"),
        ("vendor@example.org", "> only a quote"),
    ] {
        let r = send(port, plain(from, &reply_to, "Re", body)).await;
        assert_eq!(r["stage"], "data", "{from}: {r}");
        assert!(r["code"].as_i64().unwrap() >= 550, "{from}: {r}");
    }
    // An auto-reply to the reply address is dropped.
    let mut ooo = plain("vendor@example.org", &reply_to, "Auto: Re", "I am away");
    ooo["headers"] = json!({"Auto-Submitted": "auto-replied"});
    assert!(accepted(&send(port, ooo).await).contains("ignored"));
    let t = ticket(&s, num).await;
    assert_eq!(
        t["changes"].as_array().unwrap().len(),
        changes,
        "a refused reply changed the ticket: {t}"
    );
    assert_eq!(t["id"], id);

    // The update email about these comments carries the same reply address.
    let upd = sink.wait_for(2, 20).await;
    assert!(
        upd.iter()
            .skip(1)
            .all(|m| m["reply_to"] == reply_to.as_str()),
        "{upd:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_are_rate_limited() {
    if !python_available() {
        return;
    }
    let port = free_port();
    let s =
        Server::start_with_config(&email_in_config(port, "max_per_sender_per_hour = 2"), &[]).await;
    setup(&s).await;
    for i in 0..2 {
        accepted(
            &send(
                port,
                plain(
                    "chatty@example.org",
                    "help@example.test",
                    &format!("n{i}"),
                    "x",
                ),
            )
            .await,
        );
    }
    let r = send(
        port,
        plain("chatty@example.org", "help@example.test", "n3", "x"),
    )
    .await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("mail"), Some(451)),
        "{r}"
    );
    // The header sender counts too, whatever the envelope says.
    let mut spoof = plain("chatty@example.org", "help@example.test", "n4", "x");
    spoof["mail_from"] = json!("other@example.org");
    let r = send(port, spoof).await;
    assert_eq!(
        (r["stage"].as_str(), r["code"].as_i64()),
        (Some("data"), Some(451)),
        "{r}"
    );
    assert_eq!(ticket_count(&s).await, 2);
    // Another sender is not affected.
    accepted(
        &send(
            port,
            plain("calm@example.org", "help@example.test", "hello", "x"),
        )
        .await,
    );
}
