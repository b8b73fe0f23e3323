//! Rates per client address, on `governor`'s keyed GCRA limiter: each address may
//! do something so many times a second, in bursts of up to twice that. HTTP
//! requests (`REST_REQUESTS_PER_SEC`) and WebSocket commands summed over an
//! address's sessions (`WS_COMMANDS_PER_ADDRESS_PER_SEC`) each have one.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How many requests pass between sweeps of addresses that have gone quiet, which
/// bounds the limiter's memory by the addresses active lately.
const SWEEP_EVERY: u64 = 10_000;

/// One rate for every address; memory bounded by the addresses active lately.
pub struct Throttle {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    per_sec: u32,
    requests: AtomicU64,
}

impl Throttle {
    pub fn new(per_sec: NonZeroU32) -> Arc<Throttle> {
        let burst = per_sec.saturating_mul(NonZeroU32::new(2).expect("2 is not 0"));
        Arc::new(Throttle {
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            per_sec: per_sec.get(),
            requests: AtomicU64::new(0),
        })
    }

    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// `Ok`, or how many seconds to wait.
    pub fn check(&self, address: IpAddr) -> Result<(), u64> {
        if self.requests.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.limiter.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_a_burst_of_twice_the_rate_and_others_are_not_affected() {
        let throttle = Throttle::new(NonZeroU32::new(5).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let passed = (0..20).filter(|_| throttle.check(a).is_ok()).count();
        assert_eq!(passed, 10);
        assert_eq!(
            throttle.check(a),
            Err(1),
            "wait about a fifth of a second, rounded up"
        );
        assert!(throttle.check(b).is_ok());
    }
}
