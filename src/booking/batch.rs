//! The booking transaction, for one booking or for a batch of them.
//!
//! A batch is decided and written set-wise: one statement locks every seat the batch
//! asks for, the decisions are made here under those locks (first come, first
//! served, in queue order), and one statement writes all winning bookings, their
//! claims and their seats. A batch of one is the plain booking transaction; a batch
//! of fifty costs the database barely more than that, and commits (and announces its
//! changes with NOTIFY) once.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{BookRequest, CreatedBooking, status};
use crate::error::{Error, Result};

/// One booking of a batch: the request and the token it will get.
pub(super) struct Wanted<'a> {
    pub req: &'a BookRequest,
    pub token: &'a str,
}

#[derive(sqlx::FromRow)]
struct LockedSeat {
    id: i64,
    seat_no: String,
    status: String,
    booking_id: Option<i64>,
}

/// A booking row as written (rows come in the winners' order).
#[derive(sqlx::FromRow)]
struct Written {
    id: i64,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

/// Runs the batch in one transaction. The outer error is for the transaction as a
/// whole (the database failed); the inner ones are per booking (seats taken, ...).
pub(super) async fn book(
    pool: &PgPool,
    show_id: i64,
    batch: &[Wanted<'_>],
    hold_ttl: Duration,
) -> Result<Vec<Result<CreatedBooking>>> {
    let mut all_seats: Vec<&str> = batch
        .iter()
        .flat_map(|w| w.req.seat_nos.iter().map(String::as_str))
        .collect();
    all_seats.sort_unstable();
    all_seats.dedup();

    let mut tx = pool.begin().await?;
    // Holds past their deadline count as free even before the expiry worker runs.
    // Their booking rows are locked first, keeping the bookings-then-seats order.
    let stale: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM bookings
         WHERE id IN (SELECT booking_id FROM seats
                      WHERE show_id = $1 AND seat_no = ANY($2) AND status = 'RESERVED')
           AND status = 'PENDING' AND expires_at <= now()
         ORDER BY id FOR UPDATE",
    )
    .bind(show_id)
    .bind(&all_seats)
    .fetch_all(&mut *tx)
    .await?;

    // One pass, in id order, over the requested seats and the stale holds' seats.
    let locked: Vec<LockedSeat> = sqlx::query_as(
        "SELECT id, seat_no, status, booking_id FROM seats
         WHERE show_id = $1 AND (seat_no = ANY($2) OR booking_id = ANY($3))
         ORDER BY id FOR UPDATE",
    )
    .bind(show_id)
    .bind(&all_seats)
    .bind(&stale)
    .fetch_all(&mut *tx)
    .await?;

    let wanted: HashSet<&str> = all_seats.iter().copied().collect();
    let seats: HashMap<&str, &LockedSeat> = locked
        .iter()
        .filter(|s| wanted.contains(s.seat_no.as_str()))
        .map(|s| (s.seat_no.as_str(), s))
        .collect();
    if seats.is_empty() {
        crate::shows::ensure_exists(pool, show_id).await?;
    }
    let mut taken: HashSet<i64> = seats
        .values()
        .filter(|s| s.status != "AVAILABLE" && !s.booking_id.is_some_and(|b| stale.contains(&b)))
        .map(|s| s.id)
        .collect();

    // Decide in queue order; a seat won earlier in the batch is taken for later ones.
    let mut outcomes: Vec<Option<Error>> = Vec::with_capacity(batch.len());
    let mut winners: Vec<(usize, Vec<&LockedSeat>)> = Vec::new();
    for (i, w) in batch.iter().enumerate() {
        let missing: Vec<String> = w
            .req
            .seat_nos
            .iter()
            .filter(|n| !seats.contains_key(n.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            outcomes.push(Some(Error::SeatsNotFound { seat_nos: missing }));
            continue;
        }
        let mut mine: Vec<&LockedSeat> = w.req.seat_nos.iter().map(|n| seats[n.as_str()]).collect();
        mine.sort_by_key(|s| s.id);
        let unavailable: Vec<String> = mine
            .iter()
            .filter(|s| taken.contains(&s.id))
            .map(|s| s.seat_no.clone())
            .collect();
        if !unavailable.is_empty() {
            outcomes.push(Some(Error::SeatsUnavailable {
                seat_nos: unavailable,
            }));
            continue;
        }
        taken.extend(mine.iter().map(|s| s.id));
        outcomes.push(None);
        winners.push((i, mine));
    }
    if winners.is_empty() {
        // Nothing to write: the transaction rolls back and changes nothing.
        return Ok(outcomes
            .into_iter()
            .map(|e| Err(e.expect("every loser has an error")))
            .collect());
    }
    if !stale.is_empty() {
        super::release(&mut tx, &stale, status::EXPIRED).await?;
    }

    // Columns of the winning bookings (n = position among the winners), and of their seats.
    let mut user_ids = Vec::new();
    let mut statuses = Vec::new();
    let mut tokens = Vec::new();
    let (mut seat_owner, mut seat_ids) = (Vec::new(), Vec::new());
    for (n, (i, mine)) in winners.iter().enumerate() {
        let w = &batch[*i];
        user_ids.push(w.req.user_id.as_str());
        statuses.push(if w.req.immediate_confirm {
            status::CONFIRMED
        } else {
            status::PENDING
        });
        tokens.push(w.token);
        for seat in mine {
            seat_owner.push(n as i64 + 1);
            seat_ids.push(seat.id);
        }
    }
    // One statement writes every booking, claim and seat. Rows of `b` are matched back
    // to their requests through the token hash, which is unique.
    let written: Vec<Written> = sqlx::query_as(
        "WITH r AS (
             SELECT * FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(user_id, status, token, n)
         ), b AS (
             INSERT INTO bookings (show_id, user_id, status, token_hash, expires_at)
             SELECT $1, r.user_id, r.status, sha256(convert_to(r.token, 'UTF8')),
                    CASE WHEN r.status = 'PENDING' THEN now() + make_interval(secs => $5) END
             FROM r ORDER BY r.n
             RETURNING id, token_hash, created_at, expires_at, status
         ), bn AS (
             SELECT r.n, b.id, b.created_at, b.expires_at, b.status
             FROM b JOIN r ON b.token_hash = sha256(convert_to(r.token, 'UTF8'))
         ), s AS (
             SELECT * FROM unnest($6::int8[], $7::int8[]) AS s(n, seat_id)
         ), claims AS (
             INSERT INTO booking_seats (booking_id, seat_id, live)
             SELECT bn.id, s.seat_id, true FROM s JOIN bn USING (n)
         ), seats_taken AS (
             UPDATE seats
             SET status = CASE bn.status WHEN 'PENDING' THEN 'RESERVED' ELSE 'BOOKED' END,
                 booking_id = bn.id, version = seats.version + 1
             FROM s JOIN bn USING (n) WHERE seats.id = s.seat_id
         )
         SELECT id, created_at, expires_at FROM bn ORDER BY n",
    )
    .bind(show_id)
    .bind(&user_ids)
    .bind(&statuses)
    .bind(&tokens)
    .bind(hold_ttl.as_secs_f64())
    .bind(&seat_owner)
    .bind(&seat_ids)
    .fetch_all(&mut *tx)
    .await?;
    if written.len() != winners.len() {
        // Dropping the transaction rolls it back: nothing half-written is kept.
        return Err(Error::Unexpected(anyhow::anyhow!(
            "wrote {} of {} bookings in a batch",
            written.len(),
            winners.len()
        )));
    }
    tx.commit().await?;

    let mut won = winners.into_iter().zip(written).peekable();
    let results = outcomes
        .into_iter()
        .enumerate()
        .map(
            |(i, outcome)| match (outcome, won.next_if(|((w, _), _)| *w == i)) {
                (Some(error), _) => Err(error),
                (None, Some(((_, mine), row))) => {
                    let w = &batch[i];
                    Ok(CreatedBooking {
                        id: row.id,
                        show_id,
                        user_id: w.req.user_id.clone(),
                        status: if w.req.immediate_confirm {
                            status::CONFIRMED
                        } else {
                            status::PENDING
                        }
                        .to_string(),
                        seat_nos: mine.iter().map(|s| s.seat_no.clone()).collect(),
                        created_at: row.created_at,
                        expires_at: row.expires_at,
                        token: w.token.to_string(),
                    })
                }
                (None, None) => Err(Error::Unexpected(anyhow::anyhow!(
                    "a winning booking has no row"
                ))),
            },
        )
        .collect();
    Ok(results)
}
