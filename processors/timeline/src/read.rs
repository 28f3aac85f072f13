//! Reading: home timeline pages (cached ids + celebrities merged in + hydration), rebuilding
//! a timeline from the store, and the cached social graph.

use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};

use crate::Timeline;
use crate::cache::GraphSet;
use crate::model::Tweet;
use crate::plan::merge_newest;
use crate::storage::StorageError;

/// Tweets read per followee per store request while rebuilding.
const REBUILD_PAGE: usize = 50;

/// One page of tweets, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The tweets.
    pub tweets: Vec<Tweet>,
    /// The id the next page continues after, when there may be more.
    pub next_before: Option<i64>,
}

impl Timeline {
    /// A page of `user`'s home timeline: tweets older than `before`, newest first.
    pub async fn home(
        &self,
        user: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StorageError> {
        let (pushed, floor) = match self.cache.page(user, before, limit).await {
            Ok(Some(page)) => {
                self.reads.with_label_values(&["cached"]).inc();
                (page.ids, page.floor)
            }
            Ok(None) => {
                self.reads.with_label_values(&["rebuilt"]).inc();
                let all = self.rebuild(user, true).await?;
                (below(&all, before, limit), self.floor_of(&all))
            }
            Err(error) => {
                tracing::warn!(%error, "timeline cache unavailable; reading the store");
                self.reads.with_label_values(&["store_only"]).inc();
                let all = self.rebuild(user, false).await?;
                (below(&all, before, limit), self.floor_of(&all))
            }
        };
        let mut known: HashMap<i64, Tweet> = HashMap::new();
        let mut sources = vec![pushed];
        for celebrity in self.followed_celebrities(user).await? {
            let mut tweets = self.store.recent_tweets(&celebrity, before, limit).await?;
            // Below a full timeline's oldest id the pushed tweets were trimmed: merging only
            // celebrities' tweets there would show a timeline of celebrities alone.
            tweets.retain(|t| floor.is_none_or(|f| t.id >= f));
            sources.push(tweets.iter().map(|t| t.id).collect());
            known.extend(tweets.into_iter().map(|t| (t.id, t)));
        }
        let ids = merge_newest(&sources, limit);
        let next_before = (ids.len() == limit).then(|| ids[ids.len() - 1]);
        Ok(Page {
            tweets: self.hydrate(&ids, known).await?,
            next_before,
        })
    }

    /// A page of `author`'s own tweets older than `before`, newest first.
    pub async fn user_tweets(
        &self,
        author: &str,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Page, StorageError> {
        let tweets = self.store.recent_tweets(author, before, limit).await?;
        let next_before = (tweets.len() == limit).then(|| tweets[tweets.len() - 1].id);
        Ok(Page {
            tweets,
            next_before,
        })
    }

    /// The oldest id of a full timeline (see [`crate::cache::CachedPage::floor`]).
    fn floor_of(&self, newest_first: &[i64]) -> Option<i64> {
        (newest_first.len() >= self.settings.cap)
            .then(|| newest_first.last().copied())
            .flatten()
    }

    /// The celebrities `user` follows (their tweets are merged on read).
    async fn followed_celebrities(&self, user: &str) -> Result<Vec<String>, StorageError> {
        let celebrities = self.graph(GraphSet::Celebrities).await?;
        if celebrities.is_empty() {
            return Ok(Vec::new());
        }
        let following: HashSet<String> = self
            .graph(GraphSet::Following(user))
            .await?
            .into_iter()
            .collect();
        Ok(celebrities
            .into_iter()
            .filter(|c| following.contains(c))
            .collect())
    }

    /// The newest `cap` ids of `user`'s home timeline computed from the store: the user's own
    /// tweets and those of the non-celebrities they follow, by a k-way merge that reads each
    /// author's tweets page by page. Written to Redis when `write` (and no removal cancelled
    /// the rebuild meanwhile).
    pub async fn rebuild(&self, user: &str, write: bool) -> Result<Vec<i64>, StorageError> {
        let token = if write {
            match self.cache.begin_rebuild(user).await {
                Ok(token) => Some(token),
                Err(error) => {
                    tracing::warn!(%error, "timeline rebuild not announced; not writing it");
                    None
                }
            }
        } else {
            None
        };
        // The same celebrity set readers merge from (see `reconcile_celebrity`).
        let celebrities: HashSet<String> = self
            .graph(GraphSet::Celebrities)
            .await?
            .into_iter()
            .collect();
        let mut authors: Vec<String> = self
            .store
            .following(user)
            .await?
            .into_iter()
            .filter(|a| !celebrities.contains(a))
            .collect();
        authors.push(user.to_string());
        let ids = self.newest_of(&authors, self.settings.cap).await?;
        if let Some(token) = token {
            match self.cache.finish_rebuild(user, &token, &ids).await {
                Ok(true) => self.timeline_writes.with_label_values(&["rebuild"]).inc(),
                Ok(false) => tracing::debug!(user, "rebuild cancelled by a removal"),
                Err(error) => tracing::warn!(%error, "rebuilt timeline not written"),
            }
        }
        Ok(ids)
    }

    /// The newest `limit` tweet ids of `authors`, merged lazily: one page per author to start,
    /// the next page of an author only when the merge has used up the previous one.
    async fn newest_of(&self, authors: &[String], limit: usize) -> Result<Vec<i64>, StorageError> {
        let mut pages: Vec<VecDeque<i64>> = Vec::with_capacity(authors.len());
        let mut exhausted: Vec<bool> = Vec::with_capacity(authors.len());
        let mut heap = BinaryHeap::new();
        for (i, author) in authors.iter().enumerate() {
            let page = self.store.recent_tweets(author, None, REBUILD_PAGE).await?;
            exhausted.push(page.len() < REBUILD_PAGE);
            let mut ids: VecDeque<i64> = page.iter().map(|t| t.id).collect();
            if let Some(id) = ids.pop_front() {
                heap.push((id, i));
            }
            pages.push(ids);
        }
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            let Some((id, i)) = heap.pop() else { break };
            out.push(id);
            if pages[i].is_empty() && !exhausted[i] {
                let page = self
                    .store
                    .recent_tweets(&authors[i], Some(id), REBUILD_PAGE)
                    .await?;
                exhausted[i] = page.len() < REBUILD_PAGE;
                pages[i].extend(page.iter().map(|t| t.id));
            }
            if let Some(next) = pages[i].pop_front() {
                heap.push((next, i));
            }
        }
        Ok(out)
    }

    /// The tweets of `ids`, in order: from `known`, then the tweet cache, then the store
    /// (filling the cache). Ids whose tweet is gone (deleted) are dropped.
    async fn hydrate(
        &self,
        ids: &[i64],
        mut known: HashMap<i64, Tweet>,
    ) -> Result<Vec<Tweet>, StorageError> {
        let missing: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|id| !known.contains_key(id))
            .collect();
        match self.cache.tweets(&missing).await {
            Ok(cached) => {
                for tweet in cached.into_iter().flatten() {
                    known.insert(tweet.id, tweet);
                }
            }
            Err(error) => tracing::warn!(%error, "tweet cache unavailable"),
        }
        let mut filled = Vec::new();
        for &id in ids {
            if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(id)
                && let Some(tweet) = self.store.tweet(id).await?
            {
                filled.push(tweet.clone());
                slot.insert(tweet);
            }
        }
        if !filled.is_empty()
            && let Err(error) = self.cache.put_tweets(&filled).await
        {
            tracing::debug!(%error, "tweet cache not filled");
        }
        Ok(ids.iter().filter_map(|id| known.remove(id)).collect())
    }

