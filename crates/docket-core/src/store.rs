//! The storage interface. Implementations (SQLite, PostgreSQL) live in their own crates and
//! are the only code that speaks SQL. Every method is one transaction.

use std::collections::BTreeSet;

use async_trait::async_trait;
use docket_query::Filter;
use serde_json::Value;

use crate::error::Result;
use crate::feed::FeedRead;
use crate::model::Ticket;
use crate::notify::{OutboxItem, OutboxRow};

/// Changes a ticket inside the store's write transaction. Returning an error rolls the
/// whole transaction back, so the closure is where per-ticket rules are checked.
pub type TicketMutation = Box<dyn FnOnce(&mut Ticket) -> Result<()> + Send>;

/// Checks a ticket inside the delete transaction before it is removed.
pub type TicketCheck = Box<dyn FnOnce(&Ticket) -> Result<()> + Send>;

/// Changes a ticket inside the write transaction and returns the outbox entries the change
/// causes; they are written in the same transaction.
pub type TicketMutationOut = Box<dyn FnOnce(&mut Ticket) -> Result<Vec<OutboxItem>> + Send>;

/// Checks a ticket before it is deleted and returns the outbox entries of the delete.
pub type TicketCheckOut = Box<dyn FnOnce(&Ticket) -> Result<Vec<OutboxItem>> + Send>;

/// Changes two tickets together inside the write transaction (a relation between them) and
/// returns the outbox entries the change causes.
pub type PairMutation = Box<dyn FnOnce(&mut Ticket, &mut Ticket) -> Result<Vec<OutboxItem>> + Send>;

/// A change of two tickets in one transaction ([`Store::update_ticket_pair`]).
pub struct TicketPairEdit {
    /// The ticket the mutation gets first.
    pub id: String,
    /// The ticket the mutation gets second.
    pub other: String,
    /// `(child, parent)` when the change makes `child` a child of `parent`: refused when
    /// `child` is `parent` or one of its ancestors.
    pub new_parent_link: Option<(String, String)>,
    pub mutate: PairMutation,
}

/// Changes a generic record inside a write transaction.
pub type RecordMutation = Box<dyn FnOnce(&mut Value) -> Result<()> + Send>;

/// The kinds of small records kept as JSON documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    User,
    ApiKey,
    Session,
    Tag,
    Category,
    Role,
    /// Server bookkeeping, such as whether first-start defaults were created.
    Meta,
    /// An xyOps Job record kept for ticket reports (`put_job`).
    Job,
    /// An xyOps AlertInvocation record kept for ticket reports (`put_alert`).
    Alert,
    /// The result of a create made under an `Idempotency-Key` (purged after its `expires`).
    Idempotency,
    /// A stored ticket file's bookkeeping (`files::FileRecord`; lookup = its path).
    File,
    /// A user's saved search (`model::SavedSearch`; found by its `username` field).
    SavedSearch,
    /// Failed logins of one account or one address in the current window (purged after
    /// its `expires`; see `service::access`).
    LoginFailures,
}

impl RecordKind {
    /// Every kind (what `docket migrate` copies).
    pub const ALL: [RecordKind; 13] = [
        RecordKind::User,
        RecordKind::ApiKey,
        RecordKind::Session,
        RecordKind::Tag,
        RecordKind::Category,
        RecordKind::Role,
        RecordKind::Meta,
        RecordKind::Job,
        RecordKind::Alert,
        RecordKind::Idempotency,
        RecordKind::File,
        RecordKind::SavedSearch,
        RecordKind::LoginFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::User => "user",
            RecordKind::ApiKey => "api_key",
            RecordKind::Session => "session",
            RecordKind::Tag => "tag",
            RecordKind::Category => "category",
            RecordKind::Role => "role",
            RecordKind::Meta => "meta",
            RecordKind::Job => "job",
            RecordKind::Alert => "alert",
            RecordKind::Idempotency => "idempotency",
            RecordKind::File => "file",
            RecordKind::SavedSearch => "saved_search",
            RecordKind::LoginFailures => "login_failures",
        }
    }
}

/// A write of a record of `kind` (created, changed or deleted) that another node may have
/// made; see [`Store::record_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordChange {
    pub kind: RecordKind,
}

/// Whether a store hears the record writes of other nodes right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hearing {
    pub listening: bool,
}

