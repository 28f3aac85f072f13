//! The channel workers: the `notify-push`, `notify-email` and `notify-sms` processors, one
//! consumer group each so each scales on its own. A worker sends a rendered record through its
//! provider client and reports the outcome on `notify.status`.
//!
//! Idempotency: a send that the provider accepted leaves a marker (`<p>.sent:<notification>`,
//! key `<channel>:<device>`), and a redelivered record skips what is marked, so a retry after a
//! partial failure, or a restart, sends each device or address once. A crash between the
//! provider's answer and the marker sends that one message again (at least once); APNs and
//! email carry ids derived from the notification (`apns-id`, `Message-ID`) that let the
//! receiving side recognise the repeat.
//!
//! Outcomes: sent → marker and `SENT`; a dead device token (APNs 410/`BadDeviceToken`, FCM
//! `UNREGISTERED`) → the device is removed and `FAILED`/`unregistered`; 429, 5xx and timeouts →
//! `RETRYING` and the record goes through the retry topics (exponential delays); any other
//! refusal → `FAILED` and the record goes to the DLQ.

use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::{Classify, Processor, Record};

use crate::channels::{
    ApnsClient, EmailClient, EmailMessage, FcmClient, PushMessage, PushPriority, SmsClient,
    SmsMessage,
};
use crate::events::{DeliveryStatus, NotifyEmail, NotifyPush, NotifySms, NotifyStatus, Priority};
use crate::preferences::Platform;
use crate::provider::Outcome;
use crate::service::{Acks, Notify, ProduceFailure};
use crate::storage::StorageError;
use crate::template::Channel;

/// Why a record was not (fully) sent.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The value is not a valid record of the topic.
    #[error("invalid record: {0}")]
    Invalid(String),
    /// A provider failed in a way that may pass (429, 5xx, timeout).
    #[error("provider unavailable: {0}")]
    Retry(String),
    /// A provider refused the message for good.
    #[error("provider refused: {0}")]
    Refused(String),
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A status event could not be produced.
    #[error("produce: {0}")]
    Produce(#[from] ProduceFailure),
}

impl Classify for WorkerError {
    fn is_transient(&self) -> bool {
        match self {
            WorkerError::Invalid(_) | WorkerError::Refused(_) => false,
            WorkerError::Retry(_) => true,
            WorkerError::Storage(e) => e.is_transient(),
            WorkerError::Produce(e) => !e.permanent,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            WorkerError::Invalid(_) => "invalid_event",
            WorkerError::Retry(_) => "provider_unavailable",
            WorkerError::Refused(_) => "provider_refused",
            WorkerError::Storage(e) if e.is_transient() => "store_unavailable",
            WorkerError::Storage(_) => "store_rejected",
            WorkerError::Produce(_) => "broker_unavailable",
        }
    }
}

/// The provider clients a worker process has (a channel without its client refuses records).
#[derive(Default)]
pub struct Clients {
    /// APNs, for iOS devices.
    pub apns: Option<ApnsClient>,
    /// FCM, for Android and web devices.
    pub fcm: Option<FcmClient>,
    /// SMTP.
    pub email: Option<EmailClient>,
    /// Twilio.
    pub sms: Option<SmsClient>,
}

impl Clients {
    /// The clients of the channels `settings` configures. A client that cannot be built (a
    /// missing key file, a bad setting) is left out with a warning: its records then fail
    /// (`FAILED`, DLQ) instead of the whole process refusing to start.
    pub async fn from_settings(settings: &crate::NotifySettings) -> Self {
        fn keep<T>(channel: &str, built: Result<T, crate::channels::ChannelError>) -> Option<T> {
            built
                .map_err(|error| tracing::warn!(%error, channel, "channel client not built"))
                .ok()
        }
        let fcm = match &settings.fcm {
            Some(fcm) => keep("fcm", FcmClient::new(fcm).await),
            None => None,
        };
        Self {
            apns: settings
                .apns
                .as_ref()
                .and_then(|s| keep("apns", ApnsClient::new(s))),
            fcm,
            email: settings
                .email
                .as_ref()
                .and_then(|s| keep("email", EmailClient::new(s))),
            sms: settings
                .sms
                .as_ref()
                .and_then(|s| keep("sms", SmsClient::new(s))),
        }
    }
}

