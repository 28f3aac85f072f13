//! The `notify` processor: a `notify.requested` event becomes one rendered record per channel,
//! after dedup, preferences, quiet hours and the frequency cap; and the scheduler that releases
//! held sends when they are due.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sixfold_ratelimit::{Algorithm, Limit};
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::{Classify, Processor, Record};

use crate::events::{
    DeliveryStatus, NotifyEmail, NotifyPush, NotifyRequested, NotifySms, NotifyStatus, new_event_id,
};
use crate::preferences::{ChannelKind, Preferences, quiet_until};
use crate::service::{Acks, Notify, ProduceFailure};
use crate::storage::{NotificationRecord, StorageError};
use crate::template::{Channel, Rendered, TemplateError};

/// Longest notification id, in bytes.
pub const MAX_NOTIFICATION_ID: usize = 128;

/// The `error_code` of the `FAILED` status the processor reports for a channel the user has no
/// address for (a decision, unlike the workers' failures).
pub const NO_ADDRESS: &str = "no_address";

/// How often the scheduler purges ids past the dedup window.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(600);

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The value is not a valid request (bad ids, unknown template, a missing variable).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The record came from a topic this processor does not read.
    #[error("unexpected topic {0}")]
    UnknownTopic(String),
    /// The store failed, or holds a value that does not parse.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The rate limiter could not decide (Redis down and failing closed).
    #[error("rate limiter: {0}")]
    RateLimit(String),
    /// An event could not be produced.
    #[error("produce: {0}")]
    Produce(#[from] ProduceFailure),
}

impl From<TemplateError> for NotifyError {
    fn from(error: TemplateError) -> Self {
        NotifyError::Invalid(error.to_string())
    }
}

impl Classify for NotifyError {
    fn is_transient(&self) -> bool {
        match self {
            NotifyError::Invalid(_) | NotifyError::UnknownTopic(_) => false,
            NotifyError::Storage(e) => e.is_transient(),
            NotifyError::RateLimit(_) => true,
            NotifyError::Produce(e) => !e.permanent,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            NotifyError::Invalid(_) => "invalid_event",
            NotifyError::UnknownTopic(_) => "unknown_topic",
            NotifyError::Storage(StorageError::Corrupt(_)) => "corrupt_state",
            NotifyError::Storage(e) if e.is_transient() => "store_unavailable",
            NotifyError::Storage(_) => "store_rejected",
            NotifyError::RateLimit(_) => "ratelimit_unavailable",
            NotifyError::Produce(e) if e.permanent => "produce_rejected",
            NotifyError::Produce(_) => "broker_unavailable",
        }
    }
}

/// The processor.
pub struct NotifyProcessor {
    notify: Arc<Notify>,
}

impl NotifyProcessor {
    /// The processor over the service's shared state.
    pub fn new(notify: Arc<Notify>) -> Self {
        Self { notify }
    }
}

#[async_trait]
impl Processor for NotifyProcessor {
    type Error = NotifyError;

    async fn process(&self, record: &Record) -> Result<(), NotifyError> {
        if record.topic != self.notify.settings.requested_topic {
            return Err(NotifyError::UnknownTopic(record.topic.clone()));
        }
        let request: NotifyRequested = record
            .decode()
            .map_err(|e| NotifyError::Invalid(e.to_string()))?;
        self.notify.handle(&request, now_ms()).await
    }
}

/// Checks the ids of a request.
pub fn check_request(request: &NotifyRequested) -> Result<(), NotifyError> {
    let id = &request.notification_id;
    if id.is_empty() || id.len() > MAX_NOTIFICATION_ID || !id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(NotifyError::Invalid(format!(
            "notification_id must be 1-{MAX_NOTIFICATION_ID} printable ASCII characters"
        )));
    }
    let user = &request.user_id;
    if user.is_empty()
        || user.len() > 64
        || !user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(NotifyError::Invalid(
            "user_id must be 1-64 characters of A-Z, a-z, 0-9, '_' and '-'".into(),
        ));
    }
    Ok(())
}

/// The channel kind of preferences for a template channel.
fn kind(channel: Channel) -> ChannelKind {
    match channel {
        Channel::Push => ChannelKind::Push,
        Channel::Email => ChannelKind::Email,
        Channel::Sms => ChannelKind::Sms,
    }
}

