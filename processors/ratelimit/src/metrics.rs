//! The limiter's Prometheus metrics, registered in the registry the caller passes.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Decisions, by `rule`, `algorithm` and `result` (see [`Outcome`]); one per rule per request
/// (`rule="direct"` for [`crate::RateLimiter::check_key`]).
pub const DECISIONS: &str = "sixfold_ratelimit_decisions_total";
/// Redis calls that failed or timed out, by `rule` and `kind` (`timeout`, `unavailable`,
/// `redis`, `reply`).
pub const REDIS_ERRORS: &str = "sixfold_ratelimit_redis_errors_total";
/// Requests refused from the local cache without asking Redis, by `rule`.
pub const LOCAL_CACHE_HITS: &str = "sixfold_ratelimit_local_cache_hits_total";
/// Script calls that found the script missing on their node and sent it with `EVAL`.
pub const SCRIPT_LOADS: &str = "sixfold_ratelimit_script_loads_total";
/// Time of one script call (one round trip), in seconds.
pub const REDIS_SECONDS: &str = "sixfold_ratelimit_redis_seconds";
/// Rules file reloads, by `result` (`ok`, `error`).
pub const RELOADS: &str = "sixfold_ratelimit_rules_reloads_total";
/// Rules currently loaded.
pub const RULES: &str = "sixfold_ratelimit_rules";

/// The `result` label of [`DECISIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within every limit.
    Allowed,
    /// Over a limit; the request is refused.
    Denied,
    /// Over a limit of a shadow rule; the request goes on.
    ShadowDenied,
    /// Redis failed; the rule lets the request through.
    FailedOpen,
    /// Redis failed; the rule refuses the request (shadow rules only count it).
    FailedClosed,
}

impl Outcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::ShadowDenied => "shadow_denied",
            Outcome::FailedOpen => "failed_open",
            Outcome::FailedClosed => "failed_closed",
        }
    }
}

#[derive(Clone)]
pub(crate) struct RateLimitMetrics {
    pub decisions: IntCounterVec,
    pub redis_errors: IntCounterVec,
    pub local_cache_hits: IntCounterVec,
    pub script_loads: IntCounter,
    pub redis_seconds: Histogram,
    pub reloads: IntCounterVec,
    pub rules: IntGauge,
}

impl RateLimitMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let script_loads = IntCounter::new(
            SCRIPT_LOADS,
            "Script calls that had to send the script (NOSCRIPT).",
        )?;
        registry.register(Box::new(script_loads.clone()))?;
        let buckets = vec![
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
        ];
        let redis_seconds = Histogram::with_opts(
            HistogramOpts::new(REDIS_SECONDS, "Time of one rate-limit script call.")
                .buckets(buckets),
        )?;
        registry.register(Box::new(redis_seconds.clone()))?;
        let rules = IntGauge::new(RULES, "Rate-limit rules loaded.")?;
        registry.register(Box::new(rules.clone()))?;
        Ok(Self {
            decisions: counter(
                DECISIONS,
                "Rate-limit decisions.",
                &["rule", "algorithm", "result"],
            )?,
            redis_errors: counter(
                REDIS_ERRORS,
                "Rate-limit Redis calls that failed or timed out.",
                &["rule", "kind"],
            )?,
            local_cache_hits: counter(
                LOCAL_CACHE_HITS,
                "Requests refused from the local over-limit cache.",
                &["rule"],
            )?,
            script_loads,
            redis_seconds,
            reloads: counter(RELOADS, "Rules file reloads.", &["result"])?,
            rules,
        })
    }

    pub(crate) fn decision(&self, rule: &str, algorithm: &str, outcome: Outcome) {
        self.decisions
            .with_label_values(&[rule, algorithm, outcome.label()])
            .inc();
    }
}
