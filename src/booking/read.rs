//! Reads of bookings, outside the transactions that change them.

use sqlx::{PgConnection, PgPool};

use super::model::{BookingDetails, BuyerBooking};
use crate::error::{Error, Result};
use crate::hall::Price;

/// A buyer's bookings, newest first (the latest 200).
pub(super) async fn of_buyer(pool: &PgPool, user_id: &str) -> Result<Vec<BuyerBooking>> {
    Ok(sqlx::query_as(
            "SELECT b.id, b.show_id, s.name AS show_name,
                    CASE WHEN b.status = 'PENDING' AND b.expires_at <= now() THEN 'EXPIRED' ELSE b.status END AS status,
                    array(SELECT st.seat_no FROM booking_seats bs JOIN seats st ON st.id = bs.seat_id
                          WHERE bs.booking_id = b.id ORDER BY st.position) AS seat_nos,
                    b.created_at, b.expires_at
             FROM bookings b JOIN shows s ON s.id = b.show_id
             WHERE b.user_id = $1
             ORDER BY b.id DESC LIMIT 200",
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?)
}

/// A booking and its seats, as `conn` sees them (inside a transaction: as it left them).
pub(super) async fn details(conn: &mut PgConnection, booking_id: i64) -> Result<BookingDetails> {
    let mut booking: BookingDetails = sqlx::query_as(
        "SELECT b.id, b.show_id, s.name AS show_name, b.user_id,
                CASE WHEN b.status = 'PENDING' AND b.expires_at <= now() THEN 'EXPIRED' ELSE b.status END AS status,
                b.created_at, b.expires_at,
                coalesce((SELECT c.currency FROM categories c WHERE c.show_id = b.show_id LIMIT 1), '') AS currency
         FROM bookings b JOIN shows s ON s.id = b.show_id
         WHERE b.id = $1",
    )
    .bind(booking_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::BookingNotFound(booking_id))?;
    booking.seats = sqlx::query_as(
        "SELECT s.seat_no, s.status, s.section, s.row_label, s.number, s.category, c.price::text AS price
         FROM booking_seats bs JOIN seats s ON s.id = bs.seat_id
              JOIN categories c ON c.show_id = s.show_id AND c.key = s.category
         WHERE bs.booking_id = $1 ORDER BY s.position",
    )
    .bind(booking_id)
    .fetch_all(&mut *conn)
    .await?;
    booking.total = Price::sum(booking.seats.iter().map(|s| &s.seat.price));
    Ok(booking)
}
