//! The notification service's tables in the store.
//!
//! | namespace | key → value | partition (ScyllaDB) |
//! |---|---|---|
//! | `<s>.user:<user>` | `prefs` → [`Preferences`], `contact` → [`Contact`] | one user (the seed's `notification_preferences`) |
//! | `<s>.devices:<user>` | device id → [`Device`] | one user's devices (the seed's `user_devices`) |
//! | `<p>.ids:<user>` | notification id → [`NotificationRecord`] | what was done with each notification, for 24 h dedup |
//! | `<p>.sent:<notification>` | `<channel>:<device or ->` → empty | sends a provider accepted (worker idempotency) |
//! | `<p>.scheduled/<shard>` | `<due ms, 13 digits>:<notification id>` → the request | held sends, due first, 16 shards |
//! | `<p>.seen/<hour>` | `<user>/<notification id>` → empty | ids first seen in that hour, for the purge |
//! | `<p>.purge` | `next_hour` → the first hour not purged yet | the purge's progress |
//!
//! The store has no TTL, so [`NotifyStore::purge`] removes records and sent markers of ids
//! first seen before the dedup window, one hour bucket of `<p>.seen/<hour>` at a time.
//!
//! Preferences, devices and contacts are the service's own data, written through its API
//! (not derived from a topic), so a replay does not rebuild them: back them up like any
//! primary table. They live under `<s>`, the state prefix ([`NotifyStore::with_state_prefix`]),
//! the same as the views' `<p>` unless a rebuild moved the views.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sixfold_store::json;
use sixfold_store::{KvStore, MAX_LIST_LIMIT, Store};

use crate::events::NotifyRequested;
use crate::preferences::{Contact, Device, Preferences};

/// Shards of the held-sends table.
pub const SCHEDULE_SHARDS: u64 = 16;

const HOUR_MS: i64 = 3_600_000;

/// How far back the first purge looks, in hours.
const PURGE_FIRST_HOURS: i64 = 7 * 24;

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
    /// Prefix of the service's own data (preferences, contacts, devices).
    state_prefix: String,
}