impl Notify {
    /// Applies one request at `now`: dedup, `send_at`, preferences, quiet hours, the frequency
    /// cap, rendering, and one record per remaining channel; a status event for every outcome.
    pub async fn handle(&self, request: &NotifyRequested, now: i64) -> Result<(), NotifyError> {
        check_request(request)?;
        let (user, id) = (&request.user_id, &request.notification_id);
        let window = self.settings.dedup_window.as_millis() as i64;
        let record = self.store.record(user, id).await?;
        match record {
            Some(NotificationRecord::Done { first_seen_ms }) if now - first_seen_ms < window => {
                return self
                    .status_all(request, DeliveryStatus::Duplicate, now)
                    .await;
            }
            Some(NotificationRecord::Deferred { until, .. }) if now < until => {
                // A repeat of a held notification: it is already scheduled.
                return self
                    .status_all(request, DeliveryStatus::Duplicate, now)
                    .await;
            }
            _ => {}
        }
        let first_seen = match record {
            Some(record) if now - record.first_seen_ms() < window => record.first_seen_ms(),
            _ => now,
        };
        if let Some(send_at) = request.send_at
            && send_at > now
        {
            return self.defer(request, first_seen, send_at, now).await;
        }
        let prefs = self.store.preferences(user).await?;
        if let Some(until) =
            quiet_until(&prefs, now).map_err(|e| NotifyError::Invalid(e.to_string()))?
        {
            return self.defer(request, first_seen, until, now).await;
        }

        // Render every channel first: a template error refuses the whole request.
        let asked: Vec<Channel> = if request.channels.is_empty() {
            vec![Channel::Push, Channel::Email, Channel::Sms]
        } else {
            let mut asked: Vec<Channel> = request
                .channels
                .iter()
                .filter_map(|c| c.channel())
                .collect();
            asked.sort();
            asked.dedup();
            asked
        };
        let data =
            serde_json::to_value(&request.data).map_err(|e| NotifyError::Invalid(e.to_string()))?;
        let mut rendered = Vec::new();
        for channel in asked {
            match self.templates.render(
                &request.template_id,
                channel,
                request.locale.as_deref(),
                &data,
            ) {
                Ok(message) => rendered.push((channel, message.content)),
                // Every channel the template has, when none were named.
                Err(TemplateError::NotFound { .. }) if request.channels.is_empty() => {}
                Err(error) => return Err(error.into()),
            }
        }
        if rendered.is_empty() {
            return Err(NotifyError::Invalid(format!(
                "template {:?} has no channel to send",
                request.template_id
            )));
        }
        let mut acks = Acks::default();
        for (channel, content) in rendered {
            let status = self
                .deliver(&mut acks, request, &prefs, channel, content, now)
                .await?;
            self.status(&mut acks, request, Some(channel), status, now, None)
                .await?;
        }
        // Every record acknowledged before the id counts as done: a crash before this
        // redelivers the request, and the workers' markers absorb the repeat.
        acks.wait().await?;
        self.store
            .put_record(
                user,
                id,
                NotificationRecord::Done {
                    first_seen_ms: first_seen,
                },
            )
            .await?;
        Ok(())
    }

    /// Hands one rendered channel to its topic, unless preferences or the cap stop it.
    async fn deliver(
        &self,
        acks: &mut Acks,
        request: &NotifyRequested,
        prefs: &Preferences,
        channel: Channel,
        content: Rendered,
        now: i64,
    ) -> Result<DeliveryStatus, NotifyError> {
        if !prefs.enabled(kind(channel)) {
            return Ok(DeliveryStatus::DroppedByPreference);
        }
        if prefs.hourly_limit > 0 {
            let key = format!(
                "{}:cap:{}:{}",
                self.settings.state_namespace(),
                request.user_id,
                channel.as_str()
            );
            let limit = Limit::new(
                Algorithm::SlidingWindowCounter,
                u64::from(prefs.hourly_limit),
                Duration::from_secs(3600),
            );
            let decision = self
                .limiter
                .check_key(&key, &limit)
                .await
                .map_err(|e| NotifyError::RateLimit(e.to_string()))?;
            if !decision.allowed {
                return Ok(DeliveryStatus::RateLimited);
            }
        }
        let s = &self.settings;
        let (user, key) = (&request.user_id, request.user_id.as_str());
        let base = |template_id: &str| (new_event_id(), now, template_id.to_owned());
        match content {
            Rendered::Push { title, body } => {
                let (event_id, occurred_at, template_id) = base(&request.template_id);
                let event = NotifyPush {
                    event_id,
                    occurred_at,
                    notification_id: request.notification_id.clone(),
                    user_id: user.clone(),
                    template_id,
                    title,
                    body,
                    data: request.data.clone(),
                    priority: request.priority,
                    collapse_id: None,
                    expires_at: None,
                };
                self.queue(acks, &s.push_topic, &self.schemas.push, key, &event)
                    .await?;
            }
            Rendered::Email {
                subject,
                text,
                html,
            } => {
                let Some(to) = self.store.contact(user).await?.email else {
                    return Ok(DeliveryStatus::Failed);
                };
                let (event_id, occurred_at, template_id) = base(&request.template_id);
                let event = NotifyEmail {
                    event_id,
                    occurred_at,
                    notification_id: request.notification_id.clone(),
                    user_id: user.clone(),
                    template_id,
                    to,
                    subject,
                    text_body: text,
                    html_body: html,
                };
                self.queue(acks, &s.email_topic, &self.schemas.email, key, &event)
                    .await?;
            }
            Rendered::Sms { body } => {
                let Some(to) = self.store.contact(user).await?.phone else {
                    return Ok(DeliveryStatus::Failed);
                };
                let (event_id, occurred_at, template_id) = base(&request.template_id);
                let event = NotifySms {
                    event_id,
                    occurred_at,
                    notification_id: request.notification_id.clone(),
                    user_id: user.clone(),
                    template_id,
                    to,
                    body,
                };
                self.queue(acks, &s.sms_topic, &self.schemas.sms, key, &event)
                    .await?;
            }
        }
        Ok(DeliveryStatus::Queued)
    }

