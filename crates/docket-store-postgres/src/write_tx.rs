//! The kernel's primitive write operations ([`docket_core::kernel::WriteTx`]) inside one
//! PostgreSQL transaction. Several nodes write at once, so rows read for writing are
//! locked (`FOR UPDATE`) and creates that must not race take advisory locks.

use std::collections::BTreeSet;

use async_trait::async_trait;
use docket_core::feed::FeedEntry;
use docket_core::kernel::{LockClass, WriteTx};
use docket_core::model::Ticket;
use docket_core::notify::OutboxItem;
use docket_core::store::RecordKind;
use docket_core::Result;
use serde_json::Value;
use sqlx::PgConnection;

use crate::tickets::impossible_key;
use crate::{db_err, feed, outbox, records, tickets};

pub struct PgTx<'c>(pub &'c mut PgConnection);

#[async_trait]
impl WriteTx for PgTx<'_> {
    /// A transaction-scoped advisory lock (released at commit or rollback). The second of
    /// two identical creates waits here, then its lookups — new statements, so a fresh
    /// snapshot under READ COMMITTED — see the first one's ticket and records.
    async fn lock(&mut self, class: LockClass, key: &str) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(class as i32)
            .bind(key.replace('\0', ""))
            .execute(&mut *self.0)
            .await
            .map_err(db_err)?;
        Ok(())
    }
    async fn ticket_for_update(&mut self, id: &str) -> Result<Option<Ticket>> {
        tickets::load_for_write(self.0, id).await
    }
    async fn ticket_exists(&mut self, id: &str) -> Result<bool> {
        tickets::exists(self.0, id).await
    }
    async fn next_ticket_num(&mut self) -> Result<i64> {
        tickets::next_num(self.0).await
    }
    async fn claim_ticket_num(&mut self, id: &str) -> Result<Option<i64>> {
        tickets::claim_num(self.0, id).await
    }
    async fn insert_ticket(&mut self, ticket: &Ticket) -> Result<bool> {
        tickets::insert_row(self.0, ticket).await
    }
    /// One statement: the feed row is inserted by the ticket INSERT's CTE.
    async fn insert_ticket_with_event(
        &mut self,
        ticket: &Ticket,
        event: &FeedEntry,
        at: i64,
    ) -> Result<bool> {
        tickets::insert_row_with_event(self.0, ticket, Some((event, at))).await
    }
    async fn rewrite_ticket(&mut self, ticket: &Ticket) -> Result<()> {
        tickets::rewrite_row(self.0, ticket).await
    }
    async fn remove_ticket(&mut self, ticket: &Ticket) -> Result<()> {
        tickets::remove_row(self.0, ticket.num).await
    }
    async fn open_ticket_with_dedupe_key(
        &mut self,
        key: &str,
        closed: &[String],
        categories: Option<&BTreeSet<String>>,
    ) -> Result<Option<String>> {
        tickets::open_with_dedupe_key(self.0, key, closed, categories).await
    }
    async fn append_outbox(&mut self, items: &[OutboxItem], now: i64) -> Result<u64> {
        outbox::insert(self.0, items, now).await
    }
    /// Without a position: a reader's sequencing step numbers it after the commit (`feed.rs`).
    async fn append_feed(&mut self, entry: &FeedEntry, at: i64) -> Result<()> {
        feed::append(self.0, entry, at).await
    }
    async fn record_for_update(&mut self, kind: RecordKind, id: &str) -> Result<Option<Value>> {
        records::get_for_update(self.0, kind, id).await
    }
    async fn insert_record(
        &mut self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool> {
        records::insert(self.0, kind, id, lookup, data).await
    }
    async fn put_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()> {
        records::put(self.0, kind, id, None, data).await
    }
    async fn rewrite_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()> {
        if impossible_key(id) {
            return Ok(());
        }
        records::rewrite(self.0, kind, id, data).await
    }
    async fn delete_record(&mut self, kind: RecordKind, id: &str) -> Result<bool> {
        records::delete(self.0, kind, id).await
    }
}
