//! The single writer with group commit.
//!
//! SQLite allows one writer at a time, and with `synchronous=FULL` every commit waits for an
//! fsync. So one task owns the write connection and takes whatever writes are queued (up to
//! [`MAX_BATCH`]) into one transaction: each write runs inside its own SAVEPOINT (a failed
//! write is rolled back alone), then one COMMIT — one fsync — makes the whole batch durable.
//! Nobody is answered before that commit, so an acknowledged write is always on disk.

use docket_core::{Error, Result};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

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
    Close(oneshot::Sender<()>),
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
    pub fn start(conn: SqliteConnection) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx));
        Writer { tx }
    }

    /// Runs `work` in the next group transaction and returns its result after the commit.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |c| {
            Box::pin(async move {
                let out = work(c).await;
                let ok = out.is_ok();
                let finish: Finish = Box::new(move |commit: Result<()>| {
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

async fn run(mut conn: SqliteConnection, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else { break };
        let mut batch = Vec::new();
        match first {
            Msg::Write(job) => batch.push(job),
            Msg::Close(done) => closing = Some(done),
        }
        while batch.len() < MAX_BATCH && closing.is_none() {
            match rx.try_recv() {
                Ok(Msg::Write(job)) => batch.push(job),
                Ok(Msg::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&mut conn, batch).await;
        }
    }
    let _ = exec(&mut conn, "PRAGMA wal_checkpoint(TRUNCATE)").await;
    let _ = conn.close().await;
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Job>) {
    let mut finishes = Vec::with_capacity(batch.len());
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE").await {
        // Dropping the jobs answers their callers with an error; nothing was written.
        tracing::error!(error = %e, "cannot begin a write transaction");
        return;
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
                return;
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
    let committed = exec(conn, "COMMIT").await;
    if committed.is_err() {
        let _ = exec(conn, "ROLLBACK").await;
    }
    let failure = committed.err().map(|e| e.to_string());
    for finish in finishes {
        finish(match &failure {
            None => Ok(()),
            Some(msg) => Err(Error::Internal(msg.clone())),
        });
    }
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
