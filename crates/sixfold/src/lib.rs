//! The `sixfold` binary's subcommands, each a call into a library crate.
//!
//! - `run` — the embedded default: starts the broker and Redis as child processes when nothing
//!   answers at their addresses, applies `topics.yaml`, then serves the schema registry, the
//!   ingress and every processor in this one process.
//! - `registry`, `ingress`, `processor NAME` — one component per process, as in production.
//! - `topics apply` / `topics list` — the topic catalog against the broker.
//! - `dlq list|redrive|purge` — a processor's dead-letter topic ([`dlq`]).
//! - `replay --processor NAME [--from …]` — rebuild a processor's views ([`replay`]).
//!
//! Every ingress also serves the web console ([`console`]) at `/`.

pub mod bench;
pub mod console;
pub mod dlq;
pub mod embedded;
pub mod replay;
pub mod settings;
pub mod views;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use sixfold_chat::{Chat, ChatDeps};
use sixfold_crawler::{Crawler, CrawlerDeps};
use sixfold_ingress::{ApiKeyEntry, Readiness};
use sixfold_notify::template::Channel;
use sixfold_notify::workers::{ChannelWorker, Clients as ChannelClients};
use sixfold_notify::{Notify, NotifyDeps};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_runtime::run_processor;
use sixfold_runtime::shutdown::{CancellationToken, GRACE_PERIOD};
use sixfold_runtime::topics::{Action, Catalog};
use sixfold_timeline::{Timeline, TimelineDeps};
use sixfold_urls::{Urls, UrlsDeps};

use crate::settings::Settings;

/// Processors this build can run, by name. Each system's issue adds its processor here.
pub const PROCESSORS: &[&str] = &[
    sixfold_urls::PROCESSOR,
    sixfold_timeline::PROCESSOR,
    sixfold_chat::PROCESSOR,
    sixfold_crawler::PROCESSOR,
    sixfold_notify::PROCESSOR,
    "notify-push",
    "notify-email",
    "notify-sms",
];

/// How long one broker round trip of the operator tools (metadata, watermarks, committed
/// offsets, a poll) may take.
pub(crate) const BROKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Refuses a processor name this build does not run.
pub fn check_processor(name: &str) -> Result<()> {
    if !PROCESSORS.contains(&name) {
        bail!(
            "unknown processor {name:?}; this build runs: {}",
            PROCESSORS.join(", ")
        );
    }
    Ok(())
}

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

