//! Reading the change feed (`crate::feed`) as a caller: `get_ticket_events` pages, and
//! [`FeedFollower`], which waits for what comes next (the API's event stream and the web
//! desk's live view both use it, so they are one mechanism).
//!
//! Cursor rules: a cursor is a position. Events strictly after it are returned. No cursor
//! starts from the oldest event kept. A cursor below the pruning horizon is refused with
//! `cursor_expired` (events after it were pruned); one above the newest position is refused
//! as malformed (it cannot come from this feed — e.g. the database was replaced).

use std::time::Duration;

use docket_query::{Filter, RangeField};
use serde_json::{Map, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::{int_param, Docket};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::feed::{FeedEvent, FeedKind, MAX_PAGE};
use crate::store::{SearchRequest, SortField, TicketEvent};

/// Events per page when the caller names no `limit`.
pub const DEFAULT_PAGE: u32 = 100;
/// Feed rows one read looks at, at most, however few of them the caller may see.
const MAX_SCANNED: usize = 10 * MAX_PAGE as usize;
/// How often a follower reads the feed when it heard of no write: a backstop for wake-ups
/// that were lost (PostgreSQL notifications while a listener reconnected).
pub const FOLLOW_POLL: Duration = Duration::from_secs(5);

/// One page of the feed as a caller sees it.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<FeedEvent>,
    /// Where to continue: pass it as `after` next time. Past the last event returned, and
    /// past events the caller may not see.
    pub cursor: i64,
    /// More events were there past `cursor` at the time of the read.
    pub more: bool,
}

/// What `get_ticket_events` was asked.
pub struct FeedParams {
    pub after: Option<i64>,
    pub limit: u32,
    /// A search the events' tickets must match now (`None`: every event).
    pub filter: Option<Filter>,
}

impl Docket {
    /// Reads `get_ticket_events`' parameters: `after`, `limit` (1 to [`MAX_PAGE`]), `query`.
    pub fn feed_params(&self, params: &Map<String, Value>) -> Result<FeedParams> {
        let after = match params.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(_) => Some(int_param(params, "after", 0, 0, i64::MAX)?),
        };
        let limit = int_param(params, "limit", DEFAULT_PAGE.into(), 1, MAX_PAGE.into())? as u32;
        let filter = match params.get("query") {
            None | Some(Value::Null) => None,
            Some(Value::String(q)) if q.trim().is_empty() || q.trim() == "*" => None,
            Some(Value::String(q)) => Some(self.compile_query(q).map_err(Error::Ticket)?),
            Some(_) => {
                return Err(Error::Api(
                    "Malformed parameter: query (must be a string)".into(),
                ))
            }
        };
        Ok(FeedParams {
            after,
            limit,
            filter,
        })
    }

    /// `get_ticket_events`.
    pub async fn get_ticket_events(
        &self,
        who: &Principal,
        params: &Map<String, Value>,
    ) -> Result<FeedPage> {
        let p = self.feed_params(params)?;
        self.read_feed(who, p.after, p.limit, p.filter.as_ref())
            .await
    }

    /// Up to `limit` events after `after` that `who` may see (see
    /// [`FeedEvent::as_seen_by`]) and, with `filter`, whose ticket matches it now. Reads
    /// further while the feed has more and fewer than `limit` were found, up to
    /// [`MAX_SCANNED`] rows.
    pub async fn read_feed(
        &self,
        who: &Principal,
        after: Option<i64>,
        limit: u32,
        filter: Option<&Filter>,
    ) -> Result<FeedPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut cursor = after.unwrap_or(0);
        let mut events = Vec::new();
        let mut scanned = 0;
        let mut first = true;
        loop {
            let read = self.store.feed_after(cursor, limit).await?;
            if cursor < read.pruned_through && (after.is_some() || !first) {
                if first {
                    return Err(expired(cursor, read.pruned_through));
                }
                // Pruned while this page was read: what was found stands; the next read
                // says the cursor expired.
                return Ok(FeedPage {
                    events,
                    cursor,
                    more: true,
                });
            }
            if first && cursor > read.newest.max(read.pruned_through) {
                return Err(Error::Api(format!(
                    "Malformed parameter: after ({cursor} is past the newest event, {}, so it \
                     is not a cursor of this server's feed; start again without `after`)",
                    read.newest.max(read.pruned_through)
                )));
            }
            if first && after.is_none() && read.events.is_empty() {
                // Nothing kept: continue from the horizon, not from before it.
                cursor = cursor.max(read.pruned_through);
            }
            first = false;
            let full = read.events.len() == limit as usize;
            scanned += read.events.len();
            let last = read.events.last().map(|e| e.position);
            let seen = self.visible(who, read.events, filter).await?;
            for event in seen {
                if events.len() == limit as usize {
                    // A full page: continue after the last event returned.
                    return Ok(FeedPage {
                        cursor: events.last().map_or(cursor, |e: &FeedEvent| e.position),
                        events,
                        more: true,
                    });
                }
                events.push(event);
            }
            if let Some(last) = last {
                cursor = last;
            }
            if !full || events.len() == limit as usize || scanned >= MAX_SCANNED {
                return Ok(FeedPage {
                    events,
                    cursor,
                    more: full,
                });
            }
        }
    }

    /// The events of one read that `who` may see and that match `filter` now: one search
    /// for the whole batch. A `deleted` event passes any filter (a deleted ticket matches
    /// nothing, and a reader following a query needs to hear that it is gone).
    async fn visible(
        &self,
        who: &Principal,
        events: Vec<FeedEvent>,
        filter: Option<&Filter>,
    ) -> Result<Vec<FeedEvent>> {
        let seen: Vec<FeedEvent> = events
            .into_iter()
            .filter_map(|e| e.as_seen_by(who))
            .collect();
        let Some(filter) = filter else {
            return Ok(seen);
        };
        let mut nums: Vec<i64> = seen
            .iter()
            .filter(|e| e.entry.kind != FeedKind::Deleted)
            .map(|e| e.entry.num)
            .collect();
        nums.sort_unstable();
        nums.dedup();
        let matching = self.matching_nums(who, filter, &nums).await?;
        Ok(seen
            .into_iter()
            .filter(|e| {
                e.entry.kind == FeedKind::Deleted || matching.binary_search(&e.entry.num).is_ok()
            })
            .collect())
    }

    /// Which of `nums` (sorted) are tickets `who` may see that match `filter`, sorted.
    async fn matching_nums(
        &self,
        who: &Principal,
        filter: &Filter,
        nums: &[i64],
    ) -> Result<Vec<i64>> {
        if nums.is_empty() {
            return Ok(Vec::new());
        }
        let one_of = Filter::Or(
            nums.iter()
                .map(|&n| Filter::Range {
                    field: RangeField::Num,
                    min: Some(n),
                    max: n.checked_add(1),
                })
                .collect(),
        );
        let page = self
            .run_search(
                Some(&who.username),
                &SearchRequest {
                    filter: Filter::And(vec![filter.clone(), one_of]),
                    categories: who.categories.clone(),
                    sort_by: SortField::Num,
                    descending: false,
                    offset: 0,
                    limit: nums.len() as u64,
                },
            )
            .await?;
        Ok(page.rows.iter().map(|t| t.num).collect())
    }

    /// The feed's newest position now: where a follower that wants only what comes next
    /// starts.
    pub async fn feed_head(&self) -> Result<i64> {
        let read = self.store.feed_after(i64::MAX - 1, 1).await?;
        Ok(read.newest.max(read.pruned_through))
    }

    /// Removes feed events older than `retention` (the hourly sweeper).
    pub async fn prune_feed(&self, retention: Duration) -> Result<u64> {
        let before = self.now().saturating_sub(retention.as_secs() as i64);
        self.store.feed_prune(before).await
    }

    /// A follower of the feed for `who` from `cursor` (see [`FeedFollower`]).
    pub fn follow_feed(&self, who: Principal, cursor: i64, filter: Option<Filter>) -> FeedFollower {
        FeedFollower {
            // Subscribed before the first read, so no commit after it goes unheard.
            wake: self.store.ticket_events(),
            docket: self.clone(),
            who,
            filter,
            cursor,
        }
    }
}

