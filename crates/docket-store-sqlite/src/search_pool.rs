//! The searches' own read connections, each owned by a thread of its own.
//!
//! A search runs a handful of statements (its epoch, a set per term, the page, its rows).
//! Through sqlx each was a hand-off to the connection's worker thread and back; here the
//! whole search is one job sent to a search thread, which runs every statement on its
//! synchronous rusqlite connection (prepared statements cached) and sends the page back:
//! one hand-off per search. The threads are the bound on concurrent searches (as the pool's
//! size was); a search waiting for a free one past its deadline is answered as timed out.
//!
//! Every job is one read transaction (its first read fixes the snapshot) that SQLite itself
//! stops at the search's deadline: a progress handler, called every [`PROGRESS_STEPS`]
//! virtual machine steps, interrupts the running statement once the deadline has passed, so
//! a slow query gives its thread and its CPU back instead of running on after the caller gave
//! up. A search thread that runs a long query also lowers its own CPU priority (nice
//! [`SEARCH_NICE`]), once: it then leaves the cores to HTTP handling, point reads and writes,
//! which run on other threads.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use docket_core::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::writer::sql_err;

/// Virtual machine steps between two deadline checks: a check costs a clock read, a few
/// thousand steps take tens of microseconds, so the deadline is kept to well under a
/// millisecond at no measurable cost.
const PROGRESS_STEPS: i32 = 4_000;

/// CPU priority (nice) of a search thread once it has run a longer query (quick searches
/// never reach the progress handler).
const SEARCH_NICE: i32 = 10;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

pub struct SearchPool {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: usize,
    /// Jobs queued or running.
    busy: Arc<AtomicUsize>,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // 8 MB of page cache per connection keeps the whole server near 100 MB resident.
    conn.pragma_update(None, "cache_size", -8000)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SearchPool {
    /// Opens `threads` read-only connections to `path`, each with its thread.
    pub fn open(path: &Path, threads: u32) -> Result<SearchPool> {
        let threads = threads.max(1) as usize;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let mut conn = open(path).map_err(sql_err)?;
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("sqlite-search-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    match job {
                        Ok(job) => job(&mut conn),
                        Err(_) => return, // the pool is closed
                    }
                })
                .map_err(|e| Error::Internal(format!("cannot start a search thread: {e}")))?;
        }
        Ok(SearchPool {
            jobs: Mutex::new(Some(tx)),
            threads,
            busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Search threads with nothing to do right now.
    pub fn idle(&self) -> usize {
        self.threads
            .saturating_sub(self.busy.load(Ordering::Relaxed))
    }

    /// Runs `read` in one read transaction on a search thread, stopped at `deadline`.
    pub async fn run<T, F>(&self, deadline: Instant, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let busy = self.busy.clone();
        let job: Job = Box::new(move |conn| {
            let out = if Instant::now() >= deadline {
                // Waited for a thread until the deadline: mapped to the timeout answer.
                Err(Error::Internal(
                    "no search connection before the deadline".into(),
                ))
            } else {
                in_read_transaction(conn, deadline, read)
            };
            busy.fetch_sub(1, Ordering::Relaxed);
            let _ = reply.send(out);
        });
        let sent = {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            self.busy.fetch_add(1, Ordering::Relaxed);
            jobs.as_ref().map(|tx| tx.send(job))
        };
        if !matches!(sent, Some(Ok(()))) {
            self.busy.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::Internal("the search connections are closed".into()));
        }
        answer
            .await
            .map_err(|_| Error::Internal("a search thread stopped".into()))?
    }

    /// Lets the threads finish their queued searches and end.
    pub fn close(&self) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

fn in_read_transaction<T>(
    conn: &mut Connection,
    deadline: Instant,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.progress_handler(
        PROGRESS_STEPS,
        Some(move || {
            lower_thread_priority();
            // true interrupts the running statement.
            Instant::now() >= deadline
        }),
    );
    let out = conn
        .execute_batch("BEGIN")
        .map_err(sql_err)
        .and_then(|()| read(conn));
    // Ends the read transaction either way (a read-only transaction has nothing to undo).
    let _ = conn.execute_batch("COMMIT");
    conn.progress_handler(0, None::<fn() -> bool>);
    out
}

fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        thread_local! {
            static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        LOWERED.with(|lowered| {
            if !lowered.replace(true) {
                // On Linux a thread id names that one thread. Failing only costs priority.
                let tid = rustix::thread::gettid();
                if let Err(e) = rustix::process::setpriority_process(Some(tid), SEARCH_NICE) {
                    tracing::debug!(error = %e, "could not lower the search thread's priority");
                }
            }
        });
    }
}
