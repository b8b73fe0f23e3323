//! Booking and seat statuses. The database stores them as text (readable in `psql`
//! and checked by constraints); Rust code sees only these enums.

use serde::{Deserialize, Serialize};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef};
use sqlx::{Decode, Encode, Postgres, Type};

/// Implements text encoding for a status enum: its SQL spelling and its parsing.
macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} '{other}'", stringify!($name))),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let text = <&str as Decode<Postgres>>::decode(value)?;
                Ok(text.parse()?)
            }
        }
    };
}

/// Where a booking is in its life. `EXPIRED` and `CANCELLED` replace the old
/// service's `FAILED`: a failed booking is never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum BookingStatus {
    /// A hold: its seats are `RESERVED` until it is confirmed or expires.
    Pending,
    Confirmed,
    Expired,
    Cancelled,
}

text_enum!(BookingStatus {
    Pending => "PENDING",
    Confirmed => "CONFIRMED",
    Expired => "EXPIRED",
    Cancelled => "CANCELLED",
});

/// A seat's state as every client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum SeatStatus {
    Available,
    /// Held by a `PENDING` booking.
    Reserved,
    Booked,
    /// Not for sale (a layout's `blocked` seat): it never changes.
    Blocked,
}

text_enum!(SeatStatus {
    Available => "AVAILABLE",
    Reserved => "RESERVED",
    Booked => "BOOKED",
    Blocked => "BLOCKED",
});

/// Where a show's sale is, by its window and the database's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SalesState {
    /// Before `sales_open_at`: nothing can be held or booked yet.
    Upcoming,
    Open,
    /// From `sales_close_at` on.
    Closed,
}

text_enum!(SalesState {
    Upcoming => "upcoming",
    Open => "open",
    Closed => "closed",
});

/// Where a buyer's place in a show's waiting room is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlaceState {
    /// In the queue (or the pre-queue, before the shuffle).
    Waiting,
    /// Let in: may hold and book until its admission ends.
    Admitted,
    /// The admission ended because its holds were confirmed or released.
    Done,
    /// The admission ran out (`active_minutes`).
    Expired,
}

text_enum!(PlaceState {
    Waiting => "waiting",
    Admitted => "admitted",
    Done => "done",
    Expired => "expired",
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_and_write_their_sql_spelling() {
        for s in [
            BookingStatus::Pending,
            BookingStatus::Confirmed,
            BookingStatus::Expired,
            BookingStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<BookingStatus>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!("BOOKED".parse::<SeatStatus>(), Ok(SeatStatus::Booked));
        assert!("FAILED".parse::<BookingStatus>().is_err());
    }
}
