//! The in-memory keyword index: the set of every ticket number and, per frequent keyword
//! term (`status:open`, `tags:important`, …), the set of tickets carrying it, as compressed
//! bitmaps. Counts, intersections and number-ordered pages of keyword queries then take
//! microseconds instead of an index scan per term.
//!
//! Exactness:
//! - `ticket_keywords` and `tickets` stay the truth. The index is built from them at open, and
//!   the writer keeps it equal to them: TEMP triggers on the write connection record every
//!   row inserted into or deleted from those tables in `temp.index_delta`, inside the write
//!   transaction. A write rolled back (its savepoint, or the whole transaction) takes its
//!   delta rows with it, so only committed changes are ever applied. The writer takes the
//!   delta before COMMIT, bumps the `index_epoch` counter in the same transaction, and
//!   applies the delta after the COMMIT succeeded and before any caller is answered.
//! - A search reads `index_epoch` in its read transaction (which fixes its SQLite snapshot)
//!   and uses the index only at that very epoch, so counts from memory and rows from SQL
//!   always describe the same state. If the index is behind, the search waits for the
//!   writer; if another process wrote tickets (its epoch bump is not ours), the writer
//!   rebuilds the index.
//! - Only terms with at least [`MEMORY_MIN`] tickets live in memory (unique values such as
//!   job ids would cost ~200 bytes each); rarer terms are read from `ticket_keywords`, a short
//!   range of its primary key. A term a search finds to have grown past the threshold is
//!   loaded by the writer between two batches.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use docket_core::{Error, Result};
use roaring::RoaringBitmap;
use rusqlite::Connection;
use tokio::sync::watch;

use crate::writer::sql_err;

/// Tickets a term needs to be kept in memory (all terms in this crate's unit tests).
pub const MEMORY_MIN: u64 = if cfg!(test) { 1 } else { 512 };

/// One row inserted into (`add`) or deleted from `ticket_keywords` (`term` = field, value)
/// or `tickets` (`term` = None).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub add: bool,
    pub term: Option<(String, String)>,
    pub num: i64,
}

/// The index at one epoch.
#[derive(Clone, Default)]
pub struct State {
    pub epoch: i64,
    pub all: Arc<RoaringBitmap>,
    /// field name -> normalized value -> tickets.
    pub terms: HashMap<String, HashMap<String, Arc<RoaringBitmap>>>,
}

impl State {
    fn term(&self, field: &str, value: &str) -> Option<&Arc<RoaringBitmap>> {
        self.terms.get(field).and_then(|m| m.get(value))
    }

    /// Applies committed changes in order; false when a number does not fit (the index
    /// cannot represent the data and must not be used).
    fn apply(&mut self, changes: &[Change]) -> bool {
        for c in changes {
            let Ok(num) = u32::try_from(c.num) else {
                return false;
            };
            let set = match &c.term {
                None => &mut self.all,
                Some((field, value)) => {
                    match self.terms.get_mut(field).and_then(|m| m.get_mut(value)) {
                        Some(set) => set,
                        None => continue, // not kept in memory: read from SQL
                    }
                }
            };
            let set = Arc::make_mut(set);
            if c.add {
                set.insert(num);
            } else {
                set.remove(num);
            }
        }
        true
    }

    /// Bytes held by the bitmaps (their serialized size, close to their heap size).
    pub fn bytes(&self) -> u64 {
        let terms: usize = self
            .terms
            .values()
            .flat_map(|m| m.iter())
            .map(|(v, b)| v.len() + b.serialized_size())
            .sum();
        (terms + self.all.serialized_size()) as u64
    }

    pub fn term_count(&self) -> usize {
        self.terms.values().map(HashMap::len).sum()
    }
}

/// What a search gets from the index for the epoch of its SQLite snapshot.
pub enum Take {
    /// The index is at that epoch: every ticket, and per asked term its set if in memory.
    Ready {
        all: Arc<RoaringBitmap>,
        terms: Vec<Option<Arc<RoaringBitmap>>>,
    },
    /// The index has not applied that epoch yet.
    Behind,
    /// The index is past that epoch: the search's snapshot is older; take a new one.
    Ahead,
    /// No usable index (ticket numbers beyond 32 bits, or a failed rebuild).
    Unusable,
}

/// The shared index: read by searches, changed only by the writer task.
pub struct KeywordIndex {
    state: RwLock<Option<State>>,
    /// The epoch of the state (-1 while unusable), for searches waiting for the writer.
    published: watch::Sender<i64>,
}

