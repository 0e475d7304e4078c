//! The accept loop: HTTP/1.1 connections with the limits a public listener
//! needs, and a shutdown that ends within a deadline whatever clients do.
//!
//! `axum::serve` runs hyper without a timer, so a client that sends half a
//! header line, or opens a connection and says nothing, holds it (and a
//! file descriptor) forever. Here every connection has
//! - a **header-read timeout**: the request head must arrive within it
//!   (hyper's, which also runs while a kept-alive connection waits for its
//!   next request);
//! - an **idle timeout**: a connection on which no byte moves for that long
//!   is asked to close (at once if between requests, after its response if
//!   one is being worked on);
//! - a slot among **`max_connections`**: beyond it, the listener stops
//!   accepting until a slot frees, so descriptors never run out;
//!
//! and the body-read timeout is applied where bodies are read (the JSON
//! extractor). On shutdown the listener closes at once, every connection
//! is asked to finish its request and close, and whatever is still open at
//! the deadline is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// How connections are bounded (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time allowed for a request's head to arrive.
    pub header_read_timeout: Duration,
    /// Time a connection may stay without any byte read or written.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time in-flight requests get to finish after shutdown begins.
    pub shutdown_deadline: Duration,
    /// Connections from one client address at once (0: no limit).
    pub max_connections_per_address: usize,
}

/// Open connections per client address.
#[derive(Default)]
pub(crate) struct PeerCounts(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

/// A connection counted against its address; uncounted when dropped.
struct PeerSlot {
    counts: Arc<PeerCounts>,
    addr: std::net::IpAddr,
}

impl PeerCounts {
    /// Count a connection from `addr`, unless it already has `limit`.
    /// Loopback is never limited: it is the machine's own health checks
    /// and proxies, never a remote client.
    fn enter(self: &Arc<Self>, addr: std::net::IpAddr, limit: usize) -> Option<Option<PeerSlot>> {
        if limit == 0 || addr.is_loopback() {
            return Some(None);
        }
        let mut counts = self.0.lock().ok()?;
        let count = counts.entry(addr).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(Some(PeerSlot {
            counts: Arc::clone(self),
            addr,
        }))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.0.lock() {
            if let Some(count) = counts.get_mut(&self.addr) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&self.addr);
                }
            }
        }
    }
}

/// Connection slots, shared by every listener of a process so that all of
/// them together stay under the open-files limit.
pub fn slots(limits: &ConnectionLimits) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(limits.max_connections.max(1)))
}

/// Serve `service` on `listener` until `stop` resolves, then drain.
pub async fn serve(
    listener: TcpListener,
    service: super::Service,
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    stop: impl Future<Output = ()> + Send,
) {
    let (closing, closing_rx) = watch::channel(false);
    let per_peer = Arc::new(PeerCounts::default());
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        // Reap finished connections as we go, so the set stays small.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was
                    // accepted: keep serving the ones we have.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // One remote address may not take every slot (behind a proxy every
        // connection has the proxy's address: the limit is then off).
        let Some(peer_slot) = per_peer.enter(peer.ip(), limits.max_connections_per_address) else {
            tracing::debug!(peer = %peer.ip(), "connection refused: too many from this address");
            drop(stream);
            continue;
        };
        let service = service.clone();
        let closing = closing_rx.clone();
        connections.spawn(async move {
            connection(stream, peer, service, limits, closing).await;
            drop(peer_slot);
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open_at_shutdown = open,
            cut = connections.len(),
            deadline_seconds = limits.shutdown_deadline.as_secs(),
            "shutdown deadline passed: connections still open were closed"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    service: super::Service,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Watched {
        inner: stream,
        started,
        activity: activity.clone(),
    });
    let handler =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            service.clone().oneshot(request)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, handler);
    tokio::pin!(conn);
    // Asked to close (idle, or shutting down): the connection finishes the
    // response in progress, if any; a client that does not take it within
    // another idle timeout is dropped.
    let mut close_by: Option<tokio::time::Instant> = None;
    loop {
        let idle_left = limits
            .idle_timeout
            .saturating_sub(idle_for(started, &activity));
        let deadline = close_by.unwrap_or_else(|| tokio::time::Instant::now() + idle_left);
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = closing.changed(), if close_by.is_none() => {
                if changed.is_err() || *closing.borrow() {
                    conn.as_mut().graceful_shutdown();
                    close_by = Some(tokio::time::Instant::now() + limits.idle_timeout);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                if close_by.is_some() {
                    return;
                }
                if idle_for(started, &activity) >= limits.idle_timeout {
                    conn.as_mut().graceful_shutdown();
                    close_by = Some(tokio::time::Instant::now() + limits.idle_timeout);
                }
            }
        }
    }
}

/// How long no byte has moved on a connection that began at `started`.
fn idle_for(started: Instant, activity: &AtomicU64) -> Duration {
    let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(now.saturating_sub(activity.load(Ordering::Relaxed)))
}

/// A socket that records when a byte last moved (milliseconds since the
/// connection began), for the idle timeout.
struct Watched {
    inner: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Raise the soft limit on open files to the hard limit (a service that
/// keeps thousands of connections needs more than the usual 1024), and
/// return the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_limit_of_connections_and_loopback_no_limit() {
        let counts = Arc::new(PeerCounts::default());
        let remote: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let first = counts.enter(remote, 2).unwrap();
        let second = counts.enter(remote, 2).unwrap();
        assert!(first.is_some() && second.is_some());
        assert!(counts.enter(remote, 2).is_none(), "a third is refused");
        drop(first);
        assert!(counts.enter(remote, 2).is_some(), "a slot freed");
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..10 {
            assert!(counts.enter(local, 2).is_some());
        }
        assert!(counts.enter(remote, 0).is_some(), "0: no limit");
    }
}
