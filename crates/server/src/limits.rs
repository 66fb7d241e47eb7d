//! Rate limits per client address and per API key: GCRA buckets (the `governor` crate),
//! in memory on each node. A burst of twice the rate is allowed, so a till's retry storm
//! after a network blip passes while a script hammering the API does not. An exhausted
//! bucket answers 429 `rate_limited` with `Retry-After`.

use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Requests per second allowed from one address by default.
pub const PER_IP_DEFAULT: u32 = 200;
/// Requests per second allowed with one API key by default.
pub const PER_KEY_DEFAULT: u32 = 50;

/// The node's limiters; `None` where the limit is off.
pub struct RateLimits {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_key: Option<DefaultKeyedRateLimiter<String>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per_second: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(per_second)?;
    let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
    Some(RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)))
}

fn too_many(wait: std::time::Duration, what: &str) -> ApiError {
    ApiError::rate_limited(format!("too many requests {what}; retry later"), wait.as_secs())
}

impl RateLimits {
    /// Limits of `per_ip` and `per_key` requests per second; 0 turns one off.
    pub fn new(per_ip: u32, per_key: u32) -> RateLimits {
        RateLimits { per_ip: limiter(per_ip), per_key: limiter(per_key) }
    }

    /// Counts a request from `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), ApiError> {
        match &self.per_ip {
            Some(l) => l
                .check_key(&ip)
                .map_err(|n| too_many(n.wait_time_from(DefaultClock::default().now()), "from this address")),
            None => Ok(()),
        }
    }

    /// Counts a request made with `key_id`.
    pub fn check_key(&self, key_id: &str) -> Result<(), ApiError> {
        match &self.per_key {
            Some(l) => l
                .check_key(&key_id.to_string())
                .map_err(|n| too_many(n.wait_time_from(DefaultClock::default().now()), "with this key")),
            None => Ok(()),
        }
    }

    /// Drops the state of addresses and keys that have been quiet (memory stays bounded).
    pub fn forget_idle(&self) {
        if let Some(l) = &self.per_ip {
            l.retain_recent();
        }
        if let Some(l) = &self.per_key {
            l.retain_recent();
        }
    }
}
