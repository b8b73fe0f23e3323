//! One WebSocket session: a small state machine in one task, driven by a single
//! `select!` over the socket, the show's hub channel, running commands, the ping
//! timer and shutdown.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;

use super::SessionSlot;
use super::protocol::{self, Command, Reply, RequestId};
use super::rate::RateLimiter;
use crate::booking::{BookRequestBody, Bookings};
use crate::error::Error;
use crate::hub::{self, Change, Event, Hub};

/// Commands of one session that may run at once; beyond that the session stops
/// reading until one finishes, which pushes back on the client through TCP.
const MAX_IN_FLIGHT: usize = 8;
/// How long a closing session waits for the client's Close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const IDLE: u16 = 4000;
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub commands_per_sec: u32,
}

pub struct Session {
    pub show_id: i64,
    pub hub: Hub,
    pub bookings: Bookings,
    pub limits: Limits,
    pub shutdown: watch::Receiver<bool>,
    pub slot: SessionSlot,
}

impl Session {
    #[tracing::instrument(name = "session", skip_all, fields(show_id = self.show_id))]
    pub async fn run(self, mut socket: WebSocket) {
        // Subscribe first, then read the snapshot: anything committed after the
        // snapshot's read is then in our channel (versions settle the overlap).
        let mut sub = self.hub.subscribe(self.show_id);
        if let Err(SessionEnd::Close(code, reason)) = self.send_snapshot(&mut socket).await {
            return close(socket, code, reason).await;
        }

        let mut in_flight: FuturesUnordered<BoxFuture<'static, String>> = FuturesUnordered::new();
        let mut limiter = RateLimiter::new(self.limits.commands_per_sec);
        let mut ping = tokio::time::interval(self.limits.ping_interval);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut closing = false;
        // Armed when a snapshot could not be read (database down): try again then.
        let retry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(retry);
        let mut retry_armed = false;
        // Made once, not per loop: a fresh `changed()` future on every event would
        // register and drop a waiter on a channel that every session shares.
        let mut shutdown = self.shutdown.clone();
        let stopping = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);

