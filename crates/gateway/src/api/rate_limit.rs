//! Per-sender rate limits: the `[rate_limits]` configuration table ([`RateLimitConfig`]) and
//! the keyed token buckets ([`RateLimiters`]) the request extractors consult once a request's
//! signature has verified and before anything is written (its nonce included). A sender over
//! its budget gets 429 `RATE_LIMITED` with `Retry-After` (whole seconds, rounded up) and
//! `details.retryAfterSeconds`; nothing changes. Unsigned or badly signed requests never reach
//! a bucket, so nobody can spend a merchant's budget without its key.
//!
//! The buckets are per process: with many instances on one database each instance counts on
//! its own, so a sender spread over N instances by the load balancer gets up to N times the
//! budget. Size the budgets per instance (docs/operating.md, "Many instances").
//!
//! Two budgets: per Opencharge sender OCID (`X-OC-*` requests: merchants, Merchant Gateways,
//! partners) and per wallet device (app-API requests). Each is a token bucket: `burst` tokens,
//! refilled at `per_second`; a request takes one. A hand-written bucket rather than the
//! `governor` crate: the state is two numbers per key behind one mutex, the tests drive time
//! directly, and the same code purges idle keys so the map stays bounded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opencharge_protocol::error_code::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};

/// `[rate_limits]`: request budgets per sender. Every value is configurable; a `per_second`
/// of 0 turns that limit off. The defaults let one merchant OCID send tens of thousands of
/// orders per second, while one device, which a person drives, gets far less. The load
/// generator runs unthrottled with them: it sends one `X-OC-*` order per payment per
/// merchant and two device requests per payment per wallet (session, confirm), so even four
/// wallets at the gateway's best measured rate (about 250 payments/s) stay under 100 per
/// device per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second per sender OCID (`X-OC-*`); 0 = unlimited.
    pub ocid_per_second: u32,
    /// Requests one sender OCID may send at once above the sustained rate (bucket size).
    pub ocid_burst: u32,
    /// Sustained requests per second per wallet device (app API); 0 = unlimited.
    pub device_per_second: u32,
    /// Requests one device may send at once (bucket size).
    pub device_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            ocid_per_second: 20_000,
            ocid_burst: 40_000,
            device_per_second: 100,
            device_burst: 200,
        }
    }
}

/// Keys kept before idle (full) buckets are purged.
const PURGE_AT_KEYS: usize = 10_000;

/// One token bucket per key, refilled at `per_second` up to `burst`.
#[derive(Debug)]
pub struct KeyedLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl KeyedLimiter {
    /// A limiter of `per_second` with bucket size `burst` (at least 1); `None` when
    /// `per_second` is 0 (off).
    pub fn new(per_second: u32, burst: u32) -> Option<KeyedLimiter> {
        (per_second > 0).then(|| KeyedLimiter {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one token of `key` at `now`: `Ok` when there was one, else `Err(wait)`, how long
    /// until one is available.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = match self.buckets.lock() {
            Ok(buckets) => buckets,
            // A panic while holding the lock cannot leave a bucket half-written.
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= PURGE_AT_KEYS && !buckets.contains_key(key) {
            let (per_second, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| refilled(b, now, per_second, burst) < burst);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = refilled(bucket, now, self.per_second, self.burst);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now.max(bucket.at),
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens,
                at: now.max(bucket.at),
            };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }
}

/// The tokens of `bucket` at `now` (never more than `burst`; time going backwards adds none).
fn refilled(bucket: &Bucket, now: Instant, per_second: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.tokens + elapsed * per_second).min(burst)
}

/// The gateway's two limiters, built from [`RateLimitConfig`].
#[derive(Debug)]
pub struct RateLimiters {
    ocid: Option<KeyedLimiter>,
    device: Option<KeyedLimiter>,
}

impl RateLimiters {
    /// Limiters for `config` (a limit with `per_second` 0 is off).
    pub fn new(config: &RateLimitConfig) -> RateLimiters {
        RateLimiters {
            ocid: KeyedLimiter::new(config.ocid_per_second, config.ocid_burst),
            device: KeyedLimiter::new(config.device_per_second, config.device_burst),
        }
    }

    /// One request by sender `ocid` (signature already verified): 429 `RATE_LIMITED` when it
    /// is over its budget.
    pub fn admit_ocid(&self, ocid: u64) -> Result<(), ApiError> {
        admit(self.ocid.as_ref(), &ocid.to_string(), || {
            format!("OCID {ocid} sends more than its request budget")
        })
    }

    /// One request by device `device_id` (signature already verified): 429 `RATE_LIMITED`
    /// when it is over its budget.
    pub fn admit_device(&self, device_id: &str) -> Result<(), ApiError> {
        admit(self.device.as_ref(), device_id, || {
            format!("device {device_id} sends more than its request budget")
        })
    }
}

fn admit(
    limiter: Option<&KeyedLimiter>,
    key: &str,
    who: impl FnOnce() -> String,
) -> Result<(), ApiError> {
    let Some(limiter) = limiter else {
        return Ok(());
    };
    limiter
        .check(key, Instant::now())
        .map_err(|wait| rate_limited(&who(), wait))
}

/// 429 `RATE_LIMITED` telling the caller to wait `wait` (rounded up to whole seconds, at
/// least 1) in `details.retryAfterSeconds`; the error response adds the same value as the
/// `Retry-After` header.
pub fn rate_limited(who: &str, wait: Duration) -> ApiError {
    let secs = retry_after_secs(wait);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("{who}: retry after {secs} s, and spread requests out"),
    )
    .with_details(serde_json::json!({ "retryAfterSeconds": secs }))
}

/// `wait` in whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_until_refilled() {
        let limiter = KeyedLimiter::new(2, 3).unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check("a", t0).unwrap();
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Another key has its own bucket.
        limiter.check("b", t0).unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        limiter.check("a", t1).unwrap();
        assert!(limiter.check("a", t1).is_err());
        // Much later the bucket is full again, never fuller than the burst.
        let t2 = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            limiter.check("a", t2).unwrap();
        }
        assert!(limiter.check("a", t2).is_err());
        // Time going backwards adds nothing.
        assert!(limiter.check("a", t0).is_err());
    }

    #[test]
    fn zero_rate_is_off_and_zero_burst_is_one() {
        assert!(KeyedLimiter::new(0, 100).is_none());
        let limiters = RateLimiters::new(&RateLimitConfig {
            ocid_per_second: 0,
            ocid_burst: 0,
            device_per_second: 1,
            device_burst: 0,
        });
        for _ in 0..1000 {
            limiters.admit_ocid(500).unwrap();
        }
        limiters.admit_device("dev_1").unwrap();
        let refused = limiters.admit_device("dev_1").unwrap_err();
        assert_eq!(
            (refused.code, refused.status),
            (ErrorCode::RateLimited, 429)
        );
        assert_eq!(refused.details.unwrap()["retryAfterSeconds"], 1);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn idle_keys_are_purged() {
        let limiter = KeyedLimiter::new(1000, 1).unwrap();
        let t0 = Instant::now();
        for i in 0..PURGE_AT_KEYS {
            limiter.check(&i.to_string(), t0).unwrap();
        }
        // A second later every bucket is full again (idle): a new key purges them.
        limiter.check("new", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
    }

    #[test]
    fn defaults_let_a_busy_merchant_through() {
        let config = RateLimitConfig::default();
        assert!(config.ocid_per_second >= 10_000 && config.ocid_burst >= config.ocid_per_second);
        let limiters = RateLimiters::new(&config);
        for _ in 0..20_000 {
            limiters.admit_ocid(500).unwrap();
        }
    }
}
