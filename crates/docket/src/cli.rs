//! Command-line interface: `serve`; data-directory commands (`api-key create`, `user
//! add|passwd`, `reindex`, `import`, `notify run-overdue`, `migrate`); `config
//! print-default`; and commands that talk to a running server over HTTP (`remote.rs`).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use docket_core::auth::Principal;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::config::Config;
use crate::remote::AccountCommand;

#[derive(Parser, Debug)]
#[command(
    name = "docket",
    version,
    about = "Docket: a ticket server speaking the xyOps Tickets API"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct Common {
    /// Data directory (database, files).
    #[arg(long, default_value = "./data", global = true)]
    data: PathBuf,
    /// TOML configuration file; DOCKET_<SECTION>__<KEY> variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP server.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Rebuild the search index from the ticket records.
    Reindex {
        #[command(flatten)]
        common: Common,
        /// Tickets per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Load-test a server speaking the xyOps Tickets API, or generate data.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Bulk-load NDJSON ticket records (one JSON object a line), or move from xyOps with
    /// --xyops BACKUP (its XYBK export: tickets keep their numbers and history; files,
    /// users with their passwords, tags, categories and roles come along).
    Import {
        #[command(flatten)]
        common: Common,
        /// The NDJSON file of ticket records, or - for standard input.
        #[arg(required_unless_present = "xyops", conflicts_with = "xyops")]
        file: Option<PathBuf>,
        /// Make the data directory if it does not exist yet.
        #[arg(long)]
        create: bool,
        /// An xyOps backup (XYBK NDJSON, plain or gzip), or - for standard input.
        #[arg(long, value_name = "BACKUP")]
        xyops: Option<PathBuf>,
        /// With --xyops: report what would be created, updated or skipped; write nothing.
        #[arg(long, requires = "xyops")]
        dry_run: bool,
        /// With --xyops: import tickets of xyOps type FROM as Docket type TO (repeatable).
        #[arg(long = "map-type", value_name = "FROM=TO", requires = "xyops")]
        map_type: Vec<String>,
        /// With --xyops: import tickets of xyOps status FROM as Docket status TO (repeatable).
        #[arg(long = "map-status", value_name = "FROM=TO", requires = "xyops")]
        map_status: Vec<String>,
    },
    /// Notifications: run the overdue reminders by hand.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Copy a SQLite data directory's database into PostgreSQL and verify the counts
    /// (safe to run again: what is there already is left alone).
    Migrate {
        /// The source: sqlite:DATA_DIR (or sqlite:FILE).
        #[arg(long)]
        from: String,
        /// The target: postgres://USER@HOST[:PORT]/DATABASE (must exist).
        #[arg(long)]
        to: String,
    },
    /// Print the OpenAPI 3.1 document of the API (what GET /api/openapi.json serves; the
    /// same as docs/openapi.json).
    Openapi,
    /// Show configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Tickets on a running server (DOCKET_URL, DOCKET_API_KEY): list, search, show,
    /// create, comment, update, close.
    Ticket {
        #[command(subcommand)]
        command: crate::remote::TicketCommand,
    },
    /// Categories on a running server: list, create.
    Category {
        #[command(subcommand)]
        command: crate::remote::DirectoryCommand,
    },
    /// Tags on a running server: list, create.
    Tag {
        #[command(subcommand)]
        command: crate::remote::DirectoryCommand,
    },
}

#[derive(Subcommand, Debug)]
enum NotifyCommand {
    /// Queue today's overdue reminders now (each ticket at most once a day) and deliver the
    /// queue once; a running server delivers whatever is left.
    RunOverdue {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
    /// List the keys of a running server (DOCKET_URL, DOCKET_API_KEY of an admin).
    List {
        #[command(flatten)]
        remote: crate::remote::Remote,
    },
    /// Disable a key on a running server; it can never authenticate again.
    Revoke {
        #[command(flatten)]
        remote: crate::remote::Remote,
        id: String,
    },
    /// Create a key; its plain value is printed alone on the last line.
    Create {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        title: String,
        /// Grant every privilege.
        #[arg(long, conflicts_with = "privileges")]
        admin: bool,
        /// Comma-separated privileges, e.g. create_tickets,edit_tickets.
        #[arg(long, value_delimiter = ',')]
        privileges: Vec<String>,
        /// Comma-separated categories the key is limited to.
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// Author name for what the key creates (default: the key's id).
        #[arg(long)]
        username: Option<String>,
        /// Make the data directory if it does not exist yet.
        #[arg(long)]
        create: bool,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// List the users of a running server (DOCKET_URL, DOCKET_API_KEY of an admin).
    List {
        #[command(flatten)]
        remote: crate::remote::Remote,
    },
    /// Disable a user on a running server (they can no longer sign in).
    Disable {
        #[command(flatten)]
        remote: crate::remote::Remote,
        name: String,
    },
    /// Enable a disabled user on a running server.
    Enable {
        #[command(flatten)]
        remote: crate::remote::Remote,
        name: String,
    },
    /// Add a user. Without --password-stdin a password is generated and printed.
    Add {
        #[command(flatten)]
        common: Common,
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Make the data directory if it does not exist yet.
        #[arg(long)]
        create: bool,
    },
    /// Set a user's password (from standard input, or generated and printed).
    Passwd {
        #[command(flatten)]
        common: Common,
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Args, Debug, Clone)]
struct Target {
    /// Base URL of the server, e.g. http://127.0.0.1:5580; several nodes of one cluster
    /// comma-separated (requests go to them in turn).
    #[arg(long)]
    url: String,
    /// API key with the privileges the scenario needs.
    #[arg(long, env = "DOCKET_BENCH_API_KEY")]
    api_key: String,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Run scenarios and print req/s and latency percentiles.
    Run {
        #[command(flatten)]
        target: Target,
        /// Comma-separated scenarios, or "all": ping, upload, create, get-id, get-num, search-word,
        /// search-phrase, search-fields, search-pxql, search-half, comment, mixed.
        #[arg(long, default_value = "all", value_delimiter = ',')]
        scenario: Vec<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds per scenario.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Requests per scenario (instead of --duration).
        #[arg(long)]
        requests: Option<u64>,
        /// Search query for the search scenarios (overrides each one's default).
        #[arg(long)]
        query: Option<String>,
        /// Print one JSON object per scenario.
        #[arg(long)]
        json: bool,
        /// Report this process's resident memory before and after.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Fill a server through its API (--url), or a data directory in bulk (--data).
    Load {
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "DOCKET_BENCH_API_KEY")]
        api_key: Option<String>,
        /// Data directory to bulk-load instead of a server.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long)]
        tickets: u64,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Make the data directory if it does not exist yet.
        #[arg(long)]
        create: bool,
    },
    /// Print generated ticket records as NDJSON.
    Gen {
        #[arg(long)]
        tickets: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print an xyOps backup (XYBK) of the tickets instead, numbered from 1, for
        /// `docket import --xyops`.
        #[arg(long)]
        xybk: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print every setting with its default value and a comment, as TOML.
    PrintDefault,
}

/// Logs go to standard output: `DOCKET_LOG` filters (default `info`), `DOCKET_LOG_FORMAT`
/// picks `text` (default) or `json` (one object a line, for log shippers).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("DOCKET_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the data directory of an administrative command; a missing one is an error unless
/// the command was given `--create` (see `datadir`).
async fn open(common: &Common, create: bool) -> anyhow::Result<App> {
    crate::datadir::require(&common.data, create)?;
    let config = Config::load(common.config.as_deref())?;
    let app = App::open(&common.data, config).await?;
    app.bootstrap().await?;
    Ok(app)
}

/// The password to set: read from standard input, or generated (then `true`: print it once).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        Ok((read_password_stdin()?, false))
    } else {
        Ok((docket_core::auth::random_secret(), true))
    }
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading password from standard input")?;
    let pw = s.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        bail!("the password read from standard input is empty");
    }
    Ok(pw)
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let system = Principal::system("admin");
    match cli.command {
        Command::Serve { common, listen } => {
            init_logging();
            let config = Config::load(common.config.as_deref())?;
            let listen = listen.unwrap_or_else(|| config.server.listen.clone());
            // Bound before anything else: a busy port fails without creating a data
            // directory or printing a first-start admin password nobody can use.
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let app = App::open(&common.data, config).await?;
            app.bootstrap().await?;
            app.serve(listener).await
        }
        Command::ApiKey {
            command:
                ApiKeyCommand::Create {
                    common,
                    title,
                    admin,
                    privileges,
                    categories,
                    username,
                    create,
                },
        } => {
            let app = open(&common, create).await?;
            let privileges = if admin {
                vec!["admin".to_string()]
            } else {
                privileges
            };
            if privileges.is_empty() {
                bail!("give --admin or --privileges p1,p2");
            }
            let granted = docket_core::model::Privileges::from_names(privileges).to_value();
            let mut params =
                obj(json!({"title": title, "privileges": granted, "categories": categories}));
            if let Some(u) = username {
                params.insert("username".into(), json!(u));
            }
            let (key, plain) = app
                .docket
                .create_api_key(&system.can_admin()?, &params)
                .await?;
            println!("Created API key {} ({})", key.id, key.title);
            println!("{plain}");
            app.store.close().await;
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Add {
                    common,
                    name,
                    admin,
                    email,
                    password_stdin,
                    create,
                },
        } => {
            let app = open(&common, create).await?;
            let (password, generated) = new_password(password_stdin)?;
            let mut params = obj(json!({"username": name, "password": password}));
            if admin {
                params.insert("privileges".into(), json!({"admin": true}));
            }
            if let Some(e) = email {
                params.insert("email".into(), json!(e));
            }
            let user = app
                .docket
                .create_user(&system.can_admin()?, &params)
                .await?;
            println!("Created user {}", user.username);
            if generated {
                println!("Generated password: {password}");
            }
            app.store.close().await;
            Ok(())
        }
        Command::User {
            command:
                UserCommand::Passwd {
                    common,
                    name,
                    password_stdin,
                },
        } => {
            let app = open(&common, false).await?;
            let (password, generated) = new_password(password_stdin)?;
            let params = obj(json!({"username": name, "password": password}));
            app.docket
                .update_user(&system.can_admin()?, &params)
                .await?;
            println!("Password changed for {name}");
            if generated {
                println!("Generated password: {password}");
            }
            app.store.close().await;
            Ok(())
        }
        Command::Reindex { common, batch } => {
            let app = open(&common, false).await?;
            reindex(&app, batch.max(1)).await?;
            app.store.close().await;
            Ok(())
        }
        Command::Import {
            common,
            xyops: Some(backup),
            dry_run,
            map_type,
            map_status,
            create,
            ..
        } => {
            crate::datadir::require(&common.data, create)?;
            let options = docket_core::service::XyopsImportOptions {
                dry_run,
                type_map: crate::xyops_import::mappings("--map-type", &map_type)?,
                status_map: crate::xyops_import::mappings("--map-status", &map_status)?,
            };
            crate::xyops_import::run(&common.data, common.config.as_deref(), &backup, options).await
        }
        Command::Import {
            common,
            file,
            create,
            ..
        } => {
            let file = file.context("an NDJSON file (or --xyops BACKUP) is required")?;
            let app = open(&common, create).await?;
            let (n, secs) = if file.as_os_str() == "-" {
                crate::bench::import_ndjson(&app.docket, std::io::stdin().lock(), None).await?
            } else {
                let f = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                crate::bench::import_ndjson(&app.docket, std::io::BufReader::new(f), None).await?
            };
            app.store.after_bulk_load().await?;
            println!(
                "Imported {n} tickets in {secs:.1}s ({:.0}/s)",
                n as f64 / secs.max(1e-9)
            );
            app.store.close().await;
            Ok(())
        }
        Command::Notify {
            command: NotifyCommand::RunOverdue { common },
        } => {
            let app = open(&common, false).await?;
            let queued = app.notifier.queue_overdue().await?;
            println!("Queued {queued} overdue reminders");
            while app.notifier.pass().await? > 0 {}
            app.store.close().await;
            Ok(())
        }
        Command::Bench { command } => bench(command).await,
        Command::Ticket { command } => crate::remote::ticket(command).await,
        Command::Category { command } => crate::remote::directory(command, false).await,
        Command::Tag { command } => crate::remote::directory(command, true).await,
        Command::ApiKey {
            command: ApiKeyCommand::List { remote },
        } => crate::remote::account(AccountCommand::ListKeys(remote)).await,
        Command::ApiKey {
            command: ApiKeyCommand::Revoke { remote, id },
        } => crate::remote::account(AccountCommand::RevokeKey(remote, id)).await,
        Command::User {
            command: UserCommand::List { remote },
        } => crate::remote::account(AccountCommand::ListUsers(remote)).await,
        Command::User {
            command: UserCommand::Disable { remote, name },
        } => crate::remote::account(AccountCommand::SetUserActive(remote, name, false)).await,
        Command::User {
            command: UserCommand::Enable { remote, name },
        } => crate::remote::account(AccountCommand::SetUserActive(remote, name, true)).await,
        Command::Migrate { from, to } => crate::migrate::migrate(&from, &to).await,
        Command::Openapi => {
            print!("{}", crate::ops::openapi::json());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::PrintDefault,
        } => {
            print!("{}", crate::config_doc::commented_defaults()?);
            Ok(())
        }
    }
}

