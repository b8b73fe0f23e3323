//! The waiting room's rules, without I/O: its settings, how many buyers a tick
//! admits, the shuffle of the pre-queue, and where a buyer stands.
//!
//! Positions are ranks against a watermark: every buyer has a rank (1, 2, ...),
//! buyers are admitted strictly in rank order, and the queue announces one number,
//! `admitted_through`, the highest rank let in so far. A waiting buyer's position
//! is `rank - admitted_through`; one broadcast tells every waiting session where
//! it stands.

use chrono::{DateTime, Utc};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::window::{Window, parse_instant};
use crate::error::{Error, Result};
pub use crate::status::PlaceState;

/// Bounds on the settings, so that a typo cannot make a queue that never moves
/// or one that is not a queue.
pub const MAX_ADMIT_PER_MINUTE: i64 = 1_000_000;
pub const MAX_ACTIVE: i64 = 10_000_000;
pub const MAX_ACTIVE_MINUTES: i64 = 24 * 60;
pub const MAX_CLAIM_SECS: i64 = 3600;

/// A show's waiting room, as the organiser set it.
#[derive(
    Debug, Clone, Copy, PartialEq, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema,
)]
pub struct QueueSettings {
    /// Buyers let in per minute, at most.
    pub admit_per_minute: i32,
    /// Admitted buyers active at once, at most.
    pub max_active: i32,
    /// When buyers may start joining (the pre-queue); absent: at once.
    pub pre_queue_opens_at: Option<DateTime<Utc>>,
    /// How long an admission lasts.
    pub active_minutes: i32,
    /// How long an admission waits to be claimed (fetched by its buyer's session or
    /// a REST call) before it lapses and the place goes to the next buyer.
    pub claim_secs: i32,
}

/// `queue` in a show's body, as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRequest {
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub admit_per_minute: i64,
    #[schema(minimum = 1, maximum = 10_000_000)]
    pub max_active: i64,
    /// RFC 3339, at or before `sales_open_at`. Absent: buyers join from now on.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub pre_queue_opens_at: Option<String>,
    /// Default 10.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1440)]
    pub active_minutes: Option<i64>,
    /// Seconds an admission waits for its buyer to fetch it before it lapses;
    /// default 60.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    pub claim_secs: Option<i64>,
}

impl QueueSettings {
    pub fn parse(req: &QueueRequest) -> Result<QueueSettings> {
        let bounded = |field: &str, value: i64, max: i64| {
            if (1..=max).contains(&value) {
                Ok(value as i32)
            } else {
                Err(Error::Validation(format!(
                    "queue.{field} must be between 1 and {max}"
                )))
            }
        };
        Ok(QueueSettings {
            admit_per_minute: bounded(
                "admit_per_minute",
                req.admit_per_minute,
                MAX_ADMIT_PER_MINUTE,
            )?,
            max_active: bounded("max_active", req.max_active, MAX_ACTIVE)?,
            pre_queue_opens_at: req
                .pre_queue_opens_at
                .as_deref()
                .map(|t| parse_instant("queue.pre_queue_opens_at", t))
                .transpose()?,
            active_minutes: bounded(
                "active_minutes",
                req.active_minutes.unwrap_or(10),
                MAX_ACTIVE_MINUTES,
            )?,
            claim_secs: bounded("claim_secs", req.claim_secs.unwrap_or(60), MAX_CLAIM_SECS)?,
        })
    }

