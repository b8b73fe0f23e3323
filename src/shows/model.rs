//! What a show is, as answers carry it: the show, its seats, its hall, its
//! waiting room; and the rule for its name.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;

use crate::error::{Error, Result};
use crate::hall;
use crate::onsale::{QueueSettings, SalesState, Window};
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

impl Show {
    pub fn window(&self) -> Window {
        Window {
            sales_open_at: self.sales_open_at,
            sales_close_at: self.sales_close_at,
        }
    }
}

/// A show's name, trimmed: 1 to 200 characters, none of them NUL.
pub(super) fn checked_name(name: &str) -> Result<String> {
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

/// A show's name: 1 to 200 characters once trimmed, none of them NUL.
pub fn show_name() -> Object {
    trimmed(200, false)
        .description(Some("1 to 200 characters once trimmed."))
        .examples([serde_json::json!("Rock Concert 2025")])
        .build()
}
