//! What a snapshot read produces: the frames every session of the show sends, and
//! the show's counts. Also the state view: the live state, compactly (`state`
//! frames: a status letter and a version per seat, by position in the layout), for
//! clients that have the layout from `GET /shows/:id/layout`, and the frames of a
//! resumed session, cut from the same read (see [`super::resume`]).

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use sqlx::PgPool;

use super::resume::{block_sums, missing};
use crate::error::{Error, Result};
use crate::onsale::{STATE_SQL, SalesState, Window};
use crate::status::SeatStatus;

/// A snapshot read, shared by every session that sends it.
pub type SnapshotParts = Arc<Frames>;

/// A snapshot's frames; for the state view also the state itself, from which the
/// frames of a resumed session are cut (see [`super::resume`]).
pub struct Frames {
    pub parts: Vec<Utf8Bytes>,
    state: Option<StateRead>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub(super) struct Counts {
    available: usize,
    reserved: usize,
    booked: usize,
    #[serde(skip_serializing_if = "is_zero")]
    blocked: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub(super) fn count(counts: &mut Counts, status: SeatStatus) {
    match status {
        SeatStatus::Available => counts.available += 1,
        SeatStatus::Reserved => counts.reserved += 1,
        SeatStatus::Booked => counts.booked += 1,
        SeatStatus::Blocked => counts.blocked += 1,
    }
}

/// Where the show's sale is, as the first part of a snapshot tells it.
#[derive(Serialize, Clone, Copy, sqlx::FromRow)]
pub(super) struct Sale {
    sales: SalesState,
    #[serde(flatten)]
    #[sqlx(flatten)]
    window: Window,
}

/// The show's sale window and state, by the database's clock.
pub(super) async fn read_sale(pool: &PgPool, show_id: i64) -> Result<Sale> {
    let sql = format!(
        "SELECT s.sales_open_at, s.sales_close_at, {STATE_SQL} AS sales FROM shows s WHERE s.id = $1"
    );
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(show_id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::ShowNotFound(show_id))
}

/// A state read, kept with its frames for the sessions that resume from it.
struct StateRead {
    show_id: i64,
    sale: Sale,
    counts: Counts,
    /// One status letter per seat, in hall order.
    letters: String,
    versions: Vec<i64>,
    /// The version sum of each resume block.
    sums: Vec<i64>,
}

impl Frames {
    /// Frames with nothing to resume from (full snapshots).
    pub(super) fn of(parts: Vec<Utf8Bytes>) -> Frames {
        Frames { parts, state: None }
    }

    /// The `state` frames for a client that already has a map whose digest is
    /// `has`: only the blocks that differ, or one empty part when none does. `None`
    /// when this read cannot tell (not a state read, or a digest of another shape):
    /// the client then gets `parts`, everything.
    pub fn resumed(&self, has: &[i64]) -> Option<Vec<Utf8Bytes>> {
        let state = self.state.as_ref()?;
        let mut ranges = missing(has, &state.sums, state.versions.len(), STATE_PART_SEATS)?;
        if ranges.is_empty() {
            // Still one frame: a client's map is complete after the last part.
            ranges.push(0..0);
        }
        let parts = ranges.len();
        ranges
            .into_iter()
            .enumerate()
            .map(|(i, seats)| {
                state_frame(&State {
                    r#type: "state",
                    show_id: state.show_id,
                    sale: (i == 0).then_some(state.sale),
                    counts: &state.counts,
                    part: i + 1,
                    parts,
                    offset: seats.start,
                    status: &state.letters[seats.clone()],
                    versions: &state.versions[seats],
                    resumed: true,
                })
            })
            .collect::<Result<Vec<_>>>()
            .ok()
    }
}

/// Most seats in one `state` part: one status letter and one version each, about
/// 6 KB of JSON (the same bound on what every session keeps as `PART_SEATS`).
const STATE_PART_SEATS: usize = 2000;

#[derive(Serialize)]
struct State<'a> {
    r#type: &'static str,
    show_id: i64,
    /// In the first part only.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    sale: Option<Sale>,
    counts: &'a Counts,
    part: usize,
    parts: usize,
    /// Position (0-based, in hall order) of the part's first seat.
    offset: usize,
    /// One letter per seat: A available, R reserved, B booked, X blocked.
    status: &'a str,
    versions: &'a [i64],
    /// Only the parts a resumed session lacked (`have` on the upgrade).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resumed: bool,
}

fn state_frame(frame: &State<'_>) -> Result<Utf8Bytes> {
    serde_json::to_string(frame)
        .map(Utf8Bytes::from)
        .map_err(|e| Error::Unexpected(e.into()))
}

/// The show's live state, compactly: what a client with the layout needs.
pub(super) async fn read_state(pool: &PgPool, show_id: i64) -> Result<SnapshotParts> {
    metrics::counter!(crate::monitoring::SNAPSHOT_READS, "view" => "state").increment(1);
    let sale = read_sale(pool, show_id).await?;
    let rows: Vec<(SeatStatus, i64)> = sqlx::query_as(
        "SELECT CASE WHEN blocked THEN 'BLOCKED' ELSE status END, version
         FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    let rows = crate::hall::seats_found(show_id, rows)?;
    let mut counts = Counts::default();
    for (status, _) in &rows {
        count(&mut counts, *status);
    }
    let letters: String = rows.iter().map(|(s, _)| letter(*s)).collect();
    let versions: Vec<i64> = rows.iter().map(|(_, v)| *v).collect();
    let parts = rows.len().div_ceil(STATE_PART_SEATS);
    let frames = (0..parts)
        .map(|i| {
            let seats = i * STATE_PART_SEATS..((i + 1) * STATE_PART_SEATS).min(rows.len());
            state_frame(&State {
                r#type: "state",
                show_id,
                sale: (i == 0).then_some(sale),
                counts: &counts,
                part: i + 1,
                parts,
                offset: seats.start,
                status: &letters[seats.clone()],
                versions: &versions[seats],
                resumed: false,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let sums = block_sums(&versions);
    Ok(Arc::new(Frames {
        parts: frames,
        state: Some(StateRead {
            show_id,
            sale,
            counts,
            letters,
            versions,
            sums,
        }),
    }))
}

fn letter(status: SeatStatus) -> char {
    match status {
        SeatStatus::Available => 'A',
        SeatStatus::Reserved => 'R',
        SeatStatus::Booked => 'B',
        SeatStatus::Blocked => 'X',
    }
}
