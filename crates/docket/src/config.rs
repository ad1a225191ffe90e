//! The one configuration struct: built-in defaults, then the TOML file (`--config`), then
//! `DOCKET_<SECTION>__<KEY>` environment variables, then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use docket_core::rules::{Choice, NewTicketTemplate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub tickets: TicketsConfig,
    pub files: FilesConfig,
    pub events: EventsConfig,
    pub upstream: UpstreamConfig,
    pub smtp: SmtpConfig,
    pub email_in: EmailInConfig,
    pub metrics: MetricsConfig,
    /// Endpoints that receive signed JSON POSTs about ticket events (`[[webhooks]]`).
    pub webhooks: Vec<WebhookConfig>,
    /// The directory of the `--config` file (report template overrides live beside it).
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
}

/// An xyOps server that job and alert records not held locally are fetched from.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// e.g. `https://xyops.example.com` (empty: local records only).
    pub base_url: String,
    /// An xyOps API key (sent as `X-API-Key`).
    pub api_key: String,
    /// Seconds one fetch may take.
    pub timeout: u64,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &if self.api_key.is_empty() { "" } else { "***" })
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            base_url: String::new(),
            api_key: String::new(),
            timeout: 10,
        }
    }
}

/// The SMTP server notification emails go through.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// Empty: no emails are queued or sent.
    pub host: String,
    pub port: u16,
    /// `starttls`, `tls` (implicit TLS) or `none`.
    pub tls: String,
    pub username: String,
    pub password: String,
    /// The From address, e.g. `Docket <docket@example.com>`.
    pub from: String,
    /// At most this many emails are sent per day (UTC); 0 = no cap.
    pub max_emails_per_day: u64,
    /// Seconds one SMTP conversation may take.
    pub timeout: u64,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.password.is_empty() { "" } else { "***" },
            )
            .field("from", &self.from)
            .field("max_emails_per_day", &self.max_emails_per_day)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: String::new(),
            port: 587,
            tls: "starttls".into(),
            username: String::new(),
            password: String::new(),
            from: "Docket <docket@localhost>".into(),
            max_emails_per_day: 1000,
            timeout: 30,
        }
    }
}

/// Email in: the built-in SMTP receiver that turns mail into tickets and comments
/// (docs/email-in.md).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailInConfig {
    /// Off by default.
    pub enabled: bool,
    /// Address and port of the SMTP receiver.
    pub listen: String,
    /// The name in the SMTP greeting.
    pub hostname: String,
    /// The base of reply addresses, e.g. `tickets@example.com` (replies go to
    /// `tickets+NUM.TOKEN@example.com`); empty: notifications carry no reply address.
    pub reply_address: String,
    /// The secret of reply tokens; empty: one generated once and kept in the database.
    pub reply_secret: String,
    /// Largest message (bytes, attachments included); larger ones are refused.
    pub max_message_bytes: usize,
    /// Recipients of one message at most.
    pub max_recipients: usize,
    /// Open SMTP connections at most.
    pub max_connections: usize,
    /// Seconds a client may stay silent before the connection is closed.
    pub timeout_sec: u64,
    /// Messages one sender may send per rolling hour (0 = no limit).
    pub max_per_sender_per_hour: u32,
    /// The addresses that open tickets (`[[email_in.intake]]`).
    pub intake: Vec<IntakeConfig>,
}

impl std::fmt::Debug for EmailInConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailInConfig")
            .field("enabled", &self.enabled)
            .field("listen", &self.listen)
            .field("hostname", &self.hostname)
            .field("reply_address", &self.reply_address)
            .field(
                "reply_secret",
                &if self.reply_secret.is_empty() {
                    ""
                } else {
                    "***"
                },
            )
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_recipients", &self.max_recipients)
            .field("max_connections", &self.max_connections)
            .field("timeout_sec", &self.timeout_sec)
            .field("max_per_sender_per_hour", &self.max_per_sender_per_hour)
            .field("intake", &self.intake)
            .finish()
    }
}

impl Default for EmailInConfig {
    fn default() -> Self {
        EmailInConfig {
            enabled: false,
            listen: "127.0.0.1:2525".into(),
            hostname: "docket.localhost".into(),
            reply_address: String::new(),
            reply_secret: String::new(),
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 50,
            max_connections: 20,
            timeout_sec: 60,
            max_per_sender_per_hour: 30,
            intake: Vec::new(),
        }
    }
}

