//! The accept loop: hyper's HTTP/1 server with the limits `axum::serve` does not
//! offer. Headers must arrive within `HTTP_HEADER_TIMEOUT_SECS` (idle keep-alive
//! connections too, so slow-header and idle clients cannot pin connections), at
//! most `MAX_HTTP_CONNECTIONS` connections are served at once (at the cap an idle
//! connection of a larger address gives way to a newcomer; a newcomer that may
//! displace nobody idle is refused at once with 503, and one that arrives while
//! every place is busy waits a moment for room: see `shed`), and the bare 400, 414 and 431 answers
//! hyper writes for malformed requests get a JSON body.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::error_bodies::ErrorBodies;
use super::shed::{Admission, Entry, Table};

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

/// Listeners on each of `addrs`, all on one port (the first's, when `port` is 0).
/// The first must bind. A later address this machine does not have (no IPv6,
/// say) is left out with a warning, since the first still serves; any other
/// failure is an error, because clients that reach the port through that address
/// would find another program. With port 0, a port taken on a later address is
/// tried again with a fresh one.
pub fn listen_on(addrs: &[IpAddr], port: u16, backlog: u32) -> std::io::Result<Vec<TcpListener>> {
    let mut tries = if port == 0 { 10 } else { 1 };
    loop {
        tries -= 1;
        match bind_all(addrs, port, backlog) {
            Err(e) if tries > 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            done => return done,
        }
    }
}

fn bind_all(addrs: &[IpAddr], port: u16, backlog: u32) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let port = match listeners.first() {
            Some(first) => first.local_addr()?.port(),
            None => port,
        };
        match listen(SocketAddr::new(*addr, port), backlog) {
            Ok(listener) => listeners.push(listener),
            Err(e) if !listeners.is_empty() && absent(&e) => {
                tracing::warn!(%addr, port, error = %e, "this machine has no such address; serving without it");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(listeners)
}

/// An address family or address this machine does not have.
fn absent(e: &std::io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    e.kind() == std::io::ErrorKind::AddrNotAvailable || e.raw_os_error() == Some(EAFNOSUPPORT)
}

/// The next connection on any of `listeners`, starting from a different one each
/// time, so that a busy one cannot keep another's clients waiting.
async fn accept(
    listeners: &[TcpListener],
    turn: &mut usize,
) -> std::io::Result<(TcpStream, SocketAddr)> {
    *turn = turn.wrapping_add(1);
    let first = *turn;
    std::future::poll_fn(|cx| {
        for i in 0..listeners.len() {
            let listener = &listeners[(first + i) % listeners.len()];
            if let std::task::Poll::Ready(accepted) = listener.poll_accept(cx) {
                return std::task::Poll::Ready(accepted);
            }
        }
        std::task::Poll::Pending
    })
    .await
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
    listeners: Vec<TcpListener>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = TaskTracker::new();
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let waiting_room = (limits.max_connections / 2).max(MIN_REFUSING);
    let server = Arc::new(Server {
        router,
        http,
        table: Table::with_header_timeout(limits.max_connections, limits.header_timeout),
        refusing: Arc::new(Semaphore::new(
            (limits.max_connections / 8).max(MIN_REFUSING),
        )),
        waiting: Arc::new(Semaphore::new(waiting_room)),
        waiting_from: dashmap::DashMap::new(),
        waiting_share: (waiting_room / 8).max(8),
        stopping,
    });
    // Accepting runs on a thread of its own (with a small runtime of its own), so
    // that the kernel's listen queue is drained even while every worker of the
    // main runtime is busy writing an on-sale's first states: a full queue drops
    // SYNs, and a dropped SYN costs its browser a second or more. Accepted
    // connections come over here to be served.
    let (accepted, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let acceptor = Acceptor {
        listeners: listeners
            .into_iter()
            .filter_map(|l| l.into_std().ok())
            .collect(),
        table: server.table.clone(),
        accepted,
        finished,
    };
    let thread = std::thread::Builder::new()
        .name("boxoffice-accept".into())
        .spawn(move || acceptor.run());
    if let Err(e) = &thread {
        tracing::error!(error = %e, "cannot start the accept thread");
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            arrival = arrivals.recv() => match arrival {
                Some((stream, remote, first)) => match TcpStream::from_std(stream) {
                    Ok(stream) => drop(connections.spawn(server.clone().handle(stream, remote, first))),
                    Err(e) => tracing::warn!(error = %e, "cannot take an accepted connection"),
                },
                None => break,
            },
            _ = &mut shutdown => break,
        }
    }
    let _ = done.send(());
    if let Ok(thread) = thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    // Connections accepted before the stop are served like any in flight.
    while let Ok((stream, remote, first)) = arrivals.try_recv() {
        if let Ok(stream) = TcpStream::from_std(stream) {
            connections.spawn(server.clone().handle(stream, remote, first));
        }
    }
    let _ = stop.send(true);
    connections.close();
    connections.wait().await;
}

/// An accepted connection, admitted to the table, on its way to be served.
type Arrival = (std::net::TcpStream, SocketAddr, Admission);

/// The accept loop, on its own thread.
struct Acceptor {
    listeners: Vec<std::net::TcpListener>,
    table: Arc<Table>,
    accepted: tokio::sync::mpsc::UnboundedSender<Arrival>,
    finished: tokio::sync::oneshot::Receiver<()>,
}

impl Acceptor {
    fn run(self) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => return tracing::error!(error = %e, "cannot start the accept runtime"),
        };
        runtime.block_on(self.accept_until_finished());
    }

    async fn accept_until_finished(self) {
        let Acceptor {
            listeners,
            table,
            accepted,
            mut finished,
        } = self;
        let listeners: Vec<TcpListener> = listeners
            .into_iter()
            .filter_map(|l| TcpListener::from_std(l).ok())
            .collect();
        let mut turn = 0;
        'accepting: loop {
            // Full, and nobody idle to give way: arrivals wait in the listen queue.
            while !table.may_accept() {
                tokio::select! {
                    _ = table.room() => {}
                    _ = tokio::time::sleep(ROOM_RECHECK) => {}
                    _ = &mut finished => break 'accepting,
                }
            }
            let (stream, remote) = tokio::select! {
                accepted = accept(&listeners, &mut turn) => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most likely: wait for some to free.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut finished => break 'accepting,
            };
            // Small frames must leave at once: without TCP_NODELAY, Nagle's algorithm
            // and delayed ACKs hold each WebSocket reply back by about 40 ms.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            if let Err(e) = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER_BYTES)
            {
                tracing::debug!(error = %e, "cannot set SO_SNDBUF");
            }
            // Admitted here, one by one, before the next accept: admitting later would
            // let the loop accept thousands more than there is room for.
            let first = table.admit(super::client::limit_key(remote.ip()));
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            if accepted.send((stream, remote, first)).is_err() {
                break;
            }
        }
    }
}

