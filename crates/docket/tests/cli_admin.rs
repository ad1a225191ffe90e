//! Administration from the shell while a server runs on the same data directory:
//! `user add`, `user passwd`, `api-key create`, and a graceful stop on SIGINT.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{cli, decode, Server};
use serde_json::{json, Value};

/// Runs the CLI with `input` on standard input; returns (success, stdout, stderr).
fn cli_stdin(data: &std::path::Path, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = common::docket_command(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docket");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn login(s: &Server, user: &str, password: &str) -> Value {
    let res = s
        .client
        .post(s.url("/api/user/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    decode(res).await.1
}

#[tokio::test]
async fn users_and_keys_from_the_shell_while_serving() {
    let s = Server::start().await;

    let (ok, out, err) = cli_stdin(
        &s.data,
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        "first-pass\n",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("Created user alice") && !out.contains("first-pass"),
        "{out}"
    );
    let v = login(&s, "alice", "first-pass").await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["user"]["email"], "alice@example.com");
    assert!(
        v["user"].get("password").is_none(),
        "no hash in replies: {v}"
    );

    // A duplicate is refused with a clear message and changes nothing.
    let (ok, _, err) = cli_stdin(
        &s.data,
        &["user", "add", "alice", "--password-stdin"],
        "other\n",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    assert_eq!(login(&s, "alice", "first-pass").await["code"], 0);

    let (ok, _, err) = cli_stdin(
        &s.data,
        &["user", "passwd", "alice", "--password-stdin"],
        "second-pass\n",
    );
    assert!(ok, "{err}");
    assert_eq!(login(&s, "alice", "first-pass").await["code"], "session");
    assert_eq!(login(&s, "alice", "second-pass").await["code"], 0);

    // Without --password-stdin a password is generated and printed once.
    let out = cli(&s.data, &["user", "add", "bob", "--admin"]);
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("Generated password: "))
        .expect("generated password line")
        .to_string();
    let v = login(&s, "bob", &generated).await;
    assert_eq!(v["user"]["privileges"], json!({"admin": true}), "{v}");

    // A limited key: the plain key alone on the last line; it works at once and is limited.
    let out = cli(
        &s.data,
        &[
            "api-key",
            "create",
            "--title",
            "ci bot",
            "--privileges",
            "create_tickets",
            "--categories",
            "general",
        ],
    );
    let key = out.lines().last().expect("key line").trim().to_string();
    assert_eq!(key.len(), 32, "{out}");
    let (_, v) = s
        .call_as(
            &key,
            "create_ticket",
            json!({"subject": "from ci", "category": "general"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let (status, v) = s
        .call_as(
            &key,
            "update_ticket",
            json!({"id": v["ticket"]["id"], "status": "closed"}),
        )
        .await;
    assert_eq!((status, v["code"].clone()), (403, json!("access")), "{v}");
    let (_, v) = s
        .call_as(&key, "create_ticket", json!({"subject": "elsewhere"}))
        .await;
    assert_eq!(
        v["code"], "access",
        "a key limited to general cannot file uncategorized tickets: {v}"
    );

    // Unknown privilege: a clear error, no key printed.
    let out = common::docket_command(&s.data)
        .args(["api-key", "create", "--title", "bad", "--privileges", "fly"])
        .arg("--data")
        .arg(&s.data)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Unknown privilege"));
}

#[tokio::test]
async fn sigint_stops_the_server_cleanly_and_keeps_its_data() {
    let mut s = Server::start().await;
    let t = s.create(json!({"subject": "survives a clean stop"})).await;
    assert!(
        s.signal_and_wait("-INT"),
        "SIGINT should end the server with success"
    );
    // A clean stop checkpoints SQLite's WAL into the database file.
    if common::backend() == common::Backend::Sqlite {
        let wal = s.data.join("docket.db-wal");
        assert!(
            !wal.exists() || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) == 0,
            "WAL left behind"
        );
    }
    s.restart();
    let (_, v) = s.call("get_ticket", json!({"id": t["id"]})).await;
    assert_eq!(v["ticket"]["subject"], "survives a clean stop");
}
