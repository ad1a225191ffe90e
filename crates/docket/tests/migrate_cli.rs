//! `docket migrate`: a SQLite data directory with tickets, history, users, keys, tags and a
//! file is copied into a fresh PostgreSQL database; a server on PostgreSQL then serves the
//! same data to the same credentials, and a second run copies nothing and verifies again.

mod common;

use common::{Multipart, Server, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn ok(r: &(u16, Value)) -> &Value {
    assert_eq!((r.0, &r.1["code"]), (200, &json!(0)), "{}", r.1);
    &r.1
}

fn migrate(data: &std::path::Path, url: &str) -> (bool, String, String) {
    let out = std::process::Command::new(common::bin())
        .args(["migrate", "--from"])
        .arg(format!("sqlite:{}", data.display()))
        .args(["--to", url])
        .output()
        .expect("run docket migrate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_data_directory_moves_to_postgresql_whole() {
    let mut s = Server::start().await;
    ok(&s
        .user_call(
            "admin_create",
            json!({"username": "ann", "password": "password-123456", "email": "ann@example.com"}),
        )
        .await);
    ok(&s
        .call("create_tag", json!({"id": "db", "title": "Database"}))
        .await);
    let mut ids = Vec::new();
    for i in 0..30 {
        let t = ok(&s
            .call(
                "create_ticket",
                json!({"subject": format!("Replica lag {i}"), "tags": ["db"], "assignees": ["ann"]}),
            )
            .await)["ticket"]
            .clone();
        ids.push(t["id"].as_str().unwrap().to_string());
    }
    ok(&s
        .call(
            "add_ticket_change",
            json!({"id": ids[3], "change": {"type": "comment", "body": "vacuum fixed it"}}),
        )
        .await);
    ok(&s.call("delete_ticket", json!({"id": ids[29]})).await);
    let form = Multipart::new()
        .json(&json!({"subject": "with a file"}))
        .file("file1", "notes.txt", "text/plain", b"kept bytes");
    let up = s.upload("create_ticket", &form).await;
    let file_path = ok(&up)["ticket"]["files"][0]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let before = ok(&s.call("get_ticket", json!({"id": ids[3]})).await)["ticket"].clone();
    assert!(s.terminate());

    let db = common::pg_database(&s.data.join("migrate-target"));
    let url = format!("postgres://postgres@{}:5432/{db}", common::pg_host());
    let (success, out, err) = migrate(&s.data, &url);
    assert!(success, "{out}\n{err}");
    assert!(out.contains("tickets: 30 copied of 30"), "{out}");
    assert!(out.contains("verified"), "{out}");

    // Running it again is safe: nothing new, verified again.
    let (success, out, err) = migrate(&s.data, &url);
    assert!(success, "{out}\n{err}");
    assert!(out.contains("tickets: 0 copied of 30"), "{out}");
    assert!(out.contains("verified"), "{out}");

    // Bad arguments are named and change nothing.
    let (success, _, err) = migrate(&s.data.join("nope"), &url);
    assert!(!success && err.contains("no SQLite database"), "{err}");
    let (success, _, err) = migrate(&s.data, "mysql://x@h/db");
    assert!(
        !success && err.contains("--to must be a postgres:// URL"),
        "{err}"
    );

    // The same data directory (files) on PostgreSQL: same key, same tickets, same numbers.
    s.set_env("DOCKET_DATABASE__URL", &url);
    s.restart();
    let after = ok(&s.call("get_ticket", json!({"id": ids[3]})).await)["ticket"].clone();
    assert_eq!(after, before);
    let found = s
        .call("search_tickets", json!({"query": "changes:vacuum tags:db"}))
        .await;
    assert_eq!(ok(&found)["list"]["length"], 1);
    let all = s.call("search_tickets", json!({"query": "replica"})).await;
    assert_eq!(
        ok(&all)["list"]["length"],
        29,
        "the deleted ticket stays deleted"
    );
    let gone = s.call("get_ticket", json!({"id": ids[29]})).await;
    assert_ne!(gone.1["code"], 0);
    // Numbers continue after the highest one ever given (the deleted 30, the file ticket 31).
    let next = ok(&s
        .call("create_ticket", json!({"subject": "on postgres"}))
        .await)["ticket"]
        .clone();
    assert_eq!(next["num"], 32);
    // Users keep their passwords, files their bytes, tags their titles.
    let login = s
        .client
        .post(s.url("/api/user/login"))
        .json(&json!({"username": "ann", "password": "password-123456"}))
        .send()
        .await
        .unwrap();
    let (_, v) = common::decode(login).await;
    assert_eq!(v["code"], 0, "{v}");
    let admin = s
        .client
        .post(s.url("/api/user/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(common::decode(admin).await.1["code"], 0);
    let res = s
        .client
        .get(s.url(&format!("/{file_path}")))
        .header("X-API-Key", &s.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "kept bytes");
    let tags = ok(&s.call("get_tags", json!({})).await)["rows"].clone();
    assert!(tags.to_string().contains("Database"), "{tags}");
    drop(s);
    assert!(common::psql(&format!(
        "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
    )));
}