impl KeywordIndex {
    pub fn new(state: Option<State>) -> KeywordIndex {
        let epoch = state.as_ref().map_or(-1, |s| s.epoch);
        KeywordIndex {
            state: RwLock::new(state),
            published: watch::Sender::new(epoch),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Option<State>> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Option<State>> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The sets for a search whose snapshot is at `epoch`.
    pub fn take(&self, epoch: i64, terms: &[(&str, &str)]) -> Take {
        let guard = self.read();
        let Some(state) = guard.as_ref() else {
            return Take::Unusable;
        };
        match state.epoch.cmp(&epoch) {
            std::cmp::Ordering::Less => Take::Behind,
            std::cmp::Ordering::Greater => Take::Ahead,
            std::cmp::Ordering::Equal => Take::Ready {
                all: state.all.clone(),
                terms: terms
                    .iter()
                    .map(|(f, v)| state.term(f, v).cloned())
                    .collect(),
            },
        }
    }

    /// Waits up to `limit` for the writer to apply `epoch`; false on time-out or if the
    /// index became unusable.
    pub async fn wait_for(&self, epoch: i64, limit: Duration) -> bool {
        let mut rx = self.published.subscribe();
        let reached =
            match tokio::time::timeout(limit, rx.wait_for(|e| *e >= epoch || *e < 0)).await {
                Ok(Ok(e)) => *e >= epoch,
                _ => false,
            };
        reached
    }

    pub fn epoch(&self) -> Option<i64> {
        self.read().as_ref().map(|s| s.epoch)
    }

    /// Applies a committed batch's changes, which moved the database to `epoch`. False when
    /// the index was not at `epoch - 1` (another process wrote) or cannot hold the data: the
    /// caller must rebuild it.
    pub fn apply(&self, epoch: i64, changes: &[Change]) -> bool {
        let mut guard = self.write();
        let ok = match guard.as_mut() {
            Some(state) if state.epoch + 1 == epoch => {
                state.epoch = epoch;
                state.apply(changes)
            }
            _ => false,
        };
        if !ok {
            *guard = None;
        }
        let published = guard.as_ref().map_or(-1, |s| s.epoch);
        drop(guard);
        self.published.send_replace(published);
        ok
    }

    /// Replaces the whole state (a build or rebuild).
    pub fn replace(&self, state: Option<State>) {
        let published = state.as_ref().map_or(-1, |s| s.epoch);
        *self.write() = state;
        self.published.send_replace(published);
    }

    /// Keeps a term in memory from now on; `set` was read at `epoch`. False if the index
    /// is elsewhere (the caller rebuilds).
    pub fn promote(&self, epoch: i64, field: &str, value: &str, set: RoaringBitmap) -> bool {
        let mut guard = self.write();
        match guard.as_mut() {
            Some(state) if state.epoch == epoch => {
                state
                    .terms
                    .entry(field.to_string())
                    .or_default()
                    .entry(value.to_string())
                    .or_insert_with(|| Arc::new(set));
                true
            }
            _ => false,
        }
    }

    pub fn has_term(&self, field: &str, value: &str) -> bool {
        self.read()
            .as_ref()
            .is_some_and(|s| s.term(field, value).is_some())
    }

    /// A copy of the state (tests compare it with the database).
    #[cfg(test)]
    pub fn snapshot(&self) -> Option<State> {
        self.read().clone()
    }
}

/// Prepares the write connection: makes sure the epoch counter exists, installs the TEMP
/// delta table and triggers (TEMP objects live only on this connection; every insert or
/// delete of a ticket or keyword row is a change, any other update of a ticket row a
/// "touch" that moves the epoch only), and sets FTS5 `usermerge` for the writer's idle
/// merges.
pub fn install_capture(conn: &Connection) -> Result<()> {
    const SQL: &[&str] = &[
        "INSERT OR IGNORE INTO counters (name, value) VALUES ('index_epoch', 0)",
        // Idle merges (writer.rs, `tidy_text_step`) pair segments of a level as soon as
        // there are two.
        "INSERT INTO ticket_text (ticket_text, rank) VALUES ('usermerge', 2)",
        "CREATE TEMP TABLE IF NOT EXISTS index_delta (
            add_row INTEGER NOT NULL, field TEXT, value TEXT, num INTEGER NOT NULL)",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_kw_insert AFTER INSERT ON main.ticket_keywords
         BEGIN INSERT INTO index_delta VALUES (1, new.field, new.value, new.num); END",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_kw_delete AFTER DELETE ON main.ticket_keywords
         BEGIN INSERT INTO index_delta VALUES (0, old.field, old.value, old.num); END",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_kw_update AFTER UPDATE ON main.ticket_keywords
         BEGIN
             INSERT INTO index_delta VALUES (0, old.field, old.value, old.num);
             INSERT INTO index_delta VALUES (1, new.field, new.value, new.num);
         END",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_ticket_insert AFTER INSERT ON main.tickets
         BEGIN INSERT INTO index_delta VALUES (1, NULL, NULL, new.num); END",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_ticket_delete AFTER DELETE ON main.tickets
         BEGIN INSERT INTO index_delta VALUES (0, NULL, NULL, old.num); END",
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_ticket_renumber AFTER UPDATE OF num ON main.tickets
         BEGIN
             INSERT INTO index_delta VALUES (0, NULL, NULL, old.num);
             INSERT INTO index_delta VALUES (1, NULL, NULL, new.num);
         END",
        // Any other change of a ticket row changes no set, but it still moves the epoch:
        // the epoch then names a state of every ticket, its text included (a search that
        // reads count and page on two connections checks both saw the same epoch).
        "CREATE TEMP TRIGGER IF NOT EXISTS index_delta_ticket_touch AFTER UPDATE ON main.tickets
         WHEN old.num = new.num
         BEGIN INSERT INTO index_delta VALUES (2, NULL, NULL, new.num); END",
    ];
    for sql in SQL {
        conn.execute(sql, []).map_err(sql_err)?;
    }
    Ok(())
}

/// Takes (reads and empties) the changes recorded in the current transaction, in order, and
/// whether any ticket changed at all.
pub fn take_delta(conn: &Connection) -> Result<(bool, Vec<Change>)> {
    type Row = (i64, i64, Option<String>, Option<String>, i64);
    let mut rows: Vec<Row> = conn
        .prepare_cached("DELETE FROM temp.index_delta RETURNING rowid, add_row, field, value, num")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect()
        })
        .map_err(sql_err)?;
    rows.sort_unstable_by_key(|r| r.0);
    let touched = !rows.is_empty();
    let changes = rows
        .into_iter()
        .filter(|r| r.1 != 2) // a touch: no set changes
        .map(|(_, add, field, value, num)| Change {
            add: add != 0,
            term: field.zip(value),
            num,
        })
        .collect();
    Ok((touched, changes))
}

