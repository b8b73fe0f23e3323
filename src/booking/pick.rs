//! Best-available inside the booking transaction: the database side of
//! `hall::best`. The pure picker decides; this reads which seats are free, locks
//! what it picked, and picks again if someone was faster.
//!
//! Pickers of one show take turns on a transaction-level advisory lock, so two
//! best-available batches (on any instance) never choose from the same picture of
//! the hall: the second reads the seats after the first has committed. Bookings of
//! named seats do not take that lock; one of them may take a picked seat between
//! the read and the row lock. The row lock shows it, and the ask is picked again
//! without that seat, so a best-available request never fails merely because
//! someone else was booking at the same moment.

use sqlx::PgConnection;

use crate::error::{Error, Result};
use crate::hall::{Ask, Hall};
use crate::status::SeatStatus;

/// Rounds of "pick, lock, check" before giving up (each lost round means another
/// booking took one of the picked seats in the few milliseconds between).
const ROUNDS: usize = 5;

/// Chooses seats for every ask (`None` for a booking of named seats, whose
/// `named` seats the picks avoid) and locks them. Returns each ask's seat ids.
pub(super) async fn choose(
    conn: &mut PgConnection,
    show_id: i64,
    hall: &Hall,
    asks: &[Option<&Ask>],
    named: &[&str],
) -> sqlx::Result<Vec<Option<Result<Vec<i64>>>>> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('best-available', $1))")
        .bind(show_id)
        .execute(&mut *conn)
        .await?;
    let taken: Vec<i32> = sqlx::query_scalar(
        "SELECT position FROM seats
         WHERE show_id = $1 AND (status <> 'AVAILABLE' OR seat_no = ANY($2))",
    )
    .bind(show_id)
    .bind(named)
    .fetch_all(&mut *conn)
    .await?;
    let mut free = vec![true; hall.len()];
    for position in taken {
        if let Some(f) = usize::try_from(position - 1)
            .ok()
            .and_then(|i| free.get_mut(i))
        {
            *f = false;
        }
    }
    let mut picked: Vec<Option<Result<Vec<usize>>>> = asks.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        let mut fresh = Vec::new();
        for (ask, answer) in asks.iter().zip(picked.iter_mut()) {
            if let (Some(ask), None) = (ask, &answer) {
                let result = hall.pick(&mut free, ask);
                if let Ok(seats) = &result {
                    fresh.extend(seats.iter().map(|&i| hall.id(i)));
                }
                *answer = Some(result);
            }
        }
        if fresh.is_empty() {
            break;
        }
        // The status is checked here, not in SQL: a condition on it could be tested
        // before the row lock is granted, on the row as it was before the wait.
        let locked: Vec<(i32, SeatStatus)> = sqlx::query_as(
            "SELECT position, status FROM seats WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&fresh)
        .fetch_all(&mut *conn)
        .await?;
        let lost: Vec<usize> = locked
            .into_iter()
            .filter(|(_, status)| *status != SeatStatus::Available)
            .map(|(p, _)| (p - 1) as usize)
            .collect();
        if lost.is_empty() {
            break;
        }
        // Asks that lost a seat give back the rest of theirs and pick again.
        for answer in picked.iter_mut() {
            if let Some(Ok(seats)) = answer
                && seats.iter().any(|i| lost.contains(i))
            {
                for i in seats.iter().filter(|i| !lost.contains(i)) {
                    free[*i] = true;
                }
                *answer = None;
            }
        }
    }
    Ok(asks
        .iter()
        .zip(picked)
        .map(|(ask, answer)| {
            let ask = (*ask)?;
            Some(match answer {
                Some(Ok(seats)) => Ok(seats.into_iter().map(|i| hall.id(i)).collect()),
                Some(Err(e)) => Err(e),
                // Out of rounds: the hall is changing faster than we can lock it.
                None => Err(Error::NoAdjacentSeats {
                    count: ask.count,
                    category: ask.category.clone(),
                }),
            })
        })
        .collect())
}
