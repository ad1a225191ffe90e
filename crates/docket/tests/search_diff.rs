//! The differential search test (issue 3): a real server is filled with a few thousand
//! varied tickets made from a seeded PRNG, then several hundred random queries run both
//! through `search_tickets` and through the in-memory evaluator (`docket_query::compile` +
//! `matches` over `ticket_doc` of the stored records), sorted the same way in Rust. The id
//! lists, `list.length` and paging slices must be identical.

mod common;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use common::Server;
use docket_core::model::Ticket;
use docket_core::search_doc::ticket_doc;
use docket_query::{analyze_plain, compile, matches, normalize_keyword, Doc, LowerCtx};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};

const TICKETS: usize = 2_400;
const QUERIES: usize = 600;
const WORKERS: usize = 8;
const SEED: u64 = 0x5EA2_C4D1_FF00_0003;
/// The server's `server.timezone`: not UTC, so day boundaries (and DST) matter.
const TZ: &str = "America/New_York";

fn tz() -> TimeZone {
    TimeZone::get(TZ).expect("time zone")
}

// ---------------------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------------------

/// xorshift64*: small, deterministic, no dependency.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // splitmix the seed so that nearby seeds give unrelated streams
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn some<T: Clone>(&mut self, items: &[T], max: usize) -> Vec<T> {
        let n = self.below(max + 1);
        let mut out: Vec<T> = Vec::new();
        for _ in 0..n {
            out.push(self.pick(items).clone());
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------

const WORDS: &[&str] = &[
    "disk",
    "disks",
    "full",
    "server",
    "network",
    "timeout",
    "latency",
    "deploy",
    "deployment",
    "deploying",
    "rollback",
    "database",
    "cpu",
    "memory",
    "alert",
    "alerts",
    "error",
    "errors",
    "failed",
    "failing",
    "backup",
    "kernel",
    "upgrade",
    "upgraded",
    "nginx",
    "postgres",
    "redis",
    "queue",
    "cache",
    "jump",
    "jumps",
    "jumping",
    "cats",
    "big",
    "fence",
    "over",
    "the",
    "and",
    "not",
    "or",
    "near",
    "on",
    "of",
    "to",
    "Café",
    "café",
    "CAFÉ",
    "naïve",
    "résumé",
    "Straße",
    "Nancy's",
    "O'Brien",
    "don't",
    "won't",
    "2.5.1",
    "v1.10.3",
    "e.g.",
    "foo_bar",
    "main.rs",
    "db1.prod.acme.io",
    "Grafana.Example.com",
    "file.txt",
    "10.0.0.1",
    "x86_64",
    "IPv6",
    "HTTP",
    "TLS",
    "Disk",
    "DISK",
    "Server",
    "monitor",
    "amazon",
    "released",
    "preproduction",
    "customer",
    "billing",
    "login",
    "password",
    "certificate",
    "expired",
    "renewal",
    "latency",
    "p99",
    "404",
    "500",
    "2024",
    "crash",
    "crashed",
    "crashing",
    "slow",
    "slowly",
    "木",
    "ネコ",
    "El",
    "Niño",
    "Ünïcödé",
    "running",
    "runs",
    "ran",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ter", "vex", "dra", "qu", "zor", "pel", "bim", "tak", "wu", "sna", "rif",
];

const HOSTS: &[&str] = &[
    "grafana.example.com",
    "status.acme.io",
    "docs.rs",
    "github.com",
    "wiki.internal.net",
    "ci.my-site.org",
    "db1.prod.acme.io",
    "10.0.0.1:8080",
    "Grafana.Example.COM:3000",
];

const TYPES: &[&str] = &[
    "task",
    "bug",
    "feature",
    "question",
    "incident",
    "issue",
    "release",
    "change",
    "maintenance",
    "other",
];
const STATUSES: &[&str] = &[
    "draft",
    "open",
    "in_progress",
    "on_hold",
    "resolved",
    "closed",
];
const TAGS: &[&str] = &[
    "important",
    "flag",
    "ops",
    "needs_review",
    "backend",
    "frontend",
    "db",
    "customer",
];
const CATEGORIES: &[&str] = &["ops", "dev", "support", "security"];
const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "J.Huckaby",
    "eve-ops",
    "Frank_7",
];
const EMAILS: &[&str] = &["pat@example.com", "ops@acme.io", "Bob@Example.com"];
const SERVERS: &[&str] = &[
    "web01",
    "db-02",
    "Web03.example.com",
    "cache 4",
    "Ünïcödé-srv",
];
const JOBS: &[&str] = &["jabc123", "jdeploy_7", "jbackup", "jz9"];

fn rare_word(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2);
    (0..n).map(|_| *rng.pick(SYLLABLES)).collect()
}

