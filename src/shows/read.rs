//! Reading shows: the list, one show (with its hall), its seats.

use sqlx::{PgConnection, PgPool};

use super::model::{Seat, Show, ShowWithHall};
use crate::error::{Error, Result};
use crate::hall;
use crate::onsale as sale;

fn show_columns() -> String {
    format!(
        "SELECT s.id, s.name, s.start_time, s.total_seats, s.created_at,
            (SELECT count(*) FROM seats WHERE show_id = s.id AND status = 'AVAILABLE' AND NOT blocked) AS available_seats,
            s.sales_open_at, s.sales_close_at, {} AS sales,
            (SELECT json_build_object('admit_per_minute', q.admit_per_minute, 'max_active', q.max_active,
                     'pre_queue_opens_at', q.pre_queue_opens_at, 'active_minutes', q.active_minutes,
                     'claim_secs', q.claim_secs, 'paused', q.paused)
             FROM show_queues q WHERE q.show_id = s.id) AS queue
         FROM shows s",
        sale::STATE_SQL
    )
}

pub async fn list(pool: &PgPool) -> Result<Vec<Show>> {
    let sql = format!("{} ORDER BY s.start_time, s.id", show_columns());
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Show> {
    fetch(&mut *pool.acquire().await?, id).await
}

pub(super) async fn fetch(conn: &mut PgConnection, id: i64) -> Result<Show> {
    let sql = format!("{} WHERE s.id = $1", show_columns());
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or(Error::ShowNotFound(id))
}

/// A show with its hall's outline, categories and prices.
pub async fn get_with_hall(pool: &PgPool, id: i64) -> Result<ShowWithHall> {
    let show = get(pool, id).await?;
    let hall = hall::outline(pool, id).await?;
    Ok(ShowWithHall { show, hall })
}

/// `ShowNotFound` unless the show exists.
pub async fn ensure_exists(pool: &PgPool, id: i64) -> Result<()> {
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM shows WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await?;
    if exists {
        Ok(())
    } else {
        Err(Error::ShowNotFound(id))
    }
}

/// The show's seats in hall order; `ShowNotFound` if there is no such show.
pub async fn seats(pool: &PgPool, show_id: i64) -> Result<Vec<Seat>> {
    let seats: Vec<Seat> = sqlx::query_as(
        "SELECT id, seat_no, CASE WHEN blocked THEN 'BLOCKED' ELSE status END AS status, version,
                section, row_label, number, category, x, y, accessible
         FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    hall::seats_found(show_id, seats)
}
