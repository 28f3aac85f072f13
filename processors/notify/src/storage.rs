//! The notification service's tables in the store.
//!
//! | namespace | key → value | partition (ScyllaDB) |
//! |---|---|---|
//! | `<p>.user:<user>` | `prefs` → [`Preferences`], `contact` → [`Contact`] | one user (the seed's `notification_preferences`) |
//! | `<p>.devices:<user>` | device id → [`Device`] | one user's devices (the seed's `user_devices`) |
//! | `<p>.ids:<user>` | notification id → [`NotificationRecord`] | what was done with each notification, for 24 h dedup |
//! | `<p>.sent:<notification>` | `<channel>:<device or ->` → empty | sends a provider accepted (worker idempotency) |
//! | `<p>.scheduled/<shard>` | `<due ms, 13 digits>:<notification id>` → the request | held sends, due first, 16 shards |
//!
//! Preferences, devices and contacts are the service's own data, written through its API
//! (not derived from a topic), so a replay does not rebuild them: back them up like any
//! primary table.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sixfold_store::json;
use sixfold_store::{KvStore, MAX_LIST_LIMIT, Store};

use crate::events::NotifyRequested;
use crate::preferences::{Contact, Device, Preferences};

/// Shards of the held-sends table.
pub const SCHEDULE_SHARDS: u64 = 16;

/// Why a store read or write failed.
pub use sixfold_store::json::ViewError as StorageError;

/// What was done with a notification id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NotificationRecord {
    /// Held until `until` (ms); a request arriving after that releases it.
    Deferred {
        /// First seen, ms since the epoch.
        first_seen_ms: i64,
        /// When it is due.
        until: i64,
    },
    /// Handed to its channels (or dropped by preference or cap).
    Done {
        /// First seen, ms since the epoch.
        first_seen_ms: i64,
    },
}

impl NotificationRecord {
    /// When the id was first seen.
    pub fn first_seen_ms(self) -> i64 {
        match self {
            Self::Deferred { first_seen_ms, .. } | Self::Done { first_seen_ms } => first_seen_ms,
        }
    }
}

/// A held send, as listed by [`NotifyStore::due`].
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// Shard it is in.
    pub shard: u64,
    /// Its key.
    pub key: String,
    /// The request to release.
    pub request: NotifyRequested,
}

/// The notification service's tables.
#[derive(Clone)]
pub struct NotifyStore {
    store: Arc<dyn Store>,
    prefix: String,
}

