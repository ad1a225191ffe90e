//! Moving from xyOps: reads the lines of an xyOps backup (XYBK: NDJSON, one item a line —
//! list pages, storage keys, database records, base64 file payloads) and writes what Docket
//! keeps of them: tags, categories, roles, users (with their bcrypt hashes, so people keep
//! their passwords), tickets with their own ids, numbers and history, and ticket files.
//!
//! The caller feeds lines in file order ([`XyopsImport::line`]) and calls
//! [`XyopsImport::finish`]; tickets are written in batches, so memory stays flat. Importing
//! the same file again changes nothing; a ticket Docket holds in a newer version than the
//! file is left alone and reported as a conflict. With `dry_run` nothing is written and the
//! report says what would happen.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use super::{Docket, Files, ImportRefs};
use crate::auth::PRIVILEGES;
use crate::error::{Error, Result};
use crate::files::{canonical_path, FileRecord};
use crate::model::{Category, FileRef, Role, Tag, Ticket, User};
use crate::privileges::Privileges;
use crate::store::RecordKind;

/// Tickets written per transaction.
const BATCH: usize = 1000;

/// How the import treats values Docket does not know.
#[derive(Debug, Clone, Default)]
pub struct XyopsImportOptions {
    /// Count and check, write nothing.
    pub dry_run: bool,
    /// xyOps ticket type → a configured Docket type (`--map-type issue=bug`).
    pub type_map: HashMap<String, String>,
    /// xyOps status → a configured Docket status.
    pub status_map: HashMap<String, String>,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct XyopsImportReport {
    pub lines: u64,
    pub tickets_created: u64,
    pub tickets_updated: u64,
    pub tickets_unchanged: u64,
    /// Tickets left alone, each with the reason (newer in Docket, number taken, bad record).
    pub tickets_skipped: Vec<String>,
    pub users_created: u64,
    pub users_existing: u64,
    pub tags_created: u64,
    pub categories_created: u64,
    pub roles_created: u64,
    pub records_existing: u64,
    pub files_stored: u64,
    pub files_existing: u64,
    pub files_skipped: Vec<String>,
    /// Ticket types and statuses Docket does not know, with how many tickets use them.
    pub unknown_types: BTreeMap<String, u64>,
    pub unknown_statuses: BTreeMap<String, u64>,
    /// API keys seen in the backup: they are stored salted and hashed, so they cannot move.
    pub api_keys_not_moved: u64,
    /// Lines that are not XYBK items Docket reads (kept short).
    pub ignored_lines: u64,
}

/// One import in progress.
pub struct XyopsImport {
    files: Files,
    opts: XyopsImportOptions,
    refs: ImportRefs,
    batch: Vec<Ticket>,
    /// Files the imported tickets list, by path, waiting for their payload.
    expected_files: HashMap<String, FileRef>,
    report: XyopsImportReport,
}

/// One understood line of a backup.
#[derive(Debug)]
enum Item {
    ListPage { list: String, items: Vec<Value> },
    User(Value),
    Ticket(Value),
    File { path: String, payload: String },
    Ignored,
}

/// Reads one line. Comments (`#`), list headers and commands are ignored.
fn parse_line(line: &str) -> std::result::Result<Item, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Item::Ignored);
    }
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("index").and_then(Value::as_str) == Some("tickets") {
        return Ok(match v.get("record") {
            Some(r) if r.is_object() => Item::Ticket(r.clone()),
            _ => Item::Ignored,
        });
    }
    let Some(key) = v.get("key").and_then(Value::as_str) else {
        return Ok(Item::Ignored);
    };
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(rest) = key.strip_prefix("users/") {
        if !rest.is_empty() && value.is_object() {
            return Ok(Item::User(value));
        }
    }
    if key.starts_with("files/") {
        if let Value::String(payload) = value {
            return Ok(Item::File {
                path: key.to_string(),
                payload,
            });
        }
    }
    if let Some((list, page)) = key.rsplit_once('/') {
        if page.bytes().all(|b| b.is_ascii_digit())
            && value.get("type").and_then(Value::as_str) == Some("list_page")
        {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            return Ok(Item::ListPage {
                list: list.to_string(),
                items,
            });
        }
    }
    Ok(Item::Ignored)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// The privileges Docket knows, from an xyOps privilege object (others are dropped).
