//! The `timeline` processor: materializes tweets and the social graph, and fans tweets out.

use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::{Classify, Processor, Record};

use crate::cache::GraphSet;
use crate::events::{
    FanoutOperation, FollowAction, FollowChanged, TimelineFanout, TweetDeleted, TweetPosted,
};
use crate::model::{Invalid, check_follow, check_tweet, check_user_id};
use crate::plan::{Delivery, FanoutPath, delivery, fanout_path};
use crate::storage::StorageError;
use crate::{ProduceFailure, Timeline};

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    /// The value is not a valid event of its topic.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The record came from a topic this processor does not read.
    #[error("unexpected topic {0}")]
    UnknownTopic(String),
    /// The store failed, or holds a value that does not parse.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Redis failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A fan-out work item could not be produced.
    #[error("produce fan-out: {0}")]
    Produce(#[from] ProduceFailure),
}

impl From<Invalid> for TimelineError {
    fn from(error: Invalid) -> Self {
        TimelineError::Invalid(error.to_string())
    }
}

impl Classify for TimelineError {
    fn is_transient(&self) -> bool {
        match self {
            TimelineError::Invalid(_) | TimelineError::UnknownTopic(_) => false,
            TimelineError::Storage(e) => e.is_transient(),
            // Connection loss, timeouts, a restarting or busy Redis: all pass; a record that
            // keeps failing ends in the DLQ after the last retry tier anyway.
            TimelineError::Redis(_) => true,
            TimelineError::Produce(e) => !e.permanent,
        }
    }

    fn class(&self) -> &'static str {
        match self {
            TimelineError::Invalid(_) => "invalid_event",
            TimelineError::UnknownTopic(_) => "unknown_topic",
            TimelineError::Storage(StorageError::Corrupt(_)) => "corrupt_state",
            TimelineError::Storage(e) if e.is_transient() => "store_unavailable",
            TimelineError::Storage(_) => "store_rejected",
            TimelineError::Redis(_) => "redis_unavailable",
            TimelineError::Produce(e) if e.permanent => "produce_rejected",
            TimelineError::Produce(_) => "broker_unavailable",
        }
    }
}

/// The processor.
pub struct TimelineProcessor {
    timeline: Arc<Timeline>,
}

impl TimelineProcessor {
    /// The processor over the timeline's shared state.
    pub fn new(timeline: Arc<Timeline>) -> Self {
        Self { timeline }
    }
}

fn decode<T: serde::de::DeserializeOwned>(record: &Record) -> Result<T, TimelineError> {
    record
        .decode()
        .map_err(|e| TimelineError::Invalid(e.to_string()))
}

#[async_trait]
impl Processor for TimelineProcessor {
    type Error = TimelineError;

    async fn process(&self, record: &Record) -> Result<(), TimelineError> {
        let t = &self.timeline;
        let s = &t.settings;
        if record.topic == s.posted_topic {
            t.apply_posted(&decode(record)?).await
        } else if record.topic == s.deleted_topic {
            t.apply_deleted(&decode(record)?).await
        } else if record.topic == s.follow_topic {
            t.apply_follow(&decode(record)?, record.partition, record.offset)
                .await
        } else if record.topic == s.fanout_topic {
            t.apply_fanout(&decode(record)?).await
        } else {
            Err(TimelineError::UnknownTopic(record.topic.clone()))
        }
    }
}

impl Timeline {
    async fn apply_posted(&self, event: &TweetPosted) -> Result<(), TimelineError> {
        let tweet = event.tweet();
        check_tweet(&tweet, self.limits())?;
        if self.store.is_deleted(tweet.id).await? {
            return Ok(()); // deleted before this post was (re)applied: keep it deleted
        }
        self.store.put_tweet(&tweet).await?;
        self.metrics
            .materialized
            .with_label_values(&["timeline", "tweet"])
            .inc();
        if let Err(error) = self.cache.put_tweets(std::slice::from_ref(&tweet)).await {
            tracing::debug!(%error, "tweet not cached");
        }
        if self.store.is_deleted(tweet.id).await? {
            // Deleted while this post was being stored (the two topics are consumed apart).
            self.store.delete_tweet(tweet.id, &tweet.author_id).await?;
            return Ok(());
        }
        let author = &tweet.author_id;
        if self.store.is_celebrity(author).await? {
            // Readers merge a celebrity's tweets in; only the author's own timeline is pushed.
            self.write_timelines(FanoutOperation::Add, std::slice::from_ref(author), tweet.id)
                .await
        } else {
            self.fan_out(FanoutOperation::Add, author, tweet.id, true)
                .await
        }
    }

