//! The `crawler` processor: admits discovered URLs into the frontier (normalize, scope,
//! dedup, queue) and records fetch results.

use std::sync::Arc;

use async_trait::async_trait;
use sixfold_runtime::{Classify, Processor, Record};
use sixfold_store::StoreError;

use crate::Crawler;
use crate::events::{CrawlDiscovered, CrawlFetched, DiscoverySource};
use crate::frontier::{Queued, SeenState, url_hash};
use crate::normalize::{OutOfScope, Scope, host_key, normalize};

/// Why a record could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum CrawlerError {
    /// The value is not a valid event of its topic.
    #[error("invalid event: {0}")]
    Invalid(String),
    /// The record came from a topic this processor does not read.
    #[error("unexpected topic {0}")]
    UnknownTopic(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Classify for CrawlerError {
    fn is_transient(&self) -> bool {
        matches!(self, CrawlerError::Store(e) if e.is_transient())
    }

    fn class(&self) -> &'static str {
        match self {
            CrawlerError::Invalid(_) => "invalid_event",
            CrawlerError::UnknownTopic(_) => "unknown_topic",
            CrawlerError::Store(e) if e.is_transient() => "store_unavailable",
            CrawlerError::Store(_) => "store_rejected",
        }
    }
}

/// What admission decided about a discovered URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// New: queued in its host's frontier.
    Queued,
    /// Seen before (the Bloom filter or the store said so).
    Duplicate,
    /// Outside the crawl's scope (depth, domain, length, repeated segments).
    OutOfScope(&'static str),
}

/// The processor.
pub struct CrawlerProcessor {
    crawler: Arc<Crawler>,
}

impl CrawlerProcessor {
    /// The processor over the crawler's shared state.
    pub fn new(crawler: Arc<Crawler>) -> Self {
        Self { crawler }
    }
}

#[async_trait]
impl Processor for CrawlerProcessor {
    type Error = CrawlerError;

    async fn process(&self, record: &Record) -> Result<(), CrawlerError> {
        let c = &self.crawler;
        if record.topic == c.settings.discovered_topic {
            let event: CrawlDiscovered = record
                .decode()
                .map_err(|e| CrawlerError::Invalid(e.to_string()))?;
            let admission = c.admit(&event).await?;
            let label = match admission {
                Admission::Queued => "queued",
                Admission::Duplicate => "duplicate",
                Admission::OutOfScope(reason) => reason,
            };
            c.admissions.with_label_values(&[label]).inc();
            Ok(())
        } else if record.topic == c.settings.fetched_topic {
            let event: CrawlFetched = record
                .decode()
                .map_err(|e| CrawlerError::Invalid(e.to_string()))?;
            let page =
                serde_json::to_vec(&event).map_err(|e| CrawlerError::Invalid(e.to_string()))?;
            c.frontier.save_page(&event.host, &event.url, &page).await?;
            // The fetch loop marked it done already; a replay of the results needs this.
            let tiers = c.settings.tiers;
            c.frontier.settle(&event.host, &event.url, tiers).await?;
            if let Some(final_url) = &event.final_url {
                let host = crate::scheduler::host_of(final_url);
                c.frontier.settle(&host, final_url, tiers).await?;
            }
            c.metrics
                .materialized
                .with_label_values(&["crawler", "page"])
                .inc();
            Ok(())
        } else {
            Err(CrawlerError::UnknownTopic(record.topic.clone()))
        }
    }
}

