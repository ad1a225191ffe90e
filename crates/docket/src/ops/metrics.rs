//! Prometheus metrics at `/metrics` (OpenMetrics text).
//!
//! Two kinds: counters and histograms this process updates as things happen (requests,
//! outbox deliveries, file bytes), kept in one process-wide registry; and ticket-flow figures
//! read from the database at scrape time (open tickets by status and type, overdue, the
//! oldest open ticket, created/resolved in the last hour, time to resolve) — cached for a few
//! seconds so that several scrapers or a dashboard refresh cannot turn into a query storm.
//! The ticket-flow figures describe the whole database, so on several nodes every node
//! reports the same numbers (aggregate them with `max`, not `sum`).

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use docket_core::model::Ticket;
use docket_core::store::{SearchRequest, SortField};
use docket_core::Docket;
use docket_query::{Filter, KeywordField, RangeField};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::Config;
use crate::wire::AppState;

type Labels = Vec<(&'static str, String)>;

/// How long ticket-flow figures read from the database are reused.
const FLOW_TTL: Duration = Duration::from_secs(5);
/// Resolved tickets the time-to-resolve histogram reads at most (the newest ones).
const RESOLVED_SAMPLE: u64 = 2000;
/// Pending outbox rows counted at most (the gauge saturates there).
const OUTBOX_COUNT_CAP: u32 = 10_000;

/// Time-to-resolve buckets: 5 minutes … 30 days.
const RESOLVE_BUCKETS: [f64; 11] = [
    300.0,
    900.0,
    3600.0,
    14_400.0,
    28_800.0,
    86_400.0,
    172_800.0,
    345_600.0,
    604_800.0,
    1_209_600.0,
    2_592_000.0,
];

/// The process-wide counters and histograms.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    outbox_sent: Family<Labels, Counter>,
    outbox_failed: Family<Labels, Counter>,
    file_bytes_in: Counter,
    file_bytes_out: Counter,
    flow: FlowCollector,
    /// Serialises refreshes of the ticket-flow snapshot.
    refreshing: tokio::sync::Mutex<()>,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "docket_http_requests",
            "HTTP requests answered, by call (API call name or route) and status",
            requests.clone(),
        );
        let latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "docket_http_request_duration_seconds",
            "Time from request to the last byte of the response, by call and status",
            latency.clone(),
        );
        let outbox_sent = Family::<Labels, Counter>::default();
        registry.register(
            "docket_outbox_sent",
            "Outbox deliveries accepted by the SMTP server or webhook endpoint, by channel",
            outbox_sent.clone(),
        );
        let outbox_failed = Family::<Labels, Counter>::default();
        registry.register(
            "docket_outbox_failed",
            "Outbox delivery attempts that failed (retried later), by channel",
            outbox_failed.clone(),
        );
        let file_bytes_in = Counter::default();
        registry.register(
            "docket_file_bytes_in",
            "Bytes of ticket files written to file storage",
            file_bytes_in.clone(),
        );
        let file_bytes_out = Counter::default();
        registry.register(
            "docket_file_bytes_out",
            "Bytes of ticket files read from file storage",
            file_bytes_out.clone(),
        );
        let flow = FlowCollector::default();
        registry.register_collector(Box::new(flow.clone()));
        Metrics {
            registry,
            requests,
            latency,
            outbox_sent,
            outbox_failed,
            file_bytes_in,
            file_bytes_out,
            flow,
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn observe_request(&self, call: &str, status: u16, seconds: f64) {
        let labels = vec![("call", call.to_string()), ("status", status.to_string())];
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// One delivery of `channel` (`email` or `webhook`) succeeded or failed.
    pub fn outbox_delivery(&self, channel: &str, ok: bool) {
        let labels = vec![("channel", channel.to_string())];
        let family = if ok {
            &self.outbox_sent
        } else {
            &self.outbox_failed
        };
        family.get_or_create(&labels).inc();
    }

    pub fn file_bytes_in(&self, n: u64) {
        self.file_bytes_in.inc_by(n);
    }

    pub fn file_bytes_out(&self, n: u64) {
        self.file_bytes_out.inc_by(n);
    }

    /// Re-reads the ticket-flow figures when the cached ones are older than [`FLOW_TTL`].
    async fn refresh_flow(&self, docket: &Docket, config: &Config) {
        let _one_at_a_time = self.refreshing.lock().await;
        let fresh = self
            .flow
            .current()
            .is_some_and(|f| f.taken.elapsed() < FLOW_TTL);
        if fresh {
            return;
        }
        match Flow::read(docket, config).await {
            Ok(flow) => self.flow.set(flow),
            // Counters still go out; the stale (or missing) flow figures say how old they are.
            Err(e) => tracing::warn!(error = %e, "reading ticket-flow metrics failed"),
        }
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Ticket-flow figures read from the database at one moment.
#[derive(Debug)]
struct Flow {
    taken: Instant,
    /// Epoch seconds when read (exported, so a dashboard can tell a stale snapshot).
    at: i64,
    by_status: Vec<(String, u64)>,
    open_by_type: Vec<(String, u64)>,
    overdue: u64,
    oldest_open_age: i64,
    created_last_hour: u64,
    resolved_last_hour: u64,
    outbox_pending: u64,
    /// Non-cumulative counts per [`RESOLVE_BUCKETS`] bound plus +Inf, sum and count of the
    /// tickets resolved in the last 24 hours.
    resolve_buckets: Vec<(f64, u64)>,
    resolve_sum: f64,
    resolve_count: u64,
}

fn keyword(field: KeywordField, value: &str) -> Filter {
    Filter::Keyword {
        field,
        value: value.to_lowercase(),
    }
}

fn any_status(statuses: &[String]) -> Filter {
    Filter::Or(
        statuses
            .iter()
            .map(|s| keyword(KeywordField::Status, s))
            .collect(),
    )
}

fn since(field: RangeField, from: i64) -> Filter {
    Filter::Range {
        field,
        min: Some(from),
        max: None,
    }
}

impl Flow {
    async fn read(docket: &Docket, config: &Config) -> docket_core::Result<Flow> {
        let store = &docket.store;
        let page =
            |filter: Filter, sort_by: SortField, descending: bool, limit: u64| SearchRequest {
                filter,
                categories: None,
                sort_by,
                descending,
                offset: 0,
                limit,
            };
        let count = |filter: Filter| async move {
            store
                .search_tickets(&page(filter, SortField::Num, false, 0))
                .await
                .map(|p| p.total)
        };
        let now = docket.now();
        let closed = &config.tickets.dedupe_closed_statuses;
        // Open: neither a draft nor in a closed-like status.
        let mut not_open = closed.clone();
        not_open.push("draft".into());
        let open = Filter::Not(Box::new(any_status(&not_open)));

        let mut by_status = Vec::new();
        for s in &config.tickets.statuses {
            by_status.push((
                s.id.clone(),
                count(keyword(KeywordField::Status, &s.id)).await?,
            ));
        }
        let mut open_by_type = Vec::new();
        for t in &config.tickets.types {
            let filter = Filter::And(vec![open.clone(), keyword(KeywordField::Type, &t.id)]);
            open_by_type.push((t.id.clone(), count(filter).await?));
        }
        let overdue = match docket.compile_query(&config.tickets.overdue_query) {
            Ok(filter) => count(filter).await?,
            Err(_) => 0,
        };
        let oldest = store
            .search_tickets(&page(open.clone(), SortField::Created, false, 1))
            .await?;
        let oldest_open_age = oldest
            .rows
            .first()
            .map(|t| (now - t.created).max(0))
            .unwrap_or(0);
        let created_last_hour = count(since(RangeField::Created, now - 3600)).await?;
        let resolved_since =
            |from: i64| Filter::And(vec![any_status(closed), since(RangeField::Modified, from)]);
        let resolved_last_hour = count(resolved_since(now - 3600)).await?;
        let resolved = store
            .search_tickets(&page(
                resolved_since(now - 86_400),
                SortField::Modified,
                true,
                RESOLVED_SAMPLE,
            ))
            .await?;
        let (resolve_buckets, resolve_sum, resolve_count) = resolve_histogram(&resolved.rows);
        let outbox_pending = store.outbox_list(true, OUTBOX_COUNT_CAP).await?.len() as u64;
        Ok(Flow {
            taken: Instant::now(),
            at: now,
            by_status,
            open_by_type,
            overdue,
            oldest_open_age,
            created_last_hour,
            resolved_last_hour,
            outbox_pending,
            resolve_buckets,
            resolve_sum,
            resolve_count,
        })
    }
}

/// Time from creation to the last change (the resolve, for a ticket left alone since).
fn resolve_histogram(tickets: &[Ticket]) -> (Vec<(f64, u64)>, f64, u64) {
    let mut buckets: Vec<(f64, u64)> = RESOLVE_BUCKETS
        .iter()
        .map(|&b| (b, 0))
        .chain(std::iter::once((f64::INFINITY, 0)))
        .collect();
    let mut sum = 0.0;
    for t in tickets {
        let secs = (t.modified - t.created).max(0) as f64;
        sum += secs;
        if let Some(b) = buckets.iter_mut().find(|(le, _)| secs <= *le) {
            b.1 += 1;
        }
    }
    (buckets, sum, tickets.len() as u64)
}

/// Encodes the latest [`Flow`] snapshot at each scrape.
#[derive(Debug, Clone, Default)]
struct FlowCollector {
    latest: Arc<Mutex<Option<Arc<Flow>>>>,
}

impl FlowCollector {
    fn current(&self) -> Option<Arc<Flow>> {
        self.latest.lock().ok().and_then(|f| f.clone())
    }

    fn set(&self, flow: Flow) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some(Arc::new(flow));
        }
    }
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?
        .encode_gauge(&v)
}

fn gauge_by(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(String, u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, n) in values {
        let labels = [(label, value.as_str())];
        m.encode_family(&labels)?.encode_gauge(&(*n as i64))?;
    }
    Ok(())
}

impl Collector for FlowCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let Some(f) = self.current() else {
            return Ok(());
        };
        let e = &mut enc;
        gauge_by(
            e,
            "docket_tickets",
            "Tickets by status",
            "status",
            &f.by_status,
        )?;
        gauge_by(
            e,
            "docket_tickets_open",
            "Open tickets (not draft, not in tickets.dedupe_closed_statuses) by type",
            "type",
            &f.open_by_type,
        )?;
        gauge(
            e,
            "docket_tickets_overdue",
            "Tickets matching tickets.overdue_query",
            f.overdue as i64,
        )?;
        gauge(
            e,
            "docket_oldest_open_ticket_age_seconds",
            "Age of the oldest open ticket (0 when none is open)",
            f.oldest_open_age,
        )?;
        gauge(
            e,
            "docket_tickets_created_last_hour",
            "Tickets created in the last hour",
            f.created_last_hour as i64,
        )?;
        gauge(
            e,
            "docket_tickets_resolved_last_hour",
            "Tickets in a closed-like status whose last change was in the last hour",
            f.resolved_last_hour as i64,
        )?;
        gauge(
            e,
            "docket_outbox_pending",
            "Emails and webhooks queued and not yet sent",
            f.outbox_pending as i64,
        )?;
        gauge(
            e,
            "docket_ticket_flow_timestamp_seconds",
            "When the ticket-flow figures were read from the database",
            f.at,
        )?;
        enc.encode_descriptor(
            "docket_ticket_resolve_seconds",
            "Creation to resolve of the tickets resolved in the last 24 hours (newest 2000)",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<Vec<(String, String)>>(
            f.resolve_sum,
            f.resolve_count,
            &f.resolve_buckets,
            None,
        )
    }
}