fn phrase(rng: &mut Rng, min: usize, max: usize) -> String {
    let n = min + rng.below(max - min + 1);
    let mut words: Vec<String> = (0..n).map(|_| rng.pick(WORDS).to_string()).collect();
    if rng.chance(25) {
        let at = rng.below(words.len() + 1);
        words.insert(at, rare_word(rng));
    }
    words.join(" ")
}

fn subject(rng: &mut Rng) -> String {
    let mut s = phrase(rng, 2, 6);
    match rng.below(16) {
        0 => s = format!("Élan {s}"),
        1 => s = format!("[{}] {s}", rng.pick(TAGS)),
        2 => s = format!("{} {s}", rng.below(1000)),
        3 => s = s.to_uppercase(),
        4 => s = format!("{s} on {}", rng.pick(SERVERS)),
        5 => s = format!("über {s}"),
        6 => s = format!("20{}. {s}", rng.range(10, 30)),
        7 => s = format!("__{}__ {s}", rare_word(rng)),
        8 => s = format!("- {s} *really*"),
        _ => {}
    }
    s
}

fn body(rng: &mut Rng) -> String {
    let mut out = String::new();
    let lines = rng.below(7);
    for _ in 0..lines {
        let line = match rng.below(16) {
            0 => format!("# {}", phrase(rng, 1, 4)),
            1 => format!("- {}\n- {}", phrase(rng, 1, 4), phrase(rng, 1, 4)),
            2 => format!("**{}** and *{}* here", phrase(rng, 1, 2), phrase(rng, 1, 2)),
            3 => format!(
                "```\nfn {}() {{ panic!(\"{}\") }}\n```",
                rare_word(rng),
                phrase(rng, 1, 3)
            ),
            4 => format!("run `{} {}` now", rare_word(rng), rng.pick(WORDS)),
            5 => format!(
                "See https://{}/d/{}?x=1 for {}",
                rng.pick(HOSTS),
                rare_word(rng),
                phrase(rng, 1, 3)
            ),
            6 => format!(
                "[{}](https://{}/p/q) details",
                phrase(rng, 1, 3),
                rng.pick(HOSTS)
            ),
            7 => format!(
                "Version {}.{}.{} released; upgrade from v1.10.3",
                rng.below(4),
                rng.below(10),
                rng.below(20)
            ),
            8 => "Nancy's café serves naïve résumé coffee — don't panic".to_string(),
            9 => format!(
                "<b>{}</b> and <i>{}</i>",
                phrase(rng, 1, 3),
                phrase(rng, 1, 2)
            ),
            10 => format!(
                "| {} | {} |\n|---|---|\n| {} | {} |",
                rng.pick(WORDS),
                rng.pick(WORDS),
                rng.pick(WORDS),
                rng.pick(WORDS)
            ),
            11 => format!("> {}", phrase(rng, 2, 5)),
            12 => format!("1. {}\n2. {}", phrase(rng, 1, 3), phrase(rng, 1, 3)),
            13 => format!("2 < 3 > 1 and {} & {}", rng.pick(WORDS), rng.pick(WORDS)),
            14 => format!(
                "{} is down (e.g. {}), see {}.",
                rng.pick(HOSTS),
                rng.pick(&["main.rs", "file.txt", "app.log.1", "v2.5.1-rc.2"]),
                rng.pick(HOSTS)
            ),
            _ => phrase(rng, 3, 12),
        };
        out.push_str(&line);
        out.push_str("\n\n");
    }
    out
}

