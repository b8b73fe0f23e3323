//! What callers see of a booking (the answers of booking, confirm, cancel and
//! reads), and what entitles them to change one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::auth::Buyer;
use crate::hall::Price;
use crate::status::{BookingStatus, SeatStatus};

/// The reply to a successful booking; the only place the token is ever shown (and
/// the answer an `Idempotency-Key` retry gets back).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedBooking {
    pub id: i64,
    pub show_id: i64,
    pub user_id: String,
    pub status: BookingStatus,
    pub seat_nos: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub token: String,
    /// The seats with their places and prices (answers remembered for an
    /// idempotency key before prices existed have none).
    #[serde(default)]
    pub seats: Vec<PricedSeat>,
    #[serde(default)]
    #[schema(value_type = String, example = "91.00")]
    pub total: Price,
    #[serde(default)]
    pub currency: String,
}

/// A booked seat: where it is and what it costs.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct PricedSeat {
    pub seat_no: String,
    pub section: String,
    #[sqlx(rename = "row_label")]
    pub row: String,
    pub number: String,
    pub category: String,
    #[sqlx(try_from = "String")]
    #[schema(value_type = String, example = "45.50")]
    pub price: Price,
}

/// A booking as `GET /bookings/:id` shows it (no token).
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BookingDetails {
    pub id: i64,
    pub show_id: i64,
    pub show_name: String,
    /// Who booked it; left out where the caller may not know (see `GET /bookings/:id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub status: BookingStatus,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[sqlx(skip)]
    pub seats: Vec<BookedSeat>,
    /// The seats' prices added up, in `currency`.
    #[sqlx(skip)]
    #[serde(default)]
    #[schema(value_type = String, example = "91.00")]
    pub total: Price,
    #[serde(default)]
    pub currency: String,
}

/// One of a buyer's bookings, as `GET /me/bookings` lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BuyerBooking {
    pub id: i64,
    pub show_id: i64,
    pub show_name: String,
    pub status: BookingStatus,
    pub seat_nos: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BookedSeat {
    pub status: SeatStatus,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub seat: PricedSeat,
}

/// What entitles a caller to confirm or cancel a booking.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The booking's token: whoever holds it.
    Token(String),
    /// The signed-in buyer (`AUTH=jwt`), for their own bookings.
    Owner(String),
}

impl Credential {
    /// The booking's token if one was sent, else the signed-in buyer as its owner;
    /// `None` when there is neither (each surface says how to send a token).
    pub fn of(token: Option<String>, buyer: Option<Buyer>) -> Option<Credential> {
        match (token, buyer) {
            (Some(token), _) => Some(Credential::Token(token)),
            (None, Some(buyer)) => Some(Credential::Owner(buyer.id)),
            (None, None) => None,
        }
    }
}
