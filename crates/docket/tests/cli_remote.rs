//! The command line over HTTP against a real server: tickets (create, list, search, show,
//! comment, update, close, `--json`, `--priority`, export), API keys (list, revoke), users (list, disable,
//! enable), tags and categories, with the server and key taken from the environment.

mod common;

use std::process::Output;

use common::Server;
use serde_json::{json, Value};

/// Runs `docket ARGS` with DOCKET_URL and DOCKET_API_KEY pointing at `s`.
fn docket(s: &Server, args: &[&str]) -> Output {
    std::process::Command::new(common::bin())
        .args(args)
        .env("DOCKET_URL", &s.base)
        .env("DOCKET_API_KEY", &s.key)
        .env("HOME", s.data.parent().unwrap_or(&s.data))
        .env("TZ", "UTC")
        .output()
        .expect("run docket")
}

/// Runs and returns stdout; panics on failure.
fn ok(s: &Server, args: &[&str]) -> String {
    let out = docket(s, args);
    assert!(
        out.status.success(),
        "docket {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn tickets_from_the_command_line() {
    let s = Server::start().await;
    let out = ok(
        &s,
        &[
            "ticket",
            "create",
            "--subject",
            "Disk full on db1",
            "--body",
            "The **data** volume",
            "--type",
            "incident",
            "--assignees",
            "admin",
            "--due",
            "2030-01-02",
        ],
    );
    assert!(out.starts_with("Created ticket #1 ("), "{out}");
    ok(
        &s,
        &[
            "ticket",
            "create",
            "--subject",
            "Printer jam",
            "--type",
            "bug",
        ],
    );
    let out = ok(&s, &["ticket", "comment", "#1", "Cleared old WAL files."]);
    assert_eq!(out.trim(), "Commented on ticket #1");
    ok(
        &s,
        &[
            "ticket",
            "update",
            "1",
            "--tags",
            "important",
            "--status",
            "in_progress",
        ],
    );
    let out = ok(&s, &["ticket", "close", "2", "--comment", "fixed"]);
    assert_eq!(out.trim(), "Ticket #2 is closed");

    let list = ok(&s, &["ticket", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("NUM") && lines[0].contains("SUBJECT"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("#2") && lines[1].contains("closed"),
        "{list}"
    );
    assert!(
        lines[2].starts_with("#1")
            && lines[2].contains("in_progress")
            && lines[2].contains("2030-01-02")
            && lines[2].contains("Disk full on db1"),
        "{list}"
    );
    assert_eq!(lines.last().copied(), Some("(2 of 2)"));
    let open = ok(&s, &["ticket", "list", "--status", "in_progress"]);
    assert!(open.contains("#1") && !open.contains("Printer"), "{open}");

    let found = ok(&s, &["ticket", "search", "printer"]);
    assert!(
        found.contains("#2") && found.contains("(1 of 1)"),
        "{found}"
    );

    let show = ok(&s, &["ticket", "show", "1"]);
    for part in [
        "#1  Disk full on db1",
        "status: in_progress",
        "type: incident",
        "tags: important",
        "The **data** volume",
        "History:",
        "comment: Cleared old WAL files.",
    ] {
        assert!(show.contains(part), "{part} missing:\n{show}");
    }

    let json_out = ok(&s, &["ticket", "show", "2", "--json"]);
    let v: Value = serde_json::from_str(&json_out).expect("JSON");
    assert_eq!(
        (&v["code"], &v["ticket"]["status"]),
        (&json!(0), &json!("closed"))
    );

    // Errors name the code and fail the command.
    let out = docket(&s, &["ticket", "show", "99"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("(notfound)"));
}

/// `--priority` on create and update, and `ticket export` as NDJSON (standard output, one
/// JSON ticket per line) and CSV (to a file, the named columns); a bad format fails the
/// command with the server's reason.
#[tokio::test]
async fn priority_and_export_from_the_command_line() {
    let s = Server::start().await;
    let out = ok(
        &s,
        &[
            "ticket",
            "create",
            "--subject",
            "Backup failed",
            "--priority",
            "urgent",
        ],
    );
    assert!(out.starts_with("Created ticket #1 ("), "{out}");
    ok(&s, &["ticket", "create", "--subject", "Rotate logs"]);
    ok(&s, &["ticket", "update", "2", "--priority", "low"]);
    let show = ok(&s, &["ticket", "show", "1", "--json"]);
    let v: Value = serde_json::from_str(&show).expect("JSON");
    assert_eq!(v["ticket"]["priority"], "urgent");
    let out = docket(&s, &["ticket", "update", "2", "--priority", "whenever"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("priority"), "{err}");

    let ndjson = ok(&s, &["ticket", "export", "priority:>=low"]);
    let rows: Vec<Value> = ndjson
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("an NDJSON line"))
        .collect();
    let mut got: Vec<(i64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["num"].as_i64().unwrap(),
                r["priority"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(1, "urgent".into()), (2, "low".into())],
        "{ndjson}"
    );

    let file = s.data.parent().unwrap_or(&s.data).join("urgent.csv");
    let file_arg = file.to_string_lossy().into_owned();
    ok(
        &s,
        &[
            "ticket",
            "export",
            "priority:urgent",
            "--format",
            "csv",
            "--fields",
            "num,subject,priority",
            "--output",
            &file_arg,
        ],
    );
    let csv = std::fs::read_to_string(&file).expect("the CSV file");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        ["num,subject,priority", "1,Backup failed,urgent"],
        "{csv}"
    );

    let out = docket(&s, &["ticket", "export", "--format", "xlsx"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("format"), "{err}");
}

#[tokio::test]
async fn accounts_tags_and_categories_from_the_command_line() {
    let s = Server::start().await;
    let key = s.key_with(&["create_tickets"], &[]).await;
    let keys = ok(&s, &["api-key", "list"]);
    let (_, v) = s.call("get_api_keys", json!({})).await;
    let other = v["rows"]
        .as_array()
        .and_then(|rows| {
            rows.iter()
                .find(|k| k["privileges"]["create_tickets"] == json!(true))
        })
        .map(|k| k["id"].as_str().unwrap_or("").to_string())
        .expect("the new key");
    assert!(
        keys.contains(&other) && keys.contains("create_tickets"),
        "{keys}"
    );
    let (status, _) = s
        .call_as(&key, "search_tickets", json!({"query": "*"}))
        .await;
    assert_eq!(status, 200, "the key works before it is revoked");
    ok(&s, &["api-key", "revoke", &other]);
    let (status, v) = s
        .call_as(&key, "search_tickets", json!({"query": "*"}))
        .await;
    assert_ne!(
        (status, &v["code"]),
        (200, &json!(0)),
        "a revoked key is refused: {v}"
    );

    let (_, v) = s
        .user_call(
            "admin_create",
            json!({"username": "bob", "password": "bob-password-1"}),
        )
        .await;
    assert_eq!(v["code"], 0, "{v}");
    let users = ok(&s, &["user", "list"]);
    assert!(users.contains("bob") && users.contains("admin"), "{users}");
    ok(&s, &["user", "disable", "bob"]);
    let (_, v) = s
        .user_call("admin_get_user", json!({"username": "bob"}))
        .await;
    assert_eq!(v["user"]["active"], false, "{v}");
    ok(&s, &["user", "enable", "bob"]);
    let (_, v) = s
        .user_call("admin_get_user", json!({"username": "bob"}))
        .await;
    assert_eq!(v["user"]["active"], true, "{v}");

    assert_eq!(
        ok(&s, &["tag", "create", "Needs review"]).trim(),
        "Created tag needs_review"
    );
    assert!(ok(&s, &["tag", "list"]).contains("needs_review"));
    ok(&s, &["category", "create", "Production", "--id", "prod"]);
    let cats = ok(&s, &["category", "list"]);
    assert!(
        cats.contains("prod") && cats.contains("Production"),
        "{cats}"
    );
}

#[test]
fn without_a_server_the_error_says_how_to_name_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(common::bin())
        .args(["ticket", "list"])
        .env_remove("DOCKET_URL")
        .env_remove("DOCKET_API_KEY")
        .env("HOME", tmp.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DOCKET_URL"));

    // A client file works instead of the environment (checked with a dead address).
    let cfg = tmp.path().join("client.toml");
    std::fs::write(&cfg, "url = \"http://127.0.0.1:9\"\napi_key = \"k\"\n").expect("write");
    let out = std::process::Command::new(common::bin())
        .args(["ticket", "list", "--client-config"])
        .arg(&cfg)
        .env_remove("DOCKET_URL")
        .env_remove("DOCKET_API_KEY")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("http://127.0.0.1:9/api/app/search_tickets/v1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
