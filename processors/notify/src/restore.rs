//! Replay for notifications: the views are rebuilt from `notify.status`, the service's decision
//! log, not by deciding again.
//!
//! Handling a request again would not give the same answer: the dedup window, `send_at`,
//! quiet hours and the hourly cap depend on when it runs, and preferences may have changed. And
//! the workers' input only says what to send, not whether a provider accepted it. Every
//! decision and every accepted send is a `notify.status` event, so a replay folds those:
//!
//! | status | view written |
//! |---|---|
//! | `DEFERRED` | the id's record becomes *deferred until* `deferred_until`, and the request (`held_request`) is held until then |
//! | `QUEUED`, `DROPPED_BY_PREFERENCE`, `RATE_LIMITED`, `FAILED`/`no_address` (the processor's per-channel decisions) | the id's record becomes *done*, and a send held for it is released |
//! | `SENT` | the send's marker (`<channel>:<device or ->`) |
//! | `DUPLICATE`, `RETRYING`, a worker's `FAILED` | nothing |
//!
//! The first sighting kept in a record follows the processor's rule: the previous record's,
//! when that is within the dedup window of the status, else the status's time. Statuses are
//! keyed by notification id, so one id's statuses are read in the order they were written.
//! Preferences, devices and contacts are the service's own data (written through its API) and
//! are not touched.

use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::{Processor, Record};

use crate::events::{DeliveryStatus, NotifyRequested, NotifyStatus};
use crate::processor::{NO_ADDRESS, NotifyError, check_request};
use crate::service::Notify;
use crate::storage::NotificationRecord;
use crate::template::Channel;

/// What a status event changes in the views.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Held until `until`: the request, when the event carries it.
    Deferred {
        /// When it is due.
        until: i64,
        /// The held request.
        request: Option<NotifyRequested>,
    },
    /// Handed to a channel, or dropped there: the id is done.
    Decided,
    /// A provider accepted a send to `target` (a device id, or `-`).
    Sent {
        /// The channel.
        channel: Channel,
        /// The device, or `-`.
        target: String,
    },
    /// Nothing to rebuild.
    Nothing,
}

/// What `status` changes in the views; an error for a `DEFERRED` without its time or with a
/// held request that does not parse.
pub fn change_of(status: &NotifyStatus) -> Result<Change, NotifyError> {
    let channel = status.channel.and_then(|c| c.channel());
    Ok(match status.status {
        DeliveryStatus::Deferred => {
            let until = status.deferred_until.ok_or_else(|| {
                NotifyError::Invalid("a DEFERRED status without deferred_until".into())
            })?;
            let request = status
                .held_request
                .as_deref()
                .map(serde_json::from_str::<NotifyRequested>)
                .transpose()
                .map_err(|e| NotifyError::Invalid(format!("held_request: {e}")))?;
            Change::Deferred { until, request }
        }
        DeliveryStatus::Queued
        | DeliveryStatus::DroppedByPreference
        | DeliveryStatus::RateLimited
            if channel.is_some() =>
        {
            Change::Decided
        }
        DeliveryStatus::Failed
            if channel.is_some() && status.error_code.as_deref() == Some(NO_ADDRESS) =>
        {
            Change::Decided
        }
        DeliveryStatus::Sent => match channel {
            Some(channel) => Change::Sent {
                channel,
                target: status.device_id.clone().unwrap_or_else(|| "-".into()),
            },
            None => Change::Nothing,
        },
        _ => Change::Nothing,
    })
}

/// The processor of `sixfold replay` for the notification processors: it reads `notify.status`
/// and writes the views it describes. For `notify` every view; for a channel worker only that
/// channel's sent markers.
pub struct NotifyRestore {
    notify: Arc<Notify>,
    channel: Option<Channel>,
}

impl NotifyRestore {
    /// Rebuilds every view (`channel` `None`), or one channel's sent markers.
    pub fn new(notify: Arc<Notify>, channel: Option<Channel>) -> Self {
        Self { notify, channel }
    }
}

#[async_trait]
impl Processor for NotifyRestore {
    type Error = NotifyError;

