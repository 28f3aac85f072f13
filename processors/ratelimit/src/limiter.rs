//! [`RateLimiter`]: rules → one script call per matching rule → one [`Verdict`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::join_all;
use prometheus::Registry;

use crate::RateLimitError;
use crate::algorithm::{Decision, Limit};
use crate::backend::Backend;
use crate::keys::{self, DIRECT};
use crate::local_cache::LocalCache;
use crate::metrics::{Outcome, RateLimitMetrics};
use crate::reload;
use crate::rules::{OnRedisError, RequestInfo, Rule, RuleSet};
use crate::script::{self, ScriptReply};
use crate::settings::RateLimitSettings;
use crate::verdict::{Policy, Verdict};

/// How long [`RateLimiter::new`] waits for Redis to load the script before going on without.
const WARM_UP: Duration = Duration::from_secs(2);

/// The distributed rate limiter. Cloning is cheap and shares connection, rules, cache and
/// metrics; the rules watcher stops when the last clone is dropped.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    backend: Option<Backend>,
    prefix: String,
    timeout: Duration,
    rules: RwLock<Arc<RuleSet>>,
    cache: LocalCache,
    pub(crate) metrics: RateLimitMetrics,
}

impl Inner {
    pub(crate) fn rules(&self) -> Arc<RuleSet> {
        match self.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_rules(&self, rules: RuleSet) {
        self.metrics
            .rules
            .set(i64::try_from(rules.rules.len()).unwrap_or(i64::MAX));
        let rules = Arc::new(rules);
        match self.rules.write() {
            Ok(mut current) => *current = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
        // Blocks were decided under the old limits.
        self.cache.clear();
    }
}

impl RateLimiter {
    /// Loads the rules file, prepares the Redis connection (single node, or cluster when
    /// `cluster_nodes` is set), registers the metrics in `registry` and starts the rules
    /// watcher. Redis being down is not an error (rules fail open or closed until it is back);
    /// a missing or invalid rules file is. A disabled limiter touches neither.
    pub async fn new(
        settings: &RateLimitSettings,
        registry: &Registry,
    ) -> Result<Self, RateLimitError> {
        if !settings.enabled {
            return Ok(Self::disabled());
        }
        let metrics = RateLimitMetrics::register(registry)?;
        let (rules, seen) = reload::load(&settings.rules_file)?;
        let backend = Backend::new(settings)?;
        match tokio::time::timeout(WARM_UP, backend.prepare()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "rate limiter: redis not ready; rules fail open or closed until it is")
            }
            Err(_) => tracing::warn!("rate limiter: redis did not answer within {WARM_UP:?}"),
        }
        let limiter = Self::build(Some(backend), settings, metrics);
        limiter.inner.set_rules(rules);
        let (path, interval) = (settings.rules_file.clone(), settings.reload_interval);
        reload::spawn(Arc::downgrade(&limiter.inner), path, interval, seen);
        tracing::info!(rules = limiter.rules().rules.len(), file = %settings.rules_file.display(), cluster = settings.cluster_mode(), "rate limiter ready");
        Ok(limiter)
    }

