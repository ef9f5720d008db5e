//! The accept loop: TLS (or plain) connections served by hyper's HTTP/1.1 + HTTP/2 builder, with a
//! graceful, bounded drain on shutdown.
//!
//! Draining follows hyper-util's `GracefulShutdown` (its `server-graceful` feature is not enabled
//! here, so the same few lines are written out): every connection task watches one channel; on
//! shutdown the listener is closed, each connection is told to finish its in-flight requests and
//! close, and whatever is still open at the deadline is aborted.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// Deadline for a client to complete the TLS handshake (kube-apiserver's own is 10 s).
pub(crate) const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for an HTTP/1.1 request's headers. In hyper it also bounds how long a keep-alive
/// connection may sit idle, so it is longer than the 90 s after which kube-apiserver's Go client
/// drops idle connections itself: a server that closes first races the client's next POST, which Go
/// does not retry, and the webhook call fails.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` over TLS on `listener` until `shutdown` completes, then drains.
///
/// Each accepted socket gets `TCP_NODELAY` and must finish the TLS handshake (versions and ALPN as
/// `tls` allows; see [`super::tls_config`]) within [`TLS_HANDSHAKE_TIMEOUT`]. ALPN `h2` is served
/// as HTTP/2, `http/1.1` as HTTP/1.1 with keep-alive, and a client without ALPN by protocol
/// detection. On shutdown the listener is closed at once (new connections are refused), in-flight
/// requests may finish for up to `drain_timeout`, idle connections are closed, and the rest is
/// aborted at the deadline. Returns when every connection is closed.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    run(
        listener,
        Some(TlsAcceptor::from(tls)),
        app,
        shutdown,
        drain_timeout,
    )
    .await;
}

/// Serves `app` over plain HTTP (HTTP/1.1, or HTTP/2 with prior knowledge) on `listener`, with the
/// same shutdown behaviour as [`serve`]. For the metrics and probe listener.
pub async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    run(listener, None, app, shutdown, drain_timeout).await;
}

/// Connection builders: one per ALPN outcome, configured once.
struct Builders {
    /// Detects the protocol from the first bytes (no ALPN, or plain HTTP).
    auto: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new() -> Self {
        Builders {
            auto: builder(),
            http1: builder().http1_only(),
            http2: builder().http2_only(),
        }
    }

    fn for_alpn(&self, alpn: Option<&[u8]>) -> &auto::Builder<TokioExecutor> {
        match alpn {
            Some(b"h2") => &self.http2,
            Some(b"http/1.1") => &self.http1,
            _ => &self.auto,
        }
    }
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    b.http2().timer(TokioTimer::new());
    b
}

async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) {
    let builders = Arc::new(Builders::new());
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections so the set stays the size of the open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    if let Err(error) = tcp.set_nodelay(true) {
                        tracing::debug!(%error, %peer, "cannot set TCP_NODELAY");
                    }
                    connections.spawn(connection(
                        tcp,
                        peer,
                        tls.clone(),
                        app.clone(),
                        Arc::clone(&builders),
                        drain_rx.clone(),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
        }
    }

    // Stop accepting: new connections are refused from here on.
    drop(listener);
    let open = connections.len();
    tracing::info!(open, ?drain_timeout, "shutting down: draining connections");
    // Receivers only ever see `true` after this; a send error means no connection is left.
    let _ = drain_tx.send(true);
    let drained = tokio::time::timeout(drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "drain deadline passed; closing the remaining connections"
        );
        connections.shutdown().await;
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    builders: Arc<Builders>,
    drain: watch::Receiver<bool>,
) {
    let Some(acceptor) = tls else {
        return drive(TokioIo::new(tcp), &builders.auto, app, drain, peer).await;
    };
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, %peer, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let builder = builders.for_alpn(stream.get_ref().1.alpn_protocol());
    drive(TokioIo::new(stream), builder, app, drain, peer).await;
}

async fn drive<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    app: Router,
    mut drain: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let mut conn = pin!(builder.serve_connection(io, TowerToHyperService::new(app)));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        // Also completes at once if the drain began during the handshake, or if the server is gone.
        () = async {
            // An error means the server is gone: drain as well.
            let _ = drain.wait_for(|draining| *draining).await;
        } => {
            // Finish the requests in flight, then close (HTTP/1.1: `Connection: close` after the
            // current response, or at once when idle; HTTP/2: GOAWAY).
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_protocol_from_alpn() {
        let b = Builders::new();
        assert!(!b.for_alpn(Some(b"http/1.1")).is_http2_available());
        assert!(b.for_alpn(Some(b"http/1.1")).is_http1_available());
        assert!(!b.for_alpn(Some(b"h2")).is_http1_available());
        assert!(b.for_alpn(None).is_http1_available());
        assert!(b.for_alpn(None).is_http2_available());
    }
}
