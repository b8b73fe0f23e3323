//! Prices as decimal strings ("45.00"), added up exactly. Floating point never
//! touches money: a price is a count of thousandths plus the number of decimals
//! it was written with, so "45.00" comes back as "45.00" and "1500" as "1500".

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    thousandths: i64,
    decimals: u8,
}

/// Prices stay under a billion per seat (the database checks the same).
const MAX_UNITS: i64 = 1_000_000_000;

impl FromStr for Price {
    type Err = String;

    fn from_str(s: &str) -> Result<Price, String> {
        let bad = || {
            format!(
                "'{}' is not a price: write it like \"45.00\" (at most 3 decimals)",
                s.escape_debug()
            )
        };
        let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
        let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 9
            || !digits(whole)
            || fraction.len() > 3
            || !digits(fraction)
        {
            return Err(bad());
        }
        if s.contains('.') && fraction.is_empty() {
            return Err(bad());
        }
        let units: i64 = whole.parse().map_err(|_| bad())?;
        let padded = format!("{fraction:0<3}");
        let milli: i64 = padded.parse().map_err(|_| bad())?;
        if units >= MAX_UNITS {
            return Err(bad());
        }
        Ok(Price {
            thousandths: units * 1000 + milli,
            decimals: fraction.len() as u8,
        })
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (units, milli) = (self.thousandths / 1000, self.thousandths % 1000);
        match self.decimals {
            0 => write!(f, "{units}"),
            d => {
                let fraction = format!("{milli:03}");
                write!(f, "{units}.{}", &fraction[..d as usize])
            }
        }
    }
}

impl Price {
    /// The sum, written with as many decimals as the most precise of its terms.
    pub fn sum<'a>(prices: impl IntoIterator<Item = &'a Price>) -> Price {
        prices.into_iter().fold(Price::default(), |acc, p| Price {
            thousandths: acc.thousandths + p.thousandths,
            decimals: acc.decimals.max(p.decimals),
        })
    }
}

impl TryFrom<String> for Price {
    type Error = String;
    fn try_from(s: String) -> Result<Price, String> {
        s.parse()
    }
}

impl Serialize for Price {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Price {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Price, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().unwrap()
    }

    #[test]
    fn prices_come_back_as_written() {
        for s in ["45.00", "1500", "0.5", "12.345", "0", "999999999.99"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn sums_are_exact_and_keep_the_finest_decimals() {
        let total = Price::sum(&[p("0.10"), p("0.20"), p("1500")]);
        assert_eq!(total.to_string(), "1500.30");
        assert_eq!(Price::sum(&[]).to_string(), "0");
    }

    #[test]
    fn anything_else_is_refused() {
        for s in [
            "",
            "-1",
            "1.",
            ".5",
            "1.2345",
            "1e3",
            "abc",
            "1,50",
            "1000000000",
            " 1",
        ] {
            assert!(s.parse::<Price>().is_err(), "{s:?} was accepted");
        }
    }
}
