//! `sixfold replay`: the URL shortener's views (store rows and Redis keys) wiped and replayed
//! from the beginning of its topics come back identical; a replay refuses a group with live
//! members, resumes from the committed offsets without `--from`, replays nothing from a time
//! after the last record, and with `--to` stops there, leaving the rest to a resume; with
//! `--rebuild` it builds the same views under a new namespace and swaps them in.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use redis::AsyncCommands;
use sixfold::replay::{From, rebuild, replay};
use sixfold::settings::Settings;
use sixfold::{Clients, Systems};
use sixfold_runtime::codec::EventSchema;
use sixfold_runtime::failure::{dlq_topic, now_ms};
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_tests::{TestRegistry, create_topics, redis_url, unique, wait_for};
use sixfold_urls::events::{URL_CLICKED_SCHEMA, URL_CREATED_SCHEMA, UrlClicked, UrlCreated};
use sixfold_urls::link::RedirectStatus;

const PATIENCE: Duration = Duration::from_secs(60);

/// Settings for one test: its own namespace and topics, a store file in `dir`.
fn settings(prefix: &str, registry: &str, dir: &std::path::Path, db: &str) -> Result<Settings> {
    let file = dir.join(format!("{db}.yaml"));
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    std::fs::write(
        &file,
        format!(
            "registry: {{url: \"{registry}\"}}\n\
             redis: {{url: \"{redis}\"}}\n\
             store: {{sqlite_path: {store}}}\n\
             topics: {{file: {root}/topics.yaml}}\n\
             urls: {{namespace: {prefix}, created_topic: {prefix}.created, clicked_topic: {prefix}.clicked}}\n\
             timeline: {{namespace: {prefix}-tl, posted_topic: {prefix}.posted, deleted_topic: {prefix}.deleted, follow_topic: {prefix}.follow, fanout_topic: {prefix}.fanout}}\n\
             chat: {{token_secret: replay-test-chat-token-secret-0123456789, media_dir: {media}, namespace: {prefix}-ch, sent_topic: {prefix}.sent, receipt_topic: {prefix}.receipt, fanout_topic: {prefix}.chatfanout, membership_topic: {prefix}.membership}}\n\
             notify: {{templates_dir: {root}/templates, namespace: {prefix}-nt, requested_topic: {prefix}.requested, push_topic: {prefix}.push, email_topic: {prefix}.email, sms_topic: {prefix}.sms, status_topic: {prefix}.status}}\n\
             crawler: {{content_dir: {crawl}, namespace: {prefix}-cr, discovered_topic: {prefix}.discovered, fetched_topic: {prefix}.fetched}}\n",
            redis = redis_url(),
            store = dir.join(format!("{db}.db")).display(),
            media = dir.join("media").display(),
            crawl = dir.join("crawl").display(),
        ),
    )?;
    Ok(sixfold_runtime::settings::load(Some(&file))?)
}

/// Every store row and Redis value under `prefix`, as text.
async fn views(settings: &Settings, prefix: &str) -> Result<BTreeMap<String, String>> {
    let mut views = BTreeMap::new();
    let db = rusqlite::Connection::open(&settings.store.sqlite_path)?;
    let mut rows = db.prepare(
        "SELECT namespace, key, value FROM kv WHERE namespace = ?1 OR namespace LIKE ?1 || '.%' \
         ORDER BY namespace, key",
    )?;
    let found = rows.query_map([prefix], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Vec<u8>>(2)?,
        ))
    })?;
    for row in found {
        let (namespace, key, value) = row?;
        views.insert(
            format!("store {namespace} {key}"),
            String::from_utf8_lossy(&value).into_owned(),
        );
    }
    let mut redis = redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await?;
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut redis).await?;
        let value = match kind.as_str() {
            "string" => redis.get::<_, String>(&key).await?,
            "hash" => format!(
                "{:?}",
                redis.hgetall::<_, BTreeMap<String, String>>(&key).await?
            ),
            "set" => {
                let mut members: Vec<String> = redis.smembers(&key).await?;
                members.sort();
                format!("{members:?}")
            }
            "zset" => format!(
                "{:?}",
                redis
                    .zrange_withscores::<_, Vec<(String, f64)>>(&key, 0, -1)
                    .await?
            ),
            other => format!("<{other}>"),
        };
        views.insert(format!("redis {key}"), value);
    }
    Ok(views)
}

/// `views` without the keys containing one of `ignore` (state that is not a view).
fn without(views: BTreeMap<String, String>, ignore: &[&str]) -> BTreeMap<String, String> {
    views
        .into_iter()
        .filter(|(key, _)| !ignore.iter().any(|part| key.contains(part)))
        .collect()
}

/// Fails, naming the keys that differ, unless `after` equals `before`.
fn ensure_same(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) -> Result<()> {
    let differ: Vec<_> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    ensure!(
        differ.is_empty(),
        "views differ {what}: {differ:?}\n{before:?}\n{after:?}"
    );
    Ok(())
}

