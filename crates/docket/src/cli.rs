//! Command-line interface: `serve`, `api-key create`, `user add`, `user passwd`,
//! `config print-default`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use docket_core::auth::Principal;
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::config::Config;

#[derive(Parser, Debug)]
#[command(name = "docket", version, about = "Docket: a ticket server speaking the xyOps Tickets API")]
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
    /// Show configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ApiKeyCommand {
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
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
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

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print every setting with its default value, as TOML.
    PrintDefault,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DOCKET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

async fn open(common: &Common) -> anyhow::Result<App> {
    let config = Config::load(common.config.as_deref())?;
    let app = App::open(&common.data, config).await?;
    app.bootstrap().await?;
    Ok(app)
}

fn read_password_stdin() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).context("reading password from standard input")?;
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
            let app = open(&common).await?;
            let listen = listen.unwrap_or_else(|| app.config.server.listen.clone());
            app.serve(&listen).await
        }
        Command::ApiKey { command: ApiKeyCommand::Create { common, title, admin, privileges, categories, username } } => {
            let app = open(&common).await?;
            let privileges = if admin { vec!["admin".to_string()] } else { privileges };
            if privileges.is_empty() {
                bail!("give --admin or --privileges p1,p2");
            }
            let mut params = obj(json!({"title": title, "privileges": privileges, "categories": categories}));
            if let Some(u) = username {
                params.insert("username".into(), json!(u));
            }
            let (key, plain) = app.docket.create_api_key(&system.can_admin()?, &params).await?;
            println!("Created API key {} ({})", key.id, key.title);
            println!("{plain}");
            app.store.close().await;
            Ok(())
        }
        Command::User { command: UserCommand::Add { common, name, admin, email, password_stdin } } => {
            let app = open(&common).await?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (docket_core::auth::random_secret(), true)
            };
            let mut params = obj(json!({"username": name, "password": password}));
            if admin {
                params.insert("privileges".into(), json!(["admin"]));
            }
            if let Some(e) = email {
                params.insert("email".into(), json!(e));
            }
            let user = app.docket.create_user(&system.can_admin()?, &params).await?;
            println!("Created user {}", user.username);
            if generated {
                println!("Generated password: {password}");
            }
            app.store.close().await;
            Ok(())
        }
        Command::User { command: UserCommand::Passwd { common, name, password_stdin } } => {
            let app = open(&common).await?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (docket_core::auth::random_secret(), true)
            };
            let params = obj(json!({"username": name, "password": password}));
            app.docket.update_user(&system.can_admin()?, &params).await?;
            println!("Password changed for {name}");
            if generated {
                println!("Generated password: {password}");
            }
            app.store.close().await;
            Ok(())
        }
        Command::Reindex { common, batch } => {
            let app = open(&common).await?;
            reindex(&app, batch.max(1)).await?;
            app.store.close().await;
            Ok(())
        }
        Command::Config { command: ConfigCommand::PrintDefault } => {
            print!("{}", toml::to_string_pretty(&Config::default())?);
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
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} tickets ({per_sec}, eta {eta})")
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
    println!("Reindexed {total} tickets in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