impl Crawler {
    /// Admits one discovered URL: normalized, checked against the crawl's scope, deduplicated
    /// (the Bloom filter answers "new" for certain; "maybe seen" is settled by the store, so a
    /// false positive never drops a new URL), then queued in its host's frontier.
    ///
    /// Idempotent: the URL is claimed (seen = queued) before it is queued, and a URL found
    /// claimed but still queued is queued again (same key), so a crash between the two steps
    /// loses nothing.
    pub async fn admit(&self, event: &CrawlDiscovered) -> Result<Admission, CrawlerError> {
        let url = normalize(&event.url, None, &self.normalize)
            .map_err(|e| CrawlerError::Invalid(format!("url {:?}: {e}", event.url)))?;
        if event.depth < 0 {
            return Err(CrawlerError::Invalid(format!(
                "negative depth {}",
                event.depth
            )));
        }
        let max_depth = event
            .max_depth
            .unwrap_or(self.settings.max_depth as i32)
            .max(0);
        let scope = Scope::new(max_depth as u32, event.allowed_domains.iter().cloned());
        if let Err(reason) = scope.check(&url, event.depth as u32) {
            return Ok(Admission::OutOfScope(scope_label(&reason)));
        }
        let host = host_key(&url);
        let text = url.as_str();
        let hash = url_hash(text);
        let item = Queued {
            url: text.to_string(),
            crawl_id: event.crawl_id.clone(),
            depth: event.depth,
            max_depth,
            allowed_domains: event.allowed_domains.clone(),
            sitemap: event.source == DiscoverySource::Sitemap
                && (event.depth == 0 || looks_like_sitemap(&url)),
            throttled: 0,
        };
        let tier = self.tier(event);
        self.remember_host(&host).await?;
        // Fast path: the filter has never seen it, so it is new unless another writer claims
        // it first (then the store says so).
        let claimed =
            !self.bloom_contains(&hash) && self.frontier.claim(&host, &hash, text, tier).await?;
        if !claimed {
            match self.frontier.seen(&host, &hash).await? {
                Some(seen) if seen.state == SeenState::Done => return Ok(Admission::Duplicate),
                Some(seen) => {
                    // Claimed and not done: maybe a crash came between claim and queue. Queue
                    // it where the claim said, keeping an entry that is already there.
                    self.frontier
                        .enqueue(&host, seen.tier, &item, false)
                        .await?;
                    self.frontier
                        .unqueue_if_done(&host, seen.tier, &hash)
                        .await?;
                    self.bloom_insert(&hash);
                    return Ok(Admission::Duplicate);
                }
                // A false positive of the filter: the URL is new after all.
                None if !self.frontier.claim(&host, &hash, text, tier).await? => {
                    return Ok(Admission::Duplicate);
                }
                None => {}
            }
        }
        self.frontier.enqueue(&host, tier, &item, true).await?;
        // A result for the URL (a replay reads both topics at once) may have settled it
        // between the claim and the queue.
        self.frontier.unqueue_if_done(&host, tier, &hash).await?;
        self.bloom_insert(&hash);
        Ok(Admission::Queued)
    }

    /// Records the host in the store's host list once per process.
    async fn remember_host(&self, host: &str) -> Result<(), CrawlerError> {
        let known = self
            .known_hosts
            .lock()
            .map(|k| k.contains(host))
            .unwrap_or(false);
        if !known {
            self.frontier.record_host(host).await?;
            if let Ok(mut k) = self.known_hosts.lock() {
                k.insert(host.to_string());
            }
        }
        Ok(())
    }

    /// The frontier tier of a URL: seeds and shallow pages first.
    fn tier(&self, event: &CrawlDiscovered) -> u8 {
        let by_depth = event.depth.max(0) as usize / self.settings.depth_per_tier.max(1);
        let tier = by_depth.max(event.priority.max(0) as usize);
        tier.min(self.settings.tiers.saturating_sub(1))
            .min(u8::MAX as usize) as u8
    }
}

/// The metric label of a scope refusal.
fn scope_label(reason: &OutOfScope) -> &'static str {
    match reason {
        OutOfScope::TooDeep { .. } => "too_deep",
        OutOfScope::DomainNotAllowed => "domain_not_allowed",
        OutOfScope::TooLong { .. } => "too_long",
        OutOfScope::RepeatedSegments { .. } => "repeated_segments",
    }
}

/// Whether an entry of a sitemap is itself a sitemap (a sitemap index lists `….xml` files)
/// rather than a page. Sitemaps named by robots.txt are admitted at depth 0 and always are.
fn looks_like_sitemap(url: &url::Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    path.ends_with(".xml") || path.ends_with(".xml.gz")
}
