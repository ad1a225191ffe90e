//! The services: every rule of the contract applied to requests that the wire layer has
//! already parsed into JSON params and a [`Principal`](crate::auth::Principal).

mod access;
mod admin;
mod auth_cache;
mod automation;
mod bulk;
mod directory;
mod email_in;
mod export;
mod feed;
mod files;
mod import;
mod live;
mod people;
mod present;
mod relations;
mod saved_searches;
mod tickets;
mod xyops_import;

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

pub use access::{
    LoginResult, RateLimiter, LOGIN_FIRST_WAIT_SECS, LOGIN_FREE_FAILURES,
    LOGIN_FREE_FAILURES_PER_ADDRESS, LOGIN_MAX_WAIT_SECS, LOGIN_WINDOW_SECS,
};
pub use auth_cache::{AuthCache, AUTH_CACHE_TTL_SECS};
pub use automation::{
    default_dedupe_closed_statuses, Automation, Created, RecordSource, RecordType,
    IDEMPOTENCY_TTL_SECS,
};
pub use bulk::{bulk_set_from_params, BulkReport, BulkSet, FieldChange, PreviewRow, Refusal};
pub use directory::{DirectoryKind, CATEGORIES, ROLES, TAGS};
pub use email_in::{reply_refused, InboundMail, IntakeRoute, MailAttachment, Sender};
pub use export::EXPORT_PAGE;
pub use feed::{FeedFollower, FeedPage, FeedParams, DEFAULT_PAGE, FOLLOW_POLL};
pub use files::{Download, FileSettings, Files, UploadFailure, PENDING_GRACE_SECS};
pub use import::ImportRefs;
pub use people::{Person, MIN_PASSWORD_CHARS};
pub use present::needs_presenting;
pub use relations::RelationChange;
pub use saved_searches::{MAX_SAVED_SEARCHES, MAX_SAVED_SEARCH_NAME, MAX_SAVED_SEARCH_QUERY};
pub use tickets::{SearchParams, TicketOrError};
pub use xyops_import::{XyopsImport, XyopsImportOptions, XyopsImportReport};

use crate::error::{Error, Result};
use crate::rules::TicketRules;
use crate::store::{RecordKind, Store, TicketEvent};

/// The application: a store plus the configured rules. Cheap to clone.
#[derive(Clone)]
pub struct Docket {
    pub store: Arc<dyn Store>,
    pub rules: Arc<TicketRules>,
    pub rate: Arc<RateLimiter>,
    /// API keys and sessions checked recently (see `auth_cache.rs`).
    pub auth: Arc<AuthCache>,
    /// Job/alert records, report templates, dedupe settings (see `automation.rs`).
    pub automation: Arc<Automation>,
    /// What changes notify (emails, webhooks); see `notify.rs`.
    pub notify: Arc<crate::notify::NotifySettings>,
    /// How many searches run at once and how long one may take (see [`SearchSlots`]).
    pub searches: Arc<SearchSlots>,
}

/// Searches are the one unbounded kind of read: a slow one holds a database connection for
/// as long as it runs. At most `permits` run at once (the stores give searches their own
/// connections, so point reads and writes never wait behind them), and at most
/// `per_caller` of them for one caller (one user or key), so a caller sending many slow
/// searches at once queues behind itself instead of taking every slot; a search that cannot
/// start before its deadline gets the same timeout error as one the database stopped.
pub struct SearchSlots {
    permits: tokio::sync::Semaphore,
    per_caller: usize,
    /// Each caller with a search running or waiting: its own permits.
    callers: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// The deadline of one search; the stores enforce it inside the database.
    pub timeout: std::time::Duration,
    /// How long a caller whose search ran to its deadline may not search (zero: no pause).
    penalty: std::time::Duration,
    /// Callers whose searches ran to their deadline, with their pause.
    strikes: std::sync::Mutex<HashMap<String, Strikes>>,
}

/// A caller's searches stopped at their deadline, recently and in a row.
struct Strikes {
    count: u32,
    last: tokio::time::Instant,
    until: tokio::time::Instant,
}

/// Strikes older than this are forgotten.
const STRIKES_FORGOTTEN_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

impl SearchSlots {
    pub fn new(concurrency: usize, timeout: std::time::Duration) -> SearchSlots {
        SearchSlots {
            permits: tokio::sync::Semaphore::new(concurrency.max(1)),
            per_caller: DEFAULT_SEARCHES_PER_CALLER,
            callers: Default::default(),
            timeout,
            penalty: std::time::Duration::ZERO,
            strikes: Default::default(),
        }
    }

