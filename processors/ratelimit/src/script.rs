//! The one multi-limit Lua script: its source, its arguments and its reply (public so that
//! benchmarks can call the same script with `redis-benchmark EVALSHA`).

use std::sync::LazyLock;
use std::time::Duration;

use crate::RateLimitError;
use crate::algorithm::{Decision, Limit, most_restrictive};

/// The script: shared helpers, the five algorithms, then the two-pass driver.
pub const SOURCE: &str = concat!(
    include_str!("scripts/prelude.lua"),
    include_str!("scripts/bucket.lua"),
    include_str!("scripts/fixed_window.lua"),
    include_str!("scripts/sliding_log.lua"),
    include_str!("scripts/sliding_window_counter.lua"),
    include_str!("scripts/main.lua"),
);

/// SHA1 of [`SOURCE`], the name `EVALSHA` calls it by.
pub static SHA: LazyLock<String> =
    LazyLock::new(|| redis::Script::new(SOURCE).get_hash().to_owned());

/// `ARGV` for `limits`: the clock override (`0` = the server's `TIME`), then per limit the
/// algorithm code, the limit and the window in microseconds.
pub fn arguments(limits: &[Limit], now_us: Option<u64>) -> Vec<String> {
    let mut args = Vec::with_capacity(1 + 3 * limits.len());
    args.push(now_us.unwrap_or(0).to_string());
    for limit in limits {
        args.push(limit.algorithm.code().to_owned());
        args.push(limit.limit.to_string());
        args.push(limit.window_us().to_string());
    }
    args
}

/// One script call's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScriptReply {
    /// Every limit allowed the request, and it was counted in each.
    pub all_allowed: bool,
    /// The clock the script used, in microseconds since the epoch.
    pub now_us: u64,
    /// One decision per limit, in order. When `all_allowed` is false nothing was counted and
    /// the limits that would have allowed report their remaining quota without this request.
    pub decisions: Vec<Decision>,
}

impl ScriptReply {
    /// The limit that decides a script reply: a denying one if any, else the one closest to
    /// its limit. An allowed request waits for the longest delay any of its limits asks for.
    pub(crate) fn decisive(&self) -> (usize, Decision) {
        let best = most_restrictive(&self.decisions);
        let index = self
            .decisions
            .iter()
            .position(|d| Some(d) == best)
            .unwrap_or_default();
        let mut decision = self
            .decisions
            .get(index)
            .copied()
            .unwrap_or(Decision::unavailable(0));
        decision.allowed = self.all_allowed;
        if decision.allowed {
            decision.delay = self.decisions.iter().filter_map(|d| d.delay).max();
        }
        (index, decision)
    }
}

/// Reads `{all, now, (allowed, remaining, reset_us, retry_us, delay_us) per limit}`.
pub(crate) fn parse_reply(reply: &[i64], limits: &[Limit]) -> Result<ScriptReply, RateLimitError> {
    if reply.len() != 2 + 5 * limits.len() {
        return Err(RateLimitError::Reply(format!(
            "{} integers for {} limits",
            reply.len(),
            limits.len()
        )));
    }
    let micros = |v: i64| Duration::from_micros(v.max(0).unsigned_abs());
    let optional = |v: i64| (v >= 0).then(|| micros(v));
    let decisions = limits
        .iter()
        .zip(reply[2..].chunks_exact(5))
        .map(|(limit, r)| Decision {
            allowed: r[0] == 1,
            limit: limit.limit,
            remaining: r[1].max(0).unsigned_abs(),
            reset_after: micros(r[2]),
            retry_after: optional(r[3]),
            delay: optional(r[4]),
        })
        .collect();
    Ok(ScriptReply {
        all_allowed: reply[0] == 1,
        now_us: reply[1].max(0).unsigned_abs(),
        decisions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Algorithm;

    fn reply(all_allowed: bool, decisions: Vec<Decision>) -> ScriptReply {
        ScriptReply {
            all_allowed,
            now_us: 0,
            decisions,
        }
    }

    #[test]
    fn the_decisive_limit_keeps_the_longest_delay_of_its_call() {
        let queued = Decision {
            remaining: 5,
            delay: Some(Duration::from_millis(300)),
            ..Decision::unlimited(10)
        };
        let tight = Decision {
            remaining: 1,
            ..Decision::unlimited(3)
        };
        let (index, d) = reply(true, vec![queued, tight]).decisive();
        assert_eq!(
            (index, d.limit, d.delay),
            (1, 3, Some(Duration::from_millis(300)))
        );
        let denied = Decision::unavailable(3);
        let (index, d) = reply(false, vec![queued, denied]).decisive();
        assert_eq!((index, d.allowed, d.delay), (1, false, None));
    }

    #[test]
    fn arguments_carry_the_clock_and_each_limit() {
        let limits = [
            Limit::new(Algorithm::TokenBucket, 10, Duration::from_secs(1)),
            Limit::new(Algorithm::SlidingLog, 100, Duration::from_secs(60)),
        ];
        assert_eq!(
            arguments(&limits, None),
            ["0", "tb", "10", "1000000", "sl", "100", "60000000"]
        );
        assert_eq!(arguments(&limits[..1], Some(42))[0], "42");
    }

    #[test]
    fn replies_become_decisions() {
        let limits = [
            Limit::new(Algorithm::LeakyBucket, 3, Duration::from_secs(3)),
            Limit::new(Algorithm::FixedWindow, 5, Duration::from_secs(60)),
        ];
        let reply =
            parse_reply(&[0, 7, 1, 2, 1_000_000, -1, 500, 0, 0, 9, 9, -1], &limits).unwrap();
        assert!(!reply.all_allowed);
        assert_eq!(reply.now_us, 7);
        assert_eq!(reply.decisions[0].delay, Some(Duration::from_micros(500)));
        assert_eq!(reply.decisions[0].retry_after, None);
        assert_eq!(reply.decisions[1].limit, 5);
        assert_eq!(
            reply.decisions[1].retry_after,
            Some(Duration::from_micros(9))
        );
        assert!(parse_reply(&[1, 7], &limits).is_err());
    }

    #[test]
    fn the_script_is_assembled_in_dependency_order() {
        let helper = SOURCE.find("local function fmt").unwrap();
        let bucket = SOURCE.find("local function bucket").unwrap();
        let driver = SOURCE.find("local algorithms").unwrap();
        assert!(helper < bucket && bucket < driver);
        assert_eq!(SHA.len(), 40);
    }
}
