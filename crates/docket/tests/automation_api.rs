//! Issue 6 over real HTTP: job and alert records (local and from an upstream xyOps server),
//! tickets written from them, alert-storm dedupe and idempotent creates.

mod api_support;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use api_support::{assert_err, assert_ok, changes, send, ticket, total};
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use common::Server;
use serde_json::{json, Value};

const APP_URL: &str = "https://ops.example.com";

fn config(extra: &str) -> String {
    format!("[server]\nbase_app_url = \"{APP_URL}\"\n{extra}")
}

fn str_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no string {field}: {v}"))
}

fn failed_job(id: &str, log: &str) -> Value {
    json!({
        "id": id, "event": "event100", "event_title": "Nightly backup", "category": "general",
        "code": 1, "description": "Exit code 1 (backup failed)", "server": "db01",
        "state": "complete", "started": 1754450000, "completed": 1754450125.5, "elapsed": 125.5,
        "tags": ["important", "no_such_tag"], "source": "scheduler", "log": log
    })
}

/// The longest run of backticks in `s`.
fn longest_ticks(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[tokio::test]
async fn job_reports_from_local_records() {
    let s = Server::start_with_config(&config(""), &[]).await;

    // A failed job whose log tries to end the code block early.
    let log =
        "starting backup\n```\n# not a heading\n````\nrm: cannot remove '/x': Permission denied\n";
    let put = s
        .call("put_job", json!({"job": failed_job("jfail1", log)}))
        .await;
    assert_eq!(assert_ok(&put)["job"]["id"], "jfail1");
    let got = s.call("get_job", json!({"id": "jfail1"})).await;
    assert_eq!(assert_ok(&got)["job"], failed_job("jfail1", log));

    let t = s.create(json!({"template": "job", "job": "jfail1"})).await;
    assert_eq!(
        str_of(&t, "subject"),
        "Job #jfail1 failed with code: 1 (Nightly backup)"
    );
    let body = str_of(&t, "body");
    for want in [
        "`jfail1`",
        "Nightly backup",
        "`event100`",
        "**failed** with code `1`",
        "Exit code 1 (backup failed)",
        "`db01`",
        "2025-08-06 03:13:20 UTC",
        "2025-08-06 03:15:25 UTC",
        "2m 06s",
        &format!("{APP_URL}/#Job?id=jfail1"),
    ] {
        assert!(body.contains(want), "body lacks {want:?}:\n{body}");
    }
    // The log sits in a fence longer than its longest backtick run (4), intact.
    let fence = "`````";
    let open = body
        .find(&format!("{fence}text\n"))
        .unwrap_or_else(|| panic!("no 5-tick fence:\n{body}"));
    let inside = &body[open + fence.len() + 5..];
    let close = inside.find(&format!("\n{fence}")).expect("closing fence");
    assert_eq!(&inside[..close], log.trim_end());
    assert!(longest_ticks(&inside[..close]) < fence.len());
    // Fields from the record: only the tag that exists, the category, the server, the job.
    assert_eq!(t["tags"], json!(["important"]));
    assert_eq!(t["category"], "general");
    assert_eq!(t["server"], "db01");
    assert_eq!(t["jobs"], json!(["jfail1"]));

    // What the request sends wins over the record; a sent body comes before the report.
    let t = s
        .create(json!({
            "template": "job", "job": "jfail1", "subject": "Backup broke again",
            "body": "Seen by on-call.", "tags": ["flag"], "server": "db02", "jobs": []
        }))
        .await;
    assert_eq!(t["subject"], "Backup broke again");
    assert!(
        str_of(&t, "body").starts_with("Seen by on-call.\n\n## Job failed"),
        "{}",
        t["body"]
    );
    assert_eq!(
        (&t["tags"], &t["server"], &t["jobs"]),
        (&json!(["flag"]), &json!("db02"), &json!([]))
    );

    // A successful job.
    let ok = json!({"id": "jok1", "event": "event7", "event_title": "Rotate logs", "code": 0,
                    "state": "complete", "started": 1754450000, "completed": 1754450003, "server": "web1"});
    assert_ok(&s.call("put_job", json!({"job": ok})).await);
    let t = s.create(json!({"template": "job", "job": "jok1"})).await;
    assert_eq!(t["subject"], "Job #jok1 succeeded (Rotate logs)");
    assert!(
        str_of(&t, "body").contains("success (code `0`)"),
        "{}",
        t["body"]
    );
    assert!(!str_of(&t, "body").contains("### Log"));

    // A long log keeps its head and tail; the middle is left out.
    let long: String = (1..=20_000).map(|i| format!("log line {i}\n")).collect();
    assert_ok(
        &s.call("put_job", json!({"job": failed_job("jlong1", &long)}))
            .await,
    );
    let t = s.create(json!({"template": "job", "job": "jlong1"})).await;
    let body = str_of(&t, "body");
    assert!(
        body.contains("log line 1\n") && body.contains("log line 20000\n"),
        "{body}"
    );
    assert!(!body.contains("log line 10000\n"));
    assert!(
        body.contains("lines (") && body.contains("left out"),
        "{body}"
    );
    assert!(body.len() < 24 * 1024, "report is {} bytes", body.len());

    // Records are replaced by a second put.
    let mut changed = failed_job("jfail1", "");
    changed["code"] = json!("critical");
    assert_ok(&s.call("put_job", json!({"job": changed})).await);
    let t = s.create(json!({"template": "job", "job": "jfail1"})).await;
    assert_eq!(
        t["subject"],
        "Job #jfail1 failed with code: critical (Nightly backup)"
    );
}

/// xyOps keeps a job's captured output in `output`; the report shows it like `log`, with the
/// same excerpt rule, and prefers it when a record has both.
#[tokio::test]
async fn job_reports_show_the_output_field() {
    let s = Server::start_with_config(&config(""), &[]).await;
    let output: String = (1..=5_000).map(|i| format!("output line {i}\n")).collect();
    let mut job = failed_job("jout1", "");
    job.as_object_mut().expect("object").remove("log");
    job["output"] = json!(output);
    assert_ok(&s.call("put_job", json!({"job": job})).await);
    let t = s.create(json!({"template": "job", "job": "jout1"})).await;
    let body = str_of(&t, "body");
    assert!(body.contains("### Log (excerpt"), "{body}");
    assert!(
        body.contains("output line 1\n") && body.contains("output line 5000\n"),
        "{body}"
    );
    assert!(!body.contains("output line 2500\n"), "{body}");
    // The report is searchable like any ticket text.
    let (_, v) = s
        .call(
            "search_tickets",
            json!({"query": "\"output line 5000\"", "limit": 10}),
        )
        .await;
    assert_eq!(v["list"]["length"], 1, "{v}");

    let mut both = failed_job("jout2", "from the log field");
    both["output"] = json!("from the output field");
    assert_ok(&s.call("put_job", json!({"job": both})).await);
    let t = s.create(json!({"template": "job", "job": "jout2"})).await;
    let body = str_of(&t, "body");
    assert!(
        body.contains("from the output field") && !body.contains("from the log field"),
        "{body}"
    );
}

#[tokio::test]
async fn alert_reports_from_local_records() {
    let s = Server::start_with_config(&config(""), &[]).await;
    let now = api_support::now();
    let alert = json!({
        "id": "amdzer7xtk3", "alert": "active_jobs_high", "title": "Active jobs high",
        "active": true, "count": 1, "date": now - 3700, "exp": "monitors.active_jobs >= 1",
        "groups": ["main"], "jobs": ["jmdzer6zrju"], "message": "Active job count is too high: 1",
        "modified": now - 60, "notified": true, "server": "sorbstack01"
    });
    assert_eq!(
        assert_ok(&s.call("put_alert", json!({"alert": alert.clone()})).await)["alert"]["id"],
        "amdzer7xtk3"
    );
    assert_eq!(
        assert_ok(&s.call("get_alert", json!({"id": "amdzer7xtk3"})).await)["alert"],
        alert
    );

    let t = s
        .create(json!({"template": "alert", "alert": "amdzer7xtk3"}))
        .await;
    assert_eq!(t["subject"], "Alert: Active jobs high on sorbstack01");
    let body = str_of(&t, "body");
    for want in [
        "> Active job count is too high: 1",
        "`sorbstack01`",
        "`monitors.active_jobs >= 1`",
        "1h 01m", // active for about 3700 s
        "(still active)",
        &format!("{APP_URL}/#Alerts?id=amdzer7xtk3"),
        &format!("{APP_URL}/#Server?id=sorbstack01"),
        &format!("{APP_URL}/#Job?id=jmdzer6zrju"),
    ] {
        assert!(body.contains(want), "body lacks {want:?}:\n{body}");
    }
    assert_eq!(
        (&t["server"], &t["jobs"]),
        (&json!("sorbstack01"), &json!(["jmdzer6zrju"]))
    );

    // Without a title the alert's id names it.
    let bare = json!({"id": "a2", "alert": "disk_full", "server": "db9", "active": false, "date": now - 120, "modified": now});
    assert_ok(&s.call("put_alert", json!({"alert": bare})).await);
    let t = s.create(json!({"template": "alert", "alert": "a2"})).await;
    assert_eq!(t["subject"], "Alert: disk_full on db9");
    assert!(
        str_of(&t, "body").contains("2m 00s (cleared"),
        "{}",
        t["body"]
    );
}

#[tokio::test]
async fn bad_templates_ids_and_records_create_nothing() {
    let s = Server::start_with_config(&config(""), &[]).await;
    let before = total(&s, "*").await;

    let r = s
        .call(
            "create_ticket",
            json!({"template": "incident", "job": "j1", "subject": "x"}),
        )
        .await;
    assert_err(&r, 400, "ticket", "unknown template");
    let r = s
        .call("create_ticket", json!({"template": 5, "subject": "x"}))
        .await;
    assert_err(&r, 400, "ticket", "unknown template");
    let r = s.call("create_ticket", json!({"template": "job"})).await;
    assert_err(&r, 400, "ticket", "missing parameter: job");
    let r = s
        .call(
            "create_ticket",
            json!({"template": "job", "job": "jnothere"}),
        )
        .await;
    assert_err(&r, 404, "notfound", "jnothere");
    let r = s
        .call(
            "create_ticket",
            json!({"template": "alert", "alert": "anothere"}),
        )
        .await;
    assert_err(&r, 404, "notfound", "anothere");
    assert_err(
        &s.call("get_job", json!({"id": "jnothere"})).await,
        404,
        "notfound",
        "upstream.base_url",
    );
    assert_err(
        &s.call("get_alert", json!({})).await,
        400,
        "ticket",
        "missing parameter: id",
    );
    assert_eq!(
        total(&s, "*").await,
        before,
        "a failed create made a ticket"
    );

    // put_job checks its input.
    assert_err(
        &s.call("put_job", json!({})).await,
        400,
        "api",
        "missing parameter: job",
    );
    assert_err(
        &s.call("put_job", json!({"job": [1, 2]})).await,
        400,
        "api",
        "json object",
    );
    assert_err(
        &s.call("put_job", json!({"job": {"code": 1}})).await,
        400,
        "api",
        "id",
    );
    assert_err(
        &s.call("put_job", json!({"job": {"id": "Bad Id"}})).await,
        400,
        "api",
        "id",
    );
    assert_err(
        &s.call("put_alert", json!({"alert": "a1"})).await,
        400,
        "api",
        "json object",
    );

    // Records of odd shapes still make a ticket; nothing crashes.
    let odd_jobs = [
        json!({"id": "jodd1", "code": {"nested": [1]}, "started": "yesterday", "completed": -5,
               "elapsed": "long", "tags": 7, "log": 42, "server": ["a"], "category": 3,
               "event_title": null, "description": {"x": 1}}),
        json!({"id": "jodd2", "code": "warning", "started": 1e300, "tags": ["important", 5, null],
               "category": "no_such_category", "log": "\u{1b}[31mred\u{1b}[0m <script>alert(1)</script> done"}),
        json!({"id": "jodd3"}),
    ];
    for job in odd_jobs {
        let id = job["id"].clone();
        assert_ok(&s.call("put_job", json!({"job": job})).await);
        let t = s.create(json!({"template": "job", "job": id})).await;
        assert!(
            str_of(&t, "subject").starts_with(&format!("Job #{}", id.as_str().unwrap())),
            "{t}"
        );
        assert_eq!(t["category"], "", "only existing categories are taken");
    }
    let t = s.create(json!({"template": "job", "job": "jodd2"})).await;
    assert_eq!(t["tags"], json!(["important"]));
    assert!(!str_of(&t, "body").contains("<script>"), "{}", t["body"]);
    assert_ok(&s.call("put_alert", json!({"alert": {"id": "aodd", "date": "x", "jobs": [1, {"id": "j9"}], "active": "yes", "message": ["m"]}})).await);
    let t = s
        .create(json!({"template": "alert", "alert": "aodd"}))
        .await;
    assert_eq!(t["subject"], "Alert: aodd");
    assert_ok(&s.call("ping", json!({})).await);

    // put_job needs import_records (or admin); get_job any valid caller.
    let plain = s.key_with(&["create_tickets"], &[]).await;
    assert_err(
        &s.call_as(&plain, "put_job", json!({"job": {"id": "j5"}}))
            .await,
        403,
        "access",
        "import_records",
    );
    let importer = s.key_with(&["import_records"], &[]).await;
    assert_ok(
        &s.call_as(
            &importer,
            "put_job",
            json!({"job": {"id": "j5", "code": 2}}),
        )
        .await,
    );
    assert_ok(&s.call_as(&plain, "get_job", json!({"id": "j5"})).await);
    let t = assert_ok(
        &s.call_as(
            &plain,
            "create_ticket",
            json!({"template": "job", "job": "j5"}),
        )
        .await,
    )["ticket"]
        .clone();
    assert_eq!(t["subject"], "Job #j5 failed with code: 2");
}

// ---------------------------------------------------------------------------------------
// Upstream

const UPSTREAM_KEY: &str = "upstream-secret-key";
const UPSTREAM_LOG: &str = "fetching data\n```\nERROR: disk full\n";

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(UPSTREAM_KEY)
}