/// The record writes of every node, for caches of records (see [`Store::record_events`]).
pub struct RecordEvents {
    /// Writes of users, API keys and roles, and ended sessions (a new session is not
    /// announced: it changes nothing cached), committed from now on by any node.
    pub changes: tokio::sync::broadcast::Receiver<RecordChange>,
    /// Marked changed whenever listening starts, starts again (writes may have been missed
    /// meanwhile) or stops. While `listening` is false, nothing is heard: do not cache.
    pub hearing: tokio::sync::watch::Receiver<Hearing>,
}

/// How many ticket events a store's channel holds for a receiver that has not read them; a
/// receiver further behind gets `RecvError::Lagged` (a wake-up all the same: what was
/// committed is read from the change feed, see `crate::feed`).
pub const TICKET_EVENT_CAPACITY: usize = 1024;

/// A ticket was written (published after the transaction committed): the wake-up signal of
/// the change feed's readers (`Store::ticket_events`). What they deliver comes from the feed
/// (`Store::feed_after`), which also says what changed.
///
/// Every ticket write publishes one: a create, an automation create (a dedupe hit is an
/// `Updated` of the ticket that absorbed it; an idempotent replay writes nothing and
/// publishes nothing), an update, a comment added or edited, a file attached or removed,
/// and a delete. Bulk writes that are not ticket edits publish nothing: `import_tickets`,
/// `reindex_batch` and the exact copies of `docket migrate` (a consumer refreshes after an
/// import). A rolled-back write never publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketEvent {
    pub id: String,
    pub num: i64,
    pub kind: TicketEventKind,
    /// The ticket's `modified` after the write; for `Deleted`, the time of the delete
    /// (epoch seconds).
    pub modified: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketEventKind {
    Created,
    Updated,
    Deleted,
}

impl TicketEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketEventKind::Created => "created",
            TicketEventKind::Updated => "updated",
            TicketEventKind::Deleted => "deleted",
        }
    }

    pub fn parse(name: &str) -> Option<TicketEventKind> {
        Some(match name {
            "created" => TicketEventKind::Created,
            "updated" => TicketEventKind::Updated,
            "deleted" => TicketEventKind::Deleted,
            _ => return None,
        })
    }
}

impl TicketEvent {
    /// The event of a write that left `ticket` (for `Deleted`, the ticket as it was, with
    /// `modified` the time of the delete).
    pub fn of(ticket: &Ticket, kind: TicketEventKind, modified: i64) -> TicketEvent {
        TicketEvent {
            id: ticket.id.clone(),
            num: ticket.num,
            kind,
            modified,
        }
    }
}

/// Fields tickets can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// Creation order.
    Id,
    Num,
    Created,
    Modified,
    Due,
    Subject,
    Status,
    Type,
    /// The alphabetically first assignee, normalized (`search_doc::list_sort_key`); an
    /// unassigned ticket has the empty key.
    Assignees,
    /// The alphabetically first tag, as for `Assignees`.
    Tags,
    /// The configured level order (`rules::PriorityLevels`: the stores keep each ticket's
    /// rank in a column, recomputed when the configured levels change).
    Priority,
}

impl SortField {
    pub const NAMES: &'static str =
        "_id, num, created, modified, due, subject, status, type, assignees, tags, priority";

    pub fn parse(name: &str) -> Option<SortField> {
        Some(match name {
            "_id" | "id" => SortField::Id,
            "num" => SortField::Num,
            "created" => SortField::Created,
            "modified" => SortField::Modified,
            "due" => SortField::Due,
            "subject" => SortField::Subject,
            "status" => SortField::Status,
            "type" => SortField::Type,
            "assignees" => SortField::Assignees,
            "tags" => SortField::Tags,
            "priority" => SortField::Priority,
            _ => return None,
        })
    }
}

/// A search over tickets, already parsed and scoped.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub filter: Filter,
    /// `Some`: only tickets whose category is in the set.
    pub categories: Option<BTreeSet<String>>,
    pub sort_by: SortField,
    pub descending: bool,
    pub offset: u64,
    pub limit: u64,
}

/// One page of results and the exact number of matches.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub rows: Vec<Ticket>,
    pub total: u64,
}

/// Which ticket to read: by id or by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRef<'a> {
    Id(&'a str),
    Num(i64),
}

