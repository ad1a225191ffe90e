//! `docket config print-default`: every setting with its built-in default and a comment,
//! as a TOML file an operator can start from. The comments live here (not in `config.rs`)
//! and a test checks that every key of [`Config`] has one, so a new setting cannot be
//! added without saying what it does.

use std::fmt::Write as _;

use toml::Value;

use crate::config::Config;

/// One line per key path.
const DOCS: &[(&str, &str)] = &[
    ("server", "The HTTP server."),
    ("server.listen", "Address and port to listen on (--listen overrides)."),
    ("server.base_app_url", "The public URL of the server, used in links (emails, replies)."),
    ("server.timezone", "IANA time zone of due dates, date searches and the overdue schedule."),
    ("server.max_body_bytes", "Largest API request body (bytes); larger ones get HTTP 413."),
    ("server.header_read_timeout_sec", "Seconds a client may take to send a request's headers; then the connection is closed (slowloris)."),
    ("server.body_read_timeout_sec", "Seconds a request body may stall while the server waits for it."),
    ("server.idle_timeout_sec", "Seconds a keep-alive connection may sit with no request in flight (a streaming /events reply is never idle)."),
    ("server.max_connections", "Open connections at most; more are closed at once, with a log line."),
    ("server.max_header_bytes", "Largest request head (bytes); larger ones get HTTP 431."),
    ("server.trusted_proxies", "Reverse proxies (addresses or networks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]) whose X-Forwarded-For names the client (login brake per address, logs); empty: the TCP peer is the client."),
    ("database", "Where tickets and records are stored."),
    ("database.url", "Empty: sqlite://DATA/docket.db. Or sqlite://PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB for several nodes."),
    ("database.sync_commits", "SQLite: fsync every commit (survives power loss); false survives process crashes only."),
    ("database.max_connections", "PostgreSQL: connections one node keeps at most."),
    ("database.search_connections", "Searches that may run at once (their own connections, so reads and writes never wait for them)."),
    ("database.search_per_caller", "Searches one user or API key may run at once (its others wait their turn), so one caller cannot take every search connection."),
    ("database.search_timeout_sec", "Seconds one search may run; then it is stopped and the caller told to narrow the query."),
    ("database.search_timeout_penalty_sec", "After a caller's search ran to its deadline, its searches are refused for this long, doubling per repeat (at most 16x). 0: never."),
    ("tickets", "Ticket types, statuses, templates and notification rules."),
    ("tickets.types", "The ticket types: {id, title} each."),
    ("tickets.statuses", "The ticket statuses: {id, title} each (must include draft and open)."),
    ("tickets.priorities", "The priority levels, lowest first: {id, title} each. Their order is the order of priority:>=x and sort_by=priority."),
    ("tickets.default_priority", "The priority of a new ticket that names none, and of tickets stored before priorities existed (one of tickets.priorities)."),
    ("tickets.bulk_max_tickets", "Most tickets one bulk_update_tickets call may change; a query matching more is refused (narrow it, or raise this)."),
    ("tickets.new_ticket_template", "Fills what a create leaves out: type, status, priority, assignees, cc, notify, tags, due (e.g. \"3 days\")."),
    ("tickets.dedupe_closed_statuses", "Closed-like statuses: such a ticket no longer absorbs creates with its dedupe_key (also what metrics call resolved)."),
    ("tickets.email_enabled", "Send notification emails (only when smtp.host is set)."),
    ("tickets.email_debounce_sec", "Changes of one ticket make one \"updated\" email once it was quiet this many seconds."),
    ("tickets.email_notify_self", "Also email the person who made the change."),
    ("tickets.close_duplicates", "The status a ticket gets when it is marked duplicate_of another (e.g. \"closed\"); empty: its status is left alone."),
    ("tickets.overdue_schedule", "Local time (HH:MM, server.timezone) of the daily overdue reminders."),
    ("tickets.overdue_query", "Which tickets are overdue (search language); reminders go to their assignees."),
    ("files", "Ticket files."),
    ("files.store", "local (under DATA/files/) or s3."),
    ("files.expiration", "How long a file lives (\"90 days\", or seconds); then the sweeper removes it."),
    ("files.max_file_size", "Largest single file (bytes; HTTP 413 above)."),
    ("files.max_files", "Most files in one upload request."),
    ("files.max_request_size", "Largest multipart upload request as a whole (bytes)."),
    ("files.sweep_interval", "Seconds between expiry sweeps."),
    ("files.s3", "The S3-compatible store when files.store = \"s3\"."),
    ("files.s3.bucket", "Bucket name (required for s3)."),
    ("files.s3.endpoint", "e.g. http://127.0.0.1:9000 for a self-hosted store; empty = AWS."),
    ("files.s3.region", "Region (empty: the SDK's default)."),
    ("files.s3.access_key_id", "Access key (empty: from the environment)."),
    ("files.s3.secret_access_key", "Secret key (never logged)."),
    ("events", "The change feed: get_ticket_events, the event stream and the desk's live view (docs/feed.md)."),
    ("events.retention_days", "Days a ticket event is kept (fractions allowed); the hourly sweeper removes older ones, and an older cursor gets cursor_expired."),
    ("upstream", "An xyOps server to fetch job and alert records from."),
    ("upstream.base_url", "e.g. https://xyops.example.com (empty: local records only)."),
    ("upstream.api_key", "The xyOps API key (required with base_url)."),
    ("upstream.timeout", "Seconds one upstream request may take."),
    ("smtp", "Notification emails."),
    ("smtp.host", "The SMTP server (empty: no emails)."),
    ("smtp.port", "SMTP port."),
    ("smtp.tls", "starttls, tls (implicit TLS, e.g. port 465) or none."),
    ("smtp.username", "SMTP login (empty: none)."),
    ("smtp.password", "SMTP password (never logged)."),
    ("smtp.from", "The From address."),
    ("smtp.max_emails_per_day", "Cap per UTC day against a runaway (0 = none)."),
    ("smtp.timeout", "Seconds one SMTP conversation may take."),
    ("email_in", "Email in: a built-in SMTP receiver that opens tickets from mail and adds replies as comments (docs/email-in.md)."),
    ("email_in.enabled", "Run the SMTP receiver (off by default)."),
    ("email_in.listen", "Address and port of the SMTP receiver; put it behind your MX or on a trusted network (no TLS of its own)."),
    ("email_in.hostname", "The name the receiver gives in its SMTP greeting."),
    ("email_in.reply_address", "Base of reply addresses, e.g. tickets@example.com: notifications get Reply-To tickets+NUM.TOKEN@example.com and replies become comments. Empty: no reply addresses."),
    ("email_in.reply_secret", "Secret of the reply tokens (never logged); empty: generated once and kept in the database, shared by all nodes."),
    ("email_in.max_message_bytes", "Largest message accepted (bytes, attachments included); each attachment must also fit files.max_file_size and files.max_files."),
    ("email_in.max_recipients", "Recipients of one message at most."),
    ("email_in.max_connections", "Open SMTP connections at most (memory: up to this many messages of max_message_bytes at once)."),
    ("email_in.timeout_sec", "Seconds an SMTP client may stay silent before it is disconnected."),
    ("email_in.max_per_sender_per_hour", "Messages one sender address may send per rolling hour (per node); more get a temporary failure. 0: no limit."),
    ("email_in.intake", "Addresses that open tickets: [[email_in.intake]] address, type, category, tags (the tickets' defaults)."),
    ("metrics", "The Prometheus endpoint /metrics (docs/operations.md)."),
    ("metrics.enabled", "Serve /metrics (counts and timings only, never ticket contents)."),
    ("metrics.token", "When set, scrapes must send Authorization: Bearer TOKEN."),
    ("webhooks", "Endpoints that receive signed JSON POSTs: [[webhooks]] url, secret, events, internal (true: the endpoint also receives internal notes)."),
];

