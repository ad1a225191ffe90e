//! Credentials checked from memory: the API keys and login sessions that authenticated
//! recently, each with its principal (roles folded in), so a request makes no database trip
//! to authenticate.
//!
//! Exactness:
//! - This node: every service write of a user, API key, role or session (except a new
//!   session, which invalidates nothing) calls [`AuthCache::clear`] after it committed, so
//!   the next request reads the records again.
//! - A read that raced such a write cannot put a stale entry back: an entry is stored only
//!   if the cache's generation is still the one read before the database was asked.
//! - Other nodes (PostgreSQL): the store reports their record writes
//!   ([`Store::record_events`](crate::store::Store::record_events)); each request first applies
//!   what arrived. While the store is not listening, the cache is bypassed (every request
//!   reads the database, as before), and everything is forgotten when it listens again.
//! - Writers outside any server process (the CLI on an SQLite data directory): an entry is
//!   used for at most [`AUTH_CACHE_TTL_SECS`].
//!
//! Only what a lookup found is kept (an unknown key or session is asked of the database each
//! time), so the cache holds no more entries than there are valid credentials in use, and a
//! cap bounds even that.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::broadcast::error::TryRecvError;

use crate::auth::Principal;
use crate::model::{ApiKey, Session, User};
use crate::store::{RecordEvents, RecordKind};

/// The longest an entry is used before its records are read again.
pub const AUTH_CACHE_TTL_SECS: i64 = 60;
/// Entries of one kind (keys, sessions) kept at most; past it the kind starts empty again.
const MAX_ENTRIES: usize = 50_000;

/// An API key as found by its hash, with the principal it authenticates as.
#[derive(Debug)]
pub(crate) struct CachedKey {
    /// The record without its hash.
    pub key: ApiKey,
    pub principal: Principal,
    loaded: i64,
}

/// A session with its user (without the password hash) and principal.
#[derive(Debug)]
pub(crate) struct CachedSession {
    pub session: Session,
    pub user: User,
    pub principal: Principal,
    loaded: i64,
}

impl CachedKey {
    pub fn new(key: ApiKey, principal: Principal, now: i64) -> Self {
        CachedKey {
            key: key.public(),
            principal,
            loaded: now,
        }
    }
}

impl CachedSession {
    pub fn new(session: Session, user: User, principal: Principal, now: i64) -> Self {
        CachedSession {
            session,
            user: user.public(),
            principal,
            loaded: now,
        }
    }
}

#[derive(Default)]
struct Entries {
    /// Bumped by every clear; a lookup that started at another generation stores nothing.
    generation: u64,
    keys: HashMap<String, Arc<CachedKey>>,
    sessions: HashMap<String, Arc<CachedSession>>,
}

/// See the module documentation.
pub struct AuthCache {
    entries: RwLock<Entries>,
    /// Record writes of other nodes, when the store has other writers.
    feed: Option<Mutex<RecordEvents>>,
}

/// What a lookup needs to store its result later: the generation it started at, or `None`
/// when the cache is bypassed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup(Option<u64>);

impl AuthCache {
    /// A cache fed by `events` (the store's record events; `None` for a store this process
    /// alone writes).
    pub fn new(events: Option<RecordEvents>) -> Self {
        AuthCache {
            entries: RwLock::new(Entries::default()),
            feed: events.map(Mutex::new),
        }
    }

    /// Forgets every entry (a user, key, role or session changed).
    pub fn clear(&self) {
        if let Ok(mut e) = self.entries.write() {
            e.generation = e.generation.wrapping_add(1);
            e.keys.clear();
            e.sessions.clear();
        }
    }

    /// Applies what other nodes changed; `false` when the cache must be bypassed (the
    /// store is not hearing other nodes right now).
    fn sync(&self) -> bool {
        let Some(feed) = &self.feed else {
            return true;
        };
        let Ok(mut feed) = feed.lock() else {
            return false;
        };
        let mut stale = false;
        if feed.hearing.has_changed().unwrap_or(true) {
            feed.hearing.borrow_and_update();
            stale = true;
        }
        let listening = feed.hearing.borrow().listening;
        loop {
            match feed.changes.try_recv() {
                Ok(change) => stale |= matters(change.kind),
                Err(TryRecvError::Empty) => break,
                // Missed some: anything may have changed.
                Err(TryRecvError::Lagged(_)) => stale = true,
                Err(TryRecvError::Closed) => {
                    stale = true;
                    break;
                }
            }
        }
        if stale || !listening {
            self.clear();
        }
        listening
    }

    /// Starts a lookup: what [`AuthCache::put_key`] / [`AuthCache::put_session`] need.
    pub(crate) fn lookup(&self) -> Lookup {
        if !self.sync() {
            return Lookup(None);
        }
        Lookup(self.entries.read().ok().map(|e| e.generation))
    }

    /// The cached key with this hash, if fresh. Call after [`AuthCache::lookup`].
    pub(crate) fn key(&self, lookup: Lookup, hash: &str, now: i64) -> Option<Arc<CachedKey>> {
        lookup.0?;
        let e = self.entries.read().ok()?;
        e.keys
            .get(hash)
            .filter(|k| now - k.loaded < AUTH_CACHE_TTL_SECS && now >= k.loaded)
            .cloned()
    }

