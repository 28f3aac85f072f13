//! `sixfold bench timeline`: fan-out throughput and tweet-to-timelines latency of the timeline
//! processor, run in this process against the configured broker, Redis and store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::run_processor;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_timeline::Timeline;
use sixfold_timeline::storage::{FollowerCount, TimelineStore};

use crate::settings::Settings;
use crate::{Clients, Systems};

/// Followers of each small author (the seed's average).
const SMALL_FOLLOWERS: usize = 200;
/// Tweets in flight at once while producing the throughput run.
const IN_FLIGHT: usize = 64;

/// Seeds a graph (one author with `followers` followers, and small authors with 200 followers
/// each drawn from the same users), makes every follower's home timeline cached, starts the
/// timeline processor, then prints:
/// `throughput <tweets> <inserts> <seconds> <produce seconds>` for `tweets` tweets by small
/// authors worked off as a backlog, and
/// `latency <p50_ms> <p99_ms> <max_ms> <samples>` for `samples` tweets by the big author, each
/// timed from producing `tweet.posted` to the processor having written all `followers + 1`
/// timelines; then `users <prefix> <followers>` naming the followers for a read benchmark.
pub async fn timeline(
    settings: &Settings,
    followers: usize,
    tweets: usize,
    samples: usize,
) -> Result<()> {
    let shutdown = CancellationToken::new();
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    let timeline = systems.timeline.clone();
    if settings.timeline.fanout_threshold as usize <= followers {
        bail!("timeline.fanout_threshold must be above {followers} so the big author is pushed");
    }
    let run = std::process::id();
    let users: Vec<String> = (0..followers).map(|i| format!("b{run}f{i:05}")).collect();
    let big = format!("b{run}big");
    let small: Vec<String> = (0..followers / SMALL_FOLLOWERS)
        .map(|i| format!("b{run}s{i:03}"))
        .collect();
    eprintln!(
        "seeding {} followers and {} small authors",
        users.len(),
        small.len()
    );
    let store = TimelineStore::new(clients.store.clone(), &settings.timeline.namespace);
    seed(&store, &big, &users).await?;
    for (i, author) in small.iter().enumerate() {
        seed(
            &store,
            author,
            &users[i * SMALL_FOLLOWERS..(i + 1) * SMALL_FOLLOWERS],
        )
        .await?;
    }
    // Read every timeline once, so that each is cached and receives pushes.
    futures::stream::iter(users.iter().chain(small.iter()).chain([&big]))
        .map(|user| timeline.home(user, None, 1))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;

    let mut config = sixfold_runtime::topics::Catalog::load(&settings.topics.file)?
        .processor(sixfold_timeline::PROCESSOR)
        .context("topics.yaml has no timeline processor")?;
    config.topics = timeline.input_topics();
    let latency_run = shutdown.child_token();
    let processor = tokio::spawn(run_processor(
        Arc::new(timeline.processor()),
        config.clone(),
        clients.context(settings),
        latency_run.clone(),
    ));

    // Latency first, on an idle pipeline: one tweet at a time by the big author, after one
    // untimed tweet that waits for the consumer group to form.
    let target = timeline.timeline_writes("push") + followers as u64 + 1;
    timeline.post(big.clone(), "warm-up".into(), vec![]).await?;
    wait_for_pushes(&timeline, target, Duration::from_secs(120)).await?;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let target = timeline.timeline_writes("push") + followers as u64 + 1;
        let started = Instant::now();
        timeline
            .post(big.clone(), format!("big {i}"), vec![])
            .await?;
        wait_for_pushes(&timeline, target, Duration::from_secs(120)).await?;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "latency {:.1} {:.1} {:.1} {samples}",
        pick(0.5),
        pick(0.99),
        latencies[latencies.len() - 1]
    );

    // Throughput: the fan-out stage working off a backlog. The processor stops, the small
    // authors' tweets are produced, and the processor starts again; the clock runs from its
    // first timeline write to its last, so neither the producer nor the group join counts.
    latency_run.cancel();
    let _ = processor.await;
    let inserts = tweets as u64 * (SMALL_FOLLOWERS as u64 + 1);
    let before = timeline.timeline_writes("push");
    let produce_started = Instant::now();
    futures::stream::iter(0..tweets)
        .map(|i| {
            let author = small[i % small.len()].clone();
            let timeline = timeline.clone();
            async move { timeline.post(author, format!("small {i}"), vec![]).await }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let produced_in = produce_started.elapsed().as_secs_f64();
    let processor = tokio::spawn(run_processor(
        Arc::new(timeline.processor()),
        config,
        clients.context(settings),
        shutdown.clone(),
    ));
    wait_for_pushes(&timeline, before + 1, Duration::from_secs(120)).await?;
    let started = Instant::now();
    wait_for_pushes(&timeline, before + inserts, Duration::from_secs(600)).await?;
    println!(
        "throughput {tweets} {inserts} {:.3} {produced_in:.3}",
        started.elapsed().as_secs_f64()
    );
    // For the read benchmark: followers are `<prefix>00000` … (5 digits).
    println!("users b{run}f {followers}");
    shutdown.cancel();
    let _ = processor.await;
    Ok(())
}

/// Gives `author` these followers in the store (edges and count), as replaying follow events
/// would, without sending thousands of events through the broker first.
async fn seed(store: &TimelineStore, author: &str, followers: &[String]) -> Result<()> {
    for follower in followers {
        store.set_edge(follower, author, true).await?;
    }
    let count = FollowerCount {
        count: followers.len() as u64,
        ..FollowerCount::default()
    };
    store.put_follower_count(author, &count).await?;
    Ok(())
}

async fn wait_for_pushes(timeline: &Timeline, target: u64, deadline: Duration) -> Result<()> {
    let started = Instant::now();
    while timeline.timeline_writes("push") < target {
        if started.elapsed() > deadline {
            bail!(
                "only {} of {target} timeline pushes after {deadline:?}",
                timeline.timeline_writes("push")
            );
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}
