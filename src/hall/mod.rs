//! Halls: where a show's seats are, what they cost, and which are the best free
//! ones. [`layout`] checks what an organiser sends, [`best`] picks seats, [`price`]
//! does the sums; this module stores a plan and reads it back.

pub mod best;
pub mod layout;
mod plan;
pub mod price;
mod request;

use std::collections::HashMap;

use serde::Serialize;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::error::{Error, Result};
pub use best::{Ask, Hall};
pub use layout::{Category, LayoutRequest, Outline, Plan, StageSide};
pub use price::Price;

/// Stores a plan's categories, outline and seats for a new show.
pub async fn insert(conn: &mut PgConnection, show_id: i64, plan: &Plan) -> Result<()> {
    sqlx::query("UPDATE shows SET layout = $2 WHERE id = $1")
        .bind(show_id)
        .bind(Json(&plan.outline))
        .execute(&mut *conn)
        .await?;
    let c = &plan.categories;
    sqlx::query(
        "INSERT INTO categories (show_id, key, name, price, currency, color, position)
         SELECT $1, k, n, p::numeric, cur, col, i - 1
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS c(k, n, p, cur, col, i)",
    )
    .bind(show_id)
    .bind(column(c, |c| c.key.as_str()))
    .bind(column(c, |c| c.name.as_str()))
    .bind(column(c, |c| c.price.to_string()))
    .bind(column(c, |c| c.currency.as_str()))
    .bind(column(c, |c| c.color.as_str()))
    .execute(&mut *conn)
    .await?;
    let s = &plan.seats;
    sqlx::query(
        "INSERT INTO seats (show_id, seat_no, position, section, row_label, number, category, x, y, accessible, blocked)
         SELECT $1, seat_no, i, section, row_label, number, category, x, y, accessible, blocked
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int4[], $8::int4[], $9::bool[], $10::bool[])
              WITH ORDINALITY AS s(seat_no, section, row_label, number, category, x, y, accessible, blocked, i)",
    )
    .bind(show_id)
    .bind(column(s, |s| s.seat_no.as_str()))
    .bind(column(s, |s| s.section.as_str()))
    .bind(column(s, |s| s.row.as_str()))
    .bind(column(s, |s| s.number.as_str()))
    .bind(column(s, |s| s.category.as_str()))
    .bind(column(s, |s| s.x))
    .bind(column(s, |s| s.y))
    .bind(column(s, |s| s.accessible))
    .bind(column(s, |s| s.blocked))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One column of a bulk insert (`unnest` of arrays).
fn column<'a, T, U>(rows: &'a [T], value: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(value).collect()
}

/// A show's seats as read (any columns of them): every show has at least one
/// seat, so none means there is no such show.
pub fn seats_found<T>(show_id: i64, seats: Vec<T>) -> Result<Vec<T>> {
    if seats.is_empty() {
        return Err(Error::ShowNotFound(show_id));
    }
    Ok(seats)
}

/// A show's layout for best-available; read once per show and kept (layouts never
/// change once a show exists).
pub async fn load(pool: &PgPool, show_id: i64) -> Result<Hall> {
    let seats: Vec<best::HallSeatRow> = sqlx::query_as(
        "SELECT id, section, row_label, category, x, y, accessible, blocked
         FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    let seats = seats_found(show_id, seats)?;
    let outline: Option<Json<Outline>> =
        sqlx::query_scalar("SELECT layout FROM shows WHERE id = $1")
            .bind(show_id)
            .fetch_one(pool)
            .await?;
    let stage = outline.map(|o| o.0.stage.at).unwrap_or_default();
    Ok(Hall::new(seats, stage))
}

/// A show's prices by category. Categories never change once a show exists, so a
/// booking queue reads them once instead of joining them into every batch.
#[derive(Debug, Default)]
pub struct PriceList {
    pub currency: String,
    prices: HashMap<String, Price>,
}

impl PriceList {
    pub async fn load(pool: &PgPool, show_id: i64) -> Result<PriceList> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT key, price::text, currency FROM categories WHERE show_id = $1")
                .bind(show_id)
                .fetch_all(pool)
                .await?;
        let mut list = PriceList::default();
        for (key, price, currency) in rows {
            let price = price
                .parse()
                .map_err(|e: String| Error::Unexpected(anyhow::anyhow!("category {key}: {e}")))?;
            list.prices.insert(key, price);
            list.currency = currency;
        }
        Ok(list)
    }

    /// The price of a seat of `category` (zero for a category not in the list,
    /// which the schema's foreign key rules out).
    pub fn price(&self, category: &str) -> Price {
        self.prices.get(category).copied().unwrap_or_default()
    }
}

/// A category as `GET /shows/:id` shows it, with what is left of it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CategoryAvailability {
    pub key: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    pub color: String,
    pub total_seats: i64,
    pub available_seats: i64,
}

/// A row as drawn: its label and where its seats are.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RowOutline {
    pub section: String,
    pub label: String,
    pub y: i32,
    pub x_min: i32,
    pub x_max: i32,
}

