use proptest::prelude::*;

use super::*;
use ReceiptKind::{Delivered, Read};

#[test]
fn sequence_numbers_start_at_one_without_gaps() {
    let mut state = ConversationState::default();
    assert_eq!(state.next_seq(), 1);
    assert_eq!(
        state.record_message(1, "alice", 10, "hi", ContentType::Text),
        Ok(true)
    );
    assert_eq!(state.next_seq(), 2);
    assert_eq!(
        state.record_message(3, "bob", 20, "skip", ContentType::Text),
        Err(SequenceError::Gap {
            expected: 2,
            got: 3
        })
    );
    assert_eq!(
        state.record_message(2, "bob", 20, "", ContentType::Image),
        Ok(true)
    );
    assert_eq!(
        state,
        ConversationState {
            last_seq: 2,
            last_message_at_ms: 20,
            last_preview: "[image]".into(),
            last_sender_id: "bob".into(),
        }
    );
    // A replay of an old number changes nothing.
    let before = state.clone();
    assert_eq!(
        state.record_message(1, "alice", 10, "hi", ContentType::Text),
        Ok(false)
    );
    assert_eq!(
        state.record_message(2, "mallory", 99, "x", ContentType::Text),
        Ok(false)
    );
    assert_eq!(state, before);
}

#[test]
fn unread_counts_from_the_read_position() {
    let member = MemberState {
        delivered_up_to: 7,
        read_up_to: 4,
    };
    assert_eq!(member.unread(10), 6);
    assert_eq!(member.unread(4), 0);
    // A stale last_seq never makes the count negative.
    assert_eq!(member.unread(2), 0);
    assert_eq!(MemberState::default().unread(0), 0);
}

#[test]
fn receipts_only_move_forward() {
    let mut m = MemberState::default();
    assert!(m.apply_receipt(Delivered, 3, 10));
    assert_eq!(
        m,
        MemberState {
            delivered_up_to: 3,
            read_up_to: 0
        }
    );
    assert!(!m.apply_receipt(Delivered, 2, 10), "older receipt");
    assert!(!m.apply_receipt(Delivered, 3, 10), "repeated receipt");
    assert!(m.apply_receipt(Read, 2, 10));
    assert_eq!(
        m,
        MemberState {
            delivered_up_to: 3,
            read_up_to: 2
        }
    );
    assert!(!m.apply_receipt(Read, 1, 10));
    assert_eq!(
        m,
        MemberState {
            delivered_up_to: 3,
            read_up_to: 2
        }
    );
}

#[test]
fn read_implies_delivered() {
    let mut m = MemberState::default();
    assert!(m.apply_receipt(Read, 5, 10));
    assert_eq!(
        m,
        MemberState {
            delivered_up_to: 5,
            read_up_to: 5
        }
    );
    // Delivered behind read changes nothing.
    assert!(!m.apply_receipt(Delivered, 4, 10));
}

#[test]
fn receipts_are_capped_at_the_last_message() {
    let mut m = MemberState::default();
    assert!(m.apply_receipt(Read, u64::MAX, 6));
    assert_eq!(
        m,
        MemberState {
            delivered_up_to: 6,
            read_up_to: 6
        }
    );
    assert_eq!(m.unread(6), 0);
    // Nothing to receipt yet.
    let mut empty = MemberState::default();
    assert!(!empty.apply_receipt(Read, 3, 0));
    assert_eq!(empty, MemberState::default());
}

#[test]
fn previews() {
    assert_eq!(preview("hello", ContentType::Text), "hello");
    assert_eq!(
        preview("line one\nline\ttwo", ContentType::Text),
        "line one line two"
    );
    let long = "가".repeat(100);
    let p = preview(&long, ContentType::Text);
    assert_eq!(p.chars().count(), MAX_PREVIEW_CHARS);
    assert_eq!(p, "가".repeat(80));
    assert_eq!(preview("caption", ContentType::Image), "[image]");
    assert_eq!(preview("", ContentType::File), "[file]");
}

#[test]
fn message_keys() {
    assert_eq!(message_key("alice", "c-1"), "alice:c-1");
    // The sender has no ':', so the first ':' splits the key even when the client's id has one.
    assert_ne!(message_key("ab", "c"), message_key("a", "b:c"));
    assert_eq!(
        message_key("alice", "a:b").split_once(':'),
        Some(("alice", "a:b"))
    );
}

#[test]
fn message_ids_sort_by_sequence() {
    let c = "d-0123456789abcdef0123456789abcdef";
    assert_eq!(message_id(c, 7), format!("{c}:00000000000000000007"));
    assert_eq!(message_id(c, u64::MAX), format!("{c}:18446744073709551615"));
    let mut ids: Vec<String> = [10, 9, 100, 1, u64::MAX, 0]
        .iter()
        .map(|s| message_id(c, *s))
        .collect();
    ids.sort();
    let seqs: Vec<u64> = ids
        .iter()
        .map(|id| parse_message_id(id).unwrap().1)
        .collect();
    assert_eq!(seqs, [0, 1, 9, 10, 100, u64::MAX]);
    assert_eq!(parse_message_id(&message_id(c, 42)), Some((c, 42)));
}

#[test]
fn malformed_message_ids() {
    for bad in [
        "",
        "no-seq",
        ":00000000000000000001",
        "c:1",
        "c:0000000000000000001x",
        "c:99999999999999999999",
        "c:+0000000000000000001",
    ] {
        assert_eq!(parse_message_id(bad), None, "{bad}");
    }
}

fn receipt() -> impl Strategy<Value = (ReceiptKind, u64)> {
    (prop_oneof![Just(Delivered), Just(Read)], 0u64..50)
}

proptest! {
    /// Whatever order receipts arrive in, the positions end at the maxima (capped at last_seq).
    #[test]
    fn receipts_in_any_order_yield_the_max(
        receipts in proptest::collection::vec(receipt(), 0..20),
        last_seq in 0u64..60,
        seed in any::<u64>(),
    ) {
        let mut shuffled = receipts.clone();
        // A deterministic shuffle driven by the seed.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let apply = |list: &[(ReceiptKind, u64)]| {
            let mut m = MemberState::default();
            for (kind, up_to) in list {
                m.apply_receipt(*kind, *up_to, last_seq);
                prop_assert!(m.read_up_to <= m.delivered_up_to);
                prop_assert!(m.delivered_up_to <= last_seq);
            }
            Ok(m)
        };
        let in_order = apply(&receipts)?;
        let reordered = apply(&shuffled)?;
        let max_read = receipts.iter().filter(|(k, _)| *k == Read).map(|(_, s)| *s).max().unwrap_or(0);
        let max_any = receipts.iter().map(|(_, s)| *s).max().unwrap_or(0);
        prop_assert_eq!(in_order, reordered);
        prop_assert_eq!(in_order.read_up_to, max_read.min(last_seq));
        prop_assert_eq!(in_order.delivered_up_to, max_any.min(last_seq));
    }

    /// A position never moves back, whatever receipt comes.
    #[test]
    fn positions_never_decrease(
        receipts in proptest::collection::vec(receipt(), 0..20),
        last_seq in 0u64..60,
    ) {
        let mut m = MemberState::default();
        for (kind, up_to) in receipts {
            let before = m;
            let changed = m.apply_receipt(kind, up_to, last_seq);
            prop_assert!(m.read_up_to >= before.read_up_to);
            prop_assert!(m.delivered_up_to >= before.delivered_up_to);
            prop_assert_eq!(changed, m != before);
        }
    }
}
