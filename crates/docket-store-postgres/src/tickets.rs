//! Ticket rows. A row carries the record and its whole search index, so every write of a
//! ticket writes its index in the same statement.

use std::collections::{HashMap, HashSet};

use docket_core::feed::FeedEntry;
use docket_core::model::Ticket;
use docket_core::search_doc::list_sort_key;
use docket_core::{Error, Result};
use sqlx::{PgConnection, PgPool};

use crate::db_err;
use crate::index::TicketRow;

pub fn parse(data: &str) -> Result<Ticket> {
    serde_json::from_str(data).map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))
}

/// PostgreSQL text cannot hold NUL, so no stored key has one: a key with NUL is simply not
/// there (and binding it would be an error).
pub(crate) fn impossible_key(key: &str) -> bool {
    key.contains('\0')
}

/// The priority rank of the unnested row `u` (its level `u.pr`), from the configured levels
/// (priority.rs).
const PRIORITY_RANK_OF_U: &str =
    "coalesce((SELECT p.rank FROM priority_levels p WHERE p.id = u.pr), -1)";

/// Rows inserted per statement (23 array parameters each).
const INSERT_CHUNK: usize = 500;

/// What an insert does when the row's id (or number) exists.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    /// Skip a row whose id exists (a number clash is an error: numbers come from the sequence).
    Id,
    /// Skip a row whose id or number exists (exact copies).
    Any,
}

