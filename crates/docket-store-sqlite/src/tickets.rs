//! Ticket rows and their index entries, always written together in one transaction.

use docket_core::model::Ticket;
use docket_core::search_doc::{list_sort_key, ticket_doc};
use docket_core::{Error, Result};
use docket_query::TextField;
use sqlx::{SqliteConnection, SqlitePool};

use crate::db_err;

pub(crate) fn parse(data: &str) -> Result<Ticket> {
    serde_json::from_str(data).map_err(|e| Error::Internal(format!("corrupt ticket record: {e}")))
}

fn encode(t: &Ticket) -> Result<String> {
    serde_json::to_string(t).map_err(Error::internal)
}

/// Draws the next ticket number (the counter never goes back).
pub async fn next_num(c: &mut SqliteConnection) -> Result<i64> {
    let (num,): (i64,) = sqlx::query_as(
        "UPDATE counters SET value = value + 1 WHERE name = 'ticket_num' RETURNING value",
    )
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(num)
}

pub async fn exists(c: &mut SqliteConnection, id: &str) -> Result<bool> {
    let taken: Option<(i64,)> = sqlx::query_as("SELECT num FROM tickets WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(taken.is_some())
}

/// The priority rank of the bound priority, from the configured levels (priority.rs).
const PRIORITY_RANK: &str = "coalesce((SELECT rank FROM priority_levels WHERE id = ?), -1)";

/// Inserts a numbered ticket and its index; `false` when its id is taken.
pub async fn insert_row(c: &mut SqliteConnection, ticket: &Ticket) -> Result<bool> {
    let done = sqlx::query(&format!(
        "INSERT INTO tickets (num, id, created, modified, due, subject, status, type, category, \
           assignee_key, tag_key, data, priority_rank) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {PRIORITY_RANK}) ON CONFLICT (id) DO NOTHING"
    ))
    .bind(ticket.num)
    .bind(&ticket.id)
    .bind(ticket.created)
    .bind(ticket.modified)
    .bind(ticket.due)
    .bind(&ticket.subject)
    .bind(&ticket.status)
    .bind(&ticket.kind)
    .bind(&ticket.category)
    .bind(list_sort_key(&ticket.assignees))
    .bind(list_sort_key(&ticket.tags))
    .bind(encode(ticket)?)
    .bind(&ticket.priority)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    write_index(c, ticket).await?;
    Ok(true)
}

pub async fn by_ids(db: &SqlitePool, ids: &[String]) -> Result<Vec<Option<Ticket>>> {
    let mut out = Vec::with_capacity(ids.len());
    let mut conn = db.acquire().await.map_err(db_err)?;
    for id in ids {
        let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        out.push(row.map(|(d,)| parse(&d)).transpose()?);
    }
    Ok(out)
}

pub async fn load_for_write(c: &mut SqliteConnection, id: &str) -> Result<Option<Ticket>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT data FROM tickets WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *c)
        .await
        .map_err(db_err)?;
    row.map(|(d,)| parse(&d)).transpose()
}

/// Rewrites a stored ticket's row and index (its number and id unchanged; `created` is
/// not rewritten).
pub async fn rewrite_row(c: &mut SqliteConnection, ticket: &Ticket) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE tickets SET modified = ?, due = ?, subject = ?, status = ?, type = ?, category = ?, \
           assignee_key = ?, tag_key = ?, data = ?, priority_rank = {PRIORITY_RANK} \
         WHERE num = ?"
    ))
    .bind(ticket.modified)
    .bind(ticket.due)
    .bind(&ticket.subject)
    .bind(&ticket.status)
    .bind(&ticket.kind)
    .bind(&ticket.category)
    .bind(list_sort_key(&ticket.assignees))
    .bind(list_sort_key(&ticket.tags))
    .bind(encode(ticket)?)
    .bind(&ticket.priority)
    .bind(ticket.num)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    rewrite_index(c, ticket).await
}

