//! A show's seat numbers and their row ids, read once while the show's booking
//! queue lives (a show's seats never change once it exists).
//!
//! Bookings name seats by number, but the batch locks them by id: primary-key
//! lookups, which no planner statistics can turn into something else. Looked up
//! by `(show_id, seat_no)` with the other conditions of the lock, the planner
//! chose, whenever the statistics predated the show (any new show on a database
//! with an earlier sale), to walk the whole show's index and filter it, which is
//! hundreds of times slower on a large show (docs/BENCHMARKS.md, "What changed
//! in this round": seats locked by id).

use std::collections::HashMap;

use sqlx::PgPool;

use crate::error::{Error, Result};

pub(super) struct SeatIndex(HashMap<Box<str>, i64>);

impl SeatIndex {
    pub(super) async fn load(pool: &PgPool, show_id: i64) -> Result<SeatIndex> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT seat_no, id FROM seats WHERE show_id = $1")
                .bind(show_id)
                .fetch_all(pool)
                .await?;
        if rows.is_empty() {
            return Err(Error::ShowNotFound(show_id));
        }
        Ok(SeatIndex(
            rows.into_iter()
                .map(|(seat_no, id)| (seat_no.into_boxed_str(), id))
                .collect(),
        ))
    }

    /// The ids of the seats that exist among `seat_nos`; the others are simply not
    /// there, and the batch's decision calls them unknown.
    pub(super) fn ids<'a>(&self, seat_nos: impl IntoIterator<Item = &'a str>) -> Vec<i64> {
        seat_nos
            .into_iter()
            .filter_map(|n| self.0.get(n).copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_seat_numbers_have_no_id() {
        let index = SeatIndex([("A-1".into(), 10), ("A-2".into(), 11)].into());
        assert_eq!(index.ids(["A-2", "Z-9", "A-1"]), vec![11, 10]);
    }
}