    /// Pauses the searches of a caller whose search ran to its deadline for `penalty`,
    /// doubling with each such search in a row (at most 16×). Without it, one caller could
    /// keep a search connection and a core busy for the whole deadline, again and again.
    pub fn timeout_penalty(mut self, penalty: std::time::Duration) -> SearchSlots {
        self.penalty = penalty;
        self
    }

    /// Runs `search` holding a slot of `caller` and a shared one, both waited for up to the
    /// deadline; refuses a caller in its pause (before waiting, and again once the slots are
    /// its own, so searches queued behind one that ran to its deadline do not each run to
    /// the deadline in turn); and gives a caller a strike when its search failed after the
    /// deadline (the database stopped it). Slots are released when it ends or is cancelled.
    pub async fn run<T>(
        &self,
        caller: Option<&str>,
        search: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.timeout;
        // Declared before the permits, so dropped after them (also when cancelled).
        let own = CallerSlots {
            slots: self,
            caller,
            permits: caller.map(|c| self.of(c)),
        };
        let permits = async {
            let mine = match &own.permits {
                Some(s) => Some(s.acquire().await),
                None => None,
            };
            (mine, self.permits.acquire().await)
        };
        if let Some(paused) = caller.and_then(|c| self.paused(c)) {
            return Err(paused);
        }
        let closed = |_| Error::internal("search slots closed");
        let _permits = match tokio::time::timeout(timeout, permits).await {
            Ok((mine, shared)) => (mine.transpose().map_err(closed)?, shared.map_err(closed)?),
            // Waiting for a slot is the server's doing, not the caller's: no strike.
            Err(_elapsed) => return Err(Error::search_timeout(timeout)),
        };
        if let Some(paused) = caller.and_then(|c| self.paused(c)) {
            return Err(paused);
        }
        let started = tokio::time::Instant::now();
        let out = search.await;
        if let (Err(_), Some(caller)) = (&out, caller) {
            if started.elapsed() >= timeout {
                self.strike(caller);
            }
        }
        out
    }

    fn strikes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Strikes>> {
        self.strikes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The refusal for a caller in its pause, if it is in one.
    fn paused(&self, caller: &str) -> Option<Error> {
        let now = tokio::time::Instant::now();
        let strikes = self.strikes();
        let s = strikes.get(caller)?;
        let left = s
            .until
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())?;
        Some(Error::Rate(format!(
            "Searches of this caller are paused for {} more s: {} of its searches in a row ran \
             to the deadline (database.search_timeout_penalty_sec); narrow the query",
            left.as_secs().max(1),
            s.count
        )))
    }

    /// Records that a search of `caller` ran to its deadline.
    fn strike(&self, caller: &str) {
        if self.penalty.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now();
        let mut strikes = self.strikes();
        // Forget old strikes here, on the rare path, so the map stays small; a search only
        // looks its caller up.
        strikes.retain(|_, s| now.duration_since(s.last) < STRIKES_FORGOTTEN_AFTER);
        let s = strikes.entry(caller.to_string()).or_insert(Strikes {
            count: 0,
            last: now,
            until: now,
        });
        if now.duration_since(s.last) >= STRIKES_FORGOTTEN_AFTER {
            s.count = 0;
        }
        s.count += 1;
        s.last = now;
        s.until = now + self.penalty * (1u32 << (s.count - 1).min(4));
    }

    /// Replaces the searches one caller may run at once (at least 1).
    pub fn per_caller(mut self, n: usize) -> SearchSlots {
        self.per_caller = n.max(1);
        self
    }

    fn callers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Semaphore>>> {
        self.callers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caller's permits (created on its first search).
    fn of(&self, caller: &str) -> Arc<tokio::sync::Semaphore> {
        self.callers()
            .entry(caller.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_caller)))
            .clone()
    }

    /// Forgets a caller with no search running or waiting (only the map holds its permits).
    fn release(&self, caller: &str) {
        let mut callers = self.callers();
        if callers
            .get(caller)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            callers.remove(caller);
        }
    }
}

/// A caller's hold on its permits; forgets the caller when it was the last one.
struct CallerSlots<'a> {
    slots: &'a SearchSlots,
    caller: Option<&'a str>,
    permits: Option<Arc<tokio::sync::Semaphore>>,
}

