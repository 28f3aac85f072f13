//! The crawler against the local test web site (`tests/site/site.py`, several hosts on
//! loopback ports), the real broker, Redis and SQLite: exactly the allowed pages once each,
//! never a disallowed one, politeness per host from the site's access log, robots.txt,
//! 429 with Retry-After, max depth, duplicate content stored once; a restart mid-crawl
//! fetching nothing twice that had completed; two crawler instances splitting the hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sixfold_crawler::frontier::{Frontier, SeenState, url_hash};
use sixfold_crawler::{Crawler, CrawlerDeps, CrawlerSettings};
use sixfold_ingress::{ApiKeyEntry, IngressSettings};
use sixfold_ratelimit::RateLimiter;
use sixfold_runtime::codec::AvroCodec;
use sixfold_runtime::consumer::RuntimeContext;
use sixfold_runtime::failure::dlq_topic;
use sixfold_runtime::metrics::Metrics;
use sixfold_runtime::producer::Producer;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_runtime::{ProcessorConfig, run_processor};
use sixfold_store::Store;
use sixfold_tests::{
    TestRegistry, bind, create_topics, kafka, redis_conn, redis_url, serve_ingress, sqlite_store,
    unique, wait_for,
};

const KEY: &str = "integration-test-key";

/// One request in the site's access log.
#[derive(Debug, Clone)]
struct Hit {
    t: f64,
    host: String,
    path: String,
    status: u16,
    ua: String,
}