/// Whether the request carries the configured bearer token (any request, without one).
fn authorized(config: &Config, headers: &HeaderMap) -> bool {
    let token = &config.metrics.token;
    if token.is_empty() {
        return true;
    }
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compared as hashes, so the time taken says nothing about how much of it matched.
    docket_core::auth::hash_secret(sent) == docket_core::auth::hash_secret(token)
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.config.metrics.enabled {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !authorized(&state.config, &headers) {
        let mut res = (StatusCode::UNAUTHORIZED, "metrics.token required\n").into_response();
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return res;
    }
    let metrics = get();
    metrics.refresh_flow(&state.docket, &state.config).await;
    match metrics.encode() {
        Ok(mut text) => {
            if text.is_empty() {
                let _ = writeln!(text, "# EOF");
            }
            let mut res = text.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_times_fall_into_their_buckets() {
        let t = |created, modified| Ticket {
            created,
            modified,
            ..Ticket::default()
        };
        let (buckets, sum, count) = resolve_histogram(&[t(0, 100), t(0, 7200), t(0, 10_000_000)]);
        assert_eq!(count, 3);
        assert_eq!(sum, 10_007_300.0);
        assert_eq!(buckets[0], (300.0, 1));
        assert_eq!(buckets[3], (14_400.0, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
    }
}