impl NotifyStore {
    /// Tables under the namespace prefix `prefix`.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_owned(),
        }
    }

    fn kv(&self) -> &dyn KvStore {
        self.store.kv()
    }

    fn ns(&self, table: &str, id: &str) -> String {
        format!("{}.{table}:{id}", self.prefix)
    }

    fn shard_ns(&self, shard: u64) -> String {
        format!("{}.scheduled/{shard:02}", self.prefix)
    }

    /// The user's preferences (the seed's defaults when never set).
    pub async fn preferences(&self, user: &str) -> Result<Preferences, StorageError> {
        Ok(json::get(self.kv(), &self.ns("user", user), "prefs")
            .await?
            .unwrap_or_default())
    }

    /// Replaces the user's preferences.
    pub async fn put_preferences(
        &self,
        user: &str,
        prefs: &Preferences,
    ) -> Result<(), StorageError> {
        json::put(self.kv(), &self.ns("user", user), "prefs", prefs).await
    }

    /// The user's email address and phone number.
    pub async fn contact(&self, user: &str) -> Result<Contact, StorageError> {
        Ok(json::get(self.kv(), &self.ns("user", user), "contact")
            .await?
            .unwrap_or_default())
    }

    /// Replaces the user's email address and phone number.
    pub async fn put_contact(&self, user: &str, contact: &Contact) -> Result<(), StorageError> {
        json::put(self.kv(), &self.ns("user", user), "contact", contact).await
    }

    /// The user's devices, by device id.
    pub async fn devices(&self, user: &str) -> Result<Vec<Device>, StorageError> {
        let ns = self.ns("devices", user);
        let rows = self.kv().list(&ns, None, MAX_LIST_LIMIT).await?;
        rows.iter().map(|(_, v)| json::decode(&ns, v)).collect()
    }

    /// Adds or replaces a device.
    pub async fn put_device(&self, user: &str, device: &Device) -> Result<(), StorageError> {
        json::put(
            self.kv(),
            &self.ns("devices", user),
            &device.device_id,
            device,
        )
        .await
    }

    /// Removes a device (a user's request, or a provider saying its token is dead).
    pub async fn delete_device(&self, user: &str, device_id: &str) -> Result<(), StorageError> {
        self.kv()
            .delete(&self.ns("devices", user), device_id)
            .await?;
        Ok(())
    }

    /// What was done with `notification_id` of `user`.
    pub async fn record(
        &self,
        user: &str,
        notification_id: &str,
    ) -> Result<Option<NotificationRecord>, StorageError> {
        json::get(self.kv(), &self.ns("ids", user), notification_id).await
    }

    /// Records what was done with a notification id.
    pub async fn put_record(
        &self,
        user: &str,
        notification_id: &str,
        record: NotificationRecord,
    ) -> Result<(), StorageError> {
        json::put(self.kv(), &self.ns("ids", user), notification_id, &record).await
    }

    /// Whether a send of `notification_id` on `channel` to `target` (a device id, or `-`) was
    /// accepted by its provider already.
    pub async fn is_sent(
        &self,
        notification_id: &str,
        channel: &str,
        target: &str,
    ) -> Result<bool, StorageError> {
        let key = format!("{channel}:{target}");
        Ok(self
            .kv()
            .get(&self.ns("sent", notification_id), &key)
            .await?
            .is_some())
    }

    /// Marks a send as accepted by its provider.
    pub async fn mark_sent(
        &self,
        notification_id: &str,
        channel: &str,
        target: &str,
    ) -> Result<(), StorageError> {
        let key = format!("{channel}:{target}");
        self.kv()
            .put(&self.ns("sent", notification_id), &key, Vec::new())
            .await?;
        Ok(())
    }

    /// Holds `request` until `due_ms` (idempotent: the same request and time make one entry).
    pub async fn hold(&self, request: &NotifyRequested, due_ms: i64) -> Result<(), StorageError> {
        let shard = shard_of(&request.notification_id);
        let key = format!("{:013}:{}", due_ms.max(0), request.notification_id);
        json::put(self.kv(), &self.shard_ns(shard), &key, request).await
    }

    /// Held sends due at or before `now_ms`, up to `limit` per shard.
    pub async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<Held>, StorageError> {
        let mut held = Vec::new();
        for shard in 0..SCHEDULE_SHARDS {
            let ns = self.shard_ns(shard);
            let rows = self.kv().list(&ns, None, limit.min(MAX_LIST_LIMIT)).await?;
            for (key, value) in rows {
                let due: i64 = key
                    .split_once(':')
                    .and_then(|(due, _)| due.parse().ok())
                    .ok_or_else(|| StorageError::Corrupt(format!("{ns}: key {key}")))?;
                if due > now_ms {
                    break;
                }
                held.push(Held {
                    shard,
                    request: json::decode(&ns, &value)?,
                    key,
                });
            }
        }
        Ok(held)
    }

    /// Removes a released held send.
    pub async fn release(&self, held: &Held) -> Result<(), StorageError> {
        self.kv()
            .delete(&self.shard_ns(held.shard), &held.key)
            .await?;
        Ok(())
    }
}

/// The held-sends shard of a notification id (FNV-1a, stable across builds).
fn shard_of(notification_id: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in notification_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % SCHEDULE_SHARDS
}
