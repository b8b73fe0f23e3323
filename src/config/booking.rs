//! The rules bookings are held to: handed whole to the booking service.

use std::time::Duration;

use clap::Args;

use super::value::{number, optional, seconds};

#[derive(Debug, Args)]
pub(super) struct BookingArgs {
    /// How long a hold (immediate_confirm: false) lasts before it expires.
    #[arg(long, env = "HOLD_TTL_SECS", default_value = "120")]
    hold_ttl_secs: String,
    /// Most seats one booking may take.
    #[arg(long, env = "MAX_SEATS_PER_BOOKING", default_value = "10")]
    max_seats_per_booking: String,
    /// Most seats a show may have.
    #[arg(long, env = "MAX_SEATS_PER_SHOW", default_value = "100000")]
    max_seats_per_show: String,
    /// Most seats one buyer may have in a show (held plus sold; unset: no limit).
    #[arg(long, env = "MAX_SEATS_PER_USER")]
    max_seats_per_user: Option<String>,
    /// Most live holds one buyer may have in a show (unset: no limit).
    #[arg(long, env = "MAX_HOLDS_PER_USER")]
    max_holds_per_user: Option<String>,
    /// AUTH=none: most live holds the requests of one client address may have in
    /// a show, whatever user_ids they name (0: no limit).
    #[arg(long, env = "MAX_HOLDS_PER_ADDRESS", default_value = "20")]
    max_holds_per_address: String,
    /// AUTH=none: most places one client address may take in a show's waiting
    /// room (each new session or join without a queue id is a new place; 0: no
    /// limit).
    #[arg(long, env = "MAX_PLACES_PER_ADDRESS", default_value = "20")]
    max_places_per_address: String,
    /// Seconds a show's booking queue and its workers stay after the show's last
    /// booking (they start again with the next one).
    #[arg(long, env = "BOOKING_QUEUE_IDLE_SECS", default_value = "30")]
    booking_queue_idle_secs: String,
}

/// The rules bookings are held to.
#[derive(Debug, Clone, Copy)]
pub struct BookingRules {
    /// How long a hold lasts.
    pub hold_ttl: Duration,
    /// Most seats in one booking.
    pub max_seats_per_booking: usize,
    /// Most seats a new show may have.
    pub max_seats_per_show: i32,
    /// Per-buyer limits within a show.
    pub buyer_limits: BuyerLimits,
    /// How long a show's booking queue and workers outlive its last booking.
    pub queue_idle: Duration,
    /// `AUTH=none`: most waiting-room places one client address may take in a show.
    pub max_places_per_address: Option<u32>,
}

/// `MAX_SEATS_PER_USER`, `MAX_HOLDS_PER_USER` and `MAX_HOLDS_PER_ADDRESS`, per show.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuyerLimits {
    pub max_seats: Option<u32>,
    pub max_holds: Option<u32>,
    /// Live holds of one client address (`AUTH=none`, where buyers name
    /// themselves and one address can name as many as it likes).
    pub max_holds_per_address: Option<u32>,
}

impl BuyerLimits {
    pub fn any(&self) -> bool {
        self.max_seats.is_some() || self.max_holds.is_some() || self.max_holds_per_address.is_some()
    }
}

impl BookingArgs {
    /// `signed_in`: buyers are proven (`AUTH=jwt`), so they are counted as buyers
    /// and not by address.
    pub(super) fn check(&self, signed_in: bool) -> Result<BookingRules, String> {
        let per_address = number(
            "MAX_HOLDS_PER_ADDRESS",
            &self.max_holds_per_address,
            0,
            1_000_000,
        )?;
        Ok(BookingRules {
            hold_ttl: seconds("HOLD_TTL_SECS", &self.hold_ttl_secs, 1, 86_400)?,
            max_seats_per_booking: number(
                "MAX_SEATS_PER_BOOKING",
                &self.max_seats_per_booking,
                1,
                1000,
            )?,
            max_seats_per_show: number(
                "MAX_SEATS_PER_SHOW",
                &self.max_seats_per_show,
                1,
                1_000_000,
            )?,
            buyer_limits: BuyerLimits {
                max_seats: optional(
                    "MAX_SEATS_PER_USER",
                    self.max_seats_per_user.as_deref(),
                    1,
                    1_000_000,
                )?,
                max_holds: optional(
                    "MAX_HOLDS_PER_USER",
                    self.max_holds_per_user.as_deref(),
                    1,
                    1_000_000,
                )?,
                max_holds_per_address: Some(per_address).filter(|n| *n > 0 && !signed_in),
            },
            queue_idle: seconds(
                "BOOKING_QUEUE_IDLE_SECS",
                &self.booking_queue_idle_secs,
                1,
                86_400,
            )?,
            max_places_per_address: Some(number(
                "MAX_PLACES_PER_ADDRESS",
                &self.max_places_per_address,
                0,
                1_000_000,
            )?)
            .filter(|n| *n > 0 && !signed_in),
        })
    }
}
