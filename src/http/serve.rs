//! The accept loop: hyper's HTTP/1 server with the limits `axum::serve` does not
//! offer. Headers must arrive within `HTTP_HEADER_TIMEOUT_SECS` (idle keep-alive
//! connections too, so slow-header and idle clients cannot pin connections), at
//! most `MAX_HTTP_CONNECTIONS` connections are served at once (more wait in the
//! listen backlog instead of exhausting file descriptors), and the bare 400 and
//! 431 answers hyper writes for malformed requests get a JSON body.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::error_bodies::ErrorBodies;

/// The kernel send buffer of every connection (Linux doubles the figure for its
/// bookkeeping). Left alone, Linux grows a connection's buffer up to 4 MB while
/// its client does not read: a session whose client stopped reading but answers
/// Pings then holds megabytes of unsent frames in the kernel, and its writes
/// never wait long enough for `WS_SEND_TIMEOUT_SECS` to notice. With this cap a
/// stalled client fills the buffer within a few frames, and is closed (4001).
/// 64 KiB still carries a 100 ms round trip at 5 Mbit/s.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Serves `router` until `shutdown` resolves, then waits for in-flight requests.
/// Upgraded connections (WebSocket sessions) live on outside this loop.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let connections = TaskTracker::new();
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to free.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small frames must leave at once: without TCP_NODELAY, Nagle's algorithm and
        // delayed ACKs hold each WebSocket reply back by about 40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER_BYTES) {
            tracing::debug!(error = %e, "cannot set SO_SNDBUF");
        }
        let service = service_for(router.clone(), remote);
        let conn = http
            .serve_connection(TokioIo::new(ErrorBodies::new(stream)), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    connections.close();
    connections.wait().await;
}

/// The router as a hyper service for one connection, which tells handlers who is
/// on the other end (`ConnectInfo`).
fn service_for(
    router: Router,
    remote: SocketAddr,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        router.clone().oneshot(req.map(axum::body::Body::new))
    })
}