        let outcome: Result<(), SessionEnd> = loop {
            if closing && in_flight.is_empty() {
                break Err(SessionEnd::Close(close::GOING_AWAY, "server shutting down"));
            }
            let step = tokio::select! {
                msg = socket.recv(), if !closing && in_flight.len() < MAX_IN_FLIGHT => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Ok(Message::Text(text))) => {
                            match self.command(&text, &mut limiter) {
                                Ok(task) => { in_flight.push(task); Ok(()) }
                                Err(reply) => send(&mut socket, reply.into()).await,
                            }
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let e = Error::Validation("binary frames are not supported; send JSON text".into());
                            send(&mut socket, protocol::error_json(None, &e).into()).await
                        }
                        Some(Ok(Message::Close(_))) | None => Err(SessionEnd::Gone),
                        Some(Ok(_)) => Ok(()), // ping and pong: being heard is enough
                        Some(Err(e)) if is_too_big(&e) => Err(SessionEnd::Close(close::TOO_BIG, "message larger than 64 KiB")),
                        Some(Err(_)) => Err(SessionEnd::Gone),
                    }
                }
                Some(reply) = in_flight.next(), if !in_flight.is_empty() => send(&mut socket, reply.into()).await,
                event = sub.rx.recv() => match event {
                    Ok(Event::Changed(change)) => match catch_up(&mut sub.rx, change) {
                        Pending::Frame(frame) => send(&mut socket, frame).await,
                        Pending::Resync => self.resync(&mut socket, &mut retry_armed, retry.as_mut()).await,
                    },
                    // Missed changes (a slow reader, or a LISTEN outage): start over from a snapshot.
                    Ok(Event::Resync) | Err(RecvError::Lagged(_)) => {
                        self.resync(&mut socket, &mut retry_armed, retry.as_mut()).await
                    }
                    Err(RecvError::Closed) => Err(SessionEnd::Close(close::INTERNAL, "hub closed")),
                },
                _ = &mut retry, if retry_armed => {
                    self.resync(&mut socket, &mut retry_armed, retry.as_mut()).await
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.limits.idle_timeout {
                        Err(SessionEnd::Close(close::IDLE, "idle timeout"))
                    } else {
                        socket.send(Message::Ping(Bytes::new())).await.map_err(|_| SessionEnd::Gone)
                    }
                }
                _ = &mut stopping, if !closing => {
                    closing = true;
                    Ok(())
                }
            };
            if let Err(end) = step {
                break Err(end);
            }
        };

        if let Err(SessionEnd::Close(code, reason)) = outcome {
            close(socket, code, reason).await;
        }
        drop(self.slot);
    }

    /// Starts a command, or answers it at once (bad input, rate limit, ping).
    fn command(
        &self,
        text: &str,
        limiter: &mut RateLimiter,
    ) -> Result<BoxFuture<'static, String>, String> {
        let (request_id, parsed) = protocol::parse(text);
        if !limiter.allow() {
            return Err(protocol::error_json(
                request_id,
                &Error::RateLimited(self.limits.commands_per_sec),
            ));
        }
        let command = parsed.map_err(|e| protocol::error_json(request_id.clone(), &e))?;
        let bookings = self.bookings.clone();
        let show_id = self.show_id;
        let reply = |id: RequestId, result: Result<Reply, Error>| match result {
            Ok(reply) => reply.to_json(),
            Err(e) => protocol::error_json(id, &e),
        };
        Ok(match command {
            Command::Ping => return Err(Reply::Pong { request_id }.to_json()),
            Command::Book {
                seat_nos,
                user_id,
                immediate_confirm,
            } => Box::pin(async move {
                let body = BookRequestBody {
                    seat_nos,
                    user_id,
                    immediate_confirm,
                };
                let result = async {
                    let req = bookings.validate(body)?;
                    let booking = bookings.book(show_id, req).await?;
                    Ok(Reply::Booked {
                        request_id: request_id.clone(),
                        booking,
                    })
                };
                reply(request_id.clone(), result.await)
            }),
            Command::Confirm { booking_id, token } => Box::pin(async move {
                let result = bookings.confirm(booking_id, &token).await;
                let result = result.map(|booking| Reply::Confirmed {
                    request_id: request_id.clone(),
                    booking,
                });
                reply(request_id, result)
            }),
            Command::Cancel { booking_id, token } => Box::pin(async move {
                let result = bookings.cancel(booking_id, &token).await;
                let result = result.map(|booking| Reply::Cancelled {
                    request_id: request_id.clone(),
                    booking,
                });
                reply(request_id, result)
            }),
        })
    }

    async fn send_snapshot(&self, socket: &mut WebSocket) -> Result<(), SessionEnd> {
        let parts = self.hub.snapshot(self.show_id).await.map_err(|e| {
            e.log();
            SessionEnd::Close(close::INTERNAL, "cannot read the seat map")
        })?;
        send_parts(socket, &parts).await
    }

    /// Sends a fresh snapshot; if the database cannot give one, tries again in a second.
    async fn resync(
        &self,
        socket: &mut WebSocket,
        armed: &mut bool,
        retry: std::pin::Pin<&mut tokio::time::Sleep>,
    ) -> Result<(), SessionEnd> {
        *armed = false;
        match self.hub.snapshot(self.show_id).await {
            Ok(parts) => send_parts(socket, &parts).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot resynchronise a session yet");
                retry.reset(tokio::time::Instant::now() + Duration::from_secs(1));
                *armed = true;
                Ok(())
            }
        }
    }
}

/// What a session owes its client after taking everything waiting in its channel.
enum Pending {
    Frame(Utf8Bytes),
    Resync,
}

/// Takes the changes already waiting behind `first`. One change is sent as the hub
/// serialized it; several (the session fell behind) are merged into one frame with
/// the newest version of each seat, rather than sent one by one.
fn catch_up(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    first: std::sync::Arc<Change>,
) -> Pending {
    let mut changes = vec![first];
    loop {
        match rx.try_recv() {
            Ok(Event::Changed(change)) => changes.push(change),
            Ok(Event::Resync) | Err(TryRecvError::Lagged(_)) => return Pending::Resync,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    if changes.len() == 1 {
        return Pending::Frame(changes[0].frame.clone());
    }
    match hub::merge(&changes) {
        Ok(frame) => Pending::Frame(frame),
        Err(_) => Pending::Resync,
    }
}

enum SessionEnd {
    /// The client went away; nothing more to send.
    Gone,
    /// We end the session with this close code.
    Close(u16, &'static str),
}

/// Sends a Close frame, then waits briefly for the client's answering Close, so
/// that the TCP connection is not torn down under frames it has yet to read.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let drain = async {
        while let Some(Ok(msg)) = socket.recv().await
            && !matches!(msg, Message::Close(_))
        {}
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}

async fn send_parts(socket: &mut WebSocket, parts: &hub::Parts) -> Result<(), SessionEnd> {
    for part in parts.iter() {
        send(socket, part.clone()).await?;
    }
    Ok(())
}

async fn send(socket: &mut WebSocket, frame: Utf8Bytes) -> Result<(), SessionEnd> {
    socket
        .send(Message::Text(frame))
        .await
        .map_err(|_| SessionEnd::Gone)
}

fn is_too_big(e: &axum::Error) -> bool {
    use std::error::Error as _;
    use tokio_tungstenite::tungstenite::Error as WsError;
    matches!(
        e.source().and_then(|s| s.downcast_ref::<WsError>()),
        Some(WsError::Capacity(_))
    )
}
