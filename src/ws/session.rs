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

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::SessionSlot;
use super::close;
use super::command::{self, Started};
use super::protocol;
use super::rate::RateLimiter;
use super::snapshots::Snapshots;
use super::waiting::{Coalesce, Happened, Joining, Seat};
use super::writer::{WriteEnd, Writer};
use crate::auth::{Auth, Buyer};
use crate::booking::Bookings;
use crate::config::WsSettings;
use crate::error::Error;
use crate::hub::{Change, Event, Hub, Subscription, View};

/// Commands of one session that may run at once; beyond that the session stops
/// reading until one finishes, which pushes back on the client through TCP.
const MAX_IN_FLIGHT: usize = 8;
/// How long a closing session waits for the client's Close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

pub struct Session {
    pub show_id: i64,
    /// How buyers are identified, and the buyer the upgrade's `access_token`
    /// proved (an `auth` message may sign the session in later).
    pub auth: Auth,
    pub buyer: Option<Buyer>,
    pub hub: Hub,
    pub bookings: Bookings,
    pub limits: WsSettings,
    pub shutdown: watch::Receiver<bool>,
    pub slot: SessionSlot,
    /// What the session sends at the start and after a resync.
    pub view: View,
    /// The digest of the map the client already has (`have` on the upgrade): its
    /// first state then carries only what differs (docs/PROTOCOL.md, "Resuming").
    pub have: Option<Vec<i64>>,
    /// The show's waiting room, when it has one: the session joins it.
    pub waiting: Option<Joining>,
    /// What checks an admission token sent with a `book`.
    pub keys: crate::onsale::Keys,
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

/// What a session's loop keeps from one turn to the next.
struct Running<'a> {
    sub: Subscription,
    snapshots: Snapshots<'a>,
    limiter: RateLimiter,
    /// The signed-in buyer: the upgrade's, or the last `auth` message's.
    buyer: Option<Buyer>,
    last_heard: Instant,
    /// Shutting down: reading no more, finishing the commands under way.
    closing: bool,
    /// Whether the outbox was full since the last change taken: a resync after
    /// that is the slow client's doing ("slow_writer" in the metrics).
    was_full: bool,
    /// The session's place in the show's waiting room, if it has one.
    seat: Option<Seat>,
    /// Which of the waiting room's progress frames reach the client.
    progress: Coalesce,
}

