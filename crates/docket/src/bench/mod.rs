//! `docket bench` (load driver and data generator) and `docket import` (bulk NDJSON load).

pub mod gen;
pub mod run;

use std::io::BufRead;
use std::time::Instant;

use anyhow::Context;
use docket_core::model::Ticket;
use docket_core::Docket;

/// Tickets per import transaction.
const IMPORT_BATCH: usize = 2000;

/// Imports NDJSON ticket records; a bad line stops the import with its line number (the
/// batches before it are committed).
pub async fn import_ndjson(
    docket: &Docket,
    input: impl BufRead,
    total_hint: Option<u64>,
) -> anyhow::Result<(u64, f64)> {
    let refs = docket.import_refs().await?;
    let bar = match total_hint {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} tickets ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    // One batch is written while the next one is parsed and checked (the two use different
    // cores); at most one is in flight, so batches commit in order.
    let mut lines = input.lines().enumerate();
    let mut writing: Option<tokio::task::JoinHandle<docket_core::Result<u64>>> = None;
    let mut inserted = 0;
    loop {
        let next = next_batch(docket, &refs, &mut lines);
        // A bad line stops the import; the batches before it are still committed.
        if let Some(previous) = writing.take() {
            inserted += previous.await??;
            bar.set_position(inserted);
        }
        let Some(batch) = next? else { break };
        let store = docket.store.clone();
        writing = Some(tokio::spawn(
            async move { store.import_tickets(batch).await },
        ));
    }
    bar.finish_and_clear();
    Ok((inserted, started.elapsed().as_secs_f64()))
}

/// Parses and checks up to [`IMPORT_BATCH`] lines; `None` at the end of the input.
fn next_batch(
    docket: &Docket,
    refs: &docket_core::service::ImportRefs,
    lines: &mut impl Iterator<Item = (usize, std::io::Result<String>)>,
) -> anyhow::Result<Option<Vec<Ticket>>> {
    let mut batch: Vec<Ticket> = Vec::with_capacity(IMPORT_BATCH);
    for (i, line) in lines.by_ref() {
        let line = line.with_context(|| format!("reading line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("line {}: malformed JSON", i + 1))?;
        let ticket = docket
            .prepare_import(value, refs)
            .with_context(|| format!("line {}", i + 1))?;
        batch.push(ticket);
        if batch.len() >= IMPORT_BATCH {
            break;
        }
    }
    Ok((!batch.is_empty()).then_some(batch))
}

/// Reads an iterator of lines as one NDJSON text, a line at a time.
pub struct LinesReader<I> {
    lines: I,
    line: Vec<u8>,
    at: usize,
}

impl<I: Iterator<Item = String>> LinesReader<I> {
    pub fn new(lines: I) -> LinesReader<I> {
        LinesReader {
            lines,
            line: Vec::new(),
            at: 0,
        }
    }
}

impl<I: Iterator<Item = String>> std::io::Read for LinesReader<I> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.line.len() {
            let Some(next) = self.lines.next() else {
                return Ok(0);
            };
            self.line = next.into_bytes();
            self.line.push(b'\n');
            self.at = 0;
        }
        let n = out.len().min(self.line.len() - self.at);
        out[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Generated records as NDJSON lines, for `bench gen` and `bench load --data`.
pub fn generated_lines(count: u64, seed: u64) -> impl Iterator<Item = String> {
    let mut rng = gen::Rng::new(seed);
    let now = jiff::Timestamp::now().as_second();
    (0..count).map(move |_| gen::ticket_record(&mut rng, now).to_string())
}

/// Prints a report as a table row (or JSON).
pub fn print_report(r: &run::Report, ping_per_sec: Option<f64>, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    let of_ping = ping_per_sec
        .filter(|p| *p > 0.0)
        .map(|p| format!("{:>5.0}%", 100.0 * r.per_sec / p))
        .unwrap_or_else(|| "     -".into());
    println!(
        "{:<14} {:>4} {:>8} {:>9.0} {} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}",
        r.scenario,
        r.concurrency,
        r.requests,
        r.per_sec,
        of_ping,
        r.p50_ms,
        r.p90_ms,
        r.p99_ms,
        r.max_ms,
        r.errors
    );
    if let Some(e) = &r.first_error {
        println!("    first error: {e}");
    }
}

pub fn print_header() {
    println!(
        "{:<14} {:>4} {:>8} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "scenario",
        "conc",
        "requests",
        "req/s",
        "%ping",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors"
    );
}