impl Drop for CallerSlots<'_> {
    fn drop(&mut self) {
        self.permits = None;
        if let Some(caller) = self.caller {
            self.slots.release(caller);
        }
    }
}

impl Default for SearchSlots {
    fn default() -> Self {
        SearchSlots::new(DEFAULT_SEARCH_CONCURRENCY, DEFAULT_SEARCH_TIMEOUT)
    }
}

/// Searches running at once by default (one less than the SQLite read pool).
pub const DEFAULT_SEARCH_CONCURRENCY: usize = 3;
/// Searches one caller may run at once by default.
pub const DEFAULT_SEARCHES_PER_CALLER: usize = 2;
/// How long a search may run by default.
pub const DEFAULT_SEARCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Docket {
    pub fn new(store: Arc<dyn Store>, rules: TicketRules) -> Self {
        let auth = Arc::new(AuthCache::new(store.record_events()));
        Docket {
            store,
            rules: Arc::new(rules),
            rate: Arc::new(RateLimiter::default()),
            auth,
            automation: Arc::new(Automation::default()),
            notify: Arc::new(crate::notify::NotifySettings::default()),
            searches: Arc::new(SearchSlots::default()),
        }
    }

    /// Replaces the search concurrency and deadline.
    pub fn with_search_slots(mut self, slots: SearchSlots) -> Self {
        self.searches = Arc::new(slots);
        self
    }

    /// Every search goes through here: it waits for a slot of its caller (`None`: the
    /// server's own searches) and then a shared one, both within the deadline, then asks
    /// the store, which stops the query itself at the deadline.
    pub(crate) async fn run_search(
        &self,
        caller: Option<&str>,
        request: &crate::store::SearchRequest,
    ) -> Result<crate::store::SearchPage> {
        self.searches
            .run(caller, self.store.search_tickets(request))
            .await
    }

    /// Replaces the notification settings (emails on, debounce, webhook endpoints).
    pub fn with_notify(mut self, notify: crate::notify::NotifySettings) -> Self {
        self.notify = Arc::new(notify);
        self
    }

    /// Replaces the automation settings (upstream source, templates, dedupe statuses).
    pub fn with_automation(mut self, automation: Automation) -> Self {
        self.automation = Arc::new(automation);
        self
    }

    /// A receiver of every ticket write committed from now on (see [`TicketEvent`]): a
    /// wake-up signal; live views read what changed from the change feed
    /// ([`Docket::follow_feed`]), which loses nothing when a receiver lags.
    pub fn ticket_events(&self) -> tokio::sync::broadcast::Receiver<TicketEvent> {
        self.store.ticket_events()
    }

    /// The current time in epoch seconds.
    pub fn now(&self) -> i64 {
        jiff::Timestamp::now().as_second()
    }

    async fn load<T: DeserializeOwned>(&self, kind: RecordKind, id: &str) -> Result<Option<T>> {
        match self.store.get_record(kind, id).await? {
            Some(v) => serde_json::from_value(v).map(Some).map_err(Error::internal),
            None => Ok(None),
        }
    }

    async fn load_all<T: DeserializeOwned>(&self, kind: RecordKind) -> Result<Vec<T>> {
        self.store
            .list_records(kind)
            .await?
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(Error::internal))
            .collect()
    }
}

/// Whether a request wants notifications: `notify: false` (also `"false"`, `0`) records the
/// change without sending anything for it.
pub(crate) fn sends(params: &Map<String, Value>) -> bool {
    !matches!(params.get("notify"), Some(Value::Bool(false)))
        && !matches!(params.get("notify"), Some(Value::String(s)) if s == "false" || s == "0")
        && !matches!(params.get("notify"), Some(Value::Number(n)) if n.as_i64() == Some(0))
}

fn to_value<T: Serialize>(record: &T) -> Result<Value> {
    serde_json::to_value(record).map_err(Error::internal)
}

/// Reads a required string parameter.
pub fn required_str(
    params: &Map<String, Value>,
    name: &str,
    code: fn(String) -> Error,
) -> Result<String> {
    match params.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        // Query strings type digits as numbers; an id like `123` is still an id.
        Some(Value::Number(n)) if n.is_u64() => Ok(n.to_string()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(code(format!("Missing parameter: {name}")))
        }
        Some(_) => Err(code(format!(
            "Malformed parameter: {name} (must be a string)"
        ))),
    }
}

