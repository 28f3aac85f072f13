//! [`Notify`]: the notification service's shared state, used by its routes, its `notify`
//! processor and its scheduler.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use serde::{Deserialize, Serialize};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_store::Store;

use crate::channels::{ApnsSettings, EmailSettings, FcmSettings, SmsSettings};
use crate::events;
use crate::storage::NotifyStore;
use crate::template::{TemplateError, Templates};

/// The processor's name (consumer group, retry and DLQ topics).
pub const PROCESSOR: &str = "notify";

/// Settings section `notify:`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifySettings {
    /// Directory of the templates (`<template_id>/<channel>.<locale>.<part>.j2`).
    pub templates_dir: PathBuf,
    /// Locale used when neither the request nor a fallback matches.
    pub default_locale: String,
    /// A repeated notification id within this window is not sent again.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// How often held sends (quiet hours, `send_at`) are checked for being due.
    #[serde(with = "humantime_serde")]
    pub scheduler_interval: Duration,
    /// Prefix of store namespaces and rate-limit keys.
    pub namespace: String,
    /// Prefix of the service's own data (preferences, contacts, devices) and its rate-limit
    /// keys when it is not `namespace`: a rebuild (`sixfold replay --rebuild`) moves the views
    /// (dedup records, held sends, sent markers) to a new namespace and leaves these where they
    /// are.
    pub state_namespace: Option<String>,
    /// Topic of requests.
    pub requested_topic: String,
    /// Topic of rendered pushes.
    pub push_topic: String,
    /// Topic of rendered emails.
    pub email_topic: String,
    /// Topic of rendered text messages.
    pub sms_topic: String,
    /// Topic of delivery outcomes.
    pub status_topic: String,
    /// APNs (iOS pushes); unset: the push worker refuses iOS devices.
    pub apns: Option<ApnsSettings>,
    /// FCM HTTP v1 (Android and web pushes); unset: the push worker refuses those devices.
    pub fcm: Option<FcmSettings>,
    /// SMTP; unset: the email worker refuses records.
    pub email: Option<EmailSettings>,
    /// Twilio; unset: the SMS worker refuses records.
    pub sms: Option<SmsSettings>,
}

impl NotifySettings {
    /// The prefix of the service's own data: `state_namespace`, else `namespace`.
    pub fn state_namespace(&self) -> &str {
        self.state_namespace.as_deref().unwrap_or(&self.namespace)
    }
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            templates_dir: "templates".into(),
            default_locale: crate::template::DEFAULT_LOCALE.into(),
            dedup_window: Duration::from_secs(24 * 3600),
            scheduler_interval: Duration::from_secs(1),
            namespace: "notify".into(),
            state_namespace: None,
            requested_topic: "notify.requested".into(),
            push_topic: "notify.push".into(),
            email_topic: "notify.email".into(),
            sms_topic: "notify.sms".into(),
            status_topic: "notify.status".into(),
            apns: None,
            fcm: None,
            email: None,
            sms: None,
        }
    }
}

/// What the notification service needs from the process.
pub struct NotifyDeps {
    /// Store.
    pub store: Arc<dyn Store>,
    /// The rate limiter (frequency caps).
    pub limiter: RateLimiter,
    /// Producer (events are awaited).
    pub producer: Producer,
    /// Avro codec.
    pub codec: Arc<AvroCodec>,
    /// Metrics registry.
    pub metrics: Metrics,
    /// Stops the scheduler.
    pub shutdown: CancellationToken,
}

