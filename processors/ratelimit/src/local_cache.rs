//! Identities known to be over their limit, remembered in process until they may retry (as
//! envoy's ratelimit service does), so a flood from one identity costs no Redis round trips.
//!
//! Exact for a single process: a denied request consumes nothing in Redis, so Redis would give
//! every request before the retry time the same answer. With several processes, one that has
//! not seen the denial still asks Redis. Bounded by `local_cache_size` (quick_cache evicts the
//! least useful entries); entries are dropped when read after their time.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::algorithm::{Algorithm, Decision};

#[derive(Debug, Clone)]
pub(crate) struct Blocked {
    /// The denial as Redis gave it, at `at`.
    decision: Decision,
    /// The algorithm of the limit that denied (for the metric label).
    pub algorithm: Algorithm,
    /// Index of that limit in its rule (for the policy of the `RateLimit` field).
    pub limit_index: usize,
    at: Instant,
    until: Instant,
}

impl Blocked {
    /// The denial as it stands at `now`: retry and reset shortened by the time since.
    pub fn decision(&self, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(self.at);
        Decision {
            retry_after: Some(self.until.saturating_duration_since(now)),
            reset_after: self.decision.reset_after.saturating_sub(elapsed),
            ..self.decision
        }
    }
}

pub(crate) struct LocalCache {
    cache: Option<Cache<String, Blocked>>,
}

impl LocalCache {
    /// A cache of up to `size` identities; 0 disables it.
    pub fn new(size: usize) -> Self {
        Self {
            cache: (size > 0).then(|| Cache::new(size)),
        }
    }

    /// The block on `key` if one is still in force at `now`.
    pub fn blocked(&self, key: &str, now: Instant) -> Option<Blocked> {
        let cache = self.cache.as_ref()?;
        let blocked = cache.get(key)?;
        if blocked.until > now {
            return Some(blocked);
        }
        cache.remove(key);
        None
    }

    /// Forgets every block (the rules changed, so their limits may have).
    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Remembers that `key` was denied at `now` until `decision.retry_after` has passed.
    pub fn block(
        &self,
        key: &str,
        decision: Decision,
        algorithm: Algorithm,
        limit_index: usize,
        now: Instant,
    ) {
        let (Some(cache), Some(retry)) = (self.cache.as_ref(), decision.retry_after) else {
            return;
        };
        if retry.is_zero() {
            return;
        }
        let blocked = Blocked {
            decision,
            algorithm,
            limit_index,
            at: now,
            until: now + retry.min(MAX_BLOCK),
        };
        cache.insert(key.to_owned(), blocked);
    }
}

/// How long a block lasts at most, whatever Redis said (a guard against a bad reply).
pub(crate) const MAX_BLOCK: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(retry_s: u64) -> Decision {
        Decision {
            retry_after: Some(Duration::from_secs(retry_s)),
            reset_after: Duration::from_secs(10),
            ..Decision::unavailable(5)
        }
    }

    #[test]
    fn blocks_until_the_retry_time_then_forgets() {
        let cache = LocalCache::new(10);
        let t0 = Instant::now();
        cache.block("k", denial(2), Algorithm::FixedWindow, 1, t0);
        let hit = cache.blocked("k", t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(hit.limit_index, 1);
        let d = hit.decision(t0 + Duration::from_secs(1));
        assert_eq!(d.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(d.reset_after, Duration::from_secs(9));
        assert!(!d.allowed);
        assert!(cache.blocked("k", t0 + Duration::from_secs(2)).is_none());
        assert!(
            cache.blocked("k", t0).is_none(),
            "an expired entry is removed when read"
        );
    }

    #[test]
    fn disabled_cache_and_allowances_store_nothing() {
        let t0 = Instant::now();
        let off = LocalCache::new(0);
        off.block("k", denial(5), Algorithm::FixedWindow, 0, t0);
        assert!(off.blocked("k", t0).is_none());
        let on = LocalCache::new(10);
        on.block("k", Decision::unlimited(5), Algorithm::FixedWindow, 0, t0);
        assert!(on.blocked("k", t0).is_none());
    }
}