    /// Holds the request until `until` (durably, in the store) and says so.
    async fn defer(
        &self,
        request: &NotifyRequested,
        first_seen: i64,
        until: i64,
        now: i64,
    ) -> Result<(), NotifyError> {
        self.store.hold(request, until).await?;
        self.store
            .put_record(
                &request.user_id,
                &request.notification_id,
                NotificationRecord::Deferred {
                    first_seen_ms: first_seen,
                    until,
                },
            )
            .await?;
        let mut acks = Acks::default();
        self.status(
            &mut acks,
            request,
            None,
            DeliveryStatus::Deferred,
            now,
            Some(until),
        )
        .await?;
        Ok(acks.wait().await?)
    }

    async fn status_all(
        &self,
        request: &NotifyRequested,
        status: DeliveryStatus,
        now: i64,
    ) -> Result<(), NotifyError> {
        let mut acks = Acks::default();
        self.status(&mut acks, request, None, status, now, None)
            .await?;
        Ok(acks.wait().await?)
    }

    /// Queues a `notify.status` event and counts it.
    async fn status(
        &self,
        acks: &mut Acks,
        request: &NotifyRequested,
        channel: Option<Channel>,
        status: DeliveryStatus,
        now: i64,
        deferred_until: Option<i64>,
    ) -> Result<(), NotifyError> {
        let mut event = NotifyStatus::new(
            &request.notification_id,
            &request.user_id,
            channel,
            status,
            now,
        );
        event.deferred_until = deferred_until;
        if status == DeliveryStatus::Deferred {
            event.held_request = Some(
                serde_json::to_string(request).map_err(|e| NotifyError::Invalid(e.to_string()))?,
            );
        }
        if status == DeliveryStatus::Failed {
            event.error_code = Some(NO_ADDRESS.into());
            event.error = Some("the user has no address for this channel".into());
        }
        self.report(acks, &event).await?;
        Ok(())
    }

    /// Queues a `notify.status` event and counts it by channel and status.
    pub(crate) async fn report(
        &self,
        acks: &mut Acks,
        event: &NotifyStatus,
    ) -> Result<(), ProduceFailure> {
        self.queue(
            acks,
            &self.settings.status_topic,
            &self.schemas.status,
            &event.notification_id,
            event,
        )
        .await?;
        let label = serde_json::to_value(event.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let channel = event
            .channel
            .and_then(|c| c.channel())
            .map_or("-", Channel::as_str);
        self.outcomes.with_label_values(&[channel, &label]).inc();
        Ok(())
    }

    /// Releases held sends when they are due, until shutdown: each goes back to
    /// `notify.requested` (the processor then finds its record due and sends it), and is
    /// removed once produced. Several instances may release the same entry; the record makes
    /// the second a duplicate.
    /// Beside it, every [`PURGE_INTERVAL`], a task of its own purges ids older than the dedup
    /// window ([`crate::storage::NotifyStore::purge`]), so a long purge never delays a release.
    pub async fn run_scheduler(self: Arc<Self>) {
        let purge = tokio::spawn(self.clone().run_purge());
        let mut tick = tokio::time::interval(self.settings.scheduler_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(error) = self.release_due(now_ms()).await {
                        tracing::warn!(%error, "held notifications not released; retrying");
                    }
                }
            }
        }
        purge.abort();
    }

    async fn run_purge(self: Arc<Self>) {
        let mut tick = tokio::time::interval(PURGE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let window = self.settings.dedup_window.as_millis() as i64;
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tick.tick() => match self.store.purge(now_ms(), window).await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "purged notification ids past the dedup window"),
                    Err(error) => tracing::warn!(%error, "notification ids not purged; retrying"),
                },
            }
        }
    }

    /// Releases every held send due at `now`; returns how many.
    pub async fn release_due(&self, now: i64) -> Result<usize, NotifyError> {
        let due = self.store.due(now, 100).await?;
        for held in &due {
            let mut request = held.request.clone();
            request.event_id = new_event_id();
            request.send_at = None;
            self.produce(
                &self.settings.requested_topic,
                &self.schemas.requested,
                &request.user_id,
                &request,
            )
            .await?;
            self.store.release(held).await?;
        }
        Ok(due.len())
    }
}

/// Converts the API's data object to the event's string map: strings as they are, numbers and
/// booleans as their JSON text; nested values are refused.
pub fn data_to_strings(
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, String>, String> {
    data.iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(format!("data.{key} must be a string, number or boolean")),
            };
            Ok((key.clone(), text))
        })
        .collect()
}
