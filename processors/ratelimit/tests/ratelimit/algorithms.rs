//! Each algorithm's semantics at its edges, on the scripts' test clock.

use std::time::Duration;

use anyhow::Result;
use sixfold_ratelimit::{Algorithm, Decision, Limit, most_restrictive};

use crate::support::{Harness, MS, SEC, T0, Target, on_both};

const NO_RULES: &str = "rules: []";

fn limit(algorithm: Algorithm, limit: u64, window: Duration) -> Limit {
    Limit::new(algorithm, limit, window)
}

fn us(d: u64) -> Duration {
    Duration::from_micros(d)
}

/// One request for `key` under `limit` at `now`.
async fn one(h: &Harness, key: &str, l: Limit, now: u64) -> Result<Decision> {
    let mut d = h.limiter.check_key_limits_at(key, &[l], now).await?;
    Ok(d.remove(0))
}

/// `n` requests at `now`; how many were allowed.
async fn burst(h: &Harness, key: &str, l: Limit, now: u64, n: u64) -> Result<u64> {
    let mut allowed = 0;
    for _ in 0..n {
        allowed += u64::from(one(h, key, l, now).await?.allowed);
    }
    Ok(allowed)
}

async fn token_bucket_bursts_then_refills_at_its_rate(target: Target) -> Result<()> {
    let h = Harness::new(target, "tb", NO_RULES).await?;
    let l = limit(Algorithm::TokenBucket, 10, Duration::from_secs(1));
    for i in 1..=10 {
        let d = one(&h, "k", l, T0).await?;
        assert!(d.allowed, "burst request {i}");
        assert_eq!((d.limit, d.remaining), (10, 10 - i));
        assert_eq!(
            d.reset_after,
            us(i * 100 * MS),
            "refilled after 100 ms per token"
        );
    }
    let d = one(&h, "k", l, T0).await?;
    assert!(!d.allowed);
    assert_eq!((d.remaining, d.retry_after), (0, Some(us(100 * MS))));
    assert_eq!(d.reset_after, us(SEC));
    // Half a token later: still no, and the retry is the other half.
    assert_eq!(
        one(&h, "k", l, T0 + 50 * MS).await?.retry_after,
        Some(us(50 * MS))
    );
    // One token later: exactly one request.
    assert_eq!(burst(&h, "k", l, T0 + 100 * MS, 5).await?, 1);
    // After a long idle time the bucket holds its capacity, not more.
    assert_eq!(burst(&h, "k", l, T0 + 10 * SEC, 15).await?, 10);
    Ok(())
}

async fn leaky_bucket_queues_with_delays_and_refuses_when_full(target: Target) -> Result<()> {
    let h = Harness::new(target, "lb", NO_RULES).await?;
    // A queue of 3 drained at one request per second.
    let l = limit(Algorithm::LeakyBucket, 3, Duration::from_secs(3));
    let mut processed_at = Vec::new();
    for (i, expected_delay) in [0, SEC, 2 * SEC].into_iter().enumerate() {
        let d = one(&h, "k", l, T0).await?;
        assert!(d.allowed);
        assert_eq!(
            d.delay,
            Some(us(expected_delay)),
            "request {i} waits for the queue ahead"
        );
        assert_eq!(d.remaining, 2 - i as u64, "free slots");
        processed_at.push(T0 + expected_delay);
    }
    let full = one(&h, "k", l, T0).await?;
    assert!(!full.allowed, "the queue is full");
    assert_eq!((full.delay, full.retry_after), (None, Some(us(SEC))));
    assert_eq!(full.reset_after, us(3 * SEC), "the queue is empty in 3 s");
    // Half a slot drained: still full, retry in half a second.
    assert_eq!(
        one(&h, "k", l, T0 + 500 * MS).await?.retry_after,
        Some(us(500 * MS))
    );
    // Each second one slot frees; the newcomer waits behind two queued requests.
    for t in [T0 + SEC, T0 + 2 * SEC] {
        let d = one(&h, "k", l, t).await?;
        assert_eq!((d.allowed, d.delay), (true, Some(us(2 * SEC))));
        processed_at.push(t + 2 * SEC);
        assert!(!one(&h, "k", l, t).await?.allowed);
    }
    // Output at a constant rate: one request per second.
    let gaps: Vec<u64> = processed_at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [SEC; 4]);
    Ok(())
}

async fn fixed_window_allows_twice_the_limit_across_a_boundary(target: Target) -> Result<()> {
    let h = Harness::new(target, "fw", NO_RULES).await?;
    let l = limit(Algorithm::FixedWindow, 5, Duration::from_secs(60));
    let before = T0 + 59 * SEC;
    assert_eq!(burst(&h, "k", l, before, 5).await?, 5);
    let d = one(&h, "k", l, before).await?;
    assert_eq!(
        (d.allowed, d.retry_after, d.reset_after),
        (false, Some(us(SEC)), us(SEC))
    );
    // One second later a new window: 5 more, 10 within one second.
    let after = T0 + 60 * SEC;
    assert_eq!(burst(&h, "k", l, after, 8).await?, 5);
    let d = one(&h, "k", l, after).await?;
    assert_eq!(d.retry_after, Some(us(60 * SEC)));
    Ok(())
}

