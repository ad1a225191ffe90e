//! Realistic ticket data from a seeded generator: subjects and Markdown bodies from an ops
//! word list (with code blocks and URLs), comments, tags, assignees, statuses, due dates and
//! creation dates spread over three years.

use serde_json::{json, Value};

/// A small, fast, seeded PRNG (xorshift64*), so runs are repeatable without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

pub const WORDS: &[&str] = &[
    "disk",
    "full",
    "network",
    "latency",
    "timeout",
    "database",
    "replica",
    "primary",
    "backup",
    "restore",
    "deploy",
    "rollback",
    "release",
    "certificate",
    "expired",
    "memory",
    "leak",
    "cpu",
    "spike",
    "queue",
    "backlog",
    "worker",
    "crash",
    "restart",
    "kernel",
    "upgrade",
    "patch",
    "firewall",
    "dns",
    "resolver",
    "load",
    "balancer",
    "cache",
    "eviction",
    "index",
    "rebuild",
    "cron",
    "job",
    "failed",
    "alert",
    "monitor",
    "threshold",
    "storage",
    "volume",
    "snapshot",
    "cluster",
    "node",
    "pod",
    "container",
    "image",
    "registry",
    "pipeline",
    "build",
    "test",
    "flaky",
    "migration",
    "schema",
    "query",
    "slow",
    "lock",
    "deadlock",
    "connection",
    "pool",
    "exhausted",
    "quota",
    "billing",
    "invoice",
    "customer",
    "report",
    "dashboard",
    "graph",
    "metric",
    "log",
    "rotation",
    "retention",
    "archive",
    "ssh",
    "key",
    "rotate",
    "secret",
    "vault",
    "token",
    "session",
    "login",
    "password",
    "reset",
    "email",
    "smtp",
    "bounce",
    "webhook",
    "payload",
    "api",
    "gateway",
    "proxy",
    "tls",
    "handshake",
    "packet",
    "loss",
    "switch",
    "router",
    "power",
    "outage",
    "datacenter",
    "rack",
    "fan",
    "temperature",
    "battery",
];
pub const SERVERS: &[&str] = &[
    "db1", "db2", "web1", "web2", "web3", "cache1", "queue1", "build1",
];
pub const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin", "frank"];
pub const TAGS: &[&str] = &["important", "flag"];
pub const TYPES: &[&str] = &[
    "task", "bug", "feature", "question", "incident", "issue", "change",
];
pub const STATUSES: &[&str] = &[
    "open",
    "open",
    "in_progress",
    "on_hold",
    "resolved",
    "closed",
];

/// The word that half of all generated tickets carry (for the "half the corpus" query).
pub const HALF_WORD: &str = "common";

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fields of one new ticket, as `create_ticket` parameters.
pub fn ticket_params(rng: &mut Rng, now: i64) -> Value {
    let mut subject = format!(
        "{} {} on {}",
        capitalize(&words(rng, 1)),
        words(rng, 3),
        rng.pick(SERVERS)
    );
    if rng.chance(50) {
        subject.push_str(" common");
    }
    let n = 12 + rng.below(30);
    let mut body = format!("## Summary\n\n{}.\n\n", capitalize(&words(rng, n)));
    if rng.chance(40) {
        body.push_str(&format!(
            "```\n$ systemctl status {}\nerror: {} {}\n```\n\n",
            words(rng, 1),
            words(rng, 2),
            rng.below(1000)
        ));
    }
    if rng.chance(30) {
        body.push_str(&format!(
            "See https://wiki.example.com/runbooks/{} for the runbook.\n\n",
            words(rng, 1)
        ));
    }
    body.push_str(&format!("- {}\n- {}\n", words(rng, 5), words(rng, 4)));
    let assignees: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(USERS)).collect();
    let tags: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(TAGS)).collect();
    let due = if rng.chance(40) {
        now - 90 * 86_400 + rng.below(180) as i64 * 86_400
    } else {
        0
    };
    json!({
        "subject": subject,
        "body": body,
        "type": rng.pick(TYPES),
        "status": rng.pick(STATUSES),
        "assignees": dedup(assignees),
        "tags": dedup(tags),
        "server": rng.pick(SERVERS),
        "due": due,
    })
}

/// A comment body.
pub fn comment(rng: &mut Rng) -> String {
    let n = 6 + rng.below(20);
    format!("{}.", capitalize(&words(rng, n)))
}

/// A whole ticket record for bulk import: creation spread over three years, 0–20 comments.
pub fn ticket_record(rng: &mut Rng, now: i64) -> Value {
    let mut t = ticket_params(rng, now);
    let created = now - rng.below(3 * 365 * 86_400) as i64;
    let user = *rng.pick(USERS);
    let mut changes =
        vec![json!({"type": "change", "key": "created", "username": user, "date": created})];
    let mut date = created;
    for _ in 0..rng.below(21) {
        date += rng.below(3 * 86_400) as i64;
        changes.push(json!({"type": "comment", "username": rng.pick(USERS), "date": date, "body": comment(rng)}));
    }
    if let Value::Object(m) = &mut t {
        m.insert("username".into(), json!(user));
        m.insert("created".into(), json!(created));
        m.insert("modified".into(), json!(date));
        m.insert("changes".into(), Value::Array(changes));
    }
    t
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v.dedup();
    v
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