/// A ticket as the store keeps it: its JSON text, which every writer of both stores makes
/// with `serde_json::to_string(&Ticket)` (so it is the full reply shape as it is), and its
/// category, for the caller's scope check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTicket {
    pub category: String,
    pub json: String,
}

/// [`SearchPage`] with each row as its stored JSON text (see [`StoredTicket`]).
#[derive(Debug, Clone)]
pub struct StoredPage {
    pub rows: Vec<String>,
    pub total: u64,
}

/// How [`Store::search_rows`] hands over each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowShape {
    /// The stored JSON (see [`StoredTicket`]).
    Full,
    /// The `compact` form where the store keeps it ready (see [`StoredRow::Compact`]).
    Compact,
}

/// A row of [`Store::search_rows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredRow {
    /// The ticket's stored JSON, still to be presented to its reader (and compacted if asked).
    Full(String),
    /// Its `compact` form ([`crate::compact_json`]), which a store keeps only for a ticket
    /// that reads the same to every reader (nothing
    /// [`needs_presenting`](crate::service::needs_presenting) for anyone): given to
    /// the caller as it is.
    Compact(String),
}

/// [`StoredPage`] of [`StoredRow`]s.
#[derive(Debug, Clone)]
pub struct RowPage {
    pub rows: Vec<StoredRow>,
    pub total: u64,
}

/// The JSON text of a ticket, as a store writes it.
pub fn ticket_json(ticket: &Ticket) -> Result<String> {
    serde_json::to_string(ticket).map_err(crate::error::Error::internal)
}

/// A ticket create with the automation options (see [`Store::create_ticket_with`]).
pub struct CreateTicket {
    pub ticket: Ticket,
    pub dedupe: Option<Dedupe>,
    pub idempotency: Option<IdempotencyClaim>,
    /// Written with the ticket when it is inserted (not on a dedupe hit or replay).
    pub outbox: Vec<OutboxItem>,
    /// Ids of the `File` records of uploads staged by this request (already in the ticket's
    /// `files`, or in the dedupe mutation's): made final for the resulting ticket in the
    /// same transaction (not on a replay, whose request's uploads are discarded).
    pub staged_files: Vec<String>,
}

/// Alert-storm deduplication of a create.
pub struct Dedupe {
    pub key: String,
    /// Tickets in these statuses no longer absorb creates.
    pub closed_statuses: Vec<String>,
    /// `Some`: only tickets in these categories are candidates (the caller's scope), so a
    /// ticket the caller may not see is never revealed by a dedupe hit.
    pub categories: Option<BTreeSet<String>>,
    /// Applied to the existing ticket instead of inserting the new one.
    /// Its outbox entries are written in the same transaction.
    pub on_duplicate: TicketMutationOut,
}

/// An idempotency key claimed by a create: `id` is already scoped to the caller (hashed).
#[derive(Debug, Clone)]
pub struct IdempotencyClaim {
    pub id: String,
    pub now: i64,
    pub expires: i64,
}

