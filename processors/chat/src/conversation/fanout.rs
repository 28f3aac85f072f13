//! How a persisted message reaches the members of its conversation: small conversations
//! directly by the `chat.sent` processor, large ones through `chat.fanout` work items that
//! any instance can take (as the seed's group chat does).

use std::ops::Range;

/// Conversations with fewer members than this are delivered directly (the seed: < 100).
pub const DEFAULT_DIRECT_FANOUT_MAX: usize = 100;
/// Members per `chat.fanout` work item.
pub const DEFAULT_FANOUT_BATCH: usize = 100;

/// The plan for delivering one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanoutPlan {
    /// The processor delivers to every member itself.
    Direct,
    /// One `chat.fanout` work item per range: indexes into the members in a stable order
    /// ([`super::Membership::user_ids`]), contiguous, in order, together covering all of them.
    Batched(Vec<Range<usize>>),
}

/// Plans the delivery of a message to `members` members: [`FanoutPlan::Direct`] below
/// `direct_max`, otherwise batches of `batch` members (the last one smaller). A `batch` of 0
/// is taken as 1.
pub fn fanout_plan(members: usize, direct_max: usize, batch: usize) -> FanoutPlan {
    if members < direct_max {
        return FanoutPlan::Direct;
    }
    let batch = batch.max(1);
    let ranges = (0..members)
        .step_by(batch)
        .map(|start| start..(start + batch).min(members))
        .collect();
    FanoutPlan::Batched(ranges)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn small_conversations_are_direct() {
        assert_eq!(fanout_plan(0, 100, 100), FanoutPlan::Direct);
        assert_eq!(fanout_plan(2, 100, 100), FanoutPlan::Direct);
        assert_eq!(fanout_plan(99, 100, 100), FanoutPlan::Direct);
    }

    #[test]
    fn large_ones_are_batched() {
        let whole = 0..100;
        assert_eq!(fanout_plan(100, 100, 100), FanoutPlan::Batched(vec![whole]));
        assert_eq!(
            fanout_plan(250, 100, 100),
            FanoutPlan::Batched(vec![0..100, 100..200, 200..250])
        );
        assert_eq!(
            fanout_plan(500, DEFAULT_DIRECT_FANOUT_MAX, DEFAULT_FANOUT_BATCH),
            FanoutPlan::Batched((0..5).map(|i| i * 100..(i + 1) * 100).collect())
        );
        assert_eq!(
            fanout_plan(3, 0, 0),
            FanoutPlan::Batched(vec![0..1, 1..2, 2..3])
        );
        assert_eq!(fanout_plan(0, 0, 10), FanoutPlan::Batched(vec![]));
    }

    proptest! {
        #[test]
        fn batches_cover_every_member_once(members in 0usize..2000, direct_max in 0usize..200, batch in 0usize..300) {
            match fanout_plan(members, direct_max, batch) {
                FanoutPlan::Direct => prop_assert!(members < direct_max),
                FanoutPlan::Batched(ranges) => {
                    prop_assert!(members >= direct_max);
                    let mut next = 0;
                    for range in &ranges {
                        prop_assert_eq!(range.start, next);
                        prop_assert!(!range.is_empty());
                        prop_assert!(range.len() <= batch.max(1));
                        next = range.end;
                    }
                    prop_assert_eq!(next, members);
                }
            }
        }
    }
}
