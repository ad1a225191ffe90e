//! Safe defaults: administrative commands refuse a data directory that does not exist
//! (unless given `--create`), `serve` fails on a busy port before touching anything, the
//! database and file store are private to the service account, and `config print-default`
//! documents every key.

mod common;

use std::process::Output;

use common::{docket_command, Server};

fn run(data: &std::path::Path, args: &[&str]) -> Output {
    docket_command(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run docket")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn admin_commands_refuse_a_missing_data_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("typo");
    let commands: [&[&str]; 5] = [
        &["api-key", "create", "--title", "k", "--admin"],
        &["user", "add", "alice"],
        &["user", "passwd", "alice"],
        &["reindex"],
        &["notify", "run-overdue"],
    ];
    for args in commands {
        let out = run(&data, args);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr(&out).contains("does not exist") && stderr(&out).contains("--create"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!data.exists(), "{args:?} created the directory");
    }
    let out = run(&data, &["import", "-"]);
    assert!(!out.status.success() && stderr(&out).contains("does not exist"));
    let out = docket_command(&data)
        .args([
            "migrate",
            "--to",
            "postgres://postgres@127.0.0.1:5432/never_used",
        ])
        .arg("--from")
        .arg(format!("sqlite:{}", data.display()))
        .output()
        .expect("run migrate");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no SQLite database"),
        "{}",
        stderr(&out)
    );
    assert!(!data.exists(), "a command created the directory");

    let out = run(
        &data,
        &["api-key", "create", "--create", "--title", "k", "--admin"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(data.is_dir());
    // Now it exists, the other commands work on it.
    let out = run(&data, &["user", "add", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    common::drop_database(&data);
}

#[test]
fn serve_on_a_busy_port_fails_before_creating_anything() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr").to_string();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("fresh");
    let out = docket_command(&data)
        .env_remove("DOCKET_ADMIN_PASSWORD")
        .args(["serve", "--listen", &addr, "--data"])
        .arg(&data)
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("binding"), "{}", stderr(&out));
    assert!(!data.exists(), "the data directory was created");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("password"), "{stdout}");
    common::drop_database(&data);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_database_and_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let s = Server::start().await;
    s.create(serde_json::json!({"subject": "written"})).await;
    assert_eq!(mode(&s.data), 0o700, "data directory");
    assert_eq!(mode(&s.data.join("files")), 0o700, "files directory");
    if common::backend() == common::Backend::Sqlite {
        for name in ["docket.db", "docket.db-wal", "docket.db-shm"] {
            let p = s.data.join(name);
            if name == "docket.db" || p.exists() {
                assert_eq!(mode(&p), 0o600, "{name}");
            }
        }
    }
}

#[test]
fn print_default_comments_every_key_and_reads_back() {
    let out = std::process::Command::new(common::bin())
        .args(["config", "print-default"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = !line.is_empty() && !line.starts_with('#') && !line.starts_with('[');
        let in_table_array = lines[..i]
            .iter()
            .rev()
            .find(|l| l.starts_with('['))
            .is_some_and(|h| h.starts_with("[["));
        if is_key && !in_table_array {
            assert!(
                i > 0 && lines[i - 1].starts_with("# "),
                "no comment above {line:?}"
            );
        }
    }
    for key in [
        "listen = ",
        "[metrics]",
        "token = ",
        "[[tickets.types]]",
        "[files.s3]",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    let parsed: toml::Value = toml::from_str(&text).expect("valid TOML");
    assert_eq!(parsed["server"]["listen"].as_str(), Some("127.0.0.1:5580"));
    // The file works as a --config file as it is.
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = tmp.path().join("docket.toml");
    std::fs::write(&cfg, text.as_bytes()).expect("write");
    let data = tmp.path().join("data");
    let out = run(
        &data,
        &[
            "api-key",
            "create",
            "--create",
            "--title",
            "k",
            "--admin",
            "--config",
            cfg.to_str().unwrap_or(""),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    common::drop_database(&data);
}
