//! Tickets read as the stored JSON text, not parsed (`Store::stored_ticket`): a reply that
//! shows the whole ticket writes that text as it is.

use docket_core::store::{StoredTicket, TicketRef};
use docket_core::Result;
use sqlx::PgPool;

use crate::db_err;
use crate::tickets::impossible_key;

pub async fn ticket(db: &PgPool, which: TicketRef<'_>) -> Result<Option<StoredTicket>> {
    let query = match which {
        TicketRef::Id(id) if impossible_key(id) => return Ok(None),
        TicketRef::Id(id) => {
            sqlx::query_as("SELECT category, data FROM tickets WHERE id = $1").bind(id.to_string())
        }
        TicketRef::Num(num) => {
            sqlx::query_as("SELECT category, data FROM tickets WHERE num = $1").bind(num)
        }
    };
    let row: Option<(String, String)> = query.fetch_optional(db).await.map_err(db_err)?;
    Ok(row.map(|(category, json)| StoredTicket { category, json }))
}