/// One channel's worker.
pub struct ChannelWorker {
    notify: Arc<Notify>,
    clients: Arc<Clients>,
    channel: Channel,
}

impl ChannelWorker {
    /// The worker for `channel`.
    pub fn new(notify: Arc<Notify>, clients: Arc<Clients>, channel: Channel) -> Self {
        Self {
            notify,
            clients,
            channel,
        }
    }

    /// The worker's processor name (`notify-push`, …), its consumer group.
    pub fn name(channel: Channel) -> String {
        format!("notify-{}", channel.as_str())
    }

    /// The topic the worker consumes.
    pub fn input_topic(&self) -> String {
        let s = &self.notify.settings;
        match self.channel {
            Channel::Push => s.push_topic.clone(),
            Channel::Email => s.email_topic.clone(),
            Channel::Sms => s.sms_topic.clone(),
        }
    }
}

/// Who a send went to, for markers and status events.
struct Target<'a> {
    notification_id: &'a str,
    user_id: &'a str,
    device_id: Option<&'a str>,
    provider: &'static str,
    attempt: u32,
}

impl<'a> Target<'a> {
    /// A send to the one address of an email or SMS (no device).
    fn address(
        notification_id: &'a str,
        user_id: &'a str,
        provider: &'static str,
        attempt: u32,
    ) -> Self {
        Self {
            notification_id,
            user_id,
            device_id: None,
            provider,
            attempt,
        }
    }
}

#[async_trait]
impl Processor for ChannelWorker {
    type Error = WorkerError;

    async fn process(&self, record: &Record) -> Result<(), WorkerError> {
        let invalid = |e: apache_avro::Error| WorkerError::Invalid(e.to_string());
        // Status events are queued as outcomes come and acknowledged together at the end.
        let mut acks = Acks::default();
        let attempt = record.attempt;
        let result = match self.channel {
            Channel::Push => {
                let event = record.decode().map_err(invalid)?;
                self.push(&mut acks, &event, attempt).await
            }
            Channel::Email => {
                let event = record.decode().map_err(invalid)?;
                self.email(&mut acks, &event, attempt).await
            }
            Channel::Sms => {
                let event = record.decode().map_err(invalid)?;
                self.sms(&mut acks, &event, attempt).await
            }
        };
        acks.wait().await?;
        result
    }
}