    async fn apply_deleted(&self, event: &TweetDeleted) -> Result<(), TimelineError> {
        check_user_id(&event.author_id)?;
        if !crate::id::is_valid(event.tweet_id) {
            return Err(Invalid::TweetId(event.tweet_id).into());
        }
        if let Some(stored) = self.store.tweet(event.tweet_id).await?
            && stored.author_id != event.author_id
        {
            return Err(TimelineError::Invalid(format!(
                "tweet {} belongs to {:?}, not {:?}",
                event.tweet_id, stored.author_id, event.author_id
            )));
        }
        self.store
            .delete_tweet(event.tweet_id, &event.author_id)
            .await?;
        self.metrics
            .materialized
            .with_label_values(&["timeline", "tweet_deleted"])
            .inc();
        // Reads trust the tweet cache, so the deletion must reach it (a tombstone that also
        // keeps a concurrent reader from filling the cache again).
        self.cache.forget_tweet(event.tweet_id).await?;
        let author = &event.author_id;
        if self.store.is_celebrity(author).await? {
            // Reads drop ids whose tweet is gone, so a celebrity's followers need no writes.
            let own = [author.clone()];
            return self
                .write_timelines(FanoutOperation::Remove, &own, event.tweet_id)
                .await;
        }
        self.fan_out(FanoutOperation::Remove, author, event.tweet_id, true)
            .await
    }

    async fn apply_follow(
        &self,
        event: &FollowChanged,
        partition: i32,
        offset: i64,
    ) -> Result<(), TimelineError> {
        let (follower, followee) = (&event.follower_id, &event.followee_id);
        check_follow(follower, followee)?;
        let follow = match event.action {
            FollowAction::Follow => true,
            FollowAction::Unfollow => false,
            FollowAction::Unknown => {
                return Err(TimelineError::Invalid("unknown follow action".into()));
            }
        };
        // Count first, then the edge: a redelivery after a crash in between finds the edge
        // unchanged and the count already holding this offset, so neither moves twice.
        let existed = self.store.follows(follower, followee).await?;
        let mut count = self.store.follower_count(followee).await?;
        if existed != follow && count.applied.advance(partition, offset) {
            count.count = if follow {
                count.count + 1
            } else {
                count.count.saturating_sub(1)
            };
            self.store.put_follower_count(followee, &count).await?;
        }
        self.store.set_edge(follower, followee, follow).await?;
        self.metrics
            .materialized
            .with_label_values(&["timeline", "follow"])
            .inc();
        if follow {
            self.cache
                .add_member(GraphSet::Followers(followee), follower)
                .await?;
            self.cache
                .add_member(GraphSet::Following(follower), followee)
                .await?;
        } else {
            self.cache
                .remove_member(GraphSet::Followers(followee), follower)
                .await?;
            self.cache
                .remove_member(GraphSet::Following(follower), followee)
                .await?;
        }
        let celebrity = self.reconcile_celebrity(followee, count.count).await?;
        let recipients = [follower.clone()];
        if follow && !celebrity {
            let ids = self.tweet_ids(followee, self.settings.backfill).await?;
            self.cache.push(&recipients, &ids).await?;
            self.timeline_writes.with_label_values(&["push"]).inc();
        } else if !follow {
            // Celebrities too: their tweets may have been pushed before they became one.
            let ids = self.tweet_ids(followee, self.settings.cap).await?;
            self.cache.remove(&recipients, &ids).await?;
            self.timeline_writes.with_label_values(&["remove"]).inc();
        }
        Ok(())
    }

    async fn apply_fanout(&self, item: &TimelineFanout) -> Result<(), TimelineError> {
        for user in &item.follower_ids {
            check_user_id(user)?;
        }
        if item.operation == FanoutOperation::Unknown {
            return Err(TimelineError::Invalid("unknown fan-out operation".into()));
        }
        self.write_timelines(item.operation, &item.follower_ids, item.tweet_id)
            .await
    }

