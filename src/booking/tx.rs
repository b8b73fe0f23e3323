//! The confirm, cancel and release transactions. Times come from the database
//! clock (`now()`, the transaction's start), so every instance agrees on them.

use sqlx::{PgConnection, PgPool};

use super::status;
use crate::error::{Error, Result};

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
