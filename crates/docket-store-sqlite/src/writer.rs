//! The single writer with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync. So one task owns the write connection and takes whatever writes are queued (up to
//! [`MAX_BATCH`]) into one transaction: each write runs inside its own SAVEPOINT (a failed
//! write is rolled back alone), then one COMMIT — one fsync — makes the whole batch durable.
//! Nobody is answered before that commit, so an acknowledged write is always on disk.
//!
//! The in-memory keyword index (`keyword_index.rs`) is kept here: the changes a batch made to
//! the indexed tables (recorded by TEMP triggers, rolled back with a failed write) are taken
//! before the COMMIT and applied after it succeeded, before anyone is answered; a failed
//! COMMIT rebuilds the index from the database instead. Ticket events are published at the
//! same point, from each committed write's result ([`Writer::write_then`]).

use std::sync::Arc;

use docket_core::{Error, Result};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::keyword_index::{self, KeywordIndex};
use crate::{db_err, BoxFuture};

/// Writes committed together at most.
const MAX_BATCH: usize = 128;

/// Called once the batch is committed (or failed), to answer the waiting caller.
type Finish = Box<dyn FnOnce(Result<()>) + Send>;
/// One write: runs on the connection and reports whether it succeeded.
type Job =
    Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

enum Msg {
    Write(Job),
    /// Keep this keyword term (field, value) in memory from now on.
    Promote(String, String),
    /// Check the index against the database's epoch and rebuild it if another process wrote.
    Refresh,
    Close(oneshot::Sender<()>),
}

/// Work done between batches.
enum Control {
    Promote(String, String),
    Refresh,
}

/// A handle to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Msg>,
}

fn closed() -> Error {
    Error::Internal(
        "the write did not complete: the database writer stopped or failed to begin a transaction"
            .into(),
    )
}

impl Writer {
    pub fn start(conn: SqliteConnection, index: Arc<KeywordIndex>) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, index, rx));
        Writer { tx }
    }

    /// Asks the writer to load a keyword term that has grown past the memory threshold.
    pub fn promote(&self, field: &str, value: &str) {
        let _ = self
            .tx
            .send(Msg::Promote(field.to_string(), value.to_string()));
    }

    /// Asks the writer to check the keyword index against the database.
    pub fn refresh(&self) {
        let _ = self.tx.send(Msg::Refresh);
    }

    /// Runs `work` in the next group transaction and returns its result after the commit.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        self.write_then(work, |_: &T| ()).await
    }

    /// [`Writer::write`], calling `committed` with the result once the group's COMMIT
    /// succeeded — on the writer task, in commit order, before any caller of the group is
    /// answered (where ticket events are published). Never called for a write that failed,
    /// was rolled back to its savepoint, or whose group did not commit.
    pub async fn write_then<T, F, C>(&self, work: F, committed: C) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |c| {
            Box::pin(async move {
                let out = work(c).await;
                let ok = out.is_ok();
                let finish: Finish = Box::new(move |commit: Result<()>| {
                    // `commit` is Ok also when this write alone failed (and was rolled
                    // back): then `out` is its error and nothing is announced.
                    if let (Ok(()), Ok(value)) = (&commit, &out) {
                        committed(value);
                    }
                    let _ = reply.send(commit.and(out));
                });
                (ok, finish)
            })
        });
        self.tx.send(Msg::Write(job)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Finishes queued writes, checkpoints the WAL and closes the connection.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

async fn exec(conn: &mut SqliteConnection, sql: &str) -> Result<()> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(db_err)
}