/// Why the notification service could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyStartError {
    /// A setting is invalid.
    #[error("notify settings: {0}")]
    Settings(String),
    /// The templates did not load.
    #[error("notify templates: {0}")]
    Templates(#[from] TemplateError),
    /// An event schema did not parse.
    #[error("notify schema: {0}")]
    Schema(#[from] sixfold_runtime::codec::CodecError),
    /// A metric could not be registered.
    #[error("notify metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// Parsed schemas of the events the service produces.
pub(crate) struct Schemas {
    pub(crate) requested: EventSchema,
    pub(crate) push: EventSchema,
    pub(crate) email: EventSchema,
    pub(crate) sms: EventSchema,
    pub(crate) status: EventSchema,
}

/// The notification service's shared state.
pub struct Notify {
    pub(crate) settings: NotifySettings,
    pub(crate) store: NotifyStore,
    pub(crate) templates: Templates,
    pub(crate) limiter: RateLimiter,
    pub(crate) producer: Producer,
    pub(crate) codec: Arc<AvroCodec>,
    pub(crate) schemas: Schemas,
    pub(crate) outcomes: IntCounterVec,
    /// The runtime's `sixfold_delivered_total` (by worker and provider), counted per accepted send.
    pub(crate) delivered: IntCounterVec,
    pub(crate) shutdown: CancellationToken,
}

impl Notify {
    /// Builds the service from settings and the process's clients; loads the templates.
    pub fn new(settings: NotifySettings, deps: NotifyDeps) -> Result<Arc<Self>, NotifyStartError> {
        sixfold_runtime::settings::check_namespace(&settings.namespace)
            .map_err(NotifyStartError::Settings)?;
        sixfold_runtime::settings::check_namespace(settings.state_namespace())
            .map_err(NotifyStartError::Settings)?;
        if settings.scheduler_interval.is_zero() {
            return Err(NotifyStartError::Settings(
                "scheduler_interval must be positive".into(),
            ));
        }
        let templates = Templates::load(&settings.templates_dir)?
            .with_default_locale(&settings.default_locale)?;
        let outcomes = IntCounterVec::new(
            Opts::new(
                "sixfold_notify_outcomes_total",
                "Notification outcomes by channel and status (queued, deferred, dropped_by_preference, rate_limited, duplicate, sent, failed, retrying).",
            ),
            &["channel", "status"],
        )?;
        deps.metrics
            .registry()
            .register(Box::new(outcomes.clone()))?;
        Ok(Arc::new(Self {
            store: NotifyStore::new(deps.store, &settings.namespace)
                .with_state_prefix(settings.state_namespace()),
            templates,
            limiter: deps.limiter,
            producer: deps.producer,
            codec: deps.codec,
            schemas: Schemas {
                requested: EventSchema::parse(events::NOTIFY_REQUESTED_SCHEMA)?,
                push: EventSchema::parse(events::NOTIFY_PUSH_SCHEMA)?,
                email: EventSchema::parse(events::NOTIFY_EMAIL_SCHEMA)?,
                sms: EventSchema::parse(events::NOTIFY_SMS_SCHEMA)?,
                status: EventSchema::parse(events::NOTIFY_STATUS_SCHEMA)?,
            },
            outcomes,
            delivered: deps.metrics.delivered.clone(),
            shutdown: deps.shutdown,
            settings,
        }))
    }

    /// The settings in force.
    pub fn settings(&self) -> &NotifySettings {
        &self.settings
    }

    /// The service's tables.
    pub fn store(&self) -> &NotifyStore {
        &self.store
    }

    /// The topics the `notify` processor consumes.
    pub fn input_topics(&self) -> Vec<String> {
        vec![self.settings.requested_topic.clone()]
    }

    /// The topic a replay of the notification processors reads: `notify.status`, the decision
    /// log ([`crate::restore`]).
    pub fn replay_topics(&self) -> Vec<String> {
        vec![self.settings.status_topic.clone()]
    }

    /// Outcomes so far for `channel` (`push`, `email`, `sms`, or `-`) and `status`
    /// (lower-case, e.g. `queued`).
    pub fn outcomes(&self, channel: &str, status: &str) -> u64 {
        self.outcomes.with_label_values(&[channel, status]).get()
    }

    /// Produces a request to `notify.requested` as the API does, without its checks (for
    /// benchmarks and other in-process callers that built a valid request).
    pub async fn enqueue(&self, request: &events::NotifyRequested) -> Result<(), ProduceFailure> {
        self.produce(
            &self.settings.requested_topic,
            &self.schemas.requested,
            &request.user_id,
            request,
        )
        .await
    }

    /// Encodes `event` for `topic` and queues it; `acks` waits for it later.
    pub(crate) async fn queue<T: Serialize>(
        &self,
        acks: &mut Acks,
        topic: &str,
        schema: &EventSchema,
        key: &str,
        event: &T,
    ) -> Result<(), ProduceFailure> {
        let pending = self
            .producer
            .enqueue_event(&self.codec, topic, schema, key, event)
            .await?;
        acks.0.push(Box::pin(pending));
        Ok(())
    }

    /// Encodes `event` for `topic` and waits for the broker's acknowledgement.
    pub(crate) async fn produce<T: Serialize>(
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

/// Records queued on the producer, in order, whose acknowledgements a step awaits together:
/// one linger for all of a request's records instead of one after another.
#[derive(Default)]
pub struct Acks(
    Vec<
        futures::future::BoxFuture<
            'static,
            Result<sixfold_runtime::producer::Delivered, ProduceFailure>,
        >,
    >,
);

impl Acks {
    /// Waits for every queued record; the first failure, if any.
    pub async fn wait(self) -> Result<(), ProduceFailure> {
        for result in futures::future::join_all(self.0).await {
            result?;
        }
        Ok(())
    }
}
