//! Test harness: runs the real `docket` binary on an ephemeral port with a temporary data
//! directory and talks to it over HTTP.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "admin-test-password";

/// A running `docket serve` process.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    /// An admin API key created through the CLI before the server started.
    pub key: String,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub client: reqwest::Client,
    env: Vec<(String, String)>,
    /// Extra arguments for `docket serve` (e.g. `--config FILE`).
    serve_args: Vec<String>,
    /// Everything the server printed on stdout (its log), across restarts.
    log: Arc<Mutex<String>>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_docket")
}

/// The database a suite runs against: SQLite, or PostgreSQL when `DOCKET_TEST_BACKEND` is
/// `postgres` (`scripts/test` runs the suites a second time so, without compiling them
/// again) and in the PostgreSQL-only suites (`postgres_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn backend() -> Backend {
    if env!("CARGO_CRATE_NAME").starts_with("postgres")
        || std::env::var("DOCKET_TEST_BACKEND").is_ok_and(|b| b == "postgres")
    {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// The PostgreSQL server the suites use on PostgreSQL (`DOCKET_TEST_PG_HOST`, default 127.0.0.1;
/// user postgres, trust auth, maintenance database `test`).
pub fn pg_host() -> String {
    std::env::var("DOCKET_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

/// Runs SQL on the maintenance database with psql; true on success.
pub fn psql(sql: &str) -> bool {
    Command::new("psql")
        .args([
            "-h",
            &pg_host(),
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-qtAc",
        ])
        .arg(sql)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// When this test process started (epoch seconds): part of every database name it creates,
/// so a later run can drop what a crashed run left behind.
fn run_epoch() -> u64 {
    static EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        drop_stale_databases(now);
        now
    })
}

/// Drops test databases of runs that started over two hours ago.
fn drop_stale_databases(now: u64) {
    let out = Command::new("psql")
        .args(["-h", &pg_host(), "-U", "postgres", "-d", "test", "-qtAc"])
        .arg("SELECT datname FROM pg_database WHERE datname LIKE 'docket\\_t\\_%'")
        .output();
    let Ok(out) = out else { return };
    for name in String::from_utf8_lossy(&out.stdout).lines() {
        // Only names this harness makes (`docket_t_EPOCH_HASH`): the store crates' own tests
        // name theirs `docket_t_PID_N_RAND`, and a process id is no epoch — reading it as one
        // dropped their databases mid-test when suites ran side by side.
        let started = name
            .split('_')
            .nth(2)
            .and_then(|e| e.parse::<u64>().ok())
            .filter(|&e| e >= 1_000_000_000)
            .unwrap_or(u64::MAX);
        if started.saturating_add(7200) < now {
            psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
        }
    }
}

/// The PostgreSQL database that stands for the data directory `data` (one per directory,
/// created on first use).
pub fn pg_database(data: &Path) -> String {
    use std::hash::{Hash, Hasher};
    static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    let name = format!("docket_t_{}_{:016x}", run_epoch(), h.finish());
    let mut created = CREATED.lock().unwrap_or_else(|e| e.into_inner());
    if !created.contains(&name) {
        assert!(
            psql(&format!("CREATE DATABASE \"{name}\"")),
            "creating test database {name} on {} failed (is PostgreSQL running?)",
            pg_host()
        );
        created.push(name.clone());
    }
    name
}

/// The environment that points `docket` at the database of `data` for this suite's backend.
pub fn db_env(data: &Path) -> Vec<(String, String)> {
    match backend() {
        Backend::Sqlite => Vec::new(),
        Backend::Postgres => vec![(
            "DOCKET_DATABASE__URL".to_string(),
            format!(
                "postgres://postgres@{}:5432/{}",
                pg_host(),
                pg_database(data)
            ),
        )],
    }
}

/// A plain SQL dump of the PostgreSQL database of `data` (every byte the server stored there).
pub fn pg_dump(data: &Path) -> Vec<u8> {
    let out = Command::new("pg_dump")
        .args(["-h", &pg_host(), "-U", "postgres", "--data-only"])
        .arg(pg_database(data))
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs SQL directly on the database of `data` (sqlite3 or psql, by backend), for putting
/// the database into a state the API cannot make. Panics on failure.
pub fn raw_sql(data: &Path, sqlite: &str, postgres: &str) {
    let out = match backend() {
        Backend::Sqlite => Command::new("sqlite3")
            .arg(data.join("docket.db"))
            .arg(sqlite)
            .output(),
        Backend::Postgres => Command::new("psql")
            .args([
                "-h",
                &pg_host(),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-qtA",
            ])
            .args(["-d", &pg_database(data), "-c", postgres])
            .output(),
    }
    .expect("run the database shell");
    assert!(
        out.status.success(),
        "raw SQL failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drops the PostgreSQL database of `data`, if the suite made one.
pub fn drop_database(data: &Path) {
    if backend() == Backend::Postgres {
        let name = pg_database(data);
        psql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    }
}

/// `docket` with the admin password and the database environment of `data` (add the
/// subcommand and `--data` yourself).
pub fn docket_command(data: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env("DOCKET_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .envs(db_env(data));
    cmd
}

/// Runs a CLI subcommand on a data directory; returns stdout. Panics on failure.
pub fn cli(data: &Path, args: &[&str]) -> String {
    let out = docket_command(data)
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run docket cli");
    assert!(
        out.status.success(),
        "docket {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Server {
    pub async fn start() -> Server {
        Server::start_with_env(&[]).await
    }

    /// Starts a server with extra environment (e.g. `DOCKET_SERVER__MAX_BODY_BYTES`).
    pub async fn start_with_env(env: &[(&str, &str)]) -> Server {
        Server::start_with(None, env).await
    }

    /// Starts a server with `docket serve --config FILE`, FILE holding `toml`.
    pub async fn start_with_config(toml: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(Some(toml), env).await
    }

    async fn start_with(config: Option<&str>, env: &[(&str, &str)]) -> Server {
        Server::start_prepared(config, env, |_| {}).await
    }

    /// Starts a server on a data directory that `prepare` filled first (e.g. with
    /// `docket import`), before anything else touched it.
    pub async fn start_prepared(
        config: Option<&str>,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&Path),
    ) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut serve_args = Vec::new();
        if let Some(text) = config {
            let file = tmp.path().join("docket.toml");
            std::fs::write(&file, text).expect("write config file");
            serve_args.push("--config".to_string());
            serve_args.push(file.to_string_lossy().into_owned());
        }
        let data = tmp.path().join("data");
        prepare(&data);
        let out = cli(
            &data,
            &[
                "api-key",
                "create",
                "--create",
                "--title",
                "test admin",
                "--admin",
            ],
        );
        let key = out.lines().last().expect("key line").trim().to_string();
        let mut server = Server {
            child: None,
            base: String::new(),
            key,
            data,
            _tmp: Some(tmp),
            client: reqwest::Client::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            serve_args,
            log: Arc::new(Mutex::new(String::new())),
        };
        server.spawn();
        server
    }

    /// Sets an environment variable for the next (re)start of the server.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Another node: a second `docket serve` process on the same data directory (so the
    /// same local file store), database, configuration and environment.
    pub fn another_node(&self) -> Server {
        let mut node = Server {
            child: None,
            base: String::new(),
            key: self.key.clone(),
            data: self.data.clone(),
            _tmp: None,
            client: reqwest::Client::new(),
            env: self.env.clone(),
            serve_args: self.serve_args.clone(),
            log: Arc::new(Mutex::new(String::new())),
        };
        node.spawn();
        node
    }

    fn spawn(&mut self) {
        let mut cmd = docket_command(&self.data);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(&self.data)
            .args(&self.serve_args)
            .env("DOCKET_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn docket serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut log) = log.lock() {
                    log.push_str(&line);
                    log.push('\n');
                }
                if !sent {
                    if let Some(i) = line.find("http://") {
                        // The URL ends at a space or quote (a JSON log line goes on).
                        let url = line[i..]
                            .split(|c: char| c.is_whitespace() || c == '"')
                            .next()
                            .unwrap_or("")
                            .trim_end_matches('/')
                            .to_string();
                        let _ = tx.send(url);
                        sent = true;
                    }
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server did not report its address");
        self.base = base;
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (no cleanup at all).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        self.signal_and_wait("-TERM")
    }

    /// Sends `signal` (e.g. `-INT`) and waits up to 20 s for the process to exit; returns
    /// whether it exited successfully.
    pub fn signal_and_wait(&mut self, signal: &str) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory (new port).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The server process id (e.g. to read `/proc/PID/status`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's resident memory in KiB (`VmRSS` of `/proc/PID/status`), where /proc exists.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// POSTs a multipart body to `/api/app/NAME/v1` with the admin key.
    pub async fn upload(&self, name: &str, form: &Multipart) -> (u16, Value) {
        let key = self.key.clone();
        self.upload_as(&key, name, form).await
    }

    pub async fn upload_as(&self, key: &str, name: &str, form: &Multipart) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(&format!("/api/app/{name}/v1")))
            .header("X-API-Key", key)
            .header("Content-Type", form.content_type())
            .body(form.body())
            .send()
            .await
            .expect("request");
        decode(res).await
    }

    /// What the server has printed on stdout so far (its log).
    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POSTs JSON to `/api/app/NAME/v1` with the admin key.
    pub async fn call(&self, name: &str, params: Value) -> (u16, Value) {
        let key = self.key.clone();
        self.call_as(&key, name, params).await
    }

    /// POSTs JSON to `/api/app/NAME/v1` with the given API key.
    pub async fn call_as(&self, key: &str, name: &str, params: Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(&format!("/api/app/{name}/v1")))
            .header("X-API-Key", key)
            .json(&params)
            .send()
            .await
            .expect("request");
        decode(res).await
    }

    /// POSTs JSON to `/api/user/NAME/v1` with the admin key.
    pub async fn user_call(&self, name: &str, params: Value) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(&format!("/api/user/{name}/v1")))
            .header("X-API-Key", &self.key)
            .json(&params)
            .send()
            .await
            .expect("request");
        decode(res).await
    }

    /// Creates an API key with the given privileges (and categories); returns the plain key.
    /// The privileges are sent as xyOps sends them: an object of `name: true` pairs.
    pub async fn key_with(&self, privileges: &[&str], categories: &[&str]) -> String {
        let privileges: serde_json::Map<String, Value> = privileges
            .iter()
            .map(|p| (p.to_string(), json!(true)))
            .collect();
        let (_, v) = self
            .call(
                "create_api_key",
                json!({"title": "k", "privileges": privileges, "categories": categories}),
            )
            .await;
        assert_eq!(v["code"], 0, "{v}");
        v["plain_key"].as_str().expect("plain_key").to_string()
    }

    /// Creates a ticket with the admin key and returns it (panics on error).
    pub async fn create(&self, params: Value) -> Value {
        let (status, v) = self.call("create_ticket", params).await;
        assert_eq!((status, &v["code"]), (200, &json!(0)), "{v}");
        v["ticket"].clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if self._tmp.is_some() {
            drop_database(&self.data);
        }
    }
}

/// Status and JSON body of a response (panics if the body is not JSON).
pub async fn decode(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

/// A hand-built multipart/form-data body (parts in the order added).
#[derive(Default)]
pub struct Multipart {
    body: Vec<u8>,
}

pub const BOUNDARY: &str = "----DocketTestBoundary7MA4YWxkTrZu0gW";

impl Multipart {
    pub fn new() -> Multipart {
        Multipart::default()
    }

    pub fn field(mut self, name: &str, value: &str) -> Multipart {
        self.body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
        self
    }

    pub fn json(self, value: &Value) -> Multipart {
        self.field("json", &value.to_string())
    }

    pub fn file(
        mut self,
        field: &str,
        filename: &str,
        content_type: &str,
        data: &[u8],
    ) -> Multipart {
        self.body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    /// The finished body (closing boundary added).
    pub fn body(&self) -> Vec<u8> {
        let mut b = self.body.clone();
        b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        b
    }
}

/// The Content-Type of a response ("" when absent).
pub fn content_type_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Every regular file under `dir`, recursively (relative paths, sorted).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(
                    p.strip_prefix(root)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The store of a data directory, opened directly (the server must be stopped): for writing
/// what the API cannot, such as records in the shape an older version stored.
pub enum RawStore {
    Sqlite(docket_store_sqlite::SqliteStore),
    Postgres(docket_store_postgres::PgStore),
}

impl RawStore {
    pub async fn open(data: &Path) -> RawStore {
        match backend() {
            Backend::Sqlite => RawStore::Sqlite(
                docket_store_sqlite::SqliteStore::open(
                    &data.join("docket.db"),
                    &docket_store_sqlite::SqliteOptions::default(),
                )
                .await
                .expect("open the SQLite store"),
            ),
            Backend::Postgres => RawStore::Postgres(
                docket_store_postgres::PgStore::connect(
                    &format!(
                        "postgres://postgres@{}:5432/{}",
                        pg_host(),
                        pg_database(data)
                    ),
                    &docket_store_postgres::PgOptions::default(),
                )
                .await
                .expect("connect the PostgreSQL store"),
            ),
        }
    }

    pub fn store(&self) -> &dyn docket_core::store::Store {
        match self {
            RawStore::Sqlite(s) => s,
            RawStore::Postgres(s) => s,
        }
    }

    pub async fn close(self) {
        match self {
            RawStore::Sqlite(s) => s.close().await,
            RawStore::Postgres(s) => s.close().await,
        }
    }
}
