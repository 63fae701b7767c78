//! The accept loop. `axum::serve` sets no timeouts and no connection cap, so the
//! server drives hyper's HTTP/1 connections itself:
//!
//! - a cap on open connections ([`Limits::connection_cap`]): past it a new
//!   connection is closed at once and the fact logged (rate-limited), so the
//!   process never runs out of file descriptors and keeps answering the rest;
//! - hyper's header-read timeout, which runs from the moment a connection is ready
//!   for a request until the headers are complete (slowloris);
//! - an idle timeout: no request being handled and no byte moving either way
//!   (silent connections, idle keep-alive, a client that stopped reading);
//! - the body-read timeout is the extractors' (`extract.rs`), since only a handler
//!   knows it wants the body;
//! - with HTTPS ([`crate::tls`]), the TLS handshake: it runs in the connection's own
//!   task under the header-read timeout (a handshake that trickles) and the idle
//!   timeout (a socket that sends nothing), so a connection that never finishes
//!   one is closed like a silent plain one, and the accept loop never waits on it.
//!
//! All of these hold until a request is authenticated (the extractors run before a
//! handler waits); the only request that may then outlast them is an authenticated
//! `GET /v1/changes` long poll (`changes.rs`), counted and capped there, and
//! answered at once at shutdown.
//!
//! Each connection's peer address is put in the request as axum's `ConnectInfo`,
//! for the failed-authentication limiter.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::AppState;
use crate::limits::{ACCEPT_ERROR_PAUSE, Limits, LogThrottle, MAX_HEAD_BYTES, SHUTDOWN_GRACE};
use crate::tls::Tls;

/// Serves `app` on `listener` until `shutdown` fires, then lets in-flight requests
/// finish for at most [`SHUTDOWN_GRACE`].
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: AppState,
    limits: Limits,
    tls: Option<Arc<Tls>>,
    shutdown: oneshot::Receiver<()>,
) -> io::Result<()> {
    let cap = limits.connection_cap();
    let slots = Arc::new(Semaphore::new(cap));
    let refused_log = LogThrottle::default();
    let accept_error_log = LogThrottle::default();
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    if let Some(held_back) = accept_error_log.ready() {
                        tracing::error!(error = %e, held_back, "accept failed; pausing before the next");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            state.metrics.connections_refused.inc();
            if let Some(held_back) = refused_log.ready() {
                tracing::warn!(
                    max_connections = cap,
                    refused_since_last_line = held_back,
                    "connection limit reached: closing new connections at once until open ones end"
                );
            }
            drop(tcp);
            continue;
        };
        // Small JSON answers should leave at once, not wait on Nagle.
        let _ = tcp.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = Watched {
            inner: tcp,
            activity: activity.clone(),
        };
        let conn = Conn {
            app: app.clone(),
            remote,
            builder: builder.clone(),
            graceful: graceful.watcher(),
            state: state.clone(),
            header_read_timeout: limits.header_read_timeout,
            idle_timeout: limits.idle_timeout,
            activity,
        };
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            let _slot = slot;
            match acceptor {
                None => conn.serve(io).await,
                Some(acceptor) => {
                    if let Some(io) = conn.handshake(acceptor, io).await {
                        conn.serve(io).await;
                    }
                }
            }
        });
    }
    drop(listener);
    // Long polls would hold the grace period for up to their whole wait: answer them now.
    state.changes.close();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running at the end of the shutdown grace period");
        }
    }
    Ok(())
}

/// What one connection's task needs once accepted.
struct Conn {
    app: Router,
    remote: SocketAddr,
    builder: http1::Builder,
    graceful: Watcher,
    state: AppState,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    activity: Arc<Activity>,
}

impl Conn {
    /// The TLS handshake, bounded as a request's head is: by the header-read
    /// timeout however the bytes trickle, and by the idle timeout when none come.
    /// `None` when it failed or timed out (the socket is then closed).
    async fn handshake(
        &self,
        acceptor: TlsAcceptor,
        io: Watched,
    ) -> Option<tokio_rustls::server::TlsStream<Watched>> {
        // Pinned here, so the socket is dropped only after the branch ran (as below).
        let accept = tokio::time::timeout(self.header_read_timeout, acceptor.accept(io));
        let mut accept = std::pin::pin!(accept);
        tokio::select! {
            done = &mut accept => match done {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => {
                    self.state.metrics.connections_timed_out.inc();
                    None
                }
            },
            () = self.activity.idle_for(self.idle_timeout) => {
                self.state.metrics.connections_timed_out.inc();
                None
            }
        }
    }

    /// Serves HTTP/1 on `io` until the connection ends, times out or goes idle.
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (app, remote, activity) = (self.app, self.remote, self.activity.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            let handling = activity.begin_request();
            let app = app.clone();
            async move {
                let response = app.oneshot(req.map(axum::body::Body::new)).await;
                drop(handling);
                response
            }
        });
        let connection = self
            .graceful
            .watch(self.builder.serve_connection(TokioIo::new(io), service));
        // Pinned here, so it (and the socket) is dropped only after the branch ran:
        // the metric counts a timeout before the client can see the close.
        let mut connection = std::pin::pin!(connection);
        tokio::select! {
            result = &mut connection => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        self.state.metrics.connections_timed_out.inc();
                    }
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            }
            () = self.activity.idle_for(self.idle_timeout) => {
                self.state.metrics.connections_timed_out.inc();
            }
        }
    }
}

/// Answers that may leave the request's body unread (refused before the handler
/// read it: no route, wrong method, no credential, too large, wrong type, too
/// many tries) close their connection and say so. hyper cannot reuse a connection
/// with unread body bytes and closes it, but without `Connection: close` the
/// client may already have pooled it and send its next request into the closing
/// socket (a sync run's first single POST after the batch route's 404 failed so).
pub(crate) async fn close_if_body_unread(
    mut response: axum::response::Response,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    if matches!(
        response.status(),
        StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::TOO_MANY_REQUESTS
    ) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

struct Handling(Arc<Activity>);

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Relaxed);
        self.0.touch();
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Relaxed);
    }

    fn begin_request(self: &Arc<Self>) -> Handling {
        self.handling.fetch_add(1, Relaxed);
        Handling(self.clone())
    }

    /// Resolves once nothing has happened on the connection for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            let quiet_ms = self.now_ms().saturating_sub(self.last_ms.load(Relaxed));
            if self.handling.load(Relaxed) > 0 {
                // A handler's own work is bounded elsewhere (body timeout, PIN queue, writer).
                tokio::time::sleep(limit).await;
            } else if quiet_ms >= limit_ms {
                return;
            } else {
                tokio::time::sleep(Duration::from_millis(limit_ms - quiet_ms)).await;
            }
        }
    }
}

/// The TCP stream, noting every read or write that moved bytes.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
