//! `docket migrate --from sqlite:DIR --to postgres://…`: copies a whole SQLite data
//! directory's database into PostgreSQL (tickets with their history and numbers, every
//! record kind, the outbox), then checks that the two hold the same counts. Every copy is
//! insert-if-absent, so running it again copies nothing new and verifies again.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use docket_core::store::{RecordKind, SearchRequest, SortField, Store};
use docket_query::{Filter, RangeField};
use docket_store_postgres::{PgOptions, PgStore};
use docket_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::redact;

/// Tickets (or outbox rows) per copy transaction.
const BATCH: u64 = 500;

/// The SQLite database file of `sqlite:DIR` (a data directory) or `sqlite:FILE`.
fn source_path(from: &str) -> anyhow::Result<PathBuf> {
    let Some(rest) = from
        .strip_prefix("sqlite://")
        .or_else(|| from.strip_prefix("sqlite:"))
    else {
        bail!("--from must be sqlite:DATA_DIR (or sqlite:FILE), not {from:?}");
    };
    let path = Path::new(rest);
    let file = if path.is_dir() {
        path.join("docket.db")
    } else {
        path.to_path_buf()
    };
    if !file.is_file() {
        bail!("--from: no SQLite database at {}", file.display());
    }
    Ok(file)
}

fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

pub async fn migrate(from: &str, to: &str) -> anyhow::Result<()> {
    let path = source_path(from)?;
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// URL, not {:?}", redact(to));
    }
    let source = SqliteStore::open(&path, &SqliteOptions::default())
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let target = PgStore::connect(to, &PgOptions::default())
        .await
        .with_context(|| format!("connecting to {}", redact(to)))?;
    let result = copy_all(&source, &target).await;
    source.close().await;
    target.close().await;
    result
}

async fn copy_all(source: &SqliteStore, target: &PgStore) -> anyhow::Result<()> {
    let started = std::time::Instant::now();

    // Tickets in number order, keeping their numbers, history and search index.
    let total = source.ticket_count().await?;
    let progress = bar(total, "tickets");
    let (mut after, mut copied) = (0i64, 0u64);
    loop {
        let page = source
            .search_tickets(&SearchRequest {
                filter: Filter::Range {
                    field: RangeField::Num,
                    min: Some(after + 1),
                    max: None,
                },
                categories: None,
                sort_by: SortField::Num,
                descending: false,
                offset: 0,
                limit: BATCH,
            })
            .await?;
        let Some(last) = page.rows.last().map(|t| t.num) else {
            break;
        };
        let n = page.rows.len() as u64;
        copied += target.copy_tickets(page.rows).await?;
        progress.inc(n);
        after = last;
    }
    progress.finish_and_clear();
    println!("tickets: {copied} copied of {total}");

    // Every kind of small record, with its lookup key (API key hashes, file paths).
    for kind in RecordKind::ALL {
        let rows = source.export_records(kind).await?;
        let n = rows.len();
        let mut inserted = 0;
        for chunk in rows.chunks(BATCH as usize) {
            inserted += target.copy_records(kind, chunk.to_vec()).await?;
        }
        if n > 0 {
            println!("{}: {inserted} copied of {n}", kind.as_str());
        }
    }

    // The outbox: pending notifications and the keys of reminders already queued.
    let (mut after, mut inserted, mut seen) = (0i64, 0u64, 0u64);
    loop {
        let rows = source.export_outbox(after, BATCH as u32).await?;
        let Some(last) = rows.last().map(|(r, _)| r.id) else {
            break;
        };
        seen += rows.len() as u64;
        let (rows, keys): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        inserted += target.copy_outbox(rows, keys).await?;
        after = last;
    }
    println!("outbox: {inserted} copied of {seen}");

    target.analyze().await?;
    verify(source, target).await?;
    println!(
        "Migrated and verified in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The target must hold exactly what the source holds: a count that differs means the
/// target had other data (or a copy was skipped), and the migration says so.
async fn verify(source: &SqliteStore, target: &PgStore) -> anyhow::Result<()> {
    let mut wrong = Vec::new();
    let (s, t) = (source.ticket_count().await?, target.ticket_count().await?);
    if s != t {
        wrong.push(format!("tickets: source {s}, target {t}"));
    }
    for kind in RecordKind::ALL {
        let (s, t) = (
            source.record_count(kind).await?,
            target.record_count(kind).await?,
        );
        if s != t {
            wrong.push(format!("{}: source {s}, target {t}", kind.as_str()));
        }
    }
    let (s, t) = (source.outbox_count().await?, target.outbox_count().await?);
    if s != t {
        wrong.push(format!("outbox: source {s}, target {t}"));
    }
    if !wrong.is_empty() {
        bail!(
            "verification failed, the counts differ (was the target database empty?):\n  {}",
            wrong.join("\n  ")
        );
    }
    println!("verified: tickets, records and outbox counts are equal");
    Ok(())
}