/// Due values: none, absolute epochs (some around now), a date text, a relative text.
fn due(rng: &mut Rng, now: i64) -> Value {
    match rng.below(10) {
        0..=3 => json!(0),
        4..=5 => json!(rng.range(1_672_531_200, 1_798_675_200)), // 2023-01-01 .. 2026-12-31
        6..=7 => json!(now + rng.range(-40, 40) * 86_400 + rng.range(-40_000, 40_000)),
        8 => json!(format!(
            "20{}-{:02}-{:02}",
            rng.range(23, 26),
            rng.range(1, 12),
            rng.range(1, 28)
        )),
        _ => json!(*rng.pick(&["1d", "3 days", "2 weeks", "1 week"])),
    }
}

fn ticket_params(i: usize, now: i64) -> Value {
    let mut rng = Rng::new(SEED ^ (i as u64).wrapping_mul(0x1000_0001));
    let mut p = json!({
        "subject": subject(&mut rng),
        "body": body(&mut rng),
        "type": rng.pick(TYPES),
        "status": rng.pick(STATUSES),
        "tags": rng.some(TAGS, 3),
        "assignees": rng.some(USERS, 2),
        "due": due(&mut rng, now),
    });
    let m = p.as_object_mut().unwrap();
    if rng.chance(70) {
        m.insert("category".into(), json!(rng.pick(CATEGORIES)));
    }
    if rng.chance(40) {
        let mut cc = rng.some(USERS, 1);
        cc.extend(rng.some(EMAILS, 1));
        m.insert("cc".into(), json!(cc));
    }
    if rng.chance(50) {
        m.insert("server".into(), json!(rng.pick(SERVERS)));
    }
    if rng.chance(30) {
        m.insert("jobs".into(), json!(rng.some(JOBS, 2)));
    }
    p
}

// ---------------------------------------------------------------------------------------
// Setup through the API
// ---------------------------------------------------------------------------------------

async fn ok(s: &Server, name: &str, params: Value) -> Value {
    let (status, v) = s.call(name, params.clone()).await;
    assert_eq!(
        (status, &v["code"]),
        (200, &json!(0)),
        "{name} {params}: {v}"
    );
    v
}

/// Runs `f(i)` for every i in 0..n on `WORKERS` concurrent tasks.
async fn parallel<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let f = Arc::new(f);
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (w..n).step_by(WORKERS) {
                out.push((i, f(i).await));
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, v)| v).collect()
}

async fn populate(s: &Arc<Server>) -> Vec<Ticket> {
    for tag in TAGS {
        // Some (`flag`, `important`) may be built in.
        let (_, v) = s
            .call(
                "create_tag",
                json!({"id": tag, "title": tag.to_uppercase()}),
            )
            .await;
        assert!(
            v["code"] == json!(0)
                || v["description"]
                    .as_str()
                    .unwrap_or("")
                    .contains("already exists"),
            "{v}"
        );
    }
    for cat in CATEGORIES {
        ok(
            s,
            "create_category",
            json!({"id": cat, "title": format!("Category {cat}")}),
        )
        .await;
    }
    let now = Timestamp::now().as_second();
    let s2 = s.clone();
    let ids: Vec<String> = parallel(TICKETS, move |i| {
        let s = s2.clone();
        async move {
            let v = ok(&s, "create_ticket", ticket_params(i, now)).await;
            v["ticket"]["id"].as_str().expect("id").to_string()
        }
    })
    .await;

    // Comments, updates and a few deletes, also concurrently.
    let ids = Arc::new(ids);
    let (s2, ids2) = (s.clone(), ids.clone());
    let deleted: Vec<bool> = parallel(TICKETS, move |i| {
        let (s, ids) = (s2.clone(), ids2.clone());
        async move {
            let mut rng = Rng::new(SEED.rotate_left(17) ^ i as u64);
            let id = &ids[i];
            if rng.chance(2) {
                ok(&s, "delete_ticket", json!({"id": id})).await;
                return true;
            }
            for _ in 0..rng.below(3) {
                if rng.chance(50) {
                    let body = format!("{} {}", phrase(&mut rng, 2, 8), rare_word(&mut rng));
                    ok(
                        &s,
                        "add_ticket_change",
                        json!({"id": id, "change": {"type": "comment", "body": body}}),
                    )
                    .await;
                }
            }
            if rng.chance(20) {
                let mut p = json!({"id": id});
                let m = p.as_object_mut().unwrap();
                if rng.chance(50) {
                    m.insert("subject".into(), json!(subject(&mut rng)));
                }
                if rng.chance(50) {
                    m.insert("status".into(), json!(rng.pick(STATUSES)));
                }
                if rng.chance(40) {
                    m.insert("tags".into(), json!(rng.some(TAGS, 3)));
                }
                if rng.chance(40) {
                    m.insert("assignees".into(), json!(rng.some(USERS, 2)));
                }
                if rng.chance(30) {
                    m.insert("due".into(), due(&mut rng, now));
                }
                if rng.chance(20) {
                    m.insert("category".into(), json!(rng.pick(CATEGORIES)));
                }
                if rng.chance(20) {
                    m.insert("server".into(), json!(rng.pick(SERVERS)));
                }
                ok(&s, "update_ticket", p).await;
            }
            false
        }
    })
    .await;

    let live: Vec<String> = ids
        .iter()
        .zip(&deleted)
        .filter(|(_, d)| !**d)
        .map(|(id, _)| id.clone())
        .collect();
    let mut tickets = Vec::with_capacity(live.len());
    for chunk in live.chunks(500) {
        let v = ok(s, "get_tickets", json!({"ids": chunk, "verbose": true})).await;
        for t in v["tickets"].as_array().expect("tickets") {
            let t: Ticket = serde_json::from_value(t.clone()).expect("ticket record");
            tickets.push(t);
        }
    }
    assert_eq!(tickets.len(), live.len());
    tickets
}