impl NotifyStore {
    /// Tables under the namespace prefix `prefix`.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_owned(),
            state_prefix: prefix.to_owned(),
        }
    }

    /// The same tables with preferences, contacts and devices under `prefix` (the service's own
    /// data stays where it is when a rebuild moves the views).
    pub fn with_state_prefix(mut self, prefix: &str) -> Self {
        self.state_prefix = prefix.to_owned();
        self
    }

    fn state_ns(&self, table: &str, id: &str) -> String {
        format!("{}.{table}:{id}", self.state_prefix)
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
        Ok(json::get(self.kv(), &self.state_ns("user", user), "prefs")
            .await?
            .unwrap_or_default())
    }

    /// Replaces the user's preferences.
    pub async fn put_preferences(
        &self,
        user: &str,
        prefs: &Preferences,
    ) -> Result<(), StorageError> {
        json::put(self.kv(), &self.state_ns("user", user), "prefs", prefs).await
    }

    /// The user's email address and phone number.
    pub async fn contact(&self, user: &str) -> Result<Contact, StorageError> {
        Ok(
            json::get(self.kv(), &self.state_ns("user", user), "contact")
                .await?
                .unwrap_or_default(),
        )
    }

    /// Replaces the user's email address and phone number.
    pub async fn put_contact(&self, user: &str, contact: &Contact) -> Result<(), StorageError> {
        json::put(self.kv(), &self.state_ns("user", user), "contact", contact).await
    }

    /// The user's devices, by device id.
    pub async fn devices(&self, user: &str) -> Result<Vec<Device>, StorageError> {
        let ns = self.state_ns("devices", user);
        let rows = self.kv().list(&ns, None, MAX_LIST_LIMIT).await?;
        rows.iter().map(|(_, v)| json::decode(&ns, v)).collect()
    }

    /// Adds or replaces a device.
    pub async fn put_device(&self, user: &str, device: &Device) -> Result<(), StorageError> {
        json::put(
            self.kv(),
            &self.state_ns("devices", user),
            &device.device_id,
            device,
        )
        .await
    }

    /// Removes a device (a user's request, or a provider saying its token is dead).
    pub async fn delete_device(&self, user: &str, device_id: &str) -> Result<(), StorageError> {
        self.kv()
            .delete(&self.state_ns("devices", user), device_id)
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

    /// Records what was done with a notification id, and lists the id in the hour bucket of
    /// its first sighting for [`NotifyStore::purge`].
    pub async fn put_record(
        &self,
        user: &str,
        notification_id: &str,
        record: NotificationRecord,
    ) -> Result<(), StorageError> {
        let hour = record.first_seen_ms().max(0) / HOUR_MS;
        self.kv()
            .put(
                &self.seen_ns(hour),
                &format!("{user}/{notification_id}"),
                Vec::new(),
            )
            .await?;
        json::put(self.kv(), &self.ns("ids", user), notification_id, &record).await
    }

    fn seen_ns(&self, hour: i64) -> String {
        format!("{}.seen/{hour}", self.prefix)
    }

    /// Removes the records and sent markers of ids first seen more than `window_ms` before
    /// `now_ms`, whole hours at a time from where the last purge stopped (a week back the first
    /// time); returns how many ids it removed. A record written again since (the id came back
    /// after its window), or a send still held past the window, is kept and listed in the hour
    /// it will be due in. A clock that jumped back does not stop purging: the next hour is at
    /// most the current end.
    pub async fn purge(&self, now_ms: i64, window_ms: i64) -> Result<usize, StorageError> {
        let progress = format!("{}.purge", self.prefix);
        // Hours strictly before `end` hold only ids seen before the window.
        let end = (now_ms - window_ms).max(0) / HOUR_MS;
        let mut hour = match self.kv().get(&progress, "next_hour").await? {
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.parse().ok())
                .ok_or_else(|| StorageError::Corrupt(format!("{progress}: next_hour")))?,
            None => end - PURGE_FIRST_HOURS,
        }
        .min(end);
        let mut removed = 0;
        while hour < end {
            removed += self.purge_hour(hour, window_ms, now_ms).await?;
            hour += 1;
            self.kv()
                .put(&progress, "next_hour", hour.to_string().into_bytes())
                .await?;
        }
        Ok(removed)
    }

    async fn purge_hour(
        &self,
        hour: i64,
        window_ms: i64,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let ns = self.seen_ns(hour);
        let mut removed = 0;
        loop {
            // Each page's entries are deleted before the next page is read.
            let page = self.kv().list(&ns, None, MAX_LIST_LIMIT).await?;
            for (entry, _) in &page {
                let (user, id) = entry
                    .split_once('/')
                    .ok_or_else(|| StorageError::Corrupt(format!("{ns}: key {entry}")))?;
                // Needed until its dedup window ends, and a held send until it is due.
                let needed_until = match self.record(user, id).await? {
                    None => i64::MIN,
                    Some(NotificationRecord::Done { first_seen_ms }) => first_seen_ms + window_ms,
                    Some(NotificationRecord::Deferred {
                        first_seen_ms,
                        until,
                    }) => until.max(first_seen_ms + window_ms),
                };
                if needed_until > now_ms {
                    // Written again since, or still held: listed where it will be due.
                    let later = self.seen_ns((needed_until - window_ms).max(0) / HOUR_MS);
                    if later != ns {
                        self.kv().put(&later, entry, Vec::new()).await?;
                    }
                } else {
                    self.kv().delete(&self.ns("ids", user), id).await?;
                    let sent = self.ns("sent", id);
                    for (marker, _) in self.kv().list(&sent, None, MAX_LIST_LIMIT).await? {
                        self.kv().delete(&sent, &marker).await?;
                    }
                    removed += 1;
                }
                self.kv().delete(&ns, entry).await?;
            }
            if page.len() < MAX_LIST_LIMIT {
                return Ok(removed);
            }
        }
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

    /// Removes the held send of `notification_id` due at `due_ms`, if there is one (a replay
    /// of its release).
    pub async fn unhold(&self, notification_id: &str, due_ms: i64) -> Result<(), StorageError> {
        let shard = shard_of(notification_id);
        let key = format!("{:013}:{notification_id}", due_ms.max(0));
        self.kv().delete(&self.shard_ns(shard), &key).await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &std::path::Path) -> NotifyStore {
        let settings = sixfold_store::StoreSettings {
            sqlite_path: dir.join("store.db"),
            ..Default::default()
        };
        NotifyStore::new(sixfold_store::connect(&settings).await.unwrap(), "t")
    }

    #[tokio::test]
    async fn purge_removes_ids_and_markers_past_the_window_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let day = 24 * HOUR_MS;
        let now = 100 * day;
        let old = NotificationRecord::Done {
            first_seen_ms: now - day - 2 * HOUR_MS,
        };
        let fresh = NotificationRecord::Done {
            first_seen_ms: now - HOUR_MS,
        };
        store.put_record("u1", "old", old).await.unwrap();
        store.mark_sent("old", "push", "phone").await.unwrap();
        store.put_record("u1", "fresh", fresh).await.unwrap();
        store.mark_sent("fresh", "push", "phone").await.unwrap();
        // Seen long ago, then came back after its window: the record is new again.
        store.put_record("u2", "back", old).await.unwrap();
        let back = NotificationRecord::Done {
            first_seen_ms: now - 10,
        };
        store.put_record("u2", "back", back).await.unwrap();

        assert_eq!(store.purge(now, day).await.unwrap(), 1);
        assert_eq!(store.record("u1", "old").await.unwrap(), None);
        assert!(!store.is_sent("old", "push", "phone").await.unwrap());
        assert_eq!(store.record("u1", "fresh").await.unwrap(), Some(fresh));
        assert!(store.is_sent("fresh", "push", "phone").await.unwrap());
        assert_eq!(store.record("u2", "back").await.unwrap(), Some(back));
        // Nothing left to do until time moves on; then the fresh one goes too.
        assert_eq!(store.purge(now, day).await.unwrap(), 0);
        assert_eq!(store.purge(now + day, day).await.unwrap(), 2);
        assert_eq!(store.record("u1", "fresh").await.unwrap(), None);
    }

    #[tokio::test]
    async fn purge_keeps_a_send_held_past_the_window_until_it_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let day = 24 * HOUR_MS;
        let now = 100 * day;
        let held = NotificationRecord::Deferred {
            first_seen_ms: now - 2 * day,
            until: now + 3 * day,
        };
        store.put_record("u1", "later", held).await.unwrap();
        assert_eq!(store.purge(now, day).await.unwrap(), 0);
        assert_eq!(store.record("u1", "later").await.unwrap(), Some(held));
        // Listed again for when it is due: gone a window after that.
        assert_eq!(store.purge(now + 3 * day, day).await.unwrap(), 0);
        assert_eq!(
            store.purge(now + 3 * day + 2 * HOUR_MS, day).await.unwrap(),
            1
        );
        assert_eq!(store.record("u1", "later").await.unwrap(), None);
    }
}
