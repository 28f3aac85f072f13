//! The timeline's Redis views: home timelines, the cached social graph and tweet bodies.
//!
//! | key | type | what |
//! |---|---|---|
//! | `<p>:{<user>}` | sorted set | home timeline: score = member = tweet id, newest [`cap`] kept, plus the sentinel `_` at score -1 once complete; expires after `timeline_ttl` without a read |
//! | `<p>:{<user>}:rebuild` | string | token of a rebuild in progress (30 s) |
//! | `<p>:following:{<user>}`, `<p>:followers:{<user>}` | set | cached graph, sentinel `""` once complete |
//! | `<p>:{celebrities}` | set | cached celebrity set, sentinel `""` once complete |
//! | `<p>:…:load` | string | token of a set load in progress (30 s) |
//! | `<p>:tweet:<id>` | string | tweet JSON, or `-` for a deleted tweet, `tweet_cache_ttl` |
//!
//! A view is either complete (it has its sentinel) or absent; a partial view never looks
//! complete. Writers add to complete views and to views being loaded, skip absent ones (the
//! next read loads them from the store), and cancel loads when they remove something. One
//! user's keys share the hash tag `{<user>}`; on one node, pushes and removals batch many users'
//! timelines into one script call ([`TIMELINES_PER_CALL`]); on a Redis Cluster each user's
//! timeline is one call (its keys share a slot), all of a batch sent at once.
//!
//! [`cap`]: crate::TimelineSettings::cap

use std::time::Duration;

use redis::{AsyncCommands, RedisResult, Script};
use sixfold_runtime::redis_conn::RedisConn;

use crate::model::Tweet;

/// Cached in place of a deleted tweet's body.
const TOMBSTONE: &str = "-";
/// Timelines written in one pipeline.
const PIPELINE: usize = 1000;
/// Timelines written by one script call: the script's fixed cost (lookup, Lua call) is paid
/// once for all of them, which is most of the cost of a push. On Redis Cluster the keys of one
/// call must share a slot, so there a call covers one timeline.
pub const TIMELINES_PER_CALL: usize = 100;
/// How long a rebuild or load may take before another reader may start over.
const LOAD_MARKER_MS: u64 = 30_000;

/// A page read from a cached home timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedPage {
    /// Ids, newest first.
    pub ids: Vec<i64>,
    /// When the timeline is full: the oldest id it still holds (older ones were trimmed).
    pub floor: Option<i64>,
}

