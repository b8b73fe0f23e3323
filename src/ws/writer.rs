//! The outgoing half of a session: a short queue of frames and at most one write
//! in flight, which the session's `select!` drives alongside everything else. A
//! write never blocks the session, and every write has a deadline.
//!
//! (A writer task with a channel would do the same, at about 1.8 KiB more per
//! session: at 10,000 idle sessions that is 18 MB for nothing.)

use std::collections::VecDeque;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::future::BoxFuture;
use futures_util::stream::SplitSink;

type Sink = SplitSink<WebSocket, Message>;

/// The write under way: it gives the sink back with the result, and the time of
/// the seat change the frame carried, if any.
type InFlight = BoxFuture<'static, (Sink, Result<(), WriteEnd>, Option<f64>)>;

/// Frames queued beyond the one being written. Small on purpose: it bounds a slow
/// session's memory to a few frames. A full queue makes the session stop taking
/// new work (reading, changes, replies) until the client catches up; meanwhile the
/// show's channel moves on, and the session catches up with a snapshot if needed.
const OUTBOX: usize = 16;

/// How a write failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum WriteEnd {
    /// The client took nothing for the whole send timeout: it stopped reading.
    Stalled,
    /// The connection is gone.
    Gone,
}

pub(super) struct Writer {
    /// Present while no write is in flight (the write owns it meanwhile).
    sink: Option<Sink>,
    in_flight: Option<InFlight>,
    /// Frames to send, each with the time of the seat change it carries, if any.
    outbox: VecDeque<(Message, Option<f64>)>,
    timeout: Duration,
}

impl Writer {
    pub(super) fn new(sink: Sink, timeout: Duration) -> Writer {
        Writer {
            sink: Some(sink),
            in_flight: None,
            outbox: VecDeque::new(),
            timeout,
        }
    }

    /// Queues a frame, and starts writing it if nothing else is being written.
    pub(super) fn push(&mut self, msg: Message) {
        self.outbox.push_back((msg, None));
        self.start();
    }

    /// Queues a `seats_changed` frame whose change the database made at `at` (Unix
    /// seconds); when it is written, the lag goes to the fan-out histogram.
    pub(super) fn change(&mut self, frame: Utf8Bytes, at: Option<f64>) {
        self.outbox.push_back((Message::Text(frame), at));
        self.start();
    }

    pub(super) fn text(&mut self, frame: Utf8Bytes) {
        self.push(Message::Text(frame));
    }

    /// Whether the session may take on more to send.
    pub(super) fn has_room(&self) -> bool {
        self.outbox.len() < OUTBOX
    }

    pub(super) fn is_writing(&self) -> bool {
        self.in_flight.is_some()
    }

    fn start(&mut self) {
        if self.in_flight.is_some() || self.outbox.is_empty() {
            return;
        }
        let (Some(mut sink), Some((msg, at))) = (self.sink.take(), self.outbox.pop_front()) else {
            return;
        };
        let timeout = self.timeout;
        self.in_flight = Some(Box::pin(async move {
            let result = match tokio::time::timeout(timeout, sink.send(msg)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(WriteEnd::Gone),
                Err(_) => Err(WriteEnd::Stalled),
            };
            (sink, result, at)
        }));
    }

    /// Waits for the write in flight, then starts the next. Cancel-safe: the
    /// write lives in `self`, so a `select!` that drops this future loses nothing.
    /// Pends forever when nothing is being written.
    pub(super) async fn progress(&mut self) -> Result<(), WriteEnd> {
        let Some(write) = self.in_flight.as_mut() else {
            return std::future::pending().await;
        };
        let (sink, result, at) = write.await;
        self.in_flight = None;
        self.sink = Some(sink);
        result?;
        if let Some(at) = at {
            metrics::histogram!(crate::monitoring::FANOUT_LAG).record(seconds_since(at));
        }
        self.start();
        Ok(())
    }

    /// Writes what is queued, then a Close frame. Returns whether the Close went
    /// out (and so whether the client's answering Close is worth waiting for).
    pub(super) async fn close(mut self, code: u16, reason: &'static str) -> bool {
        self.push(close_frame(code, reason));
        while self.is_writing() {
            if self.progress().await.is_err() {
                return false;
            }
        }
        true
    }

    /// Tells a client that stopped reading why it is being closed, if even that
    /// still gets through within a second.
    pub(super) async fn close_stalled(mut self) {
        if let Some(write) = self.in_flight.take() {
            // The stalled write has finished (it timed out): take the sink back.
            let (sink, _, _) = write.await;
            self.sink = Some(sink);
        }
        if let Some(mut sink) = self.sink.take() {
            let frame = close_frame(super::session::close::TOO_SLOW, "stopped reading");
            let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(frame)).await;
        }
    }
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Seconds from `at` (Unix seconds, the database's clock) to now (ours): the two
/// clocks must agree, as they do on one machine or under NTP.
fn seconds_since(at: f64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (now - at).max(0.0)
}
