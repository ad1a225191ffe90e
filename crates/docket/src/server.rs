//! The HTTP/1.1 accept loop, with the limits `axum::serve` does not have: a cap on open
//! connections, a deadline for a request's headers (slowloris), a stall limit for a request
//! body, and an idle limit for kept-alive connections. Each request carries the peer
//! address as axum's `ConnectInfo<SocketAddr>` (login throttling keys on it).
//!
//! "Idle" means no request in flight: a response that is still streaming (Server-Sent
//! Events on `/events`, a large download) keeps its connection however long it runs.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// The connection limits (`[server]` in the configuration).
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole request head (request line and headers) must arrive within this.
    pub header_read_timeout: Duration,
    /// A request body that sends no byte for this long, while its handler waits for it,
    /// closes the connection.
    pub body_read_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Open connections at most; more are closed at once (and a line is logged).
    pub max_connections: usize,
    /// Largest request head in bytes (hyper's read buffer).
    pub max_header_bytes: usize,
}

/// How long shutdown waits for requests in flight (a streaming response never ends).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish (up to [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut last_full_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if last_full_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                tracing::warn!(
                    %peer,
                    "connection limit reached (server.max_connections = {}): closing new \
                     connections until others close",
                    limits.max_connections
                );
                last_full_warning = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            limits.clone(),
            stopped.clone(),
            slot,
        ));
    }
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("closing connections still busy after {SHUTDOWN_GRACE:?}");
    }
}

/// What a connection has been doing, for the idle and stall checks.
struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last byte read.
    last_read: AtomicU64,
    /// Milliseconds since `started` of the last response finished.
    last_done: AtomicU64,
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// Request bodies not yet read to their end.
    bodies: AtomicUsize,
    /// Milliseconds since `started` when a handler began waiting for request body bytes
    /// that have not come ([`UNSET`]: none is waiting). A handler busy elsewhere (writing
    /// a file part to storage) is not waiting, so a slow store never cuts an upload.
    body_wait: AtomicU64,
    /// Milliseconds since `started` when the request head now being read began: the
    /// connection's start for its first request, the first byte after a finished response
    /// for later ones; [`UNSET`] while none is being read. (hyper's own header timeout
    /// would also run on an idle kept-alive connection, cutting it at the header deadline.)
    head_started: AtomicU64,
}

/// A time mark that is not set (no request head being read, no handler waiting for a body).
const UNSET: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last_read: AtomicU64::new(0),
            last_done: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            bodies: AtomicUsize::new(0),
            body_wait: AtomicU64::new(UNSET),
            head_started: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn since(&self, mark: &AtomicU64) -> Duration {
        Duration::from_millis(self.now().saturating_sub(mark.load(Ordering::Relaxed)))
    }

    /// Why the connection should be closed now, if it should.
    fn verdict(&self, limits: &Limits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            let head = self.head_started.load(Ordering::Acquire);
            if head != UNSET
                && Duration::from_millis(self.now().saturating_sub(head))
                    >= limits.header_read_timeout
            {
                return Some("request head too slow");
            }
            let quiet = self.since(&self.last_read).min(self.since(&self.last_done));
            return (quiet >= limits.idle_timeout).then_some("idle");
        }
        let wait = self.body_wait.load(Ordering::Acquire);
        if wait != UNSET {
            let since = wait.max(self.last_read.load(Ordering::Relaxed));
            if Duration::from_millis(self.now().saturating_sub(since)) >= limits.body_read_timeout {
                return Some("request body stalled");
            }
        }
        None
    }
}

/// Decrements a counter of [`Activity`] when dropped (a response sent, a body read).
struct Counted {
    activity: Arc<Activity>,
    body: bool,
}

impl Counted {
    fn new(activity: &Arc<Activity>, body: bool) -> Counted {
        let counter = if body {
            &activity.bodies
        } else {
            &activity.in_flight
        };
        counter.fetch_add(1, Ordering::AcqRel);
        Counted {
            activity: activity.clone(),
            body,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if self.body {
            self.activity.body_wait.store(UNSET, Ordering::Release);
            self.activity.bodies.fetch_sub(1, Ordering::AcqRel);
        } else {
            let now = self.activity.now();
            self.activity.last_done.store(now, Ordering::Relaxed);
            self.activity.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A body that drops its guard when it ends (or is dropped).
struct Watched<B> {
    inner: B,
    guard: Option<Counted>,
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(guard) = self.guard.as_ref().filter(|g| g.body) {
            let activity = &guard.activity;
            if polled.is_pending() {
                let _ = activity.body_wait.compare_exchange(
                    UNSET,
                    activity.now(),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            } else {
                activity.body_wait.store(UNSET, Ordering::Release);
            }
        }
        match &polled {
            Poll::Ready(None | Some(Err(_))) => self.guard = None,
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.guard = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The TCP stream, noting when bytes arrive.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.activity.now();
            self.activity.last_read.store(now, Ordering::Relaxed);
            // The first byte of a next request starts its head deadline.
            if self.activity.in_flight.load(Ordering::Acquire) == 0 {
                let _ = self.activity.head_started.compare_exchange(
                    UNSET,
                    now,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// One connection: hyper's HTTP/1.1 with the header deadline, watched for idleness and
/// stalled bodies, shut down gracefully when the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Arc<Limits>,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let watch = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let responding = Counted::new(&watch, false);
        watch.head_started.store(UNSET, Ordering::Release);
        let req = req.map(|body| {
            // A body already complete (GET, Content-Length: 0) is nothing to wait for.
            let guard = (!body.is_end_stream()).then(|| Counted::new(&watch, true));
            axum::body::Body::new(Watched { inner: body, guard })
        });
        let router = router.clone();
        async move {
            let res = router.oneshot(req).await;
            res.map(|res| {
                res.map(|body| {
                    axum::body::Body::new(Watched {
                        inner: body,
                        guard: Some(responding),
                    })
                })
            })
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // The head deadline is ours (`Activity::verdict`), see `head_started`.
        .header_read_timeout(None)
        // Room for the longest URI and headers the router's own checks allow, so those
        // are refused there with a JSON reply (hyper's own 414/431 have no body).
        .max_buf_size(
            limits.max_header_bytes.max(8192) * 2 + crate::wire::MAX_URI_BYTES + 16 * 1024,
        );
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let check_every = (limits
        .idle_timeout
        .min(limits.body_read_timeout)
        .min(limits.header_read_timeout)
        / 4)
    .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stopping = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopped.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = tick.tick() => {
                if let Some(why) = activity.verdict(&limits) {
                    tracing::debug!(%peer, why, "closing connection");
                    return;
                }
            }
        }
    }
}

/// The soft limit on open files of this process (Linux), to warn when
/// `server.max_connections` cannot be reached.
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
