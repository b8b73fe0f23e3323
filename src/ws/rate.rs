//! Per-session command rate limiting.

use std::time::Instant;

/// A token bucket: `rate` commands per second, bursts of up to twice that.
pub(super) struct RateLimiter {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    pub(super) fn new(rate: u32) -> RateLimiter {
        let rate = f64::from(rate);
        RateLimiter {
            rate,
            tokens: 2.0 * rate,
            last: Instant::now(),
        }
    }

    pub(super) fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(2.0 * self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
