//! Realistic ticket data from a seeded generator: subjects and Markdown bodies (with code
//! blocks and URLs) drawn from a vocabulary of a few thousand words with a Zipf-like
//! frequency, comments, tags, assignees, statuses, due dates and creation dates spread over
//! three years.
//!
//! Word frequencies (at any corpus size, per ticket): the ~100 ops words of [`WORDS`] are the
//! head of the distribution (each in 10–90 % of tickets), then ~3,000 made-up words down to
//! under 1 %. The words the bench scenarios search for are placed at fixed rates instead:
//! [`HALF_WORD`] in 50 % of tickets, `latency` in ~3 %, the phrase "disk full" in ~1.5 %
//! (and `disk`, `full` alone in ~2.5 % more each). Keyword fields are skewed the way a
//! tracker's history is: status `open` ~8 % (most old tickets are closed), type `bug` ~8 %,
//! tag `important` ~5 %.

use std::sync::OnceLock;

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
    /// True with probability `per_mille` / 1000.
    pub fn chance_per_mille(&mut self, per_mille: usize) -> bool {
        self.below(1000) < per_mille
    }
    /// An index into `cumulative` (ascending weights, last = total) drawn by weight.
    fn weighted(&mut self, cumulative: &[u64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(1).max(1);
        let x = self.next() % total;
        cumulative.partition_point(|&c| c <= x)
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
/// Words the bench scenarios search for: never drawn from the vocabulary, only placed at
/// their fixed rates (see the module doc).
const PLACED: &[&str] = &["latency", "disk", "full", HALF_WORD];

/// The word that half of all generated tickets carry (for the "half the corpus" query).
pub const HALF_WORD: &str = "common";

pub const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "xavier", "yolanda",
    "zoe", "arthur", "beatrice", "cedric", "delia", "edgar", "fiona", "gustav", "hilda",
];
/// Existing tags (a bench server has the default ones) and their rates in ‰ of tickets.
pub const TAGS: &[(&str, usize)] = &[("important", 50), ("flag", 80)];
/// Types and statuses with their weights (out of 100).
pub const TYPES: &[(&str, u64)] = &[
    ("task", 35),
    ("issue", 20),
    ("incident", 15),
    ("change", 10),
    ("bug", 8),
    ("question", 7),
    ("feature", 5),
];
pub const STATUSES: &[(&str, u64)] = &[
    ("closed", 72),
    ("resolved", 12),
    ("open", 8),
    ("in_progress", 5),
    ("on_hold", 3),
];

/// Made-up words after the ops words: the long tail of the vocabulary.
const TAIL_WORDS: usize = 3_000;
/// The Zipf exponent (1 is natural language's).
const ZIPF_S: f64 = 1.0;

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br",
    "cr", "dr", "fl", "gr", "pl", "pr", "sk", "sl", "sp", "st", "str", "tr", "th", "sh", "ch",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"];
const CODAS: &[&str] = &[
    "", "", "", "n", "r", "l", "s", "t", "x", "m", "nd", "rk", "st", "ng",
];

/// The vocabulary in rank order (ops words first) and its cumulative Zipf weights.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<u64>,
}

fn vocabulary() -> &'static Vocabulary {
    static VOCAB: OnceLock<Vocabulary> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let mut words: Vec<String> = WORDS
            .iter()
            .filter(|w| !PLACED.contains(w))
            .map(|w| w.to_string())
            .collect();
        let mut seen: std::collections::HashSet<String> = words.iter().cloned().collect();
        // A fixed seed: the vocabulary is the same for every run and every --seed.
        let mut rng = Rng::new(0x0D0C_CE75);
        while words.len() < WORDS.len() + TAIL_WORDS {
            let mut w = String::new();
            for _ in 0..2 + rng.below(2) {
                w.push_str(rng.pick::<&str>(ONSETS));
                w.push_str(rng.pick::<&str>(VOWELS));
            }
            w.push_str(rng.pick::<&str>(CODAS));
            // Nothing that stems to (or starts like) a placed word.
            if PLACED.iter().any(|p| w.starts_with(&p[..p.len().min(4)])) {
                continue;
            }
            if seen.insert(w.clone()) {
                words.push(w);
            }
        }
        let mut total = 0u64;
        let cumulative = (0..words.len())
            .map(|rank| {
                total += (1e9 / ((rank + 1) as f64).powf(ZIPF_S)) as u64;
                total
            })
            .collect();
        Vocabulary { words, cumulative }
    })
}

/// One word drawn by frequency.
fn word(rng: &mut Rng) -> &'static str {
    let v = vocabulary();
    &v.words[rng.weighted(&v.cumulative)]
}

