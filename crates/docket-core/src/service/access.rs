//! Authentication: API keys, login sessions, and per-key rate limits.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;

use super::{to_value, Docket};
use crate::auth::{hash_secret, random_secret, verify_password, Principal};
use crate::error::{Error, Result};
use crate::model::{ApiKey, Role, Session, User};
use crate::store::RecordKind;

/// How long a login session lasts without use.
const SESSION_SECS: i64 = 30 * 86_400;

/// What a successful login returns: the session id (shown once) and the user.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub session_id: String,
    pub csrf_token: String,
    pub user: User,
}

/// Fixed one-second windows per API key, counted in this process: for a store without
/// shared counts (SQLite, one node). See `Store::count_request`.
#[derive(Debug, Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    /// Counts one request; false when the key is over `max_per_sec` in this second.
    pub fn allow(&self, key_id: &str, max_per_sec: u32, now: i64) -> bool {
        if max_per_sec == 0 {
            return true;
        }
        let Ok(mut map) = self.windows.lock() else {
            return true;
        };
        if map.len() > 100_000 {
            map.retain(|_, (sec, _)| *sec == now);
        }
        let slot = map.entry(key_id.to_string()).or_insert((now, 0));
        if slot.0 != now {
            *slot = (now, 0);
        }
        slot.1 += 1;
        slot.1 <= max_per_sec
    }
}

impl Docket {
    /// Counts one request of `key`: in the shared store when it keeps counts (several
    /// nodes on PostgreSQL see one limit), else in this process.
    async fn within_rate(&self, key: &ApiKey, now: i64) -> Result<bool> {
        if key.max_per_sec == 0 {
            return Ok(true);
        }
        match self.store.count_request(&key.id, now).await? {
            Some(count) => Ok(count <= key.max_per_sec),
            None => Ok(self.rate.allow(&key.id, key.max_per_sec, now)),
        }
    }

    async fn roles_of(&self, ids: &[String]) -> Result<Vec<Role>> {
        let mut roles = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(role) = self.load::<Role>(RecordKind::Role, id).await? {
                roles.push(role);
            }
        }
        Ok(roles)
    }

    pub(crate) async fn principal_of_user(&self, user: &User) -> Result<Principal> {
        let roles = self.roles_of(&user.roles).await?;
        Ok(Principal::new(
            &user.username,
            &user.privileges,
            &user.categories,
            &roles,
        ))
    }

    /// Authenticates a plain API key.
    pub async fn authenticate_key(&self, plain: &str) -> Result<Principal> {
        let bad = || Error::Api("Invalid API key: no active key matches it".to_string());
        let record = self
            .store
            .find_record(RecordKind::ApiKey, &hash_secret(plain))
            .await?
            .ok_or_else(bad)?;
        let key: ApiKey = serde_json::from_value(record).map_err(Error::internal)?;
        let now = self.now();
        if !key.active {
            return Err(Error::Api(format!("API key {} is disabled", key.id)));
        }
        if key.expires > 0 && key.expires <= now {
            return Err(Error::Api(format!("API key {} has expired", key.id)));
        }
        if !self.within_rate(&key, now).await? {
            return Err(Error::Rate(format!(
                "API key {} is over its limit of {} requests per second",
                key.id, key.max_per_sec
            )));
        }
        let roles = self.roles_of(&key.roles).await?;
        let username = if key.username.is_empty() {
            &key.id
        } else {
            &key.username
        };
        Ok(Principal::new(
            username,
            &key.privileges,
            &key.categories,
            &roles,
        ))
    }

    /// Checks a username and password and opens a session.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginResult> {
        let bad = || Error::Session("Incorrect username or password".to_string());
        let user: User = self
            .load(RecordKind::User, username)
            .await?
            .ok_or_else(bad)?;
        let hash = user.password.clone();
        let pw = password.to_string();
        // argon2 is deliberately slow: keep it off the async workers.
        let ok = tokio_free_blocking(move || verify_password(&pw, &hash)).await;
        if !ok {
            return Err(bad());
        }
        if !user.active {
            return Err(Error::Session(format!("User {username} is disabled")));
        }
        if crate::auth::needs_rehash(&user.password) {
            self.rehash_password(&user.username, password).await;
        }
        let session_id = random_secret() + &random_secret();
        let now = self.now();
        let session = Session {
            username: user.username.clone(),
            csrf_token: random_secret(),
            created: now,
            expires: now + SESSION_SECS,
        };
        self.store
            .insert_record(
                RecordKind::Session,
                &hash_secret(&session_id),
                None,
                &to_value(&session)?,
            )
            .await?;
        Ok(LoginResult {
            session_id,
            csrf_token: session.csrf_token,
            user: user.public(),
        })
    }

    /// Replaces an imported (bcrypt) hash with an argon2 one after a successful login. A
    /// failure only leaves the old hash in place, which still works.
    async fn rehash_password(&self, username: &str, password: &str) {
        let pw = password.to_string();
        let hashed = match tokio::task::spawn_blocking(move || crate::auth::hash_password(&pw)).await {
            Ok(Ok(h)) => h,
            _ => return,
        };
        let result = self
            .store
            .update_record(
                RecordKind::User,
                username,
                Box::new(move |v: &mut Value| {
                    v["password"] = Value::from(hashed);
                    Ok(())
                }),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, username, "could not rehash an imported password");
        }
    }

    /// Resolves a session id to its user, session and principal.
    pub async fn authenticate_session(
        &self,
        session_id: &str,
    ) -> Result<(User, Session, Principal)> {
        let expired =
            || Error::Session("Session has expired or is invalid; please log in again".to_string());
        let session: Session = self
            .load(RecordKind::Session, &hash_secret(session_id))
            .await?
            .ok_or_else(expired)?;
        if session.expires <= self.now() {
            return Err(expired());
        }
        let user: User = self
            .load(RecordKind::User, &session.username)
            .await?
            .filter(|u: &User| u.active)
            .ok_or_else(expired)?;
        let principal = self.principal_of_user(&user).await?;
        Ok((user.public(), session, principal))
    }

    pub async fn logout(&self, session_id: &str) -> Result<()> {
        self.store
            .delete_record(RecordKind::Session, &hash_secret(session_id))
            .await?;
        Ok(())
    }

    /// The record of a session as the wire layer reports it.
    pub fn session_value(session: &Session) -> Value {
        serde_json::json!({"created": session.created, "expires": session.expires})
    }
}

/// Runs a CPU-heavy check on a blocking thread; a check that panicked counts as failed.
async fn tokio_free_blocking<F: FnOnce() -> bool + Send + 'static>(f: F) -> bool {
    tokio::task::spawn_blocking(f).await.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows() {
        let r = RateLimiter::default();
        assert!(r.allow("k", 2, 10));
        assert!(r.allow("k", 2, 10));
        assert!(!r.allow("k", 2, 10));
        assert!(r.allow("k", 2, 11));
        assert!(r.allow("other", 0, 10));
    }
}
