//! The store kernel: what every ticket and record write does, defined once.
//!
//! A backend (SQLite, PostgreSQL) opens one write transaction, wraps it in a [`WriteTx`] —
//! a handful of primitive operations that each are one or two SQL statements — and runs one
//! of the functions below inside it: create (with idempotency replay, alert-storm dedupe and
//! the outbox rows), update, delete, record update. So the rules of a write (who wins a
//! dedupe race, which outbox rows commit with which change, that a mutation cannot change a
//! ticket's identity, what an idempotency record holds) exist in one place, and a backend
//! only says how its rows are read and written.
//!
//! Each function runs inside the caller's transaction and returns before it commits: an
//! `Err` makes the backend roll the whole transaction back.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::feed::FeedEntry;
use crate::model::Ticket;
use crate::notify::OutboxItem;
use crate::store::{
    CreateOutcome, CreateTicket, RecordKind, RecordMutation, TicketCheck, TicketCheckOut,
    TicketMutation, TicketMutationOut, TicketPairEdit,
};

/// Kinds of keys whose writers are serialised by [`WriteTx::lock`]. Locks are always taken
/// in the order of this enum (idempotency before dedupe), so two creates never deadlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockClass {
    Idempotency = 1,
    Dedupe = 2,
}

/// The primitive operations of one write transaction. Every method runs inside it; nothing
/// is visible to others before the backend commits.
#[async_trait]
pub trait WriteTx: Send {
    /// Holds off every other transaction that locks the same `(class, key)` until this one
    /// ends. SQLite has one writer, so there it does nothing; PostgreSQL takes a
    /// transaction-scoped advisory lock.
    async fn lock(&mut self, class: LockClass, key: &str) -> Result<()>;

    /// The ticket, held for writing until the transaction ends (PostgreSQL: `FOR UPDATE`).
    async fn ticket_for_update(&mut self, id: &str) -> Result<Option<Ticket>>;
    async fn ticket_exists(&mut self, id: &str) -> Result<bool>;
    /// Draws the next ticket number (never handed out again, even if this rolls back).
    async fn next_ticket_num(&mut self) -> Result<i64>;
    /// `None` when a ticket with `id` exists, else the next ticket number: the id is checked
    /// before the number is drawn, so an ordinary create leaves no gap. A store may do both
    /// in one statement (PostgreSQL: one round trip fewer per create).
    async fn claim_ticket_num(&mut self, id: &str) -> Result<Option<i64>> {
        if self.ticket_exists(id).await? {
            return Ok(None);
        }
        Ok(Some(self.next_ticket_num().await?))
    }
    /// Inserts a numbered ticket with its search index; `false` (and nothing written) when
    /// another writer took its id since [`WriteTx::claim_ticket_num`].
    async fn insert_ticket(&mut self, ticket: &Ticket) -> Result<bool>;
    /// [`WriteTx::insert_ticket`] and, when it inserted, [`WriteTx::append_feed`] of its
    /// `created` event. A store may do both in one statement (PostgreSQL: one round trip
    /// fewer per create).
    async fn insert_ticket_with_event(
        &mut self,
        ticket: &Ticket,
        event: &FeedEntry,
        at: i64,
    ) -> Result<bool> {
        if !self.insert_ticket(ticket).await? {
            return Ok(false);
        }
        self.append_feed(event, at).await?;
        Ok(true)
    }
    /// Rewrites a stored ticket (same id and number) and its search index.
    async fn rewrite_ticket(&mut self, ticket: &Ticket) -> Result<()>;
    /// Removes a ticket and its search index.
    async fn remove_ticket(&mut self, ticket: &Ticket) -> Result<()>;
    /// The newest ticket with this dedupe key whose status is not in `closed` (and, when
    /// `categories` is given, whose category is in it).
    async fn open_ticket_with_dedupe_key(
        &mut self,
        key: &str,
        closed: &[String],
        categories: Option<&BTreeSet<String>>,
    ) -> Result<Option<String>>;

    /// Queues outbox rows; a row whose `unique_key` is queued already is skipped. Returns
    /// how many were queued.
    async fn append_outbox(&mut self, items: &[OutboxItem], now: i64) -> Result<u64>;