fn known_privileges(v: Option<&Value>) -> Privileges {
    let all = v
        .map(|p| Privileges::parse(p, "privileges").unwrap_or_default())
        .unwrap_or_default();
    Privileges::from_names(all.iter().filter(|p| PRIVILEGES.contains(p)))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Docket {
    /// Starts an import into this server's store and file store.
    pub async fn xyops_import(
        &self,
        files: &Files,
        opts: XyopsImportOptions,
    ) -> Result<XyopsImport> {
        Ok(XyopsImport {
            files: files.clone(),
            opts,
            refs: self.import_refs().await?,
            batch: Vec::new(),
            expected_files: HashMap::new(),
            report: XyopsImportReport::default(),
        })
    }
}

impl XyopsImport {
    fn docket(&self) -> &Docket {
        &self.files.docket
    }

    /// Takes the next line of the backup.
    pub async fn line(&mut self, line: &str) -> Result<()> {
        self.report.lines += 1;
        match parse_line(line) {
            Ok(Item::ListPage { list, items }) => self.list_page(&list, items).await,
            Ok(Item::User(v)) => self.user(v).await,
            Ok(Item::Ticket(v)) => {
                self.ticket(v);
                if self.batch.len() >= BATCH {
                    self.flush().await?;
                }
                Ok(())
            }
            Ok(Item::File { path, payload }) => {
                // Files follow the tickets in a backup; their tickets must be written first.
                self.flush().await?;
                self.file(&path, &payload).await
            }
            Ok(Item::Ignored) => Ok(()),
            Err(_) => {
                self.report.ignored_lines += 1;
                Ok(())
            }
        }
    }

    /// Writes what is left and returns the report.
    pub async fn finish(mut self) -> Result<XyopsImportReport> {
        self.flush().await?;
        for (path, _) in self.expected_files.drain() {
            self.report.files_skipped.push(format!(
                "{path}: listed by its ticket, but the backup has no payload"
            ));
        }
        self.report.files_skipped.sort();
        Ok(self.report)
    }

    /// Writes a record unless one with its id exists (then `false`: existing ones are kept).
    async fn insert_if_absent(&self, kind: RecordKind, id: &str, value: Value) -> Result<bool> {
        if self.docket().store.get_record(kind, id).await?.is_some() {
            return Ok(false);
        }
        if !self.opts.dry_run {
            let inserted = self
                .docket()
                .store
                .insert_record(kind, id, None, &value)
                .await;
            self.docket().record_written(kind);
            inserted?;
        }
        Ok(true)
    }

    async fn list_page(&mut self, list: &str, items: Vec<Value>) -> Result<()> {
        for item in items {
            let id = text(&item, "id");
            let (created, modified) = (int(&item, "created"), int(&item, "modified"));
            let (kind, value) = match list {
                "global/tags" if !id.is_empty() => {
                    self.refs.tags.insert(id.clone());
                    let tag = Tag {
                        id: id.clone(),
                        title: text(&item, "title"),
                        icon: text(&item, "icon"),
                        notes: text(&item, "notes"),
                        username: text(&item, "username"),
                        created,
                        modified,
                    };
                    (RecordKind::Tag, json!(tag))
                }
                "global/categories" if !id.is_empty() => {
                    self.refs.categories.insert(id.clone());
                    let category = Category {
                        id: id.clone(),
                        title: text(&item, "title"),
                        color: text(&item, "color"),
                        icon: text(&item, "icon"),
                        notes: text(&item, "notes"),
                        sort_order: int(&item, "sort_order"),
                        username: text(&item, "username"),
                        created,
                        modified,
                    };
                    (RecordKind::Category, json!(category))
                }
                "global/roles" if !id.is_empty() => {
                    let role = Role {
                        id: id.clone(),
                        title: text(&item, "title"),
                        privileges: known_privileges(item.get("privileges")),
                        categories: strings(item.get("categories")),
                        created,
                        modified,
                    };
                    (RecordKind::Role, json!(role))
                }
                "global/api_keys" => {
                    self.report.api_keys_not_moved += 1;
                    continue;
                }
                // The user list only names users; their records come as `users/NAME`.
                _ => continue,
            };
            if !self.insert_if_absent(kind, &id, value).await? {
                self.report.records_existing += 1;
            } else if kind == RecordKind::Tag {
                self.report.tags_created += 1;
            } else if kind == RecordKind::Category {
                self.report.categories_created += 1;
            } else {
                self.report.roles_created += 1;
            }
        }
        Ok(())
    }

    async fn user(&mut self, v: Value) -> Result<()> {
        let username = text(&v, "username");
        if crate::ticket_input::check_username(&username).is_err() {
            self.report.ignored_lines += 1;
            return Ok(());
        }
        let active = match v.get("active") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_i64() != Some(0),
            _ => true,
        };
        let user = User {
            username: username.clone(),
            full_name: text(&v, "full_name"),
            email: text(&v, "email"),
            // xyOps keeps bcrypt(password + salt); Docket checks that and rehashes at the
            // first login.
            password: crate::auth::xyops_password_hash(&text(&v, "password"), &text(&v, "salt")),
            active,
            privileges: known_privileges(v.get("privileges")),
            roles: strings(v.get("roles")),
            categories: strings(v.get("categories")),
            created: int(&v, "created"),
            modified: int(&v, "modified"),
        };
        if self
            .insert_if_absent(RecordKind::User, &username, json!(user))
            .await?
        {
            self.report.users_created += 1;
        } else {
            self.report.users_existing += 1;
        }
        Ok(())
    }

    /// Checks one ticket record and queues it (types and statuses mapped or reported).
    fn ticket(&mut self, mut v: Value) {
        let label = format!("#{} {}", int(&v, "num"), text(&v, "id"));
        let num = int(&v, "num");
        if num <= 0 {
            self.report
                .tickets_skipped
                .push(format!("{label}: no ticket number"));
            return;
        }
        let rules = self.docket().rules.clone();
        for (field, map, unknown, known) in [
            (
                "type",
                &self.opts.type_map,
                &mut self.report.unknown_types,
                rules.types.as_slice(),
            ),
            (
                "status",
                &self.opts.status_map,
                &mut self.report.unknown_statuses,
                rules.statuses.as_slice(),
            ),
        ] {
            let value = text(&v, field);
            if value.is_empty() || known.iter().any(|c| c.id == value) {
                continue;
            }
            match map.get(&value) {
                Some(to) => v[field] = Value::from(to.clone()),
                None => {
                    *unknown.entry(value.clone()).or_insert(0) += 1;
                    self.report.tickets_skipped.push(format!(
                        "{label}: unknown {field} {value:?} (map it with --map-{field} {value}=…)"
                    ));
                    return;
                }
            }
        }
        match self.docket().prepare_import(v, &self.refs) {
            Ok(mut t) => {
                t.num = num;
                for f in &t.files {
                    self.expected_files.insert(f.path.clone(), f.clone());
                }
                self.batch.push(t);
            }
            Err(e) => self.report.tickets_skipped.push(format!("{label}: {e}")),
        }
    }

    /// Writes the queued tickets: new ones keep their numbers; a ticket Docket has in an
    /// older version is replaced; an equal one is left; a newer one is a conflict.
    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let store = self.docket().store.clone();
        let ids: Vec<String> = batch.iter().map(|t| t.id.clone()).collect();
        let existing = store.tickets_by_ids(&ids).await?;
        let mut fresh = Vec::new();
        for (t, old) in batch.into_iter().zip(existing) {
            match old {
                None => fresh.push(t),
                Some(old) if old.num != t.num => self.report.tickets_skipped.push(format!(
                    "#{} {}: Docket has this id as #{}",
                    t.num, t.id, old.num
                )),
                Some(old) if old.modified == t.modified => self.report.tickets_unchanged += 1,
                Some(old) if old.modified > t.modified => {
                    self.report.tickets_skipped.push(format!(
                        "#{} {}: Docket's copy is newer (modified {} > {}); left as it is",
                        t.num, t.id, old.modified, t.modified
                    ))
                }
                Some(_) => {
                    if !self.opts.dry_run {
                        let replacement = t.clone();
                        store
                            .update_ticket(
                                &t.id,
                                Box::new(move |stored: &mut Ticket| {
                                    *stored = replacement;
                                    Ok(())
                                }),
                            )
                            .await?;
                    }
                    self.report.tickets_updated += 1;
                }
            }
        }
        // A number already used by another ticket cannot be taken over. A dry run asks for
        // each number; a real one lets the store skip such rows and then finds which.
        let mut placeable = Vec::with_capacity(fresh.len());
        if self.opts.dry_run {
            for t in fresh {
                match store.ticket_by_num(t.num).await? {
                    Some(other) => self.report.tickets_skipped.push(format!(
                        "#{} {}: number taken by ticket {}",
                        t.num, t.id, other.id
                    )),
                    None => placeable.push(t),
                }
            }
        } else {
            placeable = fresh;
        }
        let mut count = placeable.len() as u64;
        if !self.opts.dry_run && count > 0 {
            let wanted: Vec<(String, i64)> =
                placeable.iter().map(|t| (t.id.clone(), t.num)).collect();
            let inserted = store.import_numbered(placeable).await?;
            if inserted != count {
                let ids: Vec<String> = wanted.iter().map(|(id, _)| id.clone()).collect();
                let found = store.tickets_by_ids(&ids).await?;
                for ((id, num), got) in wanted.iter().zip(found) {
                    if got.is_none() {
                        self.report
                            .tickets_skipped
                            .push(format!("#{num} {id}: number taken by another ticket"));
                    }
                }
                count = inserted;
            }
        }
        self.report.tickets_created += count;
        Ok(())
    }

    /// Stores one file payload under its own path, with the metadata its ticket lists.
    async fn file(&mut self, raw_path: &str, payload: &str) -> Result<()> {
        let (path, ticket_id) = match canonical_path(raw_path) {
            Ok(p) => p,
            Err(why) => {
                self.report.files_skipped.push(format!("{raw_path}: {why}"));
                return Ok(());
            }
        };
        let meta = match self.expected_files.remove(&path) {
            Some(f) => Some(f),
            None => self
                .docket()
                .store
                .ticket_by_id(&ticket_id)
                .await?
                .and_then(|t| t.files.into_iter().find(|f| f.path == path)),
        };
        let Some(mut meta) = meta else {
            self.report
                .files_skipped
                .push(format!("{path}: no imported ticket lists this file"));
            return Ok(());
        };
        if self
            .docket()
            .store
            .find_record(RecordKind::File, &path)
            .await?
            .is_some()
        {
            self.report.files_existing += 1;
            return Ok(());
        }
        let bytes = match base64::engine::general_purpose::STANDARD.decode(payload.trim()) {
            Ok(b) => b,
            Err(e) => {
                self.report
                    .files_skipped
                    .push(format!("{path}: bad base64 ({e})"));
                return Ok(());
            }
        };
        if self.opts.dry_run {
            self.report.files_stored += 1;
            return Ok(());
        }
        meta.size = bytes.len() as u64;
        meta.ticket = ticket_id;
        let mut upload = self.files.blobs.start_put(&path).await?;
        if let Err(e) = upload.write(Bytes::from(bytes)).await {
            let _ = upload.abort().await;
            return Err(e);
        }
        upload.finish().await?;
        let now = self.docket().now();
        let expires = now.saturating_add(self.files.settings.expiration);
        let record = FileRecord {
            file: meta.clone(),
            expires,
            pending: false,
            final_expires: expires,
        };
        let value = serde_json::to_value(&record).map_err(Error::internal)?;
        self.docket()
            .store
            .insert_record(RecordKind::File, &meta.id, Some(&path), &value)
            .await?;
        self.report.files_stored += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_a_backup_are_recognised() {
        assert!(matches!(
            parse_line("# xyOps Data Export v1.0"),
            Ok(Item::Ignored)
        ));
        assert!(matches!(
            parse_line(r#"{"cmd": "listDelete", "args": ["global/tags", false]}"#),
            Ok(Item::Ignored)
        ));
        assert!(matches!(
            parse_line(r#"{"key": "global/tags", "value": {"page_size": 100, "type": "list"}}"#),
            Ok(Item::Ignored)
        ));
        match parse_line(
            r#"{"key": "global/tags/0", "value": {"type": "list_page", "items": [{"id": "db"}]}}"#,
        ) {
            Ok(Item::ListPage { list, items }) => {
                assert_eq!((list.as_str(), items.len()), ("global/tags", 1))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_line(r#"{"key": "users/alice", "value": {"username": "alice"}}"#),
            Ok(Item::User(_))
        ));
        assert!(matches!(
            parse_line(r#"{"index": "tickets", "id": "t1", "record": {"id": "t1", "num": 5}}"#),
            Ok(Item::Ticket(_))
        ));
        assert!(matches!(
            parse_line(r#"{"key": "files/t1/a/b/x.log", "value": "eA=="}"#),
            Ok(Item::File { .. })
        ));
        assert!(parse_line("{not json").is_err());
    }

    #[test]
    fn only_known_privileges_are_kept() {
        let p = known_privileges(Some(
            &json!({"create_tickets": true, "run_jobs": true, "admin": false}),
        ));
        assert_eq!(p.iter().collect::<Vec<_>>(), vec!["create_tickets"]);
    }
}
