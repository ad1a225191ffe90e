//! A ticket as one caller may see it. Two parts of a stored ticket depend on the reader:
//! internal notes (only for callers with `view_internal`) and relations (only to tickets
//! the caller may see, with the other ticket's subject and status as they are now, read
//! here rather than stored, so they never go stale). Every path that hands a ticket to a
//! caller goes through here: typed tickets, and the stored-JSON fast path, which stays a
//! copy of the stored text for the tickets that have neither.

use std::collections::{BTreeSet, HashMap};

use crate::auth::Principal;
use crate::error::Result;
use crate::model::Ticket;
use crate::store::ticket_json;

use super::Docket;

/// What a reader needs of a related ticket.
struct Other {
    num: i64,
    subject: String,
    status: String,
    category: String,
}

/// Whether stored ticket JSON holds anything [`Docket::present_many`] would change for a
/// reader who may (`sees_internal`) read internal notes and is (`limited`) or is not
/// limited to some categories. Inside a JSON string a `"` is always escaped, so
/// `"relations":`, `"internal":true` and `"key":"relation"` occur only as members (of the
/// ticket, its changes, or a free-form `events` object — the last merely takes the slower
/// path).
pub fn needs_presenting(json: &str, sees_internal: bool, limited: bool) -> bool {
    json.contains("\"relations\":")
        || (!sees_internal && json.contains("\"internal\":true"))
        || (limited && json.contains("\"key\":\"relation\""))
}

/// The other ticket of a relation history entry.
fn relation_entry_target(c: &crate::model::Change) -> Option<&str> {
    if c.key.as_deref() != Some(crate::relations::HISTORY_KEY) {
        return None;
    }
    c.value.as_ref()?.get("id")?.as_str()
}

impl Docket {
    /// [`Docket::present_many`] of one ticket.
    pub async fn present(&self, who: &Principal, ticket: Ticket) -> Result<Ticket> {
        let mut one = [ticket];
        self.present_many(who, &mut one).await?;
        let [t] = one;
        Ok(t)
    }

    /// Leaves out the internal notes `who` may not read and the relations to tickets `who`
    /// may not see, and fills each remaining relation's `num`, `subject` and `status` from
    /// the other ticket (one read for all of them). A relation whose ticket is gone is left
    /// out. For a caller limited to categories, the history entries of relations to tickets
    /// it may not see (or that are gone, whose category is unknown) are left out too, so not
    /// even the number of a hidden ticket shows.
    pub async fn present_many(&self, who: &Principal, tickets: &mut [Ticket]) -> Result<()> {
        if !who.sees_internal() {
            for t in tickets.iter_mut() {
                t.changes.retain(|c| !c.internal);
            }
        }
        let limited = who.categories.is_some();
        let ids: Vec<String> = tickets
            .iter()
            .flat_map(|t| {
                let entries = t
                    .changes
                    .iter()
                    .filter(move |_| limited)
                    .filter_map(relation_entry_target);
                t.relations.iter().map(|r| r.id.as_str()).chain(entries)
            })
            .map(str::to_string)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let found = self.store.tickets_by_ids(&ids).await?;
        let others: HashMap<String, Other> = ids
            .into_iter()
            .zip(found)
            .filter_map(|(id, t)| {
                t.map(|t| {
                    (
                        id,
                        Other {
                            num: t.num,
                            subject: t.subject,
                            status: t.status,
                            category: t.category,
                        },
                    )
                })
            })
            .collect();
        let visible = |id: &str| {
            others
                .get(id)
                .is_some_and(|o| who.sees_category(&o.category))
        };
        for t in tickets.iter_mut() {
            if limited {
                t.changes
                    .retain(|c| relation_entry_target(c).is_none_or(&visible));
            }
            t.relations.retain_mut(|r| match others.get(&r.id) {
                Some(o) if who.sees_category(&o.category) => {
                    r.num = o.num;
                    r.subject.clone_from(&o.subject);
                    r.status.clone_from(&o.status);
                    true
                }
                _ => false,
            });
        }
        Ok(())
    }

    /// Stored ticket JSON texts as `who` may see them: each one as it is when it holds no
    /// relation and nothing hidden from `who` (the common case: no parse), else parsed,
    /// presented and written again.
    pub async fn present_json(&self, who: &Principal, rows: Vec<String>) -> Result<Vec<String>> {
        let internal = who.sees_internal();
        let limited = who.categories.is_some();
        let todo: Vec<usize> = (0..rows.len())
            .filter(|&i| needs_presenting(&rows[i], internal, limited))
            .collect();
        if todo.is_empty() {
            return Ok(rows);
        }
        let mut tickets = todo
            .iter()
            .map(|&i| {
                serde_json::from_str::<Ticket>(&rows[i])
                    .map_err(|e| crate::Error::Internal(format!("corrupt ticket record: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.present_many(who, &mut tickets).await?;
        let mut rows = rows;
        for (i, t) in todo.into_iter().zip(tickets) {
            rows[i] = ticket_json(&t)?;
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Change, Relation};

    #[test]
    fn only_tickets_with_something_to_present_are_parsed() {
        let plain = Ticket {
            subject: "\"relations\": \"internal\":true".into(),
            changes: vec![Change::default()],
            ..Default::default()
        };
        let json = ticket_json(&plain).unwrap();
        assert!(!needs_presenting(&json, false, true));
        let mut noted = plain.clone();
        noted.changes[0].internal = true;
        let json = ticket_json(&noted).unwrap();
        assert!(needs_presenting(&json, false, false));
        assert!(!needs_presenting(&json, true, false));
        let mut related = plain.clone();
        related.relations.push(Relation::default());
        assert!(needs_presenting(
            &ticket_json(&related).unwrap(),
            true,
            false
        ));
        let mut unlinked = plain;
        unlinked.changes[0].key = Some("relation".into());
        let json = ticket_json(&unlinked).unwrap();
        assert!(needs_presenting(&json, true, true));
        assert!(!needs_presenting(&json, true, false));
    }
}
