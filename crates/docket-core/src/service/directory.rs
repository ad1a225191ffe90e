//! Tags, categories and roles: small named records managed by privileged users.
//!
//! All three share one shape (id, title, a few typed fields, author and times), so one
//! table-driven implementation serves them; each kind lists its fields and privileges.

use serde_json::{json, Map, Value};

use super::Docket;
use crate::auth::{Principal, PRIVILEGES};
use crate::error::{Error, Result};
use crate::ids::is_valid_id;
use crate::model::Privileges;
use crate::store::{RecordKind, SearchRequest, SortField};

#[derive(Clone, Copy, PartialEq)]
enum FieldType {
    Text,
    Int,
    StrList,
    /// Object of `name: true` pairs (or an array of names); stored in the object form.
    Privileges,
}

/// How one kind of directory record is checked and who may change it.
pub struct DirectoryKind {
    kind: RecordKind,
    noun: &'static str,
    code: fn(String) -> Error,
    privileges: [&'static str; 3],
    fields: &'static [(&'static str, FieldType)],
}

pub const TAGS: DirectoryKind = DirectoryKind {
    kind: RecordKind::Tag,
    noun: "tag",
    code: Error::Tag,
    privileges: ["create_tags", "edit_tags", "delete_tags"],
    fields: &[("icon", FieldType::Text), ("notes", FieldType::Text)],
};

pub const CATEGORIES: DirectoryKind = DirectoryKind {
    kind: RecordKind::Category,
    noun: "category",
    code: Error::Category,
    privileges: ["create_categories", "edit_categories", "delete_categories"],
    fields: &[
        ("icon", FieldType::Text),
        ("notes", FieldType::Text),
        ("color", FieldType::Text),
        ("sort_order", FieldType::Int),
    ],
};

pub const ROLES: DirectoryKind = DirectoryKind {
    kind: RecordKind::Role,
    noun: "role",
    code: Error::Role,
    privileges: ["admin", "admin", "admin"],
    fields: &[
        ("notes", FieldType::Text),
        ("privileges", FieldType::Privileges),
        ("categories", FieldType::StrList),
    ],
};

const IGNORED: [&str; 5] = ["api_key", "session_id", "username", "created", "modified"];

impl DirectoryKind {
    pub fn noun(&self) -> &'static str {
        self.noun
    }

    fn err(&self, msg: String) -> Error {
        (self.code)(msg)
    }

    /// Checks the sent fields and copies them into `record`.
    fn merge(&self, record: &mut Map<String, Value>, params: &Map<String, Value>) -> Result<()> {
        for (key, value) in params {
            if key == "id" || IGNORED.contains(&key.as_str()) {
                continue;
            }
            if key == "title" {
                let t = value.as_str().map(str::trim).unwrap_or_default();
                if t.is_empty() || t.chars().count() > 200 {
                    return Err(self.err(format!(
                        "Malformed parameter: title (a {} needs a title of 1 to 200 characters)",
                        self.noun
                    )));
                }
                record.insert("title".into(), json!(t));
                continue;
            }
            let Some((_, ty)) = self.fields.iter().find(|(name, _)| name == key) else {
                let names: Vec<_> = self.fields.iter().map(|(n, _)| *n).collect();
                return Err(self.err(format!(
                    "Unknown {} property: {key:?}; properties are: id, title, {}",
                    self.noun,
                    names.join(", ")
                )));
            };
            let stored = self.checked(*ty, key, value)?;
            record.insert(key.clone(), stored);
        }
        Ok(())
    }

    /// The value to store for field `key` of type `ty`, or an error naming the field.
    fn checked(&self, ty: FieldType, key: &str, value: &Value) -> Result<Value> {
        let what = match ty {
            FieldType::Privileges => {
                return Privileges::parse(value, key)
                    .map(|granted| granted.to_value())
                    .map_err(|e| self.err(e))
            }
            FieldType::Text if value.as_str().is_some_and(|s| s.len() <= 10_000) => {
                return Ok(value.clone())
            }
            FieldType::Int if value.as_i64().is_some() => return Ok(value.clone()),
            FieldType::StrList
                if value
                    .as_array()
                    .is_some_and(|a| a.iter().all(|v| v.as_str().is_some_and(is_valid_id))) =>
            {
                return Ok(value.clone())
            }
            FieldType::Text => "must be a string of at most 10000 bytes",
            FieldType::Int => "must be a whole number",
            FieldType::StrList => "must be an array of ids",
        };
        Err(self.err(format!("Malformed parameter: {key} ({what})")))
    }

    fn upgrade(&self, record: &mut Value) {
        upgrade_record(self.fields, record);
    }
}

/// Brings a stored record to the current shape: roles written before privileges were
/// objects carry an array of names, which is read and sent as the object form.
fn upgrade_record(fields: &[(&str, FieldType)], record: &mut Value) {
    for (name, ty) in fields {
        if *ty != FieldType::Privileges {
            continue;
        }
        if let Some(value) = record.get_mut(*name) {
            // A stored value that cannot be read grants nothing rather than failing
            // every read of the directory.
            *value = Privileges::parse(value, name)
                .unwrap_or_default()
                .to_value();
        }
    }
}

/// Makes an id from a title: `"On Call!"` → `on_call`.
fn id_from_title(title: &str) -> String {
    let folded: String = title
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let id: String = folded
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .take(64)
        .collect();
    if id.is_empty() {
        crate::ids::new_id(crate::ids::IdKind::File).replacen('f', "x", 1)
    } else {
        id
    }
}

