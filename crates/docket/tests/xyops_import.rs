//! `docket import --xyops`: a real xyOps backup (tests/data) moves into Docket with its
//! ticket numbers, history, files, categories, tags and users, whose old passwords work.
//! Importing again changes nothing; a ticket changed in Docket since is not overwritten.

mod common;

use std::path::{Path, PathBuf};

use common::{docket_command, Server};
use serde_json::{json, Value};

fn sample(gz: bool) -> PathBuf {
    let name = if gz {
        "xyops-export-sample.ndjson.gz"
    } else {
        "xyops-export-sample.ndjson"
    };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Runs `docket import --xyops ...` on `data`; returns (success, stdout + stderr).
fn import(data: &Path, args: &[&str]) -> (bool, String) {
    let out: std::process::Output = docket_command(data)
        .arg("import")
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run docket import");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn login(s: &Server, user: &str, password: &str) -> Value {
    let res = s
        .client
        .post(s.url("/api/user/login/v1"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    common::decode(res).await.1
}

#[tokio::test]
async fn an_xyops_backup_moves_in_with_numbers_history_files_and_people() {
    let gz = sample(true);
    let s = Server::start_prepared(None, &[], |data| {
        let (ok, dry) = import(
            data,
            &[
                "--xyops",
                gz.to_str().expect("path"),
                "--dry-run",
                "--create",
            ],
        );
        assert!(ok, "{dry}");
        assert!(
            dry.contains("Would import 5 new and 0 updated tickets"),
            "{dry}"
        );
        let (ok, out) = import(data, &["--xyops", gz.to_str().expect("path"), "--create"]);
        assert!(ok, "{out}");
        assert!(
            out.contains("Imported 5 new and 0 updated tickets"),
            "{out}"
        );
        assert!(out.contains("Users: 2 new"), "{out}");
        assert!(out.contains("Files: 1 stored"), "{out}");
    })
    .await;

    // People sign in with their xyOps passwords (and again once rehashed).
    for (user, password) in [
        ("admin", "admin"),
        ("alice", "alice-pass-1"),
        ("alice", "alice-pass-1"),
    ] {
        let v = login(&s, user, password).await;
        assert_eq!(v["code"], 0, "{user}: {v}");
    }
    assert_eq!(login(&s, "alice", "admin").await["code"], "session");
    let alice = login(&s, "alice", "alice-pass-1").await;
    assert_eq!(
        alice["user"]["privileges"],
        json!({"create_tickets": true, "edit_tickets": true})
    );
    assert_eq!(alice["user"]["full_name"], "Alice Ops");

    // Numbers, subjects, history and comments as in the file.
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "*", "limit": 10, "sort_by": "num", "sort_dir": 1}),
        )
        .await;
    let nums: Vec<i64> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["num"].as_i64())
        .collect();
    assert_eq!(nums, vec![6332, 6333, 6334, 6335, 6336]);
    let (_, v) = s.call("get_ticket", json!({"num": 6332})).await;
    let t = &v["ticket"];
    assert_eq!(t["id"], "tmx2twvnvzo7oqtd");
    assert_eq!(t["status"], "closed");
    assert_eq!(t["category"], "prod");
    assert_eq!(t["tags"], json!(["important", "db"]));
    let changes = t["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 3);
    assert_eq!(changes[1]["type"], "comment");
    assert!(changes[1]["body"]
        .as_str()
        .unwrap_or("")
        .contains("Restarted the IO thread"));
    assert_eq!(
        (changes[2]["key"].as_str(), changes[2]["value"].as_str()),
        (Some("status"), Some("closed"))
    );

    // The file downloads with its bytes; the category and tag exist; search sees it all.
    let (_, v) = s.call("get_ticket", json!({"num": 6335})).await;
    let path = v["ticket"]["files"][0]["path"]
        .as_str()
        .expect("file path")
        .to_string();
    let bytes = s
        .client
        .get(s.url(&format!("/{path}")))
        .header("X-API-Key", &s.key)
        .send()
        .await
        .expect("download")
        .text()
        .await
        .expect("bytes");
    assert_eq!(bytes, "replica log line 1\nreplica log line 2\n");
    let (_, v) = s.call("get_category", json!({"id": "prod"})).await;
    assert_eq!(v["category"]["title"], "Production", "{v}");
    let (_, v) = s.call("get_tag", json!({"id": "db"})).await;
    assert_eq!(v["code"], 0, "{v}");
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "db3 grafana", "limit": 5}),
        )
        .await;
    assert_eq!(v["rows"][0]["num"], 6334, "{v}");

    // New tickets continue after the highest imported number.
    let t = s.create(json!({"subject": "Made after the move"})).await;
    assert_eq!(t["num"], 6337);

    // Again: nothing to do. A ticket changed in Docket since is not overwritten.
    let (_, v) = s.call("get_ticket", json!({"num": 6333})).await;
    let id = v["ticket"]["id"].clone();
    s.call("update_ticket", json!({"id": id, "status": "on_hold"}))
        .await;
    let plain = sample(false);
    let (ok, again) = import(&s.data, &["--xyops", plain.to_str().expect("path")]);
    assert!(ok, "{again}");
    assert!(
        again.contains("Imported 0 new and 0 updated tickets (4 unchanged, 1 skipped)"),
        "{again}"
    );
    assert!(again.contains("Docket's copy is newer"), "{again}");
    assert!(again.contains("Users: 0 new, 2 already here"), "{again}");
    let (_, v) = s.call("get_ticket", json!({"num": 6333})).await;
    assert_eq!(v["ticket"]["status"], "on_hold");
}

