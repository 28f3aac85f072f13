//! What a limit is (algorithm, count, window) and what one decision says.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::RateLimitError;

/// The five algorithms; see the crate doc for their Redis data and exact semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// Bucket of `limit` tokens refilled at `limit` per `window`; bursts up to `limit` pass.
    TokenBucket,
    /// Queue of `limit` slots drained at `limit` per `window`; a request gets a slot and the
    /// [`Decision::delay`] it must wait, or is refused when the queue is full.
    LeakyBucket,
    /// `limit` requests per epoch-aligned window; up to 2 × `limit` across a boundary.
    FixedWindow,
    /// Exactly `limit` requests in any `window` (a sorted set of timestamps).
    SlidingLog,
    /// The current window's count plus the previous one's, weighted by overlap (the default).
    #[default]
    SlidingWindowCounter,
}

impl Algorithm {
    /// Every algorithm, in documentation order.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::TokenBucket,
        Algorithm::LeakyBucket,
        Algorithm::FixedWindow,
        Algorithm::SlidingLog,
        Algorithm::SlidingWindowCounter,
    ];

    /// The name used in rules files and metric labels (`token_bucket`, …).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "token_bucket",
            Algorithm::LeakyBucket => "leaky_bucket",
            Algorithm::FixedWindow => "fixed_window",
            Algorithm::SlidingLog => "sliding_log",
            Algorithm::SlidingWindowCounter => "sliding_window_counter",
        }
    }

    /// The short code used in Redis keys and script arguments.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Algorithm::TokenBucket => "tb",
            Algorithm::LeakyBucket => "lb",
            Algorithm::FixedWindow => "fw",
            Algorithm::SlidingLog => "sl",
            Algorithm::SlidingWindowCounter => "sw",
        }
    }

    /// Whether the script multiplies `limit` by the window in microseconds.
    fn scales_by_window(self) -> bool {
        matches!(
            self,
            Algorithm::TokenBucket | Algorithm::LeakyBucket | Algorithm::SlidingWindowCounter
        )
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One limit: `limit` requests per `window` with `algorithm`. For the buckets, `limit` is also
/// the capacity (token bucket) or queue size (leaky bucket) and `limit / window` the rate.
///
/// In YAML: `{algorithm: token_bucket, limit: 10, window: 1s}`; `algorithm` defaults to
/// `sliding_window_counter`; `window` is a duration (`1s`, `1m`, `1h`) or whole seconds (`60`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// How requests are counted.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Requests per window (bucket capacity, queue size); at least 1.
    pub limit: u64,
    /// The window, or the time the bucket needs to refill or drain `limit` requests; a whole
    /// number of milliseconds, at least 1 ms.
    #[serde(with = "window_serde")]
    pub window: Duration,
}

/// Bucket levels and weighted counts are `limit × window in µs`; Lua numbers are doubles.
const EXACT_MAX: u128 = 1 << 53;

impl Limit {
    /// A limit of `limit` requests per `window` counted with `algorithm`.
    pub fn new(algorithm: Algorithm, limit: u64, window: Duration) -> Self {
        Self {
            algorithm,
            limit,
            window,
        }
    }

    /// Checks what the scripts need: `limit ≥ 1`, a window of whole milliseconds ≥ 1 ms, and
    /// `limit × window (µs) ≤ 2^53` for the algorithms that compute in those units.
    pub fn validate(&self) -> Result<(), RateLimitError> {
        let invalid = |why: String| Err(RateLimitError::InvalidLimit(format!("{self}: {why}")));
        if self.limit == 0 {
            return invalid("limit must be at least 1".into());
        }
        if self.window < Duration::from_millis(1)
            || !self.window.subsec_nanos().is_multiple_of(1_000_000)
        {
            return invalid("window must be a whole number of milliseconds, at least 1 ms".into());
        }
        if self.algorithm.scales_by_window()
            && u128::from(self.limit) * self.window.as_micros() > EXACT_MAX
        {
            return invalid("limit × window in µs exceeds 2^53; use a shorter window".into());
        }
        Ok(())
    }

    /// The window in microseconds (what the scripts count in).
    pub(crate) fn window_us(&self) -> u64 {
        u64::try_from(self.window.as_micros()).unwrap_or(u64::MAX)
    }

    /// The window in milliseconds (what keys carry).
    pub(crate) fn window_ms(&self) -> u64 {
        u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {} ({})",
            self.limit,
            humantime::format_duration(self.window),
            self.algorithm
        )
    }
}

/// The answer for one limit (or, aggregated, for a rule or a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed (after [`Decision::delay`], if any).
    pub allowed: bool,
    /// The limit this decision is about (`X-RateLimit-Limit`).
    pub limit: u64,
    /// Requests left right now, after this one if it was allowed (`X-RateLimit-Remaining`).
    pub remaining: u64,
    /// Time until the quota is fully available again if nothing else arrives: bucket empty
    /// (leaky) or full (token), window end (fixed), newest logged request out of the window
    /// (log), both windows' counts decayed (sliding counter).
    pub reset_after: Duration,
    /// When denied: the earliest time a retry can succeed (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// Leaky bucket only, when allowed: how long to wait before processing the request.
    pub delay: Option<Duration>,
}

impl Decision {
    /// An allowed decision that used nothing (the limiter is disabled).
    pub fn unlimited(limit: u64) -> Self {
        Self {
            allowed: true,
            limit,
            remaining: limit,
            reset_after: Duration::ZERO,
            retry_after: None,
            delay: None,
        }
    }

