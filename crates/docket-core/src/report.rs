//! Ticket reports from xyOps records: a Job or an AlertInvocation (JSON as the reference
//! shapes them) becomes a Markdown body, a subject, and field values for the ticket.
//!
//! Pure: no IO. The records come from clients or another server, so nothing here trusts
//! their shape — every field is read leniently, and a field of the wrong type is treated as
//! missing. Record text reaches the Markdown only through the escaping filters below
//! (`cell`, `code`, `fence`, `quote`, `oneline`), so a log or message cannot break out of
//! its block and take over the rest of the report.

use jiff::tz::TimeZone;
use serde::Serialize;
use serde_json::{Map, Value};

/// The built-in templates, shipped inside the binary.
pub const JOB_TEMPLATE: &str = include_str!("../templates/job.md.j2");
pub const ALERT_TEMPLATE: &str = include_str!("../templates/alert.md.j2");

const JOB: &str = "job.md";
const ALERT: &str = "alert.md";

/// A log longer than this (lines or bytes) is shown as its head and tail.
const LOG_MAX_LINES: usize = 200;
const LOG_MAX_BYTES: usize = 16 * 1024;
const LOG_HEAD_LINES: usize = 40;
const LOG_HEAD_BYTES: usize = 4 * 1024;
const LOG_TAIL_LINES: usize = 120;
const LOG_TAIL_BYTES: usize = 10 * 1024;

/// A template given instead of a built-in one: where it came from (for error messages)
/// and its text.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub origin: String,
    pub text: String,
}

/// The compiled job and alert templates.
pub struct ReportTemplates {
    env: minijinja::Environment<'static>,
    job_origin: String,
    alert_origin: String,
}

impl std::fmt::Debug for ReportTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportTemplates")
            .field("job", &self.job_origin)
            .field("alert", &self.alert_origin)
            .finish()
    }
}

impl Default for ReportTemplates {
    fn default() -> Self {
        // The built-in templates are checked by the tests below.
        ReportTemplates::new(None, None).unwrap_or_else(|e| panic!("built-in report template: {e}"))
    }
}

impl ReportTemplates {
    /// Compiles the templates, each override replacing its built-in one. A syntax error is
    /// returned with the template's origin, so a bad override stops the server at start.
    pub fn new(job: Option<TemplateSource>, alert: Option<TemplateSource>) -> Result<Self, String> {
        let mut env = minijinja::Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_filter("oneline", |s: String| oneline(&s));
        env.add_filter("cell", |s: String| cell(&s));
        env.add_filter("code", |s: String| code_span(&s));
        env.add_filter("fence", |s: String, info: Option<String>| {
            fence(&s, info.as_deref().unwrap_or(""))
        });
        env.add_filter("quote", |s: String| quote(&s));
        let builtin = |name: &str, text: &str| TemplateSource {
            origin: format!("built-in {name}.j2"),
            text: text.to_string(),
        };
        let job = job.unwrap_or_else(|| builtin(JOB, JOB_TEMPLATE));
        let alert = alert.unwrap_or_else(|| builtin(ALERT, ALERT_TEMPLATE));
        env.add_template_owned(JOB, job.text)
            .map_err(|e| format!("job report template ({}): {e}", job.origin))?;
        env.add_template_owned(ALERT, alert.text)
            .map_err(|e| format!("alert report template ({}): {e}", alert.origin))?;
        Ok(ReportTemplates {
            env,
            job_origin: job.origin,
            alert_origin: alert.origin,
        })
    }

    fn render(&self, name: &str, origin: &str, ctx: impl Serialize) -> Result<String, String> {
        let tpl = self.env.get_template(name).map_err(|e| e.to_string())?;
        tpl.render(ctx)
            .map(|s| tidy(&s))
            .map_err(|e| format!("the report template ({origin}) failed: {e}"))
    }
}

/// What a record contributes to a new ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub subject: String,
    pub body: String,
    /// Field values taken from the record; the service keeps only valid, existing ones.
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub server: Option<String>,
    pub jobs: Vec<String>,
}