/// Brings a stored ticket's index up to date: only the keyword rows that changed are
/// deleted or inserted (an edit usually changes one or two of a ticket's dozen or more, and
/// each row written is also a change the in-memory keyword index must apply); the text row
/// is replaced.
async fn rewrite_index(c: &mut SqliteConnection, ticket: &Ticket) -> Result<()> {
    let doc = ticket_doc(ticket);
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT field, value FROM ticket_keywords WHERE num = ?")
            .bind(ticket.num)
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
    let stored: std::collections::HashSet<(String, String)> = stored.into_iter().collect();
    let wanted: std::collections::HashSet<(String, String)> = doc
        .keywords
        .iter()
        .flat_map(|(field, values)| {
            values
                .iter()
                .map(move |v| (field.name().to_string(), v.clone()))
        })
        .collect();
    for (field, value) in stored.difference(&wanted) {
        sqlx::query("DELETE FROM ticket_keywords WHERE field = ? AND value = ? AND num = ?")
            .bind(field)
            .bind(value)
            .bind(ticket.num)
            .execute(&mut *c)
            .await
            .map_err(db_err)?;
    }
    let added: Vec<(&str, &String)> = wanted
        .difference(&stored)
        .map(|(field, value)| (field.as_str(), value))
        .collect();
    insert_keywords(c, ticket.num, &added).await?;
    sqlx::query("DELETE FROM ticket_text WHERE rowid = ?")
        .bind(ticket.num)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    insert_text(c, ticket.num, &doc).await
}

/// Removes a ticket's row and index.
pub async fn remove_row(c: &mut SqliteConnection, num: i64) -> Result<()> {
    clear_index(c, num).await?;
    sqlx::query("DELETE FROM tickets WHERE num = ?")
        .bind(num)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The newest ticket with this dedupe key that is not closed-like (and, for a caller
/// limited to categories, in one of them).
pub async fn open_with_dedupe_key(
    c: &mut SqliteConnection,
    key: &str,
    closed: &[String],
    categories: Option<&std::collections::BTreeSet<String>>,
) -> Result<Option<String>> {
    let mut sql = String::from("SELECT id FROM tickets WHERE dedupe_key = ?");
    if !closed.is_empty() {
        sql.push_str(" AND status NOT IN (");
        sql.push_str(&vec!["?"; closed.len()].join(", "));
        sql.push(')');
    }
    if let Some(cats) = categories {
        if cats.is_empty() {
            return Ok(None);
        }
        sql.push_str(" AND category IN (");
        sql.push_str(&vec!["?"; cats.len()].join(", "));
        sql.push(')');
    }
    sql.push_str(" ORDER BY num DESC LIMIT 1");
    let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(key);
    for s in closed {
        q = q.bind(s);
    }
    for cat in categories.into_iter().flatten() {
        q = q.bind(cat);
    }
    let row = q.fetch_optional(&mut *c).await.map_err(db_err)?;
    Ok(row.map(|(id,)| id))
}

pub async fn count(db: &SqlitePool) -> Result<u64> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM tickets")
        .fetch_one(db)
        .await
        .map_err(db_err)?;
    Ok(n.max(0) as u64)
}

pub async fn reindex_batch(
    c: &mut SqliteConnection,
    after: i64,
    limit: u32,
) -> Result<Option<(i64, u64)>> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT data FROM tickets WHERE num > ? ORDER BY num LIMIT ?")
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&mut *c)
            .await
            .map_err(db_err)?;
    let mut last = None;
    let count = rows.len() as u64;
    for (data,) in rows {
        let ticket = parse(&data)?;
        clear_index(c, ticket.num).await?;
        write_index(c, &ticket).await?;
        write_sort_keys(c, &ticket).await?;
        last = Some(ticket.num);
    }
    Ok(last.map(|num| (num, count)))
}

/// Rewrites the sort keys of a stored ticket from its record.
async fn write_sort_keys(c: &mut SqliteConnection, ticket: &Ticket) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE tickets SET assignee_key = ?, tag_key = ?, priority_rank = {PRIORITY_RANK} \
         WHERE num = ?"
    ))
    .bind(list_sort_key(&ticket.assignees))
    .bind(list_sort_key(&ticket.tags))
    .bind(&ticket.priority)
    .bind(ticket.num)
    .execute(&mut *c)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Tickets given their sort keys per transaction by [`backfill_sort_keys`].
const BACKFILL_BATCH: i64 = 500;

/// Fills the list sort keys of rows that have none (NULL: written before migration 0006),
/// in batches of one transaction each, before the store serves. Rows are found through the
/// keys' own indexes (NULL sorts first), so an up-to-date database costs two index probes.
/// Returns how many tickets were updated.
pub async fn backfill_sort_keys(c: &mut SqliteConnection) -> Result<u64> {
    let mut done = 0u64;
    for column in ["assignee_key", "tag_key"] {
        let select = format!(
            "SELECT data FROM tickets WHERE {column} IS NULL ORDER BY {column}, num LIMIT ?"
        );
        loop {
            let mut tx = sqlx::Connection::begin(&mut *c).await.map_err(db_err)?;
            let rows: Vec<(String,)> = sqlx::query_as(&select)
                .bind(BACKFILL_BATCH)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            for (data,) in &rows {
                write_sort_keys(&mut tx, &parse(data)?).await?;
            }
            tx.commit().await.map_err(db_err)?;
            done += rows.len() as u64;
            if (rows.len() as i64) < BACKFILL_BATCH {
                break;
            }
        }
    }
    Ok(done)
}

