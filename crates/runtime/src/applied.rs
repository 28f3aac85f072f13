//! [`AppliedOffsets`]: which records a read-modify-write view has already applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The last applied offset per partition, stored inside a view row that one consumer updates
/// with read-modify-write (a counter, for example).
///
/// All records of one key share a partition and are applied in offset order, so remembering
/// the last offset per partition is enough to make applying a record twice (a redelivery after
/// a crash between the write and the offset commit) a no-op. Serialized as a plain JSON map
/// `{"<partition>": <offset>}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppliedOffsets(BTreeMap<i32, i64>);

impl AppliedOffsets {
    /// Records `partition`/`offset` as applied; false (and no change) if it, or a later offset
    /// of the partition, already was.
    pub fn advance(&mut self, partition: i32, offset: i64) -> bool {
        if self.0.get(&partition).is_some_and(|&last| offset <= last) {
            return false;
        }
        self.0.insert(partition, offset);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_offset_applies_once_and_partitions_are_independent() {
        let mut applied = AppliedOffsets::default();
        assert!(applied.advance(0, 5));
        assert!(!applied.advance(0, 5));
        assert!(!applied.advance(0, 4));
        assert!(applied.advance(1, 2));
        assert!(applied.advance(0, 6));
        assert_eq!(serde_json::to_string(&applied).unwrap(), r#"{"0":6,"1":2}"#);
    }
}
