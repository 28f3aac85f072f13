//! The timeline's tables in the store: tweets, the social graph, follower counts and the
//! celebrity set. The store is the truth; Redis only caches what is here.
//!
//! Every table is a [`KvStore`] namespace, which on ScyllaDB is one partition clustered by
//! key, so each namespace below is the partition the seed's Cassandra schema would use:
//!
//! | namespace | key → value | partition (ScyllaDB) |
//! |---|---|---|
//! | `<p>.tweets:<author>` | newest-first key of the id → tweet JSON | one author's tweets |
//! | `<p>.tweet/<id % 64>` | id (20 digits) → tweet JSON | tweets by id, 64 shards |
//! | `<p>.deleted/<id % 64>` | id → empty | deletion tombstones, 64 shards |
//! | `<p>.followers:<user>` | follower → empty | one user's followers |
//! | `<p>.following:<user>` | followee → empty | whom one user follows |
//! | `<p>.user:<user>` | `followers` → [`FollowerCount`] JSON | one user's counters |
//! | `<p>.celebrities` | user → empty | users at or above the fan-out threshold |

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sixfold_runtime::applied::AppliedOffsets;
use sixfold_store::{KvStore, MAX_LIST_LIMIT, Store};

use crate::id::MAX_ID;
use crate::model::Tweet;

/// Shards of the by-id tables.
const ID_SHARDS: i64 = 64;
/// Key of the follower count in a user's namespace.
const FOLLOWER_COUNT: &str = "followers";

/// Why a store read or write failed.
pub use sixfold_store::json::ViewError as StorageError;

/// A user's follower count, with the follow events already counted (see [`AppliedOffsets`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerCount {
    /// Followers.
    pub count: u64,
    /// `follow.changed` records already counted.
    #[serde(default)]
    pub applied: AppliedOffsets,
}

/// The timeline's tables.
#[derive(Clone)]
pub struct TimelineStore {
    store: Arc<dyn Store>,
    prefix: String,
}

