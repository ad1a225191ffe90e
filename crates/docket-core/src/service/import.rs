//! Bulk import of whole ticket records (NDJSON lines), for migrations and benchmarks.
//! Records keep their own dates, authors and history; they get new numbers.

use std::collections::HashSet;

use serde_json::Value;

use super::Docket;
use crate::error::{Error, Result};
use crate::ids::{is_valid_id, new_id, IdKind};
use crate::model::Ticket;
use crate::sanitize::{clean_line, clean_markdown};
use crate::ticket_input::check_username;

/// What an import may refer to: tags and categories that exist.
#[derive(Debug, Default)]
pub struct ImportRefs {
    pub tags: HashSet<String>,
    pub categories: HashSet<String>,
}

impl Docket {
    pub async fn import_refs(&self) -> Result<ImportRefs> {
        let ids = |rows: Vec<Value>| -> HashSet<String> {
            rows.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        };
        Ok(ImportRefs {
            tags: ids(self
                .store
                .list_records(crate::store::RecordKind::Tag)
                .await?),
            categories: ids(self
                .store
                .list_records(crate::store::RecordKind::Category)
                .await?),
        })
    }

    /// Checks one record and fills what it lacks; the same rules as `create_ticket` for the
    /// fields a client could send.
    pub fn prepare_import(&self, value: Value, refs: &ImportRefs) -> Result<Ticket> {
        let mut t: Ticket = serde_json::from_value(value)
            .map_err(|e| Error::Ticket(format!("not a ticket record: {e}")))?;
        t.subject = clean_line(&t.subject);
        if t.subject.is_empty() {
            return Err(Error::Ticket("subject is missing or blank".into()));
        }
        t.body = clean_markdown(&t.body);
        if t.kind.is_empty() {
            t.kind = self.rules.default_type();
        }
        if t.status.is_empty() {
            t.status = "open".into();
        }
        if !self.rules.is_type(&t.kind) {
            return Err(Error::Ticket(format!("unknown type {:?}", t.kind)));
        }
        if !self.rules.is_status(&t.status) {
            return Err(Error::Ticket(format!("unknown status {:?}", t.status)));
        }
        // Records from before priorities (and xyOps records) have none: the default.
        if t.priority.is_empty() {
            t.priority = self.rules.default_priority.clone();
        }
        if !self.rules.is_priority(&t.priority) {
            return Err(Error::Ticket(format!(
                "unknown priority {:?}; valid priorities are: {}",
                t.priority,
                self.rules.priority_ids()
            )));
        }
        if let Some(tag) = t.tags.iter().find(|tag| !refs.tags.contains(*tag)) {
            return Err(Error::Ticket(format!("unknown tag {tag:?}")));
        }
        if !t.category.is_empty() && !refs.categories.contains(&t.category) {
            return Err(Error::Ticket(format!("unknown category {:?}", t.category)));
        }
        if t.id.is_empty() {
            t.id = new_id(IdKind::Ticket);
        } else if !is_valid_id(&t.id) {
            return Err(Error::Ticket(format!("invalid id {:?}", t.id)));
        }
        if t.username.is_empty() {
            t.username = "import".into();
        }
        check_username(&t.username).map_err(Error::Ticket)?;
        let now = self.now();
        if t.created <= 0 {
            t.created = now;
        }
        if t.modified < t.created {
            t.modified = t.created;
        }
        for c in &mut t.changes {
            if c.id.is_empty() {
                c.id = new_id(IdKind::Change);
            }
            if let Some(body) = &c.body {
                c.body = Some(clean_markdown(body));
            }
        }
        t.num = 0;
        Ok(t)
    }
}
