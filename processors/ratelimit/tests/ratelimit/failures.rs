//! Redis unreachable or silent: rules fail open or closed within the timeout; a node that lost
//! the script gets it with EVAL; a disabled limiter allows everything.

use std::time::{Duration, Instant};

use anyhow::Result;
use prometheus::Registry;
use sixfold_ratelimit::metrics::{DECISIONS, REDIS_ERRORS, SCRIPT_LOADS};
use sixfold_ratelimit::{Algorithm, Limit, RateLimitSettings, RateLimiter, RequestInfo};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::support::{Harness, RulesFile, Target, metric, on_both, settings};

const RULES: &str = "rules:
  - {name: open, match: {route: /open}, key: ip, limit: 5, window: 1m}
  - {name: closed, match: {route: /closed}, key: ip, limit: 5, window: 1m, on_redis_error: closed}
  - {name: closed-shadow, match: {route: /closed}, key: ip, limit: 5, window: 1m, on_redis_error: closed, shadow: true}
";

fn get(route: &str) -> RequestInfo<'_> {
    RequestInfo {
        user_id: None,
        ip: Some("10.1.1.1"),
        api_key: None,
        route,
        method: "GET",
    }
}

/// Points `settings` at `address` in the target's mode.
fn at_address(target: Target, settings: &mut RateLimitSettings, address: &str) {
    match target {
        Target::Single => settings.redis_url = Some(format!("redis://{address}/")),
        Target::Cluster => settings.cluster_nodes = vec![address.to_owned()],
    }
}

/// Checks both rules against a limiter whose Redis does not answer; each must be decided
/// within `bound`.
async fn assert_fails_open_and_closed(
    limiter: &RateLimiter,
    registry: &Registry,
    bound: Duration,
) -> Result<()> {
    for _ in 0..3 {
        let started = Instant::now();
        let v = limiter.check(&get("/open")).await;
        assert!(
            started.elapsed() < bound,
            "open rule took {:?}",
            started.elapsed()
        );
        assert!(v.allowed && v.failed_open && !v.failed_closed);
        assert!(v.decisive.is_none(), "no limit information without Redis");

        let started = Instant::now();
        let v = limiter.check(&get("/closed")).await;
        assert!(
            started.elapsed() < bound,
            "closed rule took {:?}",
            started.elapsed()
        );
        assert!(!v.allowed && v.failed_closed);
        let (rule, decision) = v.decisive.expect("the closed rule decides");
        assert_eq!(
            (&*rule, decision.retry_after),
            ("closed", Some(Duration::from_secs(1)))
        );
    }
    assert!(
        limiter
            .check_key(
                "k",
                &Limit::new(Algorithm::FixedWindow, 1, Duration::from_secs(1))
            )
            .await
            .is_err()
    );
    assert_eq!(
        metric(
            registry,
            DECISIONS,
            &[("rule", "open"), ("result", "failed_open")]
        ),
        3
    );
    assert_eq!(
        metric(
            registry,
            DECISIONS,
            &[("rule", "closed"), ("result", "failed_closed")]
        ),
        3
    );
    assert_eq!(
        metric(
            registry,
            DECISIONS,
            &[("rule", "closed-shadow"), ("result", "failed_closed")]
        ),
        3
    );
    assert!(metric(registry, REDIS_ERRORS, &[]) >= 10);
    Ok(())
}

async fn unreachable_redis_fails_open_or_closed_per_rule(target: Target) -> Result<()> {
    // A port nobody listens on.
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.to_string()
    };
    let rules = RulesFile::new(RULES)?;
    let mut s = settings(target, "unreachable", &rules.path);
    s.timeout = Duration::from_millis(200);
    at_address(target, &mut s, &address);
    let registry = Registry::new();
    let limiter = RateLimiter::new(&s, &registry).await?;
    assert_fails_open_and_closed(&limiter, &registry, Duration::from_secs(1)).await
}

async fn a_silent_redis_times_out_instead_of_hanging(target: Target) -> Result<()> {
    // Accepts connections, reads what it is sent, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while socket.read(&mut sink).await.is_ok_and(|n| n > 0) {}
            }));
        }
    });
    let rules = RulesFile::new(RULES)?;
    let mut s = settings(target, "silent", &rules.path);
    s.timeout = Duration::from_millis(100);
    at_address(target, &mut s, &address);
    let registry = Registry::new();
    let limiter = RateLimiter::new(&s, &registry).await?;
    // The warm-up in `new` gave up on connecting; after a failed connection the cluster
    // backend refuses at once for a moment. Wait until a call really waits for the silent
    // server (a timeout is counted) before checking the bounds.
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = Limit::new(Algorithm::FixedWindow, 1, Duration::from_secs(1));
    while metric(&registry, REDIS_ERRORS, &[("kind", "timeout")]) == 0 {
        assert!(
            Instant::now() < deadline,
            "no call timed out against the silent server"
        );
        // A direct call: it leaves the rules' decision counts to the assertions below.
        let _ = limiter.check_key("probe", &probe).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result =
        assert_fails_open_and_closed(&limiter, &registry, Duration::from_millis(600)).await;
    assert!(metric(&registry, REDIS_ERRORS, &[("kind", "timeout")]) >= 1);
    silent.abort();
    result
}

async fn a_node_without_the_script_gets_it_by_eval(target: Target) -> Result<()> {
    let mut h = Harness::new(target, "noscript", "rules: []").await?;
    let limit = Limit::new(
        Algorithm::SlidingWindowCounter,
        1000,
        Duration::from_secs(60),
    );
    // Other tests may load the script again between our flush and our call; try a few times.
    for attempt in 0..20 {
        let _: () = h.raw.query(redis::cmd("SCRIPT").arg("FLUSH")).await?;
        assert!(
            h.limiter
                .check_key(&format!("k{attempt}"), &limit)
                .await?
                .allowed
        );
        if h.metric(SCRIPT_LOADS, &[]) >= 1 {
            break;
        }
    }
    assert!(
        h.metric(SCRIPT_LOADS, &[]) >= 1,
        "NOSCRIPT was answered by sending the script"
    );
    // And from then on EVALSHA finds it.
    let loads = h.metric(SCRIPT_LOADS, &[]);
    let _ = h.limiter.check_key("after", &limit).await?;
    assert!(h.metric(SCRIPT_LOADS, &[]) <= loads + 1);
    Ok(())
}

async fn a_disabled_limiter_allows_everything(target: Target) -> Result<()> {
    let rules = RulesFile::new(RULES)?;
    let mut s = settings(target, "disabled", &rules.path);
    s.enabled = false;
    s.rules_file = "/nonexistent/ratelimit.yaml".into();
    let limiter = RateLimiter::new(&s, &Registry::new()).await?;
    assert!(!limiter.enabled());
    let v = limiter.check(&get("/closed")).await;
    assert!(v.allowed && v.decisive.is_none());
    let d = limiter
        .check_key(
            "k",
            &Limit::new(Algorithm::TokenBucket, 3, Duration::from_secs(1)),
        )
        .await?;
    assert_eq!((d.allowed, d.remaining), (true, 3));
    // Enabled, a missing rules file is an error.
    s.enabled = true;
    assert!(RateLimiter::new(&s, &Registry::new()).await.is_err());
    Ok(())
}

on_both!(
    unreachable_redis_fails_open_or_closed_per_rule,
    a_silent_redis_times_out_instead_of_hanging,
    a_node_without_the_script_gets_it_by_eval,
    a_disabled_limiter_allows_everything,
);
