//! What a snapshot read produces: the frames every session of the show sends, and
//! the show's counts. Also the state view: the live state, compactly (`state`
//! frames: a status letter and a version per seat, by position in the layout), for
//! clients that have the layout from `GET /shows/:id/layout`, and the frames of a
//! resumed session, cut from the same read (see [`super::resume`]).

use std::ops::Range;
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
    /// Whether its frames carry runs (`status_runs`, `version_runs`).
    runs: bool,
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
        state_parts(state, ranges, true).ok()
    }
}

/// The `state` frames of these ranges of seats.
fn state_parts(
    state: &StateRead,
    ranges: Vec<Range<usize>>,
    resumed: bool,
) -> Result<Vec<Utf8Bytes>> {
    let parts = ranges.len();
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, seats)| {
            let (status, versions) = (
                &state.letters[seats.clone()],
                &state.versions[seats.clone()],
            );
            let encoded = if state.runs {
                Seats::Runs {
                    status_runs: status_runs(status),
                    version_runs: version_runs(versions),
                }
            } else {
                Seats::Plain { status, versions }
            };
            state_frame(&State {
                r#type: "state",
                show_id: state.show_id,
                sale: (i == 0).then_some(state.sale),
                counts: &state.counts,
                part: i + 1,
                parts,
                offset: seats.start,
                seats: encoded,
                resumed,
            })
        })
        .collect()
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
    #[serde(flatten)]
    seats: Seats<'a>,
    /// Only the parts a resumed session lacked (`have` on the upgrade).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resumed: bool,
}

/// A part's seats: a letter and a version each, or the same in runs.
#[derive(Serialize)]
#[serde(untagged)]
enum Seats<'a> {
    Plain {
        /// One letter per seat: A available, R reserved, B booked, X blocked.
        status: &'a str,
        versions: &'a [i64],
    },
    /// For clients that asked for runs (`runs=true`): `status_runs` is letters each
    /// followed by how many seats in a row have it ("A1998R1A1"), `version_runs`
    /// pairs of a version and how many seats in a row have it ([0, 1998, 1, 1, 0, 1]).
    /// A hall at the opening of its sale is a few bytes instead of 3 per seat.
    Runs {
        status_runs: String,
        version_runs: Vec<i64>,
    },
}

/// "AAAR" as "A3R1".
fn status_runs(letters: &str) -> String {
    let mut out = String::new();
    let mut chars = letters.chars().peekable();
    while let Some(c) = chars.next() {
        let mut n = 1;
        while chars.next_if_eq(&c).is_some() {
            n += 1;
        }
        out.push(c);
        out.push_str(&n.to_string());
    }
    out
}

/// [0, 0, 0, 1] as [0, 3, 1, 1].
fn version_runs(versions: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for &v in versions {
        match out.len() {
            n if n >= 2 && out[n - 2] == v => out[n - 1] += 1,
            _ => out.extend([v, 1]),
        }
    }
    out
}

fn state_frame(frame: &State<'_>) -> Result<Utf8Bytes> {
    serde_json::to_string(frame)
        .map(Utf8Bytes::from)
        .map_err(|e| Error::Unexpected(e.into()))
}

/// The show's live state, compactly: what a client with the layout needs; in runs
/// when `runs`.
pub(super) async fn read_state(pool: &PgPool, show_id: i64, runs: bool) -> Result<SnapshotParts> {
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
    let sums = block_sums(&versions);
    let state = StateRead {
        show_id,
        runs,
        sale,
        counts,
        letters,
        versions,
        sums,
    };
    let ranges = (0..rows.len().div_ceil(STATE_PART_SEATS))
        .map(|i| i * STATE_PART_SEATS..((i + 1) * STATE_PART_SEATS).min(rows.len()))
        .collect();
    Ok(Arc::new(Frames {
        parts: state_parts(&state, ranges, false)?,
        state: Some(state),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_say_the_same_in_fewer_bytes() {
        assert_eq!(status_runs("AAAARAA"), "A4R1A2");
        assert_eq!(status_runs(""), "");
        assert_eq!(status_runs("X"), "X1");
        assert_eq!(version_runs(&[0, 0, 0, 1, 0, 0]), [0, 3, 1, 1, 0, 2]);
        assert_eq!(version_runs(&[]), Vec::<i64>::new());
        let hall = "A".repeat(2000);
        assert_eq!(status_runs(&hall), "A2000");
        assert_eq!(version_runs(&[0; 2000]), [0, 2000]);
    }
}
