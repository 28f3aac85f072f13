//! Rules through `check`: matching, most restrictive, reload, shadow mode, the local cache.

use std::time::Duration;

use anyhow::Result;
use sixfold_ratelimit::RequestInfo;
use sixfold_ratelimit::metrics::{DECISIONS, LOCAL_CACHE_HITS, REDIS_SECONDS, RELOADS};

use crate::support::{Harness, T0, Target, eventually, on_both};

fn post<'a>(api_key: &'a str, ip: &'a str) -> RequestInfo<'a> {
    RequestInfo {
        user_id: None,
        ip: Some(ip),
        api_key: Some(api_key),
        route: "/v1/urls",
        method: "POST",
    }
}

const RULES: &str = "rules:
  - name: writes
    match: {method: POST, route: /v1/*}
    key: api_key
    limits:
      - {name: burst, algorithm: token_bucket, limit: 3, window: 1h}
      - {name: hour, limit: 50, window: 1h}
  - name: per-ip
    key: ip
    limit: 5
    window: 1h
  - name: reads
    match: {method: GET}
    key: ip
    limit: 1
    window: 1h
";

async fn requests_match_rules_and_the_most_restrictive_decides(target: Target) -> Result<()> {
    let h = Harness::new(target, "match", RULES).await?;
    let v = h.limiter.check(&post("key-a", "10.0.0.1")).await;
    assert!(v.allowed);
    let names: Vec<&str> = v.policies.iter().map(|p| &*p.name).collect();
    assert_eq!(names, ["writes.burst", "writes.hour", "per-ip.1h"]);
    let (rule, decision) = v.decisive.clone().expect("a decisive rule");
    assert_eq!(
        (&*rule, decision.limit, decision.remaining),
        ("writes", 3, 2)
    );
    assert_eq!(
        v.ratelimit_field().as_deref(),
        Some(r#""writes.burst";r=2;t=1200"#)
    );
    assert!(
        v.ratelimit_policy_field()
            .is_some_and(|f| f.contains(r#""per-ip.1h";q=5;w=3600"#))
    );
    h.limiter.check(&post("key-a", "10.0.0.1")).await;
    h.limiter.check(&post("key-a", "10.0.0.1")).await;
    let v = h.limiter.check(&post("key-a", "10.0.0.1")).await;
    assert!(!v.allowed, "the fourth write of one key");
    let (rule, decision) = v.decisive.expect("a decisive rule");
    assert_eq!(&*rule, "writes");
    assert!(
        decision
            .retry_after
            .is_some_and(|r| r > Duration::from_secs(1000))
    );
    // Another API key from the same address: its own bucket, but the address is now at 5.
    let v = h.limiter.check(&post("key-b", "10.0.0.1")).await;
    assert!(v.allowed);
    assert_eq!(
        v.decisive.map(|(r, d)| (r.to_string(), d.remaining)),
        Some(("per-ip".into(), 0))
    );
    // Nothing matches: no limits, no fields.
    let other = RequestInfo {
        method: "DELETE",
        ip: None,
        ..post("key-c", "")
    };
    let v = h.limiter.check(&other).await;
    assert!(v.allowed && v.decisive.is_none() && v.policies.is_empty());
    Ok(())
}

async fn rules_reload_when_the_file_changes_and_a_broken_file_is_ignored(
    target: Target,
) -> Result<()> {
    let h = Harness::new(
        target,
        "reload",
        "rules: [{name: r, key: ip, limit: 2, window: 1h}]",
    )
    .await?;
    let req = post("k", "10.0.0.9");
    assert!(h.limiter.check(&req).await.allowed);
    assert!(h.limiter.check(&req).await.allowed);
    assert!(!h.limiter.check(&req).await.allowed);
    h.rules
        .write("rules: [{name: r, key: ip, limit: 4, window: 1h}]")?;
    let reloaded = eventually(Duration::from_secs(5), || async {
        h.limiter.rules().rules[0].limits[0].limit.limit == 4
    })
    .await;
    assert!(
        reloaded,
        "the new limit is in force within the reload interval"
    );
    // Same rule, same counters: two more under the raised limit (the local block is gone).
    assert!(h.limiter.check(&req).await.allowed);
    assert!(h.limiter.check(&req).await.allowed);
    assert!(!h.limiter.check(&req).await.allowed);

    h.rules
        .write("rules: [{name: r, key: ip, limit: 0, window: 1h}]")?;
    let refused = eventually(Duration::from_secs(5), || async {
        h.metric(RELOADS, &[("result", "error")]) >= 1
    })
    .await;
    assert!(refused, "the broken file was seen and refused");
    assert_eq!(
        h.limiter.rules().rules[0].limits[0].limit.limit,
        4,
        "the old rules stay"
    );
    Ok(())
}

async fn shadow_rules_count_but_never_block(target: Target) -> Result<()> {
    let rules = "rules:
  - {name: candidate, key: ip, algorithm: sliding_log, limit: 1, window: 1h, shadow: true}
  - {name: enforced, key: ip, limit: 100, window: 1h}";
    let h = Harness::new(target, "shadow", rules).await?;
    let req = post("k", "10.0.0.3");
    for i in 0..5 {
        let v = h.limiter.check(&req).await;
        assert!(v.allowed, "request {i}");
        assert_eq!(v.shadow_denied, i > 0);
        assert!(!v.from_local_cache);
        assert_eq!(
            v.decisive.map(|(r, _)| r.to_string()).as_deref(),
            Some("enforced")
        );
        assert!(
            v.policies.iter().all(|p| &*p.rule == "enforced"),
            "shadow limits are not advertised"
        );
    }
    let shadow_denied = [
        ("rule", "candidate"),
        ("algorithm", "sliding_log"),
        ("result", "shadow_denied"),
    ];
    assert_eq!(h.metric(DECISIONS, &shadow_denied), 4);
    assert_eq!(
        h.metric(DECISIONS, &[("rule", "candidate"), ("result", "allowed")]),
        1
    );
    assert_eq!(h.metric(LOCAL_CACHE_HITS, &[]), 0);
    Ok(())
}

async fn the_local_cache_refuses_a_flood_without_redis(target: Target) -> Result<()> {
    let h = Harness::new(
        target,
        "cache",
        "rules: [{name: r, key: ip, limit: 2, window: 1h}]",
    )
    .await?;
    let req = post("k", "10.0.0.4");
    assert!(h.limiter.check(&req).await.allowed);
    assert!(h.limiter.check(&req).await.allowed);
    let v = h.limiter.check(&req).await;
    assert!(
        !v.allowed && !v.from_local_cache,
        "the first denial comes from Redis"
    );
    let calls = h.metric(REDIS_SECONDS, &[]);
    assert_eq!(calls, 3);
    for _ in 0..200 {
        let v = h.limiter.check(&req).await;
        assert!(!v.allowed && v.from_local_cache);
        assert!(
            v.decisive
                .is_some_and(|(_, d)| d.retry_after.is_some_and(|r| r > Duration::ZERO))
        );
    }
    assert_eq!(
        h.metric(REDIS_SECONDS, &[]),
        calls,
        "no Redis round trip for the flood"
    );
    assert_eq!(h.metric(LOCAL_CACHE_HITS, &[("rule", "r")]), 200);
    assert_eq!(
        h.metric(DECISIONS, &[("rule", "r"), ("result", "denied")]),
        201
    );
    // Another identity is not affected, and the test clock never uses the cache.
    assert!(h.limiter.check(&post("k", "10.0.0.5")).await.allowed);
    assert!(!h.limiter.check_at(&req, T0).await.from_local_cache);
    Ok(())
}

async fn a_leaky_rule_hands_out_delays(target: Target) -> Result<()> {
    let rules = "rules: [{name: queue, key: ip, algorithm: leaky_bucket, limit: 3, window: 3s}]";
    let h = Harness::new(target, "leaky-rule", rules).await?;
    let req = post("k", "10.0.0.6");
    let mut delays = Vec::new();
    for _ in 0..3 {
        let v = h.limiter.check(&req).await;
        assert!(v.allowed);
        delays.push(
            v.delay
                .expect("a leaky bucket always says how long to wait"),
        );
    }
    assert_eq!(delays[0], Duration::ZERO);
    // One second apart, minus the little time that passed between the calls.
    assert!(
        delays[1] > Duration::from_millis(800) && delays[1] <= Duration::from_secs(1),
        "{delays:?}"
    );
    assert!(
        delays[2] > Duration::from_millis(1800) && delays[2] <= Duration::from_secs(2),
        "{delays:?}"
    );
    let v = h.limiter.check(&req).await;
    assert!(!v.allowed && v.delay.is_none(), "the queue is full");
    Ok(())
}

on_both!(
    requests_match_rules_and_the_most_restrictive_decides,
    a_leaky_rule_hands_out_delays,
    rules_reload_when_the_file_changes_and_a_broken_file_is_ignored,
    shadow_rules_count_but_never_block,
    the_local_cache_refuses_a_flood_without_redis,
);
