//! Pure decisions of the timeline: which fan-out path an author takes, how a fan-out is cut
//! into work items, and how sources are merged into a page. No I/O here.

/// How an author's tweets reach their followers' home timelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanoutPath {
    /// Fan-out on write: pushed into every follower's cached timeline.
    Push,
    /// Fan-out on read: merged into followers' timelines when they read (celebrities).
    Pull,
}

/// The path of an author with `followers` followers: at or above `threshold`, pull.
pub fn fanout_path(followers: u64, threshold: u64) -> FanoutPath {
    if followers >= threshold {
        FanoutPath::Pull
    } else {
        FanoutPath::Push
    }
}

/// How a push reaches its recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Few enough recipients to write them all while handling the event.
    Direct,
    /// One `timeline.fanout` work item per batch, shared among the processor's instances.
    Batched(Vec<std::ops::Range<usize>>),
}

/// Cuts `recipients` into batches of at most `batch` (≥ 1); direct when one batch holds them.
pub fn delivery(recipients: usize, batch: usize) -> Delivery {
    let batch = batch.max(1);
    if recipients <= batch {
        return Delivery::Direct;
    }
    Delivery::Batched(
        (0..recipients)
            .step_by(batch)
            .map(|start| start..(start + batch).min(recipients))
            .collect(),
    )
}

/// The newest `limit` distinct ids of several newest-first lists, newest first.
pub fn merge_newest(sources: &[Vec<i64>], limit: usize) -> Vec<i64> {
    let mut all: Vec<i64> = sources.iter().flatten().copied().collect();
    all.sort_unstable_by(|a, b| b.cmp(a));
    all.dedup();
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn threshold_is_inclusive() {
        assert_eq!(fanout_path(9_999, 10_000), FanoutPath::Push);
        assert_eq!(fanout_path(10_000, 10_000), FanoutPath::Pull);
    }

    #[test]
    fn batches_cover_every_recipient_once() {
        assert_eq!(delivery(1000, 1000), Delivery::Direct);
        assert_eq!(delivery(0, 1000), Delivery::Direct);
        assert_eq!(
            delivery(2501, 1000),
            Delivery::Batched(vec![0..1000, 1000..2000, 2000..2501])
        );
    }

    #[test]
    fn merge_interleaves_and_dedups() {
        let pushed = vec![90, 70, 50, 30];
        let celebrity = vec![80, 70, 20];
        assert_eq!(
            merge_newest(&[pushed, celebrity], 5),
            vec![90, 80, 70, 50, 30]
        );
    }

    proptest! {
        #[test]
        fn merged_pages_chain_without_gaps(
            mut a in proptest::collection::vec(1i64..1000, 0..60),
            mut b in proptest::collection::vec(1i64..1000, 0..60),
            limit in 1usize..15,
        ) {
            // Each source is newest first without repeats (a sorted set, an author's tweets);
            // the same id may be in both (a celebrity's tweet pushed before they became one).
            for v in [&mut a, &mut b] {
                v.sort_unstable_by(|x, y| y.cmp(x));
                v.dedup();
            }
            // Paging with "older than the last id" over the merge yields the merge of all.
            let mut cursor = i64::MAX;
            let mut paged: Vec<i64> = Vec::new();
            loop {
                let below = |v: &Vec<i64>| v.iter().copied().filter(|&x| x < cursor).take(limit).collect::<Vec<_>>();
                let page = merge_newest(&[below(&a), below(&b)], limit);
                paged.extend(&page);
                if page.len() < limit { break; }
                cursor = *page.last().unwrap();
            }
            prop_assert_eq!(paged, merge_newest(&[a, b], usize::MAX));
        }
    }
}
