//! Shows and their seats: creation (admin), listing, and the seat map.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};
use crate::status::SeatStatus;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Show {
    pub id: i64,
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub total_seats: i32,
    pub created_at: DateTime<Utc>,
    pub available_seats: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Seat {
    pub id: i64,
    pub seat_no: String,
    pub status: SeatStatus,
    pub version: i64,
}

/// The body of `POST /admin/shows`, as sent; [`NewShow::parse`] checks it.
#[derive(Debug, Deserialize)]
pub struct NewShowRequest {
    pub name: String,
    pub start_time: String,
    pub total_seats: i64,
}

/// A show that passed validation.
#[derive(Debug)]
pub struct NewShow {
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub total_seats: i32,
}

impl NewShow {
    pub fn parse(req: NewShowRequest, max_seats: i32) -> Result<NewShow> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Validation("name must be 1 to 200 characters".into()));
        }
        if name.contains('\0') {
            return Err(Error::Validation(
                "name must not contain NUL characters".into(),
            ));
        }
        let start_time = parse_time(&req.start_time).ok_or_else(|| {
            Error::Validation(format!(
                "start_time '{}' is not a date-time; use RFC 3339, e.g. 2026-12-31T20:00:00Z",
                req.start_time
            ))
        })?;
        if req.total_seats < 1 || req.total_seats > i64::from(max_seats) {
            return Err(Error::Validation(format!(
                "total_seats must be between 1 and {max_seats}"
            )));
        }
        Ok(NewShow {
            name: name.to_string(),
            start_time,
            total_seats: req.total_seats as i32,
        })
    }
}

/// RFC 3339, or a bare `YYYY-MM-DDTHH:MM[:SS]` (as the old service accepted), read as UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|t| t.and_utc())
}

/// Creates a show and its seats "1".."N" in the caller's transaction.
pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    start_time: DateTime<Utc>,
    total_seats: i32,
) -> Result<Show> {
    let show: Show = sqlx::query_as(
        "INSERT INTO shows (name, start_time, total_seats) VALUES ($1, $2, $3)
         RETURNING id, name, start_time, total_seats, created_at, total_seats::int8 AS available_seats",
    )
    .bind(name)
    .bind(start_time)
    .bind(total_seats)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO seats (show_id, seat_no, position)
         SELECT $1, g::text, g FROM generate_series(1, $2) AS g",
    )
    .bind(show.id)
    .bind(total_seats)
    .execute(&mut *conn)
    .await?;
    Ok(show)
}

pub async fn create(pool: &PgPool, new: NewShow) -> Result<Show> {
    let mut tx = pool.begin().await?;
    let show = insert(&mut tx, &new.name, new.start_time, new.total_seats).await?;
    tx.commit().await?;
    Ok(show)
}

const SHOW_COLUMNS: &str = "SELECT s.id, s.name, s.start_time, s.total_seats, s.created_at,
        (SELECT count(*) FROM seats WHERE show_id = s.id AND status = 'AVAILABLE') AS available_seats
     FROM shows s";

pub async fn list(pool: &PgPool) -> Result<Vec<Show>> {
    let sql = format!("{SHOW_COLUMNS} ORDER BY s.start_time, s.id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await?)
}

pub async fn get(pool: &PgPool, id: i64) -> Result<Show> {
    let sql = format!("{SHOW_COLUMNS} WHERE s.id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(Error::ShowNotFound(id))
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

/// The show's seats in numeric order; `ShowNotFound` if there is no such show.
pub async fn seats(pool: &PgPool, show_id: i64) -> Result<Vec<Seat>> {
    let seats: Vec<Seat> = sqlx::query_as(
        "SELECT id, seat_no, status, version FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    // Every show has at least one seat, so an empty list means no show.
    if seats.is_empty() {
        return Err(Error::ShowNotFound(show_id));
    }
    Ok(seats)
}
