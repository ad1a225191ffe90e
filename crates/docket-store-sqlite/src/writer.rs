//! The single writer with group commit, on a thread of its own.
//!
//! SQLite allows one writer at a time, and every durable commit waits for an fsync. So one
//! thread owns the write connection and takes whatever writes are queued (up to
//! [`MAX_BATCH`]) into one transaction: each write runs inside its own SAVEPOINT (a failed
//! write is rolled back alone), then one COMMIT makes the whole batch durable once the WAL is
//! synced — by the sync thread (`syncer.rs`), while this thread goes on with the next batch.
//! Nobody is answered before that sync, so an acknowledged write is always on disk.
//!
//! The connection is a synchronous rusqlite one with its prepared statements cached: every
//! statement runs on this thread. (Through sqlx each statement was a hand-off to the
//! connection's worker thread and back; a create is about a dozen statements, and those
//! thread wake-ups were a third of the server's CPU time under load — BENCHMARKS.md, "What
//! limits create".) The fsync blocks only this thread, never an async worker.
//!
//! The in-memory keyword index (`keyword_index.rs`) is kept here: the changes a batch made to
//! the indexed tables (recorded by TEMP triggers, rolled back with a failed write) are taken
//! before the COMMIT and applied after it succeeded, before anyone is answered; a failed
//! COMMIT rebuilds the index from the database instead. The full-text rows a batch wrote are
//! queued and handed to FTS5 just before that COMMIT, outside every savepoint
//! (`text_queue.rs`). Ticket events are published after the COMMIT, from each committed
//! write's result ([`Writer::write_then`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use docket_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::checkpointer::Checkpointer;
use crate::keyword_index::{self, KeywordIndex};
use crate::syncer::Syncer;
use crate::text_queue;

/// Writes committed together at most.
const MAX_BATCH: usize = 128;

/// Called once the batch is committed (or failed), to answer the waiting caller.
pub(crate) type Finish = Box<dyn FnOnce(Result<()>) + Send>;
/// One write: runs on the connection and reports whether it succeeded.
type Job = Box<dyn FnOnce(&mut Connection) -> (bool, Finish) + Send>;

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

/// A handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
}

pub(crate) fn sql_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}

/// Runs one cached statement with `params`; the number of rows it changed.
pub(crate) fn execute(c: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    c.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(sql_err)
}

fn closed() -> Error {
    Error::Internal(
        "the write did not complete: the database writer stopped or failed to begin a transaction"
            .into(),
    )
}

/// Opens the write connection: the pragmas every connection of the store uses, and a
/// statement cache large enough for every statement the writer prepares.
pub fn open_connection(path: &Path, synchronous_full: bool) -> Result<Connection> {
    let open = || -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        conn.pragma_update(
            None,
            "synchronous",
            if synchronous_full { "FULL" } else { "NORMAL" },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 8 MB of page cache per connection keeps the whole server near 100 MB resident.
        conn.pragma_update(None, "cache_size", -8000)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    };
    open().map_err(sql_err)
}

/// Runs a kernel future to completion on this thread. The kernel is async because the
/// PostgreSQL primitives wait on the network; every SQLite primitive is a synchronous call
/// that returns at once, so the future is ready at its first poll.
pub(crate) fn run_now<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    let mut work = std::pin::pin!(work);
    match work.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => Err(Error::Internal(
            "a write waited inside the SQLite writer thread".into(),
        )),
    }
}

