//! Snapshots shared between the sessions of a show.
//!
//! When many sessions need a snapshot at once (thousands connecting at the start of
//! a sale, or all of them after the LISTEN connection came back), one query serves
//! all who asked before it started. A session never gets a snapshot read before it
//! asked: that is what makes "subscribe, then snapshot" safe.
//!
//! A snapshot goes out in parts of at most `PART_SEATS` seats. Each part is a
//! `snapshot` message that stands on its own (the version rule applies to it like
//! to any change). Parts are kept small because tungstenite keeps a socket's write
//! buffer as large as the largest frame it ever sent: every session sends a
//! snapshot, so the largest part is memory every idle session keeps for as long as
//! it stays open (about 3 KB here; a 100-seat snapshot in one frame would be 12 KB,
//! and each idle session would keep 9 KB more).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::frames::{Counts, Frames, Sale, SnapshotParts, count, read_sale};
use crate::error::{Error, Result};
use crate::shows::Seat;
use crate::status::SeatStatus;

#[derive(Default)]
pub(super) struct SnapshotCell {
    /// Ticks once per request and once per query start, ordering the two.
    clock: AtomicU64,
    /// The latest read (a snapshot, or why there is none) and the tick at which it
    /// started. Failures are shared too: with the database down, the sessions of a
    /// show that asked together hear so together, instead of one after another.
    last: Mutex<Option<(u64, Result<SnapshotParts>)>>,
}

/// Most seats in one part of a snapshot (about 3 KB of JSON: a seat with its place
/// takes about 115 bytes).
const PART_SEATS: usize = 25;

/// What a session asked to be sent at the start and after each resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Every seat with its place (`snapshot` frames): for clients that ask for
    /// nothing else.
    #[default]
    Full,
    /// Status and version only, by position (`state` frames): for clients that
    /// have the show's layout from `GET /shows/:id/layout`.
    State,
    /// The same, in runs of equal statuses and versions (`runs=true`).
    StateRuns,
}

impl SnapshotCell {
    pub(super) async fn get(
        &self,
        pool: &PgPool,
        show_id: i64,
        view: View,
    ) -> Result<SnapshotParts> {
        let asked = self.clock.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some((started, result)) = &*last
            && *started > asked
        {
            return copy(result);
        }
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        let result = match view {
            View::Full => read(pool, show_id).await,
            View::State => super::frames::read_state(pool, show_id, false).await,
            View::StateRuns => super::frames::read_state(pool, show_id, true).await,
        };
        let answer = copy(&result);
        *last = Some((started, result));
        answer
    }
}

fn copy(result: &Result<SnapshotParts>) -> Result<SnapshotParts> {
    result.as_ref().map(Arc::clone).map_err(Error::duplicate)
}

#[derive(Serialize)]
struct Snapshot<'a> {
    r#type: &'static str,
    show_id: i64,
    /// In the first part only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    sale: Option<Sale>,
    counts: &'a Counts,
    part: usize,
    parts: usize,
    seats: Vec<SnapshotSeat<'a>>,
}

/// A seat as snapshots carry it: the REST seat without its database id, which
/// clients have no use for (every byte of a part is kept per session, see above).
#[derive(Serialize)]
struct SnapshotSeat<'a> {
    seat_no: &'a str,
    status: SeatStatus,
    version: i64,
    section: &'a str,
    row: &'a str,
    number: &'a str,
    category: &'a str,
    x: i32,
    y: i32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    accessible: bool,
}

impl<'a> From<&'a Seat> for SnapshotSeat<'a> {
    fn from(s: &'a Seat) -> Self {
        SnapshotSeat {
            seat_no: &s.seat_no,
            status: s.status,
            version: s.version,
            section: &s.section,
            row: &s.row,
            number: &s.number,
            category: &s.category,
            x: s.x,
            y: s.y,
            accessible: s.accessible,
        }
    }
}

async fn read(pool: &PgPool, show_id: i64) -> Result<SnapshotParts> {
    metrics::counter!(crate::monitoring::SNAPSHOT_READS, "view" => "full").increment(1);
    let sale = read_sale(pool, show_id).await?;
    // The same read as `GET /shows/:id/seats`, and the same "no seats, no show" rule.
    let seats = crate::shows::seats(pool, show_id).await?;
    let mut counts = Counts::default();
    for seat in &seats {
        count(&mut counts, seat.status);
    }
    let parts = seats.len().div_ceil(PART_SEATS);
    let frames = seats
        .chunks(PART_SEATS)
        .enumerate()
        .map(|(i, chunk)| {
            let frame = Snapshot {
                r#type: "snapshot",
                show_id,
                sale: (i == 0).then_some(sale),
                counts: &counts,
                part: i + 1,
                parts,
                seats: chunk.iter().map(SnapshotSeat::from).collect(),
            };
            serde_json::to_string(&frame)
                .map(Utf8Bytes::from)
                .map_err(|e| Error::Unexpected(e.into()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Arc::new(Frames::of(frames)))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use sqlx::postgres::PgPoolOptions;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sessions_asking_together_share_a_failure_too() {
        // Nothing listens on port 1: every read fails after the acquire timeout.
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_millis(300))
            .connect_lazy("postgres://127.0.0.1:1/unused")
            .unwrap();
        let cell = Arc::new(SnapshotCell::default());
        let started = Instant::now();
        let asking: Vec<_> = (0..16)
            .map(|_| {
                let (cell, pool) = (cell.clone(), pool.clone());
                tokio::spawn(async move { cell.get(&pool, 1, View::Full).await })
            })
            .collect();
        for session in asking {
            assert!(session.await.unwrap().is_err());
        }
        // One after another they would take 16 x 300 ms.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
    }
}
