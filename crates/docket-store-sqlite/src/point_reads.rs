//! Point reads on synchronous connections: a ticket by id or number, a record by id or
//! lookup key.
//!
//! Such a read is one indexed lookup of a few microseconds. Through sqlx it costs two thread
//! hand-offs (the statement to the connection's worker thread, the row back); under load
//! those context switches were a third of the server's time for `get_ticket` (BENCHMARKS.md,
//! "Issue 15: request path"). Here the statement runs on the calling thread with rusqlite
//! (the same linked SQLite), on a read-only connection taken from a small pool, its
//! prepared statement cached. In WAL mode a reader never waits for the writer, so the
//! calling thread is held only for the lookup itself.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use docket_core::store::{RecordKind, StoredTicket, TicketRef};
use docket_core::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Idle connections kept; a read finding none opens one (a burst beyond this many
/// concurrent point reads opens and closes extra connections rather than waiting).
const MAX_IDLE: usize = 8;

pub struct PointReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}

impl PointReader {
    pub fn new(path: &Path) -> PointReader {
        PointReader {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Point reads touch a few pages each: a small cache per connection is enough.
        conn.pragma_update(None, "cache_size", -2000)?;
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one) and puts it back.
    fn run<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open().map_err(db_err)?,
        };
        let out = read(&conn).map_err(db_err);
        let mut pool = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE {
            pool.push(conn);
        }
        out
    }

    /// The stored JSON of a ticket with its category.
    pub fn ticket(&self, which: TicketRef<'_>) -> Result<Option<StoredTicket>> {
        self.run(|c| {
            let row = |r: &rusqlite::Row<'_>| {
                Ok(StoredTicket {
                    category: r.get(0)?,
                    json: r.get(1)?,
                })
            };
            match which {
                TicketRef::Id(id) => c
                    .prepare_cached("SELECT category, data FROM tickets WHERE id = ?1")?
                    .query_row([id], row)
                    .optional(),
                TicketRef::Num(num) => c
                    .prepare_cached("SELECT category, data FROM tickets WHERE num = ?1")?
                    .query_row([num], row)
                    .optional(),
            }
        })
    }

    /// The stored JSON of a record by its id, or by its lookup key.
    pub fn record(&self, kind: RecordKind, key: RecordKey<'_>) -> Result<Option<String>> {
        self.run(|c| {
            let sql = match key {
                RecordKey::Id(_) => "SELECT data FROM records WHERE kind = ?1 AND id = ?2",
                RecordKey::Lookup(_) => "SELECT data FROM records WHERE kind = ?1 AND lookup = ?2",
            };
            let (RecordKey::Id(k) | RecordKey::Lookup(k)) = key;
            c.prepare_cached(sql)?
                .query_row([kind.as_str(), k], |r| r.get(0))
                .optional()
        })
    }
}

/// How a record is found.
#[derive(Clone, Copy)]
pub enum RecordKey<'a> {
    Id(&'a str),
    Lookup(&'a str),
}