async fn wipe_redis(prefix: &str) -> Result<()> {
    let mut redis = redis::Client::open(redis_url())?
        .get_multiplexed_async_connection()
        .await?;
    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await?;
    if !keys.is_empty() {
        redis.del::<_, ()>(keys).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_rebuilds_wiped_views_identically_and_resumes() -> Result<()> {
    let prefix = unique("replay");
    let dir = tempfile::tempdir()?;
    let registry = TestRegistry::start().await?;
    let first = settings(&prefix, &registry.url, dir.path(), "first")?;
    create_topics(&[
        (&first.urls.created_topic, 2),
        (&first.urls.clicked_topic, 2),
        // The real DLQ name of the processor `urls`: as topics.yaml makes it (4 partitions), since
        // the catalog test applies topics.yaml on the same broker.
        (&dlq_topic("urls"), 4),
    ])
    .await?;
    let clients = Clients::connect(&first, Metrics::new()).await?;
    let created_schema = EventSchema::parse(URL_CREATED_SCHEMA)?;
    let clicked_schema = EventSchema::parse(URL_CLICKED_SCHEMA)?;
    let at = now_ms() - 3_600_000;
    for i in 0..12 {
        let code = format!("rp{i}-link");
        let created = UrlCreated {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: at + i,
            short_code: code.clone(),
            long_url: format!("https://example.com/{i}"),
            custom_alias: true,
            redirect: RedirectStatus::Found,
            expires_at: None,
            created_by: Some("replay-test".into()),
        };
        let topic = &first.urls.created_topic;
        clients
            .producer
            .send_event(&clients.codec, topic, &created_schema, &code, &created)
            .await?;
        for click in 0..(i % 3) {
            let clicked = UrlClicked {
                event_id: uuid::Uuid::new_v4().to_string(),
                occurred_at: at + 1000 + click,
                short_code: code.clone(),
                referrer: None,
                user_agent: Some("replay-test".into()),
                ip: None,
                country: None,
            };
            let topic = &first.urls.clicked_topic;
            clients
                .producer
                .send_event(&clients.codec, topic, &clicked_schema, &code, &clicked)
                .await?;
        }
    }
    let stop = CancellationToken::new();
    let systems = Systems::new(&first, &clients, stop.clone())?;

    // The first pass builds the views; while a processor of the group runs, replay refuses.
    let running = {
        let (settings, clients, systems) = (&first, &clients, &systems);
        let token = stop.child_token();
        let processor =
            sixfold::run_processor_only(settings, clients, systems, "urls", token.clone());
        tokio::pin!(processor);
        let applied = || async {
            views(settings, &prefix).await.is_ok_and(|v| {
                let store = |part: &str| {
                    v.keys()
                        .filter(|k| k.starts_with("store ") && k.contains(part))
                        .count()
                };
                store(".clicks") >= 8 && store("rp") >= 12
            })
        };
        let refused = tokio::select! {
            result = &mut processor => anyhow::bail!("the processor stopped: {result:?}"),
            refused = async {
                // Once the views are built, the group certainly has its member.
                wait_for("every link and click applied", PATIENCE, applied).await?;
                anyhow::Ok(
                    replay(settings, clients, systems, "urls", Some(From::Earliest), None, false, &stop)
                        .await,
                )
            } => refused?,
        };
        let error = refused.expect_err("a replay while the group has a member");
        // Refused: on Apache Kafka because the group has a member; on the local broker, which
        // cannot describe a group with members (docs/broker.md), because it cannot tell.
        let text = error.to_string();
        ensure!(
            text.contains("has 1 live members") || text.contains("cannot tell whether group urls"),
            "{error:#}"
        );
        token.cancel();
        processor.await
    };
    running?;
    let before = views(&first, &prefix).await?;
    let in_redis = before.keys().filter(|k| k.starts_with("redis ")).count();
    println!(
        "views: {} store rows, {in_redis} Redis keys",
        before.len() - in_redis
    );
    ensure!(in_redis >= 12, "the cache holds every link: {before:?}");

    // Wiped: a new, empty store file, and no Redis keys. The group is stopped now.
    wipe_redis(&prefix).await?;
    let second = settings(&prefix, &registry.url, dir.path(), "second")?;
    let clients = Clients::connect(&second, Metrics::new()).await?;
    let systems = Systems::new(&second, &clients, stop.clone())?;
    ensure!(views(&second, &prefix).await?.is_empty(), "wiped");
    let report = replay(
        &second,
        &clients,
        &systems,
        "urls",
        Some(From::Earliest),
        None,
        true,
        &stop,
    )
    .await
    .context("replay from the start")?;
    ensure!(report.records == 12 + 12, "replayed {}", report.records);
    let after = views(&second, &prefix).await?;
    ensure_same(&before, &after, "after the replay")?;

    // Without --from it resumes where the group is: at the end, nothing to do; from a time
    // after the last record, nothing either.
    let resumed = replay(&second, &clients, &systems, "urls", None, None, true, &stop).await?;
    ensure!(resumed.records == 0, "resumed {}", resumed.records);
    let later = replay(
        &second,
        &clients,
        &systems,
        "urls",
        Some(From::Time(now_ms() + 60_000)),
        None,
        true,
        &stop,
    )
    .await?;
    ensure!(later.records == 0, "from the future {}", later.records);

    // --to: wiped again and replayed up to the start of the click topic (every link, no
    // click); the records past the stop stay unread, and a plain resume applies them.
    wipe_redis(&prefix).await?;
    let third = settings(&prefix, &registry.url, dir.path(), "third")?;
    let clients = Clients::connect(&third, Metrics::new()).await?;
    let systems = Systems::new(&third, &clients, stop.clone())?;
    let clicked = &third.urls.clicked_topic;
    let no_clicks = From::Offsets([((clicked.clone(), 0), 0), ((clicked.clone(), 1), 0)].into());
    let links = replay(
        &third,
        &clients,
        &systems,
        "urls",
        Some(From::Earliest),
        Some(no_clicks),
        true,
        &stop,
    )
    .await
    .context("replay up to the clicks")?;
    ensure!(
        links.records == 12,
        "replayed {} up to the clicks",
        links.records
    );
    let partial = views(&third, &prefix).await?;
    let count = |views: &BTreeMap<String, String>, part: &str| {
        views
            .keys()
            .filter(|k| k.starts_with("store ") && k.contains(part))
            .count()
    };
    ensure!(
        count(&partial, ".clicks") == 0 && count(&partial, "rp") >= 12,
        "links without clicks: {partial:?}"
    );
    let rest = replay(&third, &clients, &systems, "urls", None, None, true, &stop).await?;
    ensure!(rest.records == 12, "resumed {} clicks", rest.records);
    let resumed = views(&third, &prefix).await?;
    ensure_same(&before, &resumed, "after --to and a resume")?;

    // --rebuild: fresh views under a new namespace, built by a group of their own, then
    // swapped in: the same as the live ones, and a processor started afterwards writes there.
    let report = rebuild(&third, "urls", None, true, &stop)
        .await
        .context("rebuild")?;
    ensure!(
        report.old_namespace == prefix && report.new_namespace.starts_with(&format!("{prefix}-r")),
        "{report:?}"
    );
    ensure!(
        report.records == 24,
        "rebuilt from {} records",
        report.records
    );
    let strip = |views: BTreeMap<String, String>, namespace: &str| -> BTreeMap<String, String> {
        views
            .into_iter()
            .map(|(key, value)| (key.replacen(namespace, "<ns>", 1), value))
            .collect()
    };
    let live = strip(views(&third, &prefix).await?, &prefix);
    let rebuilt = strip(
        views(&third, &report.new_namespace).await?,
        &report.new_namespace,
    );
    ensure_same(&live, &rebuilt, "after the rebuild")?;
    ensure!(live.len() >= 24, "the URL shortener's views: {live:?}");
    let active = sixfold::views::active_settings(&third, clients.store.as_ref()).await?;
    ensure!(
        active.urls.namespace == report.new_namespace,
        "in use: {}",
        active.urls.namespace
    );
    // The code allocator's counter and ledger are state, not a view: they stay where they were,
    // or the first codes ever issued would be issued again.
    ensure!(
        active.urls.code_namespace.as_deref() == Some(prefix.as_str()),
        "codes allocated under {:?}",
        active.urls.code_namespace
    );
    let after = UrlCreated {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now_ms(),
        short_code: "rp-after-link".into(),
        long_url: "https://example.com/after".into(),
        custom_alias: true,
        redirect: RedirectStatus::Found,
        expires_at: None,
        created_by: Some("replay-test".into()),
    };
    clients
        .producer
        .send_event(
            &clients.codec,
            &third.urls.created_topic,
            &created_schema,
            "rp-after-link",
            &after,
        )
        .await?;
    let swapped = Clients::connect(&active, Metrics::new()).await?;
    let systems = Systems::new(&active, &swapped, stop.clone())?;
    let token = stop.child_token();
    let processor = sixfold::run_processor_only(&active, &swapped, &systems, "urls", token.clone());
    let landed = async {
        wait_for("the new link in the rebuilt views", PATIENCE, || async {
            views(&active, &report.new_namespace)
                .await
                .is_ok_and(|v| v.keys().any(|k| k.contains("rp-after-link")))
        })
        .await
    };
    tokio::select! {
        result = processor => anyhow::bail!("the processor stopped: {result:?}"),
        landed = landed => landed?,
    }
    token.cancel();
    ensure!(
        !views(&third, &prefix)
            .await?
            .keys()
            .any(|k| k.contains("rp-after-link")),
        "the old views got the new link"
    );

    ensure!(
        "earliest".parse::<From>()? == From::Earliest
            && "2026-11-27T10:00:00Z".parse::<From>()? == From::Time(1_795_773_600_000)
            && "nonsense".parse::<From>().is_err(),
        "--from parsing"
    );
    Ok(())
}

/// Rebuilds `processor` beside its views with `sixfold replay --rebuild` and checks that the
/// rebuilt views, under the new namespace, equal `before` (its views under `namespace`) but for
/// keys containing one of `ignore`: state, which stays under `namespace` and is used from there.
async fn rebuild_and_compare(
    settings: &Settings,
    processor: &str,
    namespace: &str,
    ignore: &[&str],
    before: &BTreeMap<String, String>,
) -> Result<()> {
    let stop = CancellationToken::new();
    let report = rebuild(settings, processor, None, true, &stop)
        .await
        .with_context(|| format!("rebuild {processor}"))?;
    ensure!(
        report.old_namespace == namespace,
        "{}",
        report.old_namespace
    );
    let new = &report.new_namespace;
    let rebuilt = views(settings, new)
        .await?
        .into_iter()
        .map(|(key, value)| (key.replacen(new.as_str(), namespace, 1), value))
        .collect();
    ensure_same(
        &without(before.clone(), ignore),
        &without(rebuilt, ignore),
        "after the rebuild",
    )?;
    // Processes started now use the new views, and the state where it was.
    let clients = Clients::connect(settings, Metrics::new()).await?;
    let active = sixfold::views::active_settings(settings, clients.store.as_ref()).await?;
    let (views_at, state_at) = match processor {
        "chat" => (&active.chat.namespace, active.chat.state_namespace.clone()),
        "notify" => (
            &active.notify.namespace,
            active.notify.state_namespace.clone(),
        ),
        other => anyhow::bail!("no state namespace known for {other}"),
    };
    ensure!(
        views_at == new && state_at.as_deref() == Some(namespace),
        "active: views {views_at}, state {state_at:?}"
    );
    Ok(())
}

/// Where a wipe-and-replay round keeps its data: the test's prefix, registry and directory.
struct Round<'a> {
    prefix: &'a str,
    registry: &'a str,
    dir: &'a std::path::Path,
}

impl Round<'_> {
    /// Applies the `records` already produced to `topics` with `processor` under `first`'s
    /// settings, checks the views with `check`, wipes them (a new store file, the namespace's
    /// Redis keys), replays from the start with `sixfold replay` and compares: identical.
    async fn build_wipe_replay_compare(
        &self,
        (first, clients): (&Settings, &Clients),
        processor: &str,
        namespace: &str,
        topics: &[&String],
        records: u64,
        check: impl Fn(&BTreeMap<String, String>) -> Result<()>,
    ) -> Result<()> {
        let stop = CancellationToken::new();
        let systems = Systems::new(first, clients, stop.clone())?;
        let handled = || -> u64 {
            topics
                .iter()
                .map(|topic| {
                    clients
                        .metrics
                        .processing_seconds
                        .with_label_values(&[processor, topic.as_str()])
                        .get_sample_count()
                })
                .sum()
        };
        let token = stop.child_token();
        let running =
            sixfold::run_processor_only(first, clients, &systems, processor, token.clone());
        tokio::select! {
            result = running => anyhow::bail!("the processor stopped: {result:?}"),
            built = wait_for("every record applied", PATIENCE, || async { handled() >= records }) => built?,
        }
        token.cancel();
        let before = views(first, namespace).await?;
        check(&before)?;
        self.wipe_replay_compare(processor, namespace, records, &[], before)
            .await
    }

    /// Wipes `processor`'s views (a new store file, the namespace's Redis keys), replays from
    /// the start with `sixfold replay` and compares with `before`, the views as they were:
    /// identical, but for keys containing one of `ignore` (state that is not a view).
    async fn wipe_replay_compare(
        &self,
        processor: &str,
        namespace: &str,
        records: u64,
        ignore: &[&str],
        before: BTreeMap<String, String>,
    ) -> Result<()> {
        let stop = CancellationToken::new();
        wipe_redis(namespace).await?;
        let second = settings(self.prefix, self.registry, self.dir, "second")?;
        let clients = Clients::connect(&second, Metrics::new()).await?;
        let systems = Systems::new(&second, &clients, stop.clone())?;
        ensure!(views(&second, namespace).await?.is_empty(), "wiped");
        let report = replay(
            &second,
            &clients,
            &systems,
            processor,
            Some(From::Earliest),
            None,
            true,
            &stop,
        )
        .await
        .with_context(|| format!("replay {processor}"))?;
        ensure!(
            report.records == records as i64,
            "replayed {}",
            report.records
        );
        let after = without(views(&second, namespace).await?, ignore);
        ensure_same(&without(before, ignore), &after, "after the replay")?;
        Ok(())
    }
}

