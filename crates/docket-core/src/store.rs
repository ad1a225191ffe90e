//! The storage interface. Implementations (SQLite, PostgreSQL) live in their own crates and
//! are the only code that speaks SQL. Every method is one transaction.

use std::collections::BTreeSet;

use async_trait::async_trait;
use docket_query::Filter;
use serde_json::Value;

use crate::error::Result;
use crate::model::Ticket;

/// Changes a ticket inside the store's write transaction. Returning an error rolls the
/// whole transaction back, so the closure is where per-ticket rules are checked.
pub type TicketMutation = Box<dyn FnOnce(&mut Ticket) -> Result<()> + Send>;

/// Checks a ticket inside the delete transaction before it is removed.
pub type TicketCheck = Box<dyn FnOnce(&Ticket) -> Result<()> + Send>;

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
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::User => "user",
            RecordKind::ApiKey => "api_key",
            RecordKind::Session => "session",
            RecordKind::Tag => "tag",
            RecordKind::Category => "category",
            RecordKind::Role => "role",
            RecordKind::Meta => "meta",
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
}

impl SortField {
    pub const NAMES: &'static str = "_id, num, created, modified, due, subject, status, type";

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts a new ticket, assigning the next number in the same transaction.
    /// `Ok(None)` when a ticket with that id already exists.
    async fn create_ticket(&self, ticket: Ticket) -> Result<Option<Ticket>>;
    async fn ticket_by_id(&self, id: &str) -> Result<Option<Ticket>>;
    async fn ticket_by_num(&self, num: i64) -> Result<Option<Ticket>>;
    /// One entry per id, in order.
    async fn tickets_by_ids(&self, ids: &[String]) -> Result<Vec<Option<Ticket>>>;
    /// Reads, mutates and writes back one ticket (and its index) atomically.
    /// `Ok(None)` when no such ticket exists.
    async fn update_ticket(&self, id: &str, mutate: TicketMutation) -> Result<Option<Ticket>>;
    /// Deletes a ticket and its history and index entries once `check` passes.
    async fn delete_ticket(&self, id: &str, check: TicketCheck) -> Result<Option<Ticket>>;
    async fn search_tickets(&self, request: &SearchRequest) -> Result<SearchPage>;
    /// Inserts whole records in one transaction, each with the next number; records whose
    /// id exists already are skipped. Returns how many were inserted.
    async fn import_tickets(&self, tickets: Vec<Ticket>) -> Result<u64>;
    /// How many tickets there are.
    async fn ticket_count(&self) -> Result<u64>;
    /// Rebuilds the search index of up to `limit` tickets numbered above `after`, in one
    /// transaction. Returns the last number done and how many were done, or `None` when none
    /// were left.
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
}