/// What [`Store::create_ticket_with`] did.
#[derive(Debug)]
pub enum CreateOutcome {
    Created(Ticket),
    /// An open ticket with the same dedupe key absorbed the create.
    Deduplicated(Ticket),
    /// The idempotency key was used before: the ticket of the first result (`None` when it
    /// has been deleted since) and whether that first result was a dedupe hit.
    Replayed {
        ticket: Option<Ticket>,
        deduplicated: bool,
    },
    /// A ticket with the requested id exists already.
    IdTaken,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new ticket, assigning the next number in the same transaction.
    /// `Ok(None)` when a ticket with that id already exists.
    async fn create_ticket(&self, ticket: Ticket) -> Result<Option<Ticket>>;
    /// A create with idempotency and dedupe, all in ONE write transaction: an unexpired
    /// idempotency record replays its result; else an open ticket with the dedupe key is
    /// updated instead of inserting; else the ticket is inserted. The idempotency record is
    /// written in the same transaction. Concurrent identical calls therefore make one ticket
    /// (SQLite: the single writer; PostgreSQL: a transaction-scoped advisory lock on the key).
    async fn create_ticket_with(&self, request: CreateTicket) -> Result<CreateOutcome>;
    async fn ticket_by_id(&self, id: &str) -> Result<Option<Ticket>>;
    async fn ticket_by_num(&self, num: i64) -> Result<Option<Ticket>>;
    /// One entry per id, in order.
    async fn tickets_by_ids(&self, ids: &[String]) -> Result<Vec<Option<Ticket>>>;
    /// Reads, mutates and writes back one ticket (and its index) atomically.
    /// `Ok(None)` when no such ticket exists.
    async fn update_ticket(&self, id: &str, mutate: TicketMutation) -> Result<Option<Ticket>> {
        self.update_ticket_out(id, crate::kernel::without_outbox(mutate))
            .await
    }
    /// Deletes a ticket and its history and index entries once `check` passes.
    async fn delete_ticket(&self, id: &str, check: TicketCheck) -> Result<Option<Ticket>> {
        self.delete_ticket_out(id, crate::kernel::check_without_outbox(check))
            .await
    }
    /// [`Store::update_ticket`] whose mutation also returns outbox entries, inserted in the
    /// same transaction.
    async fn update_ticket_out(
        &self,
        id: &str,
        mutate: TicketMutationOut,
    ) -> Result<Option<Ticket>>;
    /// [`Store::delete_ticket`] whose check also returns outbox entries (same transaction).
    /// The tickets related to the deleted one lose their relations to it in the same
    /// transaction (`kernel::delete_unlinking`).
    async fn delete_ticket_out(&self, id: &str, check: TicketCheckOut) -> Result<Option<Ticket>>;
    /// Changes two tickets in one transaction (`kernel::update_pair`): `Ok(None)` when
    /// either does not exist. Publishes an `Updated` event for each.
    async fn update_ticket_pair(&self, edit: TicketPairEdit) -> Result<Option<(Ticket, Ticket)>>;
    async fn search_tickets(&self, request: &SearchRequest) -> Result<SearchPage>;

    /// Inserts outbox entries on their own; an entry whose `unique_key` exists is skipped.
    /// Returns how many were inserted.
    async fn outbox_enqueue(&self, items: Vec<OutboxItem>) -> Result<u64>;
    /// Claims due work: every unsent, unleased row of each group whose rows are all due at
    /// `now` (a sliding debounce; a group is not held more than a few minutes past its first
    /// row), up to `groups` groups, leased until `lease_until` (a crashed worker's lease runs
    /// out and the rows are claimed again). SQLite: one writer; PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`, so two workers never hold the same row.
    async fn outbox_claim(&self, now: i64, lease_until: i64, groups: u32)
        -> Result<Vec<OutboxRow>>;
    /// When the next unsent row becomes claimable (epoch seconds), `None` when none is
    /// waiting: a cheap read so an idle worker does not take the write lock.
    async fn outbox_next_due(&self) -> Result<Option<i64>>;
    /// Marks rows delivered (never delivered again).
    async fn outbox_sent(&self, ids: Vec<i64>, now: i64) -> Result<()>;
    /// Releases claimed rows after a failure: tried again at `retry_at`.
    async fn outbox_failed(&self, ids: Vec<i64>, error: String, retry_at: i64) -> Result<()>;
    /// Rows, newest first: pending only, or all (up to `limit`).
    async fn outbox_list(&self, pending_only: bool, limit: u32) -> Result<Vec<OutboxRow>>;
    /// How many rows of `channel` were delivered at or after `since`.
    async fn outbox_sent_since(&self, channel: &str, since: i64) -> Result<u64>;
    /// Inserts whole records in one transaction, each with the next number; records whose
    /// id exists already are skipped. Returns how many were inserted. Publishes no
    /// [`TicketEvent`]s (a bulk load; consumers refresh after an import).
    async fn import_tickets(&self, tickets: Vec<Ticket>) -> Result<u64>;
    /// Inserts whole records keeping their own `num` (an xyOps backup) in one transaction;
    /// a record whose id or number exists already is skipped. The number source moves past
    /// the highest number, so later creates continue from there. Publishes no events.
    async fn import_numbered(&self, tickets: Vec<Ticket>) -> Result<u64>;
    /// How many tickets there are.
    async fn ticket_count(&self) -> Result<u64>;
    /// Rebuilds the search index of up to `limit` tickets numbered above `after`, in one
    /// transaction. Returns the last number done and how many were done, or `None` when none
    /// were left. Publishes no [`TicketEvent`]s (the tickets themselves do not change).
    async fn reindex_batch(&self, after: i64, limit: u32) -> Result<Option<(i64, u64)>>;

