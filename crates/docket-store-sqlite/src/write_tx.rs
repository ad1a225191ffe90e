//! The kernel's primitive write operations ([`docket_core::kernel::WriteTx`]) on the
//! writer's connection, inside its group transaction. Each is a synchronous call: the
//! futures the kernel builds from them are ready at once (`writer::run_now`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use docket_core::feed::FeedEntry;
use docket_core::kernel::{LockClass, WriteTx};
use docket_core::model::Ticket;
use docket_core::notify::OutboxItem;
use docket_core::store::RecordKind;
use docket_core::Result;
use rusqlite::Connection;
use serde_json::Value;

use crate::{feed, outbox, records, tickets};

/// Holds the connection mutably: `&Connection` is not `Send` (a connection is not `Sync`), and
/// the kernel's futures must be.
pub struct SqliteTx<'c>(pub &'c mut Connection);

#[async_trait]
impl WriteTx for SqliteTx<'_> {
    /// One writer: no other write transaction runs meanwhile, so nothing to lock.
    async fn lock(&mut self, _class: LockClass, _key: &str) -> Result<()> {
        Ok(())
    }
    async fn ticket_for_update(&mut self, id: &str) -> Result<Option<Ticket>> {
        tickets::load_for_write(self.0, id)
    }
    async fn ticket_exists(&mut self, id: &str) -> Result<bool> {
        tickets::exists(self.0, id)
    }
    async fn next_ticket_num(&mut self) -> Result<i64> {
        tickets::next_num(self.0)
    }
    async fn insert_ticket(&mut self, ticket: &Ticket) -> Result<bool> {
        tickets::insert_row(self.0, ticket)
    }
    async fn rewrite_ticket(&mut self, ticket: &Ticket) -> Result<()> {
        tickets::rewrite_row(self.0, ticket)
    }
    async fn remove_ticket(&mut self, ticket: &Ticket) -> Result<()> {
        tickets::remove_row(self.0, ticket.num)
    }
    async fn open_ticket_with_dedupe_key(
        &mut self,
        key: &str,
        closed: &[String],
        categories: Option<&BTreeSet<String>>,
    ) -> Result<Option<String>> {
        tickets::open_with_dedupe_key(self.0, key, closed, categories)
    }
    async fn append_outbox(&mut self, items: &[OutboxItem], now: i64) -> Result<u64> {
        outbox::insert(self.0, items, now)
    }
    /// One writer: positions are in commit order without a lock.
    async fn append_feed(&mut self, entry: &FeedEntry, at: i64) -> Result<()> {
        feed::append(self.0, entry, at)
    }
    async fn record_for_update(&mut self, kind: RecordKind, id: &str) -> Result<Option<Value>> {
        records::get_in(self.0, kind, id)
    }
    async fn insert_record(
        &mut self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool> {
        records::insert(self.0, kind, id, lookup, &data.to_string())
    }
    async fn put_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()> {
        records::put(self.0, kind, id, &data.to_string())
    }
    async fn rewrite_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()> {
        records::rewrite(self.0, kind, id, &data.to_string())
    }
    async fn delete_record(&mut self, kind: RecordKind, id: &str) -> Result<bool> {
        records::delete(self.0, kind, id)
    }
}
