//! Saved searches: a user's named search language queries, private to that user.
//!
//! All of one user's saved searches are ONE record of kind [`RecordKind::SavedSearch`] whose
//! id is the username (`{"username": …, "searches": [SavedSearch, …]}`). So listing them is
//! a primary-key read, and a save or delete is one `update_record`: the per-user limit and
//! the unique name are checked inside the store's write transaction (the SQLite writer, or a
//! row lock on PostgreSQL), and two saves at the same moment cannot both slip past them.
//!
//! The owner is `Principal::username`: a session's user, or for an API key its user, else
//! the key id (see `access.rs`), so a key without a user has saved searches of its own.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{to_value, Docket};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::ids::{new_id, IdKind};
use crate::model::SavedSearch;
use crate::store::RecordKind;

/// The most saved searches one user may keep.
pub const MAX_SAVED_SEARCHES: usize = 50;
/// The longest name (characters, after trimming).
pub const MAX_SAVED_SEARCH_NAME: usize = 80;
/// The longest query (characters, after trimming).
pub const MAX_SAVED_SEARCH_QUERY: usize = 2000;

/// The stored record: one per user.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct UserSearches {
    username: String,
    searches: Vec<SavedSearch>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Saved search not found: {id}"))
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Api("Missing parameter: name".into()));
    }
    if name.chars().count() > MAX_SAVED_SEARCH_NAME {
        return Err(Error::Api(format!(
            "A saved search name is at most {MAX_SAVED_SEARCH_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Api(
            "A saved search name cannot contain control characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// What a save asks for, applied to the user's record inside the write transaction.
struct Save {
    username: String,
    /// `None`: a new search.
    id: Option<String>,
    new_id: String,
    name: String,
    query: String,
    now: i64,
}

impl Save {
    /// Applies the save to the user's list and returns the saved entry.
    fn apply(&self, list: &mut UserSearches) -> Result<SavedSearch> {
        let folded = self.name.to_lowercase();
        let own_id = self.id.as_deref().unwrap_or(&self.new_id);
        if let Some(other) = list
            .searches
            .iter()
            .find(|s| s.id != own_id && s.name.to_lowercase() == folded)
        {
            return Err(Error::Api(format!(
                "You already have a saved search named \"{}\"",
                other.name
            )));
        }
        match &self.id {
            Some(id) => {
                let entry = list
                    .searches
                    .iter_mut()
                    .find(|s| &s.id == id)
                    .ok_or_else(|| not_found(id))?;
                entry.name = self.name.clone();
                entry.query = self.query.clone();
                entry.modified = self.now;
                Ok(entry.clone())
            }
            None => {
                if list.searches.len() >= MAX_SAVED_SEARCHES {
                    return Err(Error::Api(format!(
                        "You can keep at most {MAX_SAVED_SEARCHES} saved searches: delete one first"
                    )));
                }
                let entry = SavedSearch {
                    id: self.new_id.clone(),
                    username: self.username.clone(),
                    name: self.name.clone(),
                    query: self.query.clone(),
                    sort_by: String::new(),
                    sort_dir: 0,
                    created: self.now,
                    modified: self.now,
                };
                list.searches.push(entry.clone());
                Ok(entry)
            }
        }
    }
}

fn parse(value: Value) -> Result<UserSearches> {
    serde_json::from_value(value).map_err(Error::internal)
}

/// Runs `change` on the list stored in `doc` and writes the list back.
fn edit<T>(doc: &mut Value, change: impl FnOnce(&mut UserSearches) -> Result<T>) -> Result<T> {
    let mut list = parse(doc.clone())?;
    let out = change(&mut list)?;
    *doc = to_value(&list)?;
    Ok(out)
}

impl Docket {
    /// The caller's saved searches, by name (case-insensitive).
    pub async fn saved_searches(&self, who: &Principal) -> Result<Vec<SavedSearch>> {
        let Some(doc) = self
            .store
            .get_record(RecordKind::SavedSearch, &who.username)
            .await?
        else {
            return Ok(Vec::new());
        };
        let mut searches = parse(doc)?.searches;
        searches.sort_by_cached_key(|s| (s.name.to_lowercase(), s.id.clone()));
        Ok(searches)
    }

    /// Creates (`id` None) or updates one of the caller's saved searches. The name is
    /// trimmed, 1 to 80 characters and unique among the caller's (case-insensitive); the
    /// query must parse as `search_tickets` parses it. At most 50 per user. Another
    /// user's id answers `notfound`, as a missing one does.
    pub async fn save_search(
        &self,
        who: &Principal,
        id: Option<&str>,
        name: &str,
        query: &str,
    ) -> Result<SavedSearch> {
        let name = check_name(name)?;
        let query = query.trim();
        if query.is_empty() {
            return Err(Error::Api("Missing parameter: query".into()));
        }
        if query.chars().count() > MAX_SAVED_SEARCH_QUERY {
            return Err(Error::Api(format!(
                "A saved search query is at most {MAX_SAVED_SEARCH_QUERY} characters"
            )));
        }
        self.compile_query(query).map_err(Error::Api)?;
        let save = Arc::new(Save {
            username: who.username.clone(),
            id: id.map(str::to_string),
            new_id: new_id(IdKind::SavedSearch),
            name,
            query: query.to_string(),
            now: self.now(),
        });
        if let Some(entry) = self.save_into_record(save.clone()).await? {
            return Ok(entry);
        }
        // The user has no record yet: only a create can make one.
        if let Some(id) = &save.id {
            return Err(not_found(id));
        }
        let mut list = UserSearches {
            username: who.username.clone(),
            searches: Vec::new(),
        };
        let entry = save.apply(&mut list)?;
        let fresh = to_value(&list)?;
        if self
            .store
            .insert_record(RecordKind::SavedSearch, &who.username, None, &fresh)
            .await?
        {
            return Ok(entry);
        }
        // Another save of the same user made the record meanwhile: save into that one.
        self.save_into_record(save)
            .await?
            .ok_or_else(|| Error::Internal("the saved search record vanished".into()))
    }

    /// Applies `save` to the user's record in one store transaction; `None` when the user
    /// has no record.
    async fn save_into_record(&self, save: Arc<Save>) -> Result<Option<SavedSearch>> {
        let username = save.username.clone();
        let id = save.id.clone().unwrap_or_else(|| save.new_id.clone());
        let updated = self
            .store
            .update_record(
                RecordKind::SavedSearch,
                &username,
                Box::new(move |doc| edit(doc, |list| save.apply(list).map(drop))),
            )
            .await?;
        let Some(doc) = updated else {
            return Ok(None);
        };
        // The record as written, with the entry just saved.
        parse(doc)?
            .searches
            .into_iter()
            .find(|s| s.id == id)
            .map(Some)
            .ok_or_else(|| Error::Internal("the saved search was not written".into()))
    }

    /// Deletes one of the caller's saved searches (another user's id answers `notfound`).
    pub async fn delete_saved_search(&self, who: &Principal, id: &str) -> Result<()> {
        let target = id.to_string();
        let updated = self
            .store
            .update_record(
                RecordKind::SavedSearch,
                &who.username,
                Box::new(move |doc| {
                    edit(doc, |list| {
                        let before = list.searches.len();
                        list.searches.retain(|s| s.id != target);
                        if list.searches.len() == before {
                            return Err(not_found(&target));
                        }
                        Ok(())
                    })
                }),
            )
            .await?;
        match updated {
            Some(_) => Ok(()),
            None => Err(not_found(id)),
        }
    }
}
