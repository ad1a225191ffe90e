//! Records as they are stored and sent on the wire (the xyOps JSON shapes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::privileges::Privileges;

/// A ticket: the xyOps Ticket record.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Ticket {
    pub id: String,
    pub num: i64,
    pub subject: String,
    pub body: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    /// A configured priority level (`tickets.priorities`). Every stored ticket has one (the
    /// stores give older tickets the default when they open); empty only on records read
    /// from elsewhere (imports), which then get the default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub priority: String,
    pub category: String,
    pub server: String,
    pub username: String,
    pub assignees: Vec<String>,
    pub cc: Vec<String>,
    pub notify: Vec<String>,
    pub tags: Vec<String>,
    pub due: i64,
    pub events: Vec<Value>,
    pub files: Vec<FileRef>,
    pub changes: Vec<Change>,
    pub jobs: Vec<String>,
    pub created: i64,
    pub modified: i64,
    /// Alert-storm deduplication key: creates carrying the same key while this ticket is
    /// not closed-like add an occurrence here instead of a new ticket. Empty = none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dedupe_key: String,
    /// How many creates this ticket absorbed (1 = just its own); 0 without a dedupe key.
    #[serde(skip_serializing_if = "is_zero")]
    pub occurrences: u64,
    /// Links to other tickets (`relations.rs`); both ends are written together. Stored
    /// with `type`, `id` and `num`; `subject` and `status` are filled when read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,
}

/// One link of a ticket to another: `type` says what the other ticket is to this one
/// (`parent`: the other is this ticket's parent; `blocked_by`: the other blocks this one).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Relation {
    #[serde(rename = "type")]
    pub kind: String,
    pub num: i64,
    pub id: String,
    /// The other ticket's subject and status as the reader sees them now (not stored).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One entry of a ticket's history.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Change {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub username: String,
    pub date: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited: Option<i64>,
    /// An internal note: shown only to callers with the `view_internal` privilege.
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A file attached to a ticket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct FileRef {
    pub id: String,
    pub date: i64,
    pub filename: String,
    pub path: String,
    pub size: u64,
    pub username: String,
    pub ticket: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub media_type: String,
}

/// A user account. `password` holds the argon2 hash and never leaves the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct User {
    pub username: String,
    pub full_name: String,
    pub email: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub password: String,
    pub active: bool,
    pub privileges: Privileges,
    pub roles: Vec<String>,
    pub categories: Vec<String>,
    pub created: i64,
    pub modified: i64,
}

impl User {
    /// The record as a client may see it: without the password hash.
    pub fn public(&self) -> User {
        User {
            password: String::new(),
            ..self.clone()
        }
    }
}

/// An API key. `key` holds the SHA-256 of the plain key; the plain key is shown once.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ApiKey {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub key: String,
    /// The first characters of the plain key, so admins can tell keys apart.
    pub mask: String,
    pub title: String,
    pub description: String,
    pub username: String,
    pub active: bool,
    pub expires: i64,
    pub max_per_sec: u32,
    pub privileges: Privileges,
    pub roles: Vec<String>,
    pub categories: Vec<String>,
    pub created: i64,
    pub modified: i64,
}

impl ApiKey {
    pub fn public(&self) -> ApiKey {
        ApiKey {
            key: String::new(),
            ..self.clone()
        }
    }
}

/// A role: a named bundle of privileges and categories.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Role {
    pub id: String,
    pub title: String,
    pub privileges: Privileges,
    pub categories: Vec<String>,
    pub created: i64,
    pub modified: i64,
}

/// A tag that tickets may carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tag {
    pub id: String,
    pub title: String,
    pub icon: String,
    pub notes: String,
    pub username: String,
    pub created: i64,
    pub modified: i64,
}

/// A category that tickets may belong to.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Category {
    pub id: String,
    pub title: String,
    pub color: String,
    pub icon: String,
    pub notes: String,
    pub sort_order: i64,
    pub username: String,
    pub created: i64,
    pub modified: i64,
}

/// A search a user saved, listed only to that user (`service/saved_searches.rs`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SavedSearch {
    pub id: String,
    /// The owner: the principal's username (for an API key without a user, the key id).
    pub username: String,
    pub name: String,
    /// Search language text, as `search_tickets` takes it.
    pub query: String,
    /// A `search_tickets` sort field; "" = the default order.
    pub sort_by: String,
    /// 1 ascending, -1 descending, 0 = the default.
    pub sort_dir: i64,
    pub created: i64,
    pub modified: i64,
}

/// A login session. The store keeps it under the SHA-256 of its id.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Session {
    pub username: String,
    pub csrf_token: String,
    pub created: i64,
    pub expires: i64,
}
