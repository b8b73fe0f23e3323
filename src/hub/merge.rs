//! Merged frames: what a session that fell behind sends instead of each change it
//! missed, and the cache that lets a show's sessions share one merge.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use super::change::{Change, SeatState, seats_changed};
use crate::error::Result;

/// The last run of changes some session merged, shared by a show's sessions:
/// sessions that fall behind together usually hold the same run, and one merge
/// then serves them all (a merge per session was a tenth of the server's CPU in a
/// flash sale).
#[derive(Debug, Default)]
pub struct MergeCache(std::sync::Mutex<Option<(u64, u64, Utf8Bytes)>>);

impl MergeCache {
    /// The merged frame of `changes` (a run of consecutive changes of one show).
    pub fn merge(&self, changes: &[Arc<Change>]) -> Result<Utf8Bytes> {
        let (Some(first), Some(last)) = (changes.first(), changes.last()) else {
            return merge(changes);
        };
        let run = (first.seq, last.seq);
        // Only a run with no gaps is named by its ends (a lagged session never
        // merges, it resyncs; this is a guard, not a case).
        if last.seq.checked_sub(first.seq) != Some(changes.len() as u64 - 1) {
            return merge(changes);
        }
        if let Ok(cached) = self.0.lock()
            && let Some((a, b, frame)) = &*cached
            && (*a, *b) == run
        {
            return Ok(frame.clone());
        }
        let frame = merge(changes)?;
        if let Ok(mut cached) = self.0.lock() {
            *cached = Some((run.0, run.1, frame.clone()));
        }
        Ok(frame)
    }
}

/// One `seats_changed` frame for several changes of a show, keeping the newest
/// version of each seat: what a session that fell behind sends instead of each.
fn merge(changes: &[Arc<Change>]) -> Result<Utf8Bytes> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut seats: Vec<&SeatState> = Vec::new();
    for seat in changes.iter().flat_map(|c| &c.seats) {
        match index.get(seat.seat_no.as_str()) {
            Some(&i) if seats[i].version >= seat.version => {}
            Some(&i) => seats[i] = seat,
            None => {
                index.insert(&seat.seat_no, seats.len());
                seats.push(seat);
            }
        }
    }
    let show_id = changes.first().map_or(0, |c| c.show_id);
    let seats: Vec<SeatState> = seats.into_iter().cloned().collect();
    seats_changed(show_id, &seats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(seq: u64, seats: &[(&str, &str, i64)]) -> Arc<Change> {
        let seats: Vec<SeatState> = seats
            .iter()
            .map(|(n, s, v)| SeatState {
                seat_no: n.to_string(),
                status: s.parse().unwrap(),
                version: *v,
            })
            .collect();
        Arc::new(Change {
            show_id: 3,
            seq,
            frame: seats_changed(3, &seats).unwrap(),
            seats,
            at: None,
        })
    }

    #[test]
    fn sessions_holding_the_same_run_share_one_merge() {
        let cache = MergeCache::default();
        let run = [
            change(4, &[("1", "RESERVED", 1)]),
            change(5, &[("2", "BOOKED", 1)]),
        ];
        let a = cache.merge(&run).unwrap();
        let b = cache.merge(&run).unwrap();
        assert!(
            std::ptr::eq(a.as_str(), b.as_str()),
            "the second session got the first's bytes"
        );
        let longer = [
            run[0].clone(),
            run[1].clone(),
            change(6, &[("1", "BOOKED", 2)]),
        ];
        let c = cache.merge(&longer).unwrap();
        assert_eq!(
            c.as_str(),
            r#"{"type":"seats_changed","show_id":3,"seats":[{"seat_no":"1","status":"BOOKED","version":2},{"seat_no":"2","status":"BOOKED","version":1}]}"#
        );
        let gap = [run[0].clone(), change(6, &[("1", "BOOKED", 2)])];
        assert_eq!(cache.merge(&gap).unwrap(), merge(&gap).unwrap());
    }

    #[test]
    fn merged_changes_keep_the_newest_version_of_each_seat() {
        let merged = merge(&[
            change(0, &[("1", "RESERVED", 1), ("2", "RESERVED", 1)]),
            change(1, &[("1", "BOOKED", 2)]),
            change(2, &[("2", "AVAILABLE", 2), ("3", "BOOKED", 1)]),
            change(3, &[("1", "RESERVED", 1)]), // a late duplicate of an older state
        ])
        .unwrap();
        assert_eq!(
            merged.as_str(),
            r#"{"type":"seats_changed","show_id":3,"seats":[{"seat_no":"1","status":"BOOKED","version":2},{"seat_no":"2","status":"AVAILABLE","version":2},{"seat_no":"3","status":"BOOKED","version":1}]}"#
        );
    }
}
