//! What any signed-in person may know of the others (names for assignee and cc pickers),
//! and changing one's own password.

use serde::Serialize;

use super::Docket;
use crate::auth::{hash_password, verify_password};
use crate::error::{Error, Result};
use crate::model::User;
use crate::store::RecordKind;

/// A user as pickers show them: no email, privileges or password hash.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Person {
    pub username: String,
    pub full_name: String,
}

/// The shortest password a person may choose for themselves.
pub const MIN_PASSWORD_CHARS: usize = 8;

impl Docket {
    /// Every active user, by username.
    pub async fn people(&self) -> Result<Vec<Person>> {
        let mut users: Vec<User> = self.load_all(RecordKind::User).await?;
        users.retain(|u| u.active);
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users
            .into_iter()
            .map(|u| Person {
                username: u.username,
                full_name: u.full_name,
            })
            .collect())
    }

    /// Names for authors that are not people: an API key writes history under its id, which
    /// pages show as the key's title. Titles are not secret; nothing else of a key is given.
    pub async fn key_titles(&self) -> Result<std::collections::HashMap<String, String>> {
        let keys: Vec<crate::model::ApiKey> = self.load_all(RecordKind::ApiKey).await?;
        Ok(keys
            .into_iter()
            .map(|k| {
                let title = if k.title.is_empty() {
                    "API key".to_string()
                } else {
                    format!("{} (API key)", k.title)
                };
                (k.id, title)
            })
            .collect())
    }

    /// Sets a new password for `username` after checking the current one. Other sessions
    /// of the user stay valid (as with an administrator's reset).
    pub async fn change_own_password(
        &self,
        username: &str,
        current: &str,
        new: &str,
    ) -> Result<()> {
        if new.chars().count() < MIN_PASSWORD_CHARS {
            return Err(Error::User(format!(
                "The new password is too short: use at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        if new.len() > 1024 {
            return Err(Error::User(
                "The new password is longer than 1024 bytes".into(),
            ));
        }
        let user: User = self
            .load(RecordKind::User, username)
            .await?
            .ok_or_else(|| Error::User(format!("User not found: {username}")))?;
        let (hash, pw) = (user.password.clone(), current.to_string());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(Error::User("The current password is not correct".into()));
        }
        let new = new.to_string();
        let hashed = tokio::task::spawn_blocking(move || hash_password(&new))
            .await
            .map_err(Error::internal)??;
        let now = self.now();
        let updated = self
            .store
            .update_record(
                RecordKind::User,
                username,
                Box::new(move |v: &mut serde_json::Value| {
                    v["password"] = serde_json::Value::from(hashed);
                    v["modified"] = serde_json::Value::from(now);
                    Ok(())
                }),
            )
            .await;
        self.record_written(RecordKind::User);
        updated?;
        Ok(())
    }
}
