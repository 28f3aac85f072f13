//! `sixfold`: parses arguments, loads settings, starts telemetry and calls the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sixfold::settings::Settings;
use sixfold_runtime::{settings, shutdown, telemetry};

/// Sixfold: six large-scale systems as one Kafka pipeline.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Settings file (YAML); `SIXFOLD__SECTION__KEY` variables override it.
    #[arg(long, short, env = "SIXFOLD_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Everything in one process on the embedded default (broker, registry, Redis, SQLite,
    /// ingress, processors).
    Run,
    /// The HTTP ingress.
    Ingress,
    /// The schema registry.
    Registry,
    /// One processor by name.
    Processor {
        /// Processor name, as in topics.yaml.
        name: String,
    },
    /// The topic catalog.
    Topics {
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Rebuild a processor's views from its input topics (stop the processor first).
    Replay {
        /// Processor name, as in topics.yaml.
        #[arg(long)]
        processor: String,
        /// `earliest`, an RFC 3339 time, or topic:partition=offset pairs; without it, an
        /// interrupted replay resumes from the group's committed offsets.
        #[arg(long)]
        from: Option<String>,
        /// Stop before the first record at or after an RFC 3339 time, or at
        /// topic:partition=offset pairs (exclusive); later records stay for the processor.
        #[arg(long)]
        to: Option<String>,
        /// Build fresh views under a new namespace in a group of their own while the live
        /// processor serves the old ones, then swap them in (once its instances are stopped).
        #[arg(long)]
        rebuild: bool,
        /// Replay even when the broker cannot describe the group (every instance is stopped).
        #[arg(long)]
        force: bool,
    },
    /// A processor's dead-letter topic: list, re-drive, purge.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// Load generators used by `make bench`.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Rate-limit decisions per second per algorithm against the configured Redis.
    Ratelimit {
        /// Concurrent callers.
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Seconds per algorithm.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// Crawler pages per second over the local benchmark site.
    Crawler {
        /// Base URLs of the site's hosts (`http://127.0.0.1:19100`, ...).
        #[arg(long, value_delimiter = ',', required = true)]
        hosts: Vec<String>,
        /// Pages fetched before the clock stops.
        #[arg(long, default_value_t = 10_000)]
        pages: u64,
    },
    /// Chat delivery latency (send frame → recipient's socket) at stepped rates.
    Chat {
        /// 1:1 conversations (one sender, one recipient each).
        #[arg(long, default_value_t = 100)]
        pairs: usize,
        /// Messages per second of the 1:1 steps.
        #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000")]
        rates: Vec<u64>,
        /// Members of the group (one sender, the rest receive).
        #[arg(long, default_value_t = 50)]
        group: usize,
        /// Messages per second of the group steps.
        #[arg(long, value_delimiter = ',', default_value = "50,100,200")]
        group_rates: Vec<u64>,
        /// Seconds per step.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Notifications per minute and request → delivery latency into the provider stand-ins.
    Notify {
        /// Users (one iOS device and an email address each).
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Notifications (push and email each).
        #[arg(long, default_value_t = 20_000)]
        notifications: usize,
        /// Requests per second (open loop); all at once when not given.
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Broker and runtime cost alone: produce rate, a raw consumer's rate and a pass-through
    /// processor's rate over the same records.
    Pipeline {
        /// Records produced and read back.
        #[arg(long, default_value_t = 500_000)]
        records: usize,
    },
    /// Timeline fan-out throughput and tweet-to-timelines latency.
    Timeline {
        /// Followers of the big author (below `timeline.fanout_threshold`).
        #[arg(long, default_value_t = 10_000)]
        followers: usize,
        /// Tweets by 200-follower authors in the throughput run.
        #[arg(long, default_value_t = 2_000)]
        tweets: usize,
        /// Tweets by the big author timed one at a time.
        #[arg(long, default_value_t = 20)]
        samples: usize,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Dead letters by error class, with the first few of each decoded.
    List {
        /// Processor name, as in topics.yaml.
        #[arg(long)]
        processor: String,
        /// Records decoded per class.
        #[arg(long, default_value_t = 3)]
        examples: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back to their input topics (each once over all runs).
    Redrive {
        /// Processor name, as in topics.yaml.
        #[arg(long)]
        processor: String,
        /// Only records of this error class.
        #[arg(long)]
        error_class: Option<String>,
        /// Count what would be sent; send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Forget every record now in the DLQ (they are no longer listed or re-driven).
    Purge {
        /// Processor name, as in topics.yaml.
        #[arg(long)]
        processor: String,
        /// Required: a purge cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum TopicsCommand {
    /// Create missing topics and add missing partitions; idempotent.
    Apply,
    /// Print every topic the catalog implies.
    List,
}

impl From<DlqCommand> for sixfold::DlqAction {
    fn from(command: DlqCommand) -> Self {
        match command {
            DlqCommand::List {
                processor,
                examples,
                json,
            } => Self::List {
                processor,
                examples,
                json,
            },
            DlqCommand::Redrive {
                processor,
                error_class,
                dry_run,
            } => Self::Redrive {
                processor,
                error_class,
                dry_run,
            },
            DlqCommand::Purge { processor, yes } => Self::Purge { processor, yes },
        }
    }
}

/// mimalloc: the redirect path is allocation-heavy (HTTP, Redis, Kafka), and glibc's malloc showed
/// up at ~10% of a profile of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let settings: Settings = settings::load(cli.config.as_deref())?;
    telemetry::init(&settings.log);
    let shutdown = shutdown::on_signal();
    match cli.command {
        Command::Run => sixfold::run(&settings, shutdown).await,
        Command::Ingress => sixfold::ingress(&settings, shutdown).await,
        Command::Registry => sixfold::registry(&settings, shutdown).await,
        Command::Processor { name } => sixfold::processor(&settings, &name, shutdown).await,
        Command::Bench { command } => match command {
            BenchCommand::Ratelimit { clients, seconds } => {
                sixfold::bench::ratelimit(&settings, clients, seconds).await
            }
            BenchCommand::Crawler { hosts, pages } => {
                sixfold::bench::crawler::crawler(&settings, &hosts, pages).await
            }
            BenchCommand::Chat {
                pairs,
                rates,
                group,
                group_rates,
                seconds,
            } => {
                sixfold::bench::chat::chat(&settings, pairs, group, &rates, &group_rates, seconds)
                    .await
            }
            BenchCommand::Notify {
                users,
                notifications,
                rate,
            } => sixfold::bench::notify::notify(&settings, users, notifications, rate).await,
            BenchCommand::Pipeline { records } => {
                sixfold::bench::pipeline::pipeline(&settings, records).await
            }
            BenchCommand::Timeline {
                followers,
                tweets,
                samples,
            } => sixfold::bench::timeline::timeline(&settings, followers, tweets, samples).await,
        },
        Command::Replay {
            processor,
            from,
            to,
            rebuild,
            force,
        } => {
            sixfold::replay_command(
                &settings,
                &processor,
                (from.as_deref(), to.as_deref()),
                rebuild,
                force,
                shutdown,
            )
            .await
        }
        Command::Dlq { command } => sixfold::dlq_command(&settings, command.into()).await,
        Command::Topics { command } => match command {
            TopicsCommand::Apply => sixfold::topics_apply(&settings).await,
            TopicsCommand::List => sixfold::topics_list(&settings),
        },
    }
}
