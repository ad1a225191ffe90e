//! The web desk in a real browser (chromium through chromedriver): sign in, search with a
//! filter and a saved search, open a ticket, comment with a dropped file, change status,
//! create a ticket, live updates from a second session, dark mode, keyboard use, a user
//! limited to one category, and axe-core on every page. Screenshots of the main pages land
//! in docs/screenshots/.

mod common;
mod web_support;

use common::{Server, ADMIN_PASSWORD};
use serde_json::{json, Value};
use web_support::{browser_available, Driver};

const PASSWORD: &str = "correct-horse-battery";

/// A server with people, tags, categories and a few tickets.
async fn seeded() -> Server {
    let s = Server::start().await;
    for (id, title) in [("ops", "Operations"), ("sec", "Security")] {
        let (_, v) = s
            .call("create_category", json!({"id": id, "title": title}))
            .await;
        assert_eq!(v["code"], 0, "{v}");
    }
    for (id, title) in [("db", "Database"), ("net", "Network")] {
        let (_, v) = s
            .call("create_tag", json!({"id": id, "title": title}))
            .await;
        assert_eq!(v["code"], 0, "{v}");
    }
    for (user, name, cats) in [
        ("alice", "Alice Archer", json!([])),
        ("bob", "Bob Baker", json!([])),
        ("carol", "Carol Cole", json!(["ops"])),
    ] {
        let (_, v) = s
            .user_call(
                "admin_create",
                json!({"username": user, "password": PASSWORD, "full_name": name,
                       "email": format!("{user}@example.com"),
                       "privileges": ["create_tickets", "edit_tickets", "delete_tickets"],
                       "categories": cats}),
            )
            .await;
        assert_eq!(v["code"], 0, "{v}");
    }
    s.create(json!({"subject": "Disk full on db1", "body": "The `/var` volume on **db1** is at 98%.\n\n| host | use |\n|---|---|\n| db1 | 98% |",
        "type": "issue", "status": "open", "assignees": ["alice"], "tags": ["db"], "category": "ops"})).await;
    s.create(json!({"subject": "Rotate TLS certificates", "body": "Certificates expire next month.",
        "type": "change", "status": "in_progress", "assignees": ["bob"], "tags": ["net"], "category": "ops"})).await;
    s.create(
        json!({"subject": "Audit SSH keys", "body": "Secret audit of the bastion hosts.",
        "type": "task", "status": "open", "category": "sec"}),
    )
    .await;
    s
}

async fn ticket_num(s: &Server, subject: &str) -> i64 {
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": format!("subject:\"{subject}\""), "limit": 1}),
        )
        .await;
    v["rows"][0]["num"]
        .as_i64()
        .unwrap_or_else(|| panic!("no ticket {subject}: {v}"))
}

