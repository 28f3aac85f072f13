//! The timeline's events, as serde types matching `schemas/avro/{tweet,follow,timeline}.*.avsc`.

use serde::{Deserialize, Serialize};

use crate::model::Tweet;

/// `schemas/avro/tweet.posted.avsc`.
pub const TWEET_POSTED_SCHEMA: &str = include_str!("../../../schemas/avro/tweet.posted.avsc");
/// `schemas/avro/tweet.deleted.avsc`.
pub const TWEET_DELETED_SCHEMA: &str = include_str!("../../../schemas/avro/tweet.deleted.avsc");
/// `schemas/avro/follow.changed.avsc`.
pub const FOLLOW_CHANGED_SCHEMA: &str = include_str!("../../../schemas/avro/follow.changed.avsc");
/// `schemas/avro/timeline.fanout.avsc`.
pub const TIMELINE_FANOUT_SCHEMA: &str = include_str!("../../../schemas/avro/timeline.fanout.avsc");

/// A tweet was posted (key: author).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TweetPosted {
    /// Unique event id.
    pub event_id: String,
    /// When it was posted, ms since the epoch.
    pub occurred_at: i64,
    /// Time-ordered tweet id.
    pub tweet_id: i64,
    /// Author; the record key.
    pub author_id: String,
    /// Text.
    pub content: String,
    /// Media URLs.
    #[serde(default)]
    pub media_urls: Vec<String>,
}

impl TweetPosted {
    /// The event announcing `tweet`.
    pub fn of(tweet: &Tweet) -> Self {
        Self {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: tweet.created_at_ms,
            tweet_id: tweet.id,
            author_id: tweet.author_id.clone(),
            content: tweet.content.clone(),
            media_urls: tweet.media_urls.clone(),
        }
    }

    /// The tweet this event posts.
    pub fn tweet(&self) -> Tweet {
        Tweet {
            id: self.tweet_id,
            author_id: self.author_id.clone(),
            content: self.content.clone(),
            media_urls: self.media_urls.clone(),
            created_at_ms: self.occurred_at,
        }
    }
}

/// A tweet was deleted (key: author).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TweetDeleted {
    /// Unique event id.
    pub event_id: String,
    /// When it was deleted.
    pub occurred_at: i64,
    /// The deleted tweet.
    pub tweet_id: i64,
    /// Its author; the record key.
    pub author_id: String,
}

/// What happened to a follow edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FollowAction {
    /// A symbol this reader does not know; the event is refused.
    Unknown,
    /// The edge was added.
    Follow,
    /// The edge was removed.
    Unfollow,
}

/// A follow or unfollow (key: followee).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowChanged {
    /// Unique event id.
    pub event_id: String,
    /// When it happened.
    pub occurred_at: i64,
    /// Who follows.
    pub follower_id: String,
    /// Who is followed; the record key.
    pub followee_id: String,
    /// Follow or unfollow.
    pub action: FollowAction,
}

/// What a fan-out work item does to each listed timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FanoutOperation {
    /// A symbol this reader does not know; the item is refused.
    Unknown,
    /// Push the tweet.
    Add,
    /// Take the tweet out.
    Remove,
    /// Drop the cached timeline so the next read rebuilds it from the store (an author fell
    /// below the celebrity threshold: their tweets were never pushed).
    Invalidate,
}

/// One batch of a large fan-out (key: `tweet_id:batch_index`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineFanout {
    /// Unique event id.
    pub event_id: String,
    /// When the fan-out was planned.
    pub occurred_at: i64,
    /// The tweet (0 for [`FanoutOperation::Invalidate`]).
    pub tweet_id: i64,
    /// The tweet's author.
    pub author_id: String,
    /// What to do.
    pub operation: FanoutOperation,
    /// Whose home timelines.
    pub follower_ids: Vec<String>,
    /// Index of this batch.
    pub batch_index: i32,
    /// Batches in the whole fan-out.
    pub batch_count: i32,
}
