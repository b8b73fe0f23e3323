//! The outgoing half of a session: a short queue of frames and at most one write
//! in flight, which the session's `select!` drives alongside everything else. A
//! write never blocks the session, and every write has a deadline.
//!
//! (A writer task with a channel would do the same, at about 1.8 KiB more per
//! session: at 10,000 idle sessions that is 18 MB for nothing.)

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{Sink, SinkExt};
use tokio::time::{Instant, Sleep};

use super::close;

type WsSink = SplitSink<WebSocket, Message>;

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

/// The write in progress is driven by hand (`poll_ready`, `start_send`,
/// `poll_flush`) rather than as a boxed `send` future under a `timeout`: most
/// writes finish at the first try, and then cost no allocation and no timer. The
/// deadline is armed only when a write has to wait (a fan-out to 10,000 sessions
/// is 10,000 writes per change, so this is per delivered change).
pub(super) struct Writer {
    sink: WsSink,
    /// Frames to send, each with the time of the seat change it carries, if any.
    outbox: VecDeque<(Message, Option<f64>)>,
    /// The frame handed to the sink and not yet flushed: the time of its change.
    flushing: Option<Option<f64>>,
    /// The current write's deadline, made the first time a write has to wait.
    deadline: Option<Pin<Box<Sleep>>>,
    armed: bool,
    timeout: Duration,
    fanout_lag: metrics::Histogram,
}

impl Writer {
    pub(super) fn new(sink: WsSink, timeout: Duration) -> Writer {
        Writer {
            sink,
            outbox: VecDeque::new(),
            flushing: None,
            deadline: None,
            armed: false,
            timeout,
            fanout_lag: metrics::histogram!(crate::monitoring::FANOUT_LAG),
        }
    }

    /// Queues a frame; [`Writer::progress`] writes it.
    pub(super) fn push(&mut self, msg: Message) {
        self.outbox.push_back((msg, None));
    }

    /// Queues a `seats_changed` frame whose change the database made at `at` (Unix
    /// seconds); when it is written, the lag goes to the fan-out histogram.
    pub(super) fn change(&mut self, frame: Utf8Bytes, at: Option<f64>) {
        self.outbox.push_back((Message::Text(frame), at));
    }

    pub(super) fn text(&mut self, frame: Utf8Bytes) {
        self.push(Message::Text(frame));
    }

    /// Whether the session may take on more to send.
    pub(super) fn has_room(&self) -> bool {
        self.outbox.len() < OUTBOX
    }

    pub(super) fn is_writing(&self) -> bool {
        self.flushing.is_some() || !self.outbox.is_empty()
    }

    /// Writes the next frame (or finishes the one under way). Cancel-safe: the
    /// write's state lives in `self`, so a `select!` that drops this future loses
    /// nothing. Pends forever when nothing is queued.
    pub(super) async fn progress(&mut self) -> Result<(), WriteEnd> {
        if !self.is_writing() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| self.poll_write(cx)).await
    }

    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteEnd>> {
        let poll = self.poll_one(cx);
        match &poll {
            Poll::Pending => {
                let timeout = self.timeout;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if !self.armed {
                    deadline.as_mut().reset(Instant::now() + timeout);
                    self.armed = true;
                }
                if deadline.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(WriteEnd::Stalled));
                }
            }
            Poll::Ready(_) => self.armed = false,
        }
        poll
    }

    fn poll_one(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WriteEnd>> {
        if self.flushing.is_none() {
            ready!(Pin::new(&mut self.sink).poll_ready(cx)).map_err(|_| WriteEnd::Gone)?;
            let Some((msg, at)) = self.outbox.pop_front() else {
                return Poll::Ready(Ok(()));
            };
            Pin::new(&mut self.sink)
                .start_send(msg)
                .map_err(|_| WriteEnd::Gone)?;
            self.flushing = Some(at);
        }
        ready!(Pin::new(&mut self.sink).poll_flush(cx)).map_err(|_| WriteEnd::Gone)?;
        if let Some(Some(at)) = self.flushing.take() {
            self.fanout_lag.record(seconds_since(at));
        }
        Poll::Ready(Ok(()))
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
        let frame = close_frame(close::TOO_SLOW, "stopped reading");
        let _ = tokio::time::timeout(Duration::from_secs(1), self.sink.send(frame)).await;
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