#[tokio::test]
async fn sign_in_search_filter_save_and_open() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let driver = Driver::start().await;
    let b = driver.session().await;

    // A page needs a session: the list sends us to the login page, a wrong password says so.
    b.goto(&s.url("/tickets")).await;
    b.wait_js("location.pathname === '/login'", 5, "the login page")
        .await;
    b.fill("#username", "alice").await;
    b.fill("#password", "wrong").await;
    b.click("button[type=submit]").await;
    assert!(b
        .text(".error")
        .await
        .contains("Incorrect username or password"));
    b.login(&s.base, "alice", PASSWORD).await;
    assert!(b.text(".whoami").await.contains("Alice Archer"));
    assert_eq!(
        b.js(
            "return document.querySelectorAll('table.tickets tbody tr').length",
            vec![]
        )
        .await,
        json!(3)
    );

    // A query error is shown with its span highlighted, and nothing else breaks.
    b.fill("#q", "stauts:open").await;
    b.click("#search-form button[type=submit]").await;
    let err = b.text("#query-error").await;
    assert!(err.contains("Unknown search field"), "{err}");
    assert!(err.contains("did you mean \"status\"?"), "{err}");
    assert_eq!(b.text("#query-error mark").await, "stauts");

    // A filter writes into the query.
    b.fill("#q", "disk").await;
    b.click("#search-form button[type=submit]").await;
    b.wait_js(
        "document.querySelectorAll('table.tickets tbody tr').length === 1",
        5,
        "one result for disk",
    )
    .await;
    b.js("const s = document.querySelector('select[name=status]'); s.value = 'open'; s.dispatchEvent(new Event('change'));", vec![]).await;
    b.wait_js(
        "document.querySelector('#q').value === 'disk status:open'",
        5,
        "the filter in the query",
    )
    .await;
    assert!(b.text(".count").await.starts_with("1–1 of 1 ticket"));

    // Sorting by a column header.
    b.goto(&s.url("/tickets")).await;
    b.click("th.col-subject a").await;
    b.wait_js(
        "location.search.includes('sort=subject')",
        5,
        "sorted by subject",
    )
    .await;
    let subjects = b
        .js(
            "return [...document.querySelectorAll('td.subject a')].map(a => a.textContent)",
            vec![],
        )
        .await;
    assert_eq!(
        subjects,
        json!([
            "Audit SSH keys",
            "Disk full on db1",
            "Rotate TLS certificates"
        ])
    );

    // Save a search, then use it from the sidebar.
    b.goto(&s.url("/tickets?q=tags%3Anet")).await;
    b.fill("#save-name", "Network work").await;
    b.click("form.save-search button").await;
    b.wait_js(
        "document.querySelector('.flash-ok') !== null",
        5,
        "the saved notice",
    )
    .await;
    b.goto(&s.url("/tickets")).await;
    b.click("ul.saved a").await;
    b.wait_js(
        "document.querySelectorAll('table.tickets tbody tr').length === 1",
        5,
        "the saved search's result",
    )
    .await;
    assert_eq!(b.text("td.subject a").await, "Rotate TLS certificates");
    b.goto(&s.url("/tickets")).await;
    b.screenshot("search").await;

    // Open a ticket from the list: the rendered Markdown and the details are there.
    b.click("td.subject a").await;
    b.wait_js(
        "location.pathname.startsWith('/tickets/')",
        5,
        "a ticket page",
    )
    .await;
    b.goto(&s.url(&format!(
        "/tickets/{}",
        ticket_num(&s, "Disk full on db1").await
    )))
    .await;
    assert_eq!(b.text("#subject-text").await, "Disk full on db1");
    assert_eq!(b.text("#ticket-body .markdown strong").await, "db1");
    assert!(b.exists("#ticket-body .markdown table").await);
    assert_eq!(
        b.js("return document.querySelector('#m-status').value", vec![])
            .await,
        json!("open")
    );

    // Old xyOps links (#Tickets?id=ID) land on the ticket's page.
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "subject:rotate", "limit": 1}),
        )
        .await;
    let id = v["rows"][0]["id"].as_str().expect("id").to_string();
    let num = v["rows"][0]["num"].as_i64().expect("num");
    b.goto(&s.url(&format!("/#Tickets?id={id}"))).await;
    b.wait_js(
        &format!("location.pathname === '/tickets/{num}'"),
        5,
        "the redirect of an old link",
    )
    .await;

    b.close().await;
}

