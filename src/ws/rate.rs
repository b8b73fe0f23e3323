//! Per-session command rate limiting, on `governor`'s GCRA limiter (the same crate
//! that limits REST requests per address).

use std::num::NonZeroU32;
use std::sync::LazyLock;

use governor::clock::QuantaClock;
use governor::{DefaultDirectRateLimiter, Quota};

/// One clock for every session's limiter. A new `QuantaClock` reads the CPU's
/// features (CPUID) and calibrates; in a virtual machine each CPUID traps to the
/// host, and made per session it cost a tenth of the server's CPU in an arrival
/// storm. Clones share the calibration.
static CLOCK: LazyLock<QuantaClock> = LazyLock::new(QuantaClock::default);

/// `rate` commands (and control frames) per second, bursts of up to twice that.
pub(super) struct RateLimiter(DefaultDirectRateLimiter);

impl RateLimiter {
    pub(super) fn new(rate: u32) -> RateLimiter {
        let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
        let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
        RateLimiter(governor::RateLimiter::direct_with_clock(
            Quota::per_second(rate).allow_burst(burst),
            CLOCK.clone(),
        ))
    }

    pub(super) fn allow(&mut self) -> bool {
        self.0.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_twice_the_rate_passes_then_the_rest_is_refused() {
        let mut limiter = RateLimiter::new(5);
        let passed = (0..20).filter(|_| limiter.allow()).count();
        assert_eq!(passed, 10);
    }
}