    /// A social-graph set from Redis, loaded from the store when it is not cached (and read
    /// from the store alone when Redis is unavailable).
    pub(crate) async fn graph(&self, set: GraphSet<'_>) -> Result<Vec<String>, StorageError> {
        match self.cache.members(set).await {
            Ok(Some(members)) => return Ok(members),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "graph cache unavailable; reading the store");
                return self.graph_from_store(set).await;
            }
        }
        let token = self.cache.begin_load(set).await;
        let members = self.graph_from_store(set).await?;
        match token {
            Ok(token) => {
                if let Err(error) = self.cache.finish_load(set, &token, &members).await {
                    tracing::warn!(%error, "graph set not cached");
                }
            }
            Err(error) => tracing::warn!(%error, "graph load not announced; not caching it"),
        }
        Ok(members)
    }

    async fn graph_from_store(&self, set: GraphSet<'_>) -> Result<Vec<String>, StorageError> {
        match set {
            GraphSet::Following(user) => self.store.following(user).await,
            GraphSet::Followers(user) => self.store.followers(user).await,
            GraphSet::Celebrities => self.store.celebrities().await,
        }
    }
}

/// Up to `limit` of newest-first `ids` older than `before`.
fn below(ids: &[i64], before: Option<i64>, limit: usize) -> Vec<i64> {
    ids.iter()
        .copied()
        .filter(|&id| before.is_none_or(|b| id < b))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_exclusive() {
        assert_eq!(below(&[9, 7, 5, 3], Some(7), 2), vec![5, 3]);
        assert_eq!(below(&[9, 7, 5, 3], None, 3), vec![9, 7, 5]);
    }
}