#[tokio::test]
async fn comment_with_a_dropped_file_change_status_and_create() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let num = ticket_num(&s, "Disk full on db1").await;
    let driver = Driver::start().await;
    let b = driver.session().await;
    b.login(&s.base, "alice", PASSWORD).await;
    b.goto(&s.url(&format!("/tickets/{num}"))).await;

    // Drop a file on the comment editor: it uploads, attaches, and links itself in the text.
    b.js(
        "const ta = document.querySelector('#comment-body');
         ta.value = 'Cleaned up old WAL files, see the log:';
         const dt = new DataTransfer();
         dt.items.add(new File(['line 1\\nline 2\\n'], 'cleanup.log', {type: 'text/plain'}));
         ta.closest('[data-editor]').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        vec![],
    )
    .await;
    b.wait_js(
        "document.querySelector('#comment-body').value.includes('[cleanup.log](/files/')",
        10,
        "the file link in the comment",
    )
    .await;
    b.click("#comment-form button[type=submit]").await;
    b.wait_js("document.querySelector('.flash-ok') && document.querySelector('.flash-ok').textContent.includes('Comment added')", 5, "the comment notice").await;
    let last = b.text("#timeline li.comment:last-of-type .markdown").await;
    assert!(last.contains("Cleaned up old WAL files"), "{last}");
    let href = b.js("return document.querySelector('#timeline li.comment:last-of-type .markdown a').getAttribute('href')", vec![]).await;
    let href = href.as_str().expect("a link").to_string();
    assert!(href.starts_with("/files/"), "{href}");
    assert!(b.text("#ticket-files").await.contains("cleanup.log"));
    // The link works for this signed-in person (the session cookie is enough to read).
    let body = b
        .js(
            "return fetch(arguments[0]).then(r => r.text())",
            vec![json!(href)],
        )
        .await;
    assert_eq!(body, json!("line 1\nline 2\n"));

    // Change the status inline: the select submits itself and the timeline says it in words.
    b.js("const s = document.querySelector('#m-status'); s.value = 'in_progress'; s.dispatchEvent(new Event('change'));", vec![]).await;
    b.wait_js("document.querySelector('.flash-ok') && document.querySelector('#m-status').value === 'in_progress'", 5, "the status change").await;
    let timeline = b.text("#timeline").await;
    assert!(
        timeline.contains("alice set status to In Progress"),
        "{timeline}"
    );
    b.screenshot("ticket").await;

    // Edit the comment, then check the API sees the same ticket.
    let (_, v) = s.call("get_ticket", json!({"num": num})).await;
    assert_eq!(v["ticket"]["status"], "in_progress");
    assert_eq!(v["ticket"]["files"].as_array().map(Vec::len), Some(1));

    // Create a ticket: defaults, a due preset, tags and assignees from pickers, a file.
    b.goto(&s.url("/tickets/new")).await;
    b.fill("#n-subject", "Replace failing fan in rack 4").await;
    b.fill("#n-body", "Fan **3** reports 0 RPM.").await;
    b.js(
        "document.querySelector('#n-assignees option[value=bob]').selected = true;
          document.querySelector('#n-tags option[value=db]').selected = true;
          document.querySelector('#n-category').value = 'ops';",
        vec![],
    )
    .await;
    b.click("[data-due-presets] button[data-days='7']").await;
    let due = b
        .js("return document.querySelector('#n-due').value", vec![])
        .await;
    assert!(due.as_str().is_some_and(|d| d.len() == 10), "{due}");
    b.screenshot("new-ticket").await;
    let file = s.data.join("../fan.txt");
    std::fs::write(&file, "rpm=0\n").expect("write upload file");
    b.find("#n-files")
        .await
        .send_keys(&file.canonicalize().expect("path").to_string_lossy())
        .await
        .expect("choose file");
    b.click("#new-ticket button[type=submit]").await;
    b.wait_js("document.querySelector('#subject-text') && document.querySelector('#subject-text').textContent === 'Replace failing fan in rack 4'", 10, "the new ticket's page").await;
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "subject:fan", "limit": 1}),
        )
        .await;
    let t = &v["rows"][0];
    assert_eq!(t["assignees"], json!(["bob"]));
    assert_eq!(t["tags"], json!(["db"]));
    assert_eq!(t["category"], "ops");
    assert_eq!(t["username"], "alice");
    assert!(t["due"].as_i64().unwrap_or(0) > 0, "{t}");
    assert_eq!(t["files"][0]["filename"], "fan.txt");

    // Without files the form posts to the server directly; an error keeps what was typed.
    b.goto(&s.url("/tickets/new")).await;
    b.fill("#n-subject", "Bad due").await;
    b.js("document.querySelector('#n-due').type = 'text'; document.querySelector('#n-due').value = 'someday';", vec![]).await;
    b.click("#new-ticket button[type=submit]").await;
    b.wait_js(
        "document.querySelector('#new-error') !== null",
        5,
        "the create error",
    )
    .await;
    assert_eq!(
        b.js("return document.querySelector('#n-subject').value", vec![])
            .await,
        json!("Bad due")
    );
    b.close().await;
}

