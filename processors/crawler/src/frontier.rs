//! The crawler's state in the store: which URLs were seen, the per-host queues of the
//! frontier, the hosts with work and their politeness state, cached robots.txt files, and the
//! metadata of fetched pages. It all survives a restart; nothing here is only in memory.
//!
//! | namespace | key → value | partition (ScyllaDB) |
//! |---|---|---|
//! | `<p>.hosts` | host → empty | every host ever admitted (to rebuild the Bloom filter) |
//! | `<p>.seen:<host>` | SHA-256 of the URL → [`Seen`] | one host's seen URLs |
//! | `<p>.queue:<host>` | `<tier>:<url hash>` → [`Queued`] | one host's queue, tier order |
//! | `<p>.active` | host → [`HostState`] | hosts with queued work |
//! | `<p>.robots` | host → [`RobotsRecord`] | robots.txt cache |
//! | `<p>.pages:<host>` | SHA-256 of the URL → [`crate::events::CrawlFetched`] JSON | one host's fetch results |

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sixfold_store::{KvStore, MAX_LIST_LIMIT, Store, StoreError};

/// Whether a seen URL is still waiting or done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeenState {
    /// Admitted and queued; not fetched to completion yet.
    Queued,
    /// Fetched (or refused for good) and its result recorded.
    Done,
}

/// A seen URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The normalized URL.
    pub url: String,
    /// Queued or done.
    pub state: SeenState,
    /// The queue tier it was queued in (so a repeat discovery finds the same entry).
    #[serde(default)]
    pub tier: u8,
}

/// A URL waiting in its host's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The normalized URL.
    pub url: String,
    /// The crawl.
    pub crawl_id: String,
    /// Depth from the seed.
    pub depth: i32,
    /// The crawl's depth limit.
    pub max_depth: i32,
    /// The crawl's allowed domains.
    pub allowed_domains: Vec<String>,
    /// Fetch a sitemap (parse `<loc>`) rather than a page.
    pub sitemap: bool,
    /// Attempts so far that the host answered 429/503.
    #[serde(default)]
    pub throttled: u32,
}

/// Politeness state of a host with work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Not before this time (ms since the epoch).
    pub next_fetch_ms: i64,
    /// The current 429/503 backoff, if the host is throttling us.
    pub backoff_ms: Option<u64>,
}

/// A cached robots.txt fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotsRecord {
    /// HTTP status; 0 when the host could not be reached.
    pub status: u16,
    /// The body (at most the parsing limit), for 2xx.
    pub body: String,
    /// When it was fetched (ms since the epoch).
    pub fetched_at_ms: i64,
}

/// The crawler's tables.
#[derive(Clone)]
pub struct Frontier {
    store: Arc<dyn Store>,
    prefix: String,
}

/// Key of a queue entry: tier first (two digits, so tiers sort as numbers), then the URL.
fn queue_key(tier: u8, hash: &str) -> String {
    format!("{tier:02}:{hash}")
}

/// SHA-256 of a URL, hex: the key of a URL everywhere (URLs may be longer than store keys).
pub fn url_hash(url: &str) -> String {
    hex::encode(Sha256::digest(url.as_bytes()))
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn parse<T: serde::de::DeserializeOwned>(ns: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::InvalidInput(format!("corrupt value in {ns}: {e}")))
}

impl Frontier {
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

    fn ns(&self, table: &str, host: &str) -> String {
        format!("{}.{table}:{host}", self.prefix)
    }

    fn global(&self, table: &str) -> String {
        format!("{}.{table}", self.prefix)
    }