/// `sixfold replay`: checks, replays (or rebuilds beside the live views) with progress on
/// stderr, prints a summary.
pub async fn replay_command(
    settings: &Settings,
    processor: &str,
    range: (Option<&str>, Option<&str>),
    rebuild: bool,
    force: bool,
    shutdown: CancellationToken,
) -> Result<()> {
    check_processor(processor)?;
    let from: Option<replay::From> = range.0.map(str::parse).transpose()?;
    let to: Option<replay::From> = range.1.map(str::parse).transpose()?;
    if rebuild {
        if to.is_some() {
            bail!("--to does not go with --rebuild: a rebuilt view is swapped in up to date");
        }
        let report = replay::rebuild(settings, processor, from, force, &shutdown).await?;
        let old = &report.old_namespace;
        let keep = (report.keep.as_ref())
            .map(|state| format!(", but keep {state}"))
            .unwrap_or_default();
        println!(
            "rebuilt {processor} from {} records in {:.1} s (group {}): its views are now under \
             {}.\nStart `{processor}` and restart every ingress to use them; the old views can \
             then be deleted: store namespaces {old} and {old}.*, Redis keys {old}:*{keep}.",
            report.records,
            report.elapsed.as_secs_f64(),
            report.group,
            report.new_namespace,
        );
        return Ok(());
    }
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let settings = &views::active_settings(settings, clients.store.as_ref()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    let report = replay::replay(
        settings, &clients, &systems, processor, from, to, force, &shutdown,
    )
    .await?;
    for span in &report.spans {
        println!(
            "{}/{}: offsets {}..{}",
            span.topic, span.partition, span.start, span.end
        );
    }
    println!(
        "replayed {} records of {processor} in {:.1} s; start the processor to continue from here",
        report.records,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// What `sixfold dlq` was asked to do.
pub enum DlqAction {
    /// Records by error class.
    List {
        /// Processor name.
        processor: String,
        /// Records decoded per class.
        examples: usize,
        /// JSON output.
        json: bool,
    },
    /// Back to the input topics.
    Redrive {
        /// Processor name.
        processor: String,
        /// Only this class.
        error_class: Option<String>,
        /// Count only.
        dry_run: bool,
    },
    /// Forget them.
    Purge {
        /// Processor name.
        processor: String,
        /// Confirmed.
        yes: bool,
    },
}

/// `sixfold dlq …`: prints what [`dlq`] found or did.
pub async fn dlq_command(settings: &Settings, action: DlqAction) -> Result<()> {
    let (DlqAction::List { processor, .. }
    | DlqAction::Redrive { processor, .. }
    | DlqAction::Purge { processor, .. }) = &action;
    check_processor(processor)?;
    let clients = Clients::connect(settings, Metrics::new()).await?;
    match action {
        DlqAction::List {
            processor,
            examples,
            json,
        } => {
            let summary = dlq::list(settings, &clients, &processor, examples).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
                return Ok(());
            }
            println!("{}: {} records", summary.topic, summary.total);
            for class in &summary.classes {
                println!(
                    "\n{}: {} ({} re-driven)",
                    class.error_class, class.count, class.redriven
                );
                for record in &class.examples {
                    println!(
                        "  {}:{} from {} key={} attempts={}{}\n    error: {}\n    value: {}",
                        record.partition,
                        record.offset,
                        record.original_topic,
                        record.key.as_deref().unwrap_or("-"),
                        record.attempts,
                        if record.redriven { " (re-driven)" } else { "" },
                        record.error,
                        record.value
                    );
                }
            }
        }
        DlqAction::Redrive {
            processor,
            error_class,
            dry_run,
        } => {
            let report = dlq::redrive(
                settings,
                &clients,
                &processor,
                error_class.as_deref(),
                dry_run,
            )
            .await?;
            let verb = if dry_run {
                "would re-drive"
            } else {
                "re-drove"
            };
            println!(
                "{verb} {} of {} records ({} re-driven before)",
                report.redriven, report.matched, report.already_redriven
            );
        }
        DlqAction::Purge { processor, yes } => {
            if !yes {
                bail!("a purge cannot be undone; pass --yes to purge {processor}'s DLQ");
            }
            let purged = dlq::purge(settings, &clients, &processor).await?;
            println!(
                "purged {purged} records from {}",
                sixfold_runtime::failure::dlq_topic(&processor)
            );
        }
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
pub async fn ingress(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let settings = &views::active_settings(settings, clients.store.as_ref()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    serve_ingress(settings, &Arc::new(clients), &systems, None, shutdown).await
}

/// `sixfold processor NAME`: one processor plus its `/metrics` server until shutdown.
pub async fn processor(settings: &Settings, name: &str, shutdown: CancellationToken) -> Result<()> {
    check_processor(name)?;
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let metrics_server = tokio::spawn(sixfold_runtime::metrics::serve(
        settings.metrics.listen,
        clients.metrics.clone(),
        shutdown.clone(),
    ));
    let settings = &views::active_settings(settings, clients.store.as_ref()).await?;
    let systems = Systems::new(settings, &clients, shutdown.clone())?;
    let options = RunOptions {
        side_tasks: true,
        ..RunOptions::default()
    };
    let result = run_processor_with(settings, &clients, &systems, name, options, shutdown).await;
    metrics_server.abort();
    result
}

/// `sixfold run`: the whole pipeline in one process on the embedded default.
pub async fn run(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    let children = embedded::start_missing(settings).await?;
    let result = run_components(settings, shutdown.clone()).await;
    shutdown.cancel();
    children.stop().await;
    result
}

/// Clients one process shares between its components.
pub struct Clients {
    /// The store.
    pub store: Arc<dyn sixfold_store::Store>,
    /// Redis (one node or a cluster), one multiplexed connection that reconnects by itself.
    pub redis: RedisConn,
    /// The idempotent producer, for records a request or a processor waits on.
    pub producer: Producer,
    /// The producer for high-volume records nobody waits on.
    pub bulk_producer: Producer,
    /// Avro codec over the schema registry.
    pub codec: Arc<AvroCodec>,
    /// Rate limiter for named keys (notification frequency caps), on whether or not the
    /// ingress limits requests.
    pub key_limiter: RateLimiter,
    /// This process's metrics.
    pub metrics: Metrics,
}

impl Clients {
    /// Connects to the store and Redis and creates the producer and codec.
    pub async fn connect(settings: &Settings, metrics: Metrics) -> Result<Self> {
        let store = sixfold_store::connect(&settings.store)
            .await
            .context("open store")?;
        let redis = RedisConn::connect(&settings.redis)
            .await
            .with_context(|| format!("connect to redis {}", settings.redis.describe()))?;
        // Its metrics stay out of the process registry, which the ingress limiter's use.
        let key_limiter = RateLimiter::for_keys(
            &settings
                .ratelimit
                .clone()
                .or_main_redis(&settings.redis.url, &settings.redis.cluster_nodes),
            &prometheus::Registry::new(),
        )
        .await
        .context("rate limiter for notification caps")?;
        Ok(Self {
            store,
            redis,
            key_limiter,
            producer: Producer::new(&settings.kafka, metrics.clone())?,
            bulk_producer: Producer::bulk(&settings.kafka, metrics.clone())?,
            codec: Arc::new(AvroCodec::new(&settings.registry.url)?),
            metrics,
        })
    }

    pub(crate) fn context(&self, settings: &Settings) -> RuntimeContext {
        RuntimeContext {
            kafka: settings.kafka.clone(),
            codec: self.codec.clone(),
            producer: self.producer.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Every system's shared state, built once per process and used by its routes and processor.
pub struct Systems {
    /// URL shortener.
    pub urls: Arc<Urls>,
    /// Home timeline.
    pub timeline: Arc<Timeline>,
    /// Chat (its gateway runs in ingress processes).
    pub chat: Arc<Chat>,
    /// Web crawler.
    pub crawler: Arc<Crawler>,
    /// Notifications.
    pub notify: Arc<Notify>,
}

impl Systems {
    /// Builds every system over the process's clients.
    pub fn new(
        settings: &Settings,
        clients: &Clients,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let urls = Urls::new(
            settings.urls.clone(),
            UrlsDeps {
                store: clients.store.clone(),
                redis: clients.redis.clone(),
                producer: clients.producer.clone(),
                bulk_producer: clients.bulk_producer.clone(),
                codec: clients.codec.clone(),
                metrics: clients.metrics.clone(),
                public_url: settings.ingress.public_url.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        let timeline = Timeline::new(
            settings.timeline.clone(),
            TimelineDeps {
                store: clients.store.clone(),
                redis: clients.redis.clone(),
                producer: clients.producer.clone(),
                codec: clients.codec.clone(),
                metrics: clients.metrics.clone(),
            },
        )?;
        let chat = Chat::new(
            settings.chat.clone(),
            ChatDeps {
                store: clients.store.clone(),
                redis: clients.redis.clone(),
                redis_urls: settings.redis.node_urls(),
                producer: clients.producer.clone(),
                codec: clients.codec.clone(),
                metrics: clients.metrics.clone(),
                public_url: settings.ingress.public_url.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        let crawler = Crawler::new(
            settings.crawler.clone(),
            CrawlerDeps {
                store: clients.store.clone(),
                redis: clients.redis.clone(),
                producer: clients.producer.clone(),
                codec: clients.codec.clone(),
                metrics: clients.metrics.clone(),
            },
        )?;
        let notify = Notify::new(
            settings.notify.clone(),
            NotifyDeps {
                store: clients.store.clone(),
                limiter: clients.key_limiter.clone(),
                producer: clients.producer.clone(),
                codec: clients.codec.clone(),
                metrics: clients.metrics.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        Ok(Self {
            urls,
            timeline,
            chat,
            crawler,
            notify,
        })
    }

    /// Every system's routes, for the ingress.
    pub fn routes(&self) -> Vec<sixfold_ingress::SystemRoutes> {
        vec![
            sixfold_urls::routes::routes(self.urls.clone()),
            sixfold_timeline::routes::routes(self.timeline.clone()),
            sixfold_chat::routes::routes(self.chat.clone()),
            sixfold_notify::routes::routes(self.notify.clone()),
            sixfold_crawler::routes::routes(self.crawler.clone()),
        ]
    }
}

/// Serves the ingress (every system's routes, the console, and the chat gateway) until
/// shutdown; `dev_key` is the development API key `sixfold run` adds.
async fn serve_ingress(
    settings: &Settings,
    clients: &Arc<Clients>,
    systems: &Systems,
    dev_key: Option<&str>,
    shutdown: CancellationToken,
) -> Result<()> {
    let redis = settings
        .redis
        .node_urls()
        .iter()
        .map(|url| redis::Client::open(url.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .context("redis url")?;
    let readiness = Readiness::new(
        &settings.kafka,
        &settings.registry.url,
        redis,
        clients.store.clone(),
    )
    .context("create broker client")?;
    let mut ingress_settings = settings.ingress.clone();
    ingress_settings
        .api_keys
        .extend(dev_key.map(|key| ApiKeyEntry {
            name: "development".into(),
            sha256: sixfold_ingress::auth::digest_hex(key),
        }));
    let limiter = RateLimiter::new(
        &settings
            .ratelimit
            .clone()
            .or_main_redis(&settings.redis.url, &settings.redis.cluster_nodes),
        clients.metrics.registry(),
    )
    .await
    .context("rate limiter")?;
    let mut routes = systems.routes();
    if settings.console.enabled {
        let shapes = PROCESSORS
            .iter()
            .map(|name| {
                Ok(console::Shape {
                    processor: (*name).to_owned(),
                    inputs: input_topics(systems, name)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let console = console::Console::new(
            settings,
            clients.clone(),
            &ingress_settings.api_keys,
            dev_key.map(str::to_owned),
            shapes,
            shutdown.clone(),
        )
        .context("console")?;
        routes.push(console::routes(console));
    }
    let app = sixfold_ingress::app(
        &ingress_settings,
        Arc::new(readiness),
        clients.metrics.clone(),
        limiter,
        routes,
    )?;
    let listener = tokio::net::TcpListener::bind(settings.ingress.listen)
        .await
        .with_context(|| format!("bind ingress to {}", settings.ingress.listen))?;
    // Every ingress is also a chat gateway: it holds WebSockets and reads its pub/sub channel.
    let gateway = tokio::spawn(systems.chat.clone().run_gateway());
    let served = sixfold_ingress::serve(listener, app, shutdown).await;
    let _ = gateway.await;
    served?;
    Ok(())
}

/// The input topics of the processor `name` (those it consumes, without its retry topics).
pub fn input_topics(systems: &Systems, name: &str) -> Result<Vec<String>> {
    Ok(match name {
        sixfold_urls::PROCESSOR => systems.urls.input_topics(),
        sixfold_timeline::PROCESSOR => systems.timeline.input_topics(),
        sixfold_chat::PROCESSOR => systems.chat.input_topics(),
        sixfold_crawler::PROCESSOR => systems.crawler.input_topics(),
        sixfold_notify::PROCESSOR => systems.notify.input_topics(),
        other => {
            let settings = systems.notify.settings();
            match notify_channel(other) {
                Some(Channel::Push) => vec![settings.push_topic.clone()],
                Some(Channel::Email) => vec![settings.email_topic.clone()],
                Some(Channel::Sms) => vec![settings.sms_topic.clone()],
                None => bail!("no input topics known for processor {other:?}"),
            }
        }
    })
}

/// The topics a replay of `name` reads: its input topics, except for chat (`chat.membership`,
/// `chat.sent` and `chat.receipt`, in timestamp order; `chat.fanout` is delivery work) and the
/// notification processors (`notify.status`, their decision log: deciding or sending again
/// would not give the same views).
pub fn replay_topics(systems: &Systems, name: &str) -> Result<Vec<String>> {
    if name == sixfold_chat::PROCESSOR {
        return Ok(systems.chat.replay_topics());
    }
    if is_notify(name) {
        return Ok(systems.notify.replay_topics());
    }
    input_topics(systems, name)
}

/// The consumer group a replay of `name` reads in: the processor's own, except for chat and the
/// notification processors (`<name>.replay`). Their replays do not do what the live processor
/// does (chat delivers nothing, notify reads its status log), so the live group's positions
/// stay where they are: records the live processor has not handled yet are still its to
/// deliver.
pub fn replay_group(name: &str) -> String {
    if is_notify(name) || name == sixfold_chat::PROCESSOR {
        format!("{name}.replay")
    } else {
        name.to_owned()
    }
}

/// The notification processor or one of its channel workers.
fn is_notify(name: &str) -> bool {
    name == sixfold_notify::PROCESSOR || notify_channel(name).is_some()
}

/// The channel of a notification worker's name (`notify-push`, …).
fn notify_channel(name: &str) -> Option<Channel> {
    [Channel::Push, Channel::Email, Channel::Sms]
        .into_iter()
        .find(|channel| ChannelWorker::name(*channel) == name)
}

/// How a processor runs, besides its settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also the loops that run beside the processor in production (the URL purge, the
    /// notification scheduler, the crawler's fetch loop); a replay runs without them.
    pub side_tasks: bool,
    /// Per input partition, where to stop reading (records at or after stay unread).
    pub stop_at: BTreeMap<(String, i32), i64>,
    /// A consumer group other than the processor's own (a rebuild beside the live views).
    pub group: Option<String>,
    /// No retry tiers: a transient failure is retried in place, a permanent one goes to the
    /// DLQ (a rebuild, whose retry topics would be the live processor's).
    pub without_retries: bool,
    /// A replay: the processor rebuilds its views from [`replay_topics`] and acts on nothing
    /// outside. Chat reads them in timestamp order and delivers nothing; the notification
    /// processors fold `notify.status` ([`sixfold_notify::restore`]) in their replay group,
    /// with no retry tiers (theirs hold requests and sends, not statuses).
    pub replay: bool,
}

/// The processor `name` alone, without the loops that run beside it in production (the URL
/// purge, the notification scheduler, the crawler's fetch loop): what a replay needs.
pub async fn run_processor_only(
    settings: &Settings,
    clients: &Clients,
    systems: &Systems,
    name: &str,
    shutdown: CancellationToken,
) -> Result<()> {
    run_processor_with(
        settings,
        clients,
        systems,
        name,
        RunOptions::default(),
        shutdown,
    )
    .await
}

/// Runs the processor `name` (one of [`PROCESSORS`]) as `options` say until shutdown.
pub async fn run_processor_with(
    settings: &Settings,
    clients: &Clients,
    systems: &Systems,
    name: &str,
    options: RunOptions,
    shutdown: CancellationToken,
) -> Result<()> {
    let side_tasks = options.side_tasks;
    let catalog = load_catalog(settings)?;
    let mut config = catalog
        .processor(name)
        .with_context(|| format!("topics.yaml has no processor {name}"))?;
    config.stop_at = options.stop_at;
    config.group = options.group;
    if options.without_retries {
        config.retry_delays.clear();
        config.retry_in_place = true;
    }
    let context = clients.context(settings);
    if options.replay && name == sixfold_chat::PROCESSOR {
        let chat = &systems.chat;
        config.topics = chat.replay_topics();
        config.aligned = true;
        let processor = Arc::new(chat.replay_processor());
        return Ok(run_processor(processor, config, context, shutdown).await?);
    }
    if options.replay && is_notify(name) {
        let notify = systems.notify.clone();
        config.topics = notify.replay_topics();
        config.group = Some(config.group.unwrap_or_else(|| replay_group(name)));
        config.retry_delays.clear();
        config.retry_in_place = true;
        let restore = sixfold_notify::restore::NotifyRestore::new(notify, notify_channel(name));
        return Ok(run_processor(Arc::new(restore), config, context, shutdown).await?);
    }
    let result = match name {
        sixfold_urls::PROCESSOR => {
            let urls = systems.urls.clone();
            config.topics = urls.input_topics();
            let purge = side_tasks.then(|| {
                let (urls, token) = (urls.clone(), shutdown.clone());
                tokio::spawn(async move { urls.purge_periodically(token).await })
            });
            let result = run_processor(Arc::new(urls.processor()), config, context, shutdown).await;
            purge.inspect(|task| task.abort());
            result
        }
        sixfold_timeline::PROCESSOR => {
            let timeline = &systems.timeline;
            config.topics = timeline.input_topics();
            run_processor(Arc::new(timeline.processor()), config, context, shutdown).await
        }
        sixfold_chat::PROCESSOR => {
            let chat = &systems.chat;
            config.topics = chat.input_topics();
            run_processor(Arc::new(chat.processor()), config, context, shutdown).await
        }
        sixfold_notify::PROCESSOR => {
            // The processor and, beside it, the scheduler that releases held sends.
            let notify = systems.notify.clone();
            config.topics = notify.input_topics();
            let scheduler = side_tasks.then(|| tokio::spawn(notify.clone().run_scheduler()));
            let result = run_processor(
                Arc::new(sixfold_notify::NotifyProcessor::new(notify)),
                config,
                context,
                shutdown,
            )
            .await;
            scheduler.inspect(|task| task.abort());
            result
        }
        sixfold_crawler::PROCESSOR => {
            // The admission processor and, beside it, the fetch loop over leased hosts.
            let crawler = systems.crawler.clone();
            config.topics = crawler.input_topics();
            if !side_tasks {
                return Ok(
                    run_processor(Arc::new(crawler.processor()), config, context, shutdown).await?,
                );
            }
            let mut fetcher = tokio::spawn(crawler.clone().run_fetcher(shutdown.clone()));
            let processor = run_processor(
                Arc::new(crawler.processor()),
                config,
                context,
                shutdown.clone(),
            );
            tokio::pin!(processor);
            tokio::select! {
                result = &mut processor => {
                    shutdown.cancel();
                    let _ = fetcher.await;
                    result
                }
                // The fetch loop ends only on shutdown; anything else stops the process, so
                // that a crawler never keeps admitting URLs it will not fetch.
                joined = &mut fetcher => {
                    let failure = match joined {
                        Ok(Ok(())) => None,
                        Ok(Err(error)) => Some(anyhow::anyhow!("crawler fetch loop failed: {error}")),
                        Err(error) => Some(anyhow::anyhow!("crawler fetch loop panicked: {error}")),
                    };
                    shutdown.cancel();
                    let result = processor.await;
                    if let Some(failure) = failure {
                        return Err(failure);
                    }
                    result
                }
            }
        }
        other => {
            let Some(channel) = notify_channel(other) else {
                bail!("unknown processor {other:?}");
            };
            let clients = Arc::new(ChannelClients::from_settings(&settings.notify).await);
            let worker = ChannelWorker::new(systems.notify.clone(), clients, channel);
            config.topics = vec![worker.input_topic()];
            run_processor(Arc::new(worker), config, context, shutdown).await
        }
    };
    Ok(result?)
}

async fn run_components(settings: &Settings, shutdown: CancellationToken) -> Result<()> {
    topics_apply(settings).await?;
    let mut tasks = tokio::task::JoinSet::new();
    if settings.embedded.start_registry {
        let (s, token) = (settings.clone(), shutdown.clone());
        tasks.spawn(async move { registry(&s, token).await.context("registry") });
        embedded::wait_until_answers("registry", settings.registry.listen).await?;
    }
    let clients = Arc::new(Clients::connect(settings, Metrics::new()).await?);
    let settings = &views::active_settings(settings, clients.store.as_ref()).await?;
    let systems = Arc::new(Systems::new(settings, &clients, shutdown.clone())?);
    {
        let (s, c, sys, token) = (
            settings.clone(),
            clients.clone(),
            systems.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let dev_key = s.embedded.dev_api_key.clone();
            serve_ingress(&s, &c, &sys, dev_key.as_deref(), token)
                .await
                .context("ingress")
        });
    }
    for name in PROCESSORS {
        let (s, c, sys, token) = (
            settings.clone(),
            clients.clone(),
            systems.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let options = RunOptions {
                side_tasks: true,
                ..RunOptions::default()
            };
            run_processor_with(&s, &c, &sys, name, options, token)
                .await
                .with_context(|| format!("{name} processor"))
        });
    }
    // A component that fails while starting (the ingress among them) ends the wait with its
    // own error rather than a timeout.
    let mut result = tokio::select! {
        ready = embedded::wait_until_answers("ingress", settings.ingress.listen) => ready,
        Some(joined) = tasks.join_next() => Err(stopped(joined)),
    };
    if result.is_ok() {
        print_banner(settings);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            Some(joined) = tasks.join_next() => result = Err(stopped(joined)),
        }
    }
    shutdown.cancel();
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

/// A component stopped on its own: that is a failure of the whole pipeline.
fn stopped(joined: Result<Result<()>, tokio::task::JoinError>) -> anyhow::Error {
    match joined {
        Ok(Ok(())) => anyhow::anyhow!("a component stopped unexpectedly"),
        Ok(Err(error)) => error,
        Err(error) => error.into(),
    }
}

fn print_banner(settings: &Settings) {
    let ingress = settings.ingress.listen;
    let key = settings
        .embedded
        .dev_api_key
        .as_deref()
        .unwrap_or("(none: set embedded.dev_api_key)");
    let console = if settings.console.enabled {
        format!(
            "http://{ingress}/  (open it in a browser: the pipeline live, and every system to try)"
        )
    } else {
        "(off: console.enabled is false)".to_owned()
    };
    println!(
        "\nSixfold is running.\n  console   {console}\n  ingress   http://{ingress}/  (try: curl http://{ingress}/readyz)\n  API key   {key}  (development only)\n  openapi   http://{ingress}/openapi.json\n  metrics   http://{ingress}/metrics\n  registry  {}\n  broker    {}\n  redis     {}\n  store     {:?} {}\n\nShorten a URL and follow it:\n  curl -s -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n       -d '{{\"long_url\": \"https://example.com/\"}}' http://{ingress}/v1/urls\n\nPost a tweet and read a timeline, chat over WebSockets, seed a crawl of `make site`: see README.md (Try ...).\nPress Ctrl-C to stop.\n",
        settings.registry.url,
        settings.kafka.brokers,
        settings.redis.describe(),
        settings.store.backend,
        settings.store.sqlite_path.display(),
    );
}