    /// Appends a ticket event to the change feed (`crate::feed`), stamped `at` (for
    /// retention). The kernel calls it LAST in a transaction. Positions follow commit
    /// order, so the store may not know the event's position yet: SQLite has one writer and
    /// numbers the row as it inserts it; PostgreSQL inserts it unnumbered and a sequencing
    /// step numbers committed rows before the next read (docket-store-postgres/src/feed.rs).
    async fn append_feed(&mut self, entry: &FeedEntry, at: i64) -> Result<()>;

    /// A record, held for writing until the transaction ends.
    async fn record_for_update(&mut self, kind: RecordKind, id: &str) -> Result<Option<Value>>;
    /// Inserts a record; `false` (nothing written) when its id or lookup key is taken.
    async fn insert_record(
        &mut self,
        kind: RecordKind,
        id: &str,
        lookup: Option<&str>,
        data: &Value,
    ) -> Result<bool>;
    /// Inserts or replaces a record (keeping no lookup key).
    async fn put_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()>;
    /// Rewrites the data of an existing record (its lookup key unchanged).
    async fn rewrite_record(&mut self, kind: RecordKind, id: &str, data: &Value) -> Result<()>;
    async fn delete_record(&mut self, kind: RecordKind, id: &str) -> Result<bool>;
}

/// Epoch seconds now (the outbox `created` column).
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Inserts a new ticket with the next number, and its `created` feed event. `None` when a
/// ticket with its id exists.
pub async fn create(tx: &mut dyn WriteTx, ticket: Ticket) -> Result<Option<Ticket>> {
    insert_new(tx, ticket).await
}

/// Inserts a new ticket with the next number and its `created` feed event. The id is
/// checked before the number is drawn, so an ordinary create leaves no gap.
async fn insert_new(tx: &mut dyn WriteTx, mut ticket: Ticket) -> Result<Option<Ticket>> {
    let Some(num) = tx.claim_ticket_num(&ticket.id).await? else {
        return Ok(None);
    };
    ticket.num = num;
    let event = FeedEntry::created(&ticket);
    let inserted = tx
        .insert_ticket_with_event(&ticket, &event, now_secs())
        .await?;
    Ok(inserted.then_some(ticket))
}

/// Appends the write's feed event: the last statement of a ticket write (a create writes
/// its event with the ticket; order within the transaction is not observable).
async fn feed(tx: &mut dyn WriteTx, entry: &FeedEntry) -> Result<()> {
    tx.append_feed(entry, now_secs()).await
}

/// The automation create: an unexpired idempotency record replays its result; else an open
/// ticket with the dedupe key absorbs the create; else the ticket is inserted with its
/// outbox rows. The staged files the request names are finalised for whichever ticket
/// results, the idempotency record is written; the feed event is the new ticket's `created`
/// (written with it) or, last, the absorbing ticket's `updated` — all in this one transaction. A replay writes nothing.
pub async fn create_with(tx: &mut dyn WriteTx, request: CreateTicket) -> Result<CreateOutcome> {
    let CreateTicket {
        ticket,
        dedupe,
        idempotency,
        outbox,
        staged_files,
    } = request;
    // Lock order: idempotency, then dedupe (see `LockClass`).
    if let Some(claim) = &idempotency {
        tx.lock(LockClass::Idempotency, &claim.id).await?;
    }
    if let Some(d) = &dedupe {
        tx.lock(LockClass::Dedupe, &d.key).await?;
    }
    if let Some(claim) = &idempotency {
        if let Some(outcome) = replay(tx, &claim.id, claim.now).await? {
            return Ok(outcome);
        }
    }
    let absorbed = match dedupe {
        Some(d) => {
            match tx
                .open_ticket_with_dedupe_key(&d.key, &d.closed_statuses, d.categories.as_ref())
                .await?
            {
                Some(id) => apply_update(tx, &id, d.on_duplicate).await?,
                None => None,
            }
        }
        None => None,
    };
    // The `created` event goes in with the ticket; the absorbing update's event comes last.
    let (outcome, event) = match absorbed {
        Some((t, event)) => (CreateOutcome::Deduplicated(t), Some(event)),
        None => match insert_new(tx, ticket).await? {
            Some(t) => {
                tx.append_outbox(&outbox, now_secs()).await?;
                (CreateOutcome::Created(t), None)
            }
            None => return Ok(CreateOutcome::IdTaken),
        },
    };
    let (id, deduplicated) = match &outcome {
        CreateOutcome::Created(t) => (t.id.clone(), false),
        CreateOutcome::Deduplicated(t) => (t.id.clone(), true),
        _ => return Ok(outcome),
    };
    for file in &staged_files {
        let ticket = id.clone();
        let found = update_record(
            tx,
            RecordKind::File,
            file,
            Box::new(move |v: &mut Value| {
                crate::files::finalize_record(v, &ticket);
                Ok(())
            }),
        )
        .await?;
        if found.is_none() {
            // The sweeper removed the staged upload (it outlived its pending expiry).
            return Err(Error::File(format!(
                "An uploaded file of this request expired before the ticket was saved: {file}"
            )));
        }
    }
    if let Some(claim) = idempotency {
        let data = json!({
            "ticket": id,
            "deduplicated": deduplicated,
            "created": claim.now,
            "expires": claim.expires,
        });
        // An expired record of the same key is replaced.
        tx.put_record(RecordKind::Idempotency, &claim.id, &data)
            .await?;
    }
    if let Some(event) = event {
        feed(tx, &event).await?;
    }
    Ok(outcome)
}