/// The timeline's views (store rows and Redis keys) wiped and replayed with `sixfold replay`
/// come back identical: follows, an unfollow and tweets of two authors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeline_views_wiped_and_replayed_come_back_identical() -> Result<()> {
    use sixfold_timeline::events::{
        FOLLOW_CHANGED_SCHEMA, FollowAction, FollowChanged, TWEET_POSTED_SCHEMA, TweetPosted,
    };
    let prefix = unique("replay");
    let dir = tempfile::tempdir()?;
    let registry = TestRegistry::start().await?;
    let first = settings(&prefix, &registry.url, dir.path(), "first")?;
    let t = &first.timeline;
    create_topics(&[
        (&t.posted_topic, 2),
        (&t.deleted_topic, 2),
        (&t.follow_topic, 2),
        (&t.fanout_topic, 2),
        (&dlq_topic("timeline"), 4),
    ])
    .await?;
    let clients = Clients::connect(&first, Metrics::new()).await?;
    let follow_schema = EventSchema::parse(FOLLOW_CHANGED_SCHEMA)?;
    let posted_schema = EventSchema::parse(TWEET_POSTED_SCHEMA)?;
    let at = now_ms() - 3_600_000;
    let follows = [
        ("bo", "al", FollowAction::Follow),
        ("cy", "al", FollowAction::Follow),
        ("cy", "bo", FollowAction::Follow),
        ("al", "bo", FollowAction::Follow),
        ("cy", "bo", FollowAction::Unfollow),
    ];
    for (i, (follower, followee, action)) in follows.into_iter().enumerate() {
        let event = FollowChanged {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: at + i as i64,
            follower_id: follower.into(),
            followee_id: followee.into(),
            action,
        };
        clients
            .producer
            .send_event(
                &clients.codec,
                &t.follow_topic,
                &follow_schema,
                followee,
                &event,
            )
            .await?;
    }
    for i in 0..8_i64 {
        let author = if i % 2 == 0 { "al" } else { "bo" };
        let event = TweetPosted {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: at + 100 + i,
            tweet_id: 900_000 + i,
            author_id: author.into(),
            content: format!("tweet {i}"),
            media_urls: vec![],
        };
        clients
            .producer
            .send_event(
                &clients.codec,
                &t.posted_topic,
                &posted_schema,
                author,
                &event,
            )
            .await?;
    }
    let records = (follows.len() + 8) as u64;
    let round = Round {
        prefix: &prefix,
        registry: &registry.url,
        dir: dir.path(),
    };
    round
        .build_wipe_replay_compare(
            (&first, &clients),
            "timeline",
            &first.timeline.namespace,
            &[&t.follow_topic, &t.posted_topic],
            records,
            |before| {
                ensure!(before.len() >= 8, "the timeline's views: {before:?}");
                Ok(())
            },
        )
        .await
}