/// Settings a report needs besides the record.
#[derive(Debug, Clone)]
pub struct ReportEnv<'a> {
    /// The public app URL links start with ("" = no links).
    pub base_app_url: &'a str,
    pub timezone: &'a TimeZone,
    /// The current time (epoch seconds), for "active for".
    pub now: i64,
}

// ---------------------------------------------------------------------------------------
// Lenient field access

fn text(rec: &Map<String, Value>, key: &str) -> String {
    match rec.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn seconds(rec: &Map<String, Value>, key: &str) -> Option<f64> {
    let n = match rec.get(key)? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (n.is_finite() && n > 0.0).then_some(n)
}

fn strings(rec: &Map<String, Value>, key: &str) -> Vec<String> {
    match rec.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                // Job.jobs holds `{id, reason}` objects.
                Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

fn flag(rec: &Map<String, Value>, key: &str) -> Option<bool> {
    match rec.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        _ => None,
    }
}

/// An id safe to put in a link: what xyOps generates, and nothing that could end the URL.
fn linkable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn link(env: &ReportEnv<'_>, page: &str, id: &str) -> String {
    let base = env.base_app_url.trim_end_matches('/');
    if base.is_empty() || !linkable(id) {
        return String::new();
    }
    format!("{base}/#{page}?id={id}")
}

/// A time as `2024-06-01 14:03:00 UTC` in the configured zone ("" when missing).
pub fn format_time(secs: Option<f64>, tz: &TimeZone) -> String {
    let Some(secs) = secs else {
        return String::new();
    };
    match jiff::Timestamp::from_second(secs.floor() as i64) {
        Ok(ts) => ts
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => String::new(),
    }
}

/// A duration as `3.2s`, `4m 05s`, `2h 03m 04s`, `1d 2h 03m`.
pub fn format_duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return String::new();
    }
    if secs < 60.0 {
        let s = format!("{secs:.1}");
        return format!("{}s", s.trim_end_matches(".0"));
    }
    let total = secs.round() as u64;
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else {
        format!("{m}m {s:02}s")
    }
}

// ---------------------------------------------------------------------------------------
// Markdown escaping filters

