//! `sixfold bench crawler`: pages per second of the crawler (admission processor and fetch
//! loop in this process) over the local benchmark site (`tests/site/site.py --mode bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::run_processor;
use sixfold_runtime::shutdown::CancellationToken;

use crate::settings::Settings;
use crate::{Clients, Systems};

/// Seeds `/p/0` of every host in `hosts` (base URLs), runs the crawler until `pages` pages
/// are fetched, and prints `crawl <pages> <seconds>` then one `stage <name> <seconds total>
/// <count>` line per stage.
pub async fn crawler(settings: &Settings, hosts: &[String], pages: u64) -> Result<()> {
    let shutdown = CancellationToken::new();
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    let crawler = systems.crawler.clone();
    let mut config = sixfold_runtime::topics::Catalog::load(&settings.topics.file)?
        .processor(sixfold_crawler::PROCESSOR)
        .context("topics.yaml has no crawler processor")?;
    config.topics = crawler.input_topics();
    let processor = tokio::spawn(run_processor(
        Arc::new(crawler.processor()),
        config,
        clients.context(settings),
        shutdown.clone(),
    ));
    let fetcher = tokio::spawn(crawler.clone().run_fetcher(shutdown.clone()));
    let started = Instant::now();
    let seeds: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}/p/0", h.trim_end_matches('/')))
        .collect();
    crawler
        .seed(
            seeds,
            Some(format!("bench-{}", std::process::id())),
            Some(100),
            vec![],
        )
        .await
        .map_err(|e| anyhow::anyhow!("seed: {e}"))?;
    while crawler.fetch_count("fetched") < pages {
        if started.elapsed() > Duration::from_secs(900) {
            bail!(
                "only {} of {pages} pages after 15 minutes",
                crawler.fetch_count("fetched")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("crawl {pages} {seconds:.3}");
    for (stage, sum, count) in crawler.stage_totals() {
        println!("stage {stage} {sum:.3} {count}");
    }
    shutdown.cancel();
    let _ = processor.await;
    let _ = fetcher.await;
    Ok(())
}