async fn sliding_window_counter_smooths_the_boundary(target: Target) -> Result<()> {
    let h = Harness::new(target, "sw", NO_RULES).await?;
    let l = limit(Algorithm::SlidingWindowCounter, 5, Duration::from_secs(60));
    let before = T0 + 59 * SEC;
    assert_eq!(burst(&h, "k", l, before, 5).await?, 5);
    let d = one(&h, "k", l, before).await?;
    // Next window, the 5 weigh (60-12)/60 × 5 = 4 at 12 s: room for one more at T0+72s.
    assert_eq!((d.allowed, d.retry_after), (false, Some(us(13 * SEC))));
    let after = T0 + 60 * SEC;
    assert_eq!(burst(&h, "k", l, after, 8).await?, 0, "no boundary burst");
    assert_eq!(
        one(&h, "k", l, after).await?.retry_after,
        Some(us(12 * SEC))
    );
    assert_eq!(
        burst(&h, "k", l, T0 + 72 * SEC - 1, 1).await?,
        0,
        "one microsecond early"
    );
    assert_eq!(burst(&h, "k", l, T0 + 72 * SEC, 3).await?, 1);
    assert_eq!(
        one(&h, "k", l, T0 + 72 * SEC).await?.retry_after,
        Some(us(12 * SEC))
    );
    assert_eq!(burst(&h, "k", l, T0 + 84 * SEC, 3).await?, 1);
    Ok(())
}

async fn sliding_window_counter_weighs_like_the_seed(target: Target) -> Result<()> {
    // The seed's example: 42 in the previous minute, at 15 s into this one 18 more make 49.5.
    let h = Harness::new(target, "sw-seed", NO_RULES).await?;
    let l = limit(Algorithm::SlidingWindowCounter, 50, Duration::from_secs(60));
    assert_eq!(burst(&h, "k", l, T0 + 10 * SEC, 42).await?, 42);
    let at = T0 + 75 * SEC;
    assert_eq!(burst(&h, "k", l, at, 18).await?, 18);
    let d = one(&h, "k", l, at).await?;
    // 49.5 + this request > 50; the estimate drops to 49 when the previous minute weighs
    // 31/42 of a window, 714 286 µs later.
    assert_eq!(
        (d.allowed, d.remaining, d.retry_after),
        (false, 0, Some(us(714_286)))
    );
    assert!(!one(&h, "k", l, at + 714_285).await?.allowed);
    assert!(one(&h, "k", l, at + 714_286).await?.allowed);
    Ok(())
}

async fn sliding_log_is_exact(target: Target) -> Result<()> {
    let mut h = Harness::new(target, "sl", NO_RULES).await?;
    let l = limit(Algorithm::SlidingLog, 3, Duration::from_secs(10));
    for (t, remaining) in [(T0, 2), (T0 + 4 * SEC, 1), (T0 + 8 * SEC, 0)] {
        let d = one(&h, "k", l, t).await?;
        assert_eq!(
            (d.allowed, d.remaining, d.reset_after),
            (true, remaining, us(10 * SEC))
        );
    }
    let d = one(&h, "k", l, T0 + 9 * SEC).await?;
    assert_eq!(
        (d.allowed, d.retry_after, d.reset_after),
        (false, Some(us(SEC)), us(9 * SEC))
    );
    // The first request leaves the window (T0+10s-10s, T0+10s] exactly at T0+10s.
    assert!(!one(&h, "k", l, T0 + 10 * SEC - 1).await?.allowed);
    assert!(one(&h, "k", l, T0 + 10 * SEC).await?.allowed);
    assert_eq!(
        one(&h, "k", l, T0 + 10 * SEC).await?.retry_after,
        Some(us(4 * SEC))
    );

    // Against a model, over irregular arrivals: never one decision apart.
    let l = limit(Algorithm::SlidingLog, 5, Duration::from_secs(10));
    let (mut t, mut seed, mut admitted) = (T0, 7u64, Vec::<u64>::new());
    for _ in 0..200 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        t += (seed >> 33) % (800 * MS);
        let expected = admitted.iter().filter(|&&a| a > t - 10 * SEC).count() < 5;
        let d = one(&h, "model", l, t).await?;
        assert_eq!(d.allowed, expected, "at {t}");
        if expected {
            admitted.push(t);
        }
    }
    // Requests in the same microsecond are separate entries.
    let same = limit(Algorithm::SlidingLog, 50, Duration::from_secs(10));
    assert_eq!(burst(&h, "same", same, T0, 60).await?, 50);
    let key = format!("{{{}:direct:same}}:sl:10000", h.settings.key_prefix);
    let entries: u64 = h.raw.query(redis::cmd("ZCARD").arg(&key)).await?;
    assert_eq!(entries, 50);
    Ok(())
}

