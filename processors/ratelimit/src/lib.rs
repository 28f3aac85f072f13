//! Distributed rate limiter: five algorithms as one Redis Lua script, YAML rules, a local
//! over-limit cache. A library, not a Kafka processor: it consumes and produces no topics.
//!
//! # Users
//! The ingress runs every request through [`RateLimiter::check`] (a [`RequestInfo`] in, a
//! [`Verdict`] out, with the `X-RateLimit-*`, `Retry-After`, `RateLimit` and
//! `RateLimit-Policy` values). The notifier calls [`RateLimiter::check_key`] for per-user
//! frequency caps: that is the one allowed use of one processor crate by another (DESIGN.md),
//! stated in both crate docs; nothing else may depend on this crate but the ingress and the
//! binary.
//!
//! # Algorithms and their Redis data
//! All decisions are made by one Lua script ([`script::SOURCE`], assembled from
//! `src/scripts/*.lua`): loaded on every node at start, called by `EVALSHA`, and sent with
//! `EVAL` by the same connection when a node answers `NOSCRIPT` (a restarted node, `SCRIPT
//! FLUSH`) — one round trip per identity. Time comes from the Redis server (`TIME`,
//! microseconds), so application servers with skewed clocks agree.
//! A `limit` per `window` means:
//!
//! | [`Algorithm`] | Redis data per limit | admits |
//! |---|---|---|
//! | `token_bucket` | hash `{l, t}`: used capacity, last update | while a token is left; `limit` tokens, refilled at `limit`/`window`, so bursts of up to `limit` pass |
//! | `leaky_bucket` | hash `{l, t}`: queue length, last update | while the queue (`limit` slots, drained at `limit`/`window`) has a free slot; [`Decision::delay`] says how long the request waits for its turn, at most `(limit-1)/limit × window` |
//! | `fixed_window` | hash `{w, c}`: window start, count | `limit` per epoch-aligned window; up to 2 × `limit` straddle a boundary |
//! | `sliding_log` | sorted set: one member `<µs>:<n>` per admitted request, score = µs | exactly `limit` in any `(now − window, now]` |
//! | `sliding_window_counter` (default) | hash `{w, c, p}`: window start, its count, previous count | while `p × (window − elapsed)/window + c + 1 ≤ limit`: the seed's weighted estimate, but counting this request (the seed admits while the estimate is `< limit`, which can end at `limit + 1`) |
//!
//! The buckets store levels in units of `1/window` of a request and the counter compares
//! `× window`, so all arithmetic is on integers below 2^53 (Lua numbers are doubles):
//! [`Limit::validate`] refuses `limit × window(µs) > 2^53` for these three. Token and leaky
//! bucket admit exactly the same requests (the leaky bucket *as a meter* is the token bucket);
//! they differ in what the caller does: the token bucket lets a burst through at once, the
//! leaky bucket *as a queue* hands each request the delay that spaces them `window/limit`
//! apart. GCRA is not a sixth algorithm: it is this token bucket stored as one timestamp (the
//! theoretical arrival time) instead of `{level, time}`, with identical decisions.
//!
//! Each decision returns allowed, limit, remaining, `reset_after` (until the quota is whole
//! again), `retry_after` (when denied: the earliest time a retry can succeed, exact for every
//! algorithm) and, for the leaky bucket, `delay`. Every key gets a `PEXPIRE` of the time it
//! still matters plus a second, so idle identities cost no memory.
//!
//! **Several limits** of one identity (per second *and* per hour) go to one script call. Its
//! first pass only reads; only if every limit admits does the second pass count the request
//! in all of them. A denied request therefore consumes nothing in any limit (and denied
//! requests are not logged by the sliding log), so a client hammering a per-second limit does
//! not burn its hourly quota. The most restrictive decision wins: a denial with the longest
//! retry, else the fewest remaining ([`most_restrictive`]). Different rules of one request
//! live on different slots and are called concurrently; they are not atomic with each other
//! (a request refused by one rule still counts in the other rules it matched).
//!
//! Decisions are not idempotent: checking one request twice counts it twice, so callers check
//! once per request (the ingress middleware) or per send attempt (the notifier).
//!
//! **Test clock.** The script's first argument is "now" in microseconds, `0` meaning Redis
//! `TIME`. Only [`RateLimiter::check_at`] and [`RateLimiter::check_key_limits_at`] pass one
//! (tests use them to hit every edge exactly); they bypass the local cache.
//!
//! # Key layout
//! `{<key_prefix>:<rule>:<value>…}:<algorithm code>:<window ms>`, e.g.
//! `{rl:api-key-writes:9f86d081884c7d65…}:tb:1000` — the braces are the Redis Cluster hash
//! tag, so every counter of one identity is on one slot and one script may touch them all.
//! Values are percent-escaped, API keys hashed; `check_key` uses `{<prefix>:direct:<key>}`.
//! See [`keys`].
//!
//! # Rules file
//! ```yaml
//! rules:
//!   - name: api-key-writes          # unique, [A-Za-z0-9_.+-]; default: the key joined by '+'
//!     match:                        # all listed must match; absent = any
//!       method: POST                # one or a list, any case
//!       route: "/v1/*"              # one or a list of patterns, * = any characters
//!       # user_id / ip / api_key: exact values (one or a list), e.g. to single out a client
//!     key: api_key                  # one or a list of user_id, ip, api_key, route, method;
//!                                   # a request without one of them skips the rule; none = global
//!     limits:                       # all checked in one round trip; most restrictive wins
//!       - {name: burst, algorithm: token_bucket, limit: 10, window: 1s}
//!       - {limit: 100, window: 1m}  # name defaults to the window ("1m")
//!     shadow: false                 # true: decide and count, never block
//!     on_redis_error: open          # or closed (429 while Redis is unreachable)
//!   - {key: ip, limit: 1000, window: 60}   # the seed's shorthand: one limit, window in seconds
//! ```
//! The seed's JSON example (`{"rules": [{"key": "user_id", "limit": 100, "window": 60}, …]}`)
//! is a valid rules file. Every rule that matches applies (overrides can only tighten). Rules
//! without a `name` are named after their key (`user_id`, `ip+route`, `global`); two such
//! rules with the same key must be named. The counters of a rule survive a reload as long as
//! its name, key and each limit's algorithm and window stay (a raised `limit` applies to the
//! running window at once).
//!
//! The file is re-read when its modification time, size or inode changes, checked every
//! `reload_interval` (and while it is less than two seconds old its text is compared too,
//! since file times are coarse). A file that does not read, parse or validate is logged and
//! counted (`sixfold_ratelimit_rules_reloads_total{result="error"}`) and the previous rules
//! stay; a good one replaces them at once and empties the local cache.
//!
//! # Failure behaviour
//! Every script call is bounded by `timeout` (default 50 ms). A call that fails, times out or
//! cannot connect applies the rule's `on_redis_error`: `open` lets the request through
//! ([`Verdict::failed_open`]), `closed` refuses it with a retry in one second
//! ([`Verdict::failed_closed`]); both count in `sixfold_ratelimit_redis_errors_total`. The
//! connection is made lazily and rebuilt in the background, so a limiter built while Redis is
//! down recovers on its own. [`RateLimiter::check_key`] returns the error instead.
//!
//! # Local cache
//! An identity denied by a non-shadow rule is remembered in process until its `retry_after`
//! (at most `local_cache_size` identities); its requests until then are refused without a
//! Redis round trip ([`Verdict::from_local_cache`]), nor one for the other rules it matches
//! (it is refused anyway). That is exact on one process because a denied request consumes
//! nothing in Redis; other processes learn of the denial from Redis on their own. Shadow rules
//! never use it, and neither do calls on the test clock. `check_key` caches per key and set of
//! limits.
//!
//! # Metrics
//! Registered in the registry given to [`RateLimiter::new`]; names in [`metrics`]:
//! decisions by rule, algorithm and result (`allowed`, `denied`, `shadow_denied`,
//! `failed_open`, `failed_closed`), Redis errors, local cache hits, script loads, script call
//! latency, rules reloads and rules loaded.

