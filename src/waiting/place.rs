//! Where a buyer stands, as the joiner and the REST answers tell it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::onsale::{PlaceState, Standing};

/// A buyer's place, as the database has it now.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Place {
    pub show_id: i64,
    pub state: PlaceState,
    /// The buyer's rank: 1 is let in first. Absent in the pre-queue, before the shuffle.
    pub rank: Option<i64>,
    /// The highest rank let in so far: a waiting buyer's position is `rank - admitted_through`.
    pub admitted_through: i64,
    #[serde(flatten)]
    pub standing: Standing,
    /// Until when an admitted buyer may hold and book.
    pub admitted_until: Option<DateTime<Utc>>,
}

/// A place from its row and the queue's watermark and pace.
pub(super) fn place(
    show_id: i64,
    state: PlaceState,
    rank: Option<i64>,
    admitted_until: Option<DateTime<Utc>>,
    admitted_through: i64,
    admit_per_minute: i32,
) -> Place {
    let standing = match state {
        PlaceState::Waiting => Standing::of(rank, admitted_through, admit_per_minute),
        _ => Standing {
            position: None,
            ahead: None,
            eta_secs: None,
        },
    };
    Place {
        show_id,
        state,
        rank,
        admitted_through,
        standing,
        admitted_until,
    }
}