    async fn get_record(&self, kind: RecordKind, id: &str) -> Result<Option<Value>>;
    /// Finds a record by its secondary lookup key (e.g. an API key's hash).
    async fn find_record(&self, kind: RecordKind, lookup: &str) -> Result<Option<Value>>;
    async fn list_records(&self, kind: RecordKind) -> Result<Vec<Value>>;
    /// `Ok(false)` when a record with that id (or lookup key) already exists.
    async fn insert_record(
        &self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool>;
    /// `Ok(None)` when no such record exists.
    async fn update_record(
        &self,
        kind: RecordKind,
        id: &str,
        mutate: RecordMutation,
    ) -> Result<Option<Value>>;
    async fn delete_record(&self, kind: RecordKind, id: &str) -> Result<bool>;
    /// Removes records of `kind` whose `expires` field is in the past (sessions).
    async fn purge_expired(&self, kind: RecordKind, now: i64) -> Result<u64>;
    /// Up to `limit` records of `kind` whose `expires` field is at or before `now`, oldest first.
    async fn expired_records(&self, kind: RecordKind, now: i64, limit: u32) -> Result<Vec<Value>>;
    /// The records of `kind` whose `ticket` field is `ticket` (files of a ticket).
    async fn records_of_ticket(&self, kind: RecordKind, ticket: &str) -> Result<Vec<Value>>;

    /// Counts one request of API key `key` in the one-second window `second` and returns
    /// the window's count so far, for a store that several nodes share (so the limit holds
    /// across them). `None`, the default: the caller counts in its own process.
    async fn count_request(&self, _key: &str, _second: i64) -> Result<Option<u32>> {
        Ok(None)
    }

    /// [`Store::ticket_by_id`] / [`Store::ticket_by_num`] without parsing: the ticket's
    /// stored JSON and category. The default reads the ticket and writes it again.
    async fn stored_ticket(&self, which: TicketRef<'_>) -> Result<Option<StoredTicket>> {
        let ticket = match which {
            TicketRef::Id(id) => self.ticket_by_id(id).await?,
            TicketRef::Num(num) => self.ticket_by_num(num).await?,
        };
        ticket
            .map(|t| {
                Ok(StoredTicket {
                    json: ticket_json(&t)?,
                    category: t.category,
                })
            })
            .transpose()
    }

    /// [`Store::search_tickets`] with the rows as their stored JSON. The default searches
    /// and writes each row again.
    async fn search_stored(&self, request: &SearchRequest) -> Result<StoredPage> {
        let page = self.search_tickets(request).await?;
        Ok(StoredPage {
            rows: page.rows.iter().map(ticket_json).collect::<Result<_>>()?,
            total: page.total,
        })
    }

    /// [`Store::search_stored`] with the rows in `shape`. The default gives every row as
    /// stored ([`StoredRow::Full`]), whatever the shape.
    async fn search_rows(&self, request: &SearchRequest, shape: RowShape) -> Result<RowPage> {
        let _ = shape;
        let page = self.search_stored(request).await?;
        Ok(RowPage {
            rows: page.rows.into_iter().map(StoredRow::Full).collect(),
            total: page.total,
        })
    }

    /// Record writes of every node, for a store that several nodes share (PostgreSQL): the
    /// service keeps checked credentials in memory and must hear when another node changes
    /// a user, key, role or session. `None`, the default: no other process's writes need
    /// hearing (this process's own are seen by the service as it makes them).
    fn record_events(&self) -> Option<RecordEvents> {
        None
    }

    /// Up to `limit` change-feed events with a position above `after`, by position, with the
    /// feed's pruning horizon read AFTER them (see [`FeedRead`]). Reads committed events only.
    async fn feed_after(&self, after: i64, limit: u32) -> Result<FeedRead>;
    /// Removes the feed events stamped before `before` (epoch seconds) and raises the
    /// pruning horizon to the highest position removed, in the same transactions (in
    /// batches). Returns how many were removed.
    async fn feed_prune(&self, before: i64) -> Result<u64>;

    /// A wake-up signal: every ticket write committed from now on (see [`TicketEvent`]), in
    /// commit order. What a reader delivers comes from the feed ([`Store::feed_after`]),
    /// which loses nothing; this only says "something new was committed". PostgreSQL: the writes of every node on the database, this one's
    /// included; events made while the node's listening connection was down are lost.
    fn ticket_events(&self) -> tokio::sync::broadcast::Receiver<TicketEvent>;
}