/// A small stand-in for an xyOps server: the calls Docket makes, answered like the reference.
async fn fake_xyops() -> SocketAddr {
    async fn get_job(headers: HeaderMap, Json(p): Json<Value>) -> Json<Value> {
        if !authorized(&headers) {
            return Json(
                json!({"code": "session", "description": "No Session ID or API Key could be found"}),
            );
        }
        match p["id"].as_str() {
            Some("jup1") => Json(json!({
                "code": 0, "token": "tok123",
                "job": {"id": "jup1", "event": "evup", "code": 1, "description": "Script exited with code 1",
                        "server": "worker7", "state": "complete", "started": 1754450000,
                        "completed": 1754450010, "elapsed": 10, "tags": ["flag"], "category": "general"}
            })),
            Some("jslow") => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(json!({"code": 0, "job": {"id": "jslow"}}))
            }
            Some("jweird") => Json(json!({"code": 0, "job": "not an object"})),
            _ => Json(json!({"code": "job", "description": "Failed to locate job"})),
        }
    }
    async fn view_job_log(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> (axum::http::StatusCode, String) {
        if q.get("id").map(String::as_str) == Some("jup1")
            && q.get("t").map(String::as_str) == Some("tok123")
        {
            (axum::http::StatusCode::OK, UPSTREAM_LOG.to_string())
        } else {
            (axum::http::StatusCode::FORBIDDEN, "bad token".into())
        }
    }
    async fn get_event(headers: HeaderMap, Json(p): Json<Value>) -> Json<Value> {
        if authorized(&headers) && p["id"] == "evup" {
            Json(json!({"code": 0, "event": {"id": "evup", "title": "Upstream ETL"}}))
        } else {
            Json(json!({"code": "event", "description": "not found"}))
        }
    }
    async fn get_alert_invocations(headers: HeaderMap, Json(p): Json<Value>) -> Json<Value> {
        if !authorized(&headers) {
            return Json(json!({"code": "session", "description": "no key"}));
        }
        let alerts: Vec<Value> = p["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|id| match id.as_str() {
                Some("aup1") => json!({"id": "aup1", "alert": "load_avg_high", "active": true,
                                       "date": 1754450881, "server": "sorbstack01",
                                       "message": "CPU load average is too high: 9.1", "jobs": []}),
                _ => json!({"err": {"code": "NoSuchKey"}}),
            })
            .collect();
        Json(json!({"code": 0, "alerts": alerts}))
    }
    async fn get_alert(Json(p): Json<Value>) -> Json<Value> {
        if p["id"] == "load_avg_high" {
            Json(json!({"code": 0, "alert": {"id": "load_avg_high", "title": "High CPU Load"}}))
        } else {
            Json(json!({"code": "alert", "description": "not found"}))
        }
    }
    let app = Router::new()
        .route("/api/app/get_job/v1", post(get_job))
        .route("/api/app/view_job_log/v1", get(view_job_log))
        .route("/api/app/get_event/v1", post(get_event))
        .route(
            "/api/app/get_alert_invocations/v1",
            post(get_alert_invocations),
        )
        .route("/api/app/get_alert/v1", post(get_alert));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake xyOps");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test]