/// Bumps the epoch in the current write transaction and returns the new value.
pub fn bump_epoch(conn: &Connection) -> Result<i64> {
    conn.prepare_cached(
        "UPDATE counters SET value = value + 1 WHERE name = 'index_epoch' RETURNING value",
    )
    .and_then(|mut s| s.query_row([], |r| r.get(0)))
    .map_err(sql_err)
}

/// The epoch of the writer's connection (in a transaction: of its snapshot).
pub fn epoch_of(conn: &Connection) -> Result<i64> {
    use rusqlite::OptionalExtension;
    conn.prepare_cached("SELECT value FROM counters WHERE name = 'index_epoch'")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)).optional())
        .map(|e| e.unwrap_or(0))
        .map_err(sql_err)
}

/// Parses a `group_concat` of ticket numbers into a set; None if one does not fit in 32
/// bits.
pub fn parse_set(text: Option<&str>) -> Result<Option<RoaringBitmap>> {
    let mut set = RoaringBitmap::new();
    Ok(extend_set(&mut set, text)?.then_some(set))
}

/// Adds the numbers of a `group_concat` to `set` (appending while they ascend, as index
/// scans give them); false if one does not fit in 32 bits.
pub fn extend_set(set: &mut RoaringBitmap, text: Option<&str>) -> Result<bool> {
    let text = text.unwrap_or_default().as_bytes();
    let (mut cur, mut digits) = (0u64, 0);
    for &b in text.iter().chain(std::iter::once(&b',')) {
        match b {
            b'0'..=b'9' => {
                cur = cur * 10 + u64::from(b - b'0');
                digits += 1;
                if cur > u64::from(u32::MAX) {
                    return Ok(false);
                }
            }
            b',' if digits > 0 => {
                let num = cur as u32;
                if set.try_push(num).is_err() {
                    set.insert(num);
                }
                (cur, digits) = (0, 0);
            }
            b',' => {}
            _ => {
                return Err(Error::Internal(format!(
                    "bad ticket number list from the index near byte {b}"
                )))
            }
        }
    }
    Ok(true)
}

/// Reads the whole index from the database at one snapshot; None if it cannot hold the
/// data (a ticket number beyond 32 bits).
pub fn build(conn: &Connection) -> Result<Option<State>> {
    let started = Instant::now();
    let out = in_read_transaction(conn, build_in_transaction);
    if let Ok(Some(state)) = &out {
        tracing::info!(
            tickets = state.all.len(),
            terms = state.term_count(),
            bytes = state.bytes(),
            ms = started.elapsed().as_millis() as u64,
            "keyword index built"
        );
    }
    out
}