/// What `GET /shows/:id` adds to a show: how to draw it and what it costs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HallOutline {
    pub currency: String,
    pub stage: layout::Stage,
    pub width: i32,
    pub height: i32,
    pub sections: Vec<SectionOutline>,
    pub categories: Vec<CategoryAvailability>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SectionOutline {
    pub key: String,
    pub name: String,
    pub rows: Vec<RowOutline>,
}

/// The outline of an existing show. Shows from before layouts existed have no
/// stored outline; theirs is the one `total_seats` makes.
pub async fn outline(pool: &PgPool, show_id: i64) -> Result<HallOutline> {
    let stored: Option<Option<Json<Outline>>> =
        sqlx::query_scalar("SELECT layout FROM shows WHERE id = $1")
            .bind(show_id)
            .fetch_optional(pool)
            .await?;
    let stored = stored.ok_or(Error::ShowNotFound(show_id))?;
    let categories: Vec<CategoryAvailability> = sqlx::query_as(
        "SELECT c.key, c.name, c.price::text AS price, c.currency, c.color,
                count(s.id) FILTER (WHERE NOT s.blocked) AS total_seats,
                count(s.id) FILTER (WHERE s.status = 'AVAILABLE' AND NOT s.blocked) AS available_seats
         FROM categories c LEFT JOIN seats s ON s.show_id = c.show_id AND s.category = c.key
         WHERE c.show_id = $1 GROUP BY c.show_id, c.key ORDER BY c.position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    let rows: Vec<RowOutline> = sqlx::query_as(
        "SELECT section, row_label AS label, min(y) AS y, min(x) AS x_min, max(x) AS x_max
         FROM seats WHERE show_id = $1 GROUP BY section, row_label ORDER BY min(position)",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    let outline = match stored {
        Some(Json(outline)) => outline,
        None => {
            let plan = layout::uniform(0, Price::default(), "EUR");
            Outline {
                width: rows.iter().map(|r| r.x_max + 1).max().unwrap_or(0),
                height: rows.iter().map(|r| r.y + 1).max().unwrap_or(0),
                ..plan.outline
            }
        }
    };
    let sections = outline
        .sections
        .iter()
        .map(|s| SectionOutline {
            key: s.key.clone(),
            name: s.name.clone(),
            rows: rows
                .iter()
                .filter(|r| r.section == s.key)
                .cloned()
                .collect(),
        })
        .collect();
    Ok(HallOutline {
        currency: categories
            .first()
            .map(|c| c.currency.clone())
            .unwrap_or_default(),
        stage: outline.stage,
        width: outline.width,
        height: outline.height,
        sections,
        categories,
    })
}

/// A category as the static layout gives it (no availability: that changes).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LayoutCategory {
    pub key: String,
    pub name: String,
    pub price: String,
    pub currency: String,
    pub color: String,
    pub total_seats: i64,
}

/// Everything about a show's hall that never changes once the show exists: what a
/// client fetches once (and caches, by its ETag) before asking the WebSocket for
/// live state only (`?snapshot=state`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Layout {
    pub show_id: i64,
    pub currency: String,
    pub stage: layout::Stage,
    pub width: i32,
    pub height: i32,
    pub sections: Vec<SectionOutline>,
    pub categories: Vec<LayoutCategory>,
    /// What each entry of `seats` holds, in order.
    pub seat_fields: [&'static str; 8],
    /// Every seat in hall order (position 0 first): the order of `state` frames.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub seats: Vec<LayoutSeat>,
}

/// One seat of a layout, as an array: see `Layout::seat_fields`.
pub type LayoutSeat = (String, String, String, String, String, i32, i32, bool);

/// The show's static layout.
pub async fn layout_of(pool: &PgPool, show_id: i64) -> Result<Layout> {
    let outline = outline(pool, show_id).await?;
    let seats = sqlx::query_as(
        "SELECT seat_no, section, row_label, number, category, x, y, accessible
         FROM seats WHERE show_id = $1 ORDER BY position",
    )
    .bind(show_id)
    .fetch_all(pool)
    .await?;
    Ok(Layout {
        show_id,
        currency: outline.currency,
        stage: outline.stage,
        width: outline.width,
        height: outline.height,
        sections: outline.sections,
        categories: outline
            .categories
            .into_iter()
            .map(|c| LayoutCategory {
                key: c.key,
                name: c.name,
                price: c.price,
                currency: c.currency,
                color: c.color,
                total_seats: c.total_seats,
            })
            .collect(),
        seat_fields: [
            "seat_no",
            "section",
            "row",
            "number",
            "category",
            "x",
            "y",
            "accessible",
        ],
        seats,
    })
}

/// The layout's entity tag: a show's layout never changes, so its id and creation
/// time name it (a database rebuilt from scratch gives new times).
pub async fn layout_tag(pool: &PgPool, show_id: i64) -> Result<String> {
    let created: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT created_at FROM shows WHERE id = $1")
            .bind(show_id)
            .fetch_optional(pool)
            .await?;
    let created = created.ok_or(Error::ShowNotFound(show_id))?;
    Ok(format!(
        "\"layout-{show_id}-{}\"",
        created.timestamp_micros()
    ))
}
