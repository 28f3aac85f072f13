//! `sixfold bench`: load generators for `make bench` that need Sixfold's own client code.

pub mod chat;
pub mod crawler;
pub mod notify;
pub mod pipeline;
pub mod timeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sixfold_ratelimit::{Algorithm, Limit, RateLimitSettings, RateLimiter};

use crate::settings::Settings;

/// Identities each client cycles through, so decisions spread over many keys.
const IDENTITIES: u64 = 1000;

/// Rate-limit decisions per second per algorithm, `clients` concurrent callers of
/// `RateLimiter::check_key` for `seconds` each. Prints one line per algorithm:
/// `<algorithm> <decisions/s> <script sha> <script arguments…>` (the last part lets the caller
/// run the same script under `redis-benchmark` as a ceiling).
pub async fn ratelimit(settings: &Settings, clients: usize, seconds: u64) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sixfold-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("bench temp dir")?;
    let rules_file = dir.join("rules.yaml");
    std::fs::write(&rules_file, "rules: []\n").context("bench rules file")?;
    let limiter = RateLimiter::new(
        &RateLimitSettings {
            enabled: true,
            rules_file,
            key_prefix: format!("bench-{}", std::process::id()),
            // A benchmark measures Redis round trips, not the timeout.
            timeout: Duration::from_secs(5),
            ..settings
                .ratelimit
                .clone()
                .or_main_redis(&settings.redis.url, &settings.redis.cluster_nodes)
        },
        &prometheus::Registry::new(),
    )
    .await?;
    for algorithm in Algorithm::ALL {
        // A limit nobody reaches: every decision takes the script's full path.
        let limit = Limit::new(algorithm, 1_000_000_000, Duration::from_secs(1));
        let decisions = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..clients {
            let (limiter, decisions) = (limiter.clone(), decisions.clone());
            tasks.spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let key = format!("c{client}-{}", i % IDENTITIES);
                    if limiter.check_key(&key, &limit).await.is_ok() {
                        decisions.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let rate = decisions.load(Ordering::Relaxed) as f64 / seconds as f64;
        let args = sixfold_ratelimit::script::arguments(&[limit], None).join(" ");
        println!(
            "{} {rate:.0} {} {args}",
            algorithm.name(),
            sixfold_ratelimit::script::SHA.as_str()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
