//! The confirm, cancel and release transactions. Times come from the database
//! clock (`now()`, the transaction's start), so every instance agrees on them.

use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::idempotency::{self, Keyed};
use super::model::{BookingDetails, Credential};
use super::{outcome, read};
use crate::error::{Error, Result};
use crate::status::BookingStatus;

/// The locked booking row, as confirm and cancel see it.
#[derive(sqlx::FromRow)]
struct LockedBooking {
    status: BookingStatus,
    past_deadline: bool,
    backend_pid: i32,
}

/// Whether `token` is booking `id`'s token, or `None` if there is no booking `id`.
/// Reads without locking.
pub(super) async fn token_matches<'c, E>(
    conn: E,
    id: i64,
    token: &str,
) -> sqlx::Result<Option<bool>>
where
    E: sqlx::PgExecutor<'c>,
{
    // Tokens are 64 hex digits; anything else cannot match, and is not sent to
    // the database (a NUL byte would make PostgreSQL refuse the query).
    let shaped = token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit());
    let token = if shaped { token } else { "" };
    sqlx::query_scalar(
        "SELECT token_hash = sha256(convert_to($2, 'UTF8')) FROM bookings WHERE id = $1",
    )
    .bind(id)
    .bind(token)
    .fetch_optional(conn)
    .await
}

/// Locks the booking for a caller entitled to it: the token's holder, or its
/// owner. Anyone else is refused before any lock is taken, so a stranger cannot pin
/// someone's booking; a signed-in stranger is told the booking does not exist.
async fn lock_booking(conn: &mut PgConnection, id: i64, who: &Credential) -> Result<LockedBooking> {
    let token = match who {
        Credential::Token(token) => token,
        Credential::Owner(buyer) => {
            let owner: Option<String> =
                sqlx::query_scalar("SELECT user_id FROM bookings WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
            if owner.as_deref() != Some(buyer.as_str()) {
                return Err(Error::BookingNotFound(id));
            }
            return lock_row(conn, id).await;
        }
    };
    match token_matches(&mut *conn, id, token).await? {
        None => return Err(Error::BookingNotFound(id)),
        Some(false) => {
            return Err(Error::Unauthorized(format!(
                "the token does not match booking {id}"
            )));
        }
        Some(true) => {}
    }
    // The token hash never changes, so the check above still holds under the lock.
    lock_row(conn, id).await
}

async fn lock_row(conn: &mut PgConnection, id: i64) -> Result<LockedBooking> {
    let booking = sqlx::query_as(
        "SELECT status, coalesce(expires_at <= now(), false) AS past_deadline,
                pg_backend_pid() AS backend_pid
         FROM bookings WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(booking)
}

/// What a holder of a booking's token can do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Confirm,
    Cancel,
}

impl StatusChange {
    pub fn name(self) -> &'static str {
        match self {
            StatusChange::Confirm => "confirm",
            StatusChange::Cancel => "cancel",
        }
    }
}

/// Confirms or cancels booking `id` in one transaction, and returns the booking as
/// it left it; with a key, that answer is remembered in the same transaction.
pub(super) async fn change_status(
    pool: &PgPool,
    change: StatusChange,
    id: i64,
    who: &Credential,
    keyed: Option<&Keyed>,
) -> Result<BookingDetails> {
    let mut tx = pool.begin().await?;
    let booking = lock_booking(&mut tx, id, who).await?;
    let goal = match (change, booking.status) {
        (_, BookingStatus::Pending) if booking.past_deadline => {
            release(&mut tx, &[id], BookingStatus::Expired).await?;
            tx.commit().await?;
            return Err(Error::BookingExpired(id));
        }
        (StatusChange::Confirm, BookingStatus::Pending) => {
            lock_seats_of(&mut tx, &[id]).await?;
            sqlx::query(
                "WITH b AS (UPDATE bookings SET status = 'CONFIRMED', expires_at = NULL, updated_at = now()
                            WHERE id = $1)
                 UPDATE seats SET status = 'BOOKED', version = version + 1 WHERE booking_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            BookingStatus::Confirmed
        }
        (StatusChange::Cancel, BookingStatus::Pending | BookingStatus::Confirmed) => {
            release(&mut tx, &[id], BookingStatus::Cancelled).await?;
            BookingStatus::Cancelled
        }
        (_, BookingStatus::Expired) => return Err(Error::BookingExpired(id)),
        (_, other) => {
            return Err(Error::BookingNotPending {
                id,
                status: other.to_string(),
            });
        }
    };
    let answer = read::details(&mut tx, id).await?;
    if let Some(keyed) = keyed {
        idempotency::remember(&mut tx, 200, &[(keyed, &answer)]).await?;
    }
    commit(tx, pool, booking.backend_pid, id, goal).await?;
    Ok(answer)
}

/// Commits a transaction meant to leave booking `id` in status `goal`. If the
/// connection broke during `COMMIT`, the outcome is found out, not guessed: once
/// the server process that ran it is gone, the booking's status says which.
async fn commit(
    tx: Transaction<'_, Postgres>,
    pool: &PgPool,
    backend_pid: i32,
    id: i64,
    goal: BookingStatus,
) -> Result<()> {
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(e @ sqlx::Error::Database(_)) => Err(e.into()),
        Err(cause) => {
            tracing::warn!(error = %cause, booking_id = id, "the connection broke during COMMIT; finding out what happened");
            outcome::settle(pool, backend_pid).await?;
            let status: BookingStatus =
                sqlx::query_scalar("SELECT status FROM bookings WHERE id = $1")
                    .bind(id)
                    .fetch_one(pool)
                    .await?;
            if status == goal {
                Ok(())
            } else {
                Err(Error::Unavailable(format!(
                    "the connection broke during COMMIT and booking {id} is still {status}: {cause}"
                )))
            }
        }
    }
}

/// Ends bookings whose rows the caller has locked (as EXPIRED or CANCELLED) and
/// frees their seats.
pub(crate) async fn release(
    conn: &mut PgConnection,
    ids: &[i64],
    new_status: BookingStatus,
) -> sqlx::Result<()> {
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
async fn lock_seats_of(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query("SELECT id FROM seats WHERE booking_id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
