//! The redirect cache: links in Redis in front of the store (cache-aside).

use std::time::Duration;

use redis::AsyncCommands;
use sixfold_runtime::redis_conn::RedisConn;

use crate::link::Link;

/// Links cached in Redis under `<prefix>:link:<code>`, with a TTL that never outlives the link.
#[derive(Clone)]
pub struct LinkCache {
    redis: RedisConn,
    prefix: String,
    ttl: Duration,
}

impl LinkCache {
    /// A cache writing keys under `prefix` that live at most `ttl`.
    pub fn new(redis: RedisConn, prefix: &str, ttl: Duration) -> Self {
        Self {
            redis,
            prefix: prefix.to_string(),
            ttl,
        }
    }

    fn key(&self, code: &str) -> String {
        format!("{}:link:{code}", self.prefix)
    }

    /// The cached link, if any.
    pub async fn get(&self, code: &str) -> redis::RedisResult<Option<Link>> {
        let mut redis = self.redis.clone();
        let raw: Option<Vec<u8>> = redis.get(self.key(code)).await?;
        // An entry that does not parse (an older format) counts as a miss.
        Ok(raw.and_then(|bytes| serde_json::from_slice(&bytes).ok()))
    }

    /// Caches `link` until the TTL or its expiry, whichever comes first; an expired link is not
    /// cached.
    pub async fn put(&self, link: &Link, now_ms: i64) -> redis::RedisResult<()> {
        let mut ttl_ms = self.ttl.as_millis() as i64;
        if let Some(expires) = link.expires_at_ms {
            ttl_ms = ttl_ms.min(expires - now_ms);
        }
        if ttl_ms <= 0 {
            return Ok(());
        }
        let value = serde_json::to_vec(link).unwrap_or_default();
        let mut redis = self.redis.clone();
        redis
            .pset_ex::<_, _, ()>(self.key(&link.code), value, ttl_ms as u64)
            .await
    }

    /// Removes a cached link.
    pub async fn delete(&self, code: &str) -> redis::RedisResult<()> {
        let mut redis = self.redis.clone();
        redis.del::<_, ()>(self.key(code)).await
    }
}

/// An in-process cache in front of Redis for the hottest links, so a popular link costs no
/// network round trip. Entries live at most `ttl` (seconds, by default): links never change
/// while they exist, and an alias can only be taken again after its old link was purged, a
/// grace period after expiry, so a short TTL bounds any staleness.
pub struct NearCache {
    entries: quick_cache::sync::Cache<String, (std::sync::Arc<Link>, std::time::Instant)>,
    ttl: Duration,
}

impl NearCache {
    /// A cache of at most `capacity` links, each kept at most `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            ttl,
        }
    }

    /// The link, if cached and fresh.
    pub fn get(&self, code: &str) -> Option<std::sync::Arc<Link>> {
        let (link, at) = self.entries.get(code)?;
        if at.elapsed() < self.ttl {
            Some(link)
        } else {
            self.entries.remove(code);
            None
        }
    }

    /// Caches `link`.
    pub fn put(&self, link: std::sync::Arc<Link>) {
        if !self.ttl.is_zero() {
            self.entries
                .insert(link.code.clone(), (link, std::time::Instant::now()));
        }
    }

    /// Forgets `code`.
    pub fn remove(&self, code: &str) {
        self.entries.remove(code);
    }
}