#[tokio::test]
async fn live_updates_from_a_second_session() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let num = ticket_num(&s, "Disk full on db1").await;
    let driver = Driver::start().await;
    let watcher = driver.session().await;
    let worker = driver.session().await;
    watcher.login(&s.base, "alice", PASSWORD).await;
    worker.login(&s.base, "bob", PASSWORD).await;

    // The watcher has the ticket open; a marker proves the page is never reloaded.
    watcher.goto(&s.url(&format!("/tickets/{num}"))).await;
    watcher.js("window.__noReload = true;", vec![]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    worker.goto(&s.url(&format!("/tickets/{num}"))).await;
    worker
        .fill("#comment-body", "I am on it from the other session")
        .await;
    let sent = std::time::Instant::now();
    worker.click("#comment-form button[type=submit]").await;
    watcher
        .wait_js("document.querySelector('#timeline').textContent.includes('I am on it from the other session')", 5, "the comment to arrive live")
        .await;
    let took = sent.elapsed();
    assert_eq!(
        watcher
            .js("return window.__noReload === true", vec![])
            .await,
        json!(true)
    );
    assert!(
        took < std::time::Duration::from_millis(1500),
        "live comment took {took:?}"
    );
    assert!(watcher.text(".live-banner").await.contains("Updated"));

    // A list page shows a new matching ticket without a reload; a non-matching one changes nothing.
    watcher.goto(&s.url("/tickets?q=tags%3Adb")).await;
    watcher.js("window.__noReload = true;", vec![]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s.create(json!({"subject": "Replica lag on db2", "tags": ["db"], "status": "open"}))
        .await;
    watcher
        .wait_js(
            "document.querySelector('#results').textContent.includes('Replica lag on db2')",
            5,
            "the new ticket in the list",
        )
        .await;
    assert_eq!(
        watcher
            .js("return window.__noReload === true", vec![])
            .await,
        json!(true)
    );
    watcher.close().await;
    worker.close().await;
}

#[tokio::test]
async fn dark_mode_keyboard_and_a_category_limited_user() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let secret = ticket_num(&s, "Audit SSH keys").await;
    let driver = Driver::start().await;
    let b = driver.session().await;
    b.login(&s.base, "alice", PASSWORD).await;

    // The theme switch: auto -> dark, remembered across pages.
    let light_bg = b
        .js(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await;
    b.click("#theme-toggle").await;
    b.goto(&s.url("/tickets")).await;
    assert_eq!(
        b.js("return document.documentElement.dataset.theme", vec![])
            .await,
        json!("dark")
    );
    let dark_bg = b
        .js(
            "return getComputedStyle(document.body).backgroundColor",
            vec![],
        )
        .await;
    assert_ne!(light_bg, dark_bg);
    assert_eq!(dark_bg, json!("rgb(15, 18, 22)"));
    b.screenshot("search-dark").await;
    let num = ticket_num(&s, "Disk full on db1").await;
    b.goto(&s.url(&format!("/tickets/{num}"))).await;
    b.screenshot("ticket-dark").await;

    // Keyboard only: / focuses search, j/k move, o opens, c focuses the comment box, ? helps.
    b.goto(&s.url("/tickets?sort=num&dir=asc")).await;
    b.keys("/").await;
    assert_eq!(
        b.js("return document.activeElement.id", vec![]).await,
        json!("q")
    );
    b.js("document.activeElement.blur()", vec![]).await;
    b.keys("jjk").await;
    assert_eq!(
        b.js(
            "return document.querySelector('tr.current').dataset.num",
            vec![]
        )
        .await,
        json!("1")
    );
    b.js("document.activeElement.blur()", vec![]).await;
    b.keys("jo").await;
    b.wait_js(
        "location.pathname === '/tickets/2'",
        5,
        "o to open the second ticket",
    )
    .await;
    b.keys("c").await;
    assert_eq!(
        b.js("return document.activeElement.id", vec![]).await,
        json!("comment-body")
    );
    b.js("document.activeElement.blur()", vec![]).await;
    b.keys("?").await;
    assert_eq!(
        b.js("return document.querySelector('#shortcuts').open", vec![])
            .await,
        json!(true)
    );
    b.close().await;

    // Carol sees only "ops": the "sec" ticket is absent from lists, search and its own URL.
    let c = driver.session().await;
    c.login(&s.base, "carol", PASSWORD).await;
    let subjects = c.text("table.tickets").await;
    assert!(!subjects.contains("Audit SSH keys"), "{subjects}");
    assert!(subjects.contains("Disk full on db1"));
    c.goto(&s.url("/tickets?q=audit")).await;
    assert!(c.text(".count").await.contains("No tickets match"));
    c.goto(&s.url(&format!("/tickets/{secret}"))).await;
    let page = c.text("main").await;
    assert!(page.contains("not found"), "{page}");
    assert!(!page.contains("Audit SSH keys"), "{page}");
    assert!(!c.exists("#ticket").await);
    c.close().await;
}

#[tokio::test]
async fn every_page_passes_axe_in_light_and_dark() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let num = ticket_num(&s, "Disk full on db1").await;
    let (_, v) = s.call("add_ticket_change", json!({"id": s.call("get_ticket", json!({"num": num})).await.1["ticket"]["id"], "change": {"type": "comment", "body": "A comment with `code`."}})).await;
    assert_eq!(v["code"], 0, "{v}");
    let driver = Driver::start().await;
    let b = driver.session().await;
    b.goto(&s.url("/login")).await;
    let mut findings: Vec<(String, Value)> = Vec::new();
    for v in b.axe().await {
        findings.push(("/login".into(), v));
    }
    b.login(&s.base, "admin", ADMIN_PASSWORD).await;
    let pages = [
        "/tickets".to_string(),
        "/tickets?q=stauts%3Aopen".to_string(),
        format!("/tickets/{num}"),
        "/tickets/new".to_string(),
        "/account".to_string(),
        "/admin".to_string(),
        "/help/search".to_string(),
        "/tickets/999999".to_string(),
    ];
    for theme in ["light", "dark"] {
        b.js(
            &format!("document.cookie = 'docket_theme={theme}; Path=/'"),
            vec![],
        )
        .await;
        for path in &pages {
            b.goto(&s.url(path)).await;
            for v in b.axe().await {
                findings.push((format!("{path} ({theme})"), v));
            }
        }
    }
    b.goto(&s.url("/admin")).await;
    b.screenshot("admin").await;
    assert!(
        findings.is_empty(),
        "serious or critical accessibility findings: {findings:#?}"
    );
    b.close().await;
}

