//! A proxy between boxoffice and PostgreSQL that can cut a connection at the worst
//! moment: around the `COMMIT` of a booking transaction.
//!
//! It listens on a Unix socket in a private directory of its own (mode 0700), as
//! the local cluster does, so that it opens no way in for other local accounts.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

use sqlx::postgres::PgConnectOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

const PASS: u8 = 0;
const CUT_AFTER: u8 = 1;
const CUT_BEFORE: u8 = 2;

pub struct FaultProxy {
    /// The database URL, through the proxy.
    pub url: String,
    dir: PathBuf,
    mode: Arc<AtomicU8>,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// Where the proxy forwards to: the server behind the URL it was given.
#[derive(Clone)]
enum Upstream {
    Tcp(String),
    Unix(PathBuf),
}

impl FaultProxy {
    /// A proxy in front of the database `url` names.
    pub async fn start(url: &str) -> FaultProxy {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let options: PgConnectOptions = url.parse().unwrap();
        let port = options.get_port();
        let upstream = match options.get_socket() {
            Some(dir) => Upstream::Unix(dir.join(format!(".s.PGSQL.{port}"))),
            None => Upstream::Tcp(format!("{}:{port}", options.get_host())),
        };
        let dir = PathBuf::from(format!(
            "/tmp/boxoffice-proxy-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let listener = UnixListener::bind(dir.join(format!(".s.PGSQL.{port}"))).unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let cuts = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (mode, cuts) = (mode.clone(), cuts.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let (mode, cuts) = (mode.clone(), cuts.clone());
                    match &upstream {
                        Upstream::Unix(path) => {
                            if let Ok(server) = UnixStream::connect(path).await {
                                tokio::spawn(relay(client, server, mode, cuts));
                            }
                        }
                        Upstream::Tcp(addr) => {
                            if let Ok(server) = TcpStream::connect(addr).await {
                                tokio::spawn(relay(client, server, mode, cuts));
                            }
                        }
                    }
                }
            }
        });
        FaultProxy {
            url: through(url, &dir, port),
            dir,
            mode,
            cuts,
            task,
        }
    }

    /// Cuts the connection of the next booking transaction right after (or, with
    /// `forward` false, instead of) forwarding its `COMMIT`.
    pub fn cut_next_booking_commit(&self, forward: bool) {
        let mode = if forward { CUT_AFTER } else { CUT_BEFORE };
        self.mode.store(mode, Ordering::SeqCst);
    }

    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `url` with its host and port replaced by the socket in `dir`: a host that
/// starts with `/` (encoded `%2F`) names a socket directory.
fn through(url: &str, dir: &Path, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let user = authority
        .rsplit_once('@')
        .map_or(String::new(), |(u, _)| format!("{u}@"));
    let host: String = dir
        .to_str()
        .expect("a UTF-8 path")
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{scheme}://{user}{host}:{port}{path}")
}

async fn relay<S>(client: UnixStream, server: S, mode: Arc<AtomicU8>, cuts: Arc<AtomicUsize>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = tokio::io::split(server);
    let down = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    let mut booking_seen = false;
    loop {
        let n = match client_rx.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        booking_seen |= contains(chunk, b"INSERT INTO bookings");
        if booking_seen && contains(chunk, b"COMMIT\0") {
            booking_seen = false;
            let armed = mode.swap(PASS, Ordering::SeqCst);
            if armed != PASS {
                if armed == CUT_AFTER {
                    let _ = server_tx.write_all(chunk).await;
                    let _ = server_tx.flush().await;
                }
                cuts.fetch_add(1, Ordering::SeqCst);
                // Both directions go: the client never hears how COMMIT ended.
                down.abort();
                return;
            }
        }
        if server_tx.write_all(chunk).await.is_err() {
            break;
        }
    }
    down.abort();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