#[tokio::test]
async fn unknown_types_are_reported_and_can_be_mapped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(sample(false)).expect("sample");
    let renamed = text.replace("\"type\":\"issue\"", "\"type\":\"problem\"");
    let file = tmp.path().join("renamed.ndjson");
    std::fs::write(&file, renamed).expect("write");
    let f = file.to_str().expect("path");

    let data = tmp.path().join("data");
    let (ok, out) = import(&data, &["--xyops", f, "--dry-run", "--create"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("Unknown type \"problem\" on 3 tickets: map it with --map-type problem="),
        "{out}"
    );
    let (ok, out) = import(&data, &["--xyops", f, "--map-type", "problem=nonsense"]);
    assert!(
        !ok && out.contains("\"nonsense\" is not configured here"),
        "{out}"
    );
    let (ok, out) = import(&data, &["--xyops", f, "--map-type", "problem"]);
    assert!(!ok && out.contains("--map-type takes FROM=TO"), "{out}");
    let (ok, out) = import(&data, &["--xyops", f, "--map-type", "problem=bug"]);
    assert!(ok, "{out}");
    assert!(out.contains("Imported 5 new"), "{out}");
    // A file that is not a backup at all is read without harm and reported.
    let junk = tmp.path().join("junk.txt");
    std::fs::write(&junk, "hello\n{\"key\": 5}\n").expect("write");
    let (ok, out) = import(&data, &["--xyops", junk.to_str().expect("path")]);
    assert!(ok, "{out}");
    assert!(out.contains("1 lines were not XYBK items"), "{out}");
    common::drop_database(&data);
}

#[tokio::test]
async fn a_number_docket_already_uses_is_reported_not_taken() {
    let s = Server::start().await;
    let mine = s
        .create(json!({"subject": "Docket's own first ticket"}))
        .await;
    assert_eq!(mine["num"], 1);
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("clash.ndjson");
    let lines = [
        json!({"index": "tickets", "id": "txyops000001", "record": {"id": "txyops000001", "num": 1, "subject": "From xyOps, number 1", "status": "open", "created": 1_700_000_000, "modified": 1_700_000_000}}),
        json!({"index": "tickets", "id": "txyops000002", "record": {"id": "txyops000002", "num": 2, "subject": "From xyOps, number 2", "status": "open", "created": 1_700_000_000, "modified": 1_700_000_000}}),
    ];
    std::fs::write(
        &file,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write");
    for dry in [true, false] {
        let mut args = vec!["--xyops", file.to_str().expect("path")];
        if dry {
            args.push("--dry-run");
        }
        let (ok, out) = import(&s.data, &args);
        assert!(ok, "{out}");
        assert!(
            out.contains("1 new and 0 updated tickets (0 unchanged, 1 skipped)"),
            "dry {dry}: {out}"
        );
        assert!(
            out.contains("#1 txyops000001: number taken"),
            "dry {dry}: {out}"
        );
    }
    let (_, v) = s.call("get_ticket", json!({"num": 1})).await;
    assert_eq!(v["ticket"]["subject"], "Docket's own first ticket");
    let (_, v) = s.call("get_ticket", json!({"num": 2})).await;
    assert_eq!(v["ticket"]["subject"], "From xyOps, number 2");
}