impl TimelineStore {
    /// Tables under the namespace prefix `prefix`.
    pub fn new(store: Arc<dyn Store>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.to_string(),
        }
    }

    fn kv(&self) -> &dyn KvStore {
        self.store.kv()
    }

    fn tweets_of(&self, author: &str) -> String {
        format!("{}.tweets:{author}", self.prefix)
    }

    fn tweet_shard(&self, id: i64) -> String {
        format!("{}.tweet/{}", self.prefix, id.rem_euclid(ID_SHARDS))
    }

    fn deleted_shard(&self, id: i64) -> String {
        format!("{}.deleted/{}", self.prefix, id.rem_euclid(ID_SHARDS))
    }

    fn followers_of(&self, user: &str) -> String {
        format!("{}.followers:{user}", self.prefix)
    }

    fn following_of(&self, user: &str) -> String {
        format!("{}.following:{user}", self.prefix)
    }

    fn user(&self, user: &str) -> String {
        format!("{}.user:{user}", self.prefix)
    }

    fn celebrities_ns(&self) -> String {
        format!("{}.celebrities", self.prefix)
    }

    /// Stores a tweet (idempotent).
    pub async fn put_tweet(&self, tweet: &Tweet) -> Result<(), StorageError> {
        let value = serde_json::to_vec(tweet).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.kv()
            .put(
                &self.tweet_shard(tweet.id),
                &id_key(tweet.id),
                value.clone(),
            )
            .await?;
        self.kv()
            .put(
                &self.tweets_of(&tweet.author_id),
                &newest_first_key(tweet.id),
                value,
            )
            .await?;
        Ok(())
    }

    /// Deletes a tweet and leaves a tombstone, so that a replay that meets the deletion before
    /// the post (they are on different topics) does not bring the tweet back.
    pub async fn delete_tweet(&self, id: i64, author: &str) -> Result<(), StorageError> {
        self.kv()
            .put(&self.deleted_shard(id), &id_key(id), Vec::new())
            .await?;
        self.kv().delete(&self.tweet_shard(id), &id_key(id)).await?;
        self.kv()
            .delete(&self.tweets_of(author), &newest_first_key(id))
            .await?;
        Ok(())
    }

    /// Whether the tweet was deleted.
    pub async fn is_deleted(&self, id: i64) -> Result<bool, StorageError> {
        Ok(self
            .kv()
            .get(&self.deleted_shard(id), &id_key(id))
            .await?
            .is_some())
    }

    /// The tweet with `id`, unless unknown or deleted.
    pub async fn tweet(&self, id: i64) -> Result<Option<Tweet>, StorageError> {
        let ns = self.tweet_shard(id);
        match self.kv().get(&ns, &id_key(id)).await? {
            Some(bytes) => Ok(Some(parse(&ns, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` (≤ 1000) of `author`'s tweets older than `before` (all when `None`),
    /// newest first.
    pub async fn recent_tweets(
        &self,
        author: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Tweet>, StorageError> {
        let ns = self.tweets_of(author);
        let after = before.map(newest_first_key);
        let page = self
            .kv()
            .list(&ns, after.as_deref(), limit.min(MAX_LIST_LIMIT))
            .await?;
        page.iter().map(|(_, bytes)| parse(&ns, bytes)).collect()
    }

    /// Whether `follower` follows `followee`.
    pub async fn follows(&self, follower: &str, followee: &str) -> Result<bool, StorageError> {
        Ok(self
            .kv()
            .get(&self.followers_of(followee), follower)
            .await?
            .is_some())
    }

    /// Adds or removes the edge in both directions (idempotent).
    pub async fn set_edge(
        &self,
        follower: &str,
        followee: &str,
        present: bool,
    ) -> Result<(), StorageError> {
        let (followers, following) = (self.followers_of(followee), self.following_of(follower));
        if present {
            self.kv().put(&followers, follower, Vec::new()).await?;
            self.kv().put(&following, followee, Vec::new()).await?;
        } else {
            self.kv().delete(&followers, follower).await?;
            self.kv().delete(&following, followee).await?;
        }
        Ok(())
    }

    /// Everyone who follows `user`.
    pub async fn followers(&self, user: &str) -> Result<Vec<String>, StorageError> {
        self.all_keys(&self.followers_of(user)).await
    }

    /// Everyone `user` follows.
    pub async fn following(&self, user: &str) -> Result<Vec<String>, StorageError> {
        self.all_keys(&self.following_of(user)).await
    }

    /// How many users `user` follows.
    pub async fn following_count(&self, user: &str) -> Result<u64, StorageError> {
        Ok(self.kv().count(&self.following_of(user)).await?)
    }

    /// Users at or above the fan-out threshold.
    pub async fn celebrities(&self) -> Result<Vec<String>, StorageError> {
        self.all_keys(&self.celebrities_ns()).await
    }

    /// Whether `user` is in the celebrity set.
    pub async fn is_celebrity(&self, user: &str) -> Result<bool, StorageError> {
        Ok(self.kv().get(&self.celebrities_ns(), user).await?.is_some())
    }

    /// Puts `user` into the celebrity set or takes them out.
    pub async fn set_celebrity(&self, user: &str, celebrity: bool) -> Result<(), StorageError> {
        let ns = self.celebrities_ns();
        if celebrity {
            self.kv().put(&ns, user, Vec::new()).await?;
        } else {
            self.kv().delete(&ns, user).await?;
        }
        Ok(())
    }

    /// `user`'s follower count.
    pub async fn follower_count(&self, user: &str) -> Result<FollowerCount, StorageError> {
        let ns = self.user(user);
        match self.kv().get(&ns, FOLLOWER_COUNT).await? {
            Some(bytes) => parse(&ns, &bytes),
            None => Ok(FollowerCount::default()),
        }
    }

    /// Stores `user`'s follower count.
    pub async fn put_follower_count(
        &self,
        user: &str,
        count: &FollowerCount,
    ) -> Result<(), StorageError> {
        let value = serde_json::to_vec(count).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.kv()
            .put(&self.user(user), FOLLOWER_COUNT, value)
            .await?;
        Ok(())
    }

    async fn all_keys(&self, ns: &str) -> Result<Vec<String>, StorageError> {
        let mut keys = Vec::new();
        loop {
            let page = self
                .kv()
                .list(ns, keys.last().map(String::as_str), MAX_LIST_LIMIT)
                .await?;
            let done = page.len() < MAX_LIST_LIMIT;
            keys.extend(page.into_iter().map(|(key, _)| key));
            if done {
                return Ok(keys);
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(ns: &str, bytes: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(bytes).map_err(|_| StorageError::Corrupt(ns.to_string()))
}

/// Key of a tweet in the by-id tables.
fn id_key(id: i64) -> String {
    format!("{id:020}")
}

/// Key that sorts an author's tweets newest first (the store lists keys in ascending order).
fn newest_first_key(id: i64) -> String {
    format!("{:014x}", MAX_ID - id.clamp(0, MAX_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_keys_sort_newest_first() {
        let mut ids = [1, 99, 1 << 40, MAX_ID, 12_345];
        let mut keys: Vec<String> = ids.iter().map(|&id| newest_first_key(id)).collect();
        keys.sort();
        ids.sort_by(|a, b| b.cmp(a));
        assert_eq!(
            keys,
            ids.iter()
                .map(|&id| newest_first_key(id))
                .collect::<Vec<_>>()
        );
    }
}
