//! Creating a show (`POST /admin/shows`): the request, its checks, the insert.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};

use super::model::{Show, ShowQueue, checked_name, show_name};
use super::news::{set_queue, tell_window};
use crate::error::{Error, Result};
use crate::hall::{self, LayoutRequest, Plan, Price};
use crate::onsale::{self as sale, QueueRequest, QueueSettings, Window};

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
    /// RFC 3339: holds and bookings are refused before it (`SALE_NOT_OPEN`).
    #[serde(default)]
    #[schema(format = DateTime, example = "2025-12-01T10:00:00Z")]
    pub sales_open_at: Option<String>,
    /// RFC 3339, after `sales_open_at`: holds and bookings are refused from it on
    /// (`SALE_CLOSED`).
    #[serde(default)]
    #[schema(format = DateTime, example = "2025-12-31T18:00:00Z")]
    pub sales_close_at: Option<String>,
    /// A waiting room: buyers join it, are shuffled at `sales_open_at`, and are
    /// let in at `admit_per_minute` (README, "Waiting room").
    #[serde(default)]
    pub queue: Option<QueueRequest>,
}

/// A show that passed validation.
#[derive(Debug)]
pub struct NewShow {
    pub name: String,
    pub start_time: DateTime<Utc>,
    pub plan: Plan,
    pub window: Window,
    pub queue: Option<QueueSettings>,
}

impl NewShow {
    pub fn parse(req: NewShowRequest, max_seats: i32) -> Result<NewShow> {
        let name = checked_name(&req.name)?;
        let start_time = sale::parse_instant("start_time", &req.start_time)?;
        let instant = |field: &str, value: Option<&String>| {
            value.map(|v| sale::parse_instant(field, v)).transpose()
        };
        let window = Window {
            sales_open_at: instant("sales_open_at", req.sales_open_at.as_ref())?,
            sales_close_at: instant("sales_close_at", req.sales_close_at.as_ref())?,
        };
        window.check()?;
        let queue = req.queue.as_ref().map(QueueSettings::parse).transpose()?;
        if let Some(queue) = &queue {
            queue.check(&window)?;
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
            name,
            start_time,
            plan,
            window,
            queue,
        })
    }
}

/// Creates a show and its seats in the caller's transaction.
pub async fn insert(conn: &mut PgConnection, new: &NewShow) -> Result<Show> {
    let plan = &new.plan;
    let for_sale = plan.seats.iter().filter(|s| !s.blocked).count() as i64;
    let sql = format!(
        "INSERT INTO shows AS s (name, start_time, total_seats, sales_open_at, sales_close_at)
         VALUES ($1, $2, $3, $5, $6)
         RETURNING id, name, start_time, total_seats, created_at, $4::int8 AS available_seats,
                   sales_open_at, sales_close_at, {} AS sales, NULL::json AS queue",
        sale::STATE_SQL
    );
    let mut show: Show = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(&new.name)
        .bind(new.start_time)
        .bind(plan.seats.len() as i32)
        .bind(for_sale)
        .bind(new.window.sales_open_at)
        .bind(new.window.sales_close_at)
        .fetch_one(&mut *conn)
        .await?;
    hall::insert(conn, show.id, plan).await?;
    if let Some(queue) = &new.queue {
        set_queue(conn, show.id, Some(queue), &new.window).await?;
        show.queue = Some(sqlx::types::Json(ShowQueue {
            settings: *queue,
            paused: false,
        }));
    }
    if new.window != Window::default() {
        // The on-sale clocks must learn of an instant to wake for.
        tell_window(conn, &show).await?;
    }
    Ok(show)
}

pub async fn create(pool: &PgPool, new: NewShow) -> Result<Show> {
    let mut tx = pool.begin().await?;
    let show = insert(&mut tx, &new).await?;
    tx.commit().await?;
    Ok(show)
}