async fn run(
    mut conn: SqliteConnection,
    index: Arc<KeywordIndex>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
) {
    let mut closing = None;
    // Whether the full-text index may have segments left to merge (see `tidy_text_step`).
    let mut tidy = true;
    let mut tidied_pages = 0u64;
    while closing.is_none() {
        let first = if tidy {
            match tokio::time::timeout(TIDY_AFTER_IDLE, rx.recv()).await {
                Ok(Some(msg)) => msg,
                Ok(None) => break,
                Err(_) => {
                    // Idle: merge full-text segments step by step while nothing else comes.
                    loop {
                        match tidy_text_step(&mut conn).await {
                            Ok(true) => tidied_pages += TIDY_PAGES as u64,
                            Ok(false) => {
                                if tidied_pages > 0 {
                                    tracing::debug!(
                                        pages = tidied_pages,
                                        "full-text index segments merged"
                                    );
                                }
                                (tidy, tidied_pages) = (false, 0);
                                break;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "full-text index merge step failed");
                                tidy = false;
                                break;
                            }
                        }
                        if !rx.is_empty() {
                            break;
                        }
                    }
                    continue;
                }
            }
        } else {
            match rx.recv().await {
                Some(msg) => msg,
                None => break,
            }
        };
        let mut batch = Vec::new();
        let mut control = Vec::new();
        let take = |msg: Msg,
                    batch: &mut Vec<Job>,
                    control: &mut Vec<Control>,
                    closing: &mut Option<oneshot::Sender<()>>| match msg {
            Msg::Write(job) => batch.push(job),
            Msg::Promote(field, value) => control.push(Control::Promote(field, value)),
            Msg::Refresh => control.push(Control::Refresh),
            Msg::Close(done) => *closing = Some(done),
        };
        take(first, &mut batch, &mut control, &mut closing);
        while batch.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(msg) => take(msg, &mut batch, &mut control, &mut closing),
                Err(_) => break,
            }
        }
        if !batch.is_empty() && commit_batch(&mut conn, &index, batch).await {
            tidy = true;
        }
        for c in control {
            match c {
                Control::Promote(field, value) => {
                    keyword_index::promote(&mut conn, &index, &field, &value).await
                }
                Control::Refresh => {
                    let current = keyword_index::read_epoch(&mut conn).await.ok();
                    if current.is_none() || current != index.epoch() {
                        keyword_index::rebuild(&mut conn, &index).await;
                    }
                }
            }
        }
    }
    let _ = exec(&mut conn, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    let _ = conn.close().await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Commits a batch; true if it changed tickets (and so the search indexes).
async fn commit_batch(conn: &mut SqliteConnection, index: &KeywordIndex, batch: Vec<Job>) -> bool {
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        // Dropping the jobs answers their callers with an error; nothing was written.
        tracing::error!(error = %e, "cannot begin a write transaction");
        return false;
    }
    if batch.len() == 1 {
        // A write alone in its transaction needs no savepoint: if it fails, the whole
        // transaction is rolled back. (Savepoints make SQLite track every page a large write
        // dirties; on a 2,000-ticket import batch they were 15 % of all CPU time.)
        for job in batch {
            let (ok, finish) = job(conn).await;
            if !ok {
                let _ = exec(conn, "ROLLBACK").await;
                // The job's own error is its answer.
                finish(Ok(()));
                return false;
            }
            finishes.push(finish);
        }
    } else {
        for job in batch {
            if let Some(finish) = run_isolated(conn, job).await {
                finishes.push(finish);
            }
        }
    }
    // The committed writes' changes to the keyword index, and the epoch they make.
    let delta = match take_index_delta(conn).await {
        Ok(delta) => delta,
        Err(e) => {
            // Without the delta the index could not follow: write nothing.
            tracing::error!(error = %e, "cannot read the keyword index changes");
            let _ = exec(conn, "ROLLBACK").await;
            for finish in finishes {
                finish(Err(Error::Internal(e.to_string())));
            }
            return false;
        }
    };
    let committed = exec(conn, "COMMIT").await;
    if committed.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
        // Whatever the failed COMMIT left, the database is the truth.
        keyword_index::rebuild(conn, index).await;
    } else if let Some((epoch, changes)) = &delta {
        if !index.apply(*epoch, changes) {
            // Another process wrote tickets (or a number outgrew 32 bits): read it all again.
            keyword_index::rebuild(conn, index).await;
        }
    }
    let changed = committed.is_ok() && delta.is_some();
    let failure = committed.err().map(|e| e.to_string());
    for finish in finishes {
        finish(match &failure {
            None => Ok(()),
            Some(msg) => Err(Error::Internal(msg.clone())),
        });
    }
    changed
}

/// Idle time after which the writer merges full-text index segments.
const TIDY_AFTER_IDLE: std::time::Duration = std::time::Duration::from_millis(500);
/// Pages one merge step writes (one short transaction: a write arriving meanwhile waits for
/// at most one step, a few tens of milliseconds).
const TIDY_PAGES: i64 = 200;

/// One step of merging FTS5 segments, in its own transaction; false when there was nothing
/// to merge.
///
/// Each FTS5 write adds a small segment, and FTS5's own automerge keeps up to three per
/// level, so after a bulk import a term's list is spread over ~20 segments that every query
/// merges on the fly (a phrase query at 1M tickets spent a third of its time there). When the
/// writer is idle it merges further, with `usermerge` 2 (set at open): at most one segment per
/// level, each ticket rewritten O(log n) times overall, never the whole index at once.
async fn tidy_text_step(conn: &mut SqliteConnection) -> Result<bool> {
    exec(conn, "BEGIN IMMEDIATE").await?;
    let step = async {
        let (before,): (i64,) = sqlx::query_as("SELECT total_changes()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        sqlx::query("INSERT INTO ticket_text (ticket_text, rank) VALUES ('merge', ?)")
            .bind(TIDY_PAGES)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let (after,): (i64,) = sqlx::query_as("SELECT total_changes()")
            .fetch_one(&mut *conn)
            .await
            .map_err(db_err)?;
        // The documented test: two or more changes mean the merge did work.
        Ok::<_, Error>(after - before >= 2)
    }
    .await;
    match step {
        Ok(worked) => {
            exec(conn, "COMMIT").await?;
            Ok(worked)
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK").await;
            Err(e)
        }
    }
}

/// Takes the batch's index changes and, if there are any, bumps the index epoch (both inside
/// the transaction).
async fn take_index_delta(
    conn: &mut SqliteConnection,
) -> Result<Option<(i64, Vec<keyword_index::Change>)>> {
    let (touched, changes) = keyword_index::take_delta(conn).await?;
    if !touched {
        return Ok(None);
    }
    let epoch = keyword_index::bump_epoch(conn).await?;
    Ok(Some((epoch, changes)))
}

/// Runs one job inside a savepoint, undoing its writes if it fails. `None` when the
/// savepoint could not be made (the job is dropped, so its caller gets an error).
async fn run_isolated(conn: &mut SqliteConnection, job: Job) -> Option<Finish> {
    if let Err(e) = exec(conn, "SAVEPOINT write_job").await {
        tracing::error!(error = %e, "cannot make a savepoint");
        return None;
    }
    let (ok, finish) = job(conn).await;
    if !ok {
        let _ = exec(conn, "ROLLBACK TO write_job").await;
    }
    let _ = exec(conn, "RELEASE write_job").await;
    Some(finish)
}