impl Writer {
    /// Starts the writer thread on `conn`; `durable`: every commit is synced before its
    /// callers are answered (by the sync thread, `syncer.rs`).
    pub fn start(conn: Connection, index: Arc<KeywordIndex>, durable: bool) -> Result<Writer> {
        let (tx, rx) = mpsc::channel();
        // Checkpoints move to their own thread (`checkpointer.rs`) for a database on disk,
        // and so does the WAL's sync when commits are to be durable (`syncer.rs`).
        let commits = Arc::new(AtomicU64::new(0));
        let path = conn.path().filter(|p| !p.is_empty()).map(PathBuf::from);
        let (checkpointer, syncer) = match path {
            Some(path) => {
                conn.pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(sql_err)?;
                // Durable commits: COMMIT no longer syncs, the sync thread does.
                let syncer = if durable {
                    conn.pragma_update(None, "synchronous", "NORMAL")
                        .map_err(sql_err)?;
                    Some(Syncer::start(&path)?)
                } else {
                    None
                };
                (Some(Checkpointer::start(&path, commits.clone())?), syncer)
            }
            None => (None, None),
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, index, rx, &commits, checkpointer, syncer))
            .map_err(|e| Error::Internal(format!("cannot start the SQLite writer thread: {e}")))?;
        Ok(Writer { tx })
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
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.write_then(work, |_: &T| ()).await
    }

    /// [`Writer::write`], calling `committed` with the result once the group's COMMIT
    /// succeeded (and, for durable commits, the WAL is synced) — in commit order, before any
    /// caller of the group is answered (where ticket events are published). Never called for
    /// a write that failed, was rolled back to its savepoint, or whose group did not commit.
    pub async fn write_then<T, F, C>(&self, work: F, committed: C) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
        C: FnOnce(&T) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |c| {
            let out = work(c);
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

fn exec(conn: &Connection, sql: &str) -> Result<()> {
    conn.execute_batch(sql).map_err(sql_err)
}

/// The writer thread: batches until every handle is gone or `close` is called.
fn run(
    mut conn: Connection,
    index: Arc<KeywordIndex>,
    rx: mpsc::Receiver<Msg>,
    commits: &AtomicU64,
    checkpointer: Option<Checkpointer>,
    syncer: Option<Syncer>,
) {
    let answers = Answers(syncer);
    let mut closing = None;
    // A message taken while merging full-text segments, handled first.
    let mut carried = None;
    // Whether the full-text index may have segments left to merge (see `tidy_text_step`).
    let mut tidy = true;
    while closing.is_none() {
        let first = match carried.take() {
            Some(msg) => msg,
            None if tidy => match rx.recv_timeout(TIDY_AFTER_IDLE) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: merge full-text segments step by step while nothing else comes.
                    (tidy, carried) = tidy_while_idle(&conn, &rx);
                    commits.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            },
            None => match rx.recv() {
                Ok(msg) => msg,
                Err(_) => break,
            },
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
        if !batch.is_empty() {
            if commit_batch(&mut conn, &index, batch, &answers) {
                tidy = true;
            }
            commits.fetch_add(1, Ordering::Relaxed);
        }
        for c in control {
            match c {
                Control::Promote(field, value) => {
                    keyword_index::promote(&conn, &index, &field, &value)
                }
                Control::Refresh => {
                    let current = keyword_index::epoch_of(&conn).ok();
                    if current.is_none() || current != index.epoch() {
                        keyword_index::rebuild(&conn, &index);
                    }
                }
            }
        }
    }
    // Every caller answered (after the last sync) before the connection closes.
    drop(answers);
    drop(checkpointer);
    let _ = exec(&conn, "PRAGMA wal_checkpoint(TRUNCATE)");
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Merges full-text segments until there is nothing left to merge or a message arrives.
/// Returns whether merging may still be needed, and the message that interrupted it.
fn tidy_while_idle(conn: &Connection, rx: &mpsc::Receiver<Msg>) -> (bool, Option<Msg>) {
    let mut pages = 0u64;
    loop {
        match tidy_text_step(conn) {
            Ok(true) => pages += TIDY_PAGES as u64,
            Ok(false) => {
                if pages > 0 {
                    tracing::debug!(pages, "full-text index segments merged");
                }
                return (false, None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "full-text index merge step failed");
                return (false, None);
            }
        }
        match rx.try_recv() {
            Ok(msg) => return (true, Some(msg)),
            Err(TryRecvError::Empty) => {}
            // Every handle is gone: the main loop ends at its next receive.
            Err(TryRecvError::Disconnected) => return (true, None),
        }
    }
}

/// Commits a batch; true if it changed tickets (and so the search indexes).
fn commit_batch(
    conn: &mut Connection,
    index: &KeywordIndex,
    batch: Vec<Job>,
    answers: &Answers,
) -> bool {
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        // Dropping the jobs answers their callers with an error; nothing was written.
        tracing::error!(error = %e, "cannot begin a write transaction");
        return false;
    }
    if batch.len() == 1 {
        // A write alone in its transaction needs no savepoint: if it fails, the whole
        // transaction is rolled back. (Savepoints make SQLite track every page a large write
        // dirties; on a 2,000-ticket import batch they were 15 % of all CPU time.)
        for job in batch {
            let (ok, finish) = job(conn);
            if !ok {
                let _ = exec(conn, "ROLLBACK");
                // The job's own error is its answer.
                answers.give(vec![finish], None);
                return false;
            }
            finishes.push(finish);
        }
    } else {
        for job in batch {
            if let Some(finish) = run_isolated(conn, job) {
                finishes.push(finish);
            }
        }
    }
    // The batch's full-text rows, written outside every savepoint (`text_queue`), then the
    // committed writes' changes to the keyword index and the epoch they make.
    let delta = match text_queue::apply(conn).and_then(|()| take_index_delta(conn)) {
        Ok(delta) => delta,
        Err(e) => {
            // Without its text or the delta the index could not follow: write nothing.
            tracing::error!(error = %e, "cannot write the batch's index changes");
            let _ = exec(conn, "ROLLBACK");
            answers.give(finishes, Some(e.to_string()));
            return false;
        }
    };
    let committed = exec(conn, "COMMIT");
    if committed.is_err() {
        let _ = exec(conn, "ROLLBACK");
        // Whatever the failed COMMIT left, the database is the truth.
        keyword_index::rebuild(conn, index);
    } else if let Some((epoch, changes)) = &delta {
        if !index.apply(*epoch, changes) {
            // Another process wrote tickets (or a number outgrew 32 bits): read it all again.
            keyword_index::rebuild(conn, index);
        }
    }
    let changed = committed.is_ok() && delta.is_some();
    answers.give(finishes, committed.err().map(|e| e.to_string()));
    changed
}

/// How a batch's callers are answered: once the WAL is synced, when commits are durable
/// (`syncer.rs`), else at once. Every answer goes through the sync, also a refusal or a
/// failure: an answer may rest on what earlier batches committed.
struct Answers(Option<Syncer>);

impl Answers {
    /// Answers `finishes` with the batch's outcome: `failure`, or committed.
    fn give(&self, finishes: Vec<Finish>, failure: Option<String>) {
        let finishes: Vec<Finish> = match failure {
            None => finishes,
            Some(msg) => finishes
                .into_iter()
                .map(|finish| -> Finish {
                    let msg = msg.clone();
                    Box::new(move |_| finish(Err(Error::Internal(msg))))
                })
                .collect(),
        };
        match &self.0 {
            Some(syncer) => syncer.answer_when_durable(finishes),
            None => {
                for finish in finishes {
                    finish(Ok(()));
                }
            }
        }
    }
}

/// Idle time after which the writer merges full-text index segments.
const TIDY_AFTER_IDLE: Duration = Duration::from_millis(500);
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
fn tidy_text_step(conn: &Connection) -> Result<bool> {
    exec(conn, "BEGIN IMMEDIATE")?;
    let step = || -> rusqlite::Result<bool> {
        let total =
            |c: &Connection| c.query_row("SELECT total_changes()", [], |r| r.get::<_, i64>(0));
        let before = total(conn)?;
        conn.prepare_cached("INSERT INTO ticket_text (ticket_text, rank) VALUES ('merge', ?1)")?
            .execute([TIDY_PAGES])?;
        // The documented test: two or more changes mean the merge did work.
        Ok(total(conn)? - before >= 2)
    };
    match step() {
        Ok(worked) => {
            exec(conn, "COMMIT")?;
            Ok(worked)
        }
        Err(e) => {
            let _ = exec(conn, "ROLLBACK");
            Err(sql_err(e))
        }
    }
}

/// Takes the batch's index changes and, if there are any, bumps the index epoch (both inside
/// the transaction).
fn take_index_delta(conn: &Connection) -> Result<Option<(i64, Vec<keyword_index::Change>)>> {
    let (touched, changes) = keyword_index::take_delta(conn)?;
    if !touched {
        return Ok(None);
    }
    let epoch = keyword_index::bump_epoch(conn)?;
    Ok(Some((epoch, changes)))
}

/// Runs one job inside a savepoint, undoing its writes if it fails. `None` when the
/// savepoint could not be made (the job is dropped, so its caller gets an error).
fn run_isolated(conn: &mut Connection, job: Job) -> Option<Finish> {
    if let Err(e) = exec(conn, "SAVEPOINT write_job") {
        tracing::error!(error = %e, "cannot make a savepoint");
        return None;
    }
    let (ok, finish) = job(conn);
    if !ok {
        let _ = exec(conn, "ROLLBACK TO write_job");
    }
    let _ = exec(conn, "RELEASE write_job");
    Some(finish)
}
