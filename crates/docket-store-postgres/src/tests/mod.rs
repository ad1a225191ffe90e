//! Tests against a real PostgreSQL: each test creates its own database and drops it at the
//! end (also when it fails). The server is `postgres://postgres@127.0.0.1:5432/test` unless
//! `DOCKET_TEST_POSTGRES_URL` names another database to administer from.

mod concurrency;
mod differential;
mod events;
mod feed;
mod records_and_copy;
mod reindex;
mod saved_searches;
mod upgrade;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use docket_core::store::{SearchRequest, SortField, Store};
use sqlx::{Connection, PgConnection};

use crate::{PgOptions, PgStore};

fn admin_url() -> String {
    std::env::var("DOCKET_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database, dropped (`WITH (FORCE)`) when this goes out of scope.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TestDb {
    pub async fn new() -> TestDb {
        let name = format!(
            "docket_t_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        let url = format!("{base}/{name}");
        TestDb { name, url }
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url, &PgOptions::default())
            .await
            .expect("connect the store")
    }

    /// A raw connection for what the store does not offer (breaking the index on purpose).
    pub async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(mut conn) = PgConnection::connect(&admin_url()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A fresh database and a store on it, for the conformance suite.
async fn fresh_store() -> (TestDb, PgStore) {
    let db = TestDb::new().await;
    let store = db.store().await;
    (db, store)
}

docket_store_conformance::store_conformance!(fresh_store);

pub use docket_store_conformance::{item, ticket};

pub fn ctx() -> docket_query::LowerCtx {
    docket_query::LowerCtx {
        tz: jiff::tz::TimeZone::UTC,
        now: "2024-06-15T12:00:00Z".parse().unwrap(),
    }
}

pub fn request(query: &str, sort_by: SortField, descending: bool) -> SearchRequest {
    SearchRequest {
        filter: docket_query::compile(query, &ctx())
            .unwrap_or_else(|e| panic!("{query:?}: {}", e.message)),
        categories: None::<BTreeSet<String>>,
        sort_by,
        descending,
        offset: 0,
        limit: 1000,
    }
}

pub async fn find(store: &dyn Store, query: &str) -> Vec<String> {
    let page = store
        .search_tickets(&request(query, SortField::Num, false))
        .await
        .unwrap();
    page.rows.into_iter().map(|t| t.id).collect()
}