/// One intake address and what its tickets get.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    pub address: String,
    /// Ticket type (empty: `tickets.new_ticket_template` / the first type).
    #[serde(rename = "type")]
    pub kind: String,
    pub category: String,
    pub tags: Vec<String>,
}

/// The Prometheus endpoint `/metrics`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (it shows counts and timings, never ticket contents).
    pub enabled: bool,
    /// When set, scrapes must send `Authorization: Bearer TOKEN`.
    pub token: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: String::new(),
        }
    }
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("enabled", &self.enabled)
            .field("token", &if self.token.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// One webhook endpoint.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key of the `X-Docket-Signature` header.
    pub secret: String,
    /// Event names (`ticket_created`, `ticket_updated`, `ticket_commented`, `ticket_deleted`,
    /// `ticket_file_added`, or without the `ticket_` prefix); empty = all.
    pub events: Vec<String>,
    /// An endpoint of the team itself: it receives internal notes. Others get tickets
    /// without them, and no event for a change only an internal note made.
    pub internal: bool,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &if self.secret.is_empty() { "" } else { "***" })
            .field("events", &self.events)
            .field("internal", &self.internal)
            .finish()
    }
}

/// Ticket files: where they are stored, limits, expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// `local` (under the data directory) or `s3`.
    pub store: String,
    /// How long a file lives, e.g. `"5 years"`, `"90 days"`, or seconds.
    pub expiration: String,
    /// Largest single file (bytes).
    pub max_file_size: u64,
    /// Most files in one request.
    pub max_files: usize,
    /// Largest multipart upload request as a whole (bytes).
    pub max_request_size: u64,
    /// Seconds between runs of the expiry sweeper.
    pub sweep_interval: u64,
    pub s3: S3Config,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            store: "local".into(),
            expiration: "5 years".into(),
            max_file_size: 100 * 1024 * 1024,
            max_files: 20,
            max_request_size: 2100 * 1024 * 1024,
            sweep_interval: 3600,
            s3: S3Config::default(),
        }
    }
}

/// The change feed (`get_ticket_events`, the event stream, the desk's live view).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Days a ticket event stays in the feed (fractions allowed); the hourly sweeper
    /// removes older ones, and a cursor older than that gets `cursor_expired`.
    pub retention_days: f64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retention_days: docket_core::feed::DEFAULT_RETENTION_DAYS,
        }
    }
}

impl EventsConfig {
    /// How long events are kept.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.retention_days * 86_400.0)
    }
}

