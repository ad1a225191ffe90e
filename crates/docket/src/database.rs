//! Opens the store `database.url` names: a SQLite file (the embedded default) or a
//! PostgreSQL database that several nodes share.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use docket_core::store::Store;
use docket_store_postgres::{PgOptions, PgStore};
use docket_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{redact, Config, DatabaseTarget};

/// An open store of either kind.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Database {
    pub async fn open(config: &Config, data_dir: &Path) -> anyhow::Result<Database> {
        Ok(match config.database_target(data_dir)? {
            DatabaseTarget::Sqlite(path) => Database::Sqlite({
                // Made 0600 before SQLite creates it (its -wal and -shm files follow).
                crate::datadir::private_file(&path)?;
                SqliteStore::open(
                    &path,
                    &SqliteOptions {
                        synchronous_full: config.database.sync_commits,
                        // Two per search slot: a text search counts and pages on two
                        // connections at once, and must not take the next search's.
                        search_connections: config.database.search_connections.max(1) * 2,
                        search_timeout: config.search_timeout()?,
                        priorities: config.priority_levels(),
                        ..SqliteOptions::default()
                    },
                )
                .await
                .with_context(|| format!("opening database {}", path.display()))?
            }),
            DatabaseTarget::Postgres(url) => Database::Postgres(
                PgStore::connect(
                    &url,
                    &PgOptions {
                        max_connections: config.database.max_connections.max(1),
                        search_connections: config.database.search_connections.max(1),
                        search_timeout: config.search_timeout()?,
                        priorities: config.priority_levels(),
                    },
                )
                .await
                .with_context(|| format!("opening database {}", redact(&url)))?,
            ),
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Database::Sqlite(s) => Arc::new(s.clone()),
            Database::Postgres(s) => Arc::new(s.clone()),
        }
    }

    /// After a bulk load: lets the database catch up with the new rows (PostgreSQL's planner
    /// statistics; nothing to do on SQLite).
    pub async fn after_bulk_load(&self) -> anyhow::Result<()> {
        if let Database::Postgres(s) = self {
            s.analyze().await?;
        }
        Ok(())
    }

    /// Finishes queued writes and closes the connections.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(s) => s.close().await,
            Database::Postgres(s) => s.close().await,
        }
    }
}
