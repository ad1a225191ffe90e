//! Docket's SQLite store: tickets, history, search index and small records in one database
//! file in WAL mode. The only crate (with the PostgreSQL one) that speaks SQL; every value
//! reaches SQL as a bound parameter.
//!
//! Writes go to one writer task that owns the write connection and commits queued writes
//! together (group commit, see `writer.rs`); reads go through a pool. Because the writer is
//! its own task, a client that hangs up cannot cancel a transaction half way.

mod bitmap_search;
mod checkpointer;
mod compact_rows;
mod feed;
#[cfg(test)]
mod index_tests;
mod keyword_index;
mod matches;
mod outbox;
mod point_reads;
mod priority;
mod records;
mod search;
mod search_pool;
mod syncer;
mod text_queue;
mod tickets;
mod write_tx;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use docket_core::feed::FeedRead;
use docket_core::model::Ticket;
use docket_core::notify::{OutboxItem, OutboxRow};
use docket_core::store::{
    CreateOutcome, CreateTicket, RecordKind, RecordMutation, RowPage, RowShape, SearchPage,
    SearchRequest, Store, StoredPage, StoredRow, StoredTicket, TicketCheckOut, TicketEvent,
    TicketEventKind, TicketMutationOut, TicketPairEdit, TicketRef, TICKET_EVENT_CAPACITY,
};
use docket_core::{kernel, Error, Result};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::broadcast;
use write_tx::SqliteTx;
use writer::run_now;

pub use search::render_filter;

/// How the database file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `FULL`: each commit is fsynced, an acknowledged write survives power loss.
    /// `NORMAL`: survives a crash of the process, not of the machine.
    pub synchronous_full: bool,
    /// Connections for point reads (tickets by id, records, auth).
    pub read_connections: u32,
    /// Connections only searches use, so a slow search never holds one a point read needs.
    pub search_connections: u32,
    /// How long one search may run before SQLite stops it.
    pub search_timeout: Duration,
    /// The configured priority levels (the ranks of `sort_by=priority`; see priority.rs).
    pub priorities: docket_core::rules::PriorityLevels,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous_full: true,
            read_connections: 4,
            search_connections: 3,
            search_timeout: Duration::from_secs(10),
            priorities: Default::default(),
        }
    }
}

/// The SQLite implementation of [`docket_core::store::Store`]. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    /// Tickets and records by key, without sqlx's per-statement thread hand-off.
    points: Arc<point_reads::PointReader>,
    /// The searches' own read connections and threads (see
    /// [`SqliteOptions::search_connections`]).
    searcher: Arc<search_pool::SearchPool>,
    search_timeout: Duration,
    writer: writer::Writer,
    /// Keyword terms and all ticket numbers as bitmaps, kept by the writer.
    index: Arc<keyword_index::KeywordIndex>,
    /// Ticket events, sent by the writer task after each COMMIT (see `ticket_write`).
    events: broadcast::Sender<TicketEvent>,
}

