//! The benchmark harness against a real server: API load, every scenario without errors,
//! JSON output; and the bulk path (`bench gen` piped into `docket import`).

mod common;

use std::process::{Command, Stdio};

use common::{bin, cli, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn every_scenario_runs_without_errors_against_a_real_server() {
    let s = Server::start().await;
    let out = Command::new(bin())
        .args([
            "bench",
            "load",
            "--url",
            &s.base,
            "--api-key",
            &s.key,
            "--tickets",
            "30",
            "--concurrency",
            "4",
        ])
        .output()
        .expect("bench load");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Created 30 tickets"));

    let out = Command::new(bin())
        .args([
            "bench",
            "run",
            "--url",
            &s.base,
            "--api-key",
            &s.key,
            "--scenario",
            "all",
            "--requests",
            "12",
            "--concurrency",
            "3",
            "--json",
        ])
        .output()
        .expect("bench run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON report per line"))
        .collect();
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["scenario"].as_str().unwrap())
        .collect();
    for want in [
        "ping",
        "upload",
        "create",
        "get-id",
        "get-num",
        "search-word",
        "search-phrase",
        "search-fields",
        "search-pxql",
        "search-half",
        "comment",
        "mixed",
    ] {
        assert!(names.contains(&want), "missing scenario {want}: {names:?}");
    }
    for r in &reports {
        assert_eq!(r["errors"], 0, "{r}");
        assert_eq!(r["requests"], 12, "{r}");
        assert!(r["p50_ms"].as_f64().unwrap() > 0.0, "{r}");
    }
    // The writes really happened: 30 loaded + 12 created (+ mixed's share).
    let (_, v) = s.call("search_tickets", json!({"query": "*"})).await;
    assert!(v["list"]["length"].as_u64().unwrap() >= 42, "{v}");

    // An unknown scenario is a clear error.
    let out = Command::new(bin())
        .args([
            "bench",
            "run",
            "--url",
            &s.base,
            "--api-key",
            &s.key,
            "--scenario",
            "nope",
            "--requests",
            "1",
        ])
        .output()
        .expect("bench run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario"));
}

#[tokio::test]
async fn generated_ndjson_imports_in_bulk_and_is_searchable() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let gen = Command::new(bin())
        .args(["bench", "gen", "--tickets", "250", "--seed", "7"])
        .output()
        .expect("gen");
    assert!(gen.status.success());
    let file = tmp.path().join("tickets.ndjson");
    std::fs::write(&file, &gen.stdout).unwrap();
    let out = cli(&data, &["import", "--create", file.to_str().unwrap()]);
    assert!(out.contains("Imported 250 tickets"), "{out}");

    // A malformed line stops the import with its line number.
    let bad = tmp.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"subject\": \"ok\"}\n{\"subject\": 5.5}\n").unwrap();
    let out = common::docket_command(&data)
        .args(["import", bad.to_str().unwrap(), "--data"])
        .arg(&data)
        .stdout(Stdio::piped())
        .output()
        .expect("import");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Serve the imported directory (with a key made there).
    let mut s = Server::start().await;
    s.kill9();
    let out = cli(
        &data,
        &["api-key", "create", "--title", "reader", "--admin"],
    );
    s.key = out.lines().last().unwrap().trim().to_string();
    s.data = data;
    s.restart();
    let (_, v) = s
        .call("search_tickets", json!({"query": "common", "limit": 1}))
        .await;
    let n = v["list"]["length"].as_u64().unwrap();
    assert!(
        (80..=170).contains(&n),
        "about half of 251 tickets carry `common`: {v}"
    );
}