    /// A limiter for callers that name their own keys and limits ([`RateLimiter::check_key`]),
    /// with no rules file and regardless of `enabled`: the notification service's frequency
    /// caps must hold even where the ingress runs without rate limiting. Its metrics go to
    /// `registry`.
    pub async fn for_keys(
        settings: &RateLimitSettings,
        registry: &Registry,
    ) -> Result<Self, RateLimitError> {
        let metrics = RateLimitMetrics::register(registry)?;
        let backend = Backend::new(settings)?;
        match tokio::time::timeout(WARM_UP, backend.prepare()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "rate limiter (keys): redis not ready; calls fail open or closed until it is")
            }
            Err(_) => {
                tracing::warn!("rate limiter (keys): redis did not answer within {WARM_UP:?}")
            }
        }
        Ok(Self::build(Some(backend), settings, metrics))
    }

    /// A limiter that allows everything and never touches Redis (`enabled: false`).
    pub fn disabled() -> Self {
        let metrics = RateLimitMetrics::register(&Registry::new());
        match metrics {
            Ok(metrics) => Self::build(None, &RateLimitSettings::default(), metrics),
            // Registering fresh metrics in a fresh registry cannot collide.
            Err(error) => unreachable!("metrics of a fresh registry: {error}"),
        }
    }

    fn build(
        backend: Option<Backend>,
        settings: &RateLimitSettings,
        metrics: RateLimitMetrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                backend,
                prefix: settings.key_prefix.clone(),
                timeout: settings.timeout,
                rules: RwLock::new(Arc::new(RuleSet::default())),
                cache: LocalCache::new(settings.local_cache_size),
                metrics,
            }),
        }
    }

    /// Whether requests are limited (false for [`RateLimiter::disabled`]).
    pub fn enabled(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.inner.rules()
    }

    /// Replaces the rules at once (the watcher does this when the file changes).
    pub fn set_rules(&self, rules: RuleSet) {
        self.inner.set_rules(rules);
    }

    /// Decides `request` under every rule it matches: one script call per rule (all the rule's
    /// limits for the request's identity at once, rules concurrently), the most restrictive
    /// non-shadow decision wins. Never fails and never waits longer than `timeout` for Redis.
    pub async fn check(&self, request: &RequestInfo<'_>) -> Verdict {
        self.decide(request, None).await
    }

    /// [`RateLimiter::check`] on a given clock (µs since the epoch) instead of Redis `TIME`,
    /// for tests: it bypasses the local cache, whose clock is the process's.
    pub async fn check_at(&self, request: &RequestInfo<'_>, now_us: u64) -> Verdict {
        self.decide(request, Some(now_us)).await
    }

    /// Decides one request for a caller-chosen `key` (notifications: per-user frequency caps).
    /// The key is namespaced under `{<prefix>:direct:…}`; errors are the caller's to handle.
    pub async fn check_key(&self, key: &str, limit: &Limit) -> Result<Decision, RateLimitError> {
        self.check_key_limits(key, std::slice::from_ref(limit))
            .await
    }

    /// Like [`RateLimiter::check_key`] for several limits on one key, in one round trip; the
    /// request counts against all of them or (if one denies) none. Returns the most
    /// restrictive decision.
    pub async fn check_key_limits(
        &self,
        key: &str,
        limits: &[Limit],
    ) -> Result<Decision, RateLimitError> {
        crate::algorithm::validate_limits(limits)?;
        let Some(first) = limits.first() else {
            return Err(RateLimitError::InvalidLimit("no limits".into()));
        };
        if !self.enabled() {
            return Ok(Decision::unlimited(first.limit));
        }
        let base = keys::direct_base(&self.inner.prefix, key);
        // Callers may put different limits on one key: a block holds for this set only.
        let blocked_key: String = limits.iter().map(|l| keys::limit_key(&base, l)).collect();
        let instant = Instant::now();
        if let Some(blocked) = self.inner.cache.blocked(&blocked_key, instant) {
            let metrics = &self.inner.metrics;
            metrics.local_cache_hits.with_label_values(&[DIRECT]).inc();
            metrics.decision(DIRECT, blocked.algorithm.name(), Outcome::Denied);
            return Ok(blocked.decision(instant));
        }
        let reply = self.call(DIRECT, &base, limits, None).await?;
        let (index, decision) = reply.decisive();
        let algorithm = limits[index].algorithm;
        let outcome = if decision.allowed {
            Outcome::Allowed
        } else {
            Outcome::Denied
        };
        self.inner
            .metrics
            .decision(DIRECT, algorithm.name(), outcome);
        if !decision.allowed {
            self.inner
                .cache
                .block(&blocked_key, decision, algorithm, index, instant);
        }
        Ok(decision)
    }

    /// Every limit's decision for `key` on a given clock (µs since the epoch) instead of
    /// Redis `TIME`; for tests and simulations (no local cache, no metrics).
    pub async fn check_key_limits_at(
        &self,
        key: &str,
        limits: &[Limit],
        now_us: u64,
    ) -> Result<Vec<Decision>, RateLimitError> {
        crate::algorithm::validate_limits(limits)?;
        if !self.enabled() {
            return Ok(limits
                .iter()
                .map(|l| Decision::unlimited(l.limit))
                .collect());
        }
        let base = keys::direct_base(&self.inner.prefix, key);
        Ok(self
            .call(DIRECT, &base, limits, Some(now_us))
            .await?
            .decisions)
    }

    async fn decide(&self, request: &RequestInfo<'_>, now_us: Option<u64>) -> Verdict {
        if !self.enabled() {
            return Verdict::unlimited();
        }
        let rules = self.inner.rules();
        let matched: Vec<(&Rule, String)> = rules.matching(&self.inner.prefix, request).collect();
        let mut verdict = Verdict::unlimited();
        verdict.policies = matched
            .iter()
            .filter(|(rule, _)| !rule.shadow)
            .flat_map(|(rule, _)| (0..rule.limits.len()).map(|i| Policy::of(rule, i)))
            .collect();
        let metrics = &self.inner.metrics;
        let instant = Instant::now();
        if now_us.is_none() {
            for (rule, base) in matched.iter().filter(|(rule, _)| !rule.shadow) {
                if let Some(blocked) = self.inner.cache.blocked(base, instant) {
                    metrics
                        .local_cache_hits
                        .with_label_values(&[&rule.name])
                        .inc();
                    metrics.decision(&rule.name, blocked.algorithm.name(), Outcome::Denied);
                    verdict.enforce(rule, blocked.limit_index, blocked.decision(instant));
                    verdict.from_local_cache = true;
                    return verdict;
                }
            }
        }
        let calls = matched.iter().map(|(rule, base)| {
            let limits = rule.limit_values();
            async move { self.call(&rule.name, base, &limits, now_us).await }
        });
        let replies = join_all(calls).await;
        for ((rule, base), reply) in matched.iter().zip(replies) {
            let reply = match reply {
                Ok(reply) => reply,
                Err(_) => {
                    self.failed(rule, &mut verdict);
                    continue;
                }
            };
            let (index, decision) = reply.decisive();
            let algorithm = rule.limits[index].limit.algorithm;
            let outcome = match (decision.allowed, rule.shadow) {
                (true, _) => Outcome::Allowed,
                (false, true) => Outcome::ShadowDenied,
                (false, false) => Outcome::Denied,
            };
            metrics.decision(&rule.name, algorithm.name(), outcome);
            if rule.shadow {
                verdict.shadow_denied |= !decision.allowed;
                continue;
            }
            if !decision.allowed && now_us.is_none() {
                self.inner
                    .cache
                    .block(base, decision, algorithm, index, instant);
            }
            verdict.enforce(rule, index, decision);
        }
        verdict
    }

    /// Applies `rule`'s `on_redis_error` after its script call failed.
    fn failed(&self, rule: &Rule, verdict: &mut Verdict) {
        let first = rule.limits[0].limit;
        let outcome = match rule.on_redis_error {
            OnRedisError::Open => Outcome::FailedOpen,
            OnRedisError::Closed => Outcome::FailedClosed,
        };
        self.inner
            .metrics
            .decision(&rule.name, first.algorithm.name(), outcome);
        if rule.shadow {
            return;
        }
        match rule.on_redis_error {
            OnRedisError::Open => verdict.failed_open = true,
            OnRedisError::Closed => {
                verdict.failed_closed = true;
                verdict.enforce(rule, 0, Decision::unavailable(first.limit));
            }
        }
    }

    /// One script call for one identity, bounded by the timeout, counted in the metrics.
    async fn call(
        &self,
        rule: &str,
        base: &str,
        limits: &[Limit],
        now_us: Option<u64>,
    ) -> Result<ScriptReply, RateLimitError> {
        let Some(backend) = &self.inner.backend else {
            return Err(RateLimitError::Unavailable(
                "the limiter is disabled".into(),
            ));
        };
        let keys: Vec<String> = limits.iter().map(|l| keys::limit_key(base, l)).collect();
        let args = script::arguments(limits, now_us);
        let metrics = &self.inner.metrics;
        let started = Instant::now();
        let result =
            match tokio::time::timeout(self.inner.timeout, backend.eval(&keys, &args)).await {
                Ok(result) => result,
                Err(_) => Err(RateLimitError::Timeout(self.inner.timeout)),
            };
        let result = result.and_then(|reply| {
            if reply.loaded {
                metrics.script_loads.inc();
            }
            script::parse_reply(&reply.values, limits)
        });
        match &result {
            Ok(_) => metrics
                .redis_seconds
                .observe(started.elapsed().as_secs_f64()),
            Err(error) => {
                tracing::debug!(%error, rule, "rate limit script call failed");
                metrics
                    .redis_errors
                    .with_label_values(&[rule, error.kind()])
                    .inc();
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_limiter_needs_nothing() {
        // `disabled` registers its metrics in a fresh registry, which cannot fail.
        let limiter = RateLimiter::disabled();
        assert!(!limiter.enabled());
        assert!(limiter.rules().rules.is_empty());
    }
}