async fn records_from_an_upstream_server() {
    let addr = fake_xyops().await;
    let upstream = format!(
        "[upstream]\nbase_url = \"http://{addr}\"\napi_key = \"{UPSTREAM_KEY}\"\ntimeout = 1\n"
    );
    let s = Server::start_with_config(&config(&upstream), &[]).await;

    let job = assert_ok(&s.call("get_job", json!({"id": "jup1"})).await)["job"].clone();
    assert_eq!(
        (&job["id"], &job["server"]),
        (&json!("jup1"), &json!("worker7"))
    );
    assert_eq!(job["event_title"], "Upstream ETL");
    assert_eq!(job["log"], UPSTREAM_LOG);

    let t = s.create(json!({"template": "job", "job": "jup1"})).await;
    assert_eq!(t["subject"], "Job #jup1 failed with code: 1 (Upstream ETL)");
    let body = str_of(&t, "body");
    assert!(
        body.contains("````text\nfetching data\n```\nERROR: disk full\n````"),
        "{body}"
    );
    assert!(body.contains("Script exited with code 1"), "{body}");
    assert_eq!(
        (&t["tags"], &t["category"], &t["server"]),
        (&json!(["flag"]), &json!("general"), &json!("worker7"))
    );

    // A local record wins over the upstream one.
    assert_ok(
        &s.call(
            "put_job",
            json!({"job": {"id": "jup1", "code": 0, "completed": 5, "event_title": "Local"}}),
        )
        .await,
    );
    assert_eq!(
        s.create(json!({"template": "job", "job": "jup1"})).await["subject"],
        "Job #jup1 succeeded (Local)"
    );

    let t = s
        .create(json!({"template": "alert", "alert": "aup1"}))
        .await;
    assert_eq!(t["subject"], "Alert: High CPU Load on sorbstack01");
    assert!(
        str_of(&t, "body").contains("> CPU load average is too high: 9.1"),
        "{}",
        t["body"]
    );

    let before = total(&s, "*").await;
    assert_err(
        &s.call("create_ticket", json!({"template": "job", "job": "jnope"}))
            .await,
        404,
        "notfound",
        "upstream",
    );
    assert_err(
        &s.call(
            "create_ticket",
            json!({"template": "alert", "alert": "anope"}),
        )
        .await,
        404,
        "notfound",
        "upstream",
    );
    assert_err(
        &s.call("get_job", json!({"id": "jweird"})).await,
        400,
        "ticket",
        "no job object",
    );
    let started = Instant::now();
    let r = s
        .call("create_ticket", json!({"template": "job", "job": "jslow"}))
        .await;
    assert_err(&r, 400, "ticket", "no answer within 1 s");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the timeout did not apply"
    );
    assert_eq!(total(&s, "*").await, before);

    // Wrong credentials upstream are named as such; an unreachable server too.
    let bad_key = format!("[upstream]\nbase_url = \"http://{addr}\"\napi_key = \"wrong\"\n");
    let s2 = Server::start_with_config(&config(&bad_key), &[]).await;
    assert_err(
        &s2.call("get_job", json!({"id": "jup1"})).await,
        400,
        "ticket",
        "upstream.api_key",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down =
        format!("[upstream]\nbase_url = \"http://{closed}\"\napi_key = \"k\"\ntimeout = 2\n");
    let s3 = Server::start_with_config(&config(&down), &[]).await;
    let r = s3
        .call("create_ticket", json!({"template": "job", "job": "jup1"}))
        .await;
    assert_err(&r, 400, "ticket", "could not fetch job");
}