// ---------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------

/// Keeps the characters of a raw word that are safe as a bare query word.
fn clean_word(raw: &str) -> Option<String> {
    let w: String = raw
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '\'' | '_'))
        .collect();
    let w = w.trim_matches(|c| c == '.' || c == '\'').to_string();
    (!w.is_empty() && !analyze_plain(&w).is_empty()).then_some(w)
}

/// Raw whitespace-separated words of some text of a ticket.
fn raw_words(t: &Ticket, rng: &mut Rng) -> Vec<String> {
    let text = match rng.below(4) {
        0 | 1 => t.subject.clone(),
        2 => t.body.clone(),
        _ => t
            .changes
            .iter()
            .filter_map(|c| c.body.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    text.split_whitespace().map(str::to_string).collect()
}

struct Gen<'a> {
    rng: Rng,
    tickets: &'a [Ticket],
}

fn date_of(epoch: i64) -> jiff::civil::Date {
    Timestamp::from_second(epoch).unwrap().to_zoned(tz()).date()
}

impl<'a> Gen<'a> {
    fn ticket(&mut self) -> &'a Ticket {
        let i = self.rng.below(self.tickets.len());
        &self.tickets[i]
    }

    /// A word that occurs in some ticket (or, sometimes, in none).
    fn word(&mut self) -> String {
        for _ in 0..20 {
            if self.rng.chance(10) {
                return format!("{}{}", rare_word(&mut self.rng), "qx");
            }
            if self.rng.chance(30) {
                let w = self.rng.pick(WORDS).to_string();
                if let Some(w) = clean_word(&w) {
                    return w;
                }
                continue;
            }
            let t = self.ticket();
            let words = raw_words(t, &mut self.rng);
            if words.is_empty() {
                continue;
            }
            let raw = self.rng.pick(&words).clone();
            if let Some(w) = clean_word(&raw) {
                return w;
            }
        }
        "disk".to_string()
    }

    /// Two or three consecutive words of some ticket, quoted.
    fn phrase(&mut self) -> String {
        for _ in 0..20 {
            let t = self.ticket();
            let words = raw_words(t, &mut self.rng);
            let n = 2 + self.rng.below(2);
            if words.len() < n {
                continue;
            }
            let at = self.rng.below(words.len() - n + 1);
            let cleaned: Vec<String> = words[at..at + n]
                .iter()
                .filter_map(|w| clean_word(w))
                .collect();
            if cleaned.len() >= 2 {
                return format!("\"{}\"", cleaned.join(" "));
            }
        }
        "\"big cats\"".to_string()
    }

    fn text_value(&mut self) -> String {
        if self.rng.chance(30) {
            self.phrase()
        } else {
            self.word()
        }
    }

    /// A value for a keyword field: one a ticket has (in random case), or an unknown one.
    fn keyword(&mut self, field: &str) -> String {
        let t = self.ticket();
        let pool: Vec<String> = match field {
            "status" => STATUSES.iter().map(|s| s.to_string()).collect(),
            "type" => TYPES.iter().map(|s| s.to_string()).collect(),
            "category" => CATEGORIES.iter().map(|s| s.to_string()).collect(),
            "username" => vec![t.username.clone()],
            "assignees" => USERS.iter().map(|s| s.to_string()).collect(),
            "cc" => USERS.iter().chain(EMAILS).map(|s| s.to_string()).collect(),
            "tags" => TAGS.iter().map(|s| s.to_string()).collect(),
            "server" => SERVERS.iter().map(|s| s.to_string()).collect(),
            "jobs" => JOBS.iter().map(|s| s.to_string()).collect(),
            _ => unreachable!(),
        };
        let mut v = if self.rng.chance(8) {
            "nosuchvalue".to_string()
        } else {
            self.rng.pick(&pool).clone()
        };
        if v.is_empty() {
            v = "nobody".into();
        }
        if self.rng.chance(30) {
            v = v.to_uppercase();
        }
        if v.contains(' ') || self.rng.chance(15) {
            format!("\"{v}\"")
        } else {
            v
        }
    }

    fn keyword_field(&mut self) -> &'static str {
        const FIELDS: &[&str] = &[
            "status",
            "type",
            "category",
            "username",
            "assignees",
            "cc",
            "tags",
            "server",
            "jobs",
        ];
        FIELDS[self.rng.below(FIELDS.len())]
    }

    fn num_value(&mut self) -> String {
        let max = self.tickets.iter().map(|t| t.num).max().unwrap_or(1);
        let a = self.rng.range(1, max);
        let b = self.rng.range(a, max);
        match self.rng.below(7) {
            0 => format!("{a}"),
            1 => format!(">{a}"),
            2 => format!(">={a}"),
            3 => format!("<{a}"),
            4 => format!("<={a}"),
            5 => format!("{a}..{b}"),
            _ => {
                if self.rng.chance(50) {
                    format!("{a}..")
                } else {
                    format!("..{b}")
                }
            }
        }
    }

    /// A date value (with an optional comparison prefix) for the simple syntax.
    fn date_value(&mut self, field: &str) -> String {
        let epoch = {
            let t = self.ticket();
            match field {
                "due" if t.due > 0 => t.due,
                "due" => 1_735_689_600 + self.rng.range(-400, 400) * 86_400,
                "created" => t.created,
                _ => t.modified,
            }
        };
        let d = date_of(epoch);
        let text = match self.rng.below(14) {
            0 | 1 => d.to_string(),
            2 => format!("{:04}/{:02}/{:02}", d.year(), d.month(), d.day()),
            3 => format!("{:02}-{:02}-{:04}", d.month(), d.day(), d.year()),
            4 => format!("{:04}-{:02}", d.year(), d.month()),
            5 => format!("{:04}", d.year()),
            6 => format!("{epoch}"),
            7 => self
                .rng
                .pick(&["today", "now", "yesterday", "tomorrow"])
                .to_string(),
            8 => self.rng.pick(&["this month", "this year"]).to_string(),
            9 => {
                let e = date_of(epoch + self.rng.range(0, 200) * 86_400);
                return format!("{d}..{e}");
            }
            10 => return format!("{}..{}", d.year(), d.year() + self.rng.range(0, 1) as i16),
            11 if epoch <= Timestamp::now().as_second() => {
                return format!("{:04}-{:02}..today", d.year(), d.month())
            }
            _ => d.to_string(),
        };
        let op = *self.rng.pick(&["", "", ">", ">=", "<", "<=", "="]);
        format!("{op}{text}")
    }

    /// One unit of the simple syntax (no sign).
    fn unit(&mut self) -> String {
        match self.rng.below(20) {
            0..=5 => self.text_value(),
            6 => format!("subject:{}", self.text_value()),
            7 => format!("body:{}", self.text_value()),
            8 => format!("changes:{}", self.text_value()),
            9..=12 => {
                let f = self.keyword_field();
                format!("{f}:{}", self.keyword(f))
            }
            13 => {
                let f = self.keyword_field();
                format!("{f}:-{}", self.keyword(f))
            }
            14 => {
                let f = self.keyword_field();
                let (a, b) = (self.keyword(f), self.keyword(f));
                format!("{f}:{a}|{b}")
            }
            15 => format!("num:{}", self.num_value()),
            16 | 17 => format!("due:{}", self.date_value("due")),
            18 => format!("created:{}", self.date_value("created")),
            _ => format!("modified:{}", self.date_value("modified")),
        }
    }

    fn clause(&mut self) -> String {
        let sign = match self.rng.below(10) {
            0 => "+",
            1 | 2 => "-",
            _ => "",
        };
        if self.rng.chance(20) {
            // OR of bare/fielded units
            // A bare unit after a fielded one would inherit its field (`status:a|b`), so
            // later bare units name the default field.
            let n = 2 + self.rng.below(2);
            let mut parts: Vec<String> = (0..n).map(|_| self.unit()).collect();
            for i in 1..n {
                if !parts[i].contains(':') && parts[..i].iter().any(|p| p.contains(':')) {
                    parts[i] = format!("body:{}", parts[i]);
                }
            }
            return parts.join(if self.rng.chance(50) { "|" } else { " | " });
        }
        format!("{sign}{}", self.unit())
    }

    fn simple(&mut self) -> String {
        match self.rng.below(30) {
            0 => return "*".into(),
            1 => return format!("-{}", self.unit()),
            2 => return format!("-{} -{}", self.unit(), self.unit()),
            3 => return format!("* {}", self.unit()),
            _ => {}
        }
        let n = 1 + self.rng.below(3);
        (0..n).map(|_| self.clause()).collect::<Vec<_>>().join(" ")
    }

    fn px_value(&mut self, field: &str) -> String {
        let raw = match field {
            "subject" | "body" | "changes" => self.text_value().trim_matches('"').to_string(),
            "num" => self
                .rng
                .range(1, self.tickets.len() as i64 + 50)
                .to_string(),
            "due" | "created" | "modified" => {
                let v = self.date_value(field);
                let v = v.trim_start_matches(['>', '<', '=']);
                if v.contains("..") {
                    date_of(1_735_689_600).to_string()
                } else {
                    v.to_string()
                }
            }
            f => self.keyword(f).trim_matches('"').to_string(),
        };
        if field == "num" && self.rng.chance(50) {
            raw
        } else {
            serde_json::to_string(&raw).unwrap()
        }
    }

    fn px_comparison(&mut self) -> String {
        let field = *self.rng.pick(&[
            "subject",
            "body",
            "changes",
            "status",
            "type",
            "category",
            "tags",
            "assignees",
            "cc",
            "server",
            "jobs",
            "num",
            "due",
            "created",
            "modified",
            "subject",
            "body",
            "status",
        ]);
        let op = match field {
            "num" | "due" | "created" | "modified" => {
                *self.rng.pick(&["=", "==", ">", "<", ">=", "<=", "!~"])
            }
            _ => *self.rng.pick(&["=", "==", "=~", "=~", "!~"]),
        };
        let value = self.px_value(field);
        let field = if self.rng.chance(10) {
            field.to_uppercase()
        } else {
            field.to_string()
        };
        format!("{field} {op} {value}")
    }

    fn px_group(&mut self, depth: usize) -> String {
        let n = 1 + self.rng.below(3);
        let logic = *self.rng.pick(&[" & ", " && ", " | ", " || ", "&", "|"]);
        let items: Vec<String> = (0..n)
            .map(|_| {
                if depth < 3 && self.rng.chance(30) {
                    self.px_group(depth + 1)
                } else {
                    self.px_comparison()
                }
            })
            .collect();
        format!("({})", items.join(logic))
    }

    fn query(&mut self) -> String {
        if self.rng.chance(25) {
            self.px_group(0)
        } else {
            self.simple()
        }
    }
}

