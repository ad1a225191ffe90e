//! The command line over HTTP: `docket ticket …`, `category …`, `tag …`, and the
//! `api-key list|revoke`, `user list|disable|enable` commands, talking to a running server
//! through its API with an API key — so they work from any machine and respect the key's
//! privileges, unlike the data-directory commands that open the database directly.
//!
//! The server and key come from `--url`/`--api-key`, else `DOCKET_URL`/`DOCKET_API_KEY`, else
//! a client file (`--client-config FILE`, default `~/.config/docket/client.toml` with `url`
//! and `api_key`). Output is a table or a short text; `--json` prints the server's reply.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

/// Where the server is and how to sign in.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// Server URL, e.g. https://docket.example.com [env: DOCKET_URL].
    #[arg(long)]
    url: Option<String>,
    /// API key [env: DOCKET_API_KEY].
    #[arg(long)]
    api_key: Option<String>,
    /// Client file (TOML with `url` and `api_key`); default ~/.config/docket/client.toml.
    #[arg(long)]
    client_config: Option<PathBuf>,
    /// Print the server's JSON reply instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TicketCommand {
    /// List tickets (newest number first); filters are combined.
    List {
        #[command(flatten)]
        remote: Remote,
        /// Only this status (e.g. open).
        #[arg(long)]
        status: Option<String>,
        /// Only tickets assigned to this user.
        #[arg(long)]
        assignee: Option<String>,
        /// Only this type.
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long, default_value_t = 25)]
        limit: u64,
    },
    /// Search with the search language (docs/search.md), e.g. "disk status:open".
    Search {
        #[command(flatten)]
        remote: Remote,
        query: String,
        #[arg(long, default_value_t = 25)]
        limit: u64,
    },
    /// Show a ticket with its history (by number or id).
    Show {
        #[command(flatten)]
        remote: Remote,
        ticket: String,
    },
    /// Create a ticket; prints its number.
    Create {
        #[command(flatten)]
        remote: Remote,
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Comment on a ticket; BODY `-` reads standard input.
    Comment {
        #[command(flatten)]
        remote: Remote,
        ticket: String,
        body: String,
    },
    /// Change fields of a ticket.
    Update {
        #[command(flatten)]
        remote: Remote,
        ticket: String,
        #[arg(long)]
        subject: Option<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Write every ticket a search matches to standard output (or --output) as NDJSON
    /// (what `docket import` reads) or CSV, streamed as the server sends it.
    Export {
        #[command(flatten)]
        remote: Remote,
        /// The search (docs/search.md); every ticket you may see by default.
        #[arg(default_value = "*")]
        query: String,
        /// ndjson or csv.
        #[arg(long, default_value = "ndjson")]
        format: String,
        /// Comma-separated field names (the columns of a CSV).
        #[arg(long, value_delimiter = ',')]
        fields: Option<Vec<String>>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Set a ticket's status to closed (or --status), optionally with a comment.
    Close {
        #[command(flatten)]
        remote: Remote,
        ticket: String,
        #[arg(long, default_value = "closed")]
        status: String,
        #[arg(long)]
        comment: Option<String>,
    },
}

/// Ticket fields a create or update may set.
#[derive(Args, Debug, Clone, Default)]
pub struct Fields {
    /// Markdown body; `-` reads standard input.
    #[arg(long)]
    body: Option<String>,
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(long)]
    status: Option<String>,
    /// A configured priority level (e.g. urgent).
    #[arg(long)]
    priority: Option<String>,
    #[arg(long)]
    category: Option<String>,
    /// Comma-separated usernames.
    #[arg(long, value_delimiter = ',')]
    assignees: Option<Vec<String>>,
    /// Comma-separated tag ids.
    #[arg(long, value_delimiter = ',')]
    tags: Option<Vec<String>>,
    /// A date (2026-12-24), a relative time ("3 days") or epoch seconds.
    #[arg(long)]
    due: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// List them.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Create one.
    Create {
        #[command(flatten)]
        remote: Remote,
        /// The title (the id is made from it unless --id is given).
        title: String,
        #[arg(long)]
        id: Option<String>,
    },
}

/// `api-key list|revoke` and `user list|disable|enable` (the data-directory commands
/// `api-key create` and `user add|passwd` live in `cli.rs`).
#[derive(Debug)]
pub enum AccountCommand {
    ListKeys(Remote),
    RevokeKey(Remote, String),
    ListUsers(Remote),
    SetUserActive(Remote, String, bool),
}

/// A connection to one server.
struct Conn {
    http: reqwest::Client,
    base: String,
    key: String,
    json: bool,
}

#[derive(serde::Deserialize, Default)]
struct ClientFile {
    url: Option<String>,
    api_key: Option<String>,
}

impl Conn {
    fn new(remote: &Remote) -> anyhow::Result<Conn> {
        let file = match &remote.client_config {
            Some(path) => Some(path.clone()),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".config/docket/client.toml"))
                .filter(|p| p.is_file()),
        };
        let file: ClientFile = match file {
            Some(path) => toml::from_str(
                &std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("reading {}", path.display()))?,
            None => ClientFile::default(),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = remote
            .url
            .clone()
            .or_else(|| env("DOCKET_URL"))
            .or(file.url)
            .context(
                "no server: give --url, set DOCKET_URL, or put url in ~/.config/docket/client.toml",
            )?;
        let key = remote
            .api_key
            .clone()
            .or_else(|| env("DOCKET_API_KEY"))
            .or(file.api_key)
            .context("no API key: give --api-key, set DOCKET_API_KEY, or put api_key in ~/.config/docket/client.toml")?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Conn {
            http,
            base: url.trim_end_matches('/').to_string(),
            key,
            json: remote.json,
        })
    }

    /// Calls `/api/NS/NAME/v1`; a failure reply becomes an error with its code.
    async fn call(&self, ns: &str, name: &str, params: Value) -> anyhow::Result<Value> {
        let url = format!("{}/api/{ns}/{name}/v1", self.base);
        let res = self
            .http
            .post(&url)
            .header("X-API-Key", &self.key)
            .json(&params)
            .send()
            .await
            .with_context(|| format!("calling {url}"))?;
        let status = res.status();
        let v: Value = res
            .json()
            .await
            .with_context(|| format!("{name}: HTTP {status}, not a Docket reply"))?;
        if v["code"] != json!(0) {
            bail!(
                "{name}: {} ({})",
                v["description"].as_str().unwrap_or("error"),
                v["code"].as_str().unwrap_or("?")
            );
        }
        Ok(v)
    }

    /// Prints the reply as JSON when `--json`; true when it did.
    fn printed_json(&self, v: &Value) -> anyhow::Result<bool> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v)?);
        }
        Ok(self.json)
    }

    /// The id of a ticket given by number (`12`, `#12`) or id.
    async fn ticket_id(&self, ticket: &str) -> anyhow::Result<String> {
        match ticket_num(ticket) {
            Some(num) => {
                let v = self.call("app", "get_ticket", json!({"num": num})).await?;
                Ok(str_of(&v["ticket"]["id"]).to_string())
            }
            None => Ok(ticket.to_string()),
        }
    }
}

