//! The hub: hands every seat change to the sessions watching that show.
//!
//! PostgreSQL announces changes with NOTIFY (see the `seat_changes` migration); one
//! [`listener`] task per instance receives them and calls [`Hub::publish`], which
//! serializes each change once into a `seats_changed` frame and broadcasts the shared
//! bytes on the show's channel. Shows without sessions have no channel, so their
//! changes cost a parse and a map lookup. `merge` makes one frame of the changes a
//! lagging session missed (shared by the show's sessions); `snapshot` reads what a
//! session starts from, and [`resume`] what a returning client still lacks.

mod change;
mod frames;
pub mod listener;
mod merge;
pub mod resume;
mod snapshot;

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use dashmap::DashMap;
use serde::Deserialize;
use sqlx::PgPool;
use tokio::sync::broadcast;

use crate::error::Result;
use crate::status::SeatStatus;
use change::seats_changed;
pub use change::{Change, Event, QueueNews, SeatState};
pub use frames::SnapshotParts;
pub use merge::MergeCache;
use snapshot::SnapshotCell;
pub use snapshot::View;

/// How many events a show's channel keeps for a slow session before it lags (and
/// is resynchronised with a snapshot instead).
const CHANNEL_CAPACITY: usize = 256;

struct ShowChannel {
    tx: broadcast::Sender<Event>,
    /// The next change's `seq`.
    next_seq: std::sync::atomic::AtomicU64,
    merged: Arc<MergeCache>,
    snapshot: Arc<SnapshotCell>,
    state: Arc<SnapshotCell>,
    runs: Arc<SnapshotCell>,
    /// Live subscriptions. Counted here, under the map's shard lock, rather than
    /// read from the channel's receiver count: two last sessions leaving at once
    /// could each see the other's receiver and leave the channel behind forever.
    subscribers: usize,
}

/// Cheap to clone; one per process.
#[derive(Clone)]
pub struct Hub {
    shows: Arc<DashMap<i64, ShowChannel>>,
    pool: PgPool,
    /// Told of every change, for the pages built from a show's seats.
    stamps: crate::pages::Stamps,
    /// Whether the LISTEN connection is up (for readiness checks).
    listening: Arc<std::sync::atomic::AtomicBool>,
}

/// A session's subscription to a show. Dropping the last one removes the show's
/// channel from the hub.
pub struct Subscription {
    pub rx: broadcast::Receiver<Event>,
    /// Merges of this show's changes, shared with its other sessions.
    pub merged: Arc<MergeCache>,
    show_id: i64,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The entry lock is held from the decrement to the removal, so a concurrent
        // subscribe either counts itself first or makes a new channel after.
        if let dashmap::Entry::Occupied(mut entry) = self.hub.shows.entry(self.show_id) {
            let channel = entry.get_mut();
            channel.subscribers = channel.subscribers.saturating_sub(1);
            if channel.subscribers == 0 {
                entry.remove();
            }
        }
    }
}

/// The NOTIFY payload written by the `seats_notify` trigger.
#[derive(Deserialize)]
struct Notice {
    show_id: i64,
    #[serde(default)]
    at: Option<f64>,
    seats: Vec<(String, SeatStatus, i64)>,
}

impl Hub {
    pub fn new(pool: PgPool, stamps: crate::pages::Stamps) -> Hub {
        Hub {
            shows: Arc::new(DashMap::new()),
            pool,
            stamps,
            listening: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// Subscribes to a show's changes. Subscribe before reading a snapshot, so that
    /// nothing committed after the snapshot can be missed.
    pub fn subscribe(&self, show_id: i64) -> Subscription {
        let mut channel = self.shows.entry(show_id).or_insert_with(|| ShowChannel {
            tx: broadcast::channel(CHANNEL_CAPACITY).0,
            next_seq: std::sync::atomic::AtomicU64::new(0),
            merged: Arc::new(MergeCache::default()),
            snapshot: Arc::new(SnapshotCell::default()),
            state: Arc::new(SnapshotCell::default()),
            runs: Arc::new(SnapshotCell::default()),
            subscribers: 0,
        });
        channel.subscribers += 1;
        let rx = channel.tx.subscribe();
        let merged = channel.merged.clone();
        drop(channel);
        Subscription {
            rx,
            merged,
            show_id,
            hub: self.clone(),
        }
    }

    /// A `snapshot` frame of the show, read after this call began. Concurrent
    /// requests for one show share a query (see [`SnapshotCell`]).
    pub async fn snapshot(&self, show_id: i64, view: View) -> Result<SnapshotParts> {
        let cell = self.shows.get(&show_id).map(|ch| match view {
            View::Full => ch.snapshot.clone(),
            View::State => ch.state.clone(),
            View::StateRuns => ch.runs.clone(),
        });
        match cell {
            Some(cell) => cell.get(&self.pool, show_id, view).await,
            None => SnapshotCell::default().get(&self.pool, show_id, view).await,
        }
    }

    /// Handles one NOTIFY payload.
    pub fn publish(&self, payload: &str) {
        let notice: Notice = match serde_json::from_str(payload) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a malformed seat_changes payload");
                return;
            }
        };
        self.stamps.changed(notice.show_id);
        let Some(channel) = self.shows.get(&notice.show_id) else {
            return;
        };
        let seats: Vec<SeatState> = notice
            .seats
            .into_iter()
            .map(|(seat_no, status, version)| SeatState {
                seat_no,
                status,
                version,
            })
            .collect();
        match seats_changed(notice.show_id, &seats) {
            Ok(frame) => {
                let change = Change {
                    show_id: notice.show_id,
                    seq: channel
                        .next_seq
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    seats,
                    frame,
                    at: notice.at,
                };
                // Nobody listening is not an error: the last session may just have left.
                drop(channel.tx.send(Event::Changed(Arc::new(change))));
            }
            Err(e) => tracing::error!(error = %e, "cannot serialize seats_changed"),
        }
    }

