//! Shows and their seats: creation (admin), listing, and the seat map.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::openapi::Object;

use crate::error::{Error, Result};
use crate::hall::{self, LayoutRequest, Plan, Price};
use crate::onsale::{self as sale, QueueRequest, QueueSettings, SalesState, Window};
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
    /// When holds and bookings open (absent: on sale from creation).
    pub sales_open_at: Option<DateTime<Utc>>,
    /// When they close (absent: never).
    pub sales_close_at: Option<DateTime<Utc>>,
    /// Where the sale is now, by the database's clock.
    pub sales: SalesState,
    /// The show's waiting room, or `null` when it has none.
    #[schema(value_type = Option<ShowQueue>)]
    pub queue: Option<sqlx::types::Json<ShowQueue>>,
}

/// A show's waiting room as shows carry it: its settings, and whether an admin
/// has paused admissions.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShowQueue {
    #[serde(flatten)]
    pub settings: QueueSettings,
    pub paused: bool,
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

/// The body of `PATCH /admin/shows/:id`: what to change; absent fields stay as
/// they are, and `null` clears a side of the sale window.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowChangeRequest {
    #[serde(default, deserialize_with = "given")]
    #[schema(schema_with = show_name, required = false)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = String, format = DateTime, required = false, example = "2025-12-31T20:00:00Z")]
    pub start_time: Option<String>,
    /// RFC 3339, or `null`: on sale at once.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable, required = false)]
    pub sales_open_at: Option<Option<String>>,
    /// RFC 3339, or `null`: the sale never closes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, format = DateTime, nullable, required = false)]
    pub sales_close_at: Option<Option<String>>,
    /// The waiting room's settings (all of them), or `null` to remove it. Its
    /// order, places and admissions stay as they are when the settings change.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<QueueRequest>, nullable, required = false)]
    pub queue: Option<Option<QueueRequest>>,
}

/// A field that may be absent, but not `null`.
fn given<'de, T, D>(d: D) -> std::result::Result<Option<T>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    T::deserialize(d).map(Some)
}

/// A field that is present, as `null` or a value (absent fields stay `None`).
fn present<'de, T, D>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A checked [`ShowChangeRequest`].
#[derive(Debug, Default)]
pub struct ShowChange {
    pub name: Option<String>,
    pub start_time: Option<DateTime<Utc>>,
    pub sales_open_at: Option<Option<DateTime<Utc>>>,
    pub sales_close_at: Option<Option<DateTime<Utc>>>,
    pub queue: Option<Option<QueueSettings>>,
}

impl ShowChange {
    pub fn parse(req: ShowChangeRequest) -> Result<ShowChange> {
        let name = req.name.as_deref().map(checked_name).transpose()?;
        let start_time = req
            .start_time
            .as_deref()
            .map(|t| sale::parse_instant("start_time", t))
            .transpose()?;
        let instant = |field: &str, value: Option<Option<String>>| match value {
            Some(Some(v)) => sale::parse_instant(field, &v).map(|t| Some(Some(t))),
            Some(None) => Ok(Some(None)),
            None => Ok(None),
        };
        Ok(ShowChange {
            name,
            start_time,
            sales_open_at: instant("sales_open_at", req.sales_open_at)?,
            sales_close_at: instant("sales_close_at", req.sales_close_at)?,
            queue: match &req.queue {
                Some(Some(q)) => Some(Some(QueueSettings::parse(q)?)),
                Some(None) => Some(None),
                None => None,
            },
        })
    }
}

