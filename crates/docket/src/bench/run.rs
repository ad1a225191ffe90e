//! The load driver: runs one scenario against any server speaking the xyOps Tickets API and
//! reports throughput and latency percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use super::gen::{self, Rng, HALF_WORD};

/// What to measure and how hard.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub url: String,
    pub api_key: String,
    pub scenario: String,
    pub concurrency: usize,
    pub duration: Duration,
    /// Stop after this many requests instead of after `duration`.
    pub requests: Option<u64>,
    pub query: Option<String>,
}

/// The scenarios and the search query each search scenario runs.
pub const SCENARIOS: &[&str] = &[
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
];

fn default_query(scenario: &str) -> Option<String> {
    Some(match scenario {
        "search-word" => "latency".to_string(),
        "search-phrase" => "\"disk full\"".to_string(),
        "search-fields" => "status:open tags:important".to_string(),
        "search-pxql" => {
            "(status = \"open\" & (tags = \"important\" | type = \"bug\"))".to_string()
        }
        "search-half" => HALF_WORD.to_string(),
        _ => return None,
    })
}

/// Results of one scenario run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub scenario: String,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Example of the first error, if any.
    pub first_error: Option<String>,
}

/// A client bound to a key and one server, or several nodes of one cluster (`url` holds
/// comma-separated base URLs; requests go to them in turn).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    bases: std::sync::Arc<Vec<String>>,
    turn: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    key: String,
}

impl Client {
    pub fn new(url: &str, key: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()?;
        let bases: Vec<String> = url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect();
        anyhow::ensure!(!bases.is_empty(), "--url is empty");
        Ok(Client {
            http,
            bases: std::sync::Arc::new(bases),
            turn: Default::default(),
            key: key.to_string(),
        })
    }

    /// The base URL of the next request (round robin over the nodes).
    fn base(&self) -> &str {
        let i = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.bases[i % self.bases.len()]
    }

    /// Calls `/api/app/NAME/v1`; an HTTP failure or a non-zero `code` is an error.
    pub async fn call(&self, name: &str, params: &Value) -> Result<Value, String> {
        let res = self
            .http
            .post(format!("{}/api/app/{name}/v1", self.base()))
            .header("X-API-Key", &self.key)
            .json(params)
            .send()
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        let v: Value = res
            .json()
            .await
            .map_err(|e| format!("{name}: bad JSON: {e}"))?;
        if v["code"] == json!(0) {
            Ok(v)
        } else {
            Err(format!(
                "{name}: {}",
                v["description"].as_str().unwrap_or("error")
            ))
        }
    }
}

/// Size of the file each `upload` request attaches.
const UPLOAD_BYTES: usize = 256 * 1024;

impl Client {
    /// Attaches a generated file to a ticket with `upload_user_ticket_files` (multipart,
    /// `json` = `{ticket, save: true}`), as the xyOps web UI does.
    pub async fn upload(&self, ticket: &str, size: usize) -> Result<Value, String> {
        let boundary = "docketbenchboundary7d1f";
        let json_part = json!({"ticket": ticket, "save": true}).to_string();
        let mut body = Vec::with_capacity(size + 512);
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{json_part}\r\n").as_bytes(),
        );
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file1\"; filename=\"bench.log\"\r\nContent-Type: text/plain\r\n\r\n")
                .as_bytes(),
        );
        body.extend((0..size).map(|i| b"abcdefghijklmnopqrstuvwxyz\n"[i % 27]));
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .http
            .post(format!(
                "{}/api/app/upload_user_ticket_files/v1",
                self.base()
            ))
            .header("X-API-Key", &self.key)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("upload: {e}"))?;
        let v: Value = res
            .json()
            .await
            .map_err(|e| format!("upload: bad JSON: {e}"))?;
        if v["code"] == json!(0) {
            Ok(v)
        } else {
            Err(format!(
                "upload: {}",
                v["description"].as_str().unwrap_or("error")
            ))
        }
    }
}

/// Ids and numbers of existing tickets, for the read and comment scenarios.
async fn sample(client: &Client) -> anyhow::Result<Vec<(String, i64)>> {
    let v = client
        .call("search_tickets", &json!({"query": "*", "limit": 1000, "compact": true, "sort_by": "_id", "sort_dir": -1}))
        .await
        .map_err(anyhow::Error::msg)?;
    let rows: Vec<(String, i64)> = v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["id"].as_str()?.to_string(), r["num"].as_i64()?)))
        .collect();
    if rows.is_empty() {
        bail!("the server has no tickets; load some first with `docket bench load`");
    }
    Ok(rows)
}