    /// Marks the show's pages stale: something besides its seats changed.
    pub fn show_changed(&self, show_id: i64) {
        self.stamps.changed(show_id);
    }

    /// Hands a frame to every session of the show on this instance (none: nothing).
    pub fn announce(&self, show_id: i64, frame: Utf8Bytes) {
        self.stamps.changed(show_id);
        if let Some(channel) = self.shows.get(&show_id) {
            drop(channel.tx.send(Event::Notice(frame)));
        }
    }

    /// Hands a waiting room's progress to every session of the show here.
    pub fn announce_queue(&self, show_id: i64, news: QueueNews) {
        if let Some(channel) = self.shows.get(&show_id) {
            drop(channel.tx.send(Event::Queue(Arc::new(news))));
        }
    }

    /// Tells every session to resynchronise from a snapshot.
    pub fn resync_all(&self) {
        self.stamps.changed_all();
        for channel in self.shows.iter() {
            let _ = channel.tx.send(Event::Resync);
        }
    }

    /// Whether changes are being received (the LISTEN connection is up).
    pub fn is_listening(&self) -> bool {
        self.listening.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set_listening(&self, up: bool) {
        // Whichever way it went, changes may have been missed meanwhile.
        self.stamps.changed_all();
        self.listening
            .store(up, std::sync::atomic::Ordering::Release);
    }

    /// Shows that currently have sessions (for tests and metrics).
    pub fn watched_shows(&self) -> usize {
        self.shows.len()
    }

    /// The `n` shows with the most sessions, most first.
    pub fn busiest(&self, n: usize) -> Vec<(i64, usize)> {
        let mut all: Vec<(i64, usize)> = self
            .shows
            .iter()
            .map(|c| (*c.key(), c.subscribers))
            .collect();
        all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::PgPoolOptions;

    use super::*;

    fn hub() -> Hub {
        // These tests never touch the database; the pool only has to exist.
        Hub::new(
            PgPoolOptions::new()
                .connect_lazy("postgres://127.0.0.1:1/unused")
                .unwrap(),
            crate::pages::Stamps::default(),
        )
    }

    #[tokio::test]
    async fn a_show_leaves_the_hub_with_its_last_session() {
        let hub = hub();
        let (a, b) = (hub.subscribe(1), hub.subscribe(1));
        assert_eq!(hub.watched_shows(), 1);
        drop(a);
        assert_eq!(hub.watched_shows(), 1);
        drop(b);
        assert_eq!(hub.watched_shows(), 0, "an unwatched show costs nothing");
        hub.publish(r#"{"show_id": 1, "seats": [["1", "BOOKED", 1]]}"#);
        assert_eq!(hub.watched_shows(), 0, "a change to it creates nothing");
    }

    #[tokio::test]
    async fn a_change_is_serialized_once_and_the_bytes_shared() {
        let hub = hub();
        let (mut a, mut b, mut other) = (hub.subscribe(7), hub.subscribe(7), hub.subscribe(8));
        hub.publish("not json");
        hub.publish(r#"{"show_id": 7, "seats": [["12", "RESERVED", 4]]}"#);
        let (Ok(Event::Changed(x)), Ok(Event::Changed(y))) = (a.rx.try_recv(), b.rx.try_recv())
        else {
            panic!("both sessions get the change, and the malformed payload is dropped");
        };
        assert_eq!(
            x.frame.as_str(),
            r#"{"type":"seats_changed","show_id":7,"seats":[{"seat_no":"12","status":"RESERVED","version":4}]}"#
        );
        assert!(Arc::ptr_eq(&x, &y), "one change, serialized once, shared");
        assert!(other.rx.try_recv().is_err(), "other shows hear nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sessions_leaving_at_the_same_instant_leave_nothing_behind() {
        let hub = hub();
        for round in 0..200 {
            let subs: Vec<Subscription> = (0..8).map(|_| hub.subscribe(round)).collect();
            let barrier = Arc::new(std::sync::Barrier::new(subs.len()));
            let leaving: Vec<_> = subs
                .into_iter()
                .map(|sub| {
                    let barrier = barrier.clone();
                    tokio::task::spawn_blocking(move || {
                        barrier.wait();
                        drop(sub);
                    })
                })
                .collect();
            for task in leaving {
                task.await.unwrap();
            }
            assert_eq!(
                hub.watched_shows(),
                0,
                "round {round} left a channel behind"
            );
        }
    }
}
