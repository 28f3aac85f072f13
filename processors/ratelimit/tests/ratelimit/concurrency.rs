//! Many tasks on one key: exactly `limit` requests pass, never more (the scripts are atomic).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sixfold_ratelimit::{Algorithm, Limit};

use crate::support::{Harness, T0, Target, on_both};

const TASKS: u64 = 64;
const EACH: u64 = 10;
const LIMIT: u64 = 100;

/// 64 tasks × 10 requests on one key; returns how many were allowed.
async fn hammer(h: &Arc<Harness>, key: &str, limit: Limit, now: Option<u64>) -> Result<u64> {
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (h, key) = (h.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut allowed = 0u64;
            for _ in 0..EACH {
                let decision = match now {
                    Some(now) => h
                        .limiter
                        .check_key_limits_at(&key, &[limit], now)
                        .await?
                        .remove(0),
                    None => h.limiter.check_key(&key, &limit).await?,
                };
                allowed += u64::from(decision.allowed);
            }
            anyhow::Ok(allowed)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

async fn every_algorithm_allows_exactly_the_limit_under_contention(target: Target) -> Result<()> {
    let h = Arc::new(Harness::new(target, "contention", "rules: []").await?);
    for algorithm in Algorithm::ALL {
        // All in one instant of the test clock: no refill, no window edge, only the race.
        let limit = Limit::new(algorithm, LIMIT, Duration::from_secs(60));
        let allowed = hammer(&h, algorithm.name(), limit, Some(T0)).await?;
        assert_eq!(
            allowed,
            LIMIT,
            "{algorithm}: {allowed} of {} allowed",
            TASKS * EACH
        );
    }
    Ok(())
}

async fn the_server_clock_path_is_exact_too(target: Target) -> Result<()> {
    let h = Arc::new(Harness::new(target, "contention-real", "rules: []").await?);
    // Windows whose refill or edges cannot move the count during the test: an hour-long log
    // (exact at any time) and an hourly token bucket (0.03 tokens refill per second).
    for algorithm in [Algorithm::SlidingLog, Algorithm::TokenBucket] {
        let limit = Limit::new(algorithm, LIMIT, Duration::from_secs(3600));
        let allowed = hammer(&h, algorithm.name(), limit, None).await?;
        assert_eq!(allowed, LIMIT, "{algorithm} on the server clock");
    }
    Ok(())
}

on_both!(
    every_algorithm_allows_exactly_the_limit_under_contention,
    the_server_clock_path_is_exact_too,
);
