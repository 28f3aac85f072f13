//! The `sixfold` binary's subcommands, each a call into a library crate.
//!
//! - `run` — the embedded default: starts the broker and Redis as child processes when nothing
//!   answers at their addresses, applies `topics.yaml`, then serves the schema registry, the
//!   ingress and every processor in this one process.
//! - `registry`, `ingress`, `processor NAME` — one component per process, as in production.
//! - `topics apply` / `topics list` — the topic catalog against the broker.

pub mod embedded;
pub mod settings;

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sixfold_ingress::Readiness;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::{CancellationToken, GRACE_PERIOD};
use sixfold_runtime::topics::{Action, Catalog};

use crate::settings::Settings;

/// Processors this build can run, by name. Each system's issue adds its processor here.
pub const PROCESSORS: &[&str] = &[];

/// `sixfold topics apply`: creates or grows the catalog's topics; prints what it did.
pub async fn topics_apply(settings: &Settings) -> Result<()> {
    let catalog = load_catalog(settings)?;
    let actions = sixfold_runtime::topics::apply(&settings.kafka, &catalog.specs()).await?;
    let width = actions.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, action) in &actions {
        println!("{name:width$}  {action}");
    }
    if actions.iter().all(|(_, a)| *a == Action::Unchanged) {
        println!(
            "nothing to change: all {} topics match topics.yaml",
            actions.len()
        );
    }
    Ok(())
}

/// `sixfold topics list`: every topic the catalog implies, with partitions and configuration.
pub fn topics_list(settings: &Settings) -> Result<()> {
    for spec in load_catalog(settings)?.specs() {
        let config: Vec<String> = spec
            .config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        println!(
            "{}\tpartitions={}\treplication={}\t{}",
            spec.name,
            spec.partitions,
            spec.replication,
            config.join(",")
        );
    }
    Ok(())
}

fn load_catalog(settings: &Settings) -> Result<Catalog> {
    Catalog::load(&settings.topics.file)
        .with_context(|| format!("load {}", settings.topics.file.display()))
}

/// `sixfold registry`: the schema registry until shutdown.
pub async fn registry(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    sixfold_registry::run(&settings.registry, &settings.kafka, shutdown).await?;
    Ok(())
}

/// `sixfold ingress`: the HTTP front door until shutdown.
pub async fn ingress(
    settings: &Settings,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<()> {
    let store = sixfold_store::connect(&settings.store)
        .await
        .context("open store")?;
    let redis = redis::Client::open(settings.redis.url.as_str()).context("redis url")?;
    let readiness = Readiness::new(&settings.kafka, &settings.registry.url, redis, store)
        .context("create broker client")?;
    let listener = tokio::net::TcpListener::bind(settings.ingress.listen)
        .await
        .with_context(|| format!("bind ingress to {}", settings.ingress.listen))?;
    sixfold_ingress::serve(listener, Arc::new(readiness), metrics, shutdown).await?;
    Ok(())
}

/// `sixfold processor NAME`: one processor plus its `/metrics` server until shutdown.
pub async fn processor(settings: &Settings, name: &str, shutdown: CancellationToken) -> Result<()> {
    let _ = (settings, shutdown);
    if !PROCESSORS.contains(&name) {
        bail!(
            "unknown processor {name:?}; this build runs: {}",
            if PROCESSORS.is_empty() {
                "none yet".to_string()
            } else {
                PROCESSORS.join(", ")
            }
        );
    }
    Ok(())
}

/// `sixfold run`: the whole pipeline in one process on the embedded default.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    let children = embedded::start_missing(settings).await?;
    let result = run_components(settings, shutdown.clone()).await;
    shutdown.cancel();
    children.stop().await;
    result
}

async fn run_components(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    topics_apply(settings).await?;
    let metrics = Metrics::new();
    let mut tasks = tokio::task::JoinSet::new();
    if settings.embedded.start_registry {
        let (s, token) = (settings.clone(), shutdown.clone());
        tasks.spawn(async move { registry(&s, token).await.context("registry") });
        embedded::wait_until_answers("registry", settings.registry.listen).await?;
    }
    {
        let (s, m, token) = (settings.clone(), metrics.clone(), shutdown.clone());
        tasks.spawn(async move { ingress(&s, m, token).await.context("ingress") });
    }
    for name in PROCESSORS {
        let (s, token) = (settings.clone(), shutdown.clone());
        tasks.spawn(async move { processor(&s, name, token).await });
    }
    embedded::wait_until_answers("ingress", settings.ingress.listen).await?;
    print_banner(settings);

    let mut result = Ok(());
    tokio::select! {
        _ = shutdown.cancelled() => {}
        Some(joined) = tasks.join_next() => {
            // A component stopped on its own: that is a failure of the whole pipeline.
            result = match joined {
                Ok(Ok(())) => Err(anyhow::anyhow!("a component stopped unexpectedly")),
                Ok(Err(error)) => Err(error),
                Err(error) => Err(error.into()),
            };
            shutdown.cancel();
        }
    }
    let drained = tokio::time::timeout(GRACE_PERIOD, async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(error)) = joined {
                tracing::warn!(error = %format!("{error:#}"), "component failed while stopping");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!("components did not stop within {GRACE_PERIOD:?}; exiting anyway");
    }
    result
}

fn print_banner(settings: &Settings) {
    let ingress = settings.ingress.listen;
    println!(
        "\nSixfold is running.\n  ingress   http://{ingress}/  (try: curl http://{ingress}/readyz)\n  metrics   http://{ingress}/metrics\n  registry  {}\n  broker    {}\n  redis     {}\n  store     {:?} {}\nPress Ctrl-C to stop.\n",
        settings.registry.url,
        settings.kafka.brokers,
        settings.redis.url,
        settings.store.backend,
        settings.store.sqlite_path.display(),
    );
}
