//! Group commit with the WAL's sync off the writer thread.
//!
//! With `synchronous = FULL` every COMMIT synced the WAL on the writer thread, which sat idle
//! meanwhile: under a create load the writer was busy ~80 % of the time and waited for the
//! disk the rest (BENCHMARKS.md, "The WAL sync off the writer thread"). Now, when commits are
//! to be durable, the write connection commits with `synchronous = NORMAL` (no sync at
//! COMMIT) and hands the batch's answers to this thread. It syncs the WAL file
//! (`fdatasync`), and only then answers the batch's callers and publishes its events, in
//! commit order, while the writer already runs the next batch. One sync covers every batch
//! committed before it began, so under load several batches share one.
//!
//! What is acknowledged is on disk, exactly as before. What changes: a reader may see a
//! committed write up to one sync (well under a millisecond) before it is durable. A power
//! loss in that moment (not a crash of the process: the system keeps what was written) can
//! take such a write away; its writer was never answered. Every write, also one that read
//! such a ticket, is answered only after a sync that covers all that was committed before
//! it, so nothing an acknowledged write depended on can be lost. Checkpoints stay safe: with
//! `NORMAL` SQLite syncs the WAL itself before copying it into the database.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use docket_core::{Error, Result};

use crate::writer::Finish;

/// The running sync thread. Dropping it answers everything handed over, then stops it.
pub struct Syncer {
    batches: Option<mpsc::Sender<Vec<Finish>>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// Starts the thread for the database at `db` (its WAL is `db` + `-wal`).
    pub fn start(db: &Path) -> Result<Syncer> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let (batches, taken) = mpsc::channel::<Vec<Finish>>();
        let thread = std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || run(&wal, &taken))
            .map_err(|e| Error::Internal(format!("cannot start the WAL sync thread: {e}")))?;
        Ok(Syncer {
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    /// Answers a committed batch's callers once the WAL is synced (at once with an error if
    /// the thread is gone).
    pub fn answer_when_durable(&self, finishes: Vec<Finish>) {
        let unsent = match &self.batches {
            Some(batches) => batches.send(finishes).err().map(|e| e.0),
            None => Some(finishes),
        };
        for finish in unsent.into_iter().flatten() {
            finish(Err(not_durable("the WAL sync thread stopped")));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has answered every batch sent.
        self.batches.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn not_durable(why: &str) -> Error {
    Error::Internal(format!(
        "the write was committed but could not be made durable: {why}"
    ))
}

fn run(wal: &Path, taken: &mpsc::Receiver<Vec<Finish>>) {
    let mut file = None;
    while let Ok(first) = taken.recv() {
        // Every batch committed by now is in the WAL: one sync covers them all.
        let mut batches = vec![first];
        batches.extend(taken.try_iter());
        let synced = sync(&mut file, wal).map_err(|e| {
            tracing::error!(error = %e, "cannot sync the WAL");
            e.to_string()
        });
        for finish in batches.into_iter().flatten() {
            finish(synced.clone().map_err(|e| not_durable(&e)));
        }
    }
}

/// Syncs the WAL file's data. The file is opened again when it was replaced (SQLite deletes
/// and makes it anew only when every connection closed, so normally it is opened once), and
/// its directory is synced then too, so that a new WAL file's name is on disk as well.
fn sync(file: &mut Option<(File, u64)>, wal: &Path) -> std::io::Result<()> {
    let inode = std::fs::metadata(wal)?.ino();
    let (open, _) = match file.take() {
        Some((f, ino)) if ino == inode => file.insert((f, ino)),
        _ => {
            let opened = File::open(wal)?;
            if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            file.insert((opened, inode))
        }
    };
    open.sync_data()
}