    /// Brings the celebrity flag in line with `followers`. Returns whether `user` is a
    /// celebrity.
    ///
    /// Posts follow the store's flag (push or not); reads and rebuilds follow the Redis set
    /// (merge or not). Each transition changes the set first and the flag last, so at every
    /// step an author's tweets reach readers one way or the other, and a failure part-way leaves
    /// the flag unchanged: the record's retry (or the author's next follow event) runs the
    /// whole transition again, every step of which is idempotent.
    /// - Up: into the Redis set (readers start merging), then the flag (posts stop pushing).
    /// - Down: out of the Redis set (rebuilds include the author's tweets), then the followers'
    ///   cached timelines are dropped (the author's tweets were never pushed into them; the next
    ///   read rebuilds them), then the flag (posts push again).
    async fn reconcile_celebrity(&self, user: &str, followers: u64) -> Result<bool, TimelineError> {
        let should = fanout_path(followers, self.settings.fanout_threshold) == FanoutPath::Pull;
        if self.store.is_celebrity(user).await? == should {
            return Ok(should);
        }
        if should {
            self.cache.add_member(GraphSet::Celebrities, user).await?;
        } else {
            self.cache
                .remove_member(GraphSet::Celebrities, user)
                .await?;
            self.fan_out(FanoutOperation::Invalidate, user, 0, false)
                .await?;
        }
        self.store.set_celebrity(user, should).await?;
        tracing::info!(user, followers, celebrity = should, "fan-out path changed");
        Ok(should)
    }

    /// Applies `operation` for `tweet_id` to the home timelines of `author`'s followers (and
    /// the author's own when `include_author`): directly when they fit in one batch, otherwise
    /// through `timeline.fanout` work items.
    async fn fan_out(
        &self,
        operation: FanoutOperation,
        author: &str,
        tweet_id: i64,
        include_author: bool,
    ) -> Result<(), TimelineError> {
        let mut recipients = self.graph(GraphSet::Followers(author)).await?;
        if include_author {
            recipients.push(author.to_string());
        }
        match delivery(recipients.len(), self.settings.fanout_batch) {
            Delivery::Direct => self.write_timelines(operation, &recipients, tweet_id).await,
            Delivery::Batched(batches) => {
                let count = batches.len() as i32;
                let items: Vec<(String, TimelineFanout)> = batches
                    .into_iter()
                    .enumerate()
                    .map(|(index, range)| {
                        // Invalidations have no tweet: spread them by author instead.
                        let key = match operation {
                            FanoutOperation::Invalidate => format!("{author}:{index}"),
                            _ => format!("{tweet_id}:{index}"),
                        };
                        let item = TimelineFanout {
                            event_id: uuid::Uuid::new_v4().to_string(),
                            occurred_at: now_ms(),
                            tweet_id,
                            author_id: author.to_string(),
                            operation,
                            follower_ids: recipients[range].to_vec(),
                            batch_index: index as i32,
                            batch_count: count,
                        };
                        (key, item)
                    })
                    .collect();
                let topic = &self.settings.fanout_topic;
                futures::future::try_join_all(
                    items
                        .iter()
                        .map(|(key, item)| self.produce(topic, &self.schemas.fanout, key, item)),
                )
                .await?;
                Ok(())
            }
        }
    }

    /// Applies one fan-out operation to `users`' home timelines.
    async fn write_timelines(
        &self,
        operation: FanoutOperation,
        users: &[String],
        tweet_id: i64,
    ) -> Result<(), TimelineError> {
        let label = match operation {
            FanoutOperation::Add => {
                self.cache.push(users, &[tweet_id]).await?;
                "push"
            }
            FanoutOperation::Remove => {
                self.cache.remove(users, &[tweet_id]).await?;
                "remove"
            }
            FanoutOperation::Invalidate => {
                self.cache.invalidate(users).await?;
                "invalidate"
            }
            FanoutOperation::Unknown => return Ok(()),
        };
        self.timeline_writes
            .with_label_values(&[label])
            .inc_by(users.len() as u64);
        Ok(())
    }

    async fn tweet_ids(&self, author: &str, limit: usize) -> Result<Vec<i64>, TimelineError> {
        Ok(self
            .store
            .recent_tweets(author, None, limit)
            .await?
            .iter()
            .map(|t| t.id)
            .collect())
    }
}
