//! Chat: WhatsApp/Slack-style messaging over WebSocket gateways, with ordered persistence per
//! conversation, delivered/read receipts, presence, offline sync and attachments, as the seed's
//! chat chapter describes.
//!
//! # Flow
//! - `POST /v1/chat/conversations` (ingress, API key) produces `chat.membership` CREATED (key:
//!   conversation) and answers once the processor has stored the conversation. Two members
//!   make a 1:1 conversation whose id is derived from the pair; more make a group (≤ 500) with
//!   an owner, admins and members ([`conversation`]). Member changes are `chat.membership`
//!   events too.
//! - A client opens `GET /v1/chat/ws` with a per-user token (`POST /v1/chat/tokens`,
//!   [`token`]). The [`gateway`] that accepts the socket registers the user in Redis
//!   ([`directory`]) and speaks the JSON frames of [`protocol`]. A `send` frame from a member
//!   becomes a `chat.sent` event (key: conversation) carrying the gateway's id.
//! - The `chat` processor ([`processor`]) consumes `chat.sent`, `chat.receipt`, `chat.fanout`
//!   and `chat.membership`:
//!   - `chat.sent`: claims the conversation's next sequence number and stores the message
//!     ([`storage`]), then acks the sender through their gateway's pub/sub channel, then routes
//!     the message: members with a live route get it through their gateways' channels, the
//!     others get an entry in their offline inbox. Conversations of 100 or more members are
//!     delivered through `chat.fanout` work items of 100 members each. The sender's read
//!     position moves to their own message (a `chat.receipt` READ), so unread counts only
//!     count others' messages.
//!   - `chat.receipt`: moves the member's delivered/read position forward and tells the
//!     senders of the covered messages who are online.
//!   - `chat.fanout`: routes one batch of a large group's message.
//!   - `chat.membership`: applies the change under the group's rules.
//! - On connect the gateway sends the user's inbox (the messages missed while offline, in
//!   order) and clears it; `sync` re-sends a conversation after a sequence number. Presence:
//!   every heartbeat (`heartbeat`, 5 s) the gateway refreshes its users' routes and presence
//!   keys (TTL `presence_ttl`, 30 s); a user's first socket makes them online, their last one
//!   closing (or their presence running out, for a crashed gateway) offline, and either is
//!   pushed to the other members of their 1:1 conversations who are connected.
//! - History: `GET /v1/chat/conversations?user_id=` (newest first, unread counts) and
//!   `GET /v1/chat/conversations/{id}/messages?user_id=&before=&limit=`. Attachments:
//!   `POST /v1/chat/media` into the content store ([`media`]); messages carry the URL.
//!
//! # Delivery and idempotency
//! Messages are persisted at least once and exactly once per `(sender, client_msg_id)`: a
//! redelivered or resent `chat.sent` finds its stored message and sequence number and is acked
//! and routed again (clients drop a `message` whose `seq` they have). Sequence numbers are
//! claimed by inserting the row with `put_if_absent`, so they are strictly increasing and
//! gap-free even with two writers. Real-time delivery is at most once (pub/sub); what a socket
//! misses is in the store, reached through the inbox on reconnect or `sync`. Invalid events
//! (bad fields, unknown conversation, a sender who is not a member, a membership change the
//! rules refuse) go to `chat.dlq`; store, Redis or broker failures are transient
//! (`chat.retry.1..3`).
//!
//! # Replay
//! `sixfold replay --processor chat` rebuilds the views (conversations, members, messages,
//! idempotency keys, conversation lists and positions) from `chat.membership`, `chat.sent` and
//! `chat.receipt`, read in timestamp order across the three (the runtime's aligned mode): the
//! views depend on that order (a conversation's creation before its messages, a member added
//! before they post, a message before the receipts that cover it). The replay's processor
//! ([`ChatProcessor::views_only`]) delivers nothing: no acks, no routing, no fan-out items, no
//! sender receipts (those are in `chat.receipt` already). The offline inbox and uploaded media
//! are not views: the inbox is pending deliveries (what a client has not been pushed yet; a
//! client catches up with `sync` and unread counts), media are uploads.
//!
//! Known limits:
//! - Real-time frames to a socket that is closing are lost (the client catches up with `sync`);
//!   inbox entries are written only for users with no live route.
//! - Presence goes to 1:1 partners only, not to group members (a 500-member group would cost
//!   500 frames per status change), as in WhatsApp; group UIs ask on open.
//! - A user's own other devices do not receive the messages they send (only the ack).
//! - The conversation list reads one entry per conversation (up to 1,000 per user); the seed's
//!   per-member list table would cost a write per member per message instead.

