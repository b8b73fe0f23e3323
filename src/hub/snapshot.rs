//! Snapshots shared between the sessions of a show.
//!
//! When many sessions need a snapshot at once (thousands connecting at the start of
//! a sale, or all of them after the LISTEN connection came back), one query serves
//! all who asked before it started. A session never gets a snapshot read before it
//! asked: that is what makes "subscribe, then snapshot" safe.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::SeatState;
use crate::error::{Error, Result};

#[derive(Default)]
pub(super) struct SnapshotCell {
    /// Ticks once per request and once per query start, ordering the two.
    clock: AtomicU64,
    /// The latest snapshot and the tick at which its query started.
    last: Mutex<Option<(u64, Utf8Bytes)>>,
}

impl SnapshotCell {
    pub(super) async fn get(&self, pool: &PgPool, show_id: i64) -> Result<Utf8Bytes> {
        let asked = self.clock.fetch_add(1, Ordering::SeqCst);
        let mut last = self.last.lock().await;
        if let Some((started, frame)) = &*last
            && *started > asked
        {
            return Ok(frame.clone());
        }
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        let frame = read(pool, show_id).await?;
        *last = Some((started, frame.clone()));
        Ok(frame)
    }
}

#[derive(Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
struct Counts {
    available: usize,
    reserved: usize,
    booked: usize,
}

#[derive(Serialize)]
struct Snapshot<'a> {
    r#type: &'static str,
    show_id: i64,
    counts: Counts,
    seats: &'a [SeatState],
}

async fn read(pool: &PgPool, show_id: i64) -> Result<Utf8Bytes> {
    let seats: Vec<SeatState> = sqlx::query_as(
        "SELECT seat_no, status, version FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    if seats.is_empty() {
        return Err(Error::ShowNotFound(show_id));
    }
    let mut counts = Counts::default();
    for seat in &seats {
        match seat.status.as_str() {
            "AVAILABLE" => counts.available += 1,
            "RESERVED" => counts.reserved += 1,
            _ => counts.booked += 1,
        }
    }
    let frame = Snapshot {
        r#type: "snapshot",
        show_id,
        counts,
        seats: &seats,
    };
    let json = serde_json::to_string(&frame).map_err(|e| Error::Unexpected(e.into()))?;
    Ok(json.into())
}
