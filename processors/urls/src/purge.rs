//! Removes expired links from the store and the cache, a grace period after they expire (until
//! then a redirect answers 410 Gone rather than 404).

use std::time::Duration;

use sixfold_runtime::failure::now_ms;
use sixfold_store::StoreError;
use tokio_util::sync::CancellationToken;

use crate::Urls;
use crate::link::Link;
use crate::processor::parse_expiry_key;

const PAGE: usize = 500;

impl Urls {
    /// Purges links that expired before `now_ms - grace`; returns how many were removed.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        let kv = self.store.kv();
        let cutoff = now_ms - self.settings.purge_grace.as_millis() as i64;
        let mut removed = 0;
        loop {
            // Always the first page: purged entries are deleted, so what is left moves up.
            let page = kv.list(&self.names.expiry, None, PAGE).await?;
            let mut progressed = false;
            for (key, _) in &page {
                progressed = true;
                let Some((expires, code)) = parse_expiry_key(key) else {
                    kv.delete(&self.names.expiry, key).await?;
                    continue;
                };
                if expires > cutoff {
                    return Ok(removed);
                }
                // Only the link that expired then: an alias may have been taken again since.
                if let Some(bytes) = kv.get(&self.names.links, code).await? {
                    let link: Option<Link> = serde_json::from_slice(&bytes).ok();
                    if link.is_none_or(|l| l.expires_at_ms == Some(expires)) {
                        kv.delete(&self.names.links, code).await?;
                        self.near.remove(code);
                        if let Err(error) = self.cache.delete(code).await {
                            tracing::warn!(%error, code, "purged link still cached until its TTL");
                        }
                        removed += 1;
                    }
                }
                kv.delete(&self.names.expiry, key).await?;
            }
            if !progressed || page.len() < PAGE {
                return Ok(removed);
            }
        }
    }

    /// Runs [`Urls::purge_expired`] every `purge_interval` until `shutdown`.
    pub async fn purge_periodically(&self, shutdown: CancellationToken) {
        let interval: Duration = self.settings.purge_interval;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
            match self.purge_expired(now_ms()).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "purged expired links"),
                Err(error) => tracing::warn!(%error, "purge failed; will try again"),
            }
        }
    }
}