/// The test web site, one process serving several hosts (ports).
struct Site {
    child: Child,
    log: PathBuf,
    hosts: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Site {
    /// Starts `site.py` with `args` on a free range of ports.
    async fn start(args: &[&str]) -> Result<Self> {
        let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("..");
        for attempt in 0..10u16 {
            let dir = tempfile::tempdir()?;
            let (log, ready) = (dir.path().join("access.log"), dir.path().join("ready"));
            let base = 20_000 + (random_u16() + attempt * 997) % 2_000 * 10;
            let mut child = Command::new("python3")
                .arg(root.join("tests/site/site.py"))
                .args(args)
                .args(["--base-port", &base.to_string()])
                .arg("--access-log")
                .arg(&log)
                .arg("--ready-file")
                .arg(&ready)
                .spawn()
                .context("start tests/site/site.py")?;
            for _ in 0..100 {
                if ready.exists() || child.try_wait()?.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let hosts = text
                    .lines()
                    .map(|l| {
                        l.trim_end_matches('/')
                            .trim_start_matches("http://")
                            .to_string()
                    })
                    .collect();
                return Ok(Self {
                    child,
                    log,
                    hosts,
                    _dir: dir,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!("the test site did not start on any port range")
    }

    fn base(&self, host: usize) -> String {
        format!("http://{}", self.hosts[host])
    }

    /// Every request so far, in time order, without the test's own.
    fn hits(&self) -> Result<Vec<Hit>> {
        let mut hits: Vec<Hit> = std::fs::read_to_string(&self.log)?
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|v| Hit {
                t: v["t"].as_f64().unwrap_or_default(),
                host: v["host"].as_str().unwrap_or_default().to_string(),
                path: v["path"].as_str().unwrap_or_default().to_string(),
                status: v["status"].as_u64().unwrap_or_default() as u16,
                ua: v["ua"].as_str().unwrap_or_default().to_string(),
            })
            .filter(|h| h.path != "/__manifest")
            .collect();
        hits.sort_by(|a, b| a.t.total_cmp(&b.t));
        Ok(hits)
    }

    async fn manifest(&self) -> Result<Value> {
        Ok(reqwest::get(format!("{}/__manifest", self.base(0)))
            .await?
            .json()
            .await?)
    }
}

/// A pseudo-random number, so parallel test binaries rarely pick the same ports.
fn random_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (nanos / 1000 % 65_536) as u16
}

/// One crawler instance: store, Redis namespace, topics and consumer group given.
struct CrawlerInstance {
    crawler: Arc<Crawler>,
    shutdown: CancellationToken,
    fetcher: tokio::task::JoinHandle<()>,
    base: String,
}

impl CrawlerInstance {
    /// An instance with its leases and membership on the single Redis or (`redis_cluster`)
    /// the Redis Cluster.
    async fn start(
        settings: CrawlerSettings,
        store: Arc<dyn Store>,
        registry: &TestRegistry,
        group: &str,
        redis_cluster: bool,
    ) -> Result<Self> {
        let metrics = Metrics::new();
        let producer = Producer::new(&kafka(), metrics.clone())?;
        let codec = Arc::new(AvroCodec::new(&registry.url)?);
        let redis = redis_conn(redis_cluster).await?;
        let crawler = Crawler::new(
            settings,
            CrawlerDeps {
                store: store.clone(),
                redis,
                producer: producer.clone(),
                codec: codec.clone(),
                metrics: metrics.clone(),
            },
        )?;
        let shutdown = CancellationToken::new();
        let (listener, base) = bind().await?;
        serve_ingress(
            listener,
            &IngressSettings {
                api_keys: vec![ApiKeyEntry {
                    name: "tests".into(),
                    sha256: sixfold_ingress::auth::digest_hex(KEY),
                }],
                ..IngressSettings::default()
            },
            &registry.url,
            &redis_url(),
            store,
            metrics.clone(),
            RateLimiter::disabled(),
            vec![sixfold_crawler::routes::routes(crawler.clone())],
            shutdown.clone(),
        )?;
        let config = ProcessorConfig {
            name: group.to_string(),
            topics: crawler.input_topics(),
            retry_delays: vec![],
            ..ProcessorConfig::default()
        };
        let context = RuntimeContext {
            kafka: kafka(),
            codec,
            producer,
            metrics,
        };
        tokio::spawn(run_processor(
            Arc::new(crawler.processor()),
            config,
            context,
            shutdown.clone(),
        ));
        let fetcher = {
            let (crawler, token) = (crawler.clone(), shutdown.clone());
            tokio::spawn(async move {
                if let Err(error) = crawler.run_fetcher(token).await {
                    tracing::error!(%error, "fetch loop failed");
                }
            })
        };
        Ok(Self {
            crawler,
            shutdown,
            fetcher,
            base,
        })
    }

    /// Hosts the frontier still has work for.
    async fn active_hosts(&self) -> Result<Vec<String>> {
        let hosts: Value = reqwest::Client::new()
            .get(format!("{}/v1/crawl/hosts", self.base))
            .bearer_auth(KEY)
            .send()
            .await?
            .json()
            .await?;
        Ok(hosts
            .as_array()
            .context("hosts")?
            .iter()
            .filter_map(|h| h["host"].as_str().map(str::to_string))
            .collect())
    }

    async fn seed(&self, body: Value) -> Result<Value> {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/crawl/seeds", self.base))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await?;
        ensure!(response.status() == 202, "seed: {}", response.status());
        Ok(response.json().await?)
    }

    /// Stops the fetch loop and the processor, as a process stopping would.
    async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.fetcher.await;
    }
}

/// Settings of a test crawl: loopback allowed, its own namespace, topics and content dir.
fn test_settings(prefix: &str, content_dir: &Path) -> CrawlerSettings {
    CrawlerSettings {
        allow_private_addresses: true,
        default_delay: Duration::from_millis(300),
        max_depth: 3,
        namespace: prefix.to_string(),
        discovered_topic: format!("{prefix}.discovered"),
        fetched_topic: format!("{prefix}.fetched"),
        content_dir: content_dir.to_path_buf(),
        ..CrawlerSettings::default()
    }
}

async fn topics_for(settings: &CrawlerSettings, group: &str) -> Result<()> {
    create_topics(&[
        (&settings.discovered_topic, 4),
        (&settings.fetched_topic, 2),
        (&dlq_topic(group), 1),
    ])
    .await
}

/// Waits until `expected` paths have all been requested and the crawler has no host left to
/// fetch but `stuck` ones (robots.txt unreachable: retried minutes later); after that nothing
/// more is requested, so what the log holds is the whole crawl.
async fn wait_until_crawled(
    site: &Site,
    crawler: &CrawlerInstance,
    expected: &BTreeSet<(String, String)>,
    stuck: &[String],
) -> Result<()> {
    wait_for(
        "every expected page requested",
        Duration::from_secs(90),
        || async {
            site.hits().is_ok_and(|hits| {
                let got: BTreeSet<(String, String)> =
                    hits.into_iter().map(|h| (h.host, h.path)).collect();
                expected.is_subset(&got)
            })
        },
    )
    .await?;
    wait_for("the frontier drained", Duration::from_secs(60), || async {
        crawler
            .active_hosts()
            .await
            .is_ok_and(|hosts| hosts.iter().all(|h| stuck.contains(h)))
    })
    .await
}

fn host_path(url: &str) -> (String, String) {
    let parsed = url::Url::parse(url).expect("manifest urls parse");
    let host = format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port().unwrap_or(80)
    );
    let mut path = parsed.path().to_string();
    if let Some(query) = parsed.query() {
        path.push('?');
        path.push_str(query);
    }
    (host, path)
}

#[tokio::test(flavor = "multi_thread")]
async fn crawls_the_test_site_politely_and_exactly_once() -> Result<()> {
    let site = Site::start(&["--mode", "test"]).await?;
    let prefix = unique("crawl");
    let group = unique("crawl-group");
    let dir = tempfile::tempdir()?;
    let settings = test_settings(&prefix, &dir.path().join("content"));
    topics_for(&settings, &group).await?;
    let registry = TestRegistry::start().await?;
    let store = sqlite_store(dir.path()).await?;
    let crawler = CrawlerInstance::start(settings, store, &registry, &group, false).await?;
    let manifest = site.manifest().await?;
    let seeded = crawler
        .seed(json!({"urls": [format!("{}/", site.base(0))], "max_depth": 3}))
        .await?;
    assert_eq!(seeded["accepted"], 1);

    // Expected: pages linked within depth 3 and sitemap-only pages, plus each host's
    // robots.txt; the sitemap itself too.
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for (url, page) in manifest["pages"].as_object().context("manifest pages")? {
        let depth = page["linked_depth"].as_i64();
        let via_sitemap = page["via"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "sitemap"));
        if depth.is_some_and(|d| d <= 3) || (depth.is_none() && via_sitemap) {
            expected.insert(host_path(url));
        }
    }
    for host in &site.hosts {
        expected.insert((host.clone(), "/robots.txt".into()));
    }
    // The sitemap robots.txt names (the manifest lists its entries, which are pages above).
    expected.insert((site.hosts[0].clone(), "/sitemap.xml".into()));
    // Only the host whose robots.txt answers 500 keeps work (retried minutes later).
    let stuck = vec![site.hosts[2].clone()];
    wait_until_crawled(&site, &crawler, &expected, &stuck).await?;
    let hits = site.hits()?;