pub(crate) fn db_err(e: sqlx::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies migrations and, when the
    /// index was built by another analyzer version, reindexes every ticket.
    pub async fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore> {
        let base = SqliteConnectOptions::from_str("sqlite://")
            .map_err(db_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 8 MB of page cache per connection keeps the whole server near 100 MB resident.
            .pragma("cache_size", "-8000")
            .pragma("temp_store", "memory");
        let mut conn = SqliteConnection::connect_with(&base)
            .await
            .map_err(db_err)?;
        sqlx::migrate!("./migrations")
            .run(&mut conn)
            .await
            .map_err(|e| Error::Internal(format!("sqlite migration: {e}")))?;
        conn.close().await.map_err(db_err)?;
        // The writer's own synchronous connection (see `writer.rs`); it is prepared here,
        // before the writer thread takes it, on a blocking thread (a large backfill or index
        // build reads the whole table).
        let (conn, index) = {
            let path = path.to_path_buf();
            let synchronous_full = options.synchronous_full;
            let priorities = options.priorities.clone();
            tokio::task::spawn_blocking(move || -> Result<_> {
                let conn = writer::open_connection(&path, synchronous_full)?;
                // Rows from before the list sort keys existed get them now (a no-op afterwards).
                let backfilled = tickets::backfill_sort_keys(&conn)?;
                if backfilled > 0 {
                    tracing::info!(tickets = backfilled, "assignee and tag sort keys filled in");
                }
                // Tickets from before priorities get the default; ranks follow the configured
                // levels.
                let synced = priority::sync(&conn, &priorities)?;
                if synced != priority::Synced::default() {
                    tracing::info!(
                        defaulted = synced.defaulted,
                        reranked = synced.reranked,
                        "ticket priorities brought in step with tickets.priorities"
                    );
                }
                keyword_index::install_capture(&conn)?;
                text_queue::install(&conn)?;
                let index = keyword_index::KeywordIndex::new(keyword_index::build(&conn)?);
                Ok((conn, Arc::new(index)))
            })
            .await
            .map_err(Error::internal)??
        };
        let writer = writer::Writer::start(conn, index.clone(), options.synchronous_full)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            // All open from the start: a text search uses two at once when two are idle.
            .min_connections(options.read_connections.max(1))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().read_only(true))
            .await
            .map_err(db_err)?;
        let searcher = Arc::new(search_pool::SearchPool::open(
            path,
            options.search_connections,
        )?);
        let store = SqliteStore {
            reader,
            points: Arc::new(point_reads::PointReader::new(path)),
            searcher,
            search_timeout: options.search_timeout,
            writer,
            index,
            events: broadcast::channel(TICKET_EVENT_CAPACITY).0,
        };
        // After an analyzer change the stored tokens are stale: rebuild them now.
        docket_core::index_version::upgrade_index(&store).await?;
        Ok(store)
    }

    /// Finishes queued writes, checkpoints the WAL and closes the connections.
    pub async fn close(&self) {
        self.searcher.close();
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Every record of `kind` with its id and lookup key, for copying to another store.
    pub async fn export_records(
        &self,
        kind: RecordKind,
    ) -> Result<Vec<(String, Option<String>, Value)>> {
        records::export(&self.reader, kind).await
    }

    /// Up to `limit` outbox rows above id `after` with their unique keys, for copying.
    pub async fn export_outbox(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(OutboxRow, Option<String>)>> {
        outbox::export(&self.reader, after, limit).await
    }

    pub async fn record_count(&self, kind: RecordKind) -> Result<u64> {
        records::count(&self.reader, kind).await
    }

    pub async fn outbox_count(&self) -> Result<u64> {
        outbox::count(&self.reader).await
    }

    /// Runs `work` in the writer's next group transaction.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// A ticket write: `work` in the writer's next group transaction; once it committed, the
    /// events `announce` derives from its result (none, one, or one per ticket changed) are
    /// published in order (in commit order, before the caller is answered). With nobody
    /// subscribed the send fails, which is fine.
    async fn ticket_write<T, F, E>(&self, work: F, announce: fn(&T) -> E) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T> + Send + 'static,
        E: IntoIterator<Item = TicketEvent> + 'static,
    {
        let events = self.events.clone();
        self.writer
            .write_then(work, move |out: &T| {
                for event in announce(out) {
                    let _ = events.send(event);
                }
            })
            .await
    }
}

/// The events of a delete: the deleted ticket, then each related ticket that lost its
/// relations to it.
fn deleted_unlinking(out: &Option<(Ticket, Vec<Ticket>)>) -> Vec<TicketEvent> {
    let Some((gone, unlinked)) = out else {
        return Vec::new();
    };
    let now = kernel::now_secs();
    std::iter::once(TicketEvent::of(gone, TicketEventKind::Deleted, now))
        .chain(
            unlinked
                .iter()
                .map(|t| TicketEvent::of(t, TicketEventKind::Updated, t.modified)),
        )
        .collect()
}

/// The events of a change of two tickets.
fn updated_pair(out: &Option<(Ticket, Ticket)>) -> Vec<TicketEvent> {
    out.iter()
        .flat_map(|(a, b)| [a, b])
        .map(|t| TicketEvent::of(t, TicketEventKind::Updated, t.modified))
        .collect()
}

/// The event of a create's result.
fn created(out: &Option<Ticket>) -> Option<TicketEvent> {
    out.as_ref()
        .map(|t| TicketEvent::of(t, TicketEventKind::Created, t.modified))
}

/// The event of an automation create: a dedupe hit updated an existing ticket; a replay
/// wrote nothing.
fn created_with(out: &CreateOutcome) -> Option<TicketEvent> {
    match out {
        CreateOutcome::Created(t) => Some(TicketEvent::of(t, TicketEventKind::Created, t.modified)),
        CreateOutcome::Deduplicated(t) => {
            Some(TicketEvent::of(t, TicketEventKind::Updated, t.modified))
        }
        CreateOutcome::Replayed { .. } | CreateOutcome::IdTaken => None,
    }
}

fn updated(out: &Option<Ticket>) -> Option<TicketEvent> {
    out.as_ref()
        .map(|t| TicketEvent::of(t, TicketEventKind::Updated, t.modified))
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn create_ticket(&self, ticket: Ticket) -> Result<Option<Ticket>> {
        self.ticket_write(
            move |c| run_now(kernel::create(&mut SqliteTx(c), ticket)),
            created,
        )
        .await
    }
    async fn create_ticket_with(&self, request: CreateTicket) -> Result<CreateOutcome> {
        self.ticket_write(
            move |c| run_now(kernel::create_with(&mut SqliteTx(c), request)),
            created_with,
        )
        .await
    }
    async fn ticket_by_id(&self, id: &str) -> Result<Option<Ticket>> {
        self.points
            .ticket(TicketRef::Id(id))?
            .map(|t| tickets::parse(&t.json))
            .transpose()
    }
    async fn ticket_by_num(&self, num: i64) -> Result<Option<Ticket>> {
        self.points
            .ticket(TicketRef::Num(num))?
            .map(|t| tickets::parse(&t.json))
            .transpose()
    }
    async fn tickets_by_ids(&self, ids: &[String]) -> Result<Vec<Option<Ticket>>> {
        tickets::by_ids(&self.reader, ids).await
    }
    async fn update_ticket_out(
        &self,
        id: &str,
        mutate: TicketMutationOut,
    ) -> Result<Option<Ticket>> {
        let id = id.to_string();
        self.ticket_write(
            move |c| run_now(kernel::update(&mut SqliteTx(c), &id, mutate)),
            updated,
        )
        .await
    }
    async fn delete_ticket_out(&self, id: &str, check: TicketCheckOut) -> Result<Option<Ticket>> {
        let id = id.to_string();
        let out = self
            .ticket_write(
                move |c| run_now(kernel::delete_unlinking(&mut SqliteTx(c), &id, check)),
                deleted_unlinking,
            )
            .await?;
        Ok(out.map(|(gone, _)| gone))
    }
    async fn update_ticket_pair(&self, edit: TicketPairEdit) -> Result<Option<(Ticket, Ticket)>> {
        self.ticket_write(
            move |c| run_now(kernel::update_pair(&mut SqliteTx(c), edit)),
            updated_pair,
        )
        .await
    }
    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64> {
        self.write(move |c| outbox::insert(c, &items, kernel::now_secs()))
            .await
    }
    async fn outbox_claim(
        &self,
        now: i64,
        lease_until: i64,
        groups: u32,
    ) -> Result<Vec<OutboxRow>> {
        self.write(move |c| outbox::claim(c, now, lease_until, groups))
            .await
    }
    async fn outbox_next_due(&self) -> Result<Option<i64>> {
        outbox::next_due(&self.reader).await
    }
    async fn outbox_sent(&self, ids: Vec<i64>, now: i64) -> Result<()> {
        self.write(move |c| outbox::sent(c, &ids, now)).await
    }
    async fn outbox_failed(&self, ids: Vec<i64>, error: String, retry_at: i64) -> Result<()> {
        self.write(move |c| outbox::failed(c, &ids, &error, retry_at))
            .await
    }
    async fn outbox_list(&self, pending_only: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        outbox::list(&self.reader, pending_only, limit).await
    }
    async fn outbox_sent_since(&self, channel: &str, since: i64) -> Result<u64> {
        outbox::sent_since(&self.reader, channel, since).await
    }
    async fn search_tickets(&self, request: &SearchRequest) -> Result<SearchPage> {
        let page = self.search_stored(request).await?;
        Ok(SearchPage {
            rows: page
                .rows
                .iter()
                .map(|d| search::parse_ticket(d))
                .collect::<Result<_>>()?,
            total: page.total,
        })
    }
    /// Publishes no ticket events (a bulk load, not edits; see `TicketEvent`).
    async fn import_tickets(&self, tickets: Vec<Ticket>) -> Result<u64> {
        self.write(move |c| tickets::insert_many(c, tickets)).await
    }
    async fn import_numbered(&self, tickets: Vec<Ticket>) -> Result<u64> {
        self.write(move |c| tickets::insert_numbered(c, tickets))
            .await
    }
    async fn ticket_count(&self) -> Result<u64> {
        tickets::count(&self.reader).await
    }
    async fn reindex_batch(&self, after: i64, limit: u32) -> Result<Option<(i64, u64)>> {
        self.write(move |c| tickets::reindex_batch(c, after, limit))
            .await
    }

    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Value>> {
        self.points
            .record(kind, point_reads::RecordKey::Id(id))?
            .map(|d| records::parse(&d))
            .transpose()
    }
    async fn find_record(&self, kind: RecordKind, lookup: &str) -> Result<Option<Value>> {
        self.points
            .record(kind, point_reads::RecordKey::Lookup(lookup))?
            .map(|d| records::parse(&d))
            .transpose()
    }
    async fn list_records(&self, kind: RecordKind) -> Result<Vec<Value>> {
        records::list(&self.reader, kind).await
    }
    async fn insert_record(
        &self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool> {
        let (id, lookup, data) = (id.to_string(), lookup.map(str::to_string), data.clone());
        self.write(move |c| records::insert(c, kind, &id, lookup.as_deref(), &data.to_string()))
            .await
    }
    async fn update_record(
        &self,
        kind: RecordKind,
        id: &str,
        mutate: RecordMutation,
    ) -> Result<Option<Value>> {
        let id = id.to_string();
        self.write(move |c| run_now(kernel::update_record(&mut SqliteTx(c), kind, &id, mutate)))
            .await
    }
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| records::delete(c, kind, &id)).await
    }
    async fn purge_expired(&self, kind: RecordKind, now: i64) -> Result<u64> {
        self.write(move |c| records::purge_expired(c, kind, now))
            .await
    }
    async fn expired_records(&self, kind: RecordKind, now: i64, limit: u32) -> Result<Vec<Value>> {
        records::expired(&self.reader, kind, now, limit).await
    }
    async fn records_of_ticket(&self, kind: RecordKind, ticket: &str) -> Result<Vec<Value>> {
        records::of_ticket(&self.reader, kind, ticket).await
    }
    fn ticket_events(&self) -> broadcast::Receiver<TicketEvent> {
        self.events.subscribe()
    }
    async fn feed_after(&self, after: i64, limit: u32) -> Result<FeedRead> {
        feed::read(&self.reader, after, limit).await
    }
    async fn feed_prune(&self, before: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            // One batch per transaction, so writes queued meanwhile wait for one batch only.
            let n = self.write(move |c| feed::prune_batch(c, before)).await?;
            if n == 0 {
                return Ok(removed);
            }
            removed += n;
        }
    }
    async fn stored_ticket(&self, which: TicketRef<'_>) -> Result<Option<StoredTicket>> {
        self.points.ticket(which)
    }
    async fn search_stored(&self, request: &SearchRequest) -> Result<StoredPage> {
        let page = self.search_rows(request, RowShape::Full).await?;
        Ok(StoredPage {
            rows: page
                .rows
                .into_iter()
                .map(|row| match row {
                    StoredRow::Full(text) | StoredRow::Compact(text) => text,
                })
                .collect(),
            total: page.total,
        })
    }
    async fn search_rows(&self, request: &SearchRequest, shape: RowShape) -> Result<RowPage> {
        let started = std::time::Instant::now();
        let deadline = started + self.search_timeout;
        let found = search::search(
            &self.searcher,
            &self.index,
            &self.writer,
            request,
            shape,
            deadline,
        )
        .await;
        match found {
            // SQLITE_INTERRUPT from the progress handler (or a pool wait past the deadline).
            Err(Error::Internal(detail)) if std::time::Instant::now() >= deadline => {
                tracing::info!(%detail, elapsed = ?started.elapsed(), "search stopped at its deadline");
                Err(Error::search_timeout(self.search_timeout))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use docket_core::store::SortField;

    use docket_store_conformance::{find, ticket};

    async fn fresh_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
            .await
            .unwrap();
        (dir, store)
    }

    docket_store_conformance::store_conformance!(fresh_store);

    /// Durable writes are answered by the sync thread, only after the WAL is synced
    /// (`syncer.rs`): the commit itself no longer syncs, and when the WAL cannot be synced
    /// the answer says so instead of acknowledging the write.
    #[tokio::test]
    async fn a_durable_write_is_answered_only_after_its_wal_sync() {
        let (dir, store) = fresh_store().await;
        store
            .create_ticket(ticket("a", "synced"))
            .await
            .unwrap()
            .unwrap();
        let synced_by_thread = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
            .any(|name| name.trim() == "sqlite-sync");
        assert!(synced_by_thread, "no WAL sync thread");
        // A WAL that is gone cannot be synced (SQLite writes on to the unlinked file).
        std::fs::remove_file(dir.path().join("t.db-wal")).unwrap();
        let refused = store.create_ticket(ticket("b", "not synced")).await;
        let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("could not be made durable"),
            "answered: {err:?}"
        );
    }

    /// The bundled SQLite is built with memory statistics off (`.cargo/config.toml`): with
    /// them on, every allocation SQLite makes takes one global mutex.
    #[test]
    fn sqlite_is_built_without_memory_statistics() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let used: bool = conn
            .query_row(
                "SELECT sqlite_compileoption_used('DEFAULT_MEMSTATUS=0')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            used,
            "LIBSQLITE3_FLAGS from .cargo/config.toml did not reach the build"
        );
    }

    /// SQLite keeps the compact row ready (migration 0012) for every ticket that reads the
    /// same to all readers, also for tickets written before that migration.
    #[tokio::test]
    async fn compact_rows_are_kept_for_tickets_every_reader_sees_alike() {
        let (dir, store) = fresh_store().await;
        for id in ["a", "b", "c"] {
            store
                .create_ticket(ticket(id, "compact me"))
                .await
                .unwrap()
                .unwrap();
        }
        let mut noted = ticket("noted", "hidden note");
        noted.changes.push(docket_core::model::Change {
            kind: "comment".into(),
            internal: true,
            ..Default::default()
        });
        store.create_ticket(noted).await.unwrap().unwrap();
        let given = docket_store_conformance::check_compact_rows(&store).await;
        assert_eq!(given, ["a", "b", "c"]);
        store.close().await;

        // The database changed behind the store's back by `change`, then opened again: the
        // compact rows are complete and exact.
        let path = dir.path().join("t.db");
        let after = |change: &dyn Fn(&rusqlite::Connection)| {
            let conn = rusqlite::Connection::open(&path).unwrap();
            change(&conn);
            drop(conn);
            let path = path.clone();
            async move {
                let store = SqliteStore::open(&path, &SqliteOptions::default())
                    .await
                    .unwrap();
                let given = docket_store_conformance::check_compact_rows(&store).await;
                store.close().await;
                given
            }
        };
        // As if written before migration 0012: no compact rows. Opening the store migrates
        // again and fills them (in SQL).
        let migrated = after(&|conn| {
            conn.execute_batch(
                "DROP TABLE ticket_compact; DELETE FROM _sqlx_migrations WHERE version = 12;",
            )
            .unwrap()
        })
        .await;
        assert_eq!(migrated, ["a", "b", "c"]);
        // And the refill that follows a rewrite of the stored JSON in SQL.
        let refilled = after(&|conn| {
            conn.execute_batch("UPDATE ticket_compact SET row = '{}'")
                .unwrap();
            compact_rows::refill_all(conn).unwrap();
        })
        .await;
        assert_eq!(refilled, ["a", "b", "c"]);
    }

    /// The checkpoint thread copies committed writes into the database file while the
    /// server runs: a copy of `t.db` alone (without its WAL) holds them a moment later.
    #[tokio::test]
    async fn committed_writes_reach_the_database_file_without_closing() {
        let (dir, store) = fresh_store().await;
        for i in 0..50 {
            store
                .create_ticket(ticket(&format!("t{i}"), "checkpointed"))
                .await
                .unwrap()
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        let mut found = 0;
        for _ in 0..40 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            std::fs::copy(dir.path().join("t.db"), &copy).unwrap();
            let c = rusqlite::Connection::open(&copy).unwrap();
            found = c
                .query_row("SELECT count(*) FROM tickets", [], |r| r.get::<_, i64>(0))
                .unwrap();
            drop(c);
            let _ = std::fs::remove_file(dir.path().join("copy.db-wal"));
            if found == 50 {
                break;
            }
        }
        assert_eq!(found, 50, "the database file lacks committed tickets");
        store.close().await;
    }

    #[tokio::test]
    async fn numbers_are_never_reused_and_reindex_restores_search() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
            .await
            .unwrap();
        let a = store
            .create_ticket(ticket("a", "disk full"))
            .await
            .unwrap()
            .unwrap();
        let b = store
            .create_ticket(ticket("b", "network down"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((a.num, b.num), (1, 2));
        assert!(store
            .create_ticket(ticket("a", "dup"))
            .await
            .unwrap()
            .is_none());
        store
            .delete_ticket("b", Box::new(|_| Ok(())))
            .await
            .unwrap()
            .unwrap();
        let c = store
            .create_ticket(ticket("c", "disk slow"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.num, 3, "a deleted ticket's number is not reused");
        assert_eq!(find(&store, "disk").await, vec!["a", "c"]);

        // Lose the index, then rebuild it from the records.
        store
            .write(|c| {
                c.execute_batch("DELETE FROM ticket_text; DELETE FROM ticket_keywords;")
                    .map_err(writer::sql_err)
            })
            .await
            .unwrap();
        assert!(find(&store, "disk").await.is_empty());
        assert_eq!(store.ticket_count().await.unwrap(), 2);
        let mut after = 0;
        let mut done = 0;
        while let Some((last, n)) = store.reindex_batch(after, 1).await.unwrap() {
            after = last;
            done += n;
        }
        assert_eq!(done, 2);
        assert_eq!(find(&store, "disk").await, vec!["a", "c"]);
        assert_eq!(find(&store, "status:open").await, vec!["a", "c"]);
        store.close().await;
    }

    /// A database indexed by an older analyzer (a dotted host as one token) is reindexed
    /// when it is opened, once.
    #[tokio::test]
    async fn an_index_of_an_older_analyzer_is_rebuilt_at_open() {
        use docket_core::index_version::{stored_version, upgrade_index, ANALYZER_META};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, &SqliteOptions::default())
            .await
            .unwrap();
        let mut t = ticket("a", "dashboards");
        t.body = "see https://grafana.example.com/d/x".into();
        let a = store.create_ticket(t).await.unwrap().unwrap();
        // What version 1 wrote: the host as one token; and no version recorded.
        store
            .write(move |c| {
                c.execute("DELETE FROM ticket_text WHERE rowid = ?1", [a.num])
                    .and_then(|_| {
                        c.execute(
                            "INSERT INTO ticket_text (rowid, subject, body, changes) \
                             VALUES (?1, 'dashboard', 'see grafana_example_com', '')",
                            [a.num],
                        )
                    })
                    .map(drop)
                    .map_err(writer::sql_err)
            })
            .await
            .unwrap();
        store
            .delete_record(RecordKind::Meta, ANALYZER_META)
            .await
            .unwrap();
        assert!(find(&store, "grafana").await.is_empty());
        store.close().await;

        let store = SqliteStore::open(&path, &SqliteOptions::default())
            .await
            .unwrap();
        for query in [
            "grafana",
            "example",
            "grafana.example.com",
            "\"grafana example\"",
        ] {
            assert_eq!(find(&store, query).await, vec!["a"], "{query}");
        }
        assert_eq!(
            stored_version(&store).await.unwrap(),
            Some(docket_query::ANALYZER_VERSION)
        );
        assert_eq!(upgrade_index(&store).await.unwrap(), None, "only once");
        store.close().await;
    }

    /// A database from before migration 0006 (no list sort keys) gets the columns and every
    /// ticket its keys when it is opened.
    #[tokio::test]
    async fn tickets_from_before_the_list_sort_keys_get_them_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, &SqliteOptions::default())
            .await
            .unwrap();
        for (id, assignees, tags) in [
            ("a", vec!["carol"], vec!["Zulu"]),
            ("b", vec![], vec!["alpha", "Ops"]),
            ("c", vec!["Émile", "dave"], vec![]),
            ("d", vec!["bob"], vec!["ops"]),
        ] {
            let mut t = ticket(id, "old ticket");
            t.assignees = assignees.into_iter().map(String::from).collect();
            t.tags = tags.into_iter().map(String::from).collect();
            store.create_ticket(t).await.unwrap().unwrap();
        }
        store.close().await;
        // Back to schema 5: no key columns, and migration 6 not applied.
        let url = format!("sqlite://{}", path.display());
        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        for sql in [
            "DROP INDEX tickets_assignee_key",
            "DROP INDEX tickets_tag_key",
            "ALTER TABLE tickets DROP COLUMN assignee_key",
            "ALTER TABLE tickets DROP COLUMN tag_key",
            "DELETE FROM _sqlx_migrations WHERE version = 6",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();

        let store = SqliteStore::open(&path, &SqliteOptions::default())
            .await
            .unwrap();
        let keys: Vec<(String, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT id, assignee_key, tag_key FROM tickets ORDER BY num")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let key = |s: &str| Some(s.to_string());
        assert_eq!(
            keys,
            vec![
                ("a".into(), key("carol"), key("zulu")),
                ("b".into(), key(""), key("alpha")),
                ("c".into(), key("dave"), key("")),
                ("d".into(), key("bob"), key("ops")),
            ]
        );
        let sorted = |sort_by, descending| {
            let store = &store;
            async move {
                let ctx = docket_query::LowerCtx {
                    tz: jiff::tz::TimeZone::UTC,
                    now: jiff::Timestamp::now(),
                };
                let page = store
                    .search_tickets(&SearchRequest {
                        filter: docket_query::compile("*", &ctx).unwrap(),
                        categories: None,
                        sort_by,
                        descending,
                        offset: 0,
                        limit: 100,
                    })
                    .await
                    .unwrap();
                page.rows.into_iter().map(|t| t.id).collect::<Vec<_>>()
            }
        };
        assert_eq!(
            sorted(SortField::Assignees, false).await,
            ["b", "d", "a", "c"]
        );
        assert_eq!(sorted(SortField::Tags, true).await, ["a", "d", "b", "c"]);
        store.close().await;
    }

    #[tokio::test]
    async fn a_write_rolled_back_in_a_group_commit_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default())
            .await
            .unwrap();
        store
            .create_ticket(ticket("base", "base ticket"))
            .await
            .unwrap()
            .unwrap();
        let mut rx = store.ticket_events();
        let mut tasks = Vec::new();
        for i in 0..60 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if i % 3 == 0 {
                    // Writes the ticket row, then fails: rolled back to its savepoint.
                    let _ = store
                        .update_ticket(
                            "base",
                            Box::new(|t| {
                                t.subject = "poisoned".into();
                                Err(Error::Ticket("rejected".into()))
                            }),
                        )
                        .await;
                    None
                } else {
                    let t = store
                        .create_ticket(ticket(&format!("t{i}"), "grouped write"))
                        .await
                        .unwrap()
                        .unwrap();
                    Some((t.id, t.num))
                }
            }));
        }
        let mut created = Vec::new();
        for task in tasks {
            created.extend(task.await.unwrap());
        }
        created.sort_by_key(|c| c.1);
        let mut heard = Vec::new();
        while let Ok(e) = rx.try_recv() {
            assert_eq!(e.kind, TicketEventKind::Created, "{e:?}");
            heard.push((e.id, e.num));
        }
        // Published in commit order, which is number order here.
        assert_eq!(heard, created);
        assert_eq!(heard.len(), 40);
        store.close().await;
    }
}
