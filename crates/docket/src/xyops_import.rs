//! `docket import --xyops BACKUP`: reads an xyOps XYBK backup (plain or gzip, a file or
//! standard input) line by line into the import of `docket_core::service::xyops_import`,
//! with a progress bar, and prints what was done. Works on whichever database the
//! configuration names (the data directory's SQLite, or PostgreSQL).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use docket_core::service::{XyopsImportOptions, XyopsImportReport};

use crate::app::App;
use crate::config::Config;

/// `FROM=TO` pairs of a `--map-type` / `--map-status` flag.
pub fn mappings(flag: &str, pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for pair in pairs {
        match pair.split_once('=') {
            Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                map.insert(from.trim().to_string(), to.trim().to_string());
            }
            _ => bail!("{flag} takes FROM=TO (e.g. {flag} issue=bug), got {pair:?}"),
        }
    }
    Ok(map)
}

/// The backup as lines: gzip is recognised by its first bytes, whatever the file's name.
fn open_backup(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?)
    };
    let mut reader = BufReader::with_capacity(1 << 20, raw);
    let gzip = reader
        .fill_buf()
        .context("reading the backup")?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

pub async fn run(
    data: &Path,
    config: Option<&Path>,
    backup: &Path,
    options: XyopsImportOptions,
) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let app = App::open(data, config).await?;
    let dry_run = options.dry_run;
    for (what, map, known) in [
        ("--map-type", &options.type_map, &app.docket.rules.types),
        (
            "--map-status",
            &options.status_map,
            &app.docket.rules.statuses,
        ),
    ] {
        if let Some(to) = map.values().find(|to| !known.iter().any(|c| &c.id == *to)) {
            bail!("{what}: {to:?} is not configured here (see `docket config print-default`)");
        }
    }
    let started = Instant::now();
    let mut import = app.docket.xyops_import(&app.files, options).await?;
    let mut lines = open_backup(backup)?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let mut line = String::new();
    let mut n: u64 = 0;
    loop {
        line.clear();
        let read = lines.read_line(&mut line).context("reading the backup")?;
        if read == 0 {
            break;
        }
        import.line(&line).await?;
        n += 1;
        if n.is_multiple_of(5_000) {
            bar.set_message(format!("{n} lines read"));
            bar.tick();
        }
    }
    let report = import.finish().await?;
    bar.finish_and_clear();
    if !dry_run {
        app.store.after_bulk_load().await?;
        // First-start defaults where the backup brought none (an admin, `general`, tags).
        app.bootstrap().await?;
    }
    print_report(&report, dry_run, started.elapsed().as_secs_f64());
    app.store.close().await;
    Ok(())
}

fn print_report(r: &XyopsImportReport, dry_run: bool, secs: f64) {
    let verb = if dry_run { "Would import" } else { "Imported" };
    let total = r.tickets_created + r.tickets_updated;
    println!(
        "{verb} {} new and {} updated tickets ({} unchanged, {} skipped) from {} lines in {secs:.1}s ({:.0} tickets/s)",
        r.tickets_created,
        r.tickets_updated,
        r.tickets_unchanged,
        r.tickets_skipped.len(),
        r.lines,
        total as f64 / secs.max(1e-9)
    );
    println!(
        "Users: {} new, {} already here (kept as they are). Tags: {} new. Categories: {} new. Roles: {} new. Other records already here: {}.",
        r.users_created, r.users_existing, r.tags_created, r.categories_created, r.roles_created, r.records_existing
    );
    println!(
        "Files: {} stored, {} already here, {} skipped.",
        r.files_stored,
        r.files_existing,
        r.files_skipped.len()
    );
    for (what, map) in [("type", &r.unknown_types), ("status", &r.unknown_statuses)] {
        for (value, count) in map {
            println!(
                "Unknown {what} {value:?} on {count} tickets: map it with --map-{what} {value}=…"
            );
        }
    }
    for why in r.tickets_skipped.iter().chain(&r.files_skipped).take(50) {
        println!("  skipped {why}");
    }
    if r.tickets_skipped.len() + r.files_skipped.len() > 50 {
        println!("  … and more");
    }
    if r.api_keys_not_moved > 0 {
        println!(
            "{} API keys were not moved: xyOps stores them hashed. Create new ones with `docket api-key create` and give them to their owners.",
            r.api_keys_not_moved
        );
    }
    if r.ignored_lines > 0 {
        println!(
            "{} lines were not XYBK items and were ignored.",
            r.ignored_lines
        );
    }
    if total == 0
        && r.users_created
            + r.tags_created
            + r.categories_created
            + r.roles_created
            + r.files_stored
            == 0
    {
        println!("Nothing to do: everything in the backup is here already.");
    }
}