/// The crawler's frontier and page records wiped and replayed with `sixfold replay` come back
/// identical: every result marks its URL done and takes it off the queue, whatever order the
/// discoveries and results come back in, so nothing fetched is fetched again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crawler_views_wiped_and_replayed_come_back_identical() -> Result<()> {
    use sixfold_crawler::events::{
        CRAWL_DISCOVERED_SCHEMA, CRAWL_FETCHED_SCHEMA, CrawlDiscovered, CrawlFetched,
        DiscoverySource, FetchOutcome,
    };
    let prefix = unique("replay");
    let dir = tempfile::tempdir()?;
    let registry = TestRegistry::start().await?;
    let first = settings(&prefix, &registry.url, dir.path(), "first")?;
    let c = &first.crawler;
    create_topics(&[
        (&c.discovered_topic, 2),
        (&c.fetched_topic, 2),
        (&dlq_topic("crawler"), 4),
    ])
    .await?;
    let clients = Clients::connect(&first, Metrics::new()).await?;
    let discovered_schema = EventSchema::parse(CRAWL_DISCOVERED_SCHEMA)?;
    let fetched_schema = EventSchema::parse(CRAWL_FETCHED_SCHEMA)?;
    let at = now_ms() - 3_600_000;
    let host = "replay.example";
    for i in 0..6_i64 {
        let event = CrawlDiscovered {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: at + i,
            url: format!("http://{host}/p/{i}"),
            host: host.into(),
            crawl_id: "replay-crawl".into(),
            depth: i32::from(i > 0),
            priority: 0,
            source: if i == 0 {
                DiscoverySource::Seed
            } else {
                DiscoverySource::Link
            },
            discovered_from: (i > 0).then(|| format!("http://{host}/p/0")),
            max_depth: Some(3),
            allowed_domains: vec![],
        };
        clients
            .producer
            .send_event(
                &clients.codec,
                &c.discovered_topic,
                &discovered_schema,
                host,
                &event,
            )
            .await?;
    }
    // The first three were fetched.
    for i in 0..3_i64 {
        let event = CrawlFetched {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: at + 100 + i,
            url: format!("http://{host}/p/{i}"),
            host: host.into(),
            crawl_id: "replay-crawl".into(),
            depth: i32::from(i > 0),
            outcome: FetchOutcome::Fetched,
            status_code: Some(200),
            final_url: None,
            content_type: Some("text/html".into()),
            content_hash: Some(format!("{i:064x}")),
            content_location: Some(format!("pages/{i:02}/{i:064x}")),
            content_length: Some(1000 + i),
            links_count: 5,
            fetched_at: at + 100 + i,
            ttfb_ms: Some(3),
            error: None,
        };
        clients
            .producer
            .send_event(
                &clients.codec,
                &c.fetched_topic,
                &fetched_schema,
                host,
                &event,
            )
            .await?;
    }
    let round = Round {
        prefix: &prefix,
        registry: &registry.url,
        dir: dir.path(),
    };
    round
        .build_wipe_replay_compare(
            (&first, &clients),
            "crawler",
            &first.crawler.namespace,
            &[&c.discovered_topic, &c.fetched_topic],
            9,
            |before| {
                let queued = before.keys().filter(|k| k.contains(".queue")).count();
                ensure!(queued == 3, "the three unfetched pages queued: {before:?}");
                Ok(())
            },
        )
        .await
}

