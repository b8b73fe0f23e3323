//! One WebSocket session, in parts that cannot block each other:
//!
//! - the session task: a `select!` over the socket's incoming half, the write in
//!   flight, the show's hub channel, finished commands, snapshot reads, the ping
//!   timer and shutdown;
//! - command tasks: each command runs in a task of its own and commits or rolls
//!   back whether or not the client is reading;
//! - the [`Writer`]: a short queue of outgoing frames with one write in flight,
//!   driven by the session's `select!`, every write with a deadline
//!   (`WS_SEND_TIMEOUT_SECS`). A client that stops reading loses its session, and
//!   nothing else: no lock, no connection, no worker.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::SplitStream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SessionSlot;
use super::close;
use super::command::{self, Started};
use super::protocol;
use super::rate::RateLimiter;
use super::writer::{WriteEnd, Writer};
use crate::auth::{Auth, Buyer};
use crate::booking::Bookings;
use crate::error::Error;
use crate::hub::{self, Change, Event, Hub, SnapshotParts, View};

/// Commands of one session that may run at once; beyond that the session stops
/// reading until one finishes, which pushes back on the client through TCP.
const MAX_IN_FLIGHT: usize = 8;
/// How long a closing session waits for the client's Close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub ping_interval: Duration,
    pub idle_timeout: Duration,
    pub commands_per_sec: u32,
    pub send_timeout: Duration,
}

pub struct Session {
    pub show_id: i64,
    /// How buyers are identified, and the buyer the upgrade's `access_token`
    /// proved (an `auth` message may sign the session in later).
    pub auth: Auth,
    pub buyer: Option<Buyer>,
    pub hub: Hub,
    pub bookings: Bookings,
    pub limits: Limits,
    pub shutdown: watch::Receiver<bool>,
    pub slot: SessionSlot,
    /// What the session sends at the start and after a resync.
    pub view: View,
    /// The digest of the map the client already has (`have` on the upgrade): its
    /// first state then carries only what differs (docs/PROTOCOL.md, "Resuming").
    pub have: Option<Vec<i64>>,
}

/// Why a session ends.
enum SessionEnd {
    /// The client went away; nothing more to send.
    Gone,
    /// The client stopped reading: a write timed out.
    Stalled,
    /// We end the session with this close code.
    Close(u16, &'static str),
}

impl From<WriteEnd> for SessionEnd {
    fn from(end: WriteEnd) -> Self {
        match end {
            WriteEnd::Stalled => SessionEnd::Stalled,
            WriteEnd::Gone => SessionEnd::Gone,
        }
    }
}

type Step = Result<(), SessionEnd>;

impl Session {
    #[tracing::instrument(name = "session", skip_all, fields(show_id = self.show_id))]
    pub async fn run(self, socket: WebSocket) {
        let (sink, mut stream) = socket.split();
        let mut writer = Writer::new(sink, self.limits.send_timeout);
        let mut commands = JoinSet::new();
        let outcome = self.serve(&mut stream, &mut writer, &mut commands).await;
        // Commands that are still running finish in the database; only their
        // replies are lost with the session.
        commands.detach_all();
        match outcome {
            SessionEnd::Close(code, reason) => {
                if writer.close(code, reason).await {
                    // Read until the client's answering Close, so that the connection
                    // is not torn down under frames it has yet to read.
                    let drain = async {
                        while let Some(Ok(msg)) = stream.next().await
                            && !matches!(msg, Message::Close(_))
                        {}
                    };
                    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
                }
            }
            SessionEnd::Stalled => {
                tracing::info!("closing a session whose client stopped reading");
                writer.close_stalled().await;
            }
            SessionEnd::Gone => {}
        }
        drop(self.slot);
    }