// ---------------------------------------------------------------------------------------
// The reference order
// ---------------------------------------------------------------------------------------

const SORTS: &[&str] = &[
    "_id",
    "num",
    "created",
    "modified",
    "due",
    "subject",
    "status",
    "type",
    "assignees",
    "tags",
];

/// A list's sort key as docs/search.md defines it: the alphabetically first value,
/// normalized as keywords are; empty for an empty list.
fn first_value(values: &[String]) -> String {
    values
        .iter()
        .map(|v| normalize_keyword(v))
        .filter(|v| !v.is_empty())
        .min()
        .unwrap_or_default()
}

/// SQLite's NOCASE: ASCII letters folded, every other byte compared as is.
fn nocase(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn sort_expected(rows: &mut [&Ticket], sort_by: &str, descending: bool) {
    rows.sort_by(|a, b| {
        let primary = match sort_by {
            "_id" | "num" => Ordering::Equal,
            "created" => a.created.cmp(&b.created),
            "modified" => a.modified.cmp(&b.modified),
            "due" => a.due.cmp(&b.due),
            "subject" => nocase(&a.subject, &b.subject),
            "status" => a.status.cmp(&b.status),
            "type" => a.kind.cmp(&b.kind),
            "assignees" => first_value(&a.assignees).cmp(&first_value(&b.assignees)),
            "tags" => first_value(&a.tags).cmp(&first_value(&b.tags)),
            other => panic!("sort {other}"),
        };
        let o = primary.then(a.num.cmp(&b.num));
        if descending {
            o.reverse()
        } else {
            o
        }
    });
}

async fn search_ids(
    s: &Server,
    query: &str,
    sort_by: &str,
    dir: i64,
    offset: usize,
    limit: usize,
) -> (Vec<String>, u64) {
    let (status, v) = s
        .call(
            "search_tickets",
            json!({"query": query, "offset": offset, "limit": limit, "sort_by": sort_by, "sort_dir": dir, "compact": true}),
        )
        .await;
    assert_eq!(
        (status, &v["code"]),
        (200, &json!(0)),
        "query {query:?}: {v}"
    );
    let ids = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["id"].as_str().expect("row id").to_string())
        .collect();
    (ids, v["list"]["length"].as_u64().expect("list.length"))
}

