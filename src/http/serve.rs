//! The accept loop: hyper's HTTP/1 server with the limits `axum::serve` does not
//! offer. Headers must arrive within `HTTP_HEADER_TIMEOUT_SECS` (idle keep-alive
//! connections too, so slow-header and idle clients cannot pin connections), at
//! most `MAX_HTTP_CONNECTIONS` connections are served at once (at the cap an idle
//! connection of a larger address gives way to a newcomer, or the newcomer is
//! refused at once with 503: see `shed`), and the bare 400, 414 and 431 answers
//! hyper writes for malformed requests get a JSON body.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::error_bodies::ErrorBodies;
use super::shed::{Entry, Table};

/// The kernel send buffer of every connection (Linux doubles the figure for its
/// bookkeeping). Left alone, Linux grows a connection's buffer up to 4 MB while
/// its client does not read: a session whose client stopped reading but answers
/// Pings then holds megabytes of unsent frames in the kernel, and its writes
/// never wait long enough for `WS_SEND_TIMEOUT_SECS` to notice. With this cap a
/// stalled client fills the buffer within a few frames, and is closed (4001).
/// 64 KiB still carries a 100 ms round trip at 5 Mbit/s.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// A listener whose backlog fits the crowd the caps allow: tokio's default of
/// 1,024 drops the SYNs of an on-sale's arrival storm, and a browser whose SYN is
/// dropped tries again only after 1, 3 and 7 s. The kernel cuts the backlog to
/// `net.core.somaxconn`; `app` warns when that is lower.
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The kernel's cap on listen backlogs, if it can be read.
pub fn somaxconn() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()?
        .trim()
        .parse()
        .ok()
}

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
    let table = Table::new(limits.max_connections);
    let refusals = Arc::new(tokio::sync::Semaphore::new(
        (limits.max_connections / 8).max(MIN_REFUSING),
    ));
    let connections = TaskTracker::new();
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
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
        let Some(entry) = table.admit(super::client::limit_key(remote.ip())) else {
            // Refusing costs a descriptor for a moment; past that many at once, the
            // connection is just closed.
            if let Ok(slot) = refusals.clone().try_acquire_owned() {
                connections.spawn(async move {
                    refuse(stream).await;
                    drop(slot);
                });
            }
            continue;
        };
        let entry = Arc::new(entry);
        let service = service_for(router.clone(), remote, entry.clone());
        let conn = http
            .serve_connection(TokioIo::new(ErrorBodies::new(stream)), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                // Finish the request in flight, if any, then close.
                _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
                // Told to make room: it is idle, so this closes at once; a
                // request that slipped in meanwhile gets a moment to finish.
                _ = entry.conn.leave.notified() => {
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(LEAVE_GRACE, conn).await {
                        Ok(ended) => ended,
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(entry);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    connections.close();
    connections.wait().await;
}

/// How long a connection told to make room may take to finish what it has.
const LEAVE_GRACE: Duration = Duration::from_secs(5);

/// Connections being refused at once, at most: an eighth of the cap, at least
/// this many. Past that a connection is closed without an answer; a crowd that
/// reconnects at once would otherwise spin the accept loop.
const MIN_REFUSING: usize = 64;
/// How long a refused connection may take to send its request's head.
const REFUSAL_HEAD_WAIT: Duration = Duration::from_millis(250);

/// A response body that keeps its connection counted busy until it ends.
struct Tracked {
    body: axum::body::Body,
    _busy: super::shed::Busy,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The answer to a connection that may not be served: its request's head is
/// read (briefly: a client sends it right after connecting), so that the 503
/// answers it rather than arriving unasked, and the connection is closed.
async fn refuse(mut stream: TcpStream) {
    use tokio::io::AsyncReadExt;
    let body = crate::error::Error::TooManyConnections.body();
    let body = serde_json::Value::Object(body).to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(REFUSAL_HEAD_WAIT, async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}

/// The router as a hyper service for one connection, which tells handlers who is
/// on the other end (`ConnectInfo`), and the connection table when a request is
/// in flight (a connection with one is never the one to give way).
fn service_for(
    router: Router,
    remote: SocketAddr,
    entry: Arc<Entry>,
) -> impl hyper::service::Service<
    hyper::Request<Incoming>,
    Response = axum::response::Response,
    Error = Infallible,
    Future = impl Send,
> + Clone {
    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(remote));
        let busy = entry.busy();
        let response = router.clone().oneshot(req.map(axum::body::Body::new));
        async move {
            // Busy until the body has gone out, not just the head: a connection
            // still sending a large seat map is not idle.
            let response = response.await?;
            Ok(response.map(|body| axum::body::Body::new(Tracked { body, _busy: busy })))
        }
    })
}