    // Exactly the expected requests, each once — except the 429'd URL, asked twice.
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for hit in &hits {
        *counts
            .entry((hit.host.clone(), hit.path.clone()))
            .or_default() += 1;
    }
    let limited: BTreeSet<(String, String)> = manifest["rate_limited"]
        .as_object()
        .map(|m| m.keys().map(|u| host_path(u)).collect())
        .unwrap_or_default();
    ensure!(
        !limited.is_empty(),
        "the manifest names the rate-limited page"
    );
    for (request, count) in &counts {
        assert!(expected.contains(request), "unexpected request {request:?}");
        let allowed = if limited.contains(request) { 2 } else { 1 };
        assert_eq!(*count, allowed, "{request:?} requested {count} times");
    }
    assert_eq!(
        counts.len(),
        expected.len(),
        "missing: {:?}",
        expected
            .difference(&counts.keys().cloned().collect())
            .collect::<Vec<_>>()
    );
    for never in manifest["never"].as_array().context("manifest never")? {
        let request = host_path(never.as_str().unwrap_or_default());
        assert!(
            !counts.contains_key(&request),
            "{request:?} must never be requested"
        );
    }
    // Nothing below depth 3.
    assert!(!counts.keys().any(|(_, p)| p == "/deep/4"));

    // Politeness: per host, never two requests closer than the delay (2 s where robots.txt
    // asks), and the 429'd URL not again before its Retry-After.
    let crawl_delay: BTreeMap<String, f64> = manifest["crawl_delay"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(u, d)| (host_path(u).0, d.as_f64().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    ensure!(
        !crawl_delay.is_empty(),
        "the manifest names the Crawl-delay host"
    );
    for host in &site.hosts {
        let times: Vec<&Hit> = hits.iter().filter(|h| &h.host == host).collect();
        let least = crawl_delay.get(host).copied().unwrap_or(0.3);
        for pair in times.windows(2) {
            let gap = pair[1].t - pair[0].t;
            assert!(
                gap >= least - 0.02,
                "{host}: {} then {} only {gap:.3} s apart (delay {least} s)",
                pair[0].path,
                pair[1].path
            );
        }
    }
    for request in &limited {
        let times: Vec<&Hit> = hits
            .iter()
            .filter(|h| (h.host.clone(), h.path.clone()) == *request)
            .collect();
        assert_eq!(times[0].status, 429);
        assert!(
            times[1].t - times[0].t >= 2.0 - 0.02,
            "Retry-After not honoured"
        );
    }
    // A slow answer (1.5 s to first byte) stretches that host's next delay to 3 s.
    let slow = hits
        .iter()
        .position(|h| h.path == "/slow")
        .context("slow fetched")?;
    let after_slow = hits[slow + 1..].iter().find(|h| h.host == hits[slow].host);
    if let Some(next) = after_slow {
        assert!(
            next.t - hits[slow].t >= 1.5 + 3.0 - 0.1,
            "slow host not slowed down"
        );
    }
    assert!(hits.iter().all(|h| h.ua.starts_with("sixfold-crawler/")));

    // Duplicate bodies stored once; the huge page and the PDF not stored.
    let c = &crawler.crawler;
    assert_eq!(c.fetch_count("too_large"), 1);
    let mut outcomes: BTreeMap<String, String> = BTreeMap::new();
    for host in &site.hosts {
        let pages: Value = reqwest::Client::new()
            .get(format!(
                "{}/v1/crawl/hosts/{host}/pages?limit=1000",
                crawler.base
            ))
            .bearer_auth(KEY)
            .send()
            .await?
            .json()
            .await?;
        for page in pages["pages"].as_array().context("pages")? {
            outcomes.insert(
                page["url"].as_str().unwrap_or_default().to_string(),
                page["outcome"].as_str().unwrap_or_default().to_string(),
            );
        }
    }
    let unsupported: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| *o == "UNSUPPORTED_CONTENT_TYPE")
        .map(|(u, _)| u)
        .collect();
    assert_eq!(unsupported.len(), 2, "{outcomes:#?}");
    assert_eq!(c.fetch_count("unsupported_content_type"), 2);
    // Disallowed links are queued, then refused at fetch time without a request.
    assert_eq!(c.fetch_count("robots_disallowed"), 1);
    let stored = walk(&dir.path().join("content"))?;
    let fetched = c.fetch_count("fetched") as usize;
    assert_eq!(stored, fetched - 1, "dup1 and dup2 share one blob");
    crawler.stop().await;
    Ok(())
}

/// Files under `dir`, recursively.
fn walk(dir: &Path) -> Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            count += walk(&entry.path())?;
        } else {
            count += 1;
        }
    }
    Ok(count)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_crawl_fetches_nothing_twice_that_had_completed() -> Result<()> {
    let site = Site::start(&["--mode", "bench", "--hosts", "3", "--pages", "15"]).await?;
    let prefix = unique("crawl");
    let group = unique("crawl-group");
    let dir = tempfile::tempdir()?;
    let mut settings = test_settings(&prefix, &dir.path().join("content"));
    settings.default_delay = Duration::from_millis(100);
    settings.max_depth = 20;
    // A filter far too small: nearly every URL is a "maybe seen", which the store settles;
    // a false positive must never drop a new URL.
    settings.bloom_expected_urls = 2;
    settings.bloom_false_positive_rate = 0.5;
    topics_for(&settings, &group).await?;
    let registry = TestRegistry::start().await?;
    let store = sqlite_store(dir.path()).await?;
    let first =
        CrawlerInstance::start(settings.clone(), store.clone(), &registry, &group, false).await?;
    first
        .seed(json!({"urls": [format!("{}/p/0", site.base(0))]}))
        .await?;
    wait_for("a third of the pages", Duration::from_secs(60), || async {
        site.hits().is_ok_and(|h| h.len() >= 15)
    })
    .await?;
    first.stop().await;
    // What had completed when the first instance stopped (marked done in the store).
    let frontier = Frontier::new(store.clone(), &prefix);
    let mut completed = BTreeSet::new();
    for hit in site.hits()? {
        let url = format!("http://{}{}", hit.host, hit.path);
        let seen = frontier.seen(&hit.host, &url_hash(&url)).await?;
        if seen.is_some_and(|s| s.state == SeenState::Done) {
            completed.insert((hit.host, hit.path));
        }
    }
    let requests_before = site.hits()?.len();
    ensure!(!completed.is_empty(), "nothing completed before the stop");

    let second = CrawlerInstance::start(settings, store, &registry, &group, false).await?;
    let pages: BTreeSet<(String, String)> = (0..3)
        .flat_map(|h| (0..15).map(move |p| (h, p)))
        .map(|(h, p)| (site.hosts[h].clone(), format!("/p/{p}")))
        .collect();
    wait_until_crawled(&site, &second, &pages, &[]).await?;
    let hits = site.hits()?;
    for hit in &hits[requests_before..] {
        let request = (hit.host.clone(), hit.path.clone());
        assert!(
            !completed.contains(&request),
            "{request:?} was fetched again after it had completed"
        );
    }
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for hit in hits.iter().filter(|h| h.path.starts_with("/p/")) {
        *seen
            .entry((hit.host.clone(), hit.path.clone()))
            .or_default() += 1;
    }
    assert_eq!(seen.len(), pages.len());
    second.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_the_hosts() -> Result<()> {
    split_the_hosts(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_split_the_hosts_on_a_redis_cluster() -> Result<()> {
    split_the_hosts(true).await
}

/// Two crawler instances split 20 hosts, each host fetched by one, with their membership
/// and host leases on the single Redis or the Redis Cluster.
async fn split_the_hosts(redis_cluster: bool) -> Result<()> {
    let site = Site::start(&["--mode", "bench", "--hosts", "20", "--pages", "3"]).await?;
    let prefix = unique("crawl");
    let group = unique("crawl-group");
    let dir = tempfile::tempdir()?;
    let mut settings = test_settings(&prefix, &dir.path().join("content"));
    settings.default_delay = Duration::from_millis(100);
    settings.max_depth = 20;
    topics_for(&settings, &group).await?;
    let registry = TestRegistry::start().await?;
    let store = sqlite_store(dir.path()).await?;
    let mut instances = Vec::new();
    for name in ["one", "two"] {
        let mut mine = settings.clone();
        mine.user_agent = format!("sixfold-crawler/{name}");
        instances.push(
            CrawlerInstance::start(mine, store.clone(), &registry, &group, redis_cluster).await?,
        );
    }
    // Each fetch loop sees both before there is work: hosts are spread over the loops a loop
    // knows of, so one that has not seen the other yet would lease hosts it is about to hand
    // over (a legitimate hand-over, but this test checks the steady state).
    wait_for(
        "both fetch loops see each other",
        Duration::from_secs(30),
        || async { instances.iter().all(|i| i.crawler.fetch_loops_seen() == 2) },
    )
    .await?;
    instances[0]
        .seed(json!({"urls": [format!("{}/p/0", site.base(0))]}))
        .await?;
    // 20 hosts: rendezvous hashing leaves one instance without a host with probability 2^-19.
    let pages: BTreeSet<(String, String)> = (0..20)
        .flat_map(|h| (0..3).map(move |p| (h, p)))
        .map(|(h, p)| (site.hosts[h].clone(), format!("/p/{p}")))
        .collect();
    wait_until_crawled(&site, &instances[0], &pages, &[]).await?;
    let hits = site.hits()?;
    let mut agents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for hit in &hits {
        agents
            .entry(hit.host.clone())
            .or_default()
            .insert(hit.ua.clone());
        *counts
            .entry((hit.host.clone(), hit.path.clone()))
            .or_default() += 1;
    }
    assert!(counts.values().all(|&c| c == 1), "{counts:?}");
    for (host, uas) in &agents {
        assert_eq!(uas.len(), 1, "{host} fetched by {uas:?}");
    }
    let all: BTreeSet<&String> = agents.values().flatten().collect();
    assert_eq!(all.len(), 2, "both instances fetched: {agents:?}");
    for instance in instances {
        instance.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_discovery_goes_to_the_dlq_with_its_reason() -> Result<()> {
    use sixfold_crawler::events::{CRAWL_DISCOVERED_SCHEMA, CrawlDiscovered, DiscoverySource};
    use sixfold_runtime::codec::EventSchema;
    use sixfold_runtime::failure::{H_ERROR_CLASS, H_ERROR_MESSAGE};
    use sixfold_runtime::producer::Outgoing;
    let prefix = unique("crawl");
    let group = unique("crawl-group");
    let dir = tempfile::tempdir()?;
    let settings = test_settings(&prefix, &dir.path().join("content"));
    topics_for(&settings, &group).await?;
    let registry = TestRegistry::start().await?;
    let store = sqlite_store(dir.path()).await?;
    let crawler = CrawlerInstance::start(settings.clone(), store, &registry, &group, false).await?;
    let event = CrawlDiscovered {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: 1_800_000_000_000,
        url: "ftp://example.com/file".into(),
        host: "example.com".into(),
        crawl_id: "c".into(),
        depth: 0,
        priority: 0,
        source: DiscoverySource::Seed,
        discovered_from: None,
        max_depth: None,
        allowed_domains: vec![],
    };
    let codec = AvroCodec::new(&registry.url)?;
    let payload = codec
        .encode(
            &settings.discovered_topic,
            &EventSchema::parse(CRAWL_DISCOVERED_SCHEMA)?,
            &event,
        )
        .await?;
    Producer::new(&kafka(), Metrics::new())?
        .send(Outgoing {
            topic: &settings.discovered_topic,
            key: Some(b"example.com"),
            payload: Some(&payload),
            headers: &[],
        })
        .await?;
    let dead = crate::harness::read_records(&dlq_topic(&group), 1, Duration::from_secs(60)).await?;
    assert_eq!(
        crate::harness::header(&dead[0], H_ERROR_CLASS).as_deref(),
        Some("invalid_event")
    );
    let message = crate::harness::header(&dead[0], H_ERROR_MESSAGE).unwrap_or_default();
    assert!(message.contains("ftp://example.com/file"), "{message}");
    crawler.stop().await;
    Ok(())
}