/// What every connection's task shares.
struct Server {
    router: Router,
    http: hyper::server::conn::http1::Builder,
    table: Arc<Table>,
    /// Connections being refused with an answer.
    refusing: Arc<Semaphore>,
    /// Connections waiting for room...
    waiting: Arc<Semaphore>,
    /// ...and per address, so that one address's arrivals cannot fill the
    /// waiting room (an eighth of it each).
    waiting_from: dashmap::DashMap<std::net::IpAddr, usize>,
    waiting_share: usize,
    stopping: watch::Receiver<bool>,
}

impl Server {
    /// Admits a connection (waiting for room if every place is busy or just
    /// taken), or refuses it; then serves it.
    async fn handle(self: Arc<Server>, stream: TcpStream, remote: SocketAddr, first: Admission) {
        let address = super::client::limit_key(remote.ip());
        let mut waited: Option<(tokio::time::Instant, Waiting<'_>)> = None;
        let mut admission = Some(first);
        let entry = loop {
            match admission
                .take()
                .unwrap_or_else(|| self.table.admit(address))
            {
                Admission::In(entry) => break entry,
                Admission::Refuse => return self.refuse(stream).await,
                Admission::Wait => {}
            }
            if waited.is_none() {
                let Some(place) = self.wait_place(address) else {
                    return self.refuse(stream).await;
                };
                waited = Some((tokio::time::Instant::now() + ROOM_WAIT, place));
            }
            let deadline = waited.as_ref().map(|(d, _)| *d).expect("set above");
            if tokio::time::Instant::now() >= deadline {
                return self.refuse(stream).await;
            }
            // A departure wakes one waiter; the check also repeats now and then,
            // since connections only become idle enough to give way with time.
            let _ = tokio::time::timeout(ROOM_RECHECK, self.table.room()).await;
        };
        drop(waited);
        let entry = Arc::new(entry);
        let service = service_for(self.router.clone(), remote, entry.clone());
        let conn = self
            .http
            .serve_connection(TokioIo::new(ErrorBodies::new(stream)), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut stopping = self.stopping.clone();
        let ended = tokio::select! {
            ended = conn.as_mut() => ended,
            // Finish the request in flight, if any, then close.
            _ = async { drop(stopping.wait_for(|s| *s).await) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
            // Told to make room: it is idle, so this closes at once; a request
            // that slipped in meanwhile gets a moment to finish.
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
    }

    /// A place in the waiting room, if there is one for this address.
    fn wait_place(&self, address: std::net::IpAddr) -> Option<Waiting<'_>> {
        let permit = self.waiting.clone().try_acquire_owned().ok()?;
        let mut mine = self.waiting_from.entry(address).or_insert(0);
        if *mine >= self.waiting_share {
            return None;
        }
        *mine += 1;
        Some(Waiting {
            server: self,
            address,
            _permit: permit,
        })
    }

    /// Refusing costs a descriptor for a moment; past that many at once, the
    /// connection is just closed.
    async fn refuse(&self, stream: TcpStream) {
        if let Ok(_permit) = self.refusing.clone().try_acquire_owned() {
            refuse(stream).await;
        }
    }
}

/// A connection's place in the waiting room.
struct Waiting<'s> {
    server: &'s Server,
    address: std::net::IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.server
            .waiting_from
            .remove_if_mut(&self.address, |_, n| {
                *n -= 1;
                *n == 0
            });
    }
}

/// How long a connection may wait for room before it is refused.
const ROOM_WAIT: Duration = Duration::from_secs(5);
/// How often a waiting connection looks again without a departure.
const ROOM_RECHECK: Duration = Duration::from_millis(250);

/// How long a connection told to make room may take to finish what it has.
const LEAVE_GRACE: Duration = Duration::from_secs(5);

/// Connections being refused at once, at most: an eighth of the cap, at least
/// this many (and up to half the cap waiting for room). Past that a connection
/// is closed without an answer; a crowd that reconnects at once would otherwise
/// spin the accept loop.
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