fn expired(cursor: i64, horizon: i64) -> Error {
    Error::CursorExpired(format!(
        "Cursor {cursor} has expired: events up to position {horizon} were removed \
         (events.retention_days). Start again with get_ticket_events without `after` (and \
         re-read the tickets you keep)"
    ))
}

/// Follows the feed from a cursor: [`FeedFollower::next`] waits until there are events the
/// caller may see after it, returns them and moves the cursor past them. It reads the feed
/// when the store says something was committed (`Store::ticket_events`, a wake-up only)
/// and every [`FOLLOW_POLL`] otherwise, so a lost wake-up delays an event, never loses it.
pub struct FeedFollower {
    docket: Docket,
    who: Principal,
    filter: Option<Filter>,
    cursor: i64,
    wake: tokio::sync::broadcast::Receiver<TicketEvent>,
}

impl FeedFollower {
    /// The position of the last event returned (or skipped as not visible).
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// The next events (at most `limit`) after the cursor; waits until there is one.
    pub async fn next(&mut self, limit: u32) -> Result<Vec<FeedEvent>> {
        loop {
            let page = self
                .docket
                .read_feed(&self.who, Some(self.cursor), limit, self.filter.as_ref())
                .await?;
            self.cursor = page.cursor;
            if !page.events.is_empty() {
                return Ok(page.events);
            }
            if page.more {
                continue;
            }
            self.wait().await;
        }
    }

    /// Until a write is announced (or [`FOLLOW_POLL`] passed); then takes every other
    /// announcement already queued, as one read covers them all.
    async fn wait(&mut self) {
        match tokio::time::timeout(FOLLOW_POLL, self.wake.recv()).await {
            Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
            // The store is closing: poll until whoever owns this stops.
            Ok(Err(RecvError::Closed)) => tokio::time::sleep(FOLLOW_POLL).await,
        }
        while let Ok(_) | Err(TryRecvError::Lagged(_)) = self.wake.try_recv() {}
    }
}