    async fn process(&self, record: &Record) -> Result<(), NotifyError> {
        if record.topic != self.notify.settings.status_topic {
            return Err(NotifyError::UnknownTopic(record.topic.clone()));
        }
        let status: NotifyStatus = record
            .decode()
            .map_err(|e| NotifyError::Invalid(e.to_string()))?;
        let change = change_of(&status)?;
        match (self.channel, change) {
            (None, Change::Deferred { until, request }) => {
                self.notify.restore_deferred(&status, until, request).await
            }
            (None, Change::Decided) => self.notify.restore_decided(&status).await,
            (None, Change::Sent { channel, target }) => {
                self.notify.restore_sent(&status, channel, &target).await
            }
            (Some(mine), Change::Sent { channel, target }) if channel == mine => {
                self.notify.restore_sent(&status, channel, &target).await
            }
            _ => Ok(()),
        }
    }
}

impl Notify {
    /// The first sighting a record written at `at` keeps: `prior`'s within the dedup window,
    /// else `at` (the processor's rule).
    fn first_seen(&self, prior: Option<NotificationRecord>, at: i64) -> i64 {
        let window = self.settings.dedup_window.as_millis() as i64;
        match prior {
            Some(record) if at - record.first_seen_ms() < window => record.first_seen_ms(),
            _ => at,
        }
    }

    async fn restore_deferred(
        &self,
        status: &NotifyStatus,
        until: i64,
        request: Option<NotifyRequested>,
    ) -> Result<(), NotifyError> {
        let (user, id) = (&status.user_id, &status.notification_id);
        let prior = self.store.record(user, id).await?;
        if let Some(NotificationRecord::Deferred { until: before, .. }) = prior
            && before != until
        {
            // Released and deferred again (quiet hours at release time).
            self.store.unhold(id, before).await?;
        }
        match request {
            Some(request) => {
                check_request(&request)?;
                self.store.hold(&request, until).await?;
            }
            None => tracing::warn!(
                notification = %id,
                "DEFERRED status without held_request (written before it existed): the record is \
                 rebuilt, the held send is not"
            ),
        }
        let first_seen_ms = self.first_seen(prior, status.occurred_at);
        let record = NotificationRecord::Deferred {
            first_seen_ms,
            until,
        };
        self.store.put_record(user, id, record).await?;
        Ok(())
    }

    async fn restore_decided(&self, status: &NotifyStatus) -> Result<(), NotifyError> {
        let (user, id) = (&status.user_id, &status.notification_id);
        let prior = self.store.record(user, id).await?;
        if let Some(NotificationRecord::Deferred { until, .. }) = prior {
            // Released by the scheduler before it was handled.
            self.store.unhold(id, until).await?;
        }
        let record = NotificationRecord::Done {
            first_seen_ms: self.first_seen(prior, status.occurred_at),
        };
        if prior != Some(record) {
            self.store.put_record(user, id, record).await?;
        }
        Ok(())
    }

    async fn restore_sent(
        &self,
        status: &NotifyStatus,
        channel: Channel,
        target: &str,
    ) -> Result<(), NotifyError> {
        self.store
            .mark_sent(&status.notification_id, channel.as_str(), target)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::AvroChannel;

    fn status(status: DeliveryStatus, channel: Option<Channel>) -> NotifyStatus {
        NotifyStatus::new("n1", "u1", channel, status, 1_000)
    }

    #[test]
    fn decisions_sends_and_the_rest() {
        assert_eq!(
            change_of(&status(DeliveryStatus::Queued, Some(Channel::Email))).unwrap(),
            Change::Decided
        );
        assert_eq!(
            change_of(&status(DeliveryStatus::Duplicate, None)).unwrap(),
            Change::Nothing
        );
        let mut failed = status(DeliveryStatus::Failed, Some(Channel::Sms));
        assert_eq!(change_of(&failed).unwrap(), Change::Nothing, "a worker's");
        failed.error_code = Some(NO_ADDRESS.into());
        assert_eq!(change_of(&failed).unwrap(), Change::Decided);
        let mut sent = status(DeliveryStatus::Sent, Some(Channel::Push));
        sent.device_id = Some("phone".into());
        assert_eq!(
            change_of(&sent).unwrap(),
            Change::Sent {
                channel: Channel::Push,
                target: "phone".into()
            }
        );
        sent.channel = Some(AvroChannel::Unknown);
        assert_eq!(change_of(&sent).unwrap(), Change::Nothing);
    }

    #[test]
    fn a_deferral_carries_its_request() {
        let mut deferred = status(DeliveryStatus::Deferred, None);
        assert!(change_of(&deferred).is_err(), "no deferred_until");
        deferred.deferred_until = Some(5_000);
        assert_eq!(
            change_of(&deferred).unwrap(),
            Change::Deferred {
                until: 5_000,
                request: None
            }
        );
        deferred.held_request = Some("{not json".into());
        assert!(change_of(&deferred).is_err());
    }
}
