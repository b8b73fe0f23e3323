//! What the hub hands out: changes to a show's seats, each with the one frame
//! every session sends for it.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::status::SeatStatus;

/// What a session receives from the hub.
#[derive(Debug, Clone)]
pub enum Event {
    /// A change, with its `seats_changed` frame serialized once for every session.
    Changed(Arc<Change>),
    /// Changes may have been lost (the LISTEN connection dropped): send a snapshot.
    Resync,
    /// News about the show itself (its sale opened, say): a frame to pass on as is.
    Notice(Utf8Bytes),
    /// Where the show's waiting room stands: a frame to pass on, and the numbers
    /// a waiting session needs to know whether it was let in.
    Queue(Arc<QueueNews>),
}

/// A waiting room's progress, as every session of the show hears it.
#[derive(Debug)]
pub struct QueueNews {
    /// The `queue_progress` frame.
    pub frame: Utf8Bytes,
    /// Every rank up to this one has been admitted.
    pub admitted_through: i64,
    /// Whether the pre-queue has been shuffled (ranks given out).
    pub shuffled: bool,
    /// Whether an admin has paused admissions.
    pub paused: bool,
}

/// One seat's new state, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct SeatState {
    pub seat_no: String,
    pub status: SeatStatus,
    pub version: i64,
}

/// One change to a show's seats: the seats, and the frame every session sends.
#[derive(Debug)]
pub struct Change {
    pub show_id: i64,
    /// Counts the show's changes on this instance, one by one: consecutive changes
    /// have consecutive numbers, so a first and a last name a run of them.
    pub seq: u64,
    pub seats: Vec<SeatState>,
    pub frame: Utf8Bytes,
    /// When the database statement that made it ran (Unix seconds), if it said.
    pub at: Option<f64>,
}

pub(super) fn seats_changed(show_id: i64, seats: &[SeatState]) -> Result<Utf8Bytes> {
    let frame = SeatsChanged {
        r#type: "seats_changed",
        show_id,
        seats,
    };
    let json =
        serde_json::to_string(&frame).map_err(|e| crate::error::Error::Unexpected(e.into()))?;
    Ok(json.into())
}

/// The `seats_changed` frame.
#[derive(Serialize)]
struct SeatsChanged<'a> {
    r#type: &'static str,
    show_id: i64,
    seats: &'a [SeatState],
}
