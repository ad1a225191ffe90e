//! Notification test support: a real SMTP server process (aiosmtpd, started from the test)
//! that saves each message, and helpers to wait for messages.
#![allow(dead_code, reason = "each notify test file uses a different part")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Whether Python's aiosmtpd is available. Under `CI=true` a missing aiosmtpd fails the
/// test (CI installs it, see `.ci/run`); elsewhere the test is skipped with a note.
pub fn aiosmtpd_available() -> bool {
    python_can_import(
        "aiosmtpd",
        "aiosmtpd is missing (python3 -m pip install aiosmtpd); CI must run the notification tests",
        "python3 with aiosmtpd is not available (pip install aiosmtpd)",
    )
}

/// Whether `python3 -c "import MODULES"` succeeds. Under `CI=true` a failure panics with
/// `in_ci`; elsewhere it prints `SKIPPED: skipped` and the caller skips its test.
pub fn python_can_import(modules: &str, in_ci: &str, skipped: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{in_ci}");
        }
        eprintln!("SKIPPED: {skipped}");
    }
    ok
}

/// A free TCP port on loopback (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The SMTP server process. Messages land in `dir` as `.json` summaries.
pub struct SmtpSink {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl SmtpSink {
    /// A sink on `port`, not started yet.
    pub fn new(port: u16, dir: &Path) -> SmtpSink {
        std::fs::create_dir_all(dir).expect("mail dir");
        SmtpSink {
            port,
            dir: dir.to_path_buf(),
            child: None,
        }
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "sink already running");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notify_support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(self.port.to_string())
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("sink output");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect()
    }

    /// Waits until at least `n` messages arrived (panics after `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} emails, got {}: {m:#?}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Messages whose subject contains `needle`.
    pub fn with_subject(&self, needle: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains(needle))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The envelope recipients of a message, sorted.
pub fn rcpts(m: &Value) -> Vec<String> {
    let mut r: Vec<String> = m["rcpt_tos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    r.sort();
    r
}

/// The TOML of a server that mails through the sink on `port`.
pub fn smtp_config(port: u16) -> String {
    format!(
        "[server]\nbase_app_url = \"https://tickets.example.test\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Docket <docket@example.test>\"\ntimeout = 3\n"
    )
}