/// A cached set of user ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphSet<'a> {
    /// Whom the user follows.
    Following(&'a str),
    /// Who follows the user.
    Followers(&'a str),
    /// Users at or above the fan-out threshold.
    Celebrities,
}

struct Scripts {
    push: Script,
    remove: Script,
    fill: Script,
    page: Script,
    set_add: Script,
    set_remove: Script,
    set_fill: Script,
    set_members: Script,
}

/// The Redis views.
#[derive(Clone)]
pub struct TimelineCache {
    redis: RedisConn,
    prefix: String,
    cap: usize,
    timeline_ttl_ms: u64,
    tweet_ttl_ms: u64,
    scripts: std::sync::Arc<Scripts>,
}

impl TimelineCache {
    /// Views under `prefix`, home timelines of at most `cap` tweets.
    pub fn new(
        redis: RedisConn,
        prefix: &str,
        cap: usize,
        timeline_ttl: Duration,
        tweet_ttl: Duration,
    ) -> Self {
        Self {
            redis,
            prefix: prefix.to_string(),
            cap,
            timeline_ttl_ms: timeline_ttl.as_millis().max(1) as u64,
            tweet_ttl_ms: tweet_ttl.as_millis().max(1) as u64,
            scripts: std::sync::Arc::new(Scripts {
                push: Script::new(include_str!("lua/push.lua")),
                remove: Script::new(include_str!("lua/remove.lua")),
                fill: Script::new(include_str!("lua/fill.lua")),
                page: Script::new(include_str!("lua/page.lua")),
                set_add: Script::new(include_str!("lua/set_add.lua")),
                set_remove: Script::new(include_str!("lua/set_remove.lua")),
                set_fill: Script::new(include_str!("lua/set_fill.lua")),
                set_members: Script::new(include_str!("lua/set_members.lua")),
            }),
        }
    }

    /// Key of `user`'s home timeline.
    pub fn home_key(&self, user: &str) -> String {
        format!("{}:{{{user}}}", self.prefix)
    }

    fn rebuild_key(&self, user: &str) -> String {
        format!("{}:{{{user}}}:rebuild", self.prefix)
    }

    fn set_key(&self, set: GraphSet<'_>) -> String {
        match set {
            GraphSet::Following(user) => format!("{}:following:{{{user}}}", self.prefix),
            GraphSet::Followers(user) => format!("{}:followers:{{{user}}}", self.prefix),
            GraphSet::Celebrities => format!("{}:{{celebrities}}", self.prefix),
        }
    }

    fn tweet_key(&self, id: i64) -> String {
        format!("{}:tweet:{id}", self.prefix)
    }

    /// Pushes `ids` into the home timelines of `users` that are cached (see `lua/push.lua`):
    /// [`TIMELINES_PER_CALL`] timelines per script call, several calls per pipeline.
    pub async fn push(&self, users: &[String], ids: &[i64]) -> RedisResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = vec![self.cap as i64, self.timeline_ttl_ms as i64];
        args.extend_from_slice(ids);
        self.for_each_timeline(&self.scripts.push, users, &args)
            .await
    }

    /// Takes `ids` out of the home timelines of `users` and cancels their rebuilds.
    pub async fn remove(&self, users: &[String], ids: &[i64]) -> RedisResult<()> {
        self.for_each_timeline(&self.scripts.remove, users, ids)
            .await
    }

    /// Runs `script` over the (home timeline, rebuild marker) key pairs of `users`, at most
    /// [`TIMELINES_PER_CALL`] pairs per call (one on a cluster) and [`PIPELINE`] timelines per
    /// round trip, with the same `args` for every call. The script is loaded in each pipeline,
    /// because a Redis restarted since the last one has forgotten it.
    async fn for_each_timeline(
        &self,
        script: &Script,
        users: &[String],
        args: &[i64],
    ) -> RedisResult<()> {
        for chunk in users.chunks(PIPELINE) {
            if self.redis.is_cluster() {
                // Invoked one by one, a script is loaded on the node that lacks it.
                futures::future::try_join_all(chunk.iter().map(|user| {
                    let mut call = script.prepare_invoke();
                    call.key(self.home_key(user)).key(self.rebuild_key(user));
                    for arg in args {
                        call.arg(*arg);
                    }
                    let mut redis = self.redis.clone();
                    async move { call.invoke_async::<()>(&mut redis).await }
                }))
                .await?;
                continue;
            }
            let mut pipe = redis::pipe();
            pipe.load_script(script).ignore();
            for group in chunk.chunks(TIMELINES_PER_CALL) {
                let mut call = script.prepare_invoke();
                for user in group {
                    call.key(self.home_key(user)).key(self.rebuild_key(user));
                }
                for arg in args {
                    call.arg(*arg);
                }
                pipe.invoke_script(&call).ignore();
            }
            pipe.query_async::<()>(&mut self.redis.clone()).await?;
        }
        Ok(())
    }

    /// Drops the home timelines of `users` (and cancels their rebuilds): the next read of each
    /// rebuilds it from the store.
    pub async fn invalidate(&self, users: &[String]) -> RedisResult<()> {
        for chunk in users.chunks(PIPELINE) {
            let deletes: Vec<redis::Cmd> = chunk
                .iter()
                .map(|user| {
                    let mut delete = redis::cmd("DEL");
                    delete.arg(self.home_key(user)).arg(self.rebuild_key(user));
                    delete
                })
                .collect();
            self.redis.query_each(&deletes).await?;
        }
        Ok(())
    }

    /// Up to `limit` ids of `user`'s complete home timeline older than `before`, newest first,
    /// refreshing its time to live; `None` if it is not cached (rebuild it).
    pub async fn page(
        &self,
        user: &str,
        before: Option<i64>,
        limit: usize,
    ) -> RedisResult<Option<CachedPage>> {
        let max = before.map_or_else(|| "+inf".to_string(), |id| format!("({id}"));
        let reply: Option<Vec<i64>> = self
            .scripts
            .page
            .key(self.home_key(user))
            .arg(max)
            .arg(limit)
            .arg(self.timeline_ttl_ms)
            .arg(self.cap)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(reply.map(|mut ids| {
            let floor = if ids.is_empty() { 0 } else { ids.remove(0) };
            CachedPage {
                ids,
                floor: (floor > 0).then_some(floor),
            }
        }))
    }

    /// Announces a rebuild of `user`'s timeline; returns its token.
    pub async fn begin_rebuild(&self, user: &str) -> RedisResult<String> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut redis = self.redis.clone();
        redis
            .pset_ex::<_, _, ()>(self.rebuild_key(user), &token, LOAD_MARKER_MS)
            .await?;
        Ok(token)
    }

    /// Writes a rebuilt timeline (newest `cap` of `ids`) unless a removal cancelled the
    /// rebuild; true if written.
    pub async fn finish_rebuild(&self, user: &str, token: &str, ids: &[i64]) -> RedisResult<bool> {
        let mut call = self.scripts.fill.key(self.home_key(user));
        call.key(self.rebuild_key(user))
            .arg(token)
            .arg(self.cap)
            .arg(self.timeline_ttl_ms);
        for id in ids {
            call.arg(*id);
        }
        let written: i64 = call.invoke_async(&mut self.redis.clone()).await?;
        Ok(written == 1)
    }

    /// The members of a complete cached set; `None` if it must be loaded.
    pub async fn members(&self, set: GraphSet<'_>) -> RedisResult<Option<Vec<String>>> {
        let members: Option<Vec<String>> = self
            .scripts
            .set_members
            .key(self.set_key(set))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(members.map(|mut m| {
            m.retain(|member| !member.is_empty());
            m
        }))
    }

    /// Announces a load of `set` from the store; returns its token.
    pub async fn begin_load(&self, set: GraphSet<'_>) -> RedisResult<String> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut redis = self.redis.clone();
        redis
            .pset_ex::<_, _, ()>(load_key(&self.set_key(set)), &token, LOAD_MARKER_MS)
            .await?;
        Ok(token)
    }

    /// Writes a loaded set unless a removal cancelled the load.
    pub async fn finish_load(
        &self,
        set: GraphSet<'_>,
        token: &str,
        members: &[String],
    ) -> RedisResult<()> {
        let key = self.set_key(set);
        let mut call = self.scripts.set_fill.key(&key);
        call.key(load_key(&key)).arg(token).arg(members);
        call.invoke_async::<i64>(&mut self.redis.clone()).await?;
        Ok(())
    }

    /// Adds `member` to `set` if it is cached or being loaded.
    pub async fn add_member(&self, set: GraphSet<'_>, member: &str) -> RedisResult<()> {
        let key = self.set_key(set);
        self.scripts
            .set_add
            .key(&key)
            .key(load_key(&key))
            .arg(member)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Removes `member` from `set` and cancels a load in progress.
    pub async fn remove_member(&self, set: GraphSet<'_>, member: &str) -> RedisResult<()> {
        let key = self.set_key(set);
        self.scripts
            .set_remove
            .key(&key)
            .key(load_key(&key))
            .arg(member)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Caches tweet bodies, never over an entry already there: tweets do not change, and a
    /// deletion's tombstone must win over a reader filling the cache from an older read.
    pub async fn put_tweets(&self, tweets: &[Tweet]) -> RedisResult<()> {
        let sets: Vec<redis::Cmd> = tweets
            .iter()
            .map(|tweet| {
                let mut set = redis::cmd("SET");
                set.arg(self.tweet_key(tweet.id))
                    .arg(serde_json::to_vec(tweet).unwrap_or_default())
                    .arg("PX")
                    .arg(self.tweet_ttl_ms)
                    .arg("NX");
                set
            })
            .collect();
        self.redis.query_each(&sets).await?;
        Ok(())
    }

    /// Cached tweet bodies of `ids`, in order (`None` for a miss).
    pub async fn tweets(&self, ids: &[i64]) -> RedisResult<Vec<Option<Tweet>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|&id| self.tweet_key(id)).collect();
        let raw: Vec<Option<Vec<u8>>> = self.redis.clone().mget(keys).await?;
        // A tombstone or an entry that does not parse (an older format) is a miss; the store
        // then says whether the tweet exists.
        Ok(raw
            .into_iter()
            .map(|bytes| bytes.and_then(|b| serde_json::from_slice(&b).ok()))
            .collect())
    }

    /// Replaces a cached tweet body with a tombstone (`-`, which reads treat as gone) for as
    /// long as a body could have been cached.
    pub async fn forget_tweet(&self, id: i64) -> RedisResult<()> {
        self.redis
            .clone()
            .pset_ex::<_, _, ()>(self.tweet_key(id), TOMBSTONE, self.tweet_ttl_ms)
            .await
    }
}

fn load_key(set_key: &str) -> String {
    format!("{set_key}:load")
}