fn words(rng: &mut Rng, n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word(rng));
    }
    out
}

fn weighted<'a>(rng: &mut Rng, choices: &[(&'a str, u64)]) -> &'a str {
    let mut total = 0;
    let cumulative: Vec<u64> = choices
        .iter()
        .map(|(_, w)| {
            total += w;
            total
        })
        .collect();
    choices[rng.weighted(&cumulative)].0
}

/// A host name out of ~150: a role and a number.
fn server(rng: &mut Rng) -> String {
    const ROLES: &[(&str, usize)] = &[
        ("web", 40),
        ("api", 30),
        ("db", 12),
        ("cache", 10),
        ("queue", 8),
        ("worker", 30),
        ("build", 10),
        ("lb", 4),
        ("mail", 3),
        ("dns", 3),
    ];
    let (role, n) = rng.pick(ROLES);
    format!("{role}{}", 1 + rng.below(*n))
}

/// Fields of one new ticket, as `create_ticket` parameters.
pub fn ticket_params(rng: &mut Rng, now: i64) -> Value {
    let host = server(rng);
    let first = capitalize(&words(rng, 1));
    let n = 2 + rng.below(3);
    let mut subject = format!("{first} {} on {host}", words(rng, n));
    // The placed words: latency (3 %), "disk full" (1.5 %), disk / full alone (2.5 % each).
    let mut extra = Vec::new();
    if rng.chance(3) {
        extra.push("latency");
    }
    if rng.chance_per_mille(15) {
        extra.push("disk full");
    }
    if rng.chance_per_mille(25) {
        extra.push("disk");
    }
    if rng.chance_per_mille(25) {
        extra.push("full");
    }
    let (in_subject, in_body) = if rng.chance(50) {
        (&extra[..], &[][..])
    } else {
        (&[][..], &extra[..])
    };
    for w in in_subject {
        subject.push(' ');
        subject.push_str(w);
    }
    if rng.chance(50) {
        subject.push(' ');
        subject.push_str(HALF_WORD);
    }
    let n = 12 + rng.below(30);
    let mut summary = words(rng, n);
    for w in in_body {
        summary.push(' ');
        summary.push_str(w);
        summary.push(' ');
        let n = 1 + rng.below(4);
        summary.push_str(&words(rng, n));
    }
    let mut body = format!("## Summary\n\n{}.\n\n", capitalize(&summary));
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
    let tags: Vec<&str> = TAGS
        .iter()
        .filter(|(_, rate)| rng.chance_per_mille(*rate))
        .map(|(tag, _)| *tag)
        .collect();
    let due = if rng.chance(40) {
        now - 90 * 86_400 + rng.below(180) as i64 * 86_400
    } else {
        0
    };
    json!({
        "subject": subject,
        "body": body,
        "type": weighted(rng, TYPES),
        "status": weighted(rng, STATUSES),
        "assignees": dedup(assignees),
        "tags": tags,
        "server": host,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frequency(tickets: &[Value], word: &str) -> f64 {
        let hits = tickets
            .iter()
            .filter(|t| {
                let mut text = format!("{} {}", t["subject"], t["body"]).to_lowercase();
                for c in t["changes"].as_array().into_iter().flatten() {
                    text.push(' ');
                    text.push_str(c["body"].as_str().unwrap_or_default());
                }
                text.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|w| w == word)
            })
            .count();
        hits as f64 / tickets.len() as f64
    }

    #[test]
    fn deterministic_per_seed_with_realistic_frequencies() {
        let gen = |seed| {
            let mut rng = Rng::new(seed);
            (0..4000)
                .map(|_| ticket_record(&mut rng, 1_700_000_000))
                .collect::<Vec<_>>()
        };
        let tickets = gen(7);
        assert_eq!(tickets, gen(7));
        assert_ne!(tickets, gen(8));
        assert!(vocabulary().words.len() > 3000);
        let half = frequency(&tickets, HALF_WORD);
        assert!((0.46..0.54).contains(&half), "{half}");
        let latency = frequency(&tickets, "latency");
        assert!((0.02..0.045).contains(&latency), "{latency}");
        let rare = frequency(&tickets, &vocabulary().words[2500]);
        assert!(rare < 0.03, "{rare}");
        let count = |key: &str, v: &str| {
            tickets
                .iter()
                .filter(|t| t[key] == v || t[key].as_array().is_some_and(|a| a.contains(&json!(v))))
                .count() as f64
                / tickets.len() as f64
        };
        assert!((0.05..0.11).contains(&count("status", "open")));
        assert!((0.05..0.11).contains(&count("type", "bug")));
        assert!((0.03..0.07).contains(&count("tags", "important")));
    }
}
