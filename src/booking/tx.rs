//! The booking transactions themselves. Times come from the database clock
//! (`now()`, the transaction's start), so every instance agrees on them.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{BookRequest, CreatedBooking, status};
use crate::error::{Error, Result};

#[derive(sqlx::FromRow)]
struct LockedSeat {
    id: i64,
    seat_no: String,
    status: String,
    booking_id: Option<i64>,
}

pub(super) async fn book(
    pool: &PgPool,
    show_id: i64,
    req: &BookRequest,
    hold_ttl: Duration,
    token: &str,
) -> Result<CreatedBooking> {
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
    .bind(&req.seat_nos)
    .fetch_all(&mut *tx)
    .await?;

    // One pass, in id order, over the requested seats and the stale holds' seats.
    let locked: Vec<LockedSeat> = sqlx::query_as(
        "SELECT id, seat_no, status, booking_id FROM seats
         WHERE show_id = $1 AND (seat_no = ANY($2) OR booking_id = ANY($3))
         ORDER BY id FOR UPDATE",
    )
    .bind(show_id)
    .bind(&req.seat_nos)
    .bind(&stale)
    .fetch_all(&mut *tx)
    .await?;

    let wanted: HashSet<&str> = req.seat_nos.iter().map(String::as_str).collect();
    let mine: Vec<&LockedSeat> = locked
        .iter()
        .filter(|s| wanted.contains(s.seat_no.as_str()))
        .collect();
    if mine.len() < req.seat_nos.len() {
        let found: HashSet<&str> = mine.iter().map(|s| s.seat_no.as_str()).collect();
        if mine.is_empty() {
            crate::shows::ensure_exists(pool, show_id).await?;
        }
        let seat_nos = req
            .seat_nos
            .iter()
            .filter(|s| !found.contains(s.as_str()))
            .cloned()
            .collect();
        return Err(Error::SeatsNotFound { seat_nos });
    }
    let taken: Vec<String> = mine
        .iter()
        .filter(|s| s.status != "AVAILABLE" && !s.booking_id.is_some_and(|b| stale.contains(&b)))
        .map(|s| s.seat_no.clone())
        .collect();
    if !taken.is_empty() {
        return Err(Error::SeatsUnavailable { seat_nos: taken });
    }
    if !stale.is_empty() {
        release(&mut tx, &stale, status::EXPIRED).await?;
    }

    let (booking_status, seat_status) = if req.immediate_confirm {
        (status::CONFIRMED, "BOOKED")
    } else {
        (status::PENDING, "RESERVED")
    };
    let seat_ids: Vec<i64> = mine.iter().map(|s| s.id).collect();
    // One statement writes the booking, its claims and the seats.
    let (id, created_at, expires_at): (i64, DateTime<Utc>, Option<DateTime<Utc>>) = sqlx::query_as(
        "WITH b AS (
             INSERT INTO bookings (show_id, user_id, status, token_hash, expires_at)
             VALUES ($1, $2, $3, sha256(convert_to($4, 'UTF8')),
                     CASE WHEN $3 = 'PENDING' THEN now() + make_interval(secs => $5) END)
             RETURNING id, created_at, expires_at
         ), claims AS (
             INSERT INTO booking_seats (booking_id, seat_id, live)
             SELECT b.id, unnest($6::int8[]), true FROM b
         ), seats_taken AS (
             UPDATE seats SET status = $7, booking_id = b.id, version = version + 1 FROM b WHERE seats.id = ANY($6)
         )
         SELECT id, created_at, expires_at FROM b",
    )
    .bind(show_id)
    .bind(&req.user_id)
    .bind(booking_status)
    .bind(token)
    .bind(hold_ttl.as_secs_f64())
    .bind(&seat_ids)
    .bind(seat_status)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    Ok(CreatedBooking {
        id,
        show_id,
        user_id: req.user_id.clone(),
        status: booking_status.to_string(),
        seat_nos: mine.iter().map(|s| s.seat_no.clone()).collect(),
        created_at,
        expires_at,
        token: token.to_string(),
    })
}

/// The locked booking row, as confirm and cancel see it.
#[derive(sqlx::FromRow)]
struct LockedBooking {
    status: String,
    past_deadline: bool,
    token_ok: bool,
}

async fn lock_booking(conn: &mut PgConnection, id: i64, token: &str) -> Result<LockedBooking> {
    let booking: LockedBooking = sqlx::query_as(
        "SELECT status, coalesce(expires_at <= now(), false) AS past_deadline,
                token_hash = sha256(convert_to($2, 'UTF8')) AS token_ok
         FROM bookings WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .bind(token)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::BookingNotFound(id))?;
    if !booking.token_ok {
        return Err(Error::Unauthorized(format!(
            "the token does not match booking {id}"
        )));
    }
    Ok(booking)
}

pub(super) async fn confirm(pool: &PgPool, id: i64, token: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let booking = lock_booking(&mut tx, id, token).await?;
    match booking.status.as_str() {
        status::PENDING if booking.past_deadline => {
            release(&mut tx, &[id], status::EXPIRED).await?;
            tx.commit().await?;
            Err(Error::BookingExpired(id))
        }
        status::PENDING => {
            lock_seats_of(&mut tx, &[id]).await?;
            sqlx::query(
                "WITH b AS (UPDATE bookings SET status = 'CONFIRMED', expires_at = NULL, updated_at = now()
                            WHERE id = $1)
                 UPDATE seats SET status = 'BOOKED', version = version + 1 WHERE booking_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }
        status::EXPIRED => Err(Error::BookingExpired(id)),
        other => Err(Error::BookingNotPending {
            id,
            status: other.to_string(),
        }),
    }
}

pub(super) async fn cancel(pool: &PgPool, id: i64, token: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    let booking = lock_booking(&mut tx, id, token).await?;
    let result = match booking.status.as_str() {
        status::PENDING if booking.past_deadline => {
            release(&mut tx, &[id], status::EXPIRED).await?;
            Err(Error::BookingExpired(id))
        }
        status::PENDING | status::CONFIRMED => release(&mut tx, &[id], status::CANCELLED).await,
        status::EXPIRED => Err(Error::BookingExpired(id)),
        other => Err(Error::BookingNotPending {
            id,
            status: other.to_string(),
        }),
    };
    tx.commit().await?;
    result
}

/// Ends bookings whose rows the caller has locked (as EXPIRED or CANCELLED) and
/// frees their seats.
pub(crate) async fn release(conn: &mut PgConnection, ids: &[i64], new_status: &str) -> Result<()> {
    lock_seats_of(conn, ids).await?;
    sqlx::query(
        "WITH b AS (UPDATE bookings SET status = $2, updated_at = now() WHERE id = ANY($1)),
              claims AS (UPDATE booking_seats SET live = false WHERE booking_id = ANY($1))
         UPDATE seats SET status = 'AVAILABLE', booking_id = NULL, version = version + 1 WHERE booking_id = ANY($1)",
    )
    .bind(ids)
    .bind(new_status)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Locks the seats of these bookings in id order (the global seat lock order).
async fn lock_seats_of(conn: &mut PgConnection, ids: &[i64]) -> Result<()> {
    sqlx::query("SELECT id FROM seats WHERE booking_id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