/// Whitespace (newlines included) folded to single spaces.
pub fn oneline(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Text for a table cell: one line, `|` escaped.
pub fn cell(s: &str) -> String {
    oneline(s).replace('|', "\\|")
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

/// An inline code span that holds any text, backticks included ("" for empty text).
pub fn code_span(s: &str) -> String {
    let s = oneline(s);
    if s.is_empty() {
        return String::new();
    }
    let ticks = "`".repeat(longest_backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{s}{pad}{ticks}")
}

/// A fenced code block that holds any text: its fence is longer than every backtick run in
/// the text (and at least three), so no line of the text can close it.
pub fn fence(s: &str, info: &str) -> String {
    let fence = "`".repeat((longest_backtick_run(s) + 1).max(3));
    let info: String = info
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'))
        .collect();
    let body = s.trim_end_matches(['\n', '\r']);
    format!("{fence}{info}\n{body}\n{fence}")
}

/// A block quote of the text, every line prefixed.
pub fn quote(s: &str) -> String {
    s.trim_end()
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                ">".to_string()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collapses runs of blank lines a template may leave and trims the ends.
fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    let mut in_fence: Option<String> = None;
    for line in s.trim().lines() {
        let trimmed = line.trim_start();
        // Inside a fenced block every line is content and kept as it is.
        if let Some(f) = &in_fence {
            if trimmed.starts_with(f.as_str())
                && trimmed.trim_end().chars().all(|c| c == '`')
                && trimmed.trim_end().len() >= f.len()
            {
                in_fence = None;
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if trimmed.starts_with("```") {
            let ticks: String = trimmed.chars().take_while(|c| *c == '`').collect();
            in_fence = Some(ticks);
        }
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The log as shown in a report: whole when short, else its first and last lines with a
/// note of what was left out in between. Returns the text and whether it was cut.
pub fn log_excerpt(log: &str) -> (String, bool) {
    let log = log.trim_end_matches(['\n', '\r']);
    let lines: Vec<&str> = log.lines().collect();
    if lines.len() <= LOG_MAX_LINES && log.len() <= LOG_MAX_BYTES {
        return (log.to_string(), false);
    }
    let mut head: Vec<String> = Vec::new();
    let mut used = 0;
    for line in lines.iter().take(LOG_HEAD_LINES) {
        let line = clip_line(line, LOG_HEAD_BYTES / 4);
        if used + line.len() > LOG_HEAD_BYTES {
            break;
        }
        used += line.len() + 1;
        head.push(line);
    }
    let mut tail: Vec<String> = Vec::new();
    used = 0;
    for line in lines.iter().skip(head.len()).rev().take(LOG_TAIL_LINES) {
        let line = clip_line(line, LOG_TAIL_BYTES / 4);
        if used + line.len() > LOG_TAIL_BYTES {
            break;
        }
        used += line.len() + 1;
        tail.push(line);
    }
    tail.reverse();
    let skipped = lines.len() - head.len() - tail.len();
    let skipped_bytes: usize = lines[head.len()..lines.len() - tail.len()]
        .iter()
        .map(|l| l.len() + 1)
        .sum();
    let mut out = head.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(&format!(
        "[… {skipped} lines ({skipped_bytes} bytes) left out …]"
    ));
    if !tail.is_empty() {
        out.push('\n');
        out.push_str(&tail.join("\n"));
    }
    (out, true)
}

/// A line cut to at most `max` bytes (on a character boundary), marked when cut.
fn clip_line(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [… line cut]", &line[..end])
}

// ---------------------------------------------------------------------------------------
// Job reports

/// The job's result code as text, and whether it counts as success.
fn job_result(rec: &Map<String, Value>) -> (String, bool, bool) {
    let complete = text(rec, "state") == "complete" || seconds(rec, "completed").is_some();
    let (code, ok) = match rec.get("code") {
        None | Some(Value::Null) => ("0".to_string(), true),
        Some(Value::Number(n)) => (n.to_string(), n.as_f64() == Some(0.0)),
        Some(Value::Bool(b)) => (if *b { "1" } else { "0" }.to_string(), !*b),
        Some(Value::String(s)) => (s.clone(), s.trim().is_empty() || s.trim() == "0"),
        Some(other) => (oneline(&other.to_string()), false),
    };
    let has_code = !matches!(rec.get("code"), None | Some(Value::Null));
    let complete = complete || has_code;
    (code, complete, complete && ok)
}

#[derive(Serialize)]
struct JobCtx<'a> {
    id: String,
    event: String,
    title: String,
    state: String,
    complete: bool,
    succeeded: bool,
    failed: bool,
    code: String,
    description: String,
    description_multiline: bool,
    server: String,
    started_at: String,
    completed_at: String,
    elapsed: String,
    tags: Vec<String>,
    log: String,
    log_snipped: bool,
    link: String,
    server_link: String,
    source: String,
    record: &'a Map<String, Value>,
}

/// The record as an object, with its non-blank `id`; `noun` names it in the error.
fn object_with_id<'a>(
    record: &'a Value,
    noun: &str,
) -> Result<(&'a Map<String, Value>, String), String> {
    let rec = record
        .as_object()
        .ok_or_else(|| format!("the {noun} record is not a JSON object"))?;
    let id = text(rec, "id");
    if id.trim().is_empty() {
        return Err(format!("the {noun} record has no id"));
    }
    Ok((rec, id))
}

/// The captured output of a job: xyOps keeps it in `output`; `log` is read too (records
/// written for older Docket versions, other producers). The first non-blank text wins.
fn job_log(rec: &Map<String, Value>) -> Option<&str> {
    ["output", "log"]
        .into_iter()
        .filter_map(|name| rec.get(name).and_then(Value::as_str))
        .find(|s| !s.trim().is_empty())
}

/// The report of a job record. The title of the job's event is read from `event_title`
/// (or `title`), which Docket adds when it fetches the job; the reference's Job has none.
pub fn job_report(
    templates: &ReportTemplates,
    record: &Value,
    env: &ReportEnv<'_>,
) -> Result<Report, String> {
    let (rec, id) = object_with_id(record, "job")?;
    let event = text(rec, "event");
    let title = oneline(
        &[text(rec, "event_title"), text(rec, "title")]
            .into_iter()
            .find(|t| !t.trim().is_empty())
            .unwrap_or_default(),
    );
    let (code, complete, succeeded) = job_result(rec);
    let started = seconds(rec, "started");
    let completed = seconds(rec, "completed");
    let span = match (started, completed) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    let elapsed = seconds(rec, "elapsed").or(span);
    let description = text(rec, "description").trim().to_string();
    let (log, log_snipped) = job_log(rec).map(log_excerpt).unwrap_or_default();
    let server = text(rec, "server");
    let ctx = JobCtx {
        link: link(env, "Job", &id),
        server_link: link(env, "Server", &server),
        id: id.clone(),
        event,
        title: title.clone(),
        state: text(rec, "state"),
        complete,
        succeeded,
        failed: complete && !succeeded,
        code: code.clone(),
        description_multiline: description.contains('\n'),
        description,
        server: server.clone(),
        started_at: format_time(started, env.timezone),
        completed_at: format_time(completed, env.timezone),
        elapsed: elapsed.map(format_duration).unwrap_or_default(),
        tags: strings(rec, "tags"),
        log,
        log_snipped,
        source: text(rec, "source"),
        record: rec,
    };
    let body = templates.render(
        JOB,
        &templates.job_origin,
        minijinja::context! { job => &ctx },
    )?;
    let id_line = oneline(&id);
    let suffix = if title.is_empty() {
        String::new()
    } else {
        format!(" ({title})")
    };
    let subject = if !complete {
        let state = oneline(&ctx.state);
        let state = if state.is_empty() || state == "active" {
            "running".to_string()
        } else {
            state
        };
        format!("Job #{id_line} is {state}{suffix}")
    } else if succeeded {
        format!("Job #{id_line} succeeded{suffix}")
    } else {
        format!(
            "Job #{id_line} failed with code: {}{suffix}",
            oneline(&code)
        )
    };
    Ok(Report {
        subject,
        body,
        category: Some(text(rec, "category")).filter(|c| !c.is_empty()),
        tags: ctx.tags.clone(),
        server: Some(server).filter(|s| !s.is_empty()),
        jobs: vec![id],
    })
}

// ---------------------------------------------------------------------------------------
// Alert reports

#[derive(Serialize)]
struct AlertJob {
    id: String,
    link: String,
}

#[derive(Serialize)]
struct AlertCtx<'a> {
    id: String,
    alert: String,
    title: String,
    message: String,
    server: String,
    groups: Vec<String>,
    exp: String,
    active: bool,
    cleared: bool,
    fired_at: String,
    cleared_at: String,
    active_for: String,
    jobs: Vec<AlertJob>,
    link: String,
    server_link: String,
    record: &'a Map<String, Value>,
}

/// The report of an alert invocation record. Its title is read from `title` (Docket adds the
/// alert definition's title when it fetches the invocation), else the alert's id is used.
pub fn alert_report(
    templates: &ReportTemplates,
    record: &Value,
    env: &ReportEnv<'_>,
) -> Result<Report, String> {
    let (rec, id) = object_with_id(record, "alert")?;
    let alert = text(rec, "alert");
    let title = oneline(
        &[text(rec, "title"), alert.clone(), id.clone()]
            .into_iter()
            .find(|t| !t.trim().is_empty())
            .unwrap_or_default(),
    );
    let fired = seconds(rec, "date");
    let modified = seconds(rec, "modified");
    let active = flag(rec, "active").unwrap_or(true);
    let active_for = match (fired, active, modified) {
        (Some(f), true, _) => Some(env.now as f64 - f),
        (Some(f), false, Some(m)) if m >= f => Some(m - f),
        _ => None,
    }
    .filter(|d| *d >= 0.0)
    .map(format_duration)
    .unwrap_or_default();
    let server = text(rec, "server");
    let jobs: Vec<String> = strings(rec, "jobs");
    let ctx = AlertCtx {
        link: link(env, "Alerts", &id),
        server_link: link(env, "Server", &server),
        id: id.clone(),
        alert,
        title: title.clone(),
        message: text(rec, "message").trim().to_string(),
        server: server.clone(),
        groups: strings(rec, "groups"),
        exp: text(rec, "exp"),
        active,
        cleared: !active,
        fired_at: format_time(fired, env.timezone),
        cleared_at: if active {
            String::new()
        } else {
            format_time(modified, env.timezone)
        },
        active_for,
        jobs: jobs
            .iter()
            .map(|j| AlertJob {
                id: j.clone(),
                link: link(env, "Job", j),
            })
            .collect(),
        record: rec,
    };
    let body = templates.render(
        ALERT,
        &templates.alert_origin,
        minijinja::context! { alert => &ctx },
    )?;
    let server_line = oneline(&server);
    let subject = if server_line.is_empty() {
        format!("Alert: {title}")
    } else {
        format!("Alert: {title} on {server_line}")
    };
    Ok(Report {
        subject,
        body,
        category: None,
        tags: Vec::new(),
        server: Some(server).filter(|s| !s.is_empty()),
        jobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> ReportEnv<'static> {
        static UTC: TimeZone = TimeZone::UTC;
        ReportEnv {
            base_app_url: "https://ops.example.com/",
            timezone: &UTC,
            now: 1_754_451_000,
        }
    }

    #[test]
    fn failed_job_report() {
        let t = ReportTemplates::default();
        let job = json!({
            "id": "jmdzer6zrju", "event": "event100", "event_title": "Nightly | backup",
            "code": 1, "description": "Exit code 1", "server": "db01", "state": "complete",
            "started": 1754450000.5, "completed": 1754450125, "tags": ["important", "flag"],
            "category": "general", "log": "line 1\n```\nrm -rf /\n````\nline 5\n"
        });
        let r = job_report(&t, &job, &env()).unwrap();
        assert_eq!(
            r.subject,
            "Job #jmdzer6zrju failed with code: 1 (Nightly | backup)"
        );
        assert!(r.body.contains("**failed** with code `1`"), "{}", r.body);
        assert!(r.body.contains("Nightly \\| backup"), "{}", r.body);
        assert!(r
            .body
            .contains("https://ops.example.com/#Job?id=jmdzer6zrju"));
        assert!(r.body.contains("2025-08-06 03:13:20 UTC"), "{}", r.body);
        assert!(r.body.contains("2m 05s"), "{}", r.body);
        // The log's longest backtick run is 4, so the fence is 5 long and closes last.
        assert!(
            r.body
                .contains("`````text\nline 1\n```\nrm -rf /\n````\nline 5\n`````"),
            "{}",
            r.body
        );
        assert_eq!(r.jobs, vec!["jmdzer6zrju"]);
        assert_eq!(r.category.as_deref(), Some("general"));
        assert_eq!(r.server.as_deref(), Some("db01"));
    }

    #[test]
    fn job_output_is_the_log() {
        let t = ReportTemplates::default();
        let output: String = (1..=1000).map(|i| format!("out {i}\n")).collect();
        let job = json!({"id": "j2", "code": 0, "output": output});
        let r = job_report(&t, &job, &env()).unwrap();
        assert!(r.body.contains("### Log (excerpt"), "{}", r.body);
        assert!(r.body.contains("out 1\n"), "{}", r.body);
        assert!(r.body.contains("out 1000\n"), "{}", r.body);
        assert!(!r.body.contains("out 500\n"), "{}", r.body);
        // Both present: `output` wins; a blank `output` falls back to `log`.
        let both = json!({"id": "j3", "output": "from output", "log": "from log"});
        let r = job_report(&t, &both, &env()).unwrap();
        assert!(r.body.contains("from output") && !r.body.contains("from log"));
        let blank = json!({"id": "j4", "output": "  \n", "log": "from log"});
        let r = job_report(&t, &blank, &env()).unwrap();
        assert!(r.body.contains("from log"), "{}", r.body);
        let odd = json!({"id": "j5", "output": 7, "log": "from log"});
        let r = job_report(&t, &odd, &env()).unwrap();
        assert!(r.body.contains("from log"), "{}", r.body);
    }

    #[test]
    fn odd_records_do_not_fail() {
        let t = ReportTemplates::default();
        for job in [
            json!({"id": "j1"}),
            json!({"id": "j1", "code": {"x": 1}, "started": "soon", "tags": "a,b", "log": 5, "elapsed": -3}),
            json!({"id": 7, "code": "warning", "completed": 1e300, "server": ["x"]}),
        ] {
            job_report(&t, &job, &env()).unwrap();
        }
        assert!(job_report(&t, &json!([1]), &env()).is_err());
        assert!(job_report(&t, &json!({"code": 1}), &env()).is_err());
        let ok = job_report(&t, &json!({"id": "j2", "code": 0, "completed": 5}), &env()).unwrap();
        assert_eq!(ok.subject, "Job #j2 succeeded");
        let running = job_report(&t, &json!({"id": "j3", "state": "active"}), &env()).unwrap();
        assert_eq!(running.subject, "Job #j3 is running");
        alert_report(
            &t,
            &json!({"id": "a1", "date": "x", "jobs": [1, null], "active": "yes"}),
            &env(),
        )
        .unwrap();
    }

    #[test]
    fn long_logs_lose_their_middle() {
        let log: String = (1..=5000).map(|i| format!("line {i}\n")).collect();
        let (out, cut) = log_excerpt(&log);
        assert!(cut);
        assert!(out.starts_with("line 1\n") && out.ends_with("line 5000"));
        assert!(out.contains("lines (") && !out.contains("line 2500\n"));
        assert!(out.len() < LOG_HEAD_BYTES + LOG_TAIL_BYTES + 100);
        let one_huge_line = "x".repeat(100_000);
        let (out, cut) = log_excerpt(&one_huge_line);
        assert!(cut && out.len() < 20_000);
        assert_eq!(log_excerpt("short\n"), ("short".to_string(), false));
    }

    #[test]
    fn alert_report_and_subject() {
        let t = ReportTemplates::default();
        let alert = json!({
            "id": "amdzer7xtk3", "alert": "active_jobs_high", "title": "Active jobs high",
            "active": true, "date": 1754450881, "exp": "monitors.active_jobs >= 1",
            "groups": ["main"], "jobs": ["jmdzer6zrju"], "message": "Active job count is too high: 1",
            "server": "sorbstack01"
        });
        let r = alert_report(&t, &alert, &env()).unwrap();
        assert_eq!(r.subject, "Alert: Active jobs high on sorbstack01");
        assert!(
            r.body.contains("> Active job count is too high: 1"),
            "{}",
            r.body
        );
        assert!(r.body.contains("1m 59s (still active)"), "{}", r.body);
        assert!(r.body.contains("#Server?id=sorbstack01"), "{}", r.body);
        assert!(r.body.contains("#Job?id=jmdzer6zrju"), "{}", r.body);
        assert_eq!(r.jobs, vec!["jmdzer6zrju"]);
    }

    #[test]
    fn escaping_helpers() {
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(code_span("`x"), "`` `x ``");
        assert_eq!(cell("a|b\nc"), "a\\|b c");
        assert_eq!(fence("plain", "text"), "```text\nplain\n```");
        assert_eq!(quote("a\n\nb"), "> a\n>\n> b");
        assert_eq!(format_duration(3.25), "3.2s");
        assert_eq!(format_duration(3725.0), "1h 02m 05s");
        assert!(ReportTemplates::new(
            Some(TemplateSource {
                origin: "x".into(),
                text: "{% if %}".into()
            }),
            None
        )
        .is_err());
    }
}