#[tokio::test]
async fn template_overrides_from_the_config_directory() {
    // `templates/` beside the config file (the harness hides its config directory, so this
    // test runs the binary itself).
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("docket.toml");
    std::fs::write(&cfg, config("")).unwrap();
    std::fs::create_dir_all(tmp.path().join("templates")).unwrap();
    std::fs::write(
        tmp.path().join("templates/job.md.j2"),
        "Custom report for {{ job.id }}: {{ job.code | code }}\n{{ job.log | fence }}",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let key = common::cli(
        &data,
        &["api-key", "create", "--create", "--title", "t", "--admin"],
    );
    let key = key.lines().last().unwrap().trim().to_string();
    let mut child = common::docket_command(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = read_base(&mut child);
    let client = reqwest::Client::new();
    let call = |name: &str, params: Value| {
        client
            .post(format!("{base}/api/app/{name}/v1"))
            .header("X-API-Key", &key)
            .json(&params)
    };
    assert_ok(
        &send(call(
            "put_job",
            json!({"job": {"id": "jc1", "code": 3, "log": "a\n```\nb"}}),
        ))
        .await,
    );
    let r = send(call(
        "create_ticket",
        json!({"template": "job", "job": "jc1"}),
    ))
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let t = &assert_ok(&r)["ticket"];
    assert_eq!(
        t["body"],
        "Custom report for jc1: `3`\n````\na\n```\nb\n````\n"
    );
    assert_eq!(t["subject"], "Job #jc1 failed with code: 3");

    // A template that does not compile stops the server at start, naming the file.
    std::fs::write(tmp.path().join("templates/alert.md.j2"), "{% if %}").unwrap();
    let out = common::docket_command(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alert.md.j2"), "{err}");
}

fn read_base(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent {
                if let Some(i) = line.find("http://") {
                    let _ = tx.send(line[i..].trim().trim_end_matches('/').to_string());
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("server address")
}

// ---------------------------------------------------------------------------------------
// Dedupe and idempotency

#[tokio::test]
async fn alert_storm_is_one_ticket() {
    let s = Server::start().await;
    let mut calls = Vec::new();
    for i in 0..50 {
        let s = &s;
        calls.push(async move {
            s.call(
                "create_ticket",
                json!({"subject": format!("Disk full on db1 ({i})"), "body": format!("sample {i}"), "dedupe_key": "disk-full-db1"}),
            )
            .await
        });
    }
    let replies = futures_util::future::join_all(calls).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut deduplicated = 0;
    for r in &replies {
        let v = assert_ok(r);
        ids.insert(str_of(&v["ticket"], "id").to_string());
        if v["deduplicated"] == json!(true) {
            assert_eq!(v["ticket"]["deduplicated"], true);
            deduplicated += 1;
        } else {
            assert!(v.get("deduplicated").is_none(), "{v}");
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "concurrent creates made {} tickets",
        ids.len()
    );
    assert_eq!(deduplicated, 49);
    assert_eq!(total(&s, "disk").await, 1);
    let id = ids.into_iter().next().unwrap();
    let t = ticket(&s, &id).await;
    assert_eq!(t["occurrences"], 50);
    assert_eq!(t["dedupe_key"], "disk-full-db1");
    let comments: Vec<&Value> = changes(&t)
        .iter()
        .filter(|c| c["type"] == "comment")
        .collect();
    assert_eq!(comments.len(), 49);
    let last = str_of(comments[48], "body");
    assert!(
        last.contains("**Occurrence 50**") && last.contains("**Subject:** Disk full on db1 ("),
        "{last}"
    );
    assert!(last.contains("sample "), "{last}");

    // Tickets without a key look as before.
    let plain = s.create(json!({"subject": "no key"})).await;
    assert!(
        plain.get("dedupe_key").is_none() && plain.get("occurrences").is_none(),
        "{plain}"
    );

    // Once closed-like (closed, resolved), the next create with the key makes a new ticket.
    for status in ["closed", "resolved"] {
        let current = s
            .create(json!({"subject": "Disk full again", "dedupe_key": "disk-full-db1"}))
            .await;
        assert_ok(
            &s.call(
                "update_ticket",
                json!({"id": current["id"], "status": status}),
            )
            .await,
        );
        let fresh = s
            .call(
                "create_ticket",
                json!({"subject": "Disk full again", "dedupe_key": "disk-full-db1"}),
            )
            .await;
        let fresh = assert_ok(&fresh);
        assert!(fresh.get("deduplicated").is_none(), "{fresh}");
        assert_ne!(fresh["ticket"]["id"], current["id"]);
        assert_eq!(fresh["ticket"]["occurrences"], 1);
    }
    assert_err(
        &s.call(
            "create_ticket",
            json!({"subject": "x", "dedupe_key": ["a"]}),
        )
        .await,
        400,
        "ticket",
        "dedupe_key",
    );
}

#[tokio::test]
async fn dedupe_statuses_are_configurable_and_scoped_to_categories() {
    let cfg = "[tickets]\ndedupe_closed_statuses = [\"on_hold\"]\n";
    let s = Server::start_with_config(cfg, &[]).await;
    let a = s.create(json!({"subject": "A", "dedupe_key": "k"})).await;
    assert_ok(
        &s.call("update_ticket", json!({"id": a["id"], "status": "closed"}))
            .await,
    );
    // `closed` is not closed-like here, `on_hold` is.
    let r = s
        .call("create_ticket", json!({"subject": "A2", "dedupe_key": "k"}))
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["id"], a["id"]);
    assert_ok(
        &s.call("update_ticket", json!({"id": a["id"], "status": "on_hold"}))
            .await,
    );
    let r = s
        .call("create_ticket", json!({"subject": "A3", "dedupe_key": "k"}))
        .await;
    assert_ne!(assert_ok(&r)["ticket"]["id"], a["id"]);

    // A caller limited to a category never lands in (or learns of) a ticket outside it.
    assert_ok(
        &s.call("create_category", json!({"id": "ops", "title": "Ops"}))
            .await,
    );
    let scoped = s.key_with(&["create_tickets"], &["ops"]).await;
    let r = s
        .call_as(
            &scoped,
            "create_ticket",
            json!({"subject": "B", "category": "ops", "dedupe_key": "k"}),
        )
        .await;
    let b = assert_ok(&r)["ticket"].clone();
    assert!(assert_ok(&r).get("deduplicated").is_none());
    let r = s
        .call_as(
            &scoped,
            "create_ticket",
            json!({"subject": "B2", "category": "ops", "dedupe_key": "k"}),
        )
        .await;
    assert_eq!(assert_ok(&r)["ticket"]["id"], b["id"]);
}

#[tokio::test]
async fn idempotent_creates() {
    let s = Server::start().await;
    let create = |key: &str, params: Value| {
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .header("X-API-Key", &s.key)
            .header("Idempotency-Key", key)
            .json(&params)
    };
    let first = send(create("req-1", json!({"subject": "Only once"}))).await;
    let first = assert_ok(&first)["ticket"].clone();
    let again = send(create("req-1", json!({"subject": "Only once"}))).await;
    assert_eq!(assert_ok(&again)["ticket"], first);
    // The parameter form is the same key.
    let by_param = s
        .call(
            "create_ticket",
            json!({"subject": "Only once", "idempotency_key": "req-1"}),
        )
        .await;
    assert_eq!(assert_ok(&by_param)["ticket"]["id"], first["id"]);
    assert_eq!(total(&s, "\"Only once\"").await, 1);

    // Another key makes another ticket; so does the same key from another caller.
    let other = send(create("req-2", json!({"subject": "Only once"}))).await;
    assert_ne!(assert_ok(&other)["ticket"]["id"], first["id"]);
    let (_, bob) = api_support::create_key(
        &s,
        json!({"title": "bob", "username": "bob", "privileges": ["create_tickets"]}),
    )
    .await;
    let bobs = send(
        s.client
            .post(s.url("/api/app/create_ticket/v1"))
            .header("X-API-Key", &bob)
            .header("Idempotency-Key", "req-1")
            .json(&json!({"subject": "Only once"})),
    )
    .await;
    assert_ne!(assert_ok(&bobs)["ticket"]["id"], first["id"]);
    assert_eq!(total(&s, "\"Only once\"").await, 3);

    // Concurrent retries of one request: one ticket.
    let retries = futures_util::future::join_all(
        (0..20).map(|_| send(create("req-3", json!({"subject": "Burst retry"})))),
    )
    .await;
    let ids: std::collections::BTreeSet<String> = retries
        .iter()
        .map(|r| str_of(&assert_ok(r)["ticket"], "id").to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(total(&s, "\"Burst retry\"").await, 1);

    // A failed create records nothing: the retry with a fixed request creates.
    let bad = send(create("req-4", json!({"subject": ""}))).await;
    assert_err(&bad, 400, "ticket", "subject");
    let fixed = send(create("req-4", json!({"subject": "Fixed"}))).await;
    assert_eq!(assert_ok(&fixed)["ticket"]["subject"], "Fixed");

    // With a dedupe key the replay repeats `deduplicated` too.
    s.create(json!({"subject": "Storm", "dedupe_key": "storm"}))
        .await;
    let d1 = send(create(
        "req-5",
        json!({"subject": "Storm", "dedupe_key": "storm"}),
    ))
    .await;
    let d2 = send(create(
        "req-5",
        json!({"subject": "Storm", "dedupe_key": "storm"}),
    ))
    .await;
    assert_eq!(assert_ok(&d1)["deduplicated"], true);
    assert_eq!(assert_ok(&d2)["deduplicated"], true);
    assert_eq!(
        assert_ok(&d2)["ticket"]["occurrences"],
        2,
        "the retry must not count again"
    );

    // A deleted ticket's key answers notfound rather than creating again.
    assert_ok(&s.call("delete_ticket", json!({"id": first["id"]})).await);
    assert_err(
        &send(create("req-1", json!({"subject": "Only once"}))).await,
        404,
        "notfound",
        "idempotency key",
    );
    assert_err(
        &s.call(
            "create_ticket",
            json!({"subject": "x", "idempotency_key": {"a": 1}}),
        )
        .await,
        400,
        "api",
        "idempotency_key",
    );
}

/// Multipart creates (ticket + files) honor the Idempotency-Key header and `dedupe_key`: a
/// retry returns the first ticket without attaching its files again; a storm adds files to
/// the open ticket it lands on.
#[tokio::test]
async fn multipart_creates_are_idempotent_and_deduplicated() {
    let s = common::Server::start().await;
    let form = common::Multipart::new()
        .json(&serde_json::json!({"subject": "Nightly backup failed"}))
        .file("file1", "backup.log", "text/plain", b"disk full\n");
    let send = |key: &'static str| {
        let form = &form;
        let s = &s;
        async move {
            let res = s
                .client
                .post(s.url("/api/app/create_ticket/v1"))
                .header("X-API-Key", &s.key)
                .header("Idempotency-Key", key)
                .header("Content-Type", form.content_type())
                .body(form.body())
                .send()
                .await
                .expect("request");
            common::decode(res).await
        }
    };
    let (_, first) = send("retry-1").await;
    assert_eq!(first["code"], 0, "{first}");
    assert_eq!(
        first["ticket"]["files"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    let (_, again) = send("retry-1").await;
    assert_eq!(again["ticket"]["id"], first["ticket"]["id"], "{again}");
    assert_eq!(
        again["ticket"]["files"].as_array().unwrap().len(),
        1,
        "files attached once: {again}"
    );
    let (_, v) = s
        .call("search_tickets", serde_json::json!({"query": "*"}))
        .await;
    assert_eq!(v["list"]["length"], 1, "{v}");
    let stored: Vec<String> = common::files_under(&s.data)
        .into_iter()
        .filter(|p| p.starts_with("files/"))
        .collect();
    assert_eq!(
        stored.len(),
        1,
        "the retry's copy was discarded: {stored:?}"
    );

    // A multipart create with a dedupe key lands on the open ticket and reports it.
    let storm = |n: u32| {
        common::Multipart::new()
            .json(&serde_json::json!({"subject": "Alert: disk", "dedupe_key": "disk-db1"}))
            .file("file1", &format!("sample{n}.txt"), "text/plain", b"sample")
    };
    let (_, a) = s.upload("create_ticket", &storm(1)).await;
    let (_, b) = s.upload("create_ticket", &storm(2)).await;
    assert_eq!(a["code"], 0, "{a}");
    assert_eq!(b["deduplicated"], true, "{b}");
    assert_eq!(b["ticket"]["id"], a["ticket"]["id"]);
    assert_eq!(b["ticket"]["files"].as_array().unwrap().len(), 2, "{b}");
}