#[tokio::test]
async fn phone_width_keeps_the_desk_usable() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let driver = Driver::start().await;
    let b = driver.session().await;
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    b.login(&s.base, "alice", PASSWORD).await;
    // Nothing wider than the screen but the table's own scroll area.
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1",
            vec![],
        )
        .await;
    assert_eq!(overflow, json!(true));
    b.screenshot("search-phone").await;
    b.close().await;
}

#[tokio::test]
async fn relations_and_internal_notes_on_the_ticket_page() {
    if !browser_available() {
        return;
    }
    let s = seeded().await;
    let num = ticket_num(&s, "Disk full on db1").await;
    let blocker = ticket_num(&s, "Rotate TLS certificates").await;
    let driver = Driver::start().await;
    let b = driver.session().await;
    b.login(&s.base, "admin", ADMIN_PASSWORD).await;
    b.goto(&s.url(&format!("/tickets/{num}"))).await;

    // Link the ticket to its blocker with the Relations box.
    b.js(
        "document.querySelector('#rel-type').value = 'blocked_by';",
        vec![],
    )
    .await;
    b.fill("#rel-other", &format!("#{blocker}")).await;
    b.click("#relation-form button[type=submit]").await;
    b.wait_js("document.querySelector('.flash-ok') && document.querySelector('.flash-ok').textContent.includes('Relation added')", 5, "the relation notice").await;
    let box_text = b.text("#ticket-relations").await;
    assert!(
        box_text.contains("Blocked by") && box_text.contains("Rotate TLS certificates"),
        "{box_text}"
    );

    // A public comment, then an internal note with the checkbox.
    b.fill("#comment-body", "Freed 20 GB; watching the volume.")
        .await;
    b.click("#comment-form button[type=submit]").await;
    b.wait_js("document.querySelector('.flash-ok') && document.querySelector('.flash-ok').textContent.includes('Comment added')", 5, "the comment notice").await;
    b.fill(
        "#comment-body",
        "Internal: the vendor contract allows **one** more disk this quarter.",
    )
    .await;
    b.click("#comment-internal").await;
    b.click("#comment-form button[type=submit]").await;
    b.wait_js("document.querySelector('.flash-ok') && document.querySelector('.flash-ok').textContent.includes('Internal note added')", 5, "the note notice").await;
    assert!(
        b.exists("#timeline li.comment.internal .badge.internal")
            .await
    );
    assert!(b.axe().await.is_empty(), "axe findings on the ticket page");
    b.screenshot("ticket-relations").await;
    b.close().await;

    // Bob (no view_internal) sees the relation, not the note.
    let b = driver.session().await;
    b.login(&s.base, "bob", PASSWORD).await;
    b.goto(&s.url(&format!("/tickets/{num}"))).await;
    assert!(b.text("#ticket-relations").await.contains("Rotate TLS"));
    let timeline = b.text("#timeline").await;
    assert!(timeline.contains("Freed 20 GB"), "{timeline}");
    assert!(!timeline.contains("vendor contract"), "{timeline}");
    assert!(!b.exists("#comment-internal").await);
    b.close().await;
}