/// Overwrites `field` with `value` when a sparse update sent one.
pub(crate) fn set_if<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// Reads an optional boolean parameter (`true`/`false`, `1`/`0`).
pub fn flag(params: &Map<String, Value>, name: &str) -> Result<bool> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_f64() != Some(0.0)),
        Some(Value::String(s)) if matches!(s.as_str(), "1" | "true") => Ok(true),
        Some(Value::String(s)) if matches!(s.as_str(), "0" | "false" | "") => Ok(false),
        Some(_) => Err(Error::Api(format!(
            "Malformed parameter: {name} (must be true or false)"
        ))),
    }
}

/// Reads an optional integer parameter with a default and bounds.
pub fn int_param(
    params: &Map<String, Value>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64> {
    let bad = || {
        Error::Api(format!(
            "Malformed parameter: {name} (must be a whole number from {min} to {max})"
        ))
    };
    let n = match params.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(bad)?,
        Some(Value::String(s)) if s.is_empty() => return Ok(default),
        Some(Value::String(s)) => s.trim().parse::<i64>().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    if n < min || n > max {
        return Err(bad());
    }
    Ok(n)
}

/// Reads a list of strings: an array, or a comma-separated text.
pub fn string_list(
    params: &Map<String, Value>,
    name: &str,
    code: fn(String) -> Error,
) -> Result<Option<Vec<String>>> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    code(format!(
                        "Malformed parameter: {name} (must be an array of strings)"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )),
        Some(_) => Err(code(format!(
            "Malformed parameter: {name} (must be an array)"
        ))),
    }
}

#[cfg(test)]
mod search_slot_tests {
    use std::time::Duration;

    use super::{Error, SearchSlots};

    const DEADLINE: Duration = Duration::from_millis(100);

    /// A search that the database stops at its deadline.
    async fn stopped() -> super::Result<()> {
        tokio::time::sleep(DEADLINE + Duration::from_millis(1)).await;
        Err(Error::search_timeout(DEADLINE))
    }

    fn slots() -> SearchSlots {
        SearchSlots::new(3, DEADLINE)
            .per_caller(1)
            .timeout_penalty(Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_whose_search_ran_to_the_deadline_is_paused_longer_each_time() {
        let slots = slots();
        assert!(matches!(
            slots.run(Some("x"), stopped()).await,
            Err(Error::Ticket(_))
        ));
        let quick = || slots.run(Some("x"), async { Ok(()) });
        assert!(matches!(quick().await, Err(Error::Rate(_))));
        // Others are not paused, nor the server's own searches.
        assert!(slots.run(Some("y"), async { Ok(()) }).await.is_ok());
        assert!(slots.run(None, async { Ok(()) }).await.is_ok());
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(quick().await.is_ok());
        // The second in a row: two seconds.
        assert!(slots.run(Some("x"), stopped()).await.is_err());
        tokio::time::advance(Duration::from_millis(1500)).await;
        assert!(matches!(quick().await, Err(Error::Rate(m)) if m.contains("2 of its searches")));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(quick().await.is_ok());
        // Ten quiet minutes later the strikes are forgotten: one second again.
        tokio::time::advance(Duration::from_secs(601)).await;
        assert!(slots.run(Some("x"), stopped()).await.is_err());
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(quick().await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn searches_queued_behind_one_that_ran_to_the_deadline_are_paused_too() {
        let slots = std::sync::Arc::new(slots());
        let first = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.run(Some("x"), stopped()).await })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Waits for x's one slot (until 105 ms); the first ends at 101 ms with a strike.
        let queued = slots.run(Some("x"), stopped()).await;
        assert!(matches!(queued, Err(Error::Rate(_))), "{queued:?}");
        assert!(matches!(first.await, Ok(Err(Error::Ticket(_)))));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_for_a_slot_past_the_deadline_is_no_strike() {
        let slots = std::sync::Arc::new(slots());
        // x's one slot is held for 150 ms by a search that succeeds.
        let holder = {
            let slots = slots.clone();
            tokio::spawn(async move {
                slots
                    .run(Some("x"), async {
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        // Another of x gives up waiting at the deadline: the timeout answer, not a strike.
        let waited = slots.run(Some("x"), async { Ok(()) }).await;
        assert!(matches!(waited, Err(Error::Ticket(_))), "{waited:?}");
        assert!(holder.await.unwrap().is_ok());
        assert!(
            slots.run(Some("x"), async { Ok(()) }).await.is_ok(),
            "not paused"
        );
    }
}