/// Chat's views wiped and replayed with `sixfold replay` come back identical: a group and a
/// 1:1 conversation, messages, a member added who then posts, a member removed whose next
/// message is refused, and receipts (the readers' and the senders' own). The replay reads the
/// three topics in timestamp order; read side by side, a message can come before its
/// conversation or its sender's membership and be refused. The offline inbox is delivery
/// state, not a view: the replay neither wipes nor writes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chat_views_wiped_and_replayed_come_back_identical() -> Result<()> {
    use sixfold_chat::conversation::{direct_conversation_id, new_group_id};
    use sixfold_chat::events::{
        AvroContentType, AvroReceiptKind, CHAT_MEMBERSHIP_SCHEMA, CHAT_RECEIPT_SCHEMA,
        CHAT_SENT_SCHEMA, ChatMembership, ChatReceipt, ChatSent, MembershipAction,
    };
    let prefix = unique("replay");
    let dir = tempfile::tempdir()?;
    let registry = TestRegistry::start().await?;
    let first = settings(&prefix, &registry.url, dir.path(), "first")?;
    let c = first.chat.clone();
    create_topics(&[
        (&c.membership_topic, 2),
        (&c.sent_topic, 2),
        (&c.receipt_topic, 2),
        (&c.fanout_topic, 2),
        (&dlq_topic("chat"), 4),
    ])
    .await?;
    let clients = Clients::connect(&first, Metrics::new()).await?;
    let stop = CancellationToken::new();
    let systems = Systems::new(&first, &clients, stop.clone())?;
    let store = systems.chat.store().clone();
    let schemas = (
        EventSchema::parse(CHAT_MEMBERSHIP_SCHEMA)?,
        EventSchema::parse(CHAT_SENT_SCHEMA)?,
        EventSchema::parse(CHAT_RECEIPT_SCHEMA)?,
    );
    let group = new_group_id();
    let direct = direct_conversation_id("al", "bo")?;
    let membership = |conv: &str, action, actor: &str, users: &[&str]| ChatMembership {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now_ms(),
        conversation_id: conv.to_owned(),
        action,
        actor_id: actor.to_owned(),
        user_ids: users.iter().map(|u| u.to_string()).collect(),
        role: None,
        name: (conv == group).then(|| "replayers".to_owned()),
    };
    let change = |event: ChatMembership| {
        let (clients, schema, topic) = (&clients, &schemas.0, &c.membership_topic);
        async move {
            let key = event.conversation_id.clone();
            clients
                .producer
                .send_event(&clients.codec, topic, schema, &key, &event)
                .await
        }
    };
    let mut sent = 0;
    let mut send = |conv: &str, sender: &str| {
        sent += 1;
        let event = ChatSent {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: now_ms(),
            conversation_id: conv.to_owned(),
            sender_id: sender.to_owned(),
            client_msg_id: format!("m{sent}"),
            content: format!("message {sent} from {sender}"),
            content_type: AvroContentType::Text,
            media: None,
            gateway_id: None,
        };
        let (clients, schema, topic) = (&clients, &schemas.1, &c.sent_topic);
        async move {
            clients
                .producer
                .send_event(
                    &clients.codec,
                    topic,
                    schema,
                    &event.conversation_id,
                    &event,
                )
                .await
        }
    };
    let stored = |conv: String, seq: u64| {
        let store = store.clone();
        async move { store.last_seq(&conv).await.is_ok_and(|last| last >= seq) }
    };
    let members_are = |conv: String, expected: &'static [&'static str]| {
        let store = store.clone();
        async move {
            let mut members: Vec<String> = match store.membership(&conv, 500).await {
                Ok(Some(m)) => m.user_ids().map(str::to_owned).collect(),
                _ => return false,
            };
            members.sort();
            members == expected
        }
    };

    // 4 membership changes, 7 messages (6 stored, each with its sender's read receipt) and 2
    // receipts of readers.
    let records = 4 + 7 + 6 + 2;
    let topics = [&c.membership_topic, &c.sent_topic, &c.receipt_topic];
    let handled = || -> u64 {
        topics
            .iter()
            .map(|topic| {
                clients
                    .metrics
                    .processing_seconds
                    .with_label_values(&["chat", topic.as_str()])
                    .get_sample_count()
            })
            .sum()
    };
    // The events come as the ingress would produce them: each after the one it depends on
    // was stored (a membership change is answered once stored; a client sends to a
    // conversation it has, and reads what it was sent).
    let scenario = async {
        change(membership(
            &group,
            MembershipAction::Created,
            "al",
            &["bo", "cy"],
        ))
        .await?;
        change(membership(
            &direct,
            MembershipAction::Created,
            "al",
            &["bo"],
        ))
        .await?;
        wait_for("the conversations", PATIENCE, || {
            members_are(group.clone(), &["al", "bo", "cy"])
        })
        .await?;
        wait_for("the 1:1", PATIENCE, || {
            members_are(direct.clone(), &["al", "bo"])
        })
        .await?;
        for (conv, sender) in [
            (&group, "al"),
            (&group, "bo"),
            (&group, "al"),
            (&direct, "bo"),
        ] {
            send(conv, sender).await?;
        }
        wait_for("the first messages", PATIENCE, || stored(group.clone(), 3)).await?;
        wait_for("the 1:1 message", PATIENCE, || stored(direct.clone(), 1)).await?;
        change(membership(&group, MembershipAction::Added, "al", &["dee"])).await?;
        wait_for("dee added", PATIENCE, || {
            members_are(group.clone(), &["al", "bo", "cy", "dee"])
        })
        .await?;
        send(&group, "dee").await?;
        wait_for("dee's message", PATIENCE, || stored(group.clone(), 4)).await?;
        change(membership(&group, MembershipAction::Removed, "al", &["cy"])).await?;
        wait_for("cy removed", PATIENCE, || {
            members_are(group.clone(), &["al", "bo", "dee"])
        })
        .await?;
        // No longer a member: refused (to the DLQ), as it is again in the replay.
        send(&group, "cy").await?;
        send(&group, "bo").await?;
        wait_for("bo's last message", PATIENCE, || stored(group.clone(), 5)).await?;
        for (user, kind, up_to) in [
            ("dee", AvroReceiptKind::Read, 5),
            ("al", AvroReceiptKind::Delivered, 1),
        ] {
            let conv = if user == "dee" { &group } else { &direct };
            let event = ChatReceipt {
                event_id: uuid::Uuid::new_v4().to_string(),
                occurred_at: now_ms(),
                conversation_id: conv.clone(),
                user_id: user.to_owned(),
                kind,
                up_to_seq: up_to,
            };
            clients
                .producer
                .send_event(&clients.codec, &c.receipt_topic, &schemas.2, conv, &event)
                .await?;
        }
        wait_for("every record applied", PATIENCE, || async {
            handled() >= records
        })
        .await?;
        ensure!(
            store.positions(&group, "dee").await?.read_up_to == 5
                && store.positions(&direct, "al").await?.delivered_up_to == 1,
            "the receipts applied"
        );
        Ok::<(), anyhow::Error>(())
    };
    let token = stop.child_token();
    let running = sixfold::run_processor_only(&first, &clients, &systems, "chat", token.clone());
    tokio::select! {
        result = running => anyhow::bail!("the processor stopped: {result:?}"),
        done = scenario => done?,
    }
    token.cancel();

    let namespace = &c.namespace;
    let before = views(&first, namespace).await?;
    ensure!(
        before.keys().filter(|k| k.contains(".messages:")).count() == 6
            && before.keys().any(|k| k.contains(".inbox:")),
        "6 messages stored and inbox entries for the offline: {before:?}"
    );
    let round = Round {
        prefix: &prefix,
        registry: &registry.url,
        dir: dir.path(),
    };
    let state = [".inbox:", ".media"];
    // The replay delivers nothing: no sender receipts, no fan-out items.
    let produced = || -> Result<i64> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let client: BaseConsumer = first.kafka.client_config().create()?;
        let mut total = 0;
        for topic in [&c.receipt_topic, &c.fanout_topic] {
            for partition in 0..2 {
                total += client.fetch_watermarks(topic, partition, PATIENCE)?.1;
            }
        }
        Ok(total)
    };
    let produced_before = produced()?;
    round
        .wipe_replay_compare("chat", namespace, records, &state, before.clone())
        .await?;
    ensure!(
        produced()? == produced_before,
        "the replay produced records"
    );
    // Beside the live views: rebuilt under a new namespace, the inbox left where it is.
    rebuild_and_compare(&first, "chat", namespace, &state, &before).await
}