impl Docket {
    pub async fn list_directory(&self, dir: &DirectoryKind) -> Result<Vec<Value>> {
        let mut rows = self.store.list_records(dir.kind).await?;
        rows.iter_mut().for_each(|row| dir.upgrade(row));
        rows.sort_by(|a, b| a["title"].as_str().cmp(&b["title"].as_str()));
        Ok(rows)
    }

    pub async fn get_directory(
        &self,
        dir: &DirectoryKind,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        let id = super::required_str(params, "id", dir.code)?;
        let mut record =
            self.store.get_record(dir.kind, &id).await?.ok_or_else(|| {
                Error::NotFound(format!("{} not found: {id}", capitalize(dir.noun)))
            })?;
        dir.upgrade(&mut record);
        Ok(record)
    }

    pub async fn create_directory(
        &self,
        who: &Principal,
        dir: &DirectoryKind,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        who.can(dir.privileges[0])?;
        let title = params
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = match params.get("id") {
            Some(Value::String(id)) if is_valid_id(id) => id.clone(),
            Some(_) => {
                return Err(dir.err(format!(
                    "Malformed parameter: id (a {} id is 1 to 64 lowercase letters, digits or underscores)",
                    dir.noun
                )))
            }
            None => id_from_title(title),
        };
        let now = self.now();
        let mut record = Map::new();
        record.insert("id".into(), json!(id));
        for (name, ty) in dir.fields {
            let empty = match ty {
                FieldType::Text => json!(""),
                FieldType::Int => json!(0),
                FieldType::StrList => json!([]),
                FieldType::Privileges => json!({}),
            };
            record.insert((*name).into(), empty);
        }
        if !params.contains_key("title") {
            return Err(dir.err("Missing parameter: title".into()));
        }
        dir.merge(&mut record, params)?;
        self.check_role_grants(dir, &record).await?;
        record.insert("username".into(), json!(who.username));
        record.insert("created".into(), json!(now));
        record.insert("modified".into(), json!(now));
        let value = Value::Object(record);
        let inserted = self.store.insert_record(dir.kind, &id, None, &value).await;
        self.record_written(dir.kind);
        if !inserted? {
            return Err(dir.err(format!("A {} with id {id:?} already exists", dir.noun)));
        }
        Ok(value)
    }

    pub async fn update_directory(
        &self,
        who: &Principal,
        dir: &DirectoryKind,
        params: &Map<String, Value>,
    ) -> Result<Value> {
        who.can(dir.privileges[1])?;
        let id = super::required_str(params, "id", dir.code)?.to_string();
        let mut probe = Map::new();
        dir.merge(&mut probe, params)?;
        self.check_role_grants(dir, &probe).await?;
        let now = self.now();
        let fields = dir.fields;
        let updated = self
            .store
            .update_record(
                dir.kind,
                &id,
                Box::new(move |v: &mut Value| {
                    if let Value::Object(record) = v {
                        record.extend(probe);
                        record.insert("modified".into(), json!(now));
                    }
                    upgrade_record(fields, v);
                    Ok(())
                }),
            )
            .await;
        self.record_written(dir.kind);
        updated?.ok_or_else(|| Error::NotFound(format!("{} not found: {id}", capitalize(dir.noun))))
    }

    pub async fn delete_directory(
        &self,
        who: &Principal,
        dir: &DirectoryKind,
        params: &Map<String, Value>,
    ) -> Result<()> {
        who.can(dir.privileges[2])?;
        let id = super::required_str(params, "id", dir.code)?;
        if dir.kind == RecordKind::Category {
            // Tickets in a deleted category would be unreachable for scoped users.
            let in_use = self
                .run_search(
                    None,
                    &SearchRequest {
                        filter: docket_query::Filter::Keyword {
                            field: docket_query::KeywordField::Category,
                            value: id.to_string(),
                        },
                        categories: None,
                        sort_by: SortField::Num,
                        descending: false,
                        offset: 0,
                        limit: 1,
                    },
                )
                .await?
                .total;
            if in_use > 0 {
                return Err(dir.err(format!(
                    "Category {id:?} still has {in_use} ticket(s); move them to another category first"
                )));
            }
        }
        let deleted = self.store.delete_record(dir.kind, &id).await;
        self.record_written(dir.kind);
        if !deleted? {
            return Err(Error::NotFound(format!(
                "{} not found: {id}",
                capitalize(dir.noun)
            )));
        }
        Ok(())
    }

    /// A role may only grant known privileges and existing categories.
    async fn check_role_grants(
        &self,
        dir: &DirectoryKind,
        record: &Map<String, Value>,
    ) -> Result<()> {
        if dir.kind != RecordKind::Role {
            return Ok(());
        }
        let granted = match record.get("privileges") {
            Some(value) => Privileges::parse(value, "privileges").map_err(|e| dir.err(e))?,
            None => Privileges::default(),
        };
        for p in granted.iter() {
            if !PRIVILEGES.contains(&p) {
                return Err(dir.err(format!("Unknown privilege: {p:?}")));
            }
        }
        for c in record
            .get("categories")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let c = c.as_str().unwrap_or_default();
            if self
                .store
                .get_record(RecordKind::Category, c)
                .await?
                .is_none()
            {
                return Err(dir.err(format!("Unknown category: {c:?}")));
            }
        }
        Ok(())
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_titles() {
        assert_eq!(id_from_title("On Call!"), "on_call");
        assert_eq!(id_from_title("  DB  2 "), "db_2");
        assert!(is_valid_id(&id_from_title("!!!")));
    }
}