async fn several_limits_decide_together_and_a_denial_consumes_nothing(
    target: Target,
) -> Result<()> {
    let h = Harness::new(target, "multi", NO_RULES).await?;
    let per_second = limit(Algorithm::TokenBucket, 2, Duration::from_secs(1));
    let per_minute = limit(Algorithm::FixedWindow, 5, Duration::from_secs(60));
    let limits = [per_second, per_minute];
    let at = |now| h.limiter.check_key_limits_at("k", &limits, now);
    let remaining = |d: &[Decision]| (d[0].remaining, d[1].remaining);
    assert_eq!(remaining(&at(T0).await?), (1, 4));
    assert_eq!(remaining(&at(T0).await?), (0, 3));
    for _ in 0..20 {
        let d = at(T0).await?;
        assert!(
            !d[0].allowed && d[1].allowed,
            "only the per-second limit refuses"
        );
        assert_eq!(d[1].remaining, 3, "and the per-minute quota is untouched");
        assert_eq!(most_restrictive(&d), Some(&d[0]));
    }
    assert_eq!(remaining(&at(T0 + SEC).await?), (1, 2));
    assert_eq!(remaining(&at(T0 + SEC).await?), (0, 1));
    assert_eq!(remaining(&at(T0 + 2 * SEC).await?), (1, 0));
    let d = at(T0 + 2 * SEC).await?;
    assert!(
        d[0].allowed && !d[1].allowed,
        "now the per-minute limit refuses"
    );
    assert_eq!(d[0].remaining, 1, "without taking the per-second token");
    let decisive = most_restrictive(&d).copied();
    assert_eq!(
        decisive.map(|x| (x.limit, x.retry_after)),
        Some((5, Some(us(58 * SEC))))
    );

    // On the server clock, check_key_limits returns the most restrictive decision.
    let hourly = [
        limit(
            Algorithm::SlidingWindowCounter,
            3,
            Duration::from_secs(3600),
        ),
        limit(Algorithm::TokenBucket, 100, Duration::from_secs(3600)),
    ];
    for remaining in [2, 1, 0] {
        let d = h.limiter.check_key_limits("real", &hourly).await?;
        assert_eq!((d.allowed, d.limit, d.remaining), (true, 3, remaining));
    }
    let d = h.limiter.check_key_limits("real", &hourly).await?;
    assert_eq!((d.allowed, d.limit), (false, 3));
    assert!(
        d.retry_after
            .is_some_and(|r| r > Duration::ZERO && r <= Duration::from_secs(7200))
    );
    Ok(())
}

async fn keys_expire_and_share_one_slot(target: Target) -> Result<()> {
    let mut h = Harness::new(target, "ttl", NO_RULES).await?;
    let prefix = h.settings.key_prefix.clone();
    let cases = [
        (
            limit(Algorithm::TokenBucket, 10, Duration::from_secs(1)),
            "tb:1000",
            1_100,
        ),
        (
            limit(Algorithm::LeakyBucket, 10, Duration::from_secs(1)),
            "lb:1000",
            1_100,
        ),
        (
            limit(Algorithm::FixedWindow, 5, Duration::from_secs(60)),
            "fw:60000",
            61_000,
        ),
        (
            limit(Algorithm::SlidingLog, 5, Duration::from_secs(60)),
            "sl:60000",
            61_000,
        ),
        (
            limit(Algorithm::SlidingWindowCounter, 5, Duration::from_secs(60)),
            "sw:60000",
            121_000,
        ),
    ];
    let mut slots = Vec::new();
    for (l, suffix, max_ms) in cases {
        let key = format!("{{{prefix}:direct:user:7}}:{suffix}");
        assert!(h.limiter.check_key("user:7", &l).await?.allowed);
        let ttl: i64 = h.raw.query(redis::cmd("PTTL").arg(&key)).await?;
        assert!(
            ttl > 0 && ttl <= max_ms,
            "{key}: PTTL {ttl} not in (0, {max_ms}]"
        );
        if target == Target::Cluster {
            let slot: i64 = h
                .raw
                .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key))
                .await?;
            slots.push(slot);
        }
    }
    slots.dedup();
    assert!(slots.len() <= 1, "one identity, one slot: {slots:?}");
    Ok(())
}

on_both!(
    token_bucket_bursts_then_refills_at_its_rate,
    leaky_bucket_queues_with_delays_and_refuses_when_full,
    fixed_window_allows_twice_the_limit_across_a_boundary,
    sliding_window_counter_smooths_the_boundary,
    sliding_window_counter_weighs_like_the_seed,
    sliding_log_is_exact,
    several_limits_decide_together_and_a_denial_consumes_nothing,
    keys_expire_and_share_one_slot,
);