    /// A denial without an answer from Redis (a rule that fails closed): retry in a second.
    pub fn unavailable(limit: u64) -> Self {
        Self {
            allowed: false,
            limit,
            remaining: 0,
            reset_after: Duration::from_secs(1),
            retry_after: Some(Duration::from_secs(1)),
            delay: None,
        }
    }

    /// Whether `self` restricts more than `other`: a denial beats an allowance; among denials
    /// the longer retry wins; among allowances the fewer remaining, then the later reset.
    pub fn is_more_restrictive_than(&self, other: &Decision) -> bool {
        match (self.allowed, other.allowed) {
            (false, true) => true,
            (true, false) => false,
            (false, false) => {
                (self.retry_after, self.reset_after) > (other.retry_after, other.reset_after)
            }
            (true, true) => {
                (self.remaining, std::cmp::Reverse(self.reset_after))
                    < (other.remaining, std::cmp::Reverse(other.reset_after))
            }
        }
    }
}

/// The most restrictive of `decisions` (the first one on a tie), or `None` if there are none.
pub fn most_restrictive<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Option<&'a Decision> {
    decisions.into_iter().fold(None, |best, d| match best {
        Some(b) if !d.is_more_restrictive_than(b) => Some(b),
        _ => Some(d),
    })
}

/// Checks each limit, and that no two share an algorithm and window (they would share a key).
pub(crate) fn validate_limits(limits: &[Limit]) -> Result<(), RateLimitError> {
    let mut seen = HashSet::new();
    for limit in limits {
        limit.validate()?;
        if !seen.insert((limit.algorithm, limit.window)) {
            return Err(RateLimitError::InvalidLimit(format!(
                "{limit}: two limits with the same algorithm and window"
            )));
        }
    }
    Ok(())
}

/// Windows in YAML: a humantime duration (`"1m"`) or whole seconds (`60`, as in the seed).
pub(crate) mod window_serde {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Window {
        Seconds(u64),
        Text(String),
    }

    pub fn serialize<S: Serializer>(window: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*window).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Window::deserialize(d)? {
            Window::Seconds(s) => Ok(Duration::from_secs(s)),
            Window::Text(t) => humantime::parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }

    /// The same for an optional field (use with `#[serde(default)]`).
    pub mod optional {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(remaining: u64, reset_s: u64) -> Decision {
        Decision {
            remaining,
            reset_after: Duration::from_secs(reset_s),
            ..Decision::unlimited(10)
        }
    }

    fn denied(retry_s: u64) -> Decision {
        Decision {
            retry_after: Some(Duration::from_secs(retry_s)),
            ..Decision::unavailable(10)
        }
    }

    #[test]
    fn most_restrictive_prefers_denials_then_longest_retry_then_fewest_remaining() {
        let a = allowed(5, 1);
        let b = allowed(2, 1);
        let c = allowed(2, 9);
        assert_eq!(most_restrictive([&a, &b, &c]), Some(&c));
        let d = denied(3);
        let e = denied(30);
        assert_eq!(most_restrictive([&a, &d, &b, &e, &c]), Some(&e));
        assert_eq!(most_restrictive([&d, &a]), Some(&d));
        assert_eq!(most_restrictive(std::iter::empty()), None);
    }

    #[test]
    fn duplicate_limits_in_one_call_are_refused() {
        let l = Limit::new(Algorithm::FixedWindow, 5, Duration::from_secs(1));
        assert!(validate_limits(&[l, l]).is_err());
        assert!(validate_limits(&[l, Limit { limit: 9, ..l }]).is_err());
        assert!(
            validate_limits(&[
                l,
                Limit {
                    window: Duration::from_secs(2),
                    ..l
                }
            ])
            .is_ok()
        );
    }

    #[test]
    fn limits_validate() {
        let ok = Limit::new(Algorithm::TokenBucket, 10, Duration::from_secs(1));
        assert!(ok.validate().is_ok());
        assert!(Limit { limit: 0, ..ok }.validate().is_err());
        assert!(
            Limit {
                window: Duration::from_micros(1500),
                ..ok
            }
            .validate()
            .is_err()
        );
        assert!(
            Limit {
                window: Duration::ZERO,
                ..ok
            }
            .validate()
            .is_err()
        );
        let huge = Limit::new(
            Algorithm::TokenBucket,
            1_000_000,
            Duration::from_secs(86_400),
        );
        assert!(huge.validate().is_err());
        // Counting algorithms never multiply, so the same numbers are fine for them.
        assert!(
            Limit {
                algorithm: Algorithm::FixedWindow,
                ..huge
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn limits_parse_from_yaml_with_defaults_and_both_window_forms() {
        let l: Limit = serde_yaml::from_str("{limit: 100, window: 60}").unwrap();
        assert_eq!(
            l,
            Limit::new(
                Algorithm::SlidingWindowCounter,
                100,
                Duration::from_secs(60)
            )
        );
        let l: Limit =
            serde_yaml::from_str("{algorithm: leaky_bucket, limit: 5, window: 250ms}").unwrap();
        assert_eq!(
            l,
            Limit::new(Algorithm::LeakyBucket, 5, Duration::from_millis(250))
        );
        assert!(serde_yaml::from_str::<Limit>("{limit: 1, window: 1s, burst: 3}").is_err());
        assert!(serde_yaml::from_str::<Limit>("{algorithm: gcra, limit: 1, window: 1s}").is_err());
        let back = serde_yaml::to_string(&l).unwrap();
        assert_eq!(serde_yaml::from_str::<Limit>(&back).unwrap(), l);
    }
}