fn describe_diff(
    expected: &[String],
    got: &[String],
    by_id: &HashMap<String, (&Ticket, &Doc)>,
) -> String {
    let mut out = String::new();
    let missing: Vec<&String> = expected.iter().filter(|id| !got.contains(id)).collect();
    let extra: Vec<&String> = got.iter().filter(|id| !expected.contains(id)).collect();
    let _ = write!(
        out,
        "expected {} got {}; missing {} extra {}",
        expected.len(),
        got.len(),
        missing.len(),
        extra.len()
    );
    for id in missing.iter().take(2).chain(extra.iter().take(2)) {
        if let Some((t, d)) = by_id.get(*id) {
            let _ = write!(
                out,
                "\n  {id} #{} subject={:?} status={} due={} tags={:?} body={:?}\n    doc={:?}",
                t.num,
                t.subject,
                t.status,
                t.due,
                t.tags,
                t.body.chars().take(200).collect::<String>(),
                d
            );
        }
    }
    if missing.is_empty() && extra.is_empty() {
        let at = expected.iter().zip(got).position(|(a, b)| a != b);
        if let Some(at) = at {
            let show = |id: &String| {
                by_id.get(id).map(|(t, _)| {
                    format!(
                        "#{} {:?} due={} status={} type={}",
                        t.num, t.subject, t.due, t.status, t.kind
                    )
                })
            };
            let _ = write!(
                out,
                "; order differs at {at}: expected {:?} got {:?}",
                show(&expected[at]),
                show(&got[at])
            );
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_matches_in_memory_evaluator() {
    let started = Instant::now();
    let s = Arc::new(Server::start_with_env(&[("DOCKET_SERVER__TIMEZONE", TZ)]).await);
    let tickets = populate(&s).await;
    let populated = started.elapsed();
    let docs: Vec<Doc> = tickets.iter().map(ticket_doc).collect();
    let by_id: HashMap<String, (&Ticket, &Doc)> = tickets
        .iter()
        .zip(&docs)
        .map(|(t, d)| (t.id.clone(), (t, d)))
        .collect();

    let mut gen = Gen {
        rng: Rng::new(SEED ^ 0xABCD),
        tickets: &tickets,
    };
    let mut failures: Vec<String> = Vec::new();
    let (mut nonempty, mut not_all, mut pages) = (0usize, 0usize, 0usize);
    let mut queries = Vec::new();
    // A few fixed queries first, then random ones.
    for q in [
        "*",
        "",
        "-*",
        "disk",
        "+disk -full",
        "\"big cats\"",
        "cafe",
        "Café",
        "nancys",
        "Nancy's",
        "2.5.1",
        "grafana.example.com",
        "https://grafana.example.com/x",
        "grafana",
        "example",
        "\"grafana example\"",
        "\"example com\"",
        "\"com grafana\"",
        "grafana.example.org",
        "grafana_example_com",
        "db1.prod.acme.io",
        "db1",
        "acme",
        "\"prod acme\"",
        "body:status.acme.io",
        "subject:db1.prod",
        "e.g.",
        "main.rs",
        "\"main rs\"",
        "file.txt|docs.rs",
        "-github.com",
        "10.0.0.1",
        "v2.5.1-rc.2",
        "(body =~ \"grafana.example.com\" & subject !~ \"acme\")",
        "status:open|closed -tags:flag",
        "disk|network server",
        "tags:important|flag",
        "assignees:-bob",
        "cc:bob@example.com",
        "server:\"cache 4\"",
        "server:unicode-srv",
        "num:>100",
        "num:10..50",
        "due:<today",
        "-due:<today",
        "due:2025-03",
        "due:this month",
        "created:>=2024-01-01",
        "created:today",
        "modified:<2020",
        "(status = \"open\" & (tags = \"flag\" | subject =~ \"disk\"))",
        "(subject !~ \"disk\" & (num > 10 | due >= \"2025-01-01\"))",
        "(status == \"closed\" || status == \"resolved\")",
        "changes:created",
        "-changes:anything",
    ] {
        queries.push(q.to_string());
    }
    while queries.len() < QUERIES {
        queries.push(gen.query());
    }

    for (qi, query) in queries.iter().enumerate() {
        let ctx = LowerCtx {
            tz: tz(),
            now: Timestamp::now(),
        };
        let filter = match compile(query, &ctx) {
            Ok(f) => f,
            Err(e) => panic!("generated query {query:?} does not compile: {}", e.message),
        };
        let mut hits: Vec<&Ticket> = tickets
            .iter()
            .zip(&docs)
            .filter(|(_, d)| matches(&filter, d))
            .map(|(t, _)| t)
            .collect();
        let sort_by = SORTS[qi % SORTS.len()];
        let dir = if (qi / SORTS.len()).is_multiple_of(2) {
            -1
        } else {
            1
        };
        sort_expected(&mut hits, sort_by, dir < 0);
        let expected: Vec<String> = hits.iter().map(|t| t.id.clone()).collect();
        if !expected.is_empty() {
            nonempty += 1;
        }
        if expected.len() < tickets.len() {
            not_all += 1;
        }
        let (got, total) = search_ids(&s, query, sort_by, dir, 0, 10_000).await;
        if got != expected || total != expected.len() as u64 {
            failures.push(format!(
                "query {query:?} sort {sort_by} {dir} (list.length {total}): {}\n  filter {filter:?}",
                describe_diff(&expected, &got, &by_id)
            ));
            continue;
        }
        if qi % 3 == 0 {
            pages += 1;
            let offset = gen.rng.below(expected.len() + 3);
            let limit = 1 + gen.rng.below(40);
            let (got, total) = search_ids(&s, query, sort_by, dir, offset, limit).await;
            let want: Vec<String> = expected.iter().skip(offset).take(limit).cloned().collect();
            if got != want || total != expected.len() as u64 {
                failures.push(format!(
                    "query {query:?} sort {sort_by} {dir} page offset {offset} limit {limit}: list.length {total} (want {}), rows {got:?} want {want:?}",
                    expected.len()
                ));
            }
        }
    }
    let elapsed = started.elapsed();
    println!(
        "search_diff: {} tickets (populated in {populated:?}), {} queries ({nonempty} non-empty, {not_all} not matching everything), {pages} paging checks, {} failures, {elapsed:?} total",
        tickets.len(),
        queries.len(),
        failures.len()
    );
    for f in failures.iter().take(15) {
        println!("MISMATCH {f}\n");
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries disagree (see output)",
        failures.len(),
        queries.len()
    );
    assert!(
        nonempty * 10 >= queries.len() * 4,
        "only {nonempty} queries matched anything"
    );
    assert!(
        not_all * 10 >= queries.len() * 6,
        "only {not_all} queries matched less than everything"
    );
}