/// Runs `read` in a transaction of its own, so all it reads is one snapshot.
fn in_read_transaction<T>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.execute_batch("BEGIN").map_err(sql_err)?;
    let out = read(conn);
    let _ = conn.execute_batch("COMMIT");
    out
}

fn build_in_transaction(conn: &Connection) -> Result<Option<State>> {
    let epoch = epoch_of(conn)?;
    let all: Option<String> = conn
        .query_row("SELECT group_concat(num) FROM tickets", [], |r| r.get(0))
        .map_err(sql_err)?;
    let Some(all) = parse_set(all.as_deref())? else {
        return Ok(None);
    };
    let mut state = State {
        epoch,
        all: Arc::new(all),
        terms: HashMap::new(),
    };
    let mut terms = conn
        .prepare(
            "SELECT field, value, group_concat(num) FROM ticket_keywords GROUP BY field, value \
             HAVING count(*) >= ?1",
        )
        .map_err(sql_err)?;
    let mut rows = terms.query([MEMORY_MIN as i64]).map_err(sql_err)?;
    while let Some(row) = rows.next().map_err(sql_err)? {
        let (field, value, nums): (String, String, Option<String>) = (
            row.get(0).map_err(sql_err)?,
            row.get(1).map_err(sql_err)?,
            row.get(2).map_err(sql_err)?,
        );
        let Some(set) = parse_set(nums.as_deref())? else {
            return Ok(None);
        };
        state
            .terms
            .entry(field)
            .or_default()
            .insert(value, Arc::new(set));
    }
    Ok(Some(state))
}

/// Rebuilds the index from the database (on the writer's connection, between batches).
pub fn rebuild(conn: &Connection, index: &KeywordIndex) {
    match build(conn) {
        Ok(state) => index.replace(state),
        Err(e) => {
            tracing::error!(error = %e, "cannot rebuild the keyword index; searches read SQL only");
            index.replace(None);
        }
    }
}

/// Loads one term into memory (writer thread, between batches).
pub fn promote(conn: &Connection, index: &KeywordIndex, field: &str, value: &str) {
    if index.has_term(field, value) || index.epoch().is_none() {
        return;
    }
    let read = in_read_transaction(conn, |conn| {
        let epoch = epoch_of(conn)?;
        let nums: Option<String> = conn
            .query_row(
                "SELECT group_concat(num) FROM ticket_keywords WHERE field = ?1 AND value = ?2",
                [field, value],
                |r| r.get(0),
            )
            .map_err(sql_err)?;
        Ok((epoch, parse_set(nums.as_deref())?))
    });
    match read {
        Ok((epoch, Some(set))) => {
            if !index.promote(epoch, field, value, set) {
                rebuild(conn, index);
            }
        }
        Ok((_, None)) => index.replace(None),
        Err(e) => tracing::warn!(error = %e, "cannot load a keyword term into memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_number_lists() {
        let set = parse_set(Some("5,3,9,3")).unwrap().unwrap();
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![3, 5, 9]);
        assert!(parse_set(None).unwrap().unwrap().is_empty());
        assert!(parse_set(Some("4294967296")).unwrap().is_none());
        assert!(parse_set(Some("1,x")).is_err());
    }

    #[test]
    fn applies_changes_in_order_and_refuses_a_gap() {
        let mut state = State {
            epoch: 4,
            ..State::default()
        };
        state
            .terms
            .entry("status".into())
            .or_default()
            .insert("open".into(), Arc::new(RoaringBitmap::from_iter([1u32])));
        let index = KeywordIndex::new(Some(state));
        let term = || Some(("status".to_string(), "open".to_string()));
        let changes = vec![
            Change {
                add: true,
                term: None,
                num: 2,
            },
            Change {
                add: true,
                term: term(),
                num: 2,
            },
            Change {
                add: false,
                term: term(),
                num: 1,
            },
            Change {
                add: true,
                term: term(),
                num: 1,
            },
            Change {
                add: false,
                term: term(),
                num: 2,
            },
            Change {
                add: true,
                term: Some(("tags".into(), "x".into())),
                num: 2,
            },
        ];
        assert!(index.apply(5, &changes));
        let s = index.snapshot().unwrap();
        assert_eq!(s.all.iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            s.term("status", "open").unwrap().iter().collect::<Vec<_>>(),
            vec![1]
        );
        assert!(
            s.term("tags", "x").is_none(),
            "terms not in memory stay in SQL"
        );
        // A batch that does not follow the index's epoch: another process wrote.
        assert!(!index.apply(7, &[]));
        assert!(matches!(index.take(7, &[]), Take::Unusable));
    }
}