    pub(crate) fn session(
        &self,
        lookup: Lookup,
        hash: &str,
        now: i64,
    ) -> Option<Arc<CachedSession>> {
        lookup.0?;
        let e = self.entries.read().ok()?;
        e.sessions
            .get(hash)
            .filter(|s| now - s.loaded < AUTH_CACHE_TTL_SECS && now >= s.loaded)
            .cloned()
    }

    /// Keeps a key read from the database, unless something changed since `lookup`.
    pub(crate) fn put_key(&self, lookup: Lookup, hash: String, entry: Arc<CachedKey>) {
        let Some(generation) = lookup.0 else { return };
        if let Ok(mut e) = self.entries.write() {
            if e.generation == generation {
                if e.keys.len() >= MAX_ENTRIES {
                    e.keys.clear();
                }
                e.keys.insert(hash, entry);
            }
        }
    }

    pub(crate) fn put_session(&self, lookup: Lookup, hash: String, entry: Arc<CachedSession>) {
        let Some(generation) = lookup.0 else { return };
        if let Ok(mut e) = self.entries.write() {
            if e.generation == generation {
                if e.sessions.len() >= MAX_ENTRIES {
                    e.sessions.clear();
                }
                e.sessions.insert(hash, entry);
            }
        }
    }

    /// How many keys and sessions are cached (tests).
    pub fn len(&self) -> (usize, usize) {
        self.entries
            .read()
            .map(|e| (e.keys.len(), e.sessions.len()))
            .unwrap_or_default()
    }
}

/// Whether a write of `kind` can change what a cached credential authenticates as.
pub(crate) fn matters(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::User | RecordKind::ApiKey | RecordKind::Role | RecordKind::Session
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Hearing, RecordChange};
    use tokio::sync::{broadcast, watch};

    fn key_entry(id: &str, now: i64) -> Arc<CachedKey> {
        let key = ApiKey {
            id: id.into(),
            key: "hash".into(),
            ..Default::default()
        };
        Arc::new(CachedKey::new(key, Principal::system(id), now))
    }

    #[test]
    fn entries_are_kept_until_cleared_or_old() {
        let cache = AuthCache::new(None);
        let lookup = cache.lookup();
        assert!(cache.key(lookup, "h", 100).is_none());
        cache.put_key(lookup, "h".into(), key_entry("k1", 100));
        let found = cache.key(cache.lookup(), "h", 101).expect("cached");
        assert_eq!(found.key.id, "k1");
        assert!(found.key.key.is_empty(), "the hash is not kept");
        assert!(cache
            .key(cache.lookup(), "h", 100 + AUTH_CACHE_TTL_SECS)
            .is_none());
        cache.clear();
        assert!(cache.key(cache.lookup(), "h", 101).is_none());
    }

    #[test]
    fn a_lookup_that_raced_a_change_stores_nothing() {
        let cache = AuthCache::new(None);
        // Read before the write committed ...
        let lookup = cache.lookup();
        // ... the write commits and clears ...
        cache.clear();
        // ... then the stale result comes back: it must not be kept.
        cache.put_key(lookup, "h".into(), key_entry("stale", 100));
        assert!(cache.key(cache.lookup(), "h", 100).is_none());
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn other_nodes_changes_and_deafness_clear_the_cache() {
        let (changes, rx) = broadcast::channel(4);
        let (hearing, hearing_rx) = watch::channel(Hearing { listening: true });
        let cache = AuthCache::new(Some(RecordEvents {
            changes: rx,
            hearing: hearing_rx,
        }));
        let fill = |id: &str| {
            let lookup = cache.lookup();
            cache.put_key(lookup, id.into(), key_entry(id, 100));
        };
        fill("a");
        assert!(cache.key(cache.lookup(), "a", 100).is_some());

        // A tag written elsewhere changes nothing; a role does.
        changes
            .send(RecordChange {
                kind: RecordKind::Tag,
            })
            .unwrap();
        assert!(cache.key(cache.lookup(), "a", 100).is_some());
        changes
            .send(RecordChange {
                kind: RecordKind::Role,
            })
            .unwrap();
        assert!(cache.key(cache.lookup(), "a", 100).is_none());

        // Falling behind counts as "anything changed".
        fill("b");
        for _ in 0..6 {
            changes
                .send(RecordChange {
                    kind: RecordKind::Tag,
                })
                .unwrap();
        }
        assert!(cache.key(cache.lookup(), "b", 100).is_none());

        // While the store does not listen, nothing is cached; listening again starts empty.
        fill("c");
        hearing.send_modify(|h| h.listening = false);
        assert!(cache.key(cache.lookup(), "c", 100).is_none());
        fill("c");
        assert_eq!(cache.len(), (0, 0), "nothing cached while deaf");
        hearing.send_modify(|h| h.listening = true);
        fill("c");
        assert!(cache.key(cache.lookup(), "c", 100).is_some());
        // A reconnect (listening all along) may have missed writes: start empty.
        hearing.send_modify(|h| h.listening = true);
        assert!(cache.key(cache.lookup(), "c", 100).is_none());
    }
}
