//! Wiring: opens the store for a data directory, builds the services, runs the server.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use docket_core::rules::{Limits, TicketRules};
use docket_core::Docket;

use crate::config::Config;
use crate::database::Database;
use crate::wire::{router, AppState};

/// An opened data directory: the store and the services on it.
pub struct App {
    pub docket: Docket,
    pub store: Database,
    pub config: Arc<Config>,
    /// Ticket files (object storage per `files`).
    pub files: docket_core::service::Files,
    /// Email and webhook delivery from the outbox.
    pub notifier: crate::notify::Notifier,
    /// Reply addresses of notifications (email in with a reply address).
    pub reply: Option<crate::email_in::ReplyAddressing>,
}

impl App {
    pub async fn open(data_dir: &Path, config: Config) -> anyhow::Result<App> {
        crate::datadir::private_dir(data_dir)?;
        let store = Database::open(&config, data_dir).await?;
        let rules = TicketRules {
            types: config.tickets.types.clone(),
            statuses: config.tickets.statuses.clone(),
            priorities: config.tickets.priorities.clone(),
            default_priority: config.tickets.default_priority.clone(),
            template: config.tickets.new_ticket_template.clone(),
            timezone: config.time_zone()?,
            limits: Limits::default(),
            close_duplicates: config.tickets.close_duplicates.clone(),
        };
        let docket = Docket::new(store.store(), rules)
            .with_automation(crate::automation::build(&config, data_dir)?)
            .with_notify(crate::notify::settings(&config))
            .with_search_slots(
                docket_core::service::SearchSlots::new(
                    config.database.search_connections.max(1) as usize,
                    config.search_timeout()?,
                )
                .per_caller(config.database.search_per_caller as usize)
                .timeout_penalty(std::time::Duration::from_secs(
                    config.database.search_timeout_penalty_sec,
                )),
            );
        let blobs = crate::blobs::ObjectBlobs::from_config(&config.files, data_dir)?;
        let files = docket_core::service::Files::new(
            docket.clone(),
            Arc::new(blobs),
            docket_core::service::FileSettings {
                max_file_size: config.files.max_file_size,
                max_files: config.files.max_files,
                max_request_size: config.files.max_request_size,
                expiration: config.file_expiration()?,
            },
        );
        let config = Arc::new(config);
        let reply = crate::email_in::reply_addressing(&config.email_in, &docket).await?;
        let notifier = crate::notify::Notifier::new(docket.clone(), config.clone(), data_dir)?
            .with_reply(reply.clone());
        Ok(App {
            docket,
            files,
            store,
            config,
            notifier,
            reply,
        })
    }

    /// Creates first-start defaults; prints a generated admin password once.
    pub async fn bootstrap(&self) -> anyhow::Result<()> {
        let from_env = std::env::var("DOCKET_ADMIN_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty());
        if let Some(password) = self.docket.bootstrap(from_env).await? {
            // Printed once, on the terminal of whoever started the first run; never logged.
            println!("Created user 'admin' with generated password: {password}");
            println!("(set DOCKET_ADMIN_PASSWORD before the first start to choose it)");
        }
        Ok(())
    }

    /// Serves HTTP until SIGINT/SIGTERM, then lets requests in flight finish and closes
    /// the database cleanly.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let addr = listener.local_addr()?;
        tracing::info!("Docket is serving on http://{addr}/");
        let state = AppState {
            docket: self.docket.clone(),
            config: self.config.clone(),
            files: self.files.clone(),
            views: Arc::new(
                crate::web::Views::new(self.docket.rules.timezone.clone())
                    .context("compiling the web page templates")?,
            ),
            proxies: Arc::new(
                crate::wire::client_ip::TrustedProxies::parse(&self.config.server.trusted_proxies)
                    .map_err(anyhow::Error::msg)?,
            ),
        };
        // Email in: bound before anything runs, so a taken port stops the start.
        let email_in = match crate::email_in::bind(&self.config.email_in).await? {
            Some(smtp) => {
                tracing::info!("email in: receiving SMTP on {}", smtp.local_addr()?);
                let receiver = crate::email_in::Receiver::new(
                    &self.config.email_in,
                    self.files.clone(),
                    self.reply.clone(),
                );
                Some(tokio::spawn(Arc::new(receiver).run(smtp)))
            }
            None => None,
        };
        let sweeper = tokio::spawn(sweep_sessions(
            self.docket.clone(),
            self.config.events.retention(),
        ));
        let file_sweeper = tokio::spawn(sweep_files(
            self.files.clone(),
            std::time::Duration::from_secs(self.config.files.sweep_interval),
        ));
        let delivery = tokio::spawn(self.notifier.clone().run());
        let overdue = tokio::spawn(self.notifier.clone().run_overdue_schedule());
        let limits = self.config.connection_limits()?;
        if let Some(files) = crate::server::open_files_limit() {
            // Each connection is a descriptor; the database, files and upstream need more.
            if (limits.max_connections as u64).saturating_add(256) > files {
                tracing::warn!(
                    "server.max_connections = {} is above what the open-file limit ({files}) \
                     allows; raise `ulimit -n` or lower it",
                    limits.max_connections
                );
            }
        }
        crate::server::serve(listener, router(state), limits, shutdown_signal()).await;
        if let Some(task) = email_in {
            task.abort();
        }
        delivery.abort();
        overdue.abort();
        sweeper.abort();
        file_sweeper.abort();
        tracing::info!("shutting down: closing the database");
        self.store.close().await;
        Ok(())
    }
}

/// Removes expired login sessions, login-failure counts, idempotency keys and change-feed
/// events older than `feed_retention` once an hour (and once at start).
async fn sweep_sessions(docket: Docket, feed_retention: std::time::Duration) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = docket
            .store
            .purge_expired(docket_core::store::RecordKind::Session, docket.now())
            .await
        {
            tracing::warn!(error = %e, "session sweep failed");
        }
        // Failed-login counts whose window and wait are over.
        if let Err(e) = docket
            .store
            .purge_expired(docket_core::store::RecordKind::LoginFailures, docket.now())
            .await
        {
            tracing::warn!(error = %e, "login failure sweep failed");
        }
        // Idempotency keys replay for 24 hours; their records go after that.
        if let Err(e) = docket
            .store
            .purge_expired(docket_core::store::RecordKind::Idempotency, docket.now())
            .await
        {
            tracing::warn!(error = %e, "idempotency key sweep failed");
        }
        match docket.prune_feed(feed_retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "change feed: old events removed"),
            Err(e) => tracing::warn!(error = %e, "change feed sweep failed"),
        }
    }
}

/// Removes expired ticket files (and objects of requests that died half way) every
/// `files.sweep_interval` seconds.
async fn sweep_files(files: docket_core::service::Files, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match files.sweep().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "file sweep removed expired files"),
            Err(e) => tracing::warn!(error = %e, "file sweep failed"),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("signal received: finishing requests in flight");
}