/// An S3-compatible object store (`files.store = "s3"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:9000` for a self-hosted store; empty = AWS.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// The public URL of the web app, used in links (emails, replies).
    pub base_app_url: String,
    /// IANA time zone for day-precision dates (due dates, date searches).
    pub timezone: String,
    /// Largest request body accepted (bytes); larger bodies get HTTP 413.
    pub max_body_bytes: usize,
    /// Seconds a client has to send a request's line and headers (slow senders, e.g.
    /// slowloris, are disconnected).
    pub header_read_timeout_sec: f64,
    /// Seconds a request body may send nothing while its handler waits for it.
    pub body_read_timeout_sec: f64,
    /// Seconds a kept-alive connection may stay open with no request in flight (a response
    /// still streaming, such as live updates, is not idle).
    pub idle_timeout_sec: f64,
    /// Open connections at most; beyond it new connections are closed at once and a line
    /// is logged. Keep it below the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// Largest request line plus headers (bytes); larger heads get HTTP 431.
    pub max_header_bytes: usize,
    /// Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the
    /// client; from any other peer the header is ignored. Empty: trust no one.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:5580".into(),
            base_app_url: "http://127.0.0.1:5580".into(),
            timezone: "UTC".into(),
            max_body_bytes: 8 * 1024 * 1024,
            header_read_timeout_sec: 10.0,
            body_read_timeout_sec: 30.0,
            idle_timeout_sec: 60.0,
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (default: `docket.db` inside the data directory), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` for several nodes on one database.
    pub url: String,
    /// SQLite: `true` fsyncs every commit (survives power loss), `false` survives process
    /// crashes. PostgreSQL follows the server's own `synchronous_commit`.
    pub sync_commits: bool,
    /// PostgreSQL: connections this node keeps open at most (besides the search ones).
    pub max_connections: u32,
    /// Connections only searches use, and so searches that run at once (more wait, up
    /// to `search_timeout_sec`): a slow search never holds a connection that reads of one
    /// ticket, writes or background work need.
    pub search_connections: u32,
    /// Searches one caller (a user or an API key) may run at once; its further searches
    /// wait for its own, so one caller cannot take every search connection.
    pub search_per_caller: u32,
    /// How long one search may run (seconds); the database stops it then and the caller
    /// gets "Search took longer than N s and was stopped".
    pub search_timeout_sec: f64,
    /// After a caller's search ran to its deadline, that caller's next searches are refused
    /// (`rate`) for this many seconds, doubling with each further one in a row (at most
    /// 16×; forgotten after 10 quiet minutes). 0: never.
    pub search_timeout_penalty_sec: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            sync_commits: true,
            max_connections: 16,
            search_connections: 3,
            search_per_caller: 2,
            search_timeout_sec: 10.0,
            search_timeout_penalty_sec: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsConfig {
    pub types: Vec<Choice>,
    pub statuses: Vec<Choice>,
    /// Priority levels, lowest first.
    pub priorities: Vec<Choice>,
    /// The level of new tickets that name none and of tickets from before priorities.
    pub default_priority: String,
    /// Most tickets one `bulk_update_tickets` call may change.
    pub bulk_max_tickets: u64,
    pub new_ticket_template: NewTicketTemplate,
    /// A ticket in one of these statuses no longer absorbs creates with its `dedupe_key`.
    pub dedupe_closed_statuses: Vec<String>,
    /// Send notification emails (needs `smtp.host`).
    pub email_enabled: bool,
    /// Changes and comments of a ticket within this many seconds make one "updated" email.
    pub email_debounce_sec: u64,
    /// Also email the person who made a change.
    pub email_notify_self: bool,
    /// The status a ticket gets when it is marked a duplicate of another (a status id;
    /// empty: left alone).
    pub close_duplicates: String,
    /// Local time (`HH:MM`, `server.timezone`) of the daily overdue reminders.
    pub overdue_schedule: String,
    /// The tickets that are overdue (search language); reminders go to their assignees.
    pub overdue_query: String,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        TicketsConfig {
            types: docket_core::rules::default_types(),
            statuses: docket_core::rules::default_statuses(),
            priorities: docket_core::rules::default_priorities(),
            default_priority: docket_core::rules::DEFAULT_PRIORITY.into(),
            bulk_max_tickets: 20_000,
            new_ticket_template: NewTicketTemplate::default(),
            dedupe_closed_statuses: docket_core::service::default_dedupe_closed_statuses(),
            email_enabled: true,
            email_debounce_sec: 30,
            email_notify_self: false,
            close_duplicates: String::new(),
            overdue_schedule: "04:30".into(),
            overdue_query: "status:open|in_progress|on_hold due:<today".into(),
        }
    }
}

/// The prefix of configuration environment variables.
const ENV_PREFIX: &str = "DOCKET_";

impl Config {
    /// Defaults, then `file`, then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                text.parse::<toml::Table>()
                    .with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, std::env::vars())?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .context("invalid configuration")?;
        config.validate()?;
        config.config_dir = file.and_then(Path::parent).map(Path::to_path_buf);
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.tickets.types.is_empty() || self.tickets.statuses.is_empty() {
            bail!("tickets.types and tickets.statuses must not be empty");
        }
        for required in ["draft", "open"] {
            if !self.tickets.statuses.iter().any(|s| s.id == required) {
                bail!("tickets.statuses must include {required:?}");
            }
        }
        self.validate_priorities()?;
        let tpl = &self.tickets.new_ticket_template;
        if let Some(kind) = tpl
            .kind
            .as_deref()
            .filter(|k| !self.tickets.types.iter().any(|t| t.id == *k))
        {
            bail!("tickets.new_ticket_template.type {kind:?} is not one of tickets.types");
        }
        if let Some(status) = tpl
            .status
            .as_deref()
            .filter(|s| !self.tickets.statuses.iter().any(|t| t.id == *s))
        {
            bail!("tickets.new_ticket_template.status {status:?} is not one of tickets.statuses");
        }
        let close = &self.tickets.close_duplicates;
        if !close.is_empty() && !self.tickets.statuses.iter().any(|t| t.id == *close) {
            bail!("tickets.close_duplicates {close:?} is not one of tickets.statuses");
        }
        self.time_zone()?;
        crate::wire::client_ip::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(anyhow::Error::msg)?;
        let up = &self.upstream;
        if !up.base_url.is_empty() {
            if !(up.base_url.starts_with("http://") || up.base_url.starts_with("https://")) {
                bail!(
                    "upstream.base_url must start with http:// or https://, not {:?}",
                    up.base_url
                );
            }
            if up.api_key.is_empty() {
                bail!("upstream.api_key is required when upstream.base_url is set");
            }
            if up.timeout == 0 {
                bail!("upstream.timeout must be at least 1 second");
            }
        }
        self.file_expiration()?;
        self.overdue_time()?;
        self.search_timeout()?;
        self.connection_limits()?;
        if self.database.search_connections == 0 {
            bail!("database.search_connections must be at least 1");
        }
        if !matches!(self.smtp.tls.as_str(), "none" | "starttls" | "tls") {
            bail!(
                "smtp.tls must be \"none\", \"starttls\" or \"tls\", not {:?}",
                self.smtp.tls
            );
        }
        for w in &self.webhooks {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                bail!(
                    "webhooks: url must start with http:// or https://, not {:?}",
                    w.url
                );
            }
            for e in &w.events {
                let full = if e.starts_with("ticket_") {
                    e.clone()
                } else {
                    format!("ticket_{e}")
                };
                if e != "*" && !docket_core::notify::EVENTS.contains(&full.as_str()) {
                    bail!(
                        "webhooks: unknown event {e:?}; events are {}",
                        docket_core::notify::EVENTS.join(", ")
                    );
                }
            }
        }
        self.validate_email_in()?;
        if !matches!(self.files.store.as_str(), "local" | "s3") {
            bail!(
                "files.store must be \"local\" or \"s3\", not {:?}",
                self.files.store
            );
        }
        if self.files.store == "s3" && self.files.s3.bucket.is_empty() {
            bail!("files.s3.bucket is required when files.store = \"s3\"");
        }
        if self.files.max_files == 0
            || self.files.max_file_size == 0
            || self.files.sweep_interval == 0
        {
            bail!("files.max_files, files.max_file_size and files.sweep_interval must be above 0");
        }
        let days = self.events.retention_days;
        if !(days.is_finite() && days > 0.0 && days <= 36_500.0) {
            bail!("events.retention_days must be above 0 and at most 36500, not {days}");
        }
        Ok(())
    }

    fn validate_email_in(&self) -> anyhow::Result<()> {
        let e = &self.email_in;
        if !e.enabled {
            return Ok(());
        }
        e.listen
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("email_in.listen {:?} is not ADDRESS:PORT", e.listen))?;
        if e.hostname.trim().is_empty() || e.hostname.chars().any(|c| c.is_whitespace()) {
            bail!(
                "email_in.hostname must be a host name, not {:?}",
                e.hostname
            );
        }
        if !e.reply_address.is_empty()
            && docket_core::email_in::reply::split_base(&e.reply_address).is_none()
        {
            bail!(
                "email_in.reply_address must be a plain address without '+', such as \"tickets@example.com\", not {:?}",
                e.reply_address
            );
        }
        if e.intake.is_empty() && e.reply_address.is_empty() {
            bail!("email_in is enabled but has neither [[email_in.intake]] addresses nor a reply_address");
        }
        if e.max_message_bytes < 1024
            || e.max_recipients == 0
            || e.max_connections == 0
            || e.timeout_sec == 0
        {
            bail!("email_in.max_message_bytes (at least 1024), max_recipients, max_connections and timeout_sec must be above 0");
        }
        for i in &e.intake {
            docket_core::ticket_input::check_email(&i.address)
                .map_err(|why| anyhow::anyhow!("email_in.intake: {why}"))?;
            if !i.kind.is_empty() && !self.tickets.types.iter().any(|t| t.id == i.kind) {
                bail!(
                    "email_in.intake {}: type {:?} is not one of tickets.types",
                    i.address,
                    i.kind
                );
            }
            if docket_core::email_in::reply::parse(&e.reply_address, &i.address).is_some() {
                bail!("email_in.intake {} looks like a reply address", i.address);
            }
        }
        Ok(())
    }

    /// The `[server]` connection limits, checked.
    fn validate_priorities(&self) -> anyhow::Result<()> {
        let t = &self.tickets;
        if t.priorities.is_empty() {
            bail!("tickets.priorities must not be empty");
        }
        let mut seen = std::collections::HashSet::new();
        for p in &t.priorities {
            if !docket_core::ids::is_valid_id(&p.id) {
                bail!(
                    "tickets.priorities: {:?} is not a valid id (1 to 64 lowercase letters, \
                     digits or underscores)",
                    p.id
                );
            }
            if !seen.insert(p.id.as_str()) {
                bail!("tickets.priorities lists {:?} twice", p.id);
            }
        }
        let ids = || {
            t.priorities
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !seen.contains(t.default_priority.as_str()) {
            bail!(
                "tickets.default_priority {:?} is not one of tickets.priorities ({})",
                t.default_priority,
                ids()
            );
        }
        if let Some(p) = t
            .new_ticket_template
            .priority
            .as_deref()
            .filter(|p| !seen.contains(p))
        {
            bail!(
                "tickets.new_ticket_template.priority {p:?} is not one of tickets.priorities ({})",
                ids()
            );
        }
        if t.bulk_max_tickets == 0 {
            bail!("tickets.bulk_max_tickets must be at least 1");
        }
        Ok(())
    }

    /// The configured priority levels as the stores rank them.
    pub fn priority_levels(&self) -> docket_core::rules::PriorityLevels {
        docket_core::rules::PriorityLevels {
            levels: self
                .tickets
                .priorities
                .iter()
                .map(|p| p.id.clone())
                .collect(),
            default: self.tickets.default_priority.clone(),
        }
    }

    pub fn connection_limits(&self) -> anyhow::Result<crate::server::Limits> {
        let s = &self.server;
        let secs = |name: &str, v: f64| {
            if (0.001..=86_400.0).contains(&v) {
                Ok(std::time::Duration::from_secs_f64(v))
            } else {
                Err(anyhow::anyhow!(
                    "server.{name} must be between 0.001 and 86400 seconds, not {v}"
                ))
            }
        };
        if s.max_connections == 0 {
            bail!("server.max_connections must be at least 1");
        }
        if s.max_header_bytes < 8192 {
            bail!("server.max_header_bytes must be at least 8192");
        }
        Ok(crate::server::Limits {
            header_read_timeout: secs("header_read_timeout_sec", s.header_read_timeout_sec)?,
            body_read_timeout: secs("body_read_timeout_sec", s.body_read_timeout_sec)?,
            idle_timeout: secs("idle_timeout_sec", s.idle_timeout_sec)?,
            max_connections: s.max_connections,
            max_header_bytes: s.max_header_bytes,
        })
    }

    /// `database.search_timeout_sec` as a duration (0.001 s to one day).
    pub fn search_timeout(&self) -> anyhow::Result<std::time::Duration> {
        let secs = self.database.search_timeout_sec;
        if !(0.001..=86_400.0).contains(&secs) {
            bail!(
                "database.search_timeout_sec must be between 0.001 and 86400 seconds, not {secs}"
            );
        }
        Ok(std::time::Duration::from_secs_f64(secs))
    }

    /// `files.expiration` in seconds.
    pub fn file_expiration(&self) -> anyhow::Result<i64> {
        docket_core::files::parse_duration(&self.files.expiration).with_context(|| {
            format!(
                "files.expiration {:?} is not understood; use e.g. \"5 years\", \"90 days\" or seconds",
                self.files.expiration
            )
        })
    }

    /// `tickets.overdue_schedule` as (hour, minute).
    pub fn overdue_time(&self) -> anyhow::Result<(i8, i8)> {
        let s = self.tickets.overdue_schedule.trim();
        let parsed = s
            .split_once(':')
            .and_then(|(h, m)| Some((h.parse::<i8>().ok()?, m.parse::<i8>().ok()?)));
        match parsed {
            Some((h, m)) if (0..24).contains(&h) && (0..60).contains(&m) => Ok((h, m)),
            _ => bail!("tickets.overdue_schedule must be HH:MM (24-hour), not {s:?}"),
        }
    }

    /// Whether emails are queued at all.
    pub fn emails_on(&self) -> bool {
        self.tickets.email_enabled && !self.smtp.host.trim().is_empty()
    }

    pub fn time_zone(&self) -> anyhow::Result<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.server.timezone)
            .with_context(|| format!("unknown server.timezone {:?}", self.server.timezone))
    }

    /// The database this config points at, given the data directory.
    pub fn database_target(&self, data_dir: &Path) -> anyhow::Result<DatabaseTarget> {
        let url = self.database.url.trim();
        if url.is_empty() {
            return Ok(DatabaseTarget::Sqlite(data_dir.join("docket.db")));
        }
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                bail!("database.url: sqlite:// needs a file path, e.g. sqlite:///var/lib/docket/docket.db");
            }
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_string()));
        }
        bail!(
            "database.url: unknown scheme in {:?}; use sqlite://PATH or postgres://USER@HOST/DB",
            redact(url)
        )
    }
}

/// Where the records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// The embedded default: one SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (several nodes may share it).
    Postgres(String),
}

/// Overlays `DOCKET_SECTION__KEY=value` variables onto the config table. Values are read as
/// TOML (numbers, booleans, arrays) and fall back to plain strings.
fn apply_env(
    table: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<()> {
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or(toml::Value::String(raw.clone()));
        let entry = table
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section_table) = entry.as_table_mut() else {
            bail!("environment variable {name}: [{section}] is not a section");
        };
        // Deeper keys nest: DOCKET_FILES__S3__BUCKET → [files.s3] bucket.
        let mut parts: Vec<&str> = key.split("__").collect();
        let last = parts.pop().unwrap_or_default().to_string();
        let mut target = section_table;
        for part in parts {
            target = target
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .with_context(|| format!("environment variable {name}: {part} is not a table"))?;
        }
        target.insert(last, value);
    }
    Ok(())
}

/// Hides a password in a database URL.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut table: toml::Table = "[server]\nlisten = \"0.0.0.0:1\"\ntimezone = \"UTC\""
            .parse()
            .unwrap();
        let vars = vec![
            (
                "DOCKET_SERVER__LISTEN".to_string(),
                "127.0.0.1:9".to_string(),
            ),
            (
                "DOCKET_SERVER__MAX_BODY_BYTES".to_string(),
                "1024".to_string(),
            ),
            ("DOCKET_ADMIN_PASSWORD".to_string(), "ignored".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        apply_env(&mut table, vars.into_iter()).unwrap();
        let config: Config = toml::Value::Table(table).try_into().unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9");
        assert_eq!(config.server.max_body_bytes, 1024);
        assert_eq!(config.server.timezone, "UTC");
    }

    #[test]
    fn template_must_use_configured_choices() {
        let mut c = Config::default();
        c.tickets.new_ticket_template.kind = Some("nonsense".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("new_ticket_template.type"));
        c.tickets.new_ticket_template.kind = Some("bug".into());
        c.tickets.new_ticket_template.status = Some("draft".into());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn upstream_needs_a_url_scheme_and_a_key() {
        let mut c = Config::default();
        c.upstream.base_url = "xyops.example.com".into();
        assert!(c.validate().unwrap_err().to_string().contains("http://"));
        c.upstream.base_url = "https://xyops.example.com".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("upstream.api_key"));
        c.upstream.api_key = "k-7f3q9z".into();
        assert!(c.validate().is_ok());
        assert!(
            !format!("{c:?}").contains("k-7f3q9z"),
            "the key shows in Debug output"
        );
    }

    #[test]
    fn database_urls() {
        let mut c = Config::default();
        let d = Path::new("/d");
        assert_eq!(
            c.database_target(d).unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("/d/docket.db"))
        );
        c.database.url = "sqlite:///x/y.db".into();
        assert_eq!(
            c.database_target(d).unwrap(),
            DatabaseTarget::Sqlite(PathBuf::from("/x/y.db"))
        );
        c.database.url = "postgres://u@h/db".into();
        assert_eq!(
            c.database_target(d).unwrap(),
            DatabaseTarget::Postgres("postgres://u@h/db".into())
        );
        c.database.url = "sqlite://".into();
        assert!(c.database_target(d).is_err());
        c.database.url = "mysql://u:secret@h/db".into();
        let err = c.database_target(d).unwrap_err().to_string();
        assert!(
            err.contains("unknown scheme") && !err.contains("secret"),
            "{err}"
        );
        assert_eq!(redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
    }
}
