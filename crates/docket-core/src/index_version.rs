//! Keeps a store's search index in step with the analyzer.
//!
//! The index holds the tokens the analyzer made when each ticket was written. When the
//! analyzer's rules change ([`docket_query::ANALYZER_VERSION`] goes up), tickets indexed
//! before would be searched with different tokens than the queries make, so the store
//! rebuilds the index of every ticket when it is opened and then records the version in a
//! `meta` record. A database without that record (made before versions were recorded, or
//! brand new) is reindexed too; for a new one that costs nothing.

use serde_json::{json, Value};

use crate::error::Result;
use crate::store::{RecordKind, Store};

/// Id of the `meta` record that holds the analyzer version of the index.
pub const ANALYZER_META: &str = "analyzer";

/// Tickets rebuilt per transaction while upgrading.
const BATCH: u32 = 500;

/// The analyzer version the store's index was built with (`None` when not recorded).
pub async fn stored_version(store: &dyn Store) -> Result<Option<u32>> {
    Ok(store
        .get_record(RecordKind::Meta, ANALYZER_META)
        .await?
        .and_then(|v| v.get("version").and_then(Value::as_u64))
        .and_then(|v| u32::try_from(v).ok()))
}

/// Rebuilds the whole index when it was built by another analyzer version, then records the
/// current version. Returns how many tickets were reindexed (`None`: already current).
///
/// Safe to run on several nodes at once: reindexing a ticket twice gives the same index.
pub async fn upgrade_index(store: &dyn Store) -> Result<Option<u64>> {
    let current = docket_query::ANALYZER_VERSION;
    let stored = stored_version(store).await?;
    if stored == Some(current) {
        return Ok(None);
    }
    let tickets = store.ticket_count().await?;
    if tickets > 0 {
        tracing::info!(
            from = ?stored,
            to = current,
            tickets,
            "the analyzer changed: rebuilding the search index before serving"
        );
    }
    let started = std::time::Instant::now();
    let (mut after, mut done) = (0i64, 0u64);
    while let Some((last, n)) = store.reindex_batch(after, BATCH).await? {
        after = last;
        done += n;
    }
    record_version(store, current, done).await?;
    if done > 0 {
        tracing::info!(
            from = ?stored,
            to = current,
            tickets = done,
            secs = started.elapsed().as_secs_f64(),
            "search index rebuilt for the new analyzer version"
        );
    }
    Ok(Some(done))
}

async fn record_version(store: &dyn Store, version: u32, reindexed: u64) -> Result<()> {
    let record = json!({"version": version, "reindexed": reindexed});
    let replacement = record.clone();
    let updated = store
        .update_record(
            RecordKind::Meta,
            ANALYZER_META,
            Box::new(move |v: &mut Value| {
                *v = replacement;
                Ok(())
            }),
        )
        .await?;
    if updated.is_none() {
        // Another node may insert it between our update and insert: it records the same.
        store
            .insert_record(RecordKind::Meta, ANALYZER_META, None, &record)
            .await?;
    }
    Ok(())
}
