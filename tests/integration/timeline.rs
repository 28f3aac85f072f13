//! The home timeline through HTTP with its processor running on the real broker, Redis and
//! SQLite: push fan-out (direct and through `timeline.fanout`), celebrities merged on read and
//! crossing the threshold both ways, backfill, unfollow, delete, the cap, pagination while
//! tweets arrive, rebuild after Redis loses everything, replay, bad input and the DLQ.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use redis::AsyncCommands;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sixfold_ingress::{ApiKeyEntry, IngressSettings};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::{AvroCodec, EventSchema};
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::failure::{H_ERROR_CLASS, dlq_topic};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::{Outgoing, Producer};
use sixfold_runtime::redis_conn::RedisConn;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_tests::{
    TestRegistry, bind, create_topics, kafka, redis_conn, redis_url, serve_ingress, sqlite_store,
    unique, wait_for,
};
use sixfold_timeline::events::{FollowAction, FollowChanged, TweetPosted};
use sixfold_timeline::{Timeline, TimelineDeps, TimelineSettings};

use crate::harness::{header, read_records};

const KEY: &str = "integration-test-key";
const PATIENCE: Duration = Duration::from_secs(60);

/// One timeline system: topics, store, ingress and processor, all fresh.
struct Feed {
    base: String,
    http: reqwest::Client,
    settings: TimelineSettings,
    registry: Arc<TestRegistry>,
    redis: RedisConn,
    producer: Producer,
    codec: Arc<AvroCodec>,
    group: String,
    metrics: Metrics,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Feed {
    /// A feed on fresh topics; `tune` adjusts the settings (threshold, cap, batch).
    async fn start(tune: impl FnOnce(&mut TimelineSettings)) -> Result<Self> {
        Self::start_on(false, tune).await
    }

    /// [`Feed::start`] on the single Redis or (`redis_cluster`) the Redis Cluster.
    async fn start_on(
        redis_cluster: bool,
        tune: impl FnOnce(&mut TimelineSettings),
    ) -> Result<Self> {
        let prefix = unique("tl");
        let mut settings = TimelineSettings {
            namespace: prefix.clone(),
            posted_topic: format!("{prefix}.posted"),
            deleted_topic: format!("{prefix}.deleted"),
            follow_topic: format!("{prefix}.follow"),
            fanout_topic: format!("{prefix}.fanout"),
            ..TimelineSettings::default()
        };
        tune(&mut settings);
        create_topics(&[
            (&settings.posted_topic, 2),
            (&settings.deleted_topic, 2),
            (&settings.follow_topic, 2),
            (&settings.fanout_topic, 3),
        ])
        .await?;
        let registry = Arc::new(TestRegistry::start().await?);
        Self::start_with(settings, registry, &unique("tl-group"), redis_cluster).await
    }

    /// A feed on existing topics with a new, empty store and consumer group `group`.
    async fn start_with(
        settings: TimelineSettings,
        registry: Arc<TestRegistry>,
        group: &str,
        redis_cluster: bool,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store = sqlite_store(dir.path()).await?;
        let redis = redis_conn(redis_cluster).await?;
        let metrics = Metrics::new();
        let producer = Producer::new(&kafka(), metrics.clone())?;
        let codec = Arc::new(AvroCodec::new(&registry.url)?);
        let shutdown = CancellationToken::new();
        let (listener, base) = bind().await?;
        let timeline = Timeline::new(
            settings.clone(),
            TimelineDeps {
                store: store.clone(),
                redis: redis.clone(),
                producer: producer.clone(),
                codec: codec.clone(),
                metrics: metrics.clone(),
            },
        )?;
        let ingress = IngressSettings {
            api_keys: vec![ApiKeyEntry {
                name: "tests".into(),
                sha256: sixfold_ingress::auth::digest_hex(KEY),
            }],
            ..IngressSettings::default()
        };
        serve_ingress(
            listener,
            &ingress,
            &registry.url,
            &redis_url(),
            store,
            metrics.clone(),
            RateLimiter::disabled(),
            vec![sixfold_timeline::routes::routes(timeline.clone())],
            shutdown.clone(),
        )?;
        create_topics(&[(&dlq_topic(group), 1)]).await?;
        let config = ProcessorConfig {
            name: group.to_string(),
            topics: timeline.input_topics(),
            retry_delays: vec![],
            ..ProcessorConfig::default()
        };
        let context = RuntimeContext {
            kafka: kafka(),
            codec: codec.clone(),
            producer: producer.clone(),
            metrics: metrics.clone(),
        };
        tokio::spawn(run_processor(
            Arc::new(timeline.processor()),
            config,
            context,
            shutdown.clone(),
        ));
        Ok(Self {
            base,
            http: reqwest::Client::new(),
            settings,
            registry,
            redis,
            producer,
            codec,
            group: group.to_string(),
            metrics,
            shutdown,
            _dir: dir,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(KEY);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn post(&self, author: &str, content: &str) -> Result<i64> {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/v1/tweets",
                Some(json!({"author_id": author, "content": content})),
            )
            .await?;
        ensure!(status == 201, "post: {status} {body}");
        Ok(body["id"].as_i64().unwrap())
    }

    async fn follow(&self, follower: &str, followee: &str) -> Result<()> {
        self.edge(reqwest::Method::POST, follower, followee).await
    }

    async fn unfollow(&self, follower: &str, followee: &str) -> Result<()> {
        self.edge(reqwest::Method::DELETE, follower, followee).await
    }

    async fn edge(&self, method: reqwest::Method, follower: &str, followee: &str) -> Result<()> {
        let body = json!({"follower_id": follower, "followee_id": followee});
        let (status, answer) = self.call(method, "/v1/follows", Some(body)).await?;
        ensure!(status == 202, "follow: {status} {answer}");
        Ok(())
    }

    /// Deletes a tweet, waiting for the processor to have stored it first (until then the
    /// ingress does not know its author and answers 404).
    async fn delete(&self, id: i64) -> Result<()> {
        let path = format!("/v1/tweets/{id}");
        let started = std::time::Instant::now();
        loop {
            let (status, body) = self.call(reqwest::Method::DELETE, &path, None).await?;
            if status == 202 {
                return Ok(());
            }
            ensure!(
                status == 404 && started.elapsed() < PATIENCE,
                "delete: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One page of `user`'s home timeline: ids and the next cursor.
    async fn page(
        &self,
        user: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<i64>, Option<String>)> {
        let mut path = format!("/v1/timeline/{user}?limit={limit}");
        if let Some(cursor) = cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = self.call(reqwest::Method::GET, &path, None).await?;
        ensure!(status == 200, "timeline: {status} {body}");
        let ids = body["tweets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        Ok((ids, body["next_cursor"].as_str().map(str::to_string)))
    }

    /// `user`'s whole home timeline, newest first, paging by `limit`.
    async fn timeline(&self, user: &str, limit: usize) -> Result<Vec<i64>> {
        let (mut all, mut cursor) = self.page(user, limit, None).await?;
        while let Some(next) = cursor {
            let (ids, more) = self.page(user, limit, Some(&next)).await?;
            all.extend(ids);
            cursor = more;
        }
        Ok(all)
    }

    /// Waits until `user`'s home timeline is exactly `expected` (newest first).
    async fn expect_timeline(&self, user: &str, expected: &[i64]) -> Result<()> {
        let started = std::time::Instant::now();
        loop {
            let got = self.timeline(user, 100).await?;
            if got == expected {
                return Ok(());
            }
            ensure!(
                started.elapsed() < PATIENCE,
                "{user}'s timeline is {got:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn user(&self, user: &str) -> Result<Value> {
        Ok(self
            .call(reqwest::Method::GET, &format!("/v1/users/{user}"), None)
            .await?
            .1)
    }

    /// Waits until `user` has `followers` followers and the given fan-out path.
    async fn expect_followers(&self, user: &str, followers: u64, fanout: &str) -> Result<()> {
        wait_for(
            &format!("{user} has {followers} followers"),
            PATIENCE,
            || async {
                self.user(user).await.is_ok_and(|u| {
                    u["followers"].as_u64() == Some(followers) && u["fanout"] == fanout
                })
            },
        )
        .await
    }

    /// Ids in `user`'s cached home timeline in Redis (no sentinel), newest first.
    async fn cached(&self, user: &str) -> Result<Vec<i64>> {
        let key = format!("{}:{{{user}}}", self.settings.namespace);
        let members: Vec<String> = self.redis.clone().zrevrange(key, 0, -1).await?;
        Ok(members.iter().filter_map(|m| m.parse().ok()).collect())
    }

    /// Records of `topic` the processor has finished with (processed, or handed on).
    fn processed(&self, topic: &str) -> u64 {
        self.metrics
            .processing_seconds
            .with_label_values(&[&self.group, topic])
            .get_sample_count()
    }

    /// Deletes every Redis key of this feed, as if Redis had restarted empty.
    async fn flush_redis(&self) -> Result<()> {
        let mut redis = self.redis.clone();
        let keys: Vec<String> = redis.keys(format!("{}:*", self.settings.namespace)).await?;
        if !keys.is_empty() {
            redis.del::<_, ()>(keys).await?;
        }
        Ok(())
    }

    /// Produces `event` to `topic` as another system would.
    async fn produce<T: serde::Serialize>(
        &self,
        topic: &str,
        schema: &str,
        key: &str,
        event: &T,
    ) -> Result<()> {
        let payload = self
            .codec
            .encode(topic, &EventSchema::parse(schema)?, event)
            .await?;
        self.producer
            .send(Outgoing {
                topic,
                key: Some(key.as_bytes()),
                payload: Some(&payload),
                headers: &[],
            })
            .await?;
        Ok(())
    }
}

fn newest_first(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn small_authors_are_pushed_backfilled_purged_and_deleted() -> Result<()> {
    push_backfill_purge_delete(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn small_authors_are_pushed_and_deleted_on_a_redis_cluster() -> Result<()> {
    push_backfill_purge_delete(true).await
}

/// Push fan-out (direct and through `timeline.fanout`), backfill on follow, purge on
/// unfollow and removal on delete, with timelines on the single Redis or the Redis Cluster
/// (where one batch's timelines lie in different hash slots).
async fn push_backfill_purge_delete(redis_cluster: bool) -> Result<()> {
    // Batches of 2 send alice's fan-out (3 followers + herself) through timeline.fanout.
    let feed = Feed::start_on(redis_cluster, |s| s.fanout_batch = 2).await?;
    for follower in ["bob", "carol", "dave"] {
        feed.follow(follower, "alice").await?;
    }
    feed.expect_followers("alice", 3, "push").await?;
    // Bob's timeline is cached (he reads it), carol's and dave's are not.
    feed.expect_timeline("bob", &[]).await?;

    let t1 = feed.post("alice", "first").await?;
    let t2 = feed.post("alice", "second").await?;
    let both = [t2, t1];
    feed.expect_timeline("bob", &both).await?;
    assert_eq!(feed.cached("bob").await?, both, "pushed into bob's cache");
    feed.expect_timeline("carol", &both).await?;
    feed.expect_timeline("dave", &both).await?;
    feed.expect_timeline("alice", &both).await?;

    // A new follower gets alice's past tweets; one who leaves loses them.
    feed.expect_timeline("erin", &[]).await?;
    feed.follow("erin", "alice").await?;
    feed.expect_timeline("erin", &both).await?;
    feed.unfollow("bob", "alice").await?;
    feed.expect_timeline("bob", &[]).await?;
    feed.expect_followers("alice", 3, "push").await?;

    // A deleted tweet leaves every timeline and the author's tweets.
    feed.delete(t1).await?;
    for user in ["carol", "dave", "erin", "alice"] {
        feed.expect_timeline(user, &[t2]).await?;
    }
    // Reads already skip the deleted id; the REMOVE fan-out takes it out of the cache too.
    for user in ["carol", "dave", "erin", "alice"] {
        wait_for(&format!("t1 out of {user}'s cache"), PATIENCE, || async {
            feed.cached(user).await.is_ok_and(|ids| ids == [t2])
        })
        .await?;
    }
    let (_, own) = feed
        .call(reqwest::Method::GET, "/v1/users/alice/tweets", None)
        .await?;
    assert_eq!(own["tweets"].as_array().unwrap().len(), 1, "{own}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn celebrities_are_merged_on_read_and_cross_the_threshold_both_ways() -> Result<()> {
    let feed = Feed::start(|s| s.fanout_threshold = 3).await?;
    for fan in ["f1", "f2", "f3"] {
        feed.follow(fan, "star").await?;
    }
    feed.follow("f1", "pal").await?;
    feed.expect_followers("star", 3, "pull").await?;
    feed.expect_followers("pal", 1, "push").await?;
    feed.expect_timeline("f1", &[]).await?;

    // Interleave a celebrity and a small author.
    let mut posted = Vec::new();
    for i in 0..4 {
        posted.push(feed.post("pal", &format!("pal {i}")).await?);
        posted.push(feed.post("star", &format!("star {i}")).await?);
    }
    let expected = newest_first(posted.clone());
    feed.expect_timeline("f1", &expected).await?;
    // Newest first, star's tweet of each round comes before pal's.
    let star_only: Vec<i64> = expected.iter().copied().step_by(2).collect();
    let pal_only: Vec<i64> = expected.iter().copied().skip(1).step_by(2).collect();
    assert_eq!(
        feed.cached("f1").await?,
        pal_only,
        "only pal's tweets are pushed; star's are merged on read"
    );
    feed.expect_timeline("f2", &star_only).await?;
    // Pages of 3 interleave the two sources without gaps or repeats.
    assert_eq!(feed.timeline("f1", 3).await?, expected);

    // Falling below the threshold: star's tweets now come from the rebuilt timelines.
    feed.unfollow("f3", "star").await?;
    feed.expect_followers("star", 2, "push").await?;
    feed.expect_timeline("f1", &expected).await?;
    wait_for("star's tweets cached for f1", PATIENCE, || async {
        feed.cached("f1").await.is_ok_and(|ids| ids == expected)
    })
    .await?;
    let later = feed.post("star", "pushed now").await?;
    let mut with_later = vec![later];
    with_later.extend(&expected);
    feed.expect_timeline("f1", &with_later).await?;

    // And above it again: nothing is lost.
    feed.follow("f3", "star").await?;
    feed.expect_followers("star", 3, "pull").await?;
    let last = feed.post("star", "merged again").await?;
    with_later.insert(0, last);
    feed.expect_timeline("f1", &with_later).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn timelines_are_capped_and_pages_have_no_gaps_while_tweets_arrive() -> Result<()> {
    let feed = Arc::new(Feed::start(|s| s.cap = 25).await?);
    feed.follow("reader", "w1").await?;
    feed.follow("reader", "w2").await?;
    feed.expect_followers("w2", 1, "push").await?;
    feed.expect_timeline("reader", &[]).await?;
    let mut all = Vec::new();
    for i in 0..40 {
        all.push(
            feed.post(if i % 2 == 0 { "w1" } else { "w2" }, &format!("t{i}"))
                .await?,
        );
    }
    let newest_25 = newest_first(all.clone())[..25].to_vec();
    feed.expect_timeline("reader", &newest_25).await?;
    let key = format!("{}:{{reader}}", feed.settings.namespace);
    let cached: usize = feed.redis.clone().zcard(&key).await?;
    assert_eq!(cached, 26, "25 tweets and the completeness sentinel");

    // Page through while 20 more tweets arrive.
    let writer = {
        let feed = feed.clone();
        tokio::spawn(async move {
            let mut more = Vec::new();
            for i in 0..20 {
                more.push(feed.post("w1", &format!("late {i}")).await?);
            }
            anyhow::Ok(more)
        })
    };
    let (mut seen, mut cursor) = feed.page("reader", 4, None).await?;
    while let Some(next) = cursor {
        let (ids, more) = feed.page("reader", 4, Some(&next)).await?;
        seen.extend(ids);
        cursor = more;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    all.extend(writer.await??);
    // Strictly older page after page, and no tweet between the first and the last is missing.
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let (top, bottom) = (seen[0], *seen.last().unwrap());
    let span: Vec<i64> = newest_first(all)
        .into_iter()
        .filter(|id| (bottom..=top).contains(id))
        .collect();
    assert_eq!(seen, span);
    assert!(seen.len() <= 25);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn timelines_lost_from_redis_are_rebuilt_from_the_store() -> Result<()> {
    let feed = Feed::start(|_| {}).await?;
    feed.follow("amy", "ben").await?;
    feed.follow("amy", "cat").await?;
    feed.expect_followers("cat", 1, "push").await?;
    let mut ids = Vec::new();
    for (i, author) in ["ben", "cat", "amy", "ben"].iter().enumerate() {
        ids.push(feed.post(author, &format!("n{i}")).await?);
    }
    let expected = newest_first(ids);
    feed.expect_timeline("amy", &expected).await?;
    feed.flush_redis().await?;
    assert!(feed.cached("amy").await?.is_empty());
    assert_eq!(feed.timeline("amy", 2).await?, expected, "rebuilt on read");
    assert_eq!(feed.cached("amy").await?, expected, "and cached again");
    // The graph sets were lost too and are reloaded: a new tweet is pushed again.
    let newer = feed.post("cat", "after the flush").await?;
    let mut with_newer = vec![newer];
    with_newer.extend(&expected);
    feed.expect_timeline("amy", &with_newer).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn replaying_the_topics_rebuilds_identical_timelines() -> Result<()> {
    let first = Feed::start(|s| s.fanout_threshold = 3).await?;
    let users = ["u1", "u2", "u3", "u4", "u5"];
    // u1 becomes a celebrity (3 followers); the rest form a small graph.
    for (follower, followee) in [
        ("u2", "u1"),
        ("u3", "u1"),
        ("u4", "u1"),
        ("u2", "u3"),
        ("u3", "u2"),
        ("u5", "u2"),
        ("u5", "u4"),
        ("u4", "u5"),
    ] {
        first.follow(follower, followee).await?;
    }
    first.expect_followers("u1", 3, "pull").await?;
    let mut tweets = Vec::new();
    for i in 0..15 {
        tweets.push(first.post(users[i % users.len()], &format!("r{i}")).await?);
    }
    let gone = tweets[3];
    first.delete(gone).await?;
    first.unfollow("u5", "u4").await?;
    first.expect_followers("u4", 0, "push").await?;
    // What every timeline must be: the user's own tweets and their followees', minus the
    // deleted one, newest first, whichever path (push, pull, rebuild) delivered them.
    let edges = [
        ("u2", "u1"),
        ("u3", "u1"),
        ("u4", "u1"),
        ("u2", "u3"),
        ("u3", "u2"),
        ("u5", "u2"),
        ("u4", "u5"),
    ];
    let mut expected = BTreeMap::new();
    for user in users {
        let ids: Vec<i64> = tweets
            .iter()
            .enumerate()
            .filter(|&(i, &id)| {
                let author = users[i % users.len()];
                id != gone && (author == user || edges.contains(&(user, author)))
            })
            .map(|(_, &id)| id)
            .collect();
        let ids = newest_first(ids);
        first.expect_timeline(user, &ids).await?;
        expected.insert(user, ids);
    }
    let (settings, registry) = (first.settings.clone(), first.registry.clone());
    first.flush_redis().await?;
    drop(first);

    // Empty store and Redis, new consumer group: everything comes back from the topics.
    let second = Feed::start_with(settings, registry, &unique("tl-replay"), false).await?;
    second.expect_followers("u1", 3, "pull").await?;
    second.expect_followers("u4", 0, "push").await?;
    // Every record replayed (a timeline can match half-way through, before the deletion or
    // the unfollow was replayed), then each timeline exactly as computed.
    let s = &second.settings;
    wait_for("every record replayed", PATIENCE, || async {
        second.processed(&s.follow_topic) >= 9
            && second.processed(&s.posted_topic) >= 15
            && second.processed(&s.deleted_topic) >= 1
    })
    .await?;
    for user in users {
        second
            .expect_timeline(user, &expected[user])
            .await
            .context("after replay")?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn redelivered_events_change_nothing_and_bad_input_is_refused() -> Result<()> {
    let feed = Feed::start(|_| {}).await?;
    let s = feed.settings.clone();
    // The same follow and the same tweet, each produced twice (two records).
    let follow = FollowChanged {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: 1_800_000_000_000,
        follower_id: "zed".into(),
        followee_id: "yan".into(),
        action: FollowAction::Follow,
    };
    let tweet = TweetPosted {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: 1_800_000_000_000,
        tweet_id: 123_456_789,
        author_id: "yan".into(),
        content: "once".into(),
        media_urls: vec![],
    };
    use sixfold_timeline::events::{FOLLOW_CHANGED_SCHEMA, TWEET_POSTED_SCHEMA};
    for _ in 0..2 {
        feed.produce(&s.follow_topic, FOLLOW_CHANGED_SCHEMA, "yan", &follow)
            .await?;
    }
    feed.expect_followers("yan", 1, "push").await?;
    feed.expect_timeline("zed", &[]).await?;
    for _ in 0..2 {
        feed.produce(&s.posted_topic, TWEET_POSTED_SCHEMA, "yan", &tweet)
            .await?;
    }
    feed.expect_timeline("zed", &[123_456_789]).await?;
    assert_eq!(feed.user("yan").await?["followers"], 1);

    // An invalid event from another system lands in the DLQ with its reason.
    let bad = TweetPosted {
        author_id: "not a user id".into(),
        ..tweet.clone()
    };
    feed.produce(&s.posted_topic, TWEET_POSTED_SCHEMA, "x", &bad)
        .await?;
    let dead = read_records(&dlq_topic(&feed.group), 1, PATIENCE).await?;
    assert_eq!(
        header(&dead[0], H_ERROR_CLASS).as_deref(),
        Some("invalid_event")
    );

    // Bad HTTP requests get JSON 4xx.
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    for (method, path, body, status, error) in [
        (
            post.clone(),
            "/v1/tweets",
            Some(json!({"author_id": "a b", "content": "x"})),
            400,
            "invalid_user_id",
        ),
        (
            post.clone(),
            "/v1/tweets",
            Some(json!({"author_id": "a", "content": "x".repeat(281)})),
            400,
            "invalid_content",
        ),
        (
            post.clone(),
            "/v1/tweets",
            Some(json!({"author_id": "a", "content": "x", "media_urls": ["ftp://x"]})),
            400,
            "invalid_media",
        ),
        (
            post.clone(),
            "/v1/tweets",
            Some(json!({"author_id": "a", "content": "x", "extra": 1})),
            400,
            "invalid_body",
        ),
        (
            post.clone(),
            "/v1/follows",
            Some(json!({"follower_id": "a", "followee_id": "a"})),
            400,
            "self_follow",
        ),
        (
            get.clone(),
            "/v1/timeline/a?limit=0",
            None,
            400,
            "invalid_limit",
        ),
        (
            get.clone(),
            "/v1/timeline/a?limit=101",
            None,
            400,
            "invalid_limit",
        ),
        (
            get.clone(),
            "/v1/timeline/a?cursor=nope!",
            None,
            400,
            "invalid_cursor",
        ),
        (
            get.clone(),
            "/v1/timeline/a?colour=red",
            None,
            400,
            "invalid_query",
        ),
        (
            get.clone(),
            "/v1/timeline/a%20b",
            None,
            400,
            "invalid_user_id",
        ),
        (
            reqwest::Method::DELETE,
            "/v1/tweets/99",
            None,
            404,
            "not_found",
        ),
        (
            reqwest::Method::DELETE,
            "/v1/tweets/abc",
            None,
            400,
            "invalid_tweet_id",
        ),
    ] {
        let (got, answer) = feed.call(method.clone(), path, body).await?;
        assert_eq!(got.as_u16(), status, "{method} {path}: {answer}");
        assert_eq!(answer["error"], error, "{method} {path}: {answer}");
    }
    let unauthenticated = feed
        .http
        .post(format!("{}/v1/tweets", feed.base))
        .json(&json!({"author_id": "a", "content": "x"}))
        .send()
        .await?;
    assert_eq!(unauthenticated.status(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_timeline_ends_where_its_pushed_tweets_end() -> Result<()> {
    let feed = Feed::start(|s| {
        s.cap = 5;
        s.fanout_threshold = 2;
    })
    .await?;
    feed.follow("reader", "star").await?;
    feed.follow("other", "star").await?;
    feed.follow("reader", "w1").await?;
    feed.expect_followers("star", 2, "pull").await?;
    feed.expect_followers("w1", 1, "push").await?;
    feed.expect_timeline("reader", &[]).await?;
    let old_star = feed.post("star", "older than the cap").await?;
    let mut pushed = Vec::new();
    for i in 0..8 {
        pushed.push(feed.post("w1", &format!("w{i}")).await?);
    }
    let new_star = feed.post("star", "within the cap").await?;
    // The newest 5 pushed tweets, and the celebrity's tweet that is newer than the oldest of
    // them; not the celebrity's older tweet, whose pushed neighbours were trimmed away.
    let mut expected = newest_first(pushed)[..5].to_vec();
    expected.insert(0, new_star);
    feed.expect_timeline("reader", &expected).await?;
    assert!(!feed.timeline("reader", 2).await?.contains(&old_star));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_record_applied_twice_or_out_of_order_counts_once() -> Result<()> {
    use sixfold_runtime::{Processor, Record};
    let feed = Feed::start(|_| {}).await?;
    let redis = redis_conn(false).await?;
    let dir = tempfile::tempdir()?;
    let store = sqlite_store(dir.path()).await?;
    let timeline = Timeline::new(
        feed.settings.clone(),
        TimelineDeps {
            store: store.clone(),
            redis,
            producer: feed.producer.clone(),
            codec: feed.codec.clone(),
            metrics: Metrics::new(),
        },
    )?;
    let processor = timeline.processor();
    let record = |follower: &str, offset: i64| -> Result<Record> {
        let event = FollowChanged {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: 1_800_000_000_000,
            follower_id: follower.into(),
            followee_id: "idol".into(),
            action: FollowAction::Follow,
        };
        let schema =
            apache_avro::Schema::parse_str(sixfold_timeline::events::FOLLOW_CHANGED_SCHEMA)?;
        Ok(Record {
            topic: feed.settings.follow_topic.clone(),
            partition: 0,
            offset,
            key: Some(b"idol".to_vec()),
            value: apache_avro::to_value(&event)?.resolve(&schema)?,
            timestamp_ms: None,
            attempt: 1,
        })
    };
    let tables = sixfold_timeline::storage::TimelineStore::new(store, &feed.settings.namespace);
    // A crash after the count was written and before the edge: the count holds the offset.
    let mut crashed = sixfold_timeline::storage::FollowerCount {
        count: 1,
        ..Default::default()
    };
    assert!(crashed.applied.advance(0, 10));
    tables.put_follower_count("idol", &crashed).await?;
    let first = record("fan1", 10)?;
    processor.process(&first).await?; // the redelivery: writes the edge, not the count
    assert!(tables.follows("fan1", "idol").await?);
    assert_eq!(tables.follower_count("idol").await?.count, 1);
    processor.process(&first).await?; // and again: nothing changes
    // A later follow counts; a repeat of an older offset does not.
    processor.process(&record("fan2", 11)?).await?;
    processor.process(&record("fan1", 9)?).await?;
    let count = tables.follower_count("idol").await?;
    assert_eq!(count.count, 2, "{count:?}");
    Ok(())
}