impl ChannelWorker {
    async fn push(
        &self,
        acks: &mut Acks,
        event: &NotifyPush,
        attempt: u32,
    ) -> Result<(), WorkerError> {
        let message = PushMessage {
            notification_id: event.notification_id.clone(),
            title: event.title.clone(),
            body: event.body.clone(),
            data: event.data.clone(),
            priority: match event.priority {
                Priority::High => PushPriority::High,
                Priority::Low | Priority::Normal => PushPriority::Normal,
            },
            collapse_id: event.collapse_id.clone(),
            expires_at_ms: event.expires_at,
        };
        let devices = self.notify.store.devices(&event.user_id).await?;
        if devices.is_empty() {
            let mut status = self.status(
                &event.notification_id,
                &event.user_id,
                DeliveryStatus::Failed,
            );
            status.error_code = Some("no_devices".into());
            status.error = Some("the user has no registered devices".into());
            self.notify.report(acks, &status).await?;
            return Ok(());
        }
        let mut first_error: Option<WorkerError> = None;
        for device in devices {
            let target = Target {
                notification_id: &event.notification_id,
                user_id: &event.user_id,
                device_id: Some(&device.device_id),
                provider: if device.platform == Platform::Ios {
                    "apns"
                } else {
                    "fcm"
                },
                attempt,
            };
            if self
                .notify
                .store
                .is_sent(target.notification_id, "push", &device.device_id)
                .await?
            {
                continue;
            }
            let outcome = match (device.platform, &self.clients.apns, &self.clients.fcm) {
                (Platform::Ios, Some(apns), _) => apns.send(&device.push_token, &message).await,
                (Platform::Android | Platform::Web, _, Some(fcm)) => {
                    fcm.send(&device.push_token, &message).await
                }
                _ => Outcome::Permanent {
                    reason: format!("no {} client configured", target.provider),
                },
            };
            if outcome_is_prune(&outcome) {
                self.notify
                    .store
                    .delete_device(&event.user_id, &device.device_id)
                    .await?;
            }
            if let Err(error) = self.settle(acks, &target, outcome).await {
                // Retries win over refusals: the retry re-sends only what is not marked.
                let retry = matches!(error, WorkerError::Retry(_));
                if first_error.is_none() || retry {
                    first_error = Some(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn email(
        &self,
        acks: &mut Acks,
        event: &NotifyEmail,
        attempt: u32,
    ) -> Result<(), WorkerError> {
        let message = EmailMessage {
            notification_id: event.notification_id.clone(),
            to: event.to.clone(),
            subject: event.subject.clone(),
            text_body: event.text_body.clone(),
            html_body: event.html_body.clone(),
        };
        let send = async {
            match &self.clients.email {
                Some(client) => client.send(&message).await,
                None => Outcome::Permanent {
                    reason: "no SMTP client configured".into(),
                },
            }
        };
        let target = Target::address(&event.notification_id, &event.user_id, "smtp", attempt);
        self.send_once(acks, &target, send).await
    }

    async fn sms(
        &self,
        acks: &mut Acks,
        event: &NotifySms,
        attempt: u32,
    ) -> Result<(), WorkerError> {
        let message = SmsMessage {
            notification_id: event.notification_id.clone(),
            to: event.to.clone(),
            body: event.body.clone(),
        };
        let send = async {
            match &self.clients.sms {
                Some(client) => client.send(&message).await,
                None => Outcome::Permanent {
                    reason: "no Twilio client configured".into(),
                },
            }
        };
        let target = Target::address(&event.notification_id, &event.user_id, "twilio", attempt);
        self.send_once(acks, &target, send).await
    }

    /// Sends to the one address of an email or SMS record unless a provider accepted it
    /// already, and settles the outcome.
    async fn send_once(
        &self,
        acks: &mut Acks,
        target: &Target<'_>,
        send: impl std::future::Future<Output = Outcome>,
    ) -> Result<(), WorkerError> {
        let channel = self.channel.as_str();
        if self
            .notify
            .store
            .is_sent(target.notification_id, channel, "-")
            .await?
        {
            return Ok(());
        }
        let outcome = send.await;
        self.settle(acks, target, outcome).await
    }

    /// Records an outcome: marker and status; an error for what must be retried or
    /// dead-lettered.
    async fn settle(
        &self,
        acks: &mut Acks,
        target: &Target<'_>,
        outcome: Outcome,
    ) -> Result<(), WorkerError> {
        let channel = self.channel.as_str();
        let mut status = self.status(target.notification_id, target.user_id, DeliveryStatus::Sent);
        status.attempt = i32::try_from(target.attempt).unwrap_or(i32::MAX);
        status.device_id = target.device_id.map(str::to_owned);
        status.provider = Some(target.provider.to_owned());
        let result = match outcome {
            Outcome::Sent {
                provider_message_id,
            } => {
                self.notify
                    .store
                    .mark_sent(
                        target.notification_id,
                        channel,
                        target.device_id.unwrap_or("-"),
                    )
                    .await?;
                self.notify
                    .delivered
                    .with_label_values(&[&Self::name(self.channel), target.provider])
                    .inc();
                status.provider_message_id = provider_message_id;
                Ok(())
            }
            Outcome::PruneToken { reason } => {
                status.status = DeliveryStatus::Failed;
                status.error_code = Some("unregistered".into());
                status.error = Some(reason);
                Ok(())
            }
            Outcome::Retry { reason, .. } => {
                status.status = DeliveryStatus::Retrying;
                status.error_code = Some("provider_unavailable".into());
                status.error = Some(reason.clone());
                Err(WorkerError::Retry(reason))
            }
            Outcome::Permanent { reason } => {
                status.status = DeliveryStatus::Failed;
                status.error_code = Some("provider_refused".into());
                status.error = Some(reason.clone());
                Err(WorkerError::Refused(reason))
            }
        };
        self.notify.report(acks, &status).await?;
        result
    }

    fn status(&self, notification_id: &str, user_id: &str, status: DeliveryStatus) -> NotifyStatus {
        NotifyStatus::new(
            notification_id,
            user_id,
            Some(self.channel),
            status,
            now_ms(),
        )
    }
}

fn outcome_is_prune(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::PruneToken { .. })
}