    async fn serve(
        &self,
        stream: &mut SplitStream<WebSocket>,
        writer: &mut Writer,
        commands: &mut JoinSet<String>,
    ) -> SessionEnd {
        // Subscribe first, then read the snapshot: anything committed after the
        // snapshot's read is then in our channel (versions settle the overlap).
        let mut sub = self.hub.subscribe(self.show_id);
        let mut snapshot = Some(self.snapshot());
        let mut snapshot_again = false;
        // The first frame a client gets is a snapshot: changes wait in the channel
        // until it is out.
        let mut started = false;
        let mut limiter = RateLimiter::new(self.limits.commands_per_sec);
        let mut buyer = self.buyer.clone();
        let mut have = self.have.clone();
        let mut ping = tokio::time::interval(self.limits.ping_interval);
        ping.tick().await;
        let mut last_heard = Instant::now();
        let mut closing = false;
        // Armed when a snapshot could not be read (database down): try again then.
        let retry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(retry);
        let mut retry_armed = false;
        // Whether the outbox was full since the last change taken: a resync after
        // that is the slow client's doing ("slow_writer" in the metrics).
        let mut was_full = false;
        // Made once, not per loop: a fresh `changed()` future on every event would
        // register and drop a waiter on a channel that every session shares.
        let mut shutdown = self.shutdown.clone();
        let stopping = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);

