//! WAL checkpoints on a thread of their own, off the writer's path.
//!
//! With SQLite's automatic checkpoint, the connection whose COMMIT pushes the WAL past 1,000
//! pages copies the WAL into the database file and fsyncs it before that COMMIT returns. On
//! the one writer thread that is a stall every few dozen batches: 13 % of the writer's time
//! under a create load, most of it the database file's fsync (BENCHMARKS.md, "WAL checkpoints
//! off the writer thread"). So the write connection has `wal_autocheckpoint = 0`, and this
//! thread, with a connection of its own, runs a PASSIVE checkpoint — which never blocks the
//! writer or readers — every [`INTERVAL`] when something was committed meanwhile. Durability
//! is unchanged: a commit is durable once its WAL frames are synced, checkpointed or not.
//! The writer still runs a TRUNCATE checkpoint when it closes.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use docket_core::{Error, Result};
use rusqlite::Connection;

use crate::writer::sql_err;

/// How often the WAL is checkpointed while writes come in. Under a sustained create load
/// that is ~10 MB of WAL between checkpoints (the default threshold, 1,000 pages, was
/// reached every ~70 ms).
const INTERVAL: Duration = Duration::from_millis(250);

/// The running checkpoint thread; stops when dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `path`. `commits` is the writer's count of
    /// committed batches: a checkpoint runs only when it moved.
    pub fn start(path: &Path, commits: Arc<AtomicU64>) -> Result<Checkpointer> {
        let conn = Connection::open(path).map_err(sql_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(sql_err)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&conn, &commits, &stopped))
            .map_err(|e| Error::Internal(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once.
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, commits: &AtomicU64, stopped: &mpsc::Receiver<()>) {
    let mut seen = commits.load(Ordering::Relaxed);
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}
