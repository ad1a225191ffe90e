//! Docket's PostgreSQL store: tickets, history, search index and small records, for one or
//! several server processes sharing one database. The same observable behaviour as the
//! SQLite store (`docket-store-sqlite`), module by module; every value reaches SQL as a
//! bound parameter.
//!
//! Every [`Store`] method is one transaction. Writes run on their own task, so a caller that
//! goes away (a client hanging up) cannot cancel a transaction half way — as with the SQLite
//! store's writer task. What the single SQLite writer gives for free is done with locks
//! here: ticket numbers come from a sequence, mutations read their row `FOR UPDATE`, the
//! automation create takes advisory locks on its idempotency and dedupe keys, and the outbox
//! claim takes advisory try-locks on the groups it claims; change-feed rows are numbered
//! after they commit, by readers, one sequencing step at a time (see the modules).

mod events;
mod feed;
mod index;
mod outbox;
mod priority;
mod records;
mod search;
mod stored;
mod tickets;
mod write_tx;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use docket_core::feed::FeedRead;
use docket_core::model::Ticket;
use docket_core::notify::{OutboxItem, OutboxRow};
use docket_core::store::{
    CreateOutcome, CreateTicket, RecordEvents, RecordKind, RecordMutation, SearchPage,
    SearchRequest, Store, StoredPage, StoredTicket, TicketCheckOut, TicketEvent, TicketMutationOut,
    TicketPairEdit, TicketRef, TICKET_EVENT_CAPACITY,
};
use docket_core::{kernel, Error, Result};
use serde_json::Value;
use std::str::FromStr;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::PgConnection;
use tokio::sync::broadcast;
use write_tx::PgTx;

pub use outbox::MAX_HOLD_SECS;
pub use search::{render_filter, MAX_TERMS};

/// A boxed future borrowing a connection inside a transaction.
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// How the connection pool is set up.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections for point reads, writes and background work.
    pub max_connections: u32,
    /// Connections only searches use (on top of `max_connections`), so slow searches never
    /// hold the connections writes and point reads need.
    pub search_connections: u32,
    /// `statement_timeout` of the search connections: PostgreSQL cancels a search statement
    /// that runs longer.
    pub search_timeout: Duration,
    /// The configured priority levels (the ranks of `sort_by=priority`; see priority.rs).
    pub priorities: docket_core::rules::PriorityLevels,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            search_connections: 3,
            search_timeout: Duration::from_secs(10),
            priorities: Default::default(),
        }
    }
}

/// The PostgreSQL implementation of [`docket_core::store::Store`]. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The searches' own connections, each with `statement_timeout` set at connect (a
    /// startup parameter: no extra round trip per search).
    searcher: PgPool,
    search_timeout: Duration,
    /// Ticket events of every node, heard through LISTEN (see `events.rs`).
    events: Arc<events::Events>,
    /// This node's turn at sequencing the feed (feed.rs): readers of one node queue here,
    /// holding no connection, instead of each holding one while waiting for the feed lock.
    sequencer: Arc<tokio::sync::Mutex<()>>,
}

pub(crate) fn db_err(e: sqlx::Error) -> Error {
    Error::Internal(format!("postgres: {e}"))
}