impl Session {
    #[tracing::instrument(name = "session", skip_all, fields(show_id = self.show_id))]
    pub async fn run(mut self, socket: WebSocket) {
        let (sink, mut stream) = socket.split();
        let mut writer = Writer::new(sink, self.limits.send_timeout);
        let mut commands = JoinSet::new();
        let seat = self
            .waiting
            .take()
            .map(|joining| Seat::new(joining, self.show_id));
        let outcome = self
            .serve(&mut stream, &mut writer, &mut commands, seat)
            .await;
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
        seat: Option<Seat>,
    ) -> SessionEnd {
        let mut running = self.start(seat);
        let mut ping = tokio::time::interval(self.limits.ping_interval);
        ping.tick().await;
        // Made once, not per loop: a fresh `changed()` future on every event would
        // register and drop a waiter on a channel that every session shares.
        let mut shutdown = self.shutdown.clone();
        let stopping = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stopping);
        loop {
            if running.closing && commands.is_empty() {
                return SessionEnd::Close(close::GOING_AWAY, "server shutting down");
            }
            // While the client has not taken what is queued for it, the session takes
            // on nothing new to send: no new commands, replies or changes.
            let room = writer.has_room();
            running.was_full |= !room;
            let reading = room && !running.closing && commands.len() < MAX_IN_FLIGHT;
            let changes = room && running.snapshots.takes_changes();
            let turn: Result<(), SessionEnd> = tokio::select! {
                written = writer.progress(), if writer.is_writing() => written.map_err(SessionEnd::from),
                msg = stream.next(), if reading => self.heard(msg, &mut running, commands, writer),
                Some(done) = commands.join_next(), if room && !commands.is_empty() => {
                    replied(done, writer);
                    Ok(())
                }
                ready = running.snapshots.ready() => {
                    running.snapshots.take(ready, writer);
                    Ok(())
                }
                event = running.sub.rx.recv(), if changes => running.changed(event, writer),
                // After the first snapshot: a session's first frame is its map.
                happened = seat_next(&mut running.seat), if changes => {
                    running.seat_did(happened, writer);
                    Ok(())
                }
                _ = ping.tick() => self.pinged(&running, room, writer),
                _ = &mut stopping, if !running.closing => {
                    running.closing = true;
                    Ok(())
                }
            };
            if let Err(end) = turn {
                return end;
            }
        }
    }

    /// Subscribes first, then owes the snapshot, so that anything committed after
    /// the snapshot's read is in the channel.
    fn start(&self, seat: Option<Seat>) -> Running<'_> {
        let sub = self.hub.subscribe(self.show_id);
        let snapshots = Snapshots::new(&self.hub, self.show_id, self.view, self.have.clone());
        Running {
            sub,
            snapshots,
            limiter: RateLimiter::new(self.limits.commands_per_sec),
            buyer: self.buyer.clone(),
            last_heard: Instant::now(),
            closing: false,
            was_full: false,
            seat,
            progress: Coalesce::default(),
        }
    }

    /// Handles what the socket's incoming half yielded.
    fn heard(
        &self,
        msg: Option<Result<Message, axum::Error>>,
        running: &mut Running<'_>,
        commands: &mut JoinSet<String>,
        writer: &mut Writer,
    ) -> Result<(), SessionEnd> {
        running.last_heard = Instant::now();
        match msg {
            Some(Ok(msg)) => self.receive(msg, running, commands, writer),
            None => Err(SessionEnd::Gone),
            Some(Err(e)) => Err(protocol_violation(&e)),
        }
    }

    /// Closes a session that has been silent too long, else pings its client.
    fn pinged(
        &self,
        running: &Running<'_>,
        room: bool,
        writer: &mut Writer,
    ) -> Result<(), SessionEnd> {
        if running.last_heard.elapsed() >= self.limits.idle_timeout {
            return Err(SessionEnd::Close(close::IDLE, "idle timeout"));
        }
        if room {
            writer.push(Message::Ping(Bytes::new()));
        }
        Ok(())
    }

    /// Handles one frame from the client.
    fn receive(
        &self,
        msg: Message,
        running: &mut Running<'_>,
        commands: &mut JoinSet<String>,
        writer: &mut Writer,
    ) -> Result<(), SessionEnd> {
        match msg {
            Message::Text(text) => {
                let ctx = command::Context {
                    bookings: &self.bookings,
                    show_id: self.show_id,
                    commands_per_sec: self.limits.commands_per_sec,
                    auth: &self.auth,
                    buyer: running.buyer.as_ref(),
                    slot: &self.slot,
                    admission: running.seat.as_ref().and_then(Seat::admission),
                    queue_buyer: running.seat.as_ref().and_then(Seat::buyer),
                    keys: &self.keys,
                };
                match command::start(&text, &mut running.limiter, &ctx) {
                    Started::Running(task) => drop(commands.spawn(task)),
                    Started::Answered(reply) => writer.text(reply.into()),
                    Started::SignedIn(who, reply) => {
                        if let Some(seat) = running.seat.as_mut() {
                            seat.signed_in(&who.id);
                        }
                        running.buyer = Some(who);
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
                if running.limiter.allow() {
                    Ok(())
                } else {
                    Err(SessionEnd::Close(close::POLICY, "too many control frames"))
                }
            }
        }
    }
}

impl Running<'_> {
    /// Sends a change on, or starts over from a snapshot when changes were missed
    /// (a slow reader, or a LISTEN outage).
    fn changed(
        &mut self,
        event: Result<Event, RecvError>,
        writer: &mut Writer,
    ) -> Result<(), SessionEnd> {
        let lag = if std::mem::take(&mut self.was_full) {
            "slow_writer"
        } else {
            "lag"
        };
        let cause = match event {
            Ok(Event::Changed(change)) => {
                let (caught, others) = catch_up(&mut self.sub, change);
                for other in others {
                    self.noticed(other, writer);
                }
                match caught {
                    CatchUp::Send(frame, at) => {
                        writer.change(frame, at);
                        return Ok(());
                    }
                    CatchUp::Resync => lag,
                }
            }
            Ok(other @ (Event::Notice(_) | Event::Queue(_))) => {
                self.noticed(other, writer);
                return Ok(());
            }
            Ok(Event::Resync) => "listener_loss",
            Err(RecvError::Lagged(_)) => lag,
            Err(RecvError::Closed) => return Err(SessionEnd::Close(close::INTERNAL, "hub closed")),
        };
        metrics::counter!(crate::monitoring::RESYNCS, "cause" => cause).increment(1);
        self.snapshots.missed();
        Ok(())
    }

    /// News about the show itself: passed on, and heard by the session's place.
    fn noticed(&mut self, event: Event, writer: &mut Writer) {
        match event {
            Event::Notice(frame) => writer.text(frame),
            Event::Queue(news) => {
                if self.progress.passes(&news) {
                    writer.text(news.frame.clone());
                }
                if let Some(seat) = self.seat.as_mut() {
                    seat.heard(&news);
                }
            }
            Event::Changed(_) | Event::Resync => {}
        }
    }

    /// The place's own business done: its frames go to the client.
    fn seat_did(&mut self, happened: Happened, writer: &mut Writer) {
        if let Some(seat) = self.seat.as_mut() {
            for frame in seat.handle(happened) {
                writer.text(frame.into());
            }
        }
    }
}

