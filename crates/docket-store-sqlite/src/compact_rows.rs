//! The `ticket_compact` table (migration 0012): each ticket's `compact` search row, kept
//! ready so that a compact search page reads ~350 bytes a row instead of the 3–4 KB of
//! stored JSON it would otherwise scan (`search::fetch_in_order`). It holds a row only for a
//! ticket that reads the same to every reader — nothing
//! [`needs_presenting`](docket_core::service::needs_presenting) finds for anyone — because
//! such a row goes to the caller as it is.
//!
//! Every statement that writes `tickets.data` must keep it in step, in the same transaction:
//! the ticket writes in `tickets.rs` call [`write`] and [`remove`]; a statement that rewrites
//! `data` in SQL (the priority default in `priority.rs`) calls [`refill_all`].

use rusqlite::{params, Connection};

use docket_core::compact_json;
use docket_core::service::needs_presenting;
use docket_core::Result;

use crate::writer::execute;

/// Stores (or, for a ticket that needs presenting, removes) the compact row of ticket `num`
/// whose stored JSON is `data`.
pub fn write(c: &Connection, num: i64, data: &str) -> Result<()> {
    if needs_presenting(data, false, true) {
        return remove(c, num);
    }
    let row = compact_json::compact(data)?;
    execute(
        c,
        "INSERT OR REPLACE INTO ticket_compact (num, row) VALUES (?1, ?2)",
        params![num, row],
    )
    .map(drop)
}

/// Removes the compact row of ticket `num`.
pub fn remove(c: &Connection, num: i64) -> Result<()> {
    execute(c, "DELETE FROM ticket_compact WHERE num = ?1", [num]).map(drop)
}

/// Rewrites every compact row from the stored JSON, in SQL (the same statement as
/// migration 0012; the conformance tests check it agrees with [`write`]).
pub fn refill_all(c: &Connection) -> Result<()> {
    execute(c, "DELETE FROM ticket_compact", [])?;
    execute(
        c,
        "INSERT INTO ticket_compact (num, row) \
         SELECT num, \
                CASE WHEN json_type(data, '$.changes') = 'array' \
                     THEN json_set(json_remove(data, '$.body'), '$.changes', \
                                   json_array_length(data, '$.changes')) \
                     ELSE json_remove(data, '$.body') END \
         FROM tickets \
         WHERE instr(data, '\"relations\":') = 0 \
           AND instr(data, '\"internal\":true') = 0 \
           AND instr(data, '\"key\":\"relation\"') = 0",
        [],
    )
    .map(drop)
}
