//! A show's sale window: when holds and bookings are taken. The booking
//! transaction checks it against the database's `now()`, so every instance agrees
//! on the instant whatever its own clock says; `clock` tells sessions when it
//! passes.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::status::SalesState;

/// When a show's sale opens and closes; either side may be open-ended.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
pub struct Window {
    pub sales_open_at: Option<DateTime<Utc>>,
    pub sales_close_at: Option<DateTime<Utc>>,
}

impl Window {
    /// Where the sale is at `now`. The SQL twin is [`STATE_SQL`].
    pub fn state(&self, now: DateTime<Utc>) -> SalesState {
        if self.sales_close_at.is_some_and(|close| close <= now) {
            SalesState::Closed
        } else if self.sales_open_at.is_some_and(|open| open > now) {
            SalesState::Upcoming
        } else {
            SalesState::Open
        }
    }

    /// `Ok` while a hold or booking may be made at `now`.
    pub fn admits(&self, now: DateTime<Utc>) -> Result<()> {
        match (self.state(now), self.sales_open_at) {
            (SalesState::Open, _) => Ok(()),
            (SalesState::Upcoming, Some(opens_at)) => Err(Error::SaleNotOpen { opens_at }),
            _ => Err(Error::SaleClosed),
        }
    }

    /// Refuses a window that closes before it opens.
    pub fn check(&self) -> Result<()> {
        match (self.sales_open_at, self.sales_close_at) {
            (Some(open), Some(close)) if close <= open => Err(Error::Validation(
                "sales_close_at must be after sales_open_at".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// [`Window::state`] in SQL, for a `shows` row aliased `s`.
pub const STATE_SQL: &str = "CASE WHEN s.sales_close_at <= now() THEN 'closed'
         WHEN s.sales_open_at > now() THEN 'upcoming' ELSE 'open' END";

/// An instant as a client sends it: RFC 3339, or a bare `YYYY-MM-DDTHH:MM[:SS]`
/// (read as UTC, as the old service did). `field` names it in the error.
pub fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
            .map(|t| t.and_utc())
        })
        .ok_or_else(|| {
            Error::Validation(format!(
                "{field} '{value}' is not a date-time; use RFC 3339, e.g. 2026-12-31T20:00:00Z"
            ))
        })?;
    // Answers write times in RFC 3339, which has four-digit years: an offset can
    // push a time sent as 9999-12-31 past them once it is in UTC.
    if !(1..=9999).contains(&time.year()) {
        return Err(Error::Validation(format!(
            "{field} '{value}' falls outside the years 0001 to 9999 in UTC"
        )));
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn the_window_decides_the_sale_at_its_edges() {
        let window = Window {
            sales_open_at: Some(at("2026-12-04T10:00:00Z")),
            sales_close_at: Some(at("2026-12-05T10:00:00Z")),
        };
        let cases = [
            ("2026-12-04T09:59:59.999Z", SalesState::Upcoming),
            ("2026-12-04T10:00:00Z", SalesState::Open),
            ("2026-12-05T09:59:59.999Z", SalesState::Open),
            ("2026-12-05T10:00:00Z", SalesState::Closed),
        ];
        for (now, expected) in cases {
            assert_eq!(window.state(at(now)), expected, "{now}");
        }
        assert!(matches!(
            window.admits(at("2026-12-04T09:00:00Z")),
            Err(Error::SaleNotOpen { opens_at }) if opens_at == at("2026-12-04T10:00:00Z")
        ));
        assert!(window.admits(at("2026-12-04T10:00:00Z")).is_ok());
        assert!(matches!(
            window.admits(at("2026-12-06T00:00:00Z")),
            Err(Error::SaleClosed)
        ));
        let always = Window::default();
        assert_eq!(always.state(at("0001-01-01T00:00:00Z")), SalesState::Open);
        assert!(always.admits(at("9999-01-01T00:00:00Z")).is_ok());
    }

    #[test]
    fn a_window_must_close_after_it_opens() {
        let t = at("2026-12-04T10:00:00Z");
        let shut = Window {
            sales_open_at: Some(t),
            sales_close_at: Some(t),
        };
        assert!(shut.check().is_err());
        let half = Window {
            sales_open_at: None,
            sales_close_at: Some(t),
        };
        assert!(half.check().is_ok());
    }

    #[test]
    fn instants_outside_four_digit_years_in_utc_are_refused() {
        for far in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+01:00"] {
            let refused = parse_instant("start_time", far).err();
            assert!(
                matches!(&refused, Some(Error::Validation(m)) if m.contains("0001 to 9999")),
                "{far}: {refused:?}"
            );
        }
        assert!(parse_instant("start_time", "9999-12-31T23:59:59Z").is_ok());
        assert_eq!(
            parse_instant("x", "2026-12-04 10:00").unwrap(),
            at("2026-12-04T10:00:00Z")
        );
    }
}