    /// Refuses a pre-queue that would open after the sale.
    pub fn check(&self, window: &Window) -> Result<()> {
        match (self.pre_queue_opens_at, window.sales_open_at) {
            (Some(pre), Some(open)) if pre > open => Err(Error::Validation(
                "queue.pre_queue_opens_at must be at or before sales_open_at".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// What one admission tick may do: how many to admit, and the credit left.
///
/// Admissions are paced by a token bucket: `admit_per_minute / 60` credits a
/// second, at most one second's worth (and at least one admission) kept when
/// nobody can use them, so a pause or a full house never turns into a burst.
/// Under steady demand the bucket admits `floor(rate * t)` buyers by time `t`.
pub fn admissions(
    credit: f64,
    elapsed_secs: f64,
    admit_per_minute: i32,
    free_slots: i64,
    waiting: i64,
) -> (i64, f64) {
    let per_sec = f64::from(admit_per_minute) / 60.0;
    let cap = per_sec.max(1.0);
    let credit = (credit + elapsed_secs.max(0.0) * per_sec).min(cap);
    let admit = (credit.floor() as i64)
        .min(free_slots.max(0))
        .min(waiting.max(0));
    (admit, credit - admit as f64)
}

/// Shuffles the pre-queue uniformly (Fisher-Yates, as `rand` implements it).
/// The caller passes a cryptographic generator seeded from the OS; tests pass a
/// seeded one.
pub fn shuffle<T, R: Rng + ?Sized>(buyers: &mut [T], rng: &mut R) {
    buyers.shuffle(rng);
}

/// Where a buyer stands, from its rank and the queue's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Standing {
    /// 1 for the next buyer to be let in; absent before the pre-queue is shuffled.
    pub position: Option<i64>,
    /// Buyers ahead (`position - 1`).
    pub ahead: Option<i64>,
    /// People ahead divided by the admission rate, in seconds.
    pub eta_secs: Option<i64>,
}

impl Standing {
    pub fn of(rank: Option<i64>, admitted_through: i64, admit_per_minute: i32) -> Standing {
        let position = rank.map(|r| (r - admitted_through).max(1));
        let ahead = position.map(|p| p - 1);
        let eta_secs = ahead.map(|a| (a * 60).div_euclid(i64::from(admit_per_minute.max(1))));
        Standing {
            position,
            ahead,
            eta_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn steady_demand_is_admitted_at_the_rate_within_one() {
        for rate in [1, 7, 60, 90, 600, 6000] {
            let (mut credit, mut admitted) = (0.0, 0);
            // Ticks of uneven length, a minute in all.
            let ticks = [0.25, 0.2, 0.31, 0.24].iter().cycle();
            let mut t = 0.0;
            for step in ticks {
                if t + step > 60.0 {
                    break;
                }
                t += step;
                let (n, left) = admissions(credit, *step, rate, i64::MAX, i64::MAX);
                admitted += n;
                credit = left;
            }
            let expected = f64::from(rate) * t / 60.0;
            assert!(
                (admitted as f64 - expected).abs() <= 1.0,
                "rate {rate}: {admitted} in {t} s, expected {expected}"
            );
        }
    }

    #[test]
    fn a_full_house_or_an_empty_queue_saves_no_burst() {
        // A minute with no free slot: at most one second's credit is kept.
        let (n, credit) = admissions(0.0, 60.0, 600, 0, 1000);
        assert_eq!(n, 0);
        assert!(credit <= 10.0, "{credit}");
        let (n, _) = admissions(credit, 0.0, 600, 1000, 1000);
        assert!(n <= 10, "{n}");
        // Free slots and waiting buyers bound it too.
        assert_eq!(admissions(100.0, 0.0, 6000, 3, 1000).0, 3);
        assert_eq!(admissions(100.0, 0.0, 6000, 1000, 2).0, 2);
        // A slow queue still admits one when its credit reaches one.
        assert_eq!(admissions(0.0, 30.0, 2, 10, 10).0, 1);
    }

    #[test]
    fn positions_count_from_the_watermark() {
        assert_eq!(
            Standing::of(Some(15), 10, 60),
            Standing {
                position: Some(5),
                ahead: Some(4),
                eta_secs: Some(4)
            }
        );
        assert_eq!(Standing::of(None, 0, 60).position, None);
        assert_eq!(Standing::of(Some(3), 10, 60).position, Some(1));
        assert_eq!(Standing::of(Some(101), 0, 30).eta_secs, Some(200));
    }

    /// Chi-square statistic of `counts` against a uniform expectation.
    fn chi_square(counts: &[u64]) -> f64 {
        let total: u64 = counts.iter().sum();
        let expected = total as f64 / counts.len() as f64;
        counts
            .iter()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum()
    }

    /// Where the first joiner of a 10-buyer pre-queue ends up, over many shuffles.
    fn first_joiner_positions(rng: &mut impl Rng, runs: usize) -> Vec<u64> {
        let mut counts = vec![0u64; 10];
        for _ in 0..runs {
            let mut queue: Vec<usize> = (0..10).collect();
            shuffle(&mut queue, rng);
            let at = queue.iter().position(|&b| b == 0).unwrap();
            counts[at] += 1;
        }
        counts
    }

    // 9 degrees of freedom: 21.67 is the 0.99 quantile, 27.88 the 0.999 quantile.
    #[test]
    fn the_first_joiner_lands_anywhere_with_equal_chance_seeded() {
        let mut rng = StdRng::seed_from_u64(18);
        let counts = first_joiner_positions(&mut rng, 20_000);
        let chi = chi_square(&counts);
        assert!(chi < 21.67, "chi-square {chi:.2} for {counts:?}");
    }

    #[test]
    fn the_first_joiner_lands_anywhere_with_equal_chance_from_the_os() {
        // Unseeded, as the server runs: fails by chance once in a thousand runs.
        let mut rng = StdRng::from_os_rng();
        let counts = first_joiner_positions(&mut rng, 20_000);
        let chi = chi_square(&counts);
        assert!(chi < 27.88, "chi-square {chi:.2} for {counts:?}");
    }

    #[test]
    fn a_pre_queue_opening_after_the_sale_is_refused() {
        let req: QueueRequest = serde_json::from_value(serde_json::json!({
            "admit_per_minute": 60, "max_active": 10,
            "pre_queue_opens_at": "2026-12-04T11:00:00Z"
        }))
        .unwrap();
        let settings = QueueSettings::parse(&req).unwrap();
        assert_eq!(settings.active_minutes, 10);
        let window = Window {
            sales_open_at: Some("2026-12-04T10:00:00Z".parse().unwrap()),
            sales_close_at: None,
        };
        assert!(settings.check(&window).is_err());
        assert!(settings.check(&Window::default()).is_ok());
        let zero: QueueRequest =
            serde_json::from_value(serde_json::json!({"admit_per_minute": 0, "max_active": 1}))
                .unwrap();
        assert!(QueueSettings::parse(&zero).is_err());
    }
}