impl PgStore {
    /// Connects and applies the migrations (sqlx takes an advisory lock while it migrates,
    /// so two nodes starting at once are safe); when the index was built by another
    /// analyzer version, reindexes every ticket.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(db_err)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| Error::Internal(format!("postgres migration: {e}")))?;
        let search_options = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(db_err)?
            .options([(
                "statement_timeout",
                format!("{}ms", options.search_timeout.as_millis().max(1)),
            )]);
        let searcher = PgPoolOptions::new()
            .max_connections(options.search_connections.max(1))
            .acquire_timeout(options.search_timeout.max(Duration::from_secs(1)))
            .connect_with(search_options)
            .await
            .map_err(db_err)?;
        // Rows from before the list sort keys existed get them now (a no-op afterwards).
        let backfilled = tickets::backfill_sort_keys(&pool).await?;
        if backfilled > 0 {
            tracing::info!(tickets = backfilled, "assignee and tag sort keys filled in");
        }
        // Tickets from before priorities get the default; ranks follow the configured levels.
        let synced = priority::sync(&pool, &options.priorities).await?;
        if synced.defaulted > 0 || synced.reranked > 0 {
            tracing::info!(
                defaulted = synced.defaulted,
                reranked = synced.reranked,
                "ticket priorities brought in step with tickets.priorities"
            );
        }
        let events = events::Events::start(url, pool.clone(), TICKET_EVENT_CAPACITY).await;
        let store = PgStore {
            pool,
            searcher,
            search_timeout: options.search_timeout,
            events: Arc::new(events),
            sequencer: Arc::new(tokio::sync::Mutex::new(())),
        };
        // After an analyzer change the stored tokens are stale: rebuild them now.
        docket_core::index_version::upgrade_index(&store).await?;
        Ok(store)
    }

    /// Stops the event listener and closes the pool (waits for connections in use to be
    /// returned).
    pub async fn close(&self) {
        self.events.stop();
        self.searcher.close().await;
        self.pool.close().await;
    }

    /// Runs `work` in one transaction on its own task: committed when it returns `Ok`,
    /// rolled back when it returns `Err`.
    async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let out = work(&mut tx).await?;
            tx.commit().await.map_err(db_err)?;
            Ok(out)
        })
        .await
        .map_err(|e| Error::Internal(format!("postgres: the write task failed: {e}")))?
    }

    /// Positions every feed row committed before the call (feed.rs), in steps of one
    /// transaction each; nothing at all when no row waits.
    async fn sequence_feed(&self) -> Result<()> {
        if !feed::has_unpositioned(&self.pool).await? {
            return Ok(());
        }
        let _turn = self.sequencer.lock().await;
        // Whoever had the turn before may have positioned ours already.
        if !feed::has_unpositioned(&self.pool).await? {
            return Ok(());
        }
        while self.write(|c| Box::pin(feed::sequence_batch(c))).await? >= feed::SEQUENCE_BATCH {}
        Ok(())
    }

    /// Exact copies of tickets (for `docket migrate`): each keeps its `num`; a ticket whose
    /// id or number exists is skipped. Written with their search index; then the ticket
    /// number sequence is moved to at least the highest number. Returns how many were
    /// inserted (so running it twice inserts nothing the second time).
    pub async fn copy_tickets(&self, tickets: Vec<Ticket>) -> Result<u64> {
        self.write(move |c| Box::pin(tickets::copy(c, tickets)))
            .await
    }

    /// Inserts raw record rows `(id, lookup, data)` of `kind`; a row whose id or lookup
    /// exists is skipped. Returns how many were inserted.
    pub async fn copy_records(
        &self,
        kind: RecordKind,
        rows: Vec<(String, Option<String>, Value)>,
    ) -> Result<u64> {
        self.write(move |c| Box::pin(records::copy(c, kind, rows)))
            .await
    }

    /// Inserts outbox rows keeping every column, the id too (`unique_keys[i]` belongs to
    /// `rows[i]`); a row whose id or unique key exists is skipped. Then the outbox id
    /// sequence is moved past the highest id. Returns how many were inserted.
    pub async fn copy_outbox(
        &self,
        rows: Vec<OutboxRow>,
        unique_keys: Vec<Option<String>>,
    ) -> Result<u64> {
        self.write(move |c| Box::pin(outbox::copy(c, rows, unique_keys)))
            .await
    }

    /// Brings the tables up to date after a bulk load: fresh planner statistics (until
    /// autovacuum catches up the planner may pick scans orders of magnitude slower) and the
    /// visibility map and hint bits set (otherwise the first searches over each page pay for
    /// that; measured 3-4x slower keyword searches right after a 100k load).
    pub async fn analyze(&self) -> Result<()> {
        sqlx::query("VACUUM (ANALYZE)")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// How many records of `kind` there are.
    pub async fn record_count(&self, kind: RecordKind) -> Result<u64> {
        records::count(&self.pool, kind).await
    }

    /// How many outbox rows there are (sent or not).
    pub async fn outbox_count(&self) -> Result<u64> {
        outbox::count(&self.pool).await
    }

    /// Counts one request of API key `key` in the one-second window `second` and returns the
    /// window's count so far, shared by every node on this database (what
    /// `Store::count_request` asks of a shared store). A request stamped with an earlier
    /// second than the stored window (clock skew between nodes) counts in the stored one.
    pub async fn count_request(&self, key: &str, second: i64) -> Result<Option<u32>> {
        let key = key.replace('\0', "");
        let (n,): (i64,) = sqlx::query_as(
            "INSERT INTO request_counts AS r (key, second, n) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
               n = CASE WHEN EXCLUDED.second > r.second THEN 1 ELSE r.n + 1 END, \
               second = GREATEST(r.second, EXCLUDED.second) \
             RETURNING n",
        )
        .bind(key)
        .bind(second)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)))
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_ticket(&self, ticket: Ticket) -> Result<Option<Ticket>> {
        self.write(move |c| Box::pin(async move { kernel::create(&mut PgTx(c), ticket).await }))
            .await
    }
    async fn create_ticket_with(&self, request: CreateTicket) -> Result<CreateOutcome> {
        self.write(move |c| {
            Box::pin(async move { kernel::create_with(&mut PgTx(c), request).await })
        })
        .await
    }
    async fn ticket_by_id(&self, id: &str) -> Result<Option<Ticket>> {
        tickets::by_id(&self.pool, id).await
    }
    async fn ticket_by_num(&self, num: i64) -> Result<Option<Ticket>> {
        tickets::by_num(&self.pool, num).await
    }
    async fn tickets_by_ids(&self, ids: &[String]) -> Result<Vec<Option<Ticket>>> {
        tickets::by_ids(&self.pool, ids).await
    }
    async fn update_ticket_out(
        &self,
        id: &str,
        mutate: TicketMutationOut,
    ) -> Result<Option<Ticket>> {
        let id = id.to_string();
        self.write(move |c| {
            Box::pin(async move { kernel::update(&mut PgTx(c), &id, mutate).await })
        })
        .await
    }
    async fn delete_ticket_out(&self, id: &str, check: TicketCheckOut) -> Result<Option<Ticket>> {
        let id = id.to_string();
        self.write(move |c| Box::pin(async move { kernel::delete(&mut PgTx(c), &id, check).await }))
            .await
    }
    async fn update_ticket_pair(&self, edit: TicketPairEdit) -> Result<Option<(Ticket, Ticket)>> {
        // The `tickets` trigger announces both rewrites at commit.
        self.write(move |c| Box::pin(async move { kernel::update_pair(&mut PgTx(c), edit).await }))
            .await
    }
    async fn search_tickets(&self, request: &SearchRequest) -> Result<SearchPage> {
        let page = self.search_stored(request).await?;
        Ok(SearchPage {
            rows: page
                .rows
                .iter()
                .map(|d| tickets::parse(d))
                .collect::<Result<_>>()?,
            total: page.total,
        })
    }

    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64> {
        self.write(move |c| {
            Box::pin(async move { outbox::insert(c, &items, kernel::now_secs()).await })
        })
        .await
    }
    async fn outbox_claim(
        &self,
        now: i64,
        lease_until: i64,
        groups: u32,
    ) -> Result<Vec<OutboxRow>> {
        self.write(move |c| Box::pin(outbox::claim(c, now, lease_until, groups)))
            .await
    }
    async fn outbox_next_due(&self) -> Result<Option<i64>> {
        outbox::next_due(&self.pool).await
    }
    async fn outbox_sent(&self, ids: Vec<i64>, now: i64) -> Result<()> {
        self.write(move |c| Box::pin(async move { outbox::sent(c, &ids, now).await }))
            .await
    }
    async fn outbox_failed(&self, ids: Vec<i64>, error: String, retry_at: i64) -> Result<()> {
        self.write(move |c| {
            Box::pin(async move { outbox::failed(c, &ids, &error, retry_at).await })
        })
        .await
    }
    async fn outbox_list(&self, pending_only: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        outbox::list(&self.pool, pending_only, limit).await
    }
    async fn outbox_sent_since(&self, channel: &str, since: i64) -> Result<u64> {
        outbox::sent_since(&self.pool, channel, since).await
    }
    /// Publishes no ticket events (a bulk load, not edits; see `TicketEvent`).
    async fn import_tickets(&self, tickets: Vec<Ticket>) -> Result<u64> {
        self.write(move |c| Box::pin(tickets::import(c, tickets)))
            .await
    }
    async fn import_numbered(&self, tickets: Vec<Ticket>) -> Result<u64> {
        // The migration copy: keeps id and number, skips what exists, moves the sequence.
        self.copy_tickets(tickets).await
    }
    async fn ticket_count(&self) -> Result<u64> {
        tickets::count(&self.pool).await
    }
    async fn reindex_batch(&self, after: i64, limit: u32) -> Result<Option<(i64, u64)>> {
        self.write(move |c| Box::pin(tickets::reindex_batch(c, after, limit)))
            .await
    }

    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Value>> {
        records::get(&self.pool, kind, id).await
    }
    async fn find_record(&self, kind: RecordKind, lookup: &str) -> Result<Option<Value>> {
        records::find(&self.pool, kind, lookup).await
    }
    async fn list_records(&self, kind: RecordKind) -> Result<Vec<Value>> {
        records::list(&self.pool, kind).await
    }
    async fn insert_record(
        &self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool> {
        let (id, lookup, data) = (id.to_string(), lookup.map(str::to_string), data.clone());
        self.write(move |c| {
            Box::pin(async move { records::insert(c, kind, &id, lookup.as_deref(), &data).await })
        })
        .await
    }
    async fn update_record(
        &self,
        kind: RecordKind,
        id: &str,
        mutate: RecordMutation,
    ) -> Result<Option<Value>> {
        let id = id.to_string();
        self.write(move |c| {
            Box::pin(async move { kernel::update_record(&mut PgTx(c), kind, &id, mutate).await })
        })
        .await
    }
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |c| Box::pin(async move { records::delete(c, kind, &id).await }))
            .await
    }
    async fn purge_expired(&self, kind: RecordKind, now: i64) -> Result<u64> {
        self.write(move |c| Box::pin(records::purge_expired(c, kind, now)))
            .await
    }
    async fn expired_records(&self, kind: RecordKind, now: i64, limit: u32) -> Result<Vec<Value>> {
        records::expired(&self.pool, kind, now, limit).await
    }
    async fn records_of_ticket(&self, kind: RecordKind, ticket: &str) -> Result<Vec<Value>> {
        records::of_ticket(&self.pool, kind, ticket).await
    }
    async fn count_request(&self, key: &str, second: i64) -> Result<Option<u32>> {
        PgStore::count_request(self, key, second).await
    }
    fn ticket_events(&self) -> broadcast::Receiver<TicketEvent> {
        self.events.sender.subscribe()
    }
    async fn feed_after(&self, after: i64, limit: u32) -> Result<FeedRead> {
        self.sequence_feed().await?;
        feed::read(&self.pool, after, limit).await
    }
    async fn feed_prune(&self, before: i64) -> Result<u64> {
        let mut removed = 0;
        loop {
            let n = self
                .write(move |c| Box::pin(feed::prune_batch(c, before)))
                .await?;
            if n == 0 {
                return Ok(removed);
            }
            removed += n;
        }
    }
    fn record_events(&self) -> Option<RecordEvents> {
        Some(self.events.record_events())
    }
    async fn stored_ticket(&self, which: TicketRef<'_>) -> Result<Option<StoredTicket>> {
        stored::ticket(&self.pool, which).await
    }
    async fn search_stored(&self, request: &SearchRequest) -> Result<StoredPage> {
        let started = std::time::Instant::now();
        let deadline = started + self.search_timeout;
        match search::search(&self.searcher, request, deadline).await {
            // 57014 query_canceled from statement_timeout (or a pool wait past the deadline).
            Err(Error::Internal(detail)) if started.elapsed() >= self.search_timeout => {
                tracing::info!(%detail, elapsed = ?started.elapsed(), "search stopped at its deadline");
                Err(Error::search_timeout(self.search_timeout))
            }
            other => other,
        }
    }
}
