//! A chat node for tests: chat's routes on an ingress plus its WebSocket gateway, over the real
//! broker, Redis and a SQLite store file that several nodes (and processes) share. The
//! `chat-gateway` binary runs one as its own process, so a test can SIGKILL a gateway.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use sixfold_chat::{Chat, ChatDeps, ChatSettings};
use sixfold_ingress::{ApiKeyEntry, IngressSettings};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_store::StoreSettings;

use crate::{kafka, redis_conn, redis_settings, serve_ingress};

/// The API key chat test nodes accept.
pub const CHAT_TEST_KEY: &str = "integration-test-key";

/// The settings of a test cluster whose names all start with `prefix`: topics
/// `<prefix>.sent` etc., fast heartbeats (200 ms) and presence that runs out after 2 s.
pub fn test_settings(prefix: &str, media_dir: &std::path::Path) -> ChatSettings {
    ChatSettings {
        namespace: prefix.to_owned(),
        sent_topic: format!("{prefix}.sent"),
        receipt_topic: format!("{prefix}.receipt"),
        fanout_topic: format!("{prefix}.fanout"),
        membership_topic: format!("{prefix}.membership"),
        heartbeat: Duration::from_millis(200),
        presence_ttl: Duration::from_secs(2),
        media_dir: media_dir.to_owned(),
        token_secret: "sixfold-chat-tests-token-secret-0123456789"
            .to_owned()
            .into(),
        ..ChatSettings::default()
    }
}

/// One running node.
pub struct ChatNode {
    /// Chat's shared state (its processor can run from here too).
    pub chat: Arc<Chat>,
    /// Base URL of the node's ingress.
    pub base: String,
    /// The node's metrics.
    pub metrics: Metrics,
    /// The producer it uses.
    pub producer: Producer,
    /// Its codec.
    pub codec: Arc<AvroCodec>,
    /// Stops the node (closing its sockets with "going away").
    pub shutdown: CancellationToken,
}

impl ChatNode {
    /// Starts a node on `listener` with `settings`, the store file `sqlite`, the registry at
    /// `registry_url`, and the single Redis or (`redis_cluster`) the Redis Cluster.
    pub async fn start(
        listener: tokio::net::TcpListener,
        settings: ChatSettings,
        sqlite: &std::path::Path,
        registry_url: &str,
        redis_cluster: bool,
    ) -> Result<Self> {
        let base = format!("http://{}", listener.local_addr()?);
        let store = sixfold_store::connect(&StoreSettings {
            sqlite_path: sqlite.to_owned(),
            ..StoreSettings::default()
        })
        .await?;
        let redis = redis_conn(redis_cluster).await?;
        let metrics = Metrics::new();
        let producer = Producer::new(&kafka(), metrics.clone())?;
        let codec = Arc::new(AvroCodec::new(registry_url)?);
        let shutdown = CancellationToken::new();
        let chat = Chat::new(
            settings,
            ChatDeps {
                store: store.clone(),
                redis,
                redis_urls: redis_settings(redis_cluster).node_urls(),
                producer: producer.clone(),
                codec: codec.clone(),
                metrics: metrics.clone(),
                public_url: base.clone(),
                shutdown: shutdown.clone(),
            },
        )?;
        let ingress = IngressSettings {
            api_keys: vec![ApiKeyEntry {
                name: "tests".into(),
                sha256: sixfold_ingress::auth::digest_hex(CHAT_TEST_KEY),
            }],
            max_body_bytes: 64 * 1024,
            ..IngressSettings::default()
        };
        serve_ingress(
            listener,
            &ingress,
            registry_url,
            &redis_settings(redis_cluster).node_urls()[0],
            store,
            metrics.clone(),
            RateLimiter::disabled(),
            vec![sixfold_chat::routes::routes(chat.clone())],
            shutdown.clone(),
        )?;
        tokio::spawn(chat.clone().run_gateway());
        Ok(Self {
            chat,
            base,
            metrics,
            producer,
            codec,
            shutdown,
        })
    }
}

impl Drop for ChatNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
