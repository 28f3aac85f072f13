//! The fetch loop: leases hosts with work, keeps each host polite, fetches one URL per host at
//! a time, and hands the results on (content store, `crawl.discovered`, `crawl.fetched`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use redis::AsyncCommands;
use sha2::Digest;
use sixfold_runtime::failure::now_ms;
use sixfold_runtime::shutdown::CancellationToken;
use sixfold_store::StoreError;
use tokio::task::JoinSet;
use url::Url;

use crate::Crawler;
use crate::events::{CrawlDiscovered, CrawlFetched, DiscoverySource, FetchOutcome};
use crate::extract::{extract_links, extract_sitemap_locs};
use crate::fetch::{Accept, FetchResult, Outcome};
use crate::frontier::{HostState, Queued, RobotsRecord, SeenState, url_hash};
use crate::normalize::{Scope, host_key, normalize};
use crate::politeness::{PolitenessPolicy, parse_retry_after};
use crate::robots::{MAX_ROBOTS_BYTES, Robots, RobotsVerdict, Rules, robots_for_status};

/// `now` plus `delay`, in ms since the epoch, saturating instead of overflowing.
fn after(now: i64, delay: Duration) -> i64 {
    now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
}

/// Queue entries that need no request cleared in one step, at most.
const MAX_CLEARED_PER_STEP: usize = 64;
/// Entries read from one sitemap, at most.
const MAX_SITEMAP_ENTRIES: usize = 50_000;

/// Why a fetch step failed (the host is tried again after its delay).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Redis failed (host lease).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// An event could not be produced.
    #[error("produce: {0}")]
    Produce(String),
    /// The content store failed.
    #[error("content store: {0}")]
    Content(#[from] object_store::Error),
}

/// The fetch loops alive now (a Redis sorted set of instance ids scored by expiry), and which
/// of them owns a host: the one with the highest hash of (instance, host) — rendezvous
/// hashing, so hosts spread evenly and only the hosts of a joining or leaving process move.
struct Members {
    key: String,
    me: String,
    live: Vec<String>,
    checked: Option<Instant>,
}

impl Members {
    /// Refreshes this process's membership and the live list, at most once a second.
    async fn refresh(
        &mut self,
        redis: &mut sixfold_runtime::redis_conn::RedisConn,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        if self
            .checked
            .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
        {
            return Ok(());
        }
        let now = now_ms();
        let (_, _, live): ((), (), Vec<String>) = redis::pipe()
            .zadd(&self.key, &self.me, now + ttl.as_millis() as i64)
            .zrembyscore(&self.key, "-inf", now)
            .zrange(&self.key, 0, -1)
            .query_async(redis)
            .await?;
        self.live = live;
        self.checked = Some(Instant::now());
        Ok(())
    }

    fn owns(&self, host: &str) -> bool {
        let score = |instance: &str| {
            let digest = sha2::Sha256::digest(format!("{instance}\n{host}").as_bytes());
            u64::from_be_bytes(digest[..8].try_into().unwrap_or_default())
        };
        let owner = self
            .live
            .iter()
            .max_by_key(|instance| score(instance))
            .map(String::as_str);
        owner.is_none_or(|owner| owner == self.me)
    }

    async fn leave(&self, redis: &mut sixfold_runtime::redis_conn::RedisConn) {
        let _ = redis.zrem::<_, _, ()>(&self.key, &self.me).await;
    }
}

/// A host the loop knows about.
struct Slot {
    state: HostState,
    busy: bool,
}

/// What one step on a host did.
enum Step {
    /// The host has no more work: it left the active set.
    Drained,
    /// The host's next fetch is due at `state.next_fetch_ms`.
    Wait(HostState),
}

