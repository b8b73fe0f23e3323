//! Shows and their seats: creation (admin), listing, and the seat map.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::openapi::Object;

use crate::error::{Error, Result};
use crate::hall::{self, LayoutRequest, Plan, Price};
use crate::status::SeatStatus;
use crate::text::trimmed;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Show {
    pub id: i64,
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub total_seats: i32,
    pub created_at: DateTime<Utc>,
    pub available_seats: i64,
}

/// A seat: its live state (`status`, `version`) and its place in the hall.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Seat {
    pub id: i64,
    pub seat_no: String,
    pub status: SeatStatus,
    pub version: i64,
    pub section: String,
    #[sqlx(rename = "row_label")]
    pub row: String,
    pub number: String,
    pub category: String,
    pub x: i32,
    pub y: i32,
    /// Present (and `true`) only for wheelchair places.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub accessible: bool,
}

/// A show with how to draw its hall and what its seats cost (`GET /shows/:id`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShowWithHall {
    #[serde(flatten)]
    pub show: Show,
    #[serde(flatten)]
    pub hall: hall::HallOutline,
}

/// The body of `POST /admin/shows`, as sent; [`NewShow::parse`] checks it. A show
/// has either `total_seats` (seats "1".."N", one category at `price`) or a `layout`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewShowRequest {
    #[schema(schema_with = show_name)]
    pub name: String,
    /// RFC 3339; a bare `YYYY-MM-DDTHH:MM[:SS]` (read as UTC) is accepted too.
    #[schema(format = DateTime, example = "2025-12-31T20:00:00Z")]
    pub start_time: String,
    /// Seats "1".."N", at most `MAX_SEATS_PER_SHOW`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub total_seats: Option<i64>,
    /// The hall: categories, sections, rows (see the README's "Halls").
    #[serde(default)]
    pub layout: Option<LayoutRequest>,
    /// With `total_seats`: the price of every seat (default "0.00").
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{1,9}(\.[0-9]{1,3})?$")]
    pub price: Option<String>,
    /// With `total_seats`: the currency (default EUR).
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// A show that passed validation.
#[derive(Debug)]
pub struct NewShow {
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub plan: Plan,
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
        // Answers write times in RFC 3339, which has four-digit years: an offset
        // can push a time sent as 9999-12-31 past them once it is in UTC.
        if !(1..=9999).contains(&start_time.year()) {
            return Err(Error::Validation(format!(
                "start_time '{}' falls outside the years 0001 to 9999 in UTC",
                req.start_time
            )));
        }
        let plan = match (req.total_seats, req.layout) {
            (Some(_), Some(_)) => {
                return Err(Error::Validation(
                    "give either total_seats or a layout, not both".into(),
                ));
            }
            (None, None) => {
                return Err(Error::Validation(
                    "total_seats or a layout is required".into(),
                ));
            }
            (Some(n), None) => {
                if n < 1 || n > i64::from(max_seats) {
                    return Err(Error::Validation(format!(
                        "total_seats must be between 1 and {max_seats}"
                    )));
                }
                let price = match req.price.as_deref() {
                    Some(p) => p.parse().map_err(Error::Validation)?,
                    None => "0.00".parse::<Price>().map_err(Error::Validation)?,
                };
                let currency = req.currency.unwrap_or_else(|| "EUR".into());
                if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
                    return Err(Error::Validation(
                        "currency must be an ISO 4217 code such as EUR".into(),
                    ));
                }
                hall::layout::uniform(n as usize, price, &currency)
            }
            (None, Some(layout)) => {
                if req.price.is_some() || req.currency.is_some() {
                    return Err(Error::Validation(
                        "with a layout, prices and the currency belong to its categories".into(),
                    ));
                }
                layout.plan(max_seats as usize)?
            }
        };
        Ok(NewShow {
            name: name.to_string(),
            start_time,
            plan,
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

/// Creates a show and its seats in the caller's transaction.
pub async fn insert(
    conn: &mut PgConnection,
    name: &str,
    start_time: DateTime<Utc>,
    plan: &Plan,
) -> Result<Show> {
    let for_sale = plan.seats.iter().filter(|s| !s.blocked).count() as i64;
    let show: Show = sqlx::query_as(
        "INSERT INTO shows (name, start_time, total_seats) VALUES ($1, $2, $3)
         RETURNING id, name, start_time, total_seats, created_at, $4::int8 AS available_seats",
    )
    .bind(name)
    .bind(start_time)
    .bind(plan.seats.len() as i32)
    .bind(for_sale)
    .fetch_one(&mut *conn)
    .await?;
    hall::insert(conn, show.id, plan).await?;
    Ok(show)
}

pub async fn create(pool: &PgPool, new: NewShow) -> Result<Show> {
    let mut tx = pool.begin().await?;
    let show = insert(&mut tx, &new.name, new.start_time, &new.plan).await?;
    tx.commit().await?;
    Ok(show)
}

const SHOW_COLUMNS: &str = "SELECT s.id, s.name, s.start_time, s.total_seats, s.created_at,
        (SELECT count(*) FROM seats WHERE show_id = s.id AND status = 'AVAILABLE' AND NOT blocked) AS available_seats
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

/// A show's name: 1 to 200 characters once trimmed, none of them NUL.
pub fn show_name() -> Object {
    trimmed(200, false)
        .description(Some("1 to 200 characters once trimmed."))
        .examples([serde_json::json!("Rock Concert 2025")])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start_time: &str) -> NewShowRequest {
        serde_json::from_value(serde_json::json!({
            "name": "A show", "start_time": start_time, "total_seats": 10
        }))
        .unwrap()
    }

    #[test]
    fn a_start_time_outside_four_digit_years_in_utc_is_refused() {
        for far in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00"] {
            let refused = NewShow::parse(request(far), 100).err();
            assert!(
                matches!(&refused, Some(Error::Validation(m)) if m.contains("0001 to 9999")),
                "{far}: {refused:?}"
            );
        }
        assert!(NewShow::parse(request("9999-12-31T23:59:59Z"), 100).is_ok());
    }
}