    /// The seen entry of a URL, by its hash.
    pub async fn seen(&self, host: &str, hash: &str) -> Result<Option<Seen>, StoreError> {
        let ns = self.ns("seen", host);
        match self.kv().get(&ns, hash).await? {
            Some(bytes) => Ok(Some(parse(&ns, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Records a host in the host list (to rebuild the Bloom filter from).
    pub async fn record_host(&self, host: &str) -> Result<(), StoreError> {
        self.kv().put(&self.global("hosts"), host, Vec::new()).await
    }

    /// Marks a URL seen (queued in `tier`) unless it already is; true if this call marked it.
    pub async fn claim(
        &self,
        host: &str,
        hash: &str,
        url: &str,
        tier: u8,
    ) -> Result<bool, StoreError> {
        let seen = Seen {
            url: url.to_string(),
            state: SeenState::Queued,
            tier,
        };
        self.kv()
            .put_if_absent(&self.ns("seen", host), hash, json(&seen))
            .await
    }

    /// Records a URL as done (fetched or refused for good).
    pub async fn mark_done(&self, host: &str, url: &str) -> Result<(), StoreError> {
        let seen = Seen {
            url: url.to_string(),
            state: SeenState::Done,
            tier: 0,
        };
        self.kv()
            .put(&self.ns("seen", host), &url_hash(url), json(&seen))
            .await
    }

    /// Records `url` as done and takes it off its host's queue (whichever of the `tiers` it is
    /// in): what a `crawl.fetched` result means. Replaying the results into a wiped frontier
    /// therefore leaves no fetched page to fetch again, in whatever order the discoveries and
    /// results come back.
    ///
    /// Done is written before the queue entries go: an admission of the same URL that queues
    /// it meanwhile then finds it done and takes it off again ([`Frontier::unqueue_if_done`]).
    pub async fn settle(&self, host: &str, url: &str, tiers: usize) -> Result<(), StoreError> {
        self.mark_done(host, url).await?;
        let hash = url_hash(url);
        for tier in 0..tiers.min(u8::MAX as usize) {
            self.dequeue(host, &queue_key(tier as u8, &hash)).await?;
        }
        Ok(())
    }

    /// Takes the URL `hash` off its host's queue (tier `tier`) if it is done by now: an
    /// admission calls it after queueing, in case a result settled the URL in between.
    pub async fn unqueue_if_done(
        &self,
        host: &str,
        tier: u8,
        hash: &str,
    ) -> Result<(), StoreError> {
        if self
            .seen(host, hash)
            .await?
            .is_some_and(|seen| seen.state == SeenState::Done)
        {
            self.dequeue(host, &queue_key(tier, hash)).await?;
        }
        Ok(())
    }

    /// Queues a URL in its host's queue and makes sure the host is active without touching
    /// the politeness state of a host that already is. With `replace` false an entry already
    /// there is kept (its throttle count survives a repeated discovery).
    pub async fn enqueue(
        &self,
        host: &str,
        tier: u8,
        item: &Queued,
        replace: bool,
    ) -> Result<(), StoreError> {
        let key = queue_key(tier, &url_hash(&item.url));
        let ns = self.ns("queue", host);
        if replace {
            self.kv().put(&ns, &key, json(item)).await?;
        } else {
            self.kv().put_if_absent(&ns, &key, json(item)).await?;
        }
        self.kv()
            .put_if_absent(&self.global("active"), host, json(&HostState::default()))
            .await?;
        Ok(())
    }

    /// The next URL of a host's queue (highest tier first), with its queue key. An entry that
    /// does not parse is dropped (logged) rather than blocking the host.
    pub async fn peek(&self, host: &str) -> Result<Option<(String, Queued)>, StoreError> {
        let ns = self.ns("queue", host);
        loop {
            let page = self.kv().list(&ns, None, 1).await?;
            let Some((key, bytes)) = page.into_iter().next() else {
                return Ok(None);
            };
            match serde_json::from_slice(&bytes) {
                Ok(item) => return Ok(Some((key, item))),
                Err(error) => {
                    tracing::error!(%error, host, key, "corrupt queue entry dropped");
                    self.kv().delete(&ns, &key).await?;
                }
            }
        }
    }

    /// A host's saved politeness state, if it is active.
    pub async fn host(&self, host: &str) -> Result<Option<HostState>, StoreError> {
        let ns = self.global("active");
        match self.kv().get(&ns, host).await? {
            Some(bytes) => Ok(Some(parse(&ns, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Replaces a queued URL's entry (its throttle count).
    pub async fn requeue(&self, host: &str, key: &str, item: &Queued) -> Result<(), StoreError> {
        self.kv()
            .put(&self.ns("queue", host), key, json(item))
            .await
    }

    /// Takes a URL off its host's queue.
    pub async fn dequeue(&self, host: &str, key: &str) -> Result<(), StoreError> {
        self.kv().delete(&self.ns("queue", host), key).await
    }

    /// URLs queued for a host (reads the whole queue: for metrics and status).
    pub async fn queued(&self, host: &str) -> Result<u64, StoreError> {
        self.kv().count(&self.ns("queue", host)).await
    }

    /// Hosts with work and their politeness state.
    pub async fn active_hosts(&self) -> Result<Vec<(String, HostState)>, StoreError> {
        let ns = self.global("active");
        let mut hosts = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .kv()
                .list(&ns, after.as_deref(), MAX_LIST_LIMIT)
                .await?;
            let done = page.len() < MAX_LIST_LIMIT;
            after = page.last().map(|(k, _)| k.clone());
            for (host, bytes) in page {
                // One bad entry must not stop every fetch loop: skip it, loudly.
                match parse(&ns, &bytes) {
                    Ok(state) => hosts.push((host, state)),
                    Err(error) => tracing::error!(%error, host, "corrupt host state skipped"),
                }
            }
            if done {
                return Ok(hosts);
            }
        }
    }

    /// Saves a host's politeness state.
    pub async fn save_host(&self, host: &str, state: &HostState) -> Result<(), StoreError> {
        self.kv()
            .put(&self.global("active"), host, json(state))
            .await
    }

    /// Removes a host whose queue is empty from the active set. A URL queued meanwhile
    /// re-activates it (see [`Frontier::enqueue`]), so the queue is checked again after.
    pub async fn deactivate(&self, host: &str) -> Result<bool, StoreError> {
        self.kv().delete(&self.global("active"), host).await?;
        if self.peek(host).await?.is_some() {
            self.kv()
                .put_if_absent(&self.global("active"), host, json(&HostState::default()))
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Every host ever admitted.
    pub async fn all_hosts(&self) -> Result<Vec<String>, StoreError> {
        self.all_keys(&self.global("hosts")).await
    }

    /// Every seen URL hash of a host.
    pub async fn seen_hashes(&self, host: &str) -> Result<Vec<String>, StoreError> {
        self.all_keys(&self.ns("seen", host)).await
    }

    async fn all_keys(&self, ns: &str) -> Result<Vec<String>, StoreError> {
        let mut keys: Vec<String> = Vec::new();
        loop {
            let page = self
                .kv()
                .list(ns, keys.last().map(String::as_str), MAX_LIST_LIMIT)
                .await?;
            let done = page.len() < MAX_LIST_LIMIT;
            keys.extend(page.into_iter().map(|(k, _)| k));
            if done {
                return Ok(keys);
            }
        }
    }

    /// The cached robots.txt of a host.
    pub async fn robots(&self, host: &str) -> Result<Option<RobotsRecord>, StoreError> {
        let ns = self.global("robots");
        match self.kv().get(&ns, host).await? {
            Some(bytes) => Ok(Some(parse(&ns, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Caches a host's robots.txt.
    pub async fn save_robots(&self, host: &str, record: &RobotsRecord) -> Result<(), StoreError> {
        self.kv()
            .put(&self.global("robots"), host, json(record))
            .await
    }

    /// Records a fetch result (idempotent: by URL).
    pub async fn save_page(&self, host: &str, url: &str, page: &[u8]) -> Result<(), StoreError> {
        self.kv()
            .put(&self.ns("pages", host), &url_hash(url), page.to_vec())
            .await
    }

    /// Up to `limit` fetch results of a host (JSON), after the URL hash `after`.
    pub async fn pages(
        &self,
        host: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.kv().list(&self.ns("pages", host), after, limit).await
    }
}