/// A show's name, trimmed: 1 to 200 characters, none of them NUL.
fn checked_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Validation("name must be 1 to 200 characters".into()));
    }
    if name.contains('\0') {
        return Err(Error::Validation(
            "name must not contain NUL characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// Changes a show; a change of its sale window is told to every instance (their
/// on-sale clocks pass it on to the show's sessions).
pub async fn update(pool: &PgPool, id: i64, change: ShowChange) -> Result<Show> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE shows SET name = coalesce($2, name), start_time = coalesce($3, start_time),
             sales_open_at = CASE WHEN $4 THEN $5 ELSE sales_open_at END,
             sales_close_at = CASE WHEN $6 THEN $7 ELSE sales_close_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(&change.name)
    .bind(change.start_time)
    .bind(change.sales_open_at.is_some())
    .bind(change.sales_open_at.flatten())
    .bind(change.sales_close_at.is_some())
    .bind(change.sales_close_at.flatten())
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("shows_sales_window") => {
            Error::Validation("sales_close_at must be after sales_open_at".into())
        }
        _ => e.into(),
    })?;
    if updated.rows_affected() == 0 {
        return Err(Error::ShowNotFound(id));
    }
    if let Some(queue) = change.queue {
        let window = fetch(&mut tx, id).await?.window();
        set_queue(&mut tx, id, queue.as_ref(), &window).await?;
    }
    let show = fetch(&mut tx, id).await?;
    if change.sales_open_at.is_some() {
        reopen_queue(&mut tx, &show).await?;
    }
    // Every instance's pages of the show are stale (its name, time or window).
    tell_window(&mut tx, &show).await?;
    tx.commit().await?;
    Ok(show)
}

/// Keeps a waiting room true to a moved opening: its pre-queue must still open
/// before the sale, and a queue shuffled for an opening that has now moved later
/// is put back to a pre-queue (while nobody was let in; after that, refused).
async fn reopen_queue(conn: &mut PgConnection, show: &Show) -> Result<()> {
    let Some(queue) = &show.queue else {
        return Ok(());
    };
    queue.settings.check(&show.window())?;
    let later = matches!(show.sales, SalesState::Upcoming);
    if !later {
        return Ok(());
    }
    let admitted: Option<i64> = sqlx::query_scalar(
        "SELECT admitted_through FROM show_queues WHERE show_id = $1 AND shuffled_at IS NOT NULL FOR UPDATE",
    )
    .bind(show.id)
    .fetch_optional(&mut *conn)
    .await?;
    match admitted {
        None => Ok(()),
        Some(0) => {
            sqlx::query("UPDATE queue_places SET rank = NULL WHERE show_id = $1")
                .bind(show.id)
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "UPDATE show_queues SET shuffled_at = NULL, next_rank = 1, credit = 0 WHERE show_id = $1",
            )
            .bind(show.id)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }
        Some(_) => Err(Error::Validation(
            "the waiting room has already let buyers in: its sale cannot open later now".into(),
        )),
    }
}

impl Show {
    pub fn window(&self) -> Window {
        Window {
            sales_open_at: self.sales_open_at,
            sales_close_at: self.sales_close_at,
        }
    }
}

/// Gives the show a waiting room with these settings (keeping the places and
/// pacing of the one it has), or removes it; tells every instance.
async fn set_queue(
    conn: &mut PgConnection,
    show_id: i64,
    queue: Option<&QueueSettings>,
    window: &Window,
) -> Result<()> {
    match queue {
        Some(q) => {
            q.check(window)?;
            sqlx::query(
                "INSERT INTO show_queues (show_id, admit_per_minute, max_active, pre_queue_opens_at, active_minutes, claim_secs)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (show_id) DO UPDATE SET admit_per_minute = $2, max_active = $3,
                     pre_queue_opens_at = $4, active_minutes = $5, claim_secs = $6",
            )
            .bind(show_id)
            .bind(q.admit_per_minute)
            .bind(q.max_active)
            .bind(q.pre_queue_opens_at)
            .bind(q.active_minutes)
            .bind(q.claim_secs)
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM show_queues WHERE show_id = $1")
                .bind(show_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let news = serde_json::json!({"kind": "queue_settings", "show_id": show_id});
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(news.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells every instance (at commit) that the show's sale window is now this.
async fn tell_window(conn: &mut PgConnection, show: &Show) -> Result<()> {
    let news = serde_json::json!({
        "kind": "window",
        "show_id": show.id,
        "sales_open_at": show.sales_open_at,
        "sales_close_at": show.sales_close_at,
        "sales": show.sales,
    });
    sqlx::query("SELECT pg_notify('show_changes', $1)")
        .bind(news.to_string())
        .execute(conn)
        .await?;
    Ok(())
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

async fn fetch(conn: &mut PgConnection, id: i64) -> Result<Show> {
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

/// A show's name: 1 to 200 characters once trimmed, none of them NUL.
pub fn show_name() -> Object {
    trimmed(200, false)
        .description(Some("1 to 200 characters once trimmed."))
        .examples([serde_json::json!("Rock Concert 2025")])
        .build()
}