/// The earlier result of an unexpired idempotency key.
async fn replay(tx: &mut dyn WriteTx, id: &str, now: i64) -> Result<Option<CreateOutcome>> {
    let Some(rec) = tx.record_for_update(RecordKind::Idempotency, id).await? else {
        return Ok(None);
    };
    if rec.get("expires").and_then(Value::as_i64).unwrap_or(0) <= now {
        // Expired: the key may be used afresh; the record is replaced when this commits.
        return Ok(None);
    }
    let ticket = match rec.get("ticket").and_then(Value::as_str) {
        Some(tid) => tx.ticket_for_update(tid).await?,
        None => None,
    };
    let deduplicated = rec
        .get("deduplicated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Some(CreateOutcome::Replayed {
        ticket,
        deduplicated,
    }))
}

/// Reads, mutates and rewrites one ticket, queueing the outbox rows the mutation returns,
/// then appends its feed event. `None` when no such ticket exists.
pub async fn update(
    tx: &mut dyn WriteTx,
    id: &str,
    mutate: TicketMutationOut,
) -> Result<Option<Ticket>> {
    let Some((ticket, event)) = apply_update(tx, id, mutate).await? else {
        return Ok(None);
    };
    feed(tx, &event).await?;
    Ok(Some(ticket))
}

/// [`update`] without appending the feed event, which it returns.
async fn apply_update(
    tx: &mut dyn WriteTx,
    id: &str,
    mutate: TicketMutationOut,
) -> Result<Option<(Ticket, FeedEntry)>> {
    let Some(mut ticket) = tx.ticket_for_update(id).await? else {
        return Ok(None);
    };
    let before = ticket.clone();
    let outbox = mutate(&mut ticket)?;
    // Identity is not the mutation's to change.
    ticket.num = before.num;
    ticket.id = before.id.clone();
    tx.append_outbox(&outbox, now_secs()).await?;
    tx.rewrite_ticket(&ticket).await?;
    let event = FeedEntry::updated(&before, &ticket);
    Ok(Some((ticket, event)))
}

/// Deletes a ticket once `check` passes, queueing the outbox rows it returns, then appends
/// its feed event (carrying the category it had, so readers can still be checked).
pub async fn delete(
    tx: &mut dyn WriteTx,
    id: &str,
    check: TicketCheckOut,
) -> Result<Option<Ticket>> {
    Ok(delete_unlinking(tx, id, check).await?.map(|(t, _)| t))
}

/// [`delete`], which also removes the deleted ticket's relations from the tickets it was
/// related to (each gets a history entry); returns the deleted ticket and those rewritten.
pub async fn delete_unlinking(
    tx: &mut dyn WriteTx,
    id: &str,
    check: TicketCheckOut,
) -> Result<Option<(Ticket, Vec<Ticket>)>> {
    let Some(ticket) = tx.ticket_for_update(id).await? else {
        return Ok(None);
    };
    let outbox = check(&ticket)?;
    tx.append_outbox(&outbox, now_secs()).await?;
    let related: BTreeSet<&str> = ticket.relations.iter().map(|r| r.id.as_str()).collect();
    let mut unlinked = Vec::new();
    for other in related {
        if let Some(mut t) = tx.ticket_for_update(other).await? {
            let before = t.clone();
            if crate::relations::forget(&mut t, &ticket, now_secs()) {
                tx.rewrite_ticket(&t).await?;
                unlinked.push((before, t));
            }
        }
    }
    tx.remove_ticket(&ticket).await?;
    feed(tx, &FeedEntry::deleted(&ticket, now_secs())).await?;
    for (before, after) in &unlinked {
        feed(tx, &FeedEntry::updated(before, after)).await?;
    }
    Ok(Some((
        ticket,
        unlinked.into_iter().map(|(_, after)| after).collect(),
    )))
}

