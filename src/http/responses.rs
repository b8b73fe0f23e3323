//! The JSON bodies the REST API answers with. Handlers return these types and
//! the OpenAPI document's schemas are derived from the same types, so what is
//! documented is what is written. The shapes are the old service's: the envelope
//! names (`show`, `booking`, `count`) and messages are part of its contract.

use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::{BookingDetails, BuyerBooking, CreatedBooking};
use crate::shows::{Seat, Show, ShowWithHall};

pub use crate::error::ErrorBody;

#[derive(Serialize, ToSchema)]
pub struct ShowList {
    pub count: usize,
    pub shows: Vec<Show>,
}

impl ShowList {
    pub fn new(shows: Vec<Show>) -> ShowList {
        ShowList {
            count: shows.len(),
            shows,
        }
    }
}

/// A show with its hall, and the rule a seat map enforces while selecting.
#[derive(Serialize, ToSchema)]
pub struct ShowDetail {
    #[serde(flatten)]
    pub show: ShowWithHall,
    pub max_seats_per_booking: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ShowEnvelope {
    pub show: ShowDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ShowCreated {
    #[schema(example = "Show created successfully")]
    pub message: &'static str,
    pub show: Show,
}

impl ShowCreated {
    pub fn new(show: Show) -> ShowCreated {
        ShowCreated {
            message: "Show created successfully",
            show,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ShowUpdated {
    #[schema(example = "Show updated")]
    pub message: &'static str,
    pub show: Show,
}

impl ShowUpdated {
    pub fn new(show: Show) -> ShowUpdated {
        ShowUpdated {
            message: "Show updated",
            show,
        }
    }
}

/// Serialized from the rows themselves: a `Value` tree of a 100,000-seat map
/// would take hundreds of megabytes on its way to 14.5 MB of text.
#[derive(Serialize, ToSchema)]
pub struct SeatList {
    pub show_id: i64,
    pub count: usize,
    pub seats: Vec<Seat>,
}

impl SeatList {
    pub fn new(show_id: i64, seats: Vec<Seat>) -> SeatList {
        SeatList {
            show_id,
            count: seats.len(),
            seats,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BookingCreated {
    #[schema(example = "Booking created successfully")]
    pub message: &'static str,
    pub booking: CreatedBooking,
}

impl BookingCreated {
    pub fn new(booking: CreatedBooking) -> BookingCreated {
        BookingCreated {
            message: "Booking created successfully",
            booking,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BookingEnvelope {
    pub booking: BookingDetails,
}

/// A confirmed or cancelled booking.
#[derive(Serialize, ToSchema)]
pub struct BookingChanged {
    /// `Booking confirmed` or `Booking cancelled`.
    #[schema(example = "Booking confirmed")]
    pub message: &'static str,
    pub booking: BookingDetails,
}

impl BookingChanged {
    pub fn confirmed(booking: BookingDetails) -> BookingChanged {
        BookingChanged {
            message: "Booking confirmed",
            booking,
        }
    }

    pub fn cancelled(booking: BookingDetails) -> BookingChanged {
        BookingChanged {
            message: "Booking cancelled",
            booking,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BuyerBookings {
    pub count: usize,
    pub bookings: Vec<BuyerBooking>,
}

impl BuyerBookings {
    pub fn new(bookings: Vec<BuyerBooking>) -> BuyerBookings {
        BuyerBookings {
            count: bookings.len(),
            bookings,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
    pub timestamp: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: &'static str,
    /// `up` or `down`.
    pub database: &'static str,
    /// `up` or `down`: whether this instance receives seat changes.
    pub listener: &'static str,
}