async fn clear_index(c: &mut SqliteConnection, num: i64) -> Result<()> {
    sqlx::query("DELETE FROM ticket_keywords WHERE num = ?")
        .bind(num)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    sqlx::query("DELETE FROM ticket_text WHERE rowid = ?")
        .bind(num)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Writes the keyword rows and the full-text row of a ticket.
pub async fn write_index(c: &mut SqliteConnection, ticket: &Ticket) -> Result<()> {
    let doc = ticket_doc(ticket);
    let rows: Vec<(&str, &String)> = doc
        .keywords
        .iter()
        .flat_map(|(field, values)| values.iter().map(move |v| (field.name(), v)))
        .collect();
    insert_keywords(c, ticket.num, &rows).await?;
    insert_text(c, ticket.num, &doc).await
}

/// Inserts keyword rows of one ticket, many per statement (each statement is a round trip
/// to SQLite's thread).
async fn insert_keywords(
    c: &mut SqliteConnection,
    num: i64,
    rows: &[(&str, &String)],
) -> Result<()> {
    for chunk in rows.chunks(200) {
        let mut sql =
            String::from("INSERT OR IGNORE INTO ticket_keywords (field, value, num) VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        }
        let mut q = sqlx::query(&sql);
        for (field, value) in chunk {
            q = q.bind(*field).bind(*value).bind(num);
        }
        q.execute(&mut *c).await.map_err(db_err)?;
    }
    Ok(())
}

/// Inserts the full-text row of one ticket.
async fn insert_text(c: &mut SqliteConnection, num: i64, doc: &docket_query::Doc) -> Result<()> {
    let text = |f: TextField| doc.text.get(&f).map(|t| t.join(" ")).unwrap_or_default();
    sqlx::query("INSERT INTO ticket_text (rowid, subject, body, changes) VALUES (?, ?, ?, ?)")
        .bind(num)
        .bind(text(TextField::Subject))
        .bind(text(TextField::Body))
        .bind(text(TextField::Changes))
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Rows per multi-row statement of a bulk insert (SQLite allows 32,766 bound values).
const BULK_ROWS: usize = 500;

/// `(?, ?, …)` groups of `width` placeholders, `rows` of them, comma-separated.
fn value_groups(rows: usize, width: usize) -> String {
    let group = format!("({})", vec!["?"; width].join(", "));
    vec![group; rows].join(", ")
}

/// Inserts many tickets in the caller's transaction with a handful of multi-row statements
/// instead of five statements a ticket: every statement is a round trip to SQLite's worker
/// thread, and those hand-offs were a third of a bulk import's time. Tickets whose id
/// exists (or repeats within `tickets`) are skipped; the others get consecutive numbers in
/// order. Returns how many were inserted.
pub async fn insert_many(c: &mut SqliteConnection, tickets: Vec<Ticket>) -> Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut fresh: Vec<Ticket> = tickets
        .into_iter()
        .filter(|t| seen.insert(t.id.clone()))
        .collect();
    let mut taken = std::collections::HashSet::new();
    for chunk in fresh.chunks(BULK_ROWS) {
        let sql = format!(
            "SELECT id FROM tickets WHERE id IN ({})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query_as::<_, (String,)>(&sql);
        for t in chunk {
            q = q.bind(&t.id);
        }
        for (id,) in q.fetch_all(&mut *c).await.map_err(db_err)? {
            taken.insert(id);
        }
    }
    fresh.retain(|t| !taken.contains(&t.id));
    if fresh.is_empty() {
        return Ok(0);
    }
    let count = fresh.len() as i64;
    let (last,): (i64,) = sqlx::query_as(
        "UPDATE counters SET value = value + ? WHERE name = 'ticket_num' RETURNING value",
    )
    .bind(count)
    .fetch_one(&mut *c)
    .await
    .map_err(db_err)?;
    for (i, t) in fresh.iter_mut().enumerate() {
        t.num = last - count + 1 + i as i64;
    }
    insert_rows(c, &fresh).await?;
    Ok(count as u64)
}

/// Inserts whole records with the numbers they carry (an xyOps backup): records whose id
/// or number exists already are skipped; the number counter moves past the highest number,
/// so tickets created afterwards continue from there. Returns how many were inserted.
pub async fn insert_numbered(c: &mut SqliteConnection, tickets: Vec<Ticket>) -> Result<u64> {
    let mut seen_ids = std::collections::HashSet::new();
    let mut seen_nums = std::collections::HashSet::new();
    let mut fresh: Vec<Ticket> = tickets
        .into_iter()
        .filter(|t| t.num > 0 && seen_ids.insert(t.id.clone()) && seen_nums.insert(t.num))
        .collect();
    let mut taken_ids = std::collections::HashSet::new();
    let mut taken_nums = std::collections::HashSet::new();
    for chunk in fresh.chunks(BULK_ROWS) {
        let sql = format!(
            "SELECT id, num FROM tickets WHERE id IN ({0}) OR num IN ({0})",
            vec!["?"; chunk.len()].join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for t in chunk {
            q = q.bind(&t.id);
        }
        for t in chunk {
            q = q.bind(t.num);
        }
        for (id, num) in q.fetch_all(&mut *c).await.map_err(db_err)? {
            taken_ids.insert(id);
            taken_nums.insert(num);
        }
    }
    fresh.retain(|t| !taken_ids.contains(&t.id) && !taken_nums.contains(&t.num));
    if fresh.is_empty() {
        return Ok(0);
    }
    let highest = fresh.iter().map(|t| t.num).max().unwrap_or(0);
    sqlx::query("UPDATE counters SET value = max(value, ?) WHERE name = 'ticket_num'")
        .bind(highest)
        .execute(&mut *c)
        .await
        .map_err(db_err)?;
    insert_rows(c, &fresh).await?;
    Ok(fresh.len() as u64)
}

/// Writes numbered records, their keyword rows and their FTS rows, many per statement.
async fn insert_rows(c: &mut SqliteConnection, fresh: &[Ticket]) -> Result<()> {
    for chunk in fresh.chunks(BULK_ROWS) {
        let sql = format!(
            "INSERT INTO tickets (num, id, created, modified, due, subject, status, type, category, \
               assignee_key, tag_key, data) VALUES {}",
            value_groups(chunk.len(), 12)
        );
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q
                .bind(t.num)
                .bind(&t.id)
                .bind(t.created)
                .bind(t.modified)
                .bind(t.due)
                .bind(&t.subject)
                .bind(&t.status)
                .bind(&t.kind)
                .bind(&t.category)
                .bind(list_sort_key(&t.assignees))
                .bind(list_sort_key(&t.tags))
                .bind(encode(t)?);
        }
        q.execute(&mut *c).await.map_err(db_err)?;
    }
    // Their priority ranks (NULL until now), from the configured levels.
    crate::priority::fill_ranks(c).await?;
    // The index: keyword rows and FTS rows, also many per statement.
    let docs: Vec<(i64, docket_query::Doc)> =
        fresh.iter().map(|t| (t.num, ticket_doc(t))).collect();
    let keywords: Vec<(i64, &'static str, &String)> = docs
        .iter()
        .flat_map(|(num, doc)| {
            doc.keywords.iter().flat_map(move |(field, values)| {
                values.iter().map(move |v| (*num, field.name(), v))
            })
        })
        .collect();
    for chunk in keywords.chunks(BULK_ROWS * 3) {
        let sql = format!(
            "INSERT OR IGNORE INTO ticket_keywords (num, field, value) VALUES {}",
            value_groups(chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (num, field, value) in chunk {
            q = q.bind(*num).bind(*field).bind(*value);
        }
        q.execute(&mut *c).await.map_err(db_err)?;
    }
    for chunk in docs.chunks(BULK_ROWS) {
        let sql = format!(
            "INSERT INTO ticket_text (rowid, subject, body, changes) VALUES {}",
            value_groups(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (num, doc) in chunk {
            let text = |f: TextField| doc.text.get(&f).map(|t| t.join(" ")).unwrap_or_default();
            q = q
                .bind(*num)
                .bind(text(TextField::Subject))
                .bind(text(TextField::Body))
                .bind(text(TextField::Changes));
        }
        q.execute(&mut *c).await.map_err(db_err)?;
    }
    Ok(())
}