fn ticket_num(s: &str) -> Option<i64> {
    s.trim_start_matches('#').parse().ok()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn list_of(v: &Value) -> String {
    match v.as_array() {
        Some(a) if !a.is_empty() => a.iter().map(str_of).collect::<Vec<_>>().join(","),
        _ => "-".into(),
    }
}

/// Epoch seconds as local date and time (`-` for 0).
fn date_time(v: &Value) -> String {
    let Some(secs) = v.as_i64().filter(|&s| s > 0) else {
        return "-".into();
    };
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => secs.to_string(),
    }
}

fn date(v: &Value) -> String {
    let dt = date_time(v);
    dt.split(' ').next().unwrap_or("-").to_string()
}

/// Cuts a cell to `max` characters (with an ellipsis).
fn cell(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r', '\t'], " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// Prints rows under a header, columns padded to their widest cell; the last column is not
/// padded (it holds the long text).
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn read_text(arg: &str) -> anyhow::Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        Ok(s)
    } else {
        Ok(arg.to_string())
    }
}

impl Fields {
    fn into_params(self, params: &mut Map<String, Value>) -> anyhow::Result<()> {
        if let Some(b) = self.body {
            params.insert("body".into(), json!(read_text(&b)?));
        }
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                params.insert(k.into(), json!(v));
            }
        };
        put("type", self.kind);
        put("status", self.status);
        put("priority", self.priority);
        put("category", self.category);
        put("due", self.due);
        if let Some(a) = self.assignees {
            params.insert("assignees".into(), json!(a));
        }
        if let Some(t) = self.tags {
            params.insert("tags".into(), json!(t));
        }
        Ok(())
    }
}