pub mod conversation;
pub mod directory;
pub mod events;
pub mod gateway;
pub mod media;
pub mod processor;
pub mod protocol;
pub mod routes;
pub mod sequence;
pub mod storage;
pub mod token;
pub mod user;

use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, IntGauge, Opts};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_store::Store;
use sixfold_store::blobs::ContentStore;

use crate::directory::Directory;
use crate::gateway::Gateway;
pub use crate::processor::ChatProcessor;
use crate::storage::ChatStore;
use crate::token::TokenIssuer;

/// The processor's name (consumer group, retry and DLQ topics).
pub const PROCESSOR: &str = "chat";

/// Settings section `chat:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Key of the HMAC that signs chat tokens; at least 32 bytes, the same on every ingress.
    /// No default: anyone who knows the key can connect as any user, so a deployment must set
    /// its own (`config/development.yaml` has one for development).
    #[serde(serialize_with = "sixfold_runtime::settings::expose_secret")]
    pub token_secret: SecretString,
    /// How long an issued token lets a user connect.
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// This gateway's id in the registry; empty picks a random one per process (what you want
    /// unless something outside watches a fixed id).
    pub gateway_id: String,
    /// How often a gateway refreshes its users' routes and presence and pings sockets (the
    /// seed's 5 s).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// How long a user stays online after their last heartbeat, and how long a gateway's
    /// registry entries outlive it if it crashes (the seed's 30 s).
    #[serde(with = "humantime_serde")]
    pub presence_ttl: Duration,
    /// Conversations with fewer members are delivered directly; larger ones through
    /// `chat.fanout` work items.
    pub direct_fanout_max: usize,
    /// Members per `chat.fanout` work item.
    pub fanout_batch: usize,
    /// Most members of a group.
    pub max_group_members: usize,
    /// Most messages one `sync` sends before `synced {more: true}`.
    pub sync_batch: usize,
    /// Largest history page.
    pub max_page: usize,
    /// Frames queued for one socket; a client that falls further behind is disconnected (it
    /// reconnects and syncs).
    pub send_queue: usize,
    /// Directory of the attachment store (development; S3 in production).
    pub media_dir: std::path::PathBuf,
    /// Largest attachment, in bytes.
    pub max_media_bytes: usize,
    /// Content types attachments may have.
    pub media_types: Vec<String>,
    /// Prefix of store namespaces and Redis keys.
    pub namespace: String,
    /// Prefix of what is state rather than a view (offline inboxes, uploaded media, routes and
    /// presence in Redis) when it is not `namespace`: a rebuild (`sixfold replay --rebuild`)
    /// moves the views to a new namespace and leaves these where they are.
    pub state_namespace: Option<String>,
    /// Topic of sent messages.
    pub sent_topic: String,
    /// Topic of receipts.
    pub receipt_topic: String,
    /// Topic of fan-out work items.
    pub fanout_topic: String,
    /// Topic of membership changes.
    pub membership_topic: String,
}

impl ChatSettings {
    /// The prefix of chat's state: `state_namespace`, else `namespace`.
    pub fn state_namespace(&self) -> &str {
        self.state_namespace.as_deref().unwrap_or(&self.namespace)
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            token_secret: SecretString::from(""),
            token_ttl: Duration::from_secs(3600),
            gateway_id: String::new(),
            heartbeat: Duration::from_secs(5),
            presence_ttl: Duration::from_secs(30),
            direct_fanout_max: conversation::DEFAULT_DIRECT_FANOUT_MAX,
            fanout_batch: conversation::DEFAULT_FANOUT_BATCH,
            max_group_members: conversation::MAX_GROUP_MEMBERS,
            sync_batch: 500,
            max_page: 100,
            send_queue: 1024,
            media_dir: "var/chat-media".into(),
            max_media_bytes: 10 * 1024 * 1024,
            media_types: [
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
            ]
            .map(String::from)
            .to_vec(),
            namespace: "chat".into(),
            state_namespace: None,
            sent_topic: "chat.sent".into(),
            receipt_topic: "chat.receipt".into(),
            fanout_topic: "chat.fanout".into(),
            membership_topic: "chat.membership".into(),
        }
    }
}