async fn one(
    client: &Client,
    scenario: &str,
    rng: &mut Rng,
    tickets: &[(String, i64)],
    query: &Option<String>,
) -> Result<(), String> {
    let now = jiff::Timestamp::now().as_second();
    let pick = |rng: &mut Rng| tickets[rng.below(tickets.len())].clone();
    match scenario {
        "ping" => client.call("ping", &json!({})).await.map(drop),
        "create" => client.call("create_ticket", &gen::ticket_params(rng, now)).await.map(drop),
        "get-id" => client.call("get_ticket", &json!({"id": pick(rng).0})).await.map(drop),
        "get-num" => client.call("get_ticket", &json!({"num": pick(rng).1})).await.map(drop),
        "upload" => client.upload(&pick(rng).0, UPLOAD_BYTES).await.map(drop),
        "comment" => client
            .call("add_ticket_change", &json!({"id": pick(rng).0, "change": {"type": "comment", "body": gen::comment(rng)}}))
            .await
            .map(drop),
        "mixed" => {
            let roll = rng.below(100);
            if roll < 5 {
                client.call("create_ticket", &gen::ticket_params(rng, now)).await.map(drop)
            } else if roll < 10 {
                client
                    .call("add_ticket_change", &json!({"id": pick(rng).0, "change": {"type": "comment", "body": gen::comment(rng)}}))
                    .await
                    .map(drop)
            } else if roll < 55 {
                client.call("get_ticket", &json!({"id": pick(rng).0})).await.map(drop)
            } else {
                let q = format!("{} status:open", rng.pick(gen::WORDS));
                client.call("search_tickets", &json!({"query": q, "limit": 50, "compact": true})).await.map(drop)
            }
        }
        _ => {
            let q = query.clone().unwrap_or_default();
            client.call("search_tickets", &json!({"query": q, "limit": 50, "compact": true})).await.map(drop)
        }
    }
}

pub async fn run(opts: &RunOptions) -> anyhow::Result<Report> {
    if !SCENARIOS.contains(&opts.scenario.as_str()) {
        bail!(
            "unknown scenario {:?}; scenarios: {}",
            opts.scenario,
            SCENARIOS.join(", ")
        );
    }
    let client = Client::new(&opts.url, &opts.api_key)?;
    let tickets = match opts.scenario.as_str() {
        "get-id" | "get-num" | "comment" | "mixed" | "upload" => Arc::new(sample(&client).await?),
        _ => Arc::new(Vec::new()),
    };
    let query = opts.query.clone().or_else(|| default_query(&opts.scenario));
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + opts.duration;
    let mut workers = Vec::new();
    for w in 0..opts.concurrency.max(1) {
        let (client, tickets, query, issued) = (
            client.clone(),
            tickets.clone(),
            query.clone(),
            issued.clone(),
        );
        let scenario = opts.scenario.clone();
        let limit = opts.requests;
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(0xD0C4E7 + w as u64);
            let mut lat = Vec::new();
            let mut errors = Vec::new();
            loop {
                match limit {
                    Some(n) if issued.fetch_add(1, Ordering::Relaxed) >= n => break,
                    None if Instant::now() >= deadline => break,
                    _ => {}
                }
                let t0 = Instant::now();
                let r = one(&client, &scenario, &mut rng, &tickets, &query).await;
                lat.push(t0.elapsed().as_micros() as u64);
                if let Err(e) = r {
                    errors.push(e);
                }
            }
            (lat, errors)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = Vec::new();
    for w in workers {
        let (l, e) = w.await.context("bench worker")?;
        lat.extend(l);
        errors.extend(e);
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i] as f64 / 1000.0
    };
    Ok(Report {
        scenario: opts.scenario.clone(),
        concurrency: opts.concurrency,
        requests: lat.len() as u64,
        errors: errors.len() as u64,
        seconds,
        per_sec: lat.len() as f64 / seconds.max(1e-9),
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        first_error: errors.into_iter().next(),
    })
}

/// Fills a server with generated tickets (and comments) through its API.
pub async fn load_via_api(
    url: &str,
    key: &str,
    count: u64,
    concurrency: usize,
) -> anyhow::Result<(u64, f64)> {
    let client = Client::new(url, key)?;
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(count);
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let (client, next, bar) = (client.clone(), next.clone(), bar.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(0x10AD + w as u64);
            let now = jiff::Timestamp::now().as_second();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let v = client.call("create_ticket", &gen::ticket_params(&mut rng, now)).await.map_err(anyhow::Error::msg)?;
                let id = v["ticket"]["id"].as_str().unwrap_or_default().to_string();
                for _ in 0..rng.below(4) {
                    client
                        .call("add_ticket_change", &json!({"id": id, "change": {"type": "comment", "body": gen::comment(&mut rng)}}))
                        .await
                        .map_err(anyhow::Error::msg)?;
                }
                bar.inc(1);
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await.context("load worker")??;
    }
    bar.finish_and_clear();
    Ok((count, started.elapsed().as_secs_f64()))
}

/// Resident memory of a process in MiB (Linux), for the resource figures.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