/// The session's place's next business; never, for a session without one.
async fn seat_next(seat: &mut Option<Seat>) -> Happened {
    match seat {
        Some(seat) => seat.next().await,
        None => std::future::pending().await,
    }
}

/// A finished command's reply goes to the client.
fn replied(done: Result<String, JoinError>, writer: &mut Writer) {
    match done {
        Ok(reply) => writer.text(reply.into()),
        Err(e) => tracing::error!(error = %e, "a session command failed"),
    }
}

/// What the changes waiting in a session's channel come to.
enum CatchUp {
    /// One frame, and when its oldest change was made.
    Send(Utf8Bytes, Option<f64>),
    /// Some were lost, or could not be merged: only a snapshot puts the map right.
    Resync,
}

/// Takes the changes already waiting behind `first`. One change is sent as the hub
/// serialized it; several (the session fell behind) are merged into one frame with
/// the newest version of each seat, rather than sent one by one. Notices met on the
/// way come back beside it, to be handled on their own (they say nothing about seats).
fn catch_up(sub: &mut Subscription, first: Arc<Change>) -> (CatchUp, Vec<Event>) {
    let mut changes = vec![first];
    let mut notices = Vec::new();
    loop {
        match sub.rx.try_recv() {
            Ok(Event::Changed(change)) => changes.push(change),
            Ok(other @ (Event::Notice(_) | Event::Queue(_))) => notices.push(other),
            Ok(Event::Resync) | Err(TryRecvError::Lagged(_)) => return (CatchUp::Resync, notices),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    let at = changes.iter().filter_map(|c| c.at).reduce(f64::min);
    if changes.len() == 1 {
        return (CatchUp::Send(changes[0].frame.clone(), at), notices);
    }
    let caught = match sub.merged.merge(&changes) {
        Ok(frame) => CatchUp::Send(frame, at),
        Err(_) => CatchUp::Resync,
    };
    (caught, notices)
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