/// Reads both tickets of `edit` (in id order, so two pair edits never deadlock), refuses a
/// new parent link that would close a cycle, applies the mutation to both and rewrites
/// them, queueing its outbox rows. `None` when either ticket does not exist.
pub async fn update_pair(
    tx: &mut dyn WriteTx,
    edit: TicketPairEdit,
) -> Result<Option<(Ticket, Ticket)>> {
    let TicketPairEdit {
        id,
        other,
        new_parent_link,
        mutate,
    } = edit;
    let (first, second) = if id <= other {
        (&id, &other)
    } else {
        (&other, &id)
    };
    let Some(t1) = tx.ticket_for_update(first).await? else {
        return Ok(None);
    };
    let Some(t2) = tx.ticket_for_update(second).await? else {
        return Ok(None);
    };
    let (mut a, mut b) = if t1.id == id { (t1, t2) } else { (t2, t1) };
    if let Some((child, parent)) = new_parent_link {
        refuse_parent_cycle(tx, &child, &parent, [&a, &b]).await?;
    }
    let (a_before, b_before) = (a.clone(), b.clone());
    let keep = [(a.num, a.id.clone()), (b.num, b.id.clone())];
    let outbox = mutate(&mut a, &mut b)?;
    // Identity is not the mutation's to change.
    (a.num, a.id) = keep[0].clone();
    (b.num, b.id) = keep[1].clone();
    tx.append_outbox(&outbox, now_secs()).await?;
    tx.rewrite_ticket(&a).await?;
    tx.rewrite_ticket(&b).await?;
    feed(tx, &FeedEntry::updated(&a_before, &a)).await?;
    feed(tx, &FeedEntry::updated(&b_before, &b)).await?;
    Ok(Some((a, b)))
}

/// An error when `child` is `parent` or one of its ancestors (walked up to
/// [`crate::relations::MAX_PARENT_DEPTH`] levels): making it `parent`'s child would close
/// a cycle. `loaded` are tickets already read in this transaction.
async fn refuse_parent_cycle(
    tx: &mut dyn WriteTx,
    child: &str,
    parent: &str,
    loaded: [&Ticket; 2],
) -> Result<()> {
    let mut current = parent.to_string();
    for _ in 0..crate::relations::MAX_PARENT_DEPTH {
        if current == child {
            return Err(Error::Ticket(
                "That parent link would make a ticket its own ancestor".into(),
            ));
        }
        let next = match loaded.iter().find(|t| t.id == current) {
            Some(t) => crate::relations::parent_of(t).map(str::to_string),
            None => tx
                .ticket_for_update(&current)
                .await?
                .and_then(|t| crate::relations::parent_of(&t).map(str::to_string)),
        };
        match next {
            Some(n) => current = n,
            None => return Ok(()),
        }
    }
    Err(Error::Ticket(format!(
        "The parent chain is deeper than {} tickets",
        crate::relations::MAX_PARENT_DEPTH
    )))
}

/// A mutation that queues no outbox rows, in the form [`update`] takes.
pub fn without_outbox(mutate: TicketMutation) -> TicketMutationOut {
    Box::new(move |t: &mut Ticket| mutate(t).map(|()| Vec::new()))
}

/// A delete check that queues no outbox rows, in the form [`delete`] takes.
pub fn check_without_outbox(check: TicketCheck) -> TicketCheckOut {
    Box::new(move |t: &Ticket| check(t).map(|()| Vec::new()))
}

/// Reads, mutates and rewrites one record. `None` when no such record exists.
pub async fn update_record(
    tx: &mut dyn WriteTx,
    kind: RecordKind,
    id: &str,
    mutate: RecordMutation,
) -> Result<Option<Value>> {
    let Some(mut value) = tx.record_for_update(kind, id).await? else {
        return Ok(None);
    };
    mutate(&mut value)?;
    tx.rewrite_record(kind, id, &value).await?;
    Ok(Some(value))
}
