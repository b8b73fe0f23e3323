//! A TCP proxy between boxoffice and PostgreSQL that can cut a connection at the
//! worst moment: around the `COMMIT` of a booking transaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PASS: u8 = 0;
const CUT_AFTER: u8 = 1;
const CUT_BEFORE: u8 = 2;

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let cuts = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (mode, cuts) = (mode.clone(), cuts.clone());
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        tokio::spawn(relay(client, server, mode.clone(), cuts.clone()));
                    }
                }
            }
        });
        FaultProxy {
            addr,
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
    }
}

async fn relay(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>, cuts: Arc<AtomicUsize>) {
    let (mut client_rx, mut client_tx) = client.into_split();
    let (mut server_rx, mut server_tx) = server.into_split();
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