impl Crawler {
    /// Runs the fetch loop until `shutdown`: rebuilds the Bloom filter, then repeatedly takes
    /// due hosts this process owns (leasing each), one step per host at a time, at most
    /// `concurrency` at once. On shutdown it stops starting steps and lets the running ones
    /// finish (up to the fetch timeout), so that their politeness state is saved.
    pub async fn run_fetcher(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> Result<(), StoreError> {
        let mut pause = Duration::from_millis(200);
        let rebuilt = loop {
            match self.rebuild_bloom().await {
                Ok(count) => break count,
                Err(error) if error.is_transient() && !shutdown.is_cancelled() => {
                    tracing::warn!(%error, "bloom filter not rebuilt yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(error),
            }
        };
        tracing::info!(urls = rebuilt, "bloom filter rebuilt from the store");
        let instance = uuid::Uuid::new_v4().to_string();
        let mut members = Members {
            key: format!("{}:fetchers", self.settings.namespace),
            me: instance.clone(),
            live: Vec::new(),
            checked: None,
        };
        let mut hosts: HashMap<String, Slot> = HashMap::new();
        let mut leased: HashSet<String> = HashSet::new();
        let mut running: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut steps: JoinSet<Result<Step, StepError>> = JoinSet::new();
        let mut gauges_at = Instant::now();
        let mut scan = tokio::time::interval(self.settings.scan_interval);
        scan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(joined) = steps.join_next_with_id(), if !steps.is_empty() => {
                    let (id, result) = match joined {
                        Ok((id, result)) => (id, result),
                        // A panicking step must not leave its host marked busy for ever.
                        Err(error) => {
                            tracing::error!(%error, "crawl step panicked");
                            (error.id(), Err(StepError::Produce("step panicked".into())))
                        }
                    };
                    let Some(host) = running.remove(&id) else { continue };
                    self.finish_step(&host, result, &mut hosts, &mut leased, &instance).await;
                }
                _ = scan.tick() => {
                    if let Err(error) = members.refresh(&mut self.redis.clone(), self.settings.host_lease).await {
                        tracing::warn!(%error, "fetcher membership not refreshed");
                        continue;
                    }
                    self.fetch_loops_seen
                        .store(members.live.len(), std::sync::atomic::Ordering::Relaxed);
                    if let Err(error) = self.refresh(&mut hosts, &leased).await {
                        tracing::warn!(%error, "active hosts not read");
                        continue;
                    }
                    // Hand back idle hosts another process owns now (it joined, or came back).
                    let moved: Vec<String> = leased
                        .iter()
                        .filter(|h| !members.owns(h) && hosts.get(*h).is_none_or(|s| !s.busy))
                        .cloned()
                        .collect();
                    for host in moved {
                        self.release(&host, &instance).await;
                        leased.remove(&host);
                    }
                    if gauges_at.elapsed() > Duration::from_secs(5) {
                        gauges_at = Instant::now();
                        for host in &leased {
                            if let Ok(count) = self.frontier.queued(host).await {
                                self.queued.with_label_values(&[host]).set(count as i64);
                            }
                        }
                    }
                    let now = now_ms();
                    let mut due: Vec<(i64, String)> = hosts
                        .iter()
                        .filter(|(host, slot)| {
                            !slot.busy && slot.state.next_fetch_ms <= now && members.owns(host)
                        })
                        .map(|(host, slot)| (slot.state.next_fetch_ms, host.clone()))
                        .collect();
                    due.sort();
                    let mut free = self.settings.concurrency.saturating_sub(steps.len());
                    for (_, host) in due {
                        if free == 0 {
                            break;
                        }
                        match self.lease(&host, &instance).await {
                            Ok(true) => {}
                            Ok(false) => continue, // another process still holds it
                            Err(error) => {
                                tracing::warn!(%error, "host lease unavailable");
                                break;
                            }
                        }
                        let Some(slot) = hosts.get_mut(&host) else { continue };
                        if leased.insert(host.clone()) {
                            // Newly ours: the last owner's saved politeness state wins.
                            if let Ok(Some(saved)) = self.frontier.host(&host).await
                                && saved.next_fetch_ms > now
                            {
                                slot.state = saved;
                                continue;
                            }
                        }
                        slot.busy = true;
                        free -= 1;
                        let (state, crawler, name) = (slot.state.clone(), self.clone(), host.clone());
                        let task = steps.spawn(async move { crawler.step(&name, state).await });
                        running.insert(task.id(), host);
                    }
                }
            }
        }
        // Let running steps finish, so that their requests are recorded and their hosts'
        // politeness state saved; whatever is cut off stays queued and not done.
        let drained = tokio::time::timeout(self.settings.fetch_timeout, async {
            while let Some(joined) = steps.join_next_with_id().await {
                if let Ok((id, result)) = joined
                    && let Some(host) = running.remove(&id)
                {
                    self.finish_step(&host, result, &mut hosts, &mut leased, &instance)
                        .await;
                }
            }
        })
        .await;
        if drained.is_err() {
            steps.shutdown().await;
        }
        for host in &leased {
            self.release(host, &instance).await;
        }
        members.leave(&mut self.redis.clone()).await;
        Ok(())
    }

    /// Takes a finished step's result into the host's slot.
    async fn finish_step(
        &self,
        host: &str,
        result: Result<Step, StepError>,
        hosts: &mut HashMap<String, Slot>,
        leased: &mut HashSet<String>,
        instance: &str,
    ) {
        match result {
            Ok(Step::Drained) => {
                hosts.remove(host);
                leased.remove(host);
                let _ = self.queued.remove_label_values(&[host]);
                self.release(host, instance).await;
            }
            Ok(Step::Wait(state)) => {
                if let Some(slot) = hosts.get_mut(host) {
                    slot.state = state;
                    slot.busy = false;
                }
            }
            Err(error) => {
                tracing::warn!(%error, host, "crawl step failed; trying again later");
                // The step saved the host's state before anything after its request could
                // fail; take it back, and wait at least the default delay.
                let saved = self.frontier.host(host).await.ok().flatten();
                if let Some(slot) = hosts.get_mut(host) {
                    slot.busy = false;
                    let floor = after(now_ms(), self.settings.default_delay);
                    slot.state.next_fetch_ms = saved.map_or(floor, |s| s.next_fetch_ms.max(floor));
                }
            }
        }
    }

    /// Adds hosts that became active, drops idle ones that left the active set, and takes the
    /// saved politeness state of hosts this process does not hold (another may have moved it).
    async fn refresh(
        &self,
        hosts: &mut HashMap<String, Slot>,
        leased: &HashSet<String>,
    ) -> Result<(), StoreError> {
        let active = self.frontier.active_hosts().await?;
        let mut present = HashSet::with_capacity(active.len());
        for (host, state) in active {
            present.insert(host.clone());
            let slot = hosts.entry(host.clone()).or_insert(Slot {
                state: state.clone(),
                busy: false,
            });
            if !slot.busy && !leased.contains(&host) {
                slot.state = state;
            }
        }
        hosts.retain(|host, slot| slot.busy || present.contains(host));
        Ok(())
    }

    fn lease_key(&self, host: &str) -> String {
        format!("{}:lease:{{{host}}}", self.settings.namespace)
    }

    /// Takes or renews the lease on `host` in one atomic step; false if another process
    /// holds it.
    async fn lease(&self, host: &str, instance: &str) -> redis::RedisResult<bool> {
        let taken: i64 = self
            .lease_script
            .key(self.lease_key(host))
            .arg(instance)
            .arg(self.settings.host_lease.as_millis() as u64)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(taken == 1)
    }

    /// Gives the lease on `host` up, if this process still holds it.
    async fn release(&self, host: &str, instance: &str) {
        let released = self
            .release_script
            .key(self.lease_key(host))
            .arg(instance)
            .invoke_async::<i64>(&mut self.redis.clone())
            .await;
        if let Err(error) = released {
            tracing::debug!(%error, host, "lease not released; it expires");
        }
    }

    fn policy(&self) -> PolitenessPolicy {
        PolitenessPolicy {
            default_delay: self.settings.default_delay,
            slow_ttfb: self.settings.slow_ttfb,
            max_backoff: self.settings.max_backoff,
        }
    }

    fn timed(&self, stage: &str, started: Instant) {
        self.stage_seconds
            .with_label_values(&[stage])
            .observe(started.elapsed().as_secs_f64());
    }

    /// One step on a host: at most one request (robots.txt or a page). URLs that need no
    /// request (done already, unparsable) are cleared on the way, a bounded number per step.
    async fn step(&self, host: &str, mut state: HostState) -> Result<Step, StepError> {
        let mut cleared = 0;
        let (key, mut item, url) = loop {
            let Some((key, item)) = self.frontier.peek(host).await? else {
                return Ok(if self.frontier.deactivate(host).await? {
                    Step::Drained
                } else {
                    Step::Wait(state)
                });
            };
            let done = self
                .frontier
                .seen(host, &url_hash(&item.url))
                .await?
                .is_some_and(|s| s.state == SeenState::Done);
            match Url::parse(&item.url) {
                Ok(url) if !done => break (key, item, url),
                _ => {
                    self.frontier.dequeue(host, &key).await?;
                    cleared += 1;
                    if cleared >= MAX_CLEARED_PER_STEP {
                        return Ok(Step::Wait(state));
                    }
                }
            }
        };
        let rules = match self.robots(host, &url, &item).await? {
            RobotsStep::Ready(rules) => rules,
            RobotsStep::Fetched(delay) => {
                state.next_fetch_ms = after(now_ms(), delay);
                self.frontier.save_host(host, &state).await?;
                return Ok(Step::Wait(state));
            }
            RobotsStep::Unavailable(retry_at) => {
                state.next_fetch_ms = retry_at;
                self.frontier.save_host(host, &state).await?;
                return Ok(Step::Wait(state));
            }
        };
        if !rules.is_url_allowed(&url) {
            self.record_disallowed(&item).await?;
            self.frontier.dequeue(host, &key).await?;
            return Ok(Step::Wait(state));
        }
        let started = Instant::now();
        let accept = if item.sitemap {
            Accept::Sitemap
        } else {
            Accept::Html
        };
        let result = self.fetcher.fetch(&url, accept).await;
        self.timed("fetch", started);
        let throttled =
            matches!(result.status, Some(429 | 503)) && result.outcome == Outcome::HttpError;
        if throttled {
            // The host asked us to slow down, whether or not this URL is tried again.
            let retry_after = result
                .headers_retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            let previous = state.backoff_ms.map(Duration::from_millis);
            let backoff = self.policy().backoff(previous, retry_after);
            state.backoff_ms = Some(backoff.as_millis() as u64);
            state.next_fetch_ms = after(now_ms(), backoff);
        } else {
            state.backoff_ms = None;
            let delay = self.policy().next_delay(rules.crawl_delay(), result.ttfb);
            state.next_fetch_ms = after(now_ms(), delay);
        }
        // Saved before anything else can fail: whoever steps this host next (this process
        // after an error, or another after a hand-over) waits as long as the request asks.
        self.frontier.save_host(host, &state).await?;
        if throttled && item.throttled < self.settings.max_throttled {
            item.throttled += 1;
            self.frontier.requeue(host, &key, &item).await?;
            self.fetches.with_label_values(&["throttled"]).inc();
            return Ok(Step::Wait(state));
        }
        self.complete(&item, &result).await?;
        self.frontier.dequeue(host, &key).await?;
        Ok(Step::Wait(state))
    }

    /// Stores, extracts, produces and marks done one fetched URL.
    async fn complete(&self, item: &Queued, result: &FetchResult) -> Result<(), StepError> {
        let mut links = Vec::new();
        let mut stored = None;
        if let (Outcome::Fetched, Some(body)) = (result.outcome, &result.body) {
            let started = Instant::now();
            stored = Some(self.content.put("pages", body.clone()).await?);
            self.timed("store", started);
            let started = Instant::now();
            let text = String::from_utf8_lossy(body);
            links = if item.sitemap {
                extract_sitemap_locs(&text, MAX_SITEMAP_ENTRIES)
                    .into_iter()
                    .map(|loc| (loc, DiscoverySource::Sitemap))
                    .collect()
            } else {
                let page = extract_links(&text, &result.final_url);
                let mut found: Vec<(String, DiscoverySource)> = Vec::new();
                if !page.nofollow_page {
                    found.extend(
                        page.links
                            .into_iter()
                            .filter(|l| !l.nofollow)
                            .map(|l| (l.url.to_string(), DiscoverySource::Link)),
                    );
                }
                if let Some(canonical) = page.canonical {
                    found.push((canonical.to_string(), DiscoverySource::Canonical));
                }
                found
            };
            self.timed("extract", started);
        }
        if let Some(target) = &result.redirect_to {
            links.push((target.to_string(), DiscoverySource::Redirect));
        }
        let started = Instant::now();
        let produced = self.discover(item, &links).await?;
        let outcome = match result.outcome {
            Outcome::Fetched => FetchOutcome::Fetched,
            Outcome::HttpError | Outcome::Redirect => FetchOutcome::HttpError,
            Outcome::BlockedAddress => FetchOutcome::BlockedAddress,
            Outcome::TooLarge => FetchOutcome::TooLarge,
            Outcome::UnsupportedContentType => FetchOutcome::UnsupportedContentType,
            Outcome::Timeout => FetchOutcome::Timeout,
            Outcome::NetworkError => FetchOutcome::NetworkError,
        };
        let final_url = (result.final_url != result.url).then(|| result.final_url.to_string());
        let event = CrawlFetched {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: now_ms(),
            url: item.url.clone(),
            host: host_of(&item.url),
            crawl_id: item.crawl_id.clone(),
            depth: item.depth,
            outcome,
            status_code: result.status.map(i32::from),
            final_url: final_url.clone(),
            content_type: result.content_type.clone(),
            content_hash: stored.as_ref().map(|s| s.hash.clone()),
            content_location: stored.as_ref().map(|s| s.location.clone()),
            content_length: result.body.as_ref().map(|b| b.len() as i64),
            links_count: produced as i32,
            fetched_at: now_ms(),
            ttfb_ms: Some(result.ttfb.as_millis().min(i32::MAX as u128) as i32),
            error: result.error.clone(),
        };
        self.produce(
            &self.settings.fetched_topic,
            &self.fetched_schema,
            &event.host,
            &event,
        )
        .await
        .map_err(StepError::Produce)?;
        self.timed("produce", started);
        self.fetches.with_label_values(&[outcome.label()]).inc();
        self.frontier.mark_done(&event.host, &item.url).await?;
        if let Some(final_url) = final_url {
            // The redirect target was fetched in place: never fetch it again on its own.
            self.frontier
                .mark_done(&host_of(&final_url), &final_url)
                .await?;
        }
        Ok(())
    }

    /// Records a URL that robots.txt disallows, without a request.
    async fn record_disallowed(&self, item: &Queued) -> Result<(), StepError> {
        let host = host_of(&item.url);
        let event = CrawlFetched {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at: now_ms(),
            url: item.url.clone(),
            host: host.clone(),
            crawl_id: item.crawl_id.clone(),
            depth: item.depth,
            outcome: FetchOutcome::RobotsDisallowed,
            status_code: None,
            final_url: None,
            content_type: None,
            content_hash: None,
            content_location: None,
            content_length: None,
            links_count: 0,
            fetched_at: now_ms(),
            ttfb_ms: None,
            error: Some("disallowed by robots.txt".into()),
        };
        self.produce(
            &self.settings.fetched_topic,
            &self.fetched_schema,
            &host,
            &event,
        )
        .await
        .map_err(StepError::Produce)?;
        self.fetches
            .with_label_values(&[FetchOutcome::RobotsDisallowed.label()])
            .inc();
        self.frontier.mark_done(&host, &item.url).await?;
        Ok(())
    }

    /// Produces the in-scope links of `item` to `crawl.discovered`; returns how many.
    async fn discover(
        &self,
        item: &Queued,
        links: &[(String, DiscoverySource)],
    ) -> Result<usize, StepError> {
        let scope = Scope::new(
            item.max_depth.max(0) as u32,
            item.allowed_domains.iter().cloned(),
        );
        let mut events = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (link, source) in links {
            // A redirect or canonical target is the same page: same depth; a link is one more.
            let depth = match source {
                DiscoverySource::Redirect | DiscoverySource::Canonical => item.depth,
                _ => item.depth + 1,
            };
            let Ok(url) = normalize(link, None, &self.normalize) else {
                continue;
            };
            if scope.check(&url, depth.max(0) as u32).is_err() || !seen.insert(url.to_string()) {
                continue;
            }
            if url.as_str() == item.url {
                continue;
            }
            events.push(CrawlDiscovered {
                event_id: uuid::Uuid::new_v4().to_string(),
                occurred_at: now_ms(),
                host: host_key(&url),
                url: url.to_string(),
                crawl_id: item.crawl_id.clone(),
                depth,
                priority: 0,
                source: *source,
                discovered_from: Some(item.url.clone()),
                max_depth: Some(item.max_depth),
                allowed_domains: item.allowed_domains.clone(),
            });
        }
        let topic = &self.settings.discovered_topic;
        futures::future::try_join_all(
            events
                .iter()
                .map(|e| self.produce(topic, &self.discovered_schema, &e.host, e)),
        )
        .await
        .map_err(StepError::Produce)?;
        Ok(events.len())
    }

    /// The robots.txt rules of `host`: cached (memory is not used: the store read is cheap and
    /// keeps every process in agreement), or fetched now (which is the host's request for
    /// this step), or unavailable until a retry time.
    async fn robots(&self, host: &str, url: &Url, item: &Queued) -> Result<RobotsStep, StepError> {
        let now = now_ms();
        if let Some(record) = self.frontier.robots(host).await? {
            let age = Duration::from_millis((now - record.fetched_at_ms).max(0) as u64);
            let verdict = verdict_of(record.status);
            if verdict == RobotsVerdict::DisallowAll {
                if age < self.settings.robots_retry {
                    return Ok(RobotsStep::Unavailable(after(
                        record.fetched_at_ms,
                        self.settings.robots_retry,
                    )));
                }
            } else if age < self.settings.robots_ttl {
                return Ok(RobotsStep::Ready(self.cached_rules(host, &record)));
            }
        }
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        let started = Instant::now();
        let result = self.fetcher.fetch(&robots_url, Accept::Robots).await;
        self.timed("robots", started);
        let status = match result.outcome {
            // No rules apply to an address we may not reach: the page fetch records it.
            Outcome::BlockedAddress => 404,
            Outcome::Fetched | Outcome::HttpError | Outcome::Redirect => result.status.unwrap_or(0),
            // The headers came but the body did not (timeout, reset): unreachable, not an
            // empty file that would allow everything.
            _ => 0,
        };
        let body = match (&result.body, robots_for_status(status)) {
            (Some(body), RobotsVerdict::Parse) => {
                String::from_utf8_lossy(&body[..body.len().min(MAX_ROBOTS_BYTES)]).into_owned()
            }
            _ => String::new(),
        };
        let record = RobotsRecord {
            status,
            body,
            fetched_at_ms: now_ms(),
        };
        if verdict_of(status) == RobotsVerdict::Parse {
            let sitemaps: Vec<(String, DiscoverySource)> =
                Robots::parse(record.body.as_bytes(), MAX_ROBOTS_BYTES)
                    .sitemaps()
                    .iter()
                    .map(|s| (s.clone(), DiscoverySource::Sitemap))
                    .collect();
            // Sitemaps sit at the crawl's root: their entries are one level down.
            let root = Queued {
                depth: -1,
                ..item.clone()
            };
            self.discover(&root, &sitemaps).await?;
        }
        // Cached only after the sitemaps were handed on: a failure before retries both.
        self.frontier.save_robots(host, &record).await?;
        if result.outcome == Outcome::BlockedAddress {
            return Ok(RobotsStep::Ready(Rules::allow_all()));
        }
        // The file may ask for a longer delay than ours: it applies from this request on.
        let rules = rules_of(&record, &self.product_token());
        Ok(RobotsStep::Fetched(
            self.policy().next_delay(rules.crawl_delay(), result.ttfb),
        ))
    }

    /// The parsed rules of a cached robots.txt, parsed once per fetch of the file.
    fn cached_rules(&self, host: &str, record: &RobotsRecord) -> Rules {
        if let Ok(cache) = self.robots_rules.lock()
            && let Some((fetched_at, rules)) = cache.get(host)
            && *fetched_at == record.fetched_at_ms
        {
            return rules.clone();
        }
        let rules = rules_of(record, &self.product_token());
        if let Ok(mut cache) = self.robots_rules.lock() {
            if cache.len() > 100_000 {
                cache.clear(); // a crude bound: it refills from the store
            }
            cache.insert(host.to_string(), (record.fetched_at_ms, rules.clone()));
        }
        rules
    }

    fn product_token(&self) -> String {
        self.settings
            .user_agent
            .split(['/', ' '])
            .next()
            .unwrap_or("sixfold-crawler")
            .to_string()
    }
}

/// What the robots.txt step decided.
enum RobotsStep {
    /// Rules known: go on with the page.
    Ready(Rules),
    /// robots.txt was fetched now; the page waits for the host's next turn.
    Fetched(Duration),
    /// robots.txt is unreachable: nothing of the host until this time.
    Unavailable(i64),
}

fn verdict_of(status: u16) -> RobotsVerdict {
    if status == 0 {
        RobotsVerdict::DisallowAll
    } else {
        robots_for_status(status)
    }
}

fn rules_of(record: &RobotsRecord, token: &str) -> Rules {
    match verdict_of(record.status) {
        RobotsVerdict::Parse => {
            Robots::parse(record.body.as_bytes(), MAX_ROBOTS_BYTES).for_agent(token)
        }
        RobotsVerdict::AllowAll => Rules::allow_all(),
        RobotsVerdict::DisallowAll => Rules::disallow_all(),
    }
}

pub(crate) fn host_of(url: &str) -> String {
    Url::parse(url).map(|u| host_key(&u)).unwrap_or_default()
}
