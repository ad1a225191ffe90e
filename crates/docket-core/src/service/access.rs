//! Authentication: API keys, login sessions, and per-key rate limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::auth_cache::{self, CachedKey, CachedSession};
use super::{to_value, Docket};
use crate::auth::{hash_secret, random_secret, verify_password_or_dummy, Principal};
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

/// Fixed one-second windows per API key, counted in this process: the limit itself for a
/// store without shared counts (SQLite, one node), and a shortcut beside the store's count
/// otherwise (see `Docket::within_rate` and `Store::count_request`).
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
    /// Counts one request of `key`. With a store that keeps counts (several nodes on
    /// PostgreSQL), the store's count decides, so the limit holds for the cluster; this
    /// process also counts, and a key already over its limit here is refused without asking
    /// the store (this node's count never exceeds the cluster's, so that answer is exact).
    /// Without shared counts (SQLite, one node) this process's count decides.
    async fn within_rate(&self, key: &ApiKey, now: i64) -> Result<bool> {
        if key.max_per_sec == 0 {
            return Ok(true);
        }
        if !self.rate.allow(&key.id, key.max_per_sec, now) {
            return Ok(false);
        }
        match self.store.count_request(&key.id, now).await? {
            Some(count) => Ok(count <= key.max_per_sec),
            None => Ok(true),
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

    /// Tells the credential cache that a record of `kind` was written (after the write
    /// committed, also when it failed: a failed write may still have committed).
    pub(crate) fn record_written(&self, kind: RecordKind) {
        if auth_cache::matters(kind) {
            self.auth.clear();
        }
    }

    /// The key with hash `hash` and its principal: from memory, else from the store (and
    /// then remembered). `None` when no key has that hash.
    async fn key_entry(&self, hash: &str, now: i64) -> Result<Option<Arc<CachedKey>>> {
        let lookup = self.auth.lookup();
        if let Some(entry) = self.auth.key(lookup, hash, now) {
            return Ok(Some(entry));
        }
        let Some(record) = self.store.find_record(RecordKind::ApiKey, hash).await? else {
            return Ok(None);
        };
        let key: ApiKey = serde_json::from_value(record).map_err(Error::internal)?;
        let roles = self.roles_of(&key.roles).await?;
        let username = if key.username.is_empty() {
            &key.id
        } else {
            &key.username
        };
        let principal = Principal::new(username, &key.privileges, &key.categories, &roles);
        let entry = Arc::new(CachedKey::new(key, principal, now));
        self.auth.put_key(lookup, hash.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// Authenticates a plain API key.
    pub async fn authenticate_key(&self, plain: &str) -> Result<Principal> {
        let now = self.now();
        let entry = self
            .key_entry(&hash_secret(plain), now)
            .await?
            .ok_or_else(|| Error::Api("Invalid API key: no active key matches it".to_string()))?;
        let key = &entry.key;
        if !key.active {
            // The caller holds the key itself; its id would tell them more than that.
            return Err(Error::Api("This API key is disabled".to_string()));
        }
        if key.expires > 0 && key.expires <= now {
            return Err(Error::Api("This API key has expired".to_string()));
        }
        if !self.within_rate(key, now).await? {
            return Err(Error::Rate(format!(
                "API key {} is over its limit of {} requests per second",
                key.id, key.max_per_sec
            )));
        }
        Ok(entry.principal.clone())
    }

    /// Checks a username and password and opens a session. `from` is the client's address
    /// (when known): failures are counted per account and per address and, past a few,
    /// answered with `rate` for a while (see [`LOGIN_FREE_FAILURES`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: Option<std::net::IpAddr>,
    ) -> Result<LoginResult> {
        let bad = || Error::Session("Incorrect username or password".to_string());
        let now = self.now();
        let account_key = format!("user:{}", username.to_lowercase());
        let address_key = from.map(|ip| format!("addr:{ip}"));
        self.check_login_throttle(&account_key, LOGIN_FREE_FAILURES, now)
            .await?;
        if let Some(key) = &address_key {
            self.check_login_throttle(key, LOGIN_FREE_FAILURES_PER_ADDRESS, now)
                .await?;
        }
        let user: Option<User> = self.load(RecordKind::User, username).await?;
        let hash = user.as_ref().map(|u| u.password.clone());
        let pw = password.to_string();
        // argon2 is deliberately slow: keep it off the async workers. An unknown user is
        // checked against a dummy hash, so both answers take the same time.
        let ok = tokio_free_blocking(move || verify_password_or_dummy(&pw, hash.as_deref())).await;
        let user = match user {
            Some(user) if ok => user,
            _ => {
                self.count_login_failure(&account_key, LOGIN_FREE_FAILURES, now)
                    .await?;
                if let Some(key) = &address_key {
                    self.count_login_failure(key, LOGIN_FREE_FAILURES_PER_ADDRESS, now)
                        .await?;
                }
                return Err(bad());
            }
        };
        // A success clears the account's count (not the address's: one account of an
        // attacker's own must not reset the count of the address it guesses from).
        self.store
            .delete_record(RecordKind::LoginFailures, &account_key)
            .await?;
        if !user.active {
            return Err(Error::Session(format!("User {username} is disabled")));
        }
        if crate::auth::needs_rehash(&user.password) {
            self.rehash_password(&user.username, password).await;
        }
        let session_id = random_secret() + &random_secret();
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
        let hashed =
            match tokio::task::spawn_blocking(move || crate::auth::hash_password(&pw)).await {
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
        self.record_written(RecordKind::User);
        if let Err(e) = result {
            tracing::warn!(error = %e, username, "could not rehash an imported password");
        }
    }

    /// The session with hash `hash`, its user and principal: from memory, else from the
    /// store (and then remembered). `None` when there is no such session or user.
    async fn session_entry(&self, hash: &str, now: i64) -> Result<Option<Arc<CachedSession>>> {
        let lookup = self.auth.lookup();
        if let Some(entry) = self.auth.session(lookup, hash, now) {
            return Ok(Some(entry));
        }
        let Some(session) = self.load::<Session>(RecordKind::Session, hash).await? else {
            return Ok(None);
        };
        let Some(user) = self
            .load::<User>(RecordKind::User, &session.username)
            .await?
        else {
            return Ok(None);
        };
        let principal = self.principal_of_user(&user).await?;
        let entry = Arc::new(CachedSession::new(session, user, principal, now));
        self.auth
            .put_session(lookup, hash.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// Resolves a session id to its user, session and principal.
    pub async fn authenticate_session(
        &self,
        session_id: &str,
    ) -> Result<(User, Session, Principal)> {
        let expired =
            || Error::Session("Session has expired or is invalid; please log in again".to_string());
        let now = self.now();
        let entry = self
            .session_entry(&hash_secret(session_id), now)
            .await?
            .ok_or_else(expired)?;
        if entry.session.expires <= now || !entry.user.active {
            return Err(expired());
        }
        Ok((
            entry.user.clone(),
            entry.session.clone(),
            entry.principal.clone(),
        ))
    }

    pub async fn logout(&self, session_id: &str) -> Result<()> {
        let deleted = self
            .store
            .delete_record(RecordKind::Session, &hash_secret(session_id))
            .await;
        self.record_written(RecordKind::Session);
        deleted?;
        Ok(())
    }

    /// The record of a session as the wire layer reports it.
    pub fn session_value(session: &Session) -> Value {
        serde_json::json!({"created": session.created, "expires": session.expires})
    }
}

/// Failed logins of one account allowed within [`LOGIN_WINDOW_SECS`] before a wait.
pub const LOGIN_FREE_FAILURES: u32 = 5;
/// The same for one client address (several people may share one, behind NAT).
pub const LOGIN_FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// The window failures are counted in: it starts at the first failure and, once over,
/// the count starts again, so nobody is locked out for good.
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;
/// The first wait once the free failures are used up; it doubles with each further
/// failure, up to [`LOGIN_MAX_WAIT_SECS`].
pub const LOGIN_FIRST_WAIT_SECS: i64 = 30;
pub const LOGIN_MAX_WAIT_SECS: i64 = 15 * 60;

/// The failures of one account or address (a `LoginFailures` record).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct LoginFailures {
    count: u32,
    /// When the window started (the first failure).
    first: i64,
    /// No login before this time.
    blocked_until: i64,
    /// When the record may be purged (the later of the window's end and the wait's end).
    expires: i64,
}

impl LoginFailures {
    /// This record with one more failure at `now`.
    fn fail(mut self, free: u32, now: i64) -> LoginFailures {
        if self.count == 0 || now >= self.first + LOGIN_WINDOW_SECS {
            self = LoginFailures {
                first: now,
                ..LoginFailures::default()
            };
        }
        self.count = self.count.saturating_add(1);
        if self.count >= free {
            let doublings = (self.count - free).min(20);
            let wait = (LOGIN_FIRST_WAIT_SECS << doublings).min(LOGIN_MAX_WAIT_SECS);
            self.blocked_until = now + wait;
        }
        self.expires = (self.first + LOGIN_WINDOW_SECS).max(self.blocked_until);
        self
    }
}

impl Docket {
    /// `rate` while the account or address `key` has to wait.
    async fn check_login_throttle(&self, key: &str, free: u32, now: i64) -> Result<()> {
        let Some(record) = self
            .load::<LoginFailures>(RecordKind::LoginFailures, key)
            .await?
        else {
            return Ok(());
        };
        if record.count >= free && now < record.blocked_until {
            let what = if key.starts_with("addr:") {
                "from this address"
            } else {
                "for this account"
            };
            return Err(Error::Rate(format!(
                "Too many failed logins {what}; try again in {} seconds",
                record.blocked_until - now
            )));
        }
        Ok(())
    }

    /// Counts a failed login of `key` (in the database, so every node sees it).
    async fn count_login_failure(&self, key: &str, free: u32, now: i64) -> Result<()> {
        for _ in 0..3 {
            let updated = self
                .store
                .update_record(
                    RecordKind::LoginFailures,
                    key,
                    Box::new(move |value: &mut Value| {
                        let record: LoginFailures =
                            serde_json::from_value(value.take()).unwrap_or_default();
                        *value = serde_json::to_value(record.fail(free, now))
                            .map_err(Error::internal)?;
                        Ok(())
                    }),
                )
                .await?;
            if updated.is_some() {
                return Ok(());
            }
            let first = to_value(&LoginFailures::default().fail(free, now))?;
            if self
                .store
                .insert_record(RecordKind::LoginFailures, key, None, &first)
                .await?
            {
                return Ok(());
            }
            // Another request inserted it meanwhile: update that one.
        }
        Err(Error::internal("login failure count kept racing"))
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
    fn unknown_users_are_checked_against_a_dummy_hash() {
        let before = crate::auth::password_verifications();
        assert!(!verify_password_or_dummy("anything", None));
        assert!(
            crate::auth::password_verifications() > before,
            "the dummy hash was not verified"
        );
    }

    #[test]
    fn login_failures_back_off_and_expire() {
        let mut r = LoginFailures::default();
        for i in 1..LOGIN_FREE_FAILURES {
            r = r.fail(LOGIN_FREE_FAILURES, 1000 + i64::from(i));
            assert_eq!(r.blocked_until, 0, "failure {i} is free");
        }
        r = r.fail(LOGIN_FREE_FAILURES, 1010);
        assert_eq!(r.blocked_until, 1010 + LOGIN_FIRST_WAIT_SECS);
        r = r.fail(LOGIN_FREE_FAILURES, 1100);
        assert_eq!(r.blocked_until, 1100 + 2 * LOGIN_FIRST_WAIT_SECS);
        for _ in 0..30 {
            r = r.fail(LOGIN_FREE_FAILURES, 1200);
        }
        assert_eq!(
            r.blocked_until,
            1200 + LOGIN_MAX_WAIT_SECS,
            "the wait is capped"
        );
        // After the window a failure starts a new count.
        let later = 1001 + LOGIN_WINDOW_SECS + LOGIN_MAX_WAIT_SECS;
        r = r.fail(LOGIN_FREE_FAILURES, later);
        assert_eq!((r.count, r.first, r.blocked_until), (1, later, 0));
    }

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
