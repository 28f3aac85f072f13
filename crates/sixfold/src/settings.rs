//! The settings document of the `sixfold` binary: one section per library, each owned by the
//! crate that reads it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sixfold_chat::ChatSettings;
use sixfold_crawler::CrawlerSettings;
use sixfold_ingress::IngressSettings;
use sixfold_notify::NotifySettings;
use sixfold_ratelimit::RateLimitSettings;
use sixfold_registry::RegistrySettings;
use sixfold_runtime::metrics::MetricsSettings;
use sixfold_runtime::redis_conn::RedisSettings;
use sixfold_runtime::settings::KafkaSettings;
use sixfold_runtime::telemetry::LogSettings;
use sixfold_store::StoreSettings;
use sixfold_timeline::TimelineSettings;
use sixfold_urls::UrlsSettings;

/// Everything `sixfold` can be configured with. See `config/development.yaml` for an example
/// and README "Configuration" for the environment-variable form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Broker connection.
    pub kafka: KafkaSettings,
    /// Schema registry: the URL clients use, and where `sixfold registry` listens.
    pub registry: RegistrySettings,
    /// Redis: one node, or a cluster.
    pub redis: RedisSettings,
    /// Store adapter (SQLite or ScyllaDB).
    pub store: StoreSettings,
    /// HTTP ingress.
    pub ingress: IngressSettings,
    /// `/metrics` server of processor processes.
    pub metrics: MetricsSettings,
    /// Logging.
    pub log: LogSettings,
    /// Where the topic catalog is.
    pub topics: TopicsSettings,
    /// URL shortener.
    pub urls: UrlsSettings,
    /// Home timeline.
    pub timeline: TimelineSettings,
    /// Chat.
    pub chat: ChatSettings,
    /// Notifications.
    pub notify: NotifySettings,
    /// Web crawler.
    pub crawler: CrawlerSettings,
    /// Rate limiter of the ingress.
    pub ratelimit: RateLimitSettings,
    /// What `sixfold run` starts by itself when it is not already running.
    pub embedded: EmbeddedSettings,
    /// The web console every ingress serves.
    pub console: crate::console::ConsoleSettings,
}

/// Settings section `topics:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicsSettings {
    /// Path of `topics.yaml`.
    pub file: PathBuf,
}

impl Default for TopicsSettings {
    fn default() -> Self {
        Self {
            file: "topics.yaml".into(),
        }
    }
}

/// Settings section `embedded:` — the one-command local set-up of `sixfold run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedSettings {
    /// Directory for the data of everything `sixfold run` starts (broker log, Redis dump).
    pub data_dir: PathBuf,
    /// Start the broker as a child process when none answers at `kafka.brokers`.
    pub start_broker: bool,
    /// The `tansu` executable; when unset, `$HOME/.cache/sixfold/tansu/bin/tansu`, then `PATH`.
    pub broker_bin: Option<PathBuf>,
    /// Start `redis-server` as a child process when none answers at `redis.url`.
    pub start_redis: bool,
    /// The `redis-server` executable.
    pub redis_bin: PathBuf,
    /// Serve the schema registry in-process (`registry.listen`).
    pub start_registry: bool,
    /// Start the notification providers' local stand-ins (`notify-standins`: APNs, FCM,
    /// Twilio, SMTP with a mailbox directory) when nothing answers at `notify.email`'s port.
    pub start_standins: bool,
    /// The `notify-standins` executable; when unset, the one next to this binary.
    pub standins_bin: Option<PathBuf>,
    /// A development API key accepted by the ingress of `sixfold run` and printed at start, so
    /// the README's curl commands work as written. Never set it in production.
    pub dev_api_key: Option<String>,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            data_dir: "var".into(),
            start_broker: true,
            broker_bin: None,
            start_redis: true,
            redis_bin: "redis-server".into(),
            start_registry: true,
            start_standins: false,
            standins_bin: None,
            dev_api_key: None,
        }
    }
}