/// The notification service's views (dedup records, held sends, sent markers) wiped and
/// replayed come back identical, rebuilt from `notify.status` without deciding or sending
/// anything again: a sent email, a duplicate, a send held for an hour, one held for two
/// seconds and released, one dropped by preference and one without an address. Replaying the
/// email worker alone rebuilds its sent markers. Preferences and contacts are the service's own
/// data, written through its API, and are not views.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notify_views_wiped_and_replayed_from_their_statuses_come_back_identical() -> Result<()> {
    use sixfold_notify::events::{AvroChannel, NOTIFY_REQUESTED_SCHEMA, NotifyRequested, Priority};
    use sixfold_notify::preferences::{Contact, Preferences};
    use sixfold_tests::standins::smtp::{SmtpConfig, SmtpStandIn};
    let prefix = unique("replay");
    let dir = tempfile::tempdir()?;
    let registry = TestRegistry::start().await?;
    let smtp = SmtpStandIn::start(SmtpConfig::default()).await?;
    let mut first = settings(&prefix, &registry.url, dir.path(), "first")?;
    first.notify.email = Some(sixfold_notify::channels::email::EmailSettings {
        host: "127.0.0.1".into(),
        port: smtp.address().port(),
        ..Default::default()
    });
    let n = first.notify.clone();
    create_topics(&[
        (&n.requested_topic, 2),
        (&n.push_topic, 1),
        (&n.email_topic, 1),
        (&n.sms_topic, 1),
        (&n.status_topic, 2),
        (&dlq_topic("notify"), 4),
    ])
    .await?;
    let clients = Clients::connect(&first, Metrics::new()).await?;
    let stop = CancellationToken::new();
    let systems = Systems::new(&first, &clients, stop.clone())?;
    let store = systems.notify.store().clone();
    store
        .put_contact(
            "ann",
            &Contact {
                email: Some("ann@example.test".into()),
                phone: None,
            },
        )
        .await?;
    store
        .put_contact(
            "bob",
            &Contact {
                email: Some("bob@example.test".into()),
                phone: None,
            },
        )
        .await?;
    store
        .put_preferences(
            "bob",
            &Preferences {
                email: false,
                ..Preferences::default()
            },
        )
        .await?;
    let schema = EventSchema::parse(NOTIFY_REQUESTED_SCHEMA)?;
    let request = |id: &str, user: &str, send_at: Option<i64>| NotifyRequested {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: now_ms(),
        notification_id: id.to_owned(),
        user_id: user.to_owned(),
        template_id: "welcome".into(),
        channels: vec![AvroChannel::Email],
        data: [("name".to_owned(), user.to_owned())].into(),
        priority: Priority::Normal,
        send_at,
        locale: None,
    };
    let requests = [
        request("n1", "ann", None),
        request("n1", "ann", None),
        request("n2", "ann", Some(now_ms() + 3_600_000)),
        request("n3", "bob", None),
        request("n4", "cat", None),
        request("n5", "ann", Some(now_ms() + 2_000)),
    ];
    for event in &requests {
        clients
            .producer
            .send_event(
                &clients.codec,
                &n.requested_topic,
                &schema,
                &event.user_id,
                event,
            )
            .await?;
    }
    let processor = sixfold::run_processor_with(
        &first,
        &clients,
        &systems,
        "notify",
        sixfold::RunOptions {
            side_tasks: true,
            ..Default::default()
        },
        stop.child_token(),
    );
    let worker = sixfold::run_processor_only(
        &first,
        &clients,
        &systems,
        "notify-email",
        stop.child_token(),
    );
    let sent = || async {
        store.is_sent("n1", "email", "-").await.unwrap_or(false)
            && store.is_sent("n5", "email", "-").await.unwrap_or(false)
    };
    tokio::select! {
        result = processor => anyhow::bail!("notify stopped: {result:?}"),
        result = worker => anyhow::bail!("the email worker stopped: {result:?}"),
        done = wait_for("n1 and n5 (once released) sent", PATIENCE, sent) => done?,
    }
    stop.cancel();
    ensure!(
        smtp.accepted().len() == 2,
        "two mails: {:?}",
        smtp.accepted().len()
    );

    // Statuses: n1 QUEUED, SENT, DUPLICATE; n2 DEFERRED; n3 DROPPED; n4 FAILED; n5 DEFERRED,
    // QUEUED, SENT.
    let statuses = 9;
    let namespace = &n.namespace;
    let ignore = [".user:", ".devices:", ".purge"];
    let before = without(views(&first, namespace).await?, &ignore);
    let count = |part: &str| before.keys().filter(|k| k.contains(part)).count();
    ensure!(
        count(".ids:") == 5 && count(".sent:") == 2 && count(".scheduled/") == 1,
        "five records, two sent markers, one held send: {before:?}"
    );

    let replayed = |db: &'static str, processor: &'static str| {
        let (prefix, registry, dir) = (prefix.clone(), registry.url.clone(), dir.path().to_owned());
        async move {
            let second = settings(&prefix, &registry, &dir, db)?;
            let stop = CancellationToken::new();
            let clients = Clients::connect(&second, Metrics::new()).await?;
            let systems = Systems::new(&second, &clients, stop.clone())?;
            let report = replay(
                &second,
                &clients,
                &systems,
                processor,
                Some(From::Earliest),
                None,
                true,
                &stop,
            )
            .await
            .with_context(|| format!("replay {processor}"))?;
            ensure!(
                report.records == statuses,
                "{processor} replayed {}",
                report.records
            );
            Ok::<_, anyhow::Error>(second)
        }
    };
    // The email worker's replay: its sent markers, nothing else.
    let markers = replayed("markers", "notify-email").await?;
    let after = without(views(&markers, namespace).await?, &ignore);
    let sent_before: BTreeMap<_, _> = before
        .iter()
        .filter(|(k, _)| k.contains(".sent:"))
        .collect();
    ensure!(
        after.iter().collect::<BTreeMap<_, _>>() == sent_before,
        "the email worker's replay rebuilds its markers: {after:?}"
    );
    // The processor's replay: every view.
    let second = replayed("second", "notify").await?;
    let after = without(views(&second, namespace).await?, &ignore);
    ensure_same(&before, &after, "after the replay")?;
    // Beside the live views: rebuilt under a new namespace, preferences and contacts left
    // where they are.
    rebuild_and_compare(&first, "notify", namespace, &ignore, &before).await
}