/// Inserts rows with one multi-row statement per chunk; returns the numbers inserted.
pub async fn insert_rows(
    c: &mut PgConnection,
    rows: &[TicketRow],
    on_conflict: OnConflict,
) -> Result<Vec<i64>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let conflict = match on_conflict {
            OnConflict::Id => "ON CONFLICT (id) DO NOTHING",
            OnConflict::Any => "ON CONFLICT DO NOTHING",
        };
        let sql = format!(
            "INSERT INTO tickets (num, id, created, modified, due, subject, subject_key, subject_rest, \
               status, type, category, dedupe_key, data, keywords, subject_tsv, body_tsv, changes_tsv, \
               subject_raw, body_raw, changes_raw, assignee_key, tag_key, priority_rank) \
             SELECT u.num, u.id, u.created, u.modified, u.due, u.subject, u.sk, u.sr, u.status, u.type, \
               u.category, u.dk, u.data, ARRAY(SELECT json_array_elements_text(u.kw::json)), \
               u.stsv::tsvector, u.btsv::tsvector, u.ctsv::tsvector, u.sraw, u.braw, u.craw, u.ak, u.tk, \
               {PRIORITY_RANK_OF_U} \
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], \
               $7::bytea[], $8::bytea[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
               $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], \
               $21::text[], $22::text[], $23::text[]) \
               WITH ORDINALITY AS u(num, id, created, modified, due, subject, sk, sr, status, type, \
               category, dk, data, kw, stsv, btsv, ctsv, sraw, braw, craw, ak, tk, pr, ord) \
             ORDER BY u.ord \
             {conflict} RETURNING num"
        );
        let col = |f: &dyn Fn(&TicketRow) -> String| chunk.iter().map(f).collect::<Vec<String>>();
        let nums: Vec<(i64,)> = sqlx::query_as(&sql)
            .bind(chunk.iter().map(|r| r.num).collect::<Vec<_>>())
            .bind(col(&|r| r.id.clone()))
            .bind(chunk.iter().map(|r| r.created).collect::<Vec<_>>())
            .bind(chunk.iter().map(|r| r.modified).collect::<Vec<_>>())
            .bind(chunk.iter().map(|r| r.due).collect::<Vec<_>>())
            .bind(col(&|r| r.subject.clone()))
            .bind(
                chunk
                    .iter()
                    .map(|r| r.subject_key.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                chunk
                    .iter()
                    .map(|r| r.subject_rest.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(col(&|r| r.status.clone()))
            .bind(col(&|r| r.kind.clone()))
            .bind(col(&|r| r.category.clone()))
            .bind(
                chunk
                    .iter()
                    .map(|r| r.dedupe_key.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(col(&|r| r.data.clone()))
            .bind(col(&|r| r.keywords_json()))
            .bind(col(&|r| r.subject_text.tsv.clone()))
            .bind(col(&|r| r.body_text.tsv.clone()))
            .bind(col(&|r| r.changes_text.tsv.clone()))
            .bind(
                chunk
                    .iter()
                    .map(|r| r.subject_text.raw.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                chunk
                    .iter()
                    .map(|r| r.body_text.raw.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                chunk
                    .iter()
                    .map(|r| r.changes_text.raw.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(col(&|r| r.assignee_key.clone()))
            .bind(col(&|r| r.tag_key.clone()))
            .bind(col(&|r| r.priority.clone()))
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
        inserted.extend(nums.into_iter().map(|(n,)| n));
    }
    Ok(inserted)
}

pub async fn exists(c: &mut PgConnection, id: &str) -> Result<bool> {
    if impossible_key(id) {
        return Err(Error::Ticket("a ticket id cannot contain NUL".into()));
    }
    let taken: Option<(i64,)> = sqlx::query_as("SELECT num FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(taken.is_some())
}

/// The next number of the sequence (not given back on rollback).
pub async fn next_num(c: &mut PgConnection) -> Result<i64> {
    let (num,): (i64,) = sqlx::query_as("SELECT nextval('ticket_num_seq')")
        .fetch_one(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(num)
}

/// `None` when a ticket with `id` exists, else the next number of the sequence: the check
/// and the draw in one statement (`nextval` is volatile, so the CASE runs it only when no
/// row matched).
pub async fn claim_num(c: &mut PgConnection, id: &str) -> Result<Option<i64>> {
    if impossible_key(id) {
        return Err(Error::Ticket("a ticket id cannot contain NUL".into()));
    }
    let (num,): (Option<i64>,) = sqlx::query_as(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM tickets WHERE id = $1) THEN NULL \
           ELSE nextval('ticket_num_seq') END",
    )
    .bind(id)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(num)
}

/// Inserts a numbered ticket with its index; `false` when another node inserted the same
/// id since the check (that one number then stays unused).
pub async fn insert_row(c: &mut PgConnection, ticket: &Ticket) -> Result<bool> {
    insert_row_with_event(c, ticket, None).await
}

/// The ticket columns of a single-row insert (`$1`..`$23`).
/// Binds a [`TicketRow`]'s columns from `modified` to `priority`, in the order both
/// [`INSERT_ONE`] and [`rewrite_row`] number them (after their leading parameters).
macro_rules! bind_row_columns {
    ($query:expr, $r:expr) => {
        $query
            .bind($r.modified)
            .bind($r.due)
            .bind(&$r.subject)
            .bind(&$r.subject_key)
            .bind(&$r.subject_rest)
            .bind(&$r.status)
            .bind(&$r.kind)
            .bind(&$r.category)
            .bind(&$r.dedupe_key)
            .bind(&$r.data)
            .bind(&$r.keywords)
            .bind(&$r.subject_text.tsv)
            .bind(&$r.body_text.tsv)
            .bind(&$r.changes_text.tsv)
            .bind(&$r.subject_text.raw)
            .bind(&$r.body_text.raw)
            .bind(&$r.changes_text.raw)
            .bind(&$r.assignee_key)
            .bind(&$r.tag_key)
            .bind(&$r.priority)
    };
}

const INSERT_ONE: &str = "INSERT INTO tickets (num, id, created, modified, due, subject, \
       subject_key, subject_rest, status, type, category, dedupe_key, data, keywords, \
       subject_tsv, body_tsv, changes_tsv, subject_raw, body_raw, changes_raw, assignee_key, \
       tag_key, priority_rank) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::text[], \
       $15::tsvector, $16::tsvector, $17::tsvector, $18, $19, $20, $21, $22, \
       coalesce((SELECT p.rank FROM priority_levels p WHERE p.id = $23), -1)) \
     ON CONFLICT (id) DO NOTHING RETURNING num";

/// [`insert_row`], and with `event` its feed row (`feed::append`'s, without a position)
/// in the same statement, written only when the ticket was.
///
/// A single-row `VALUES` statement rather than [`insert_rows`]' `UNNEST`: PostgreSQL plans
/// an `UNNEST` of array parameters anew on every execution (its generic plan is costed
/// for more rows), which was ~15 % of its CPU per create; this one keeps a generic plan.
pub async fn insert_row_with_event(
    c: &mut PgConnection,
    ticket: &Ticket,
    event: Option<(&FeedEntry, i64)>,
) -> Result<bool> {
    let r = TicketRow::new(ticket)?;
    let sql = match event {
        None => INSERT_ONE.to_string(),
        Some(_) => format!(
            "WITH t AS ({INSERT_ONE}), \
               f AS (INSERT INTO ticket_feed (at, category, data) SELECT $24, $25, $26 FROM t) \
             SELECT num FROM t"
        ),
    };
    let mut q = bind_row_columns!(
        sqlx::query_as(&sql).bind(r.num).bind(&r.id).bind(r.created),
        r
    );
    if let Some((entry, at)) = event {
        q = q
            .bind(at)
            .bind(entry.category.replace('\0', ""))
            .bind(entry.to_json()?);
    }
    let done: Option<(i64,)> = q.fetch_optional(&mut *c).await.map_err(db_err)?;
    Ok(done.is_some())
}

/// Makes the current transaction's ticket writes announce nothing (bulk loads are not
/// edits; a NOTIFY per row would flood every node's listener).
async fn quiet(c: &mut PgConnection) -> Result<()> {
    sqlx::query(crate::events::QUIET_SQL)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Inserts whole records, each with the next number; ids that exist (or repeat within the
/// batch) are skipped. Returns how many were inserted.
pub async fn import(c: &mut PgConnection, tickets: Vec<Ticket>) -> Result<u64> {
    quiet(c).await?;
    let ids: Vec<String> = tickets
        .iter()
        .map(|t| t.id.clone())
        .filter(|id| !impossible_key(id))
        .collect();
    let existing: Vec<(String,)> = sqlx::query_as("SELECT id FROM tickets WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *c)
        .await
        .map_err(db_err)?;
    let mut seen: HashSet<String> = existing.into_iter().map(|(id,)| id).collect();
    let mut fresh = Vec::new();
    for t in tickets {
        if impossible_key(&t.id) {
            return Err(Error::Ticket("a ticket id cannot contain NUL".into()));
        }
        if seen.insert(t.id.clone()) {
            fresh.push(t);
        }
    }
    if fresh.is_empty() {
        return Ok(0);
    }
    let nums: Vec<(i64,)> =
        sqlx::query_as("SELECT nextval('ticket_num_seq') FROM generate_series(1, $1) ORDER BY 1")
            .bind(fresh.len() as i64)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
    let mut rows = Vec::with_capacity(fresh.len());
    for (mut t, (num,)) in fresh.into_iter().zip(nums) {
        t.num = num;
        rows.push(TicketRow::new(&t)?);
    }
    Ok(insert_rows(c, &rows, OnConflict::Id).await?.len() as u64)
}

/// Exact copies (numbers kept); then the number sequence is moved to at least the highest
/// number, so new tickets continue after the copied ones.
pub async fn copy(c: &mut PgConnection, tickets: Vec<Ticket>) -> Result<u64> {
    quiet(c).await?;
    let mut rows = Vec::with_capacity(tickets.len());
    for t in &tickets {
        if impossible_key(&t.id) {
            return Err(Error::Ticket("a ticket id cannot contain NUL".into()));
        }
        rows.push(TicketRow::new(t)?);
    }
    let inserted = insert_rows(c, &rows, OnConflict::Any).await?.len() as u64;
    // setval(n) makes the next nextval() return n + 1; never moved backwards.
    sqlx::query(
        "SELECT setval('ticket_num_seq', m) FROM ( \
           SELECT max(num) AS m FROM tickets) t, ticket_num_seq s \
         WHERE m IS NOT NULL AND m > CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END",
    )
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(inserted)
}

pub async fn by_id(db: &PgPool, id: &str) -> Result<Option<Ticket>> {
    if impossible_key(id) {
        return Ok(None);
    }
    let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

pub async fn by_num(db: &PgPool, num: i64) -> Result<Option<Ticket>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE num = $1")
        .bind(num)
        .fetch_optional(db)
        .await
        .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

/// One statement (one snapshot) for all ids; one entry per id, in order.
pub async fn by_ids(db: &PgPool, ids: &[String]) -> Result<Vec<Option<Ticket>>> {
    let wanted: Vec<&String> = ids.iter().filter(|id| !impossible_key(id)).collect();
    if wanted.is_empty() {
        return Ok(vec![None; ids.len()]);
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, data FROM tickets WHERE id = ANY($1)")
            .bind(wanted)
            .fetch_all(db)
            .await
            .map_err(db_err)?;
    let by_id: HashMap<String, String> = rows.into_iter().collect();
    ids.iter()
        .map(|id| by_id.get(id).map(|d| parse(d)).transpose())
        .collect()
}

/// The ticket, its row locked until the transaction ends.
pub async fn load_for_write(c: &mut PgConnection, id: &str) -> Result<Option<Ticket>> {
    if impossible_key(id) {
        return Ok(None);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM tickets WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *c)
            .await
            .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

/// Rewrites a stored ticket's row with its whole index (its number and id unchanged; the
/// `created` column is not rewritten).
pub async fn rewrite_row(c: &mut PgConnection, ticket: &Ticket) -> Result<()> {
    let num = ticket.num;
    let r = TicketRow::new(ticket)?;
    let query = sqlx::query(
        "UPDATE tickets SET modified = $2, due = $3, subject = $4, subject_key = $5, subject_rest = $6, \
           status = $7, type = $8, category = $9, dedupe_key = $10, data = $11, \
           keywords = $12::text[], \
           subject_tsv = $13::tsvector, body_tsv = $14::tsvector, changes_tsv = $15::tsvector, \
           subject_raw = $16, body_raw = $17, changes_raw = $18, assignee_key = $19, tag_key = $20, \
           priority_rank = coalesce((SELECT p.rank FROM priority_levels p WHERE p.id = $21), -1) \
         WHERE num = $1",
    );
    bind_row_columns!(query.bind(num), r)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Removes a ticket's row (its index goes with it).
pub async fn remove_row(c: &mut PgConnection, num: i64) -> Result<()> {
    sqlx::query("DELETE FROM tickets WHERE num = $1")
        .bind(num)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn count(db: &PgPool) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tickets")
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

/// Rebuilds the index columns (from the JSON record) of up to `limit` tickets numbered
/// above `after`, locking them for the transaction.
pub async fn reindex_batch(
    c: &mut PgConnection,
    after: i64,
    limit: u32,
) -> Result<Option<(i64, u64)>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM tickets WHERE num > $1 ORDER BY num LIMIT $2 FOR UPDATE")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
    let mut built = Vec::with_capacity(rows.len());
    for (data,) in &rows {
        built.push(TicketRow::new(&parse(data)?)?);
    }
    let Some(last) = built.last().map(|r| r.num) else {
        return Ok(None);
    };
    for chunk in built.chunks(INSERT_CHUNK) {
        let col = |f: &dyn Fn(&TicketRow) -> String| chunk.iter().map(f).collect::<Vec<String>>();
        let raw = |f: &dyn Fn(&TicketRow) -> Option<String>| {
            chunk.iter().map(f).collect::<Vec<Option<String>>>()
        };
        sqlx::query(&format!(
            "UPDATE tickets t SET subject_key = u.sk, subject_rest = u.sr, dedupe_key = u.dk, \
               keywords = ARRAY(SELECT json_array_elements_text(u.kw::json)), \
               subject_tsv = u.stsv::tsvector, body_tsv = u.btsv::tsvector, changes_tsv = u.ctsv::tsvector, \
               subject_raw = u.sraw, body_raw = u.braw, changes_raw = u.craw, \
               assignee_key = u.ak, tag_key = u.tk, priority_rank = {PRIORITY_RANK_OF_U} \
             FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::text[], $5::text[], $6::text[], \
               $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
               $14::text[]) \
               AS u(num, sk, sr, dk, kw, stsv, btsv, ctsv, sraw, braw, craw, ak, tk, pr) \
             WHERE t.num = u.num"
        ))
        .bind(chunk.iter().map(|r| r.num).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.subject_key.clone()).collect::<Vec<_>>())
        .bind(
            chunk
                .iter()
                .map(|r| r.subject_rest.clone())
                .collect::<Vec<_>>(),
        )
        .bind(raw(&|r| r.dedupe_key.clone()))
        .bind(col(&|r| r.keywords_json()))
        .bind(col(&|r| r.subject_text.tsv.clone()))
        .bind(col(&|r| r.body_text.tsv.clone()))
        .bind(col(&|r| r.changes_text.tsv.clone()))
        .bind(raw(&|r| r.subject_text.raw.clone()))
        .bind(raw(&|r| r.body_text.raw.clone()))
        .bind(raw(&|r| r.changes_text.raw.clone()))
        .bind(col(&|r| r.assignee_key.clone()))
        .bind(col(&|r| r.tag_key.clone()))
        .bind(col(&|r| r.priority.clone()))
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    }
    Ok(Some((last, built.len() as u64)))
}

/// Tickets given their sort keys per statement by [`backfill_sort_keys`].
const BACKFILL_BATCH: i64 = 500;

/// Fills the list sort keys of rows that have none (NULL: written before migration 0006),
/// a batch per statement pair, before the store serves. Rows are found through the keys'
/// own indexes, so an up-to-date database costs two index probes. Several nodes may run it
/// at once: each computes the same keys from the same record, and rows another node holds
/// are skipped (that node fills them). Returns how many tickets were updated.
pub async fn backfill_sort_keys(db: &PgPool) -> Result<u64> {
    let mut done = 0u64;
    for column in ["assignee_key", "tag_key"] {
        let select = format!(
            "SELECT data FROM tickets WHERE {column} IS NULL ORDER BY num LIMIT $1 \
             FOR UPDATE SKIP LOCKED"
        );
        loop {
            let mut tx = db.begin().await.map_err(db_err)?;
            let rows: Vec<(String,)> = sqlx::query_as(&select)
                .bind(BACKFILL_BATCH)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut nums = Vec::with_capacity(rows.len());
            let (mut assignees, mut tags) = (Vec::new(), Vec::new());
            for (data,) in &rows {
                let t = parse(data)?;
                nums.push(t.num);
                assignees.push(list_sort_key(&t.assignees));
                tags.push(list_sort_key(&t.tags));
            }
            // Only the key columns change, so the NOTIFY trigger (UPDATE OF data) stays quiet.
            sqlx::query(
                "UPDATE tickets t SET assignee_key = u.ak, tag_key = u.tk \
                 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(num, ak, tk) \
                 WHERE t.num = u.num",
            )
            .bind(&nums)
            .bind(&assignees)
            .bind(&tags)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            done += rows.len() as u64;
            if (rows.len() as i64) < BACKFILL_BATCH {
                break;
            }
        }
    }
    Ok(done)
}

/// The newest ticket with this dedupe key that is not closed-like (and, for a caller
/// limited to categories, in one of them).
pub async fn open_with_dedupe_key(
    c: &mut PgConnection,
    key: &str,
    closed: &[String],
    categories: Option<&std::collections::BTreeSet<String>>,
) -> Result<Option<String>> {
    if impossible_key(key) {
        return Ok(None);
    }
    let cats: Option<Vec<String>> = match categories {
        Some(set) if set.is_empty() => return Ok(None),
        Some(set) => Some(set.iter().filter(|c| !impossible_key(c)).cloned().collect()),
        None => None,
    };
    let closed: Vec<String> = closed
        .iter()
        .filter(|s| !impossible_key(s))
        .cloned()
        .collect();
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM tickets WHERE dedupe_key = $1 AND status <> ALL($2) \
         AND ($3::text[] IS NULL OR category = ANY($3)) ORDER BY num DESC LIMIT 1",
    )
    .bind(key)
    .bind(&closed)
    .bind(cats)
    .fetch_optional(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(row.map(|(id,)| id))
}