fn doc(path: &str) -> Option<&'static str> {
    DOCS.iter().find(|(k, _)| *k == path).map(|(_, d)| *d)
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table))
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Writes the plain keys of `table`, then its sub-tables and arrays of tables (TOML wants
/// plain keys before any header).
fn emit(out: &mut String, prefix: &str, table: &toml::Table) -> std::fmt::Result {
    // In the order of DOCS (the order of the sections and structs), not alphabetical.
    let mut keys: Vec<(&String, &Value)> = table.iter().collect();
    keys.sort_by_key(|(k, _)| {
        let path = join(prefix, k);
        DOCS.iter()
            .position(|(p, _)| *p == path)
            .unwrap_or(usize::MAX)
    });
    for &(key, value) in &keys {
        if value.is_table() || is_table_array(value) {
            continue;
        }
        let path = join(prefix, key);
        writeln!(out, "# {}", doc(&path).unwrap_or("(undocumented)"))?;
        writeln!(out, "{key} = {value}")?;
    }
    for &(key, value) in &keys {
        let path = join(prefix, key);
        match value {
            Value::Table(sub) => {
                writeln!(out, "\n# {}", doc(&path).unwrap_or("(undocumented)"))?;
                writeln!(out, "[{path}]")?;
                emit(out, &path, sub)?;
            }
            Value::Array(items) if is_table_array(value) => {
                writeln!(out, "\n# {}", doc(&path).unwrap_or("(undocumented)"))?;
                for item in items {
                    if let Value::Table(sub) = item {
                        writeln!(out, "[[{path}]]")?;
                        for (k, v) in sub {
                            writeln!(out, "{k} = {v}")?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The defaults as commented TOML.
pub fn commented_defaults() -> anyhow::Result<String> {
    let value = Value::try_from(Config::default())?;
    let Value::Table(table) = value else {
        anyhow::bail!("the configuration did not serialize to a table");
    };
    let mut out = String::from(
        "# Docket configuration: every setting with its default.\n\
         # Any key can also be set as DOCKET_<SECTION>__<KEY> (e.g. DOCKET_SERVER__LISTEN);\n\
         # the environment beats this file and command-line flags beat both.\n\n",
    );
    emit(&mut out, "", &table)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let p = join(prefix, k);
            if let Value::Table(sub) = v {
                // Template fields are optional and absent by default; the table has its doc.
                if p != "tickets.new_ticket_template" {
                    paths(&p, sub, out);
                }
            }
            out.push(p);
        }
    }

    #[test]
    fn every_setting_has_a_comment_and_the_output_reads_back_as_the_defaults() {
        let text = commented_defaults().expect("render");
        assert!(!text.contains("(undocumented)"), "{text}");
        let Ok(Value::Table(table)) = Value::try_from(Config::default()) else {
            panic!("config is a table");
        };
        let mut all = Vec::new();
        paths("", &table, &mut all);
        for p in all {
            assert!(doc(&p).is_some(), "no comment for {p}");
        }
        let parsed: Config = toml::from_str(&text).expect("valid TOML");
        assert_eq!(
            toml::to_string(&parsed).expect("serialize"),
            toml::to_string(&Config::default()).expect("serialize")
        );
    }
}
