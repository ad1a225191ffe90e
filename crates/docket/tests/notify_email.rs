//! Notification emails against a real SMTP server process (aiosmtpd on loopback): new,
//! batched updates, body changes, drafts, `notify: false`, overdue reminders.

mod common;
mod notify_support;

use std::time::Duration;

use common::Server;
use notify_support::{aiosmtpd_available, free_port, rcpts, smtp_config, SmtpSink};
use serde_json::{json, Value};

async fn ok(r: (u16, Value)) -> Value {
    assert_eq!((r.0, &r.1["code"]), (200, &json!(0)), "{}", r.1);
    r.1
}

/// A server that mails through a fresh SMTP sink, debouncing "updated" emails for
/// `debounce` seconds (keep the directory: the sink writes there).
async fn mailing_server(debounce: &str) -> (tempfile::TempDir, SmtpSink, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let s = Server::start_with_config(
        &smtp_config(sink.port),
        &[("DOCKET_TICKETS__EMAIL_DEBOUNCE_SEC", debounce)],
    )
    .await;
    (tmp, sink, s)
}

/// Users ann, bob, carl (with emails) and an API key acting as ann.
async fn people(s: &Server) -> String {
    for name in ["ann", "bob", "carl"] {
        ok(s
            .user_call(
                "admin_create",
                json!({"username": name, "password": "password-123456", "email": format!("{name}@example.com"), "full_name": name}),
            )
            .await)
        .await;
    }
    let v = ok(s
        .call(
            "create_api_key",
            json!({"title": "ann's key", "username": "ann", "privileges": ["create_tickets", "edit_tickets"]}),
        )
        .await)
    .await;
    v["plain_key"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_updated_drafts_and_muted_emails() {
    if !aiosmtpd_available() {
        return;
    }
    let (_tmp, sink, s) = mailing_server("2").await;
    let ann = people(&s).await;

    // A new ticket emails at once: assignees, cc users and addresses, notify; never ann (the author).
    let t1 = ok(s
        .call_as(
            &ann,
            "create_ticket",
            json!({
                "subject": "Disk full on db1",
                "body": "The **disk** is full.\n\n<script>alert(1)</script>",
                "assignees": ["bob", "ann"],
                "cc": ["carl", "ext@example.org"],
                "notify": ["ops@example.org", "EXT@example.org"],
            }),
        )
        .await)
    .await["ticket"]
        .clone();
    let num1 = t1["num"].as_i64().unwrap();
    let m = sink.wait_for(1, 15).await;
    let new = &m[0];
    assert_eq!(
        rcpts(new),
        vec![
            "bob@example.com",
            "carl@example.com",
            "ext@example.org",
            "ops@example.org"
        ]
    );
    let subject = new["subject"].as_str().unwrap();
    assert!(
        subject.contains(&format!("#{num1}: Disk full on db1")),
        "{subject}"
    );
    assert!(!subject.starts_with("Re:"), "{subject}");
    assert_eq!(new["multipart"], "multipart/alternative");
    let text = new["text"].as_str().unwrap();
    let html = new["html"].as_str().unwrap();
    assert!(text.contains("The **disk** is full."), "{text}");
    assert!(
        text.contains(&format!(
            "https://tickets.example.test/#Tickets?id={}",
            t1["id"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(html.contains("<strong>disk</strong>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        new["message_id"]
            .as_str()
            .unwrap()
            .contains("docket.outbox."),
        "{new}"
    );

    // Drafts send nothing, also when edited; publishing sends the "new" email then.
    let t2 = s
        .create(json!({"subject": "Draft plan", "status": "draft", "assignees": ["ann"]}))
        .await;
    ok(s.call(
        "update_ticket",
        json!({"id": t2["id"], "body": "still drafting"}),
    )
    .await)
    .await;
    // Muted: a create, an update and a comment with notify: false send nothing.
    let t3 = s
        .create(json!({"subject": "Quiet one", "assignees": ["bob"], "notify": false}))
        .await;
    ok(s.call(
        "update_ticket",
        json!({"id": t3["id"], "status": "closed", "notify": false}),
    )
    .await)
    .await;
    ok(s.call(
        "add_ticket_change",
        json!({"id": t3["id"], "change": {"type": "comment", "body": "shh"}, "notify": false}),
    )
    .await)
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        sink.messages().len(),
        1,
        "drafts and muted changes must not email: {:#?}",
        sink.messages()
    );

    ok(
        s.call("update_ticket", json!({"id": t2["id"], "status": "open"}))
            .await,
    )
    .await;
    let m = sink.wait_for(2, 15).await;
    assert!(
        m[1]["subject"].as_str().unwrap().contains("Draft plan"),
        "{}",
        m[1]
    );
    assert!(!m[1]["subject"].as_str().unwrap().starts_with("Re:"));
    assert_eq!(rcpts(&m[1]), vec!["ann@example.com"]);
    assert!(m[1]["text"].as_str().unwrap().contains("still drafting"));

    // Rapid changes and comments of one ticket make ONE "updated" email.
    let id1 = t1["id"].clone();
    ok(s.call(
        "update_ticket",
        json!({"id": id1, "status": "in_progress", "tags": ["important"]}),
    )
    .await)
    .await;
    ok(s.call(
        "add_ticket_change",
        json!({"id": id1, "change": {"type": "comment", "body": "Looking at it *now*."}}),
    )
    .await)
    .await;
    ok(s.call_as(
        &ann,
        "add_ticket_change",
        json!({"id": id1, "change": {"type": "comment", "body": "Thanks!"}}),
    )
    .await)
    .await;
    ok(s.call(
        "update_ticket",
        json!({"id": id1, "body": "The disk was **replaced**."}),
    )
    .await)
    .await;
    let m = sink.wait_for(3, 20).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all = sink.messages();
    assert_eq!(all.len(), 3, "one batched update email expected: {all:#?}");
    let upd = &m[2];
    assert!(upd["subject"].as_str().unwrap().starts_with("Re:"), "{upd}");
    assert!(upd["subject"]
        .as_str()
        .unwrap()
        .contains(&format!("#{num1}")));
    let text = upd["text"].as_str().unwrap();
    for needle in [
        "Status changed to In Progress",
        "Tags changed to important",
        "Looking at it *now*.",
        "Thanks!",
        "**ann** wrote at",
        "The disk was **replaced**.",
        "Description",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    assert!(upd["html"].as_str().unwrap().contains("<em>now</em>"));
    // ann made one of the changes but not all: she is told about the batch.
    assert_eq!(
        rcpts(upd),
        vec![
            "ann@example.com",
            "bob@example.com",
            "carl@example.com",
            "ext@example.org",
            "ops@example.org"
        ]
    );

    // The queue is visible to admins.
    let q = ok(s.call("get_outbox", json!({"all": true})).await).await;
    let rows = q["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["status"] == "sent"), "{q}");
    assert!(rows.len() >= 6, "{q}");
    let (_, denied) = s.call_as(&ann, "get_outbox", json!({})).await;
    assert_ne!(denied["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_reminders_once_a_day_to_assignees() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    // The schedule is far away from now, so only the manual trigger runs it.
    let config = format!(
        "{}\n[tickets]\noverdue_schedule = \"23:59\"\n",
        smtp_config(sink.port)
    );
    let s = Server::start_with_config(&config, &[]).await;
    people(&s).await;
    let late = s
        .create(json!({"subject": "Renew the cert", "assignees": ["bob"], "cc": ["carl"], "due": "2020-01-15", "notify": false}))
        .await;
    s.create(json!({"subject": "Closed late", "assignees": ["bob"], "status": "closed", "due": "2020-01-15", "notify": false})).await;
    s.create(json!({"subject": "Not due yet", "assignees": ["bob"], "due": "2999-01-01", "notify": false})).await;
    let config_file = s.data.parent().unwrap().join("docket.toml");
    let cfg = config_file.to_str().unwrap();
    let out = common::cli(&s.data, &["notify", "run-overdue", "--config", cfg]);
    assert!(out.contains("Queued 1 overdue"), "{out}");
    let m = sink.wait_for(1, 15).await;
    assert_eq!(rcpts(&m[0]), vec!["bob@example.com"], "assignees only");
    let subject = m[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("Overdue") && subject.contains("Renew the cert"),
        "{subject}"
    );
    assert!(
        m[0]["text"].as_str().unwrap().contains("2020-01-15"),
        "{}",
        m[0]["text"]
    );
    assert!(m[0]["text"]
        .as_str()
        .unwrap()
        .contains(late["id"].as_str().unwrap()));
    // Never twice for the same day, also from a new process.
    let out = common::cli(&s.data, &["notify", "run-overdue", "--config", cfg]);
    assert!(out.contains("Queued 0 overdue"), "{out}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_overdue_runs_once_across_restarts() {
    if !aiosmtpd_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = SmtpSink::new(free_port(), &tmp.path().join("mail"));
    sink.start();
    let base = smtp_config(sink.port);
    let mut s = Server::start_with_config(
        &format!("{base}\n[tickets]\noverdue_schedule = \"23:59\"\n"),
        &[],
    )
    .await;
    people(&s).await;
    s.create(
        json!({"subject": "Past due", "assignees": ["bob"], "due": "2020-01-15", "notify": false}),
    )
    .await;
    // The schedule moves to a time already past today: the server queues today's reminders.
    let config_file = s.data.parent().unwrap().join("docket.toml");
    std::fs::write(
        &config_file,
        format!("{base}\n[tickets]\noverdue_schedule = \"00:00\"\n"),
    )
    .unwrap();
    s.restart();
    let m = sink.wait_for(1, 20).await;
    assert!(
        m[0]["subject"].as_str().unwrap().contains("Overdue"),
        "{}",
        m[0]
    );
    // Restarted again the same day: nothing more.
    s.restart();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(sink.messages().len(), 1, "{:#?}", sink.messages());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_only_reach_users_who_may_see_the_category() {
    if !aiosmtpd_available() {
        return;
    }
    let (_tmp, sink, s) = mailing_server("1").await;
    ok(s.call(
        "create_category",
        json!({"id": "secret", "title": "Secret"}),
    )
    .await)
    .await;
    for (name, categories) in [("dana", json!(["general"])), ("eric", json!([]))] {
        ok(s
            .user_call(
                "admin_create",
                json!({"username": name, "password": "password-123456", "email": format!("{name}@example.com"), "categories": categories}),
            )
            .await)
        .await;
    }
    // dana may only see `general`: a ticket in `secret` must not reach her, even as assignee.
    ok(s.call("create_ticket", json!({"subject": "Secret rotation", "category": "secret", "assignees": ["dana", "eric"], "cc": ["dana"]})).await).await;
    ok(s.call(
        "create_ticket",
        json!({"subject": "General chores", "category": "general", "assignees": ["dana"]}),
    )
    .await)
    .await;
    let m = sink.wait_for(2, 15).await;
    let secret = m
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .contains("Secret rotation")
        })
        .expect("secret email");
    assert_eq!(rcpts(secret), vec!["eric@example.com"]);
    let general = m
        .iter()
        .find(|m| {
            m["subject"]
                .as_str()
                .unwrap_or("")
                .contains("General chores")
        })
        .expect("general email");
    assert_eq!(rcpts(general), vec!["dana@example.com"]);
}

/// A bulk update mails as single edits do: one debounced "updated" email per changed
/// ticket to its people (never to the one who made the change), two bulk runs on one ticket
/// within the debounce make one email, a ticket left unchanged mails nothing, and
/// `notify: false` mutes the whole run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_updates_mail_each_changed_ticket_once_debounced() {
    if !aiosmtpd_available() {
        return;
    }
    let (_tmp, sink, s) = mailing_server("2").await;
    let ann = people(&s).await;
    // Created muted, so that only the bulk runs mail.
    let mut nums = Vec::new();
    for (subject, assignee) in [("Bulk a", "bob"), ("Bulk b", "carl"), ("Bulk c", "bob")] {
        let t = s
            .create(json!({"subject": subject, "assignees": [assignee], "notify": false}))
            .await;
        nums.push(t["num"].as_i64().unwrap());
    }
    let quiet = s
        .create(json!({"subject": "Bulk quiet", "assignees": ["bob"], "notify": false, "status": "closed"}))
        .await;

    // Muted run: changes all four, mails nothing.
    let v = ok(s
        .call_as(
            &ann,
            "bulk_update_tickets",
            json!({"query": "subject:bulk", "set": {"priority": "high"}, "notify": false}),
        )
        .await)
    .await;
    assert_eq!(v["changed"], 4, "{v}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(sink.messages().is_empty(), "{:#?}", sink.messages());

    // Two runs within the debounce: the open tickets change twice, the closed one is
    // left as it is by the second run's query.
    let v = ok(s
        .call_as(
            &ann,
            "bulk_update_tickets",
            json!({"query": "subject:bulk status:open", "set": {"status": "in_progress"}}),
        )
        .await)
    .await;
    assert_eq!(
        (v["changed"].clone(), v["unchanged"].clone()),
        (json!(3), json!(0)),
        "{v}"
    );
    let v = ok(s
        .call_as(
            &ann,
            "bulk_update_tickets",
            json!({"query": "subject:bulk", "set": {"tags": {"add": ["flag"]}, "status": "in_progress"}}),
        )
        .await)
    .await;
    assert_eq!(v["changed"], 4, "{v}");
    let m = sink.wait_for(4, 20).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let all = sink.messages();
    assert_eq!(all.len(), 4, "one email per changed ticket: {all:#?}");
    let mut seen: Vec<(i64, Vec<String>)> = m
        .iter()
        .map(|mail| {
            let subject = mail["subject"].as_str().unwrap();
            assert!(subject.starts_with("Re:"), "{subject}");
            let num = subject
                .split('#')
                .nth(1)
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no number in {subject}"));
            (num, rcpts(mail))
        })
        .collect();
    seen.sort();
    let quiet_num = quiet["num"].as_i64().unwrap();
    let mut want = vec![
        (nums[0], vec!["bob@example.com".to_string()]),
        (nums[1], vec!["carl@example.com".to_string()]),
        (nums[2], vec!["bob@example.com".to_string()]),
        (quiet_num, vec!["bob@example.com".to_string()]),
    ];
    want.sort();
    assert_eq!(seen, want);
    // The batched email of an open ticket tells both runs' changes.
    let first = m
        .iter()
        .find(|mail| {
            mail["subject"]
                .as_str()
                .unwrap()
                .contains(&format!("#{}:", nums[0]))
        })
        .unwrap();
    let text = first["text"].as_str().unwrap();
    for needle in ["Status changed to In Progress", "Tags changed to flag"] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    assert!(
        !text.contains("Priority"),
        "the muted run is not mailed:\n{text}"
    );
}