        loop {
            if closing && commands.is_empty() {
                return SessionEnd::Close(close::GOING_AWAY, "server shutting down");
            }
            // While the client has not taken what is queued for it, the session takes
            // on nothing new to send: no new commands, replies or changes.
            let room = writer.has_room();
            was_full |= !room;
            let step: Step = tokio::select! {
                written = writer.progress(), if writer.is_writing() => written.map_err(SessionEnd::from),
                msg = stream.next(), if room && !closing && commands.len() < MAX_IN_FLIGHT => {
                    last_heard = Instant::now();
                    match msg {
                        Some(Ok(msg)) => self.receive(msg, &mut limiter, commands, writer, &mut buyer),
                        None => Err(SessionEnd::Gone),
                        Some(Err(e)) => Err(protocol_violation(&e)),
                    }
                }
                Some(done) = commands.join_next(), if room && !commands.is_empty() => {
                    match done {
                        Ok(reply) => writer.text(reply.into()),
                        Err(e) => tracing::error!(error = %e, "a session command failed"),
                    }
                    Ok(())
                }
                parts = async { snapshot.as_mut().expect("guarded").await }, if snapshot.is_some() => {
                    snapshot = None;
                    match parts {
                        Ok(parts) => {
                            started = true;
                            // Only the first state can be resumed: after that the
                            // client's map is no longer what its digest said.
                            let has = have.take();
                            let resumed = has.as_deref().and_then(|has| parts.resumed(has));
                            if has.is_some() {
                                let outcome = if resumed.is_some() { "resumed" } else { "everything" };
                                metrics::counter!(crate::monitoring::RESUMES, "outcome" => outcome).increment(1);
                            }
                            match resumed {
                                Some(frames) => frames.into_iter().for_each(|f| writer.text(f)),
                                // Parts are shared bytes: queueing them all costs pointers.
                                None => parts.parts.iter().for_each(|f| writer.text(f.clone())),
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a snapshot yet; retrying in 1 s");
                            retry.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(1));
                            retry_armed = true;
                        }
                    }
                    if std::mem::take(&mut snapshot_again) && !retry_armed {
                        snapshot = Some(self.snapshot());
                    }
                    Ok(())
                }
                event = sub.rx.recv(), if room && started => {
                    // Missed changes (a slow reader, or a LISTEN outage): start over from a snapshot.
                    let lag = if std::mem::take(&mut was_full) { "slow_writer" } else { "lag" };
                    let resync = match event {
                        Ok(Event::Changed(change)) => match catch_up(&mut sub.rx, &sub.merged, change) {
                            Pending::Frame(frame, at) => {
                                writer.change(frame, at);
                                None
                            }
                            Pending::Resync => Some(lag),
                        },
                        Ok(Event::Resync) => Some("listener_loss"),
                        Err(RecvError::Lagged(_)) => Some(lag),
                        Err(RecvError::Closed) => return SessionEnd::Close(close::INTERNAL, "hub closed"),
                    };
                    if let Some(cause) = resync {
                        metrics::counter!(crate::monitoring::RESYNCS, "cause" => cause).increment(1);
                        // A snapshot that is already being read may have started
                        // before what we missed: read another after it.
                        if snapshot.is_some() {
                            snapshot_again = true;
                        } else if !retry_armed {
                            snapshot = Some(self.snapshot());
                        }
                    }
                    Ok(())
                }
                _ = &mut retry, if retry_armed => {
                    retry_armed = false;
                    snapshot = Some(self.snapshot());
                    Ok(())
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() >= self.limits.idle_timeout {
                        Err(SessionEnd::Close(close::IDLE, "idle timeout"))
                    } else {
                        if room {
                            writer.push(Message::Ping(Bytes::new()));
                        }
                        Ok(())
                    }
                }
                _ = &mut stopping, if !closing => {
                    closing = true;
                    Ok(())
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Handles one frame from the client.
    fn receive(
        &self,
        msg: Message,
        limiter: &mut RateLimiter,
        commands: &mut JoinSet<String>,
        writer: &mut Writer,
        buyer: &mut Option<Buyer>,
    ) -> Step {
        match msg {
            Message::Text(text) => {
                let ctx = command::Context {
                    bookings: &self.bookings,
                    show_id: self.show_id,
                    commands_per_sec: self.limits.commands_per_sec,
                    auth: &self.auth,
                    buyer: buyer.as_ref(),
                    slot: &self.slot,
                };
                match command::start(&text, limiter, &ctx) {
                    Started::Running(task) => drop(commands.spawn(task)),
                    Started::Answered(reply) => writer.text(reply.into()),
                    Started::SignedIn(who, reply) => {
                        *buyer = Some(who);
                        writer.text(reply.into());
                    }
                }
                Ok(())
            }
            Message::Binary(_) => {
                let e = Error::Validation("binary frames are not supported; send JSON text".into());
                writer.text(protocol::error_json(None, &e).into());
                Ok(())
            }
            Message::Close(_) => Err(SessionEnd::Gone),
            // The WebSocket layer answers pings itself; they cost the same as a
            // command, so a ping flood is refused like a command flood.
            Message::Ping(_) | Message::Pong(_) => {
                if limiter.allow() {
                    Ok(())
                } else {
                    Err(SessionEnd::Close(close::POLICY, "too many control frames"))
                }
            }
        }
    }

    /// A snapshot read that started after this call (shared with other sessions
    /// asking at the same time).
    fn snapshot(&self) -> BoxFuture<'static, crate::error::Result<SnapshotParts>> {
        let (hub, show_id, view) = (self.hub.clone(), self.show_id, self.view);
        Box::pin(async move { hub.snapshot(show_id, view).await })
    }
}

/// What a session owes its client after taking everything waiting in its channel.
enum Pending {
    /// The frame, and when its oldest change was made.
    Frame(Utf8Bytes, Option<f64>),
    Resync,
}

/// Takes the changes already waiting behind `first`. One change is sent as the hub
/// serialized it; several (the session fell behind) are merged into one frame with
/// the newest version of each seat, rather than sent one by one.
fn catch_up(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    merged: &hub::MergeCache,
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
    let at = changes.iter().filter_map(|c| c.at).reduce(f64::min);
    if changes.len() == 1 {
        return Pending::Frame(changes[0].frame.clone(), at);
    }
    match merged.merge(&changes) {
        Ok(frame) => Pending::Frame(frame, at),
        Err(_) => Pending::Resync,
    }
}

/// The close code for a frame the WebSocket layer refused.
fn protocol_violation(e: &axum::Error) -> SessionEnd {
    use std::error::Error as _;
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.source().and_then(|s| s.downcast_ref::<WsError>()) {
        Some(WsError::Capacity(_)) => {
            SessionEnd::Close(close::TOO_BIG, "message larger than 64 KiB")
        }
        Some(WsError::Utf8(_)) => {
            SessionEnd::Close(close::INVALID_PAYLOAD, "text frame is not UTF-8")
        }
        Some(WsError::Protocol(_)) => {
            SessionEnd::Close(close::PROTOCOL_ERROR, "protocol violation")
        }
        _ => SessionEnd::Gone,
    }
}