/// Rebuilds the index batch by batch, each batch its own transaction, with a progress bar.
async fn reindex(app: &App, batch: u32) -> anyhow::Result<()> {
    let store = &app.docket.store;
    let total = store.ticket_count().await?;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tickets ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let (mut after, mut done) = (0i64, 0u64);
    while let Some((last, n)) = store.reindex_batch(after, batch).await? {
        done += n;
        bar.set_position(done.min(total));
        after = last;
    }
    bar.finish_and_clear();
    println!(
        "Reindexed {total} tickets in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn bench(command: BenchCommand) -> anyhow::Result<()> {
    use crate::bench::{generated_lines, import_ndjson, print_header, print_report, run};
    match command {
        BenchCommand::Gen {
            tickets,
            seed,
            xybk,
        } => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if xybk {
                // The tags the generated tickets use, as an xyOps list page, then the tickets.
                let tags: Vec<Value> = crate::bench::gen::TAGS
                    .iter()
                    .map(|(id, _)| json!({"id": id, "title": id}))
                    .collect();
                writeln!(
                    out,
                    "# xyOps Data Export v1.0\n# Format: NDJSON\n# List: global/tags"
                )?;
                writeln!(
                    out,
                    "{}",
                    json!({"key": "global/tags/0", "value": {"type": "list_page", "items": tags}})
                )?;
                writeln!(out, "# Database Index: tickets (generated)")?;
            }
            for (i, line) in generated_lines(tickets, seed).enumerate() {
                if xybk {
                    // A backup carries each ticket's own id and number.
                    let mut record: Value = serde_json::from_str(&line)?;
                    let id = format!("tgen{:012}", i + 1);
                    record["id"] = json!(id);
                    record["num"] = json!(i + 1);
                    writeln!(
                        out,
                        "{}",
                        json!({"index": "tickets", "id": id, "record": record})
                    )?;
                } else {
                    writeln!(out, "{line}")?;
                }
            }
            if xybk {
                writeln!(out, "# End of file")?;
            }
            Ok(())
        }
        BenchCommand::Load {
            url,
            api_key,
            data,
            tickets,
            concurrency,
            seed,
            create,
        } => match (url, data) {
            (Some(url), None) => {
                let key = api_key.context("--api-key is required with --url")?;
                let (n, secs) = run::load_via_api(&url, &key, tickets, concurrency).await?;
                println!(
                    "Created {n} tickets in {secs:.1}s ({:.0}/s)",
                    n as f64 / secs.max(1e-9)
                );
                Ok(())
            }
            (None, Some(data)) => {
                let app = open(&Common { data, config: None }, create).await?;
                // Streamed: 1M generated records would be gigabytes as one text.
                let input = std::io::BufReader::new(crate::bench::LinesReader::new(
                    generated_lines(tickets, seed),
                ));
                let (n, secs) = import_ndjson(&app.docket, input, Some(tickets)).await?;
                app.store.after_bulk_load().await?;
                println!(
                    "Imported {n} tickets in {secs:.1}s ({:.0}/s)",
                    n as f64 / secs.max(1e-9)
                );
                app.store.close().await;
                Ok(())
            }
            _ => bail!(
                "give either --url (load through the API) or --data (bulk load a data directory)"
            ),
        },
        BenchCommand::Run {
            target,
            scenario,
            concurrency,
            duration,
            requests,
            query,
            json,
            server_pid,
        } => {
            let scenarios: Vec<String> = if scenario.iter().any(|s| s == "all") {
                run::SCENARIOS.iter().map(|s| s.to_string()).collect()
            } else {
                scenario
            };
            if let Some(pid) = server_pid {
                println!(
                    "server RSS before: {:.1} MiB",
                    run::rss_mib(pid).unwrap_or(0.0)
                );
            }
            if !json {
                print_header();
            }
            let mut ping = None;
            for s in scenarios {
                let report = run::run(&run::RunOptions {
                    url: target.url.clone(),
                    api_key: target.api_key.clone(),
                    scenario: s.clone(),
                    concurrency,
                    duration: std::time::Duration::from_secs_f64(duration),
                    requests,
                    query: query.clone(),
                })
                .await?;
                if s == "ping" {
                    ping = Some(report.per_sec);
                }
                print_report(&report, ping, json);
            }
            if let Some(pid) = server_pid {
                println!(
                    "server RSS after: {:.1} MiB",
                    run::rss_mib(pid).unwrap_or(0.0)
                );
            }
            Ok(())
        }
    }
}