/// What chat needs from the process.
pub struct ChatDeps {
    /// Store.
    pub store: Arc<dyn Store>,
    /// Redis (commands; the gateway opens its own pub/sub connection from `redis_urls`).
    pub redis: RedisConn,
    /// Redis node URLs for the gateway's pub/sub connection: the single node, or a cluster's
    /// seed nodes, tried in turn after a failure (a cluster forwards every `PUBLISH` to all
    /// its nodes, so any one will do).
    pub redis_urls: Vec<String>,
    /// Producer (events are awaited).
    pub producer: Producer,
    /// Avro codec.
    pub codec: Arc<AvroCodec>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Base URL of the ingress, where attachments are served (`<public_url>/v1/chat/media/…`).
    pub public_url: String,
    /// Cancelled when the process stops: sockets are closed with "going away".
    pub shutdown: CancellationToken,
}

/// Why chat could not start.
#[derive(Debug, thiserror::Error)]
pub enum ChatStartError {
    /// A setting is invalid.
    #[error("chat settings: {0}")]
    Settings(String),
    /// An event schema did not parse.
    #[error("chat schema: {0}")]
    Schema(#[from] sixfold_runtime::codec::CodecError),
    /// A metric could not be registered.
    #[error("chat metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The attachment store could not be opened.
    #[error("chat media store: {0}")]
    Media(#[from] object_store::Error),
}

/// Parsed schemas of the events chat produces.
struct Schemas {
    sent: EventSchema,
    receipt: EventSchema,
    fanout: EventSchema,
    membership: EventSchema,
}

/// Chat's counters.
struct ChatMetrics {
    /// Frames to sockets by type, and deliveries by route.
    deliveries: IntCounterVec,
    /// Open sockets on this gateway.
    sockets: IntGauge,
}

/// Chat's shared state: used by its routes, its gateway and its processor.
pub struct Chat {
    settings: ChatSettings,
    store: ChatStore,
    directory: Directory,
    gateway: Gateway,
    tokens: TokenIssuer,
    blobs: ContentStore,
    producer: Producer,
    codec: Arc<AvroCodec>,
    schemas: Schemas,
    metrics: Metrics,
    counters: ChatMetrics,
    redis_urls: Vec<String>,
    public_url: String,
    shutdown: CancellationToken,
}

impl Chat {
    /// Builds chat from settings and the process's clients.
    pub fn new(settings: ChatSettings, deps: ChatDeps) -> Result<Arc<Self>, ChatStartError> {
        check_settings(&settings).map_err(ChatStartError::Settings)?;
        if deps.redis_urls.is_empty() {
            return Err(ChatStartError::Settings(
                "no Redis URL for the gateway's pub/sub connection".into(),
            ));
        }
        let registry = deps.metrics.registry();
        let deliveries = IntCounterVec::new(
            Opts::new(
                "sixfold_chat_deliveries_total",
                "Chat frames routed, by kind (message, ack, receipt, presence) and route (gateway, inbox, socket).",
            ),
            &["kind", "route"],
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        let sockets = IntGauge::new("sixfold_chat_sockets", "WebSockets open on this gateway.")?;
        registry.register(Box::new(sockets.clone()))?;
        let gateway_id = if settings.gateway_id.is_empty() {
            format!("gw-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
        } else {
            settings.gateway_id.clone()
        };
        Ok(Arc::new(Self {
            store: ChatStore::new(deps.store, &settings.namespace)
                .with_state_prefix(settings.state_namespace()),
            directory: Directory::new(deps.redis, settings.state_namespace()),
            gateway: Gateway::new(gateway_id),
            tokens: TokenIssuer::new(
                settings.token_secret.expose_secret().as_bytes(),
                settings.token_ttl,
            ),
            blobs: ContentStore::local(&settings.media_dir)?,
            producer: deps.producer,
            codec: deps.codec,
            schemas: Schemas {
                sent: EventSchema::parse(events::CHAT_SENT_SCHEMA)?,
                receipt: EventSchema::parse(events::CHAT_RECEIPT_SCHEMA)?,
                fanout: EventSchema::parse(events::CHAT_FANOUT_SCHEMA)?,
                membership: EventSchema::parse(events::CHAT_MEMBERSHIP_SCHEMA)?,
            },
            metrics: deps.metrics,
            counters: ChatMetrics {
                deliveries,
                sockets,
            },
            redis_urls: deps.redis_urls,
            public_url: deps.public_url,
            shutdown: deps.shutdown,
            settings,
        }))
    }

    /// The processor, for the runtime's consumer loop.
    pub fn processor(self: &Arc<Self>) -> ChatProcessor {
        ChatProcessor::new(self.clone())
    }

    /// The processor of a replay: it rebuilds the views from [`Chat::replay_topics`] and
    /// delivers nothing ([`ChatProcessor::views_only`]).
    pub fn replay_processor(self: &Arc<Self>) -> ChatProcessor {
        ChatProcessor::views_only(self.clone())
    }

    /// The topics a replay reads, in the order that breaks timestamp ties: membership changes,
    /// messages, receipts. `chat.fanout` is delivery work, not a source of views.
    pub fn replay_topics(&self) -> Vec<String> {
        let s = &self.settings;
        vec![
            s.membership_topic.clone(),
            s.sent_topic.clone(),
            s.receipt_topic.clone(),
        ]
    }

    /// The topics the processor consumes.
    pub fn input_topics(&self) -> Vec<String> {
        let s = &self.settings;
        vec![
            s.sent_topic.clone(),
            s.receipt_topic.clone(),
            s.fanout_topic.clone(),
            s.membership_topic.clone(),
        ]
    }

    /// The settings in force.
    pub fn settings(&self) -> &ChatSettings {
        &self.settings
    }

    /// Chat's tables (for tests and operations tools).
    pub fn store(&self) -> &ChatStore {
        &self.store
    }

    /// This gateway's id in the registry.
    pub fn gateway_id(&self) -> &str {
        self.gateway.id()
    }

    /// Frames routed so far by kind and route (see `sixfold_chat_deliveries_total`).
    pub fn deliveries(&self, kind: &str, route: &str) -> u64 {
        self.counters
            .deliveries
            .with_label_values(&[kind, route])
            .get()
    }

    /// Encodes `event` for `topic` and waits for the broker's acknowledgement.
    async fn produce<T: Serialize>(
        &self,
        topic: &str,
        schema: &EventSchema,
        key: &str,
        event: &T,
    ) -> Result<(), ProduceFailure> {
        self.producer
            .send_event(&self.codec, topic, schema, key, event)
            .await?;
        Ok(())
    }
}

/// An event that could not be handed to the broker.
pub type ProduceFailure = sixfold_runtime::producer::EventSendError;

fn check_settings(s: &ChatSettings) -> Result<(), String> {
    if s.token_secret.expose_secret().len() < token::MIN_SECRET_BYTES {
        return Err(format!(
            "token_secret must be at least {} bytes (set SIXFOLD__CHAT__TOKEN_SECRET)",
            token::MIN_SECRET_BYTES
        ));
    }
    if s.fanout_batch == 0 || s.max_page == 0 || s.sync_batch == 0 || s.send_queue == 0 {
        return Err("fanout_batch, max_page, sync_batch and send_queue must be at least 1".into());
    }
    if s.sync_batch > sixfold_store::MAX_LIST_LIMIT || s.max_page > sixfold_store::MAX_LIST_LIMIT {
        return Err(format!(
            "sync_batch and max_page must be at most {}",
            sixfold_store::MAX_LIST_LIMIT
        ));
    }
    if s.max_group_members > conversation::MAX_GROUP_MEMBERS
        || s.max_group_members < conversation::MIN_GROUP_MEMBERS
    {
        return Err(format!(
            "max_group_members must be {}..={}",
            conversation::MIN_GROUP_MEMBERS,
            conversation::MAX_GROUP_MEMBERS
        ));
    }
    if s.heartbeat.is_zero() || s.presence_ttl <= s.heartbeat {
        return Err("heartbeat must be positive and shorter than presence_ttl".into());
    }
    sixfold_runtime::settings::check_namespace(&s.namespace)?;
    sixfold_runtime::settings::check_namespace(s.state_namespace())?;
    if !s.gateway_id.is_empty() && !user::is_valid_user_id(&s.gateway_id) {
        return Err("gateway_id must be [A-Za-z0-9_-]{1,64}".into());
    }
    Ok(())
}