fn print_tickets(v: &Value) {
    let rows: Vec<Vec<String>> = v["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|t| {
                    vec![
                        format!("#{}", t["num"]),
                        str_of(&t["status"]).to_string(),
                        str_of(&t["type"]).to_string(),
                        cell(&list_of(&t["assignees"]), 20),
                        date(&t["due"]),
                        date_time(&t["modified"]),
                        cell(str_of(&t["subject"]), 70),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    table(
        &[
            "NUM",
            "STATUS",
            "TYPE",
            "ASSIGNEES",
            "DUE",
            "MODIFIED",
            "SUBJECT",
        ],
        &rows,
    );
    let total = v["list"]["length"].as_u64().unwrap_or(0);
    println!("({} of {total})", rows.len());
}

fn print_ticket(t: &Value) {
    println!("#{}  {}", t["num"], str_of(&t["subject"]));
    println!(
        "status: {}   type: {}   category: {}   due: {}",
        str_of(&t["status"]),
        str_of(&t["type"]),
        if str_of(&t["category"]).is_empty() {
            "-"
        } else {
            str_of(&t["category"])
        },
        date(&t["due"]),
    );
    println!(
        "assignees: {}   tags: {}   cc: {}",
        list_of(&t["assignees"]),
        list_of(&t["tags"]),
        list_of(&t["cc"])
    );
    println!(
        "created: {} by {}   modified: {}   id: {}",
        date_time(&t["created"]),
        str_of(&t["username"]),
        date_time(&t["modified"]),
        str_of(&t["id"])
    );
    let body = str_of(&t["body"]).trim();
    if !body.is_empty() {
        println!("\n{body}");
    }
    let changes = t["changes"].as_array().cloned().unwrap_or_default();
    if !changes.is_empty() {
        println!("\nHistory:");
        for c in &changes {
            let what = match str_of(&c["type"]) {
                "comment" => format!("comment: {}", str_of(&c["body"]).trim()),
                kind => {
                    let key = str_of(&c["key"]);
                    let value = match &c["value"] {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        Value::Array(_) => list_of(&c["value"]),
                        other => other.to_string(),
                    };
                    let label = if key.is_empty() { kind } else { key };
                    if value.is_empty() {
                        label.to_string()
                    } else {
                        format!("{label}: {value}")
                    }
                }
            };
            println!(
                "  {}  {}  {}",
                date_time(&c["date"]),
                str_of(&c["username"]),
                what.replace('\n', "\n    ")
            );
        }
    }
    let files = t["files"].as_array().cloned().unwrap_or_default();
    if !files.is_empty() {
        println!("\nFiles:");
        for f in &files {
            println!("  {}  ({} bytes)", str_of(&f["filename"]), f["size"]);
        }
    }
}

/// Runs a `ticket` subcommand.
pub async fn ticket(command: TicketCommand) -> anyhow::Result<()> {
    match command {
        TicketCommand::List {
            remote,
            status,
            assignee,
            kind,
            limit,
        } => {
            let mut terms = Vec::new();
            if let Some(s) = status {
                terms.push(format!("status:{s}"));
            }
            if let Some(a) = assignee {
                terms.push(format!("assignees:{a}"));
            }
            if let Some(k) = kind {
                terms.push(format!("type:{k}"));
            }
            let query = if terms.is_empty() {
                "*".into()
            } else {
                terms.join(" ")
            };
            search(&remote, &query, limit).await
        }
        TicketCommand::Search {
            remote,
            query,
            limit,
        } => search(&remote, &query, limit).await,
        TicketCommand::Show { remote, ticket } => {
            let conn = Conn::new(&remote)?;
            let params = match ticket_num(&ticket) {
                Some(num) => json!({"num": num}),
                None => json!({"id": ticket}),
            };
            let v = conn.call("app", "get_ticket", params).await?;
            if !conn.printed_json(&v)? {
                print_ticket(&v["ticket"]);
            }
            Ok(())
        }
        TicketCommand::Create {
            remote,
            subject,
            fields,
        } => {
            let conn = Conn::new(&remote)?;
            let mut params = Map::new();
            params.insert("subject".into(), json!(subject));
            fields.into_params(&mut params)?;
            let v = conn
                .call("app", "create_ticket", Value::Object(params))
                .await?;
            if !conn.printed_json(&v)? {
                let t = &v["ticket"];
                println!("Created ticket #{} ({})", t["num"], str_of(&t["id"]));
            }
            Ok(())
        }
        TicketCommand::Comment {
            remote,
            ticket,
            body,
        } => {
            let conn = Conn::new(&remote)?;
            let id = conn.ticket_id(&ticket).await?;
            let body = read_text(&body)?;
            let v = conn
                .call(
                    "app",
                    "add_ticket_change",
                    json!({"id": id, "change": {"type": "comment", "body": body}}),
                )
                .await?;
            if !conn.printed_json(&v)? {
                println!("Commented on ticket #{}", v["ticket"]["num"]);
            }
            Ok(())
        }
        TicketCommand::Update {
            remote,
            ticket,
            subject,
            fields,
        } => {
            let conn = Conn::new(&remote)?;
            let mut params = Map::new();
            params.insert("id".into(), json!(conn.ticket_id(&ticket).await?));
            if let Some(s) = subject {
                params.insert("subject".into(), json!(s));
            }
            fields.into_params(&mut params)?;
            if params.len() == 1 {
                bail!("nothing to change: give --status, --assignees, --tags, … (see --help)");
            }
            let v = conn
                .call("app", "update_ticket", Value::Object(params))
                .await?;
            if !conn.printed_json(&v)? {
                println!("Updated ticket #{}", v["ticket"]["num"]);
            }
            Ok(())
        }
        TicketCommand::Export {
            remote,
            query,
            format,
            fields,
            output,
        } => export(&remote, &query, &format, fields, output).await,
        TicketCommand::Close {
            remote,
            ticket,
            status,
            comment,
        } => {
            let conn = Conn::new(&remote)?;
            let id = conn.ticket_id(&ticket).await?;
            if let Some(c) = comment {
                let body = read_text(&c)?;
                conn.call(
                    "app",
                    "add_ticket_change",
                    json!({"id": id, "change": {"type": "comment", "body": body}}),
                )
                .await?;
            }
            let v = conn
                .call("app", "update_ticket", json!({"id": id, "status": status}))
                .await?;
            if !conn.printed_json(&v)? {
                println!("Ticket #{} is {status}", v["ticket"]["num"]);
            }
            Ok(())
        }
    }
}

/// Streams `export_tickets` to a file or standard output, chunk by chunk.
async fn export(
    remote: &Remote,
    query: &str,
    format: &str,
    fields: Option<Vec<String>>,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::io::Write;
    let conn = Conn::new(remote)?;
    let url = format!("{}/api/app/export_tickets/v1", conn.base);
    let mut params = json!({"query": query, "format": format});
    if let Some(f) = fields {
        params["fields"] = json!(f);
    }
    // No overall timeout: a large export takes as long as it takes.
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()?;
    let mut res = http
        .post(&url)
        .header("X-API-Key", &conn.key)
        .json(&params)
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let kind = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if kind.starts_with("application/json") {
        let v: Value = res
            .json()
            .await
            .context("export_tickets: not a Docket reply")?;
        bail!(
            "export_tickets: {} ({})",
            v["description"].as_str().unwrap_or("error"),
            v["code"].as_str().unwrap_or("?")
        );
    }
    let mut out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    while let Some(chunk) = res
        .chunk()
        .await
        .context("export_tickets: the transfer broke off (the file is incomplete)")?
    {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}

async fn search(remote: &Remote, query: &str, limit: u64) -> anyhow::Result<()> {
    let conn = Conn::new(remote)?;
    let v = conn
        .call(
            "app",
            "search_tickets",
            json!({"query": query, "limit": limit, "sort_by": "num", "sort_dir": -1, "compact": 1}),
        )
        .await?;
    if !conn.printed_json(&v)? {
        print_tickets(&v);
    }
    Ok(())
}

/// `category …` (`tag` = false) or `tag …` (`tag` = true).
pub async fn directory(command: DirectoryCommand, tag: bool) -> anyhow::Result<()> {
    let (list, create, one) = if tag {
        ("get_tags", "create_tag", "tag")
    } else {
        ("get_categories", "create_category", "category")
    };
    match command {
        DirectoryCommand::List { remote } => {
            let conn = Conn::new(&remote)?;
            let v = conn.call("app", list, json!({})).await?;
            if !conn.printed_json(&v)? {
                let rows: Vec<Vec<String>> = v["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|r| {
                                vec![
                                    str_of(&r["id"]).to_string(),
                                    date_time(&r["created"]),
                                    cell(str_of(&r["title"]), 60),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["ID", "CREATED", "TITLE"], &rows);
            }
            Ok(())
        }
        DirectoryCommand::Create { remote, title, id } => {
            let conn = Conn::new(&remote)?;
            let mut params = json!({"title": title});
            if let Some(id) = id {
                params["id"] = json!(id);
            }
            let v = conn.call("app", create, params).await?;
            if !conn.printed_json(&v)? {
                println!("Created {one} {}", str_of(&v[one]["id"]));
            }
            Ok(())
        }
    }
}

/// `api-key list|revoke`, `user list|disable|enable`.
pub async fn account(command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::ListKeys(remote) => {
            let conn = Conn::new(&remote)?;
            let v = conn.call("app", "get_api_keys", json!({})).await?;
            if !conn.printed_json(&v)? {
                let rows: Vec<Vec<String>> = v["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|k| {
                                let privileges = k["privileges"]
                                    .as_object()
                                    .map(|p| {
                                        p.iter()
                                            .filter(|(_, on)| on.as_bool().unwrap_or(false))
                                            .map(|(n, _)| n.as_str())
                                            .collect::<Vec<_>>()
                                            .join(",")
                                    })
                                    .unwrap_or_default();
                                vec![
                                    str_of(&k["id"]).to_string(),
                                    if k["active"] == json!(true) {
                                        "yes"
                                    } else {
                                        "no"
                                    }
                                    .into(),
                                    str_of(&k["mask"]).to_string(),
                                    cell(&privileges, 40),
                                    date_time(&k["created"]),
                                    cell(str_of(&k["title"]), 50),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(
                    &["ID", "ACTIVE", "KEY", "PRIVILEGES", "CREATED", "TITLE"],
                    &rows,
                );
            }
            Ok(())
        }
        AccountCommand::RevokeKey(remote, id) => {
            let conn = Conn::new(&remote)?;
            // Disabled rather than deleted: the record stays, so what it did can still be
            // traced to it, and it can never authenticate again.
            let v = conn
                .call("app", "update_api_key", json!({"id": id, "active": false}))
                .await?;
            if !conn.printed_json(&v)? {
                println!("Revoked API key {id}");
            }
            Ok(())
        }
        AccountCommand::ListUsers(remote) => {
            let conn = Conn::new(&remote)?;
            let v = conn.call("user", "admin_get_users", json!({})).await?;
            if !conn.printed_json(&v)? {
                let rows: Vec<Vec<String>> = v["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .map(|u| {
                                let admin = u["privileges"]["admin"] == json!(true);
                                vec![
                                    str_of(&u["username"]).to_string(),
                                    if u["active"] == json!(true) {
                                        "yes"
                                    } else {
                                        "no"
                                    }
                                    .into(),
                                    if admin { "yes" } else { "no" }.into(),
                                    date_time(&u["created"]),
                                    str_of(&u["email"]).to_string(),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                table(&["USERNAME", "ACTIVE", "ADMIN", "CREATED", "EMAIL"], &rows);
            }
            Ok(())
        }
        AccountCommand::SetUserActive(remote, username, active) => {
            let conn = Conn::new(&remote)?;
            let v = conn
                .call(
                    "user",
                    "admin_update",
                    json!({"username": username, "active": active}),
                )
                .await?;
            if !conn.printed_json(&v)? {
                let what = if active { "enabled" } else { "disabled" };
                println!("User {username} {what}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_one_line() {
        assert_eq!(cell("a\nb", 10), "a b");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
    }

    #[test]
    fn tickets_are_named_by_number_or_id() {
        assert_eq!(ticket_num("#12"), Some(12));
        assert_eq!(ticket_num("12"), Some(12));
        assert_eq!(ticket_num("tmk3abc"), None);
    }
}