#![warn(missing_docs)]

mod algorithm;
mod backend;
pub mod keys;
mod limiter;
mod local_cache;
pub mod metrics;
mod reload;
mod rules;
pub mod script;
mod settings;
mod verdict;

pub use crate::algorithm::{Algorithm, Decision, Limit, most_restrictive};
pub use crate::limiter::RateLimiter;
pub use crate::rules::{
    Descriptor, NamedLimit, OnRedisError, RequestInfo, RequestMatch, Rule, RuleName, RuleSet,
    RulesError,
};
pub use crate::settings::{DEFAULT_REDIS_URL, RateLimitSettings};
pub use crate::verdict::{Policy, Verdict, ceil_secs};

use std::time::Duration;

/// What can go wrong in the limiter.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// A limit the scripts cannot decide (zero, sub-millisecond, too large, duplicated).
    #[error("invalid limit: {0}")]
    InvalidLimit(String),
    /// The rules file could not be loaded.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// The Redis address is not usable.
    #[error("redis {target}: {source}")]
    Connect {
        /// The URL or cluster node list.
        target: String,
        /// Why.
        source: redis::RedisError,
    },
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within the timeout.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// No connection to try (recently failed, or the limiter is disabled).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// The script answered something it never sends.
    #[error("unexpected script reply: {0}")]
    Reply(String),
    /// The metrics could not be registered (already registered in this registry?).
    #[error("register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl RateLimitError {
    /// The `kind` label of `sixfold_ratelimit_redis_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            RateLimitError::Timeout(_) => "timeout",
            RateLimitError::Unavailable(_) | RateLimitError::Connect { .. } => "unavailable",
            RateLimitError::Redis(_) => "redis",
            RateLimitError::Reply(_) => "reply",
            RateLimitError::InvalidLimit(_)
            | RateLimitError::Rules(_)
            | RateLimitError::Metrics(_) => "config",
        }
    }
}
