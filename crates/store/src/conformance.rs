//! The behaviour every adapter must show, as a library so that each adapter's test runs the
//! very same assertions (`tests/conformance_sqlite.rs`, `tests/conformance_scylla.rs`).
//!
//! Each case works in namespaces of its own (unique per process and call), so the suite can
//! run against a store that holds other data. Store calls that fail return their error;
//! behaviour that differs from the contract panics with a message naming the case.
//!
//! A new table family adds its cases here and calls them from [`run_all`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::Barrier;

use crate::{MAX_KEY_BYTES, MAX_LIST_LIMIT, MAX_VALUE_BYTES, Store, StoreError};

/// How many callers race on one key in the `put_if_absent` race cases.
pub const RACERS: usize = 16;

/// Runs every case that needs only one store handle.
pub async fn run_all(store: Arc<dyn Store>) -> Result<(), StoreError> {
    let s = store.as_ref();
    announce(s, "ping_and_backend");
    ping_and_backend(s).await?;
    announce(s, "get_put_delete");
    get_put_delete(s).await?;
    announce(s, "put_if_absent_inserts_once");
    put_if_absent_inserts_once(s).await?;
    announce(s, "put_if_absent_race");
    put_if_absent_race(store.clone(), store.clone()).await?;
    announce(s, "values_round_trip");
    values_round_trip(s).await?;
    announce(s, "limits_enforced");
    limits_enforced(s).await?;
    announce(s, "namespaces_isolated");
    namespaces_isolated(s).await?;
    announce(s, "list_pages_in_key_order");
    list_pages_in_key_order(s).await?;
    announce(s, "count_tracks_writes");
    count_tracks_writes(s).await?;
    Ok(())
}

fn announce(store: &dyn Store, case: &str) {
    eprintln!("conformance [{}]: {case}", store.backend());
}

/// A namespace no other case or run uses.
pub fn fresh_namespace(case: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("conformance/{case}/{}-{nanos}-{seq}", std::process::id())
}

/// `ping` answers and `backend` names a known adapter.
pub async fn ping_and_backend(store: &dyn Store) -> Result<(), StoreError> {
    store.ping().await?;
    assert!(
        ["sqlite", "scylla"].contains(&store.backend()),
        "unknown backend name {:?}",
        store.backend()
    );
    Ok(())
}

/// `put` creates and replaces, `get` reads, `delete` removes and is idempotent.
pub async fn get_put_delete(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("get_put_delete");
    assert_eq!(kv.get(&ns, "k").await?, None, "get of a missing key");
    kv.put(&ns, "k", b"one".to_vec()).await?;
    assert_eq!(kv.get(&ns, "k").await?.as_deref(), Some(&b"one"[..]));
    kv.put(&ns, "k", b"one".to_vec()).await?;
    kv.put(&ns, "k", b"two".to_vec()).await?;
    assert_eq!(
        kv.get(&ns, "k").await?.as_deref(),
        Some(&b"two"[..]),
        "put replaces"
    );
    kv.delete(&ns, "k").await?;
    assert_eq!(kv.get(&ns, "k").await?, None, "get after delete");
    kv.delete(&ns, "k").await?;
    kv.delete(&ns, "never-written").await?;
    Ok(())
}

/// `put_if_absent` inserts only into an empty slot and never overwrites.
pub async fn put_if_absent_inserts_once(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("put_if_absent");
    assert!(
        kv.put_if_absent(&ns, "k", b"first".to_vec()).await?,
        "first insert"
    );
    assert!(
        !kv.put_if_absent(&ns, "k", b"second".to_vec()).await?,
        "second insert"
    );
    assert_eq!(kv.get(&ns, "k").await?.as_deref(), Some(&b"first"[..]));
    kv.put(&ns, "p", b"put".to_vec()).await?;
    assert!(
        !kv.put_if_absent(&ns, "p", b"later".to_vec()).await?,
        "after put"
    );
    assert_eq!(kv.get(&ns, "p").await?.as_deref(), Some(&b"put"[..]));
    kv.delete(&ns, "k").await?;
    assert!(
        kv.put_if_absent(&ns, "k", b"again".to_vec()).await?,
        "after delete"
    );
    assert_eq!(kv.get(&ns, "k").await?.as_deref(), Some(&b"again"[..]));
    Ok(())
}

/// [`RACERS`] concurrent `put_if_absent` on one key, alternating between two handles (pass
/// the same store twice, or two connections to one database): exactly one wins and the
/// stored value is the winner's.
pub async fn put_if_absent_race(a: Arc<dyn Store>, b: Arc<dyn Store>) -> Result<(), StoreError> {
    let ns = fresh_namespace("race");
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut tasks = Vec::with_capacity(RACERS);
    for i in 0..RACERS {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (ns, barrier) = (ns.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let won = store
                .kv()
                .put_if_absent(&ns, "contended", format!("racer-{i}").into_bytes())
                .await?;
            Ok::<_, StoreError>((i, won))
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task
            .await
            .map_err(|e| StoreError::backend("conformance", e))??;
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners of the race: {winners:?}");
    let stored = a.kv().get(&ns, "contended").await?;
    let expected = format!("racer-{}", winners[0]).into_bytes();
    assert_eq!(stored, Some(expected), "stored value is the winner's");
    assert_eq!(b.kv().count(&ns).await?, 1);
    Ok(())
}

/// Values come back byte for byte (empty, every byte value, exactly the limit), and keys
/// with non-ASCII text, quotes and SQL/CQL punctuation are stored as they are.
pub async fn values_round_trip(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("round_trip");
    let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let at_limit: Vec<u8> = (0..MAX_VALUE_BYTES).map(|i| (i % 251) as u8).collect();
    let max_key = "\u{1F5DD}".repeat(MAX_KEY_BYTES / 4);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("every-byte", every_byte),
        ("nul", vec![0, 0, 0]),
        ("at-limit", at_limit),
        ("ключ/日本/\u{1F5DD}", b"unicode".to_vec()),
        (
            "it's \"quoted\"; DROP TABLE kv; --",
            b"punctuation".to_vec(),
        ),
        (&max_key, b"longest key".to_vec()),
    ];
    for (key, value) in &cases {
        kv.put(&ns, key, value.clone()).await?;
    }
    for (key, value) in &cases {
        let got = kv.get(&ns, key).await?;
        assert!(got.as_ref() == Some(value), "value under {key:?} changed");
    }
    Ok(())
}

/// Oversized values, oversized or empty keys and namespaces, and oversized list limits are
/// rejected as permanent errors, and nothing is written.
pub async fn limits_enforced(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("limits");
    let too_big = vec![7u8; MAX_VALUE_BYTES + 1];
    for result in [
        kv.put(&ns, "big", too_big.clone()).await.map(drop),
        kv.put_if_absent(&ns, "big", too_big).await.map(drop),
    ] {
        match result {
            Err(e @ StoreError::ValueTooLarge { .. }) => assert!(!e.is_transient()),
            other => panic!("oversized value: expected ValueTooLarge, got {other:?}"),
        }
    }
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let long_ns = "n".repeat(crate::MAX_NAMESPACE_BYTES + 1);
    let rejected = [
        kv.put(&ns, &long_key, vec![1]).await.map(drop),
        kv.put(&ns, "", vec![1]).await.map(drop),
        kv.put("", "k", vec![1]).await.map(drop),
        kv.put(&long_ns, "k", vec![1]).await.map(drop),
        kv.get(&ns, &long_key).await.map(drop),
        kv.put_if_absent(&ns, "", vec![1]).await.map(drop),
        kv.delete(&ns, "").await.map(drop),
        kv.list(&ns, None, MAX_LIST_LIMIT + 1).await.map(drop),
        kv.count("").await.map(drop),
    ];
    for (i, result) in rejected.into_iter().enumerate() {
        match result {
            Err(e @ StoreError::InvalidInput(_)) => assert!(!e.is_transient()),
            other => panic!("bad input #{i}: expected InvalidInput, got {other:?}"),
        }
    }
    assert_eq!(kv.count(&ns).await?, 0, "a rejected write stored something");
    Ok(())
}

/// The same key in two namespaces (one a prefix of the other) holds two values; writes,
/// lists and counts in one never see the other.
pub async fn namespaces_isolated(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let a = fresh_namespace("isolated");
    let b = format!("{a}x");
    kv.put(&a, "k", b"a".to_vec()).await?;
    kv.put(&b, "k", b"b".to_vec()).await?;
    kv.put(&b, "only-b", b"b".to_vec()).await?;
    assert_eq!(kv.get(&a, "k").await?.as_deref(), Some(&b"a"[..]));
    assert_eq!(kv.get(&b, "k").await?.as_deref(), Some(&b"b"[..]));
    assert_eq!(kv.get(&a, "only-b").await?, None);
    assert_eq!(kv.count(&a).await?, 1);
    assert_eq!(kv.count(&b).await?, 2);
    let listed = kv.list(&a, None, 10).await?;
    assert_eq!(listed, vec![("k".to_owned(), b"a".to_vec())]);
    assert!(!kv.put_if_absent(&b, "k", b"x".to_vec()).await?);
    assert!(kv.put_if_absent(&a, "only-b", b"a".to_vec()).await?);
    kv.delete(&a, "k").await?;
    assert_eq!(kv.get(&b, "k").await?.as_deref(), Some(&b"b"[..]));
    Ok(())
}

/// `list` returns keys in UTF-8 byte order, pages with `after_key` without gaps or repeats,
/// ends with a short (or empty) page, and starts after an `after_key` that is not stored.
pub async fn list_pages_in_key_order(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("list");
    let mut keys: Vec<String> = (0..20).map(|i| format!("k{i:03}")).collect();
    keys.extend(["K", "a", "z", "é", "\u{1F5DD}", "k010a"].map(String::from));
    // Insert in an order unrelated to key order (7 is coprime with the key count, 26).
    let n = keys.len();
    for i in (0..n).map(|i| (i * 7) % n) {
        kv.put(&ns, &keys[i], keys[i].as_bytes().to_vec()).await?;
    }
    keys.sort();

    assert!(kv.list(&ns, None, 0).await?.is_empty(), "limit 0");
    let empty = fresh_namespace("list-empty");
    assert!(
        kv.list(&empty, None, 10).await?.is_empty(),
        "empty namespace"
    );

    for limit in [1, 7, 13, n, MAX_LIST_LIMIT] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = kv.list(&ns, after.as_deref(), limit).await?;
            assert!(page.len() <= limit, "page longer than limit {limit}");
            for (key, value) in &page {
                assert_eq!(value, key.as_bytes(), "value listed under {key:?}");
            }
            let short = page.len() < limit;
            after = page.last().map(|(k, _)| k.clone());
            seen.extend(page.into_iter().map(|(k, _)| k));
            if short {
                break;
            }
        }
        assert_eq!(seen, keys, "keys listed with limit {limit}");
    }

    let from_gap = kv.list(&ns, Some("k010b"), 3).await?;
    let gap_keys: Vec<&str> = from_gap.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        gap_keys,
        ["k011", "k012", "k013"],
        "after a key that is not stored"
    );
    let last = keys.last().map(String::as_str);
    assert!(
        kv.list(&ns, last, 5).await?.is_empty(),
        "after the last key"
    );
    Ok(())
}

/// `count` follows inserts, overwrites (no change), refused inserts and deletes.
pub async fn count_tracks_writes(store: &dyn Store) -> Result<(), StoreError> {
    let kv = store.kv();
    let ns = fresh_namespace("count");
    assert_eq!(kv.count(&ns).await?, 0);
    for key in ["a", "b", "c"] {
        kv.put(&ns, key, vec![1]).await?;
    }
    assert_eq!(kv.count(&ns).await?, 3);
    kv.put(&ns, "a", vec![2]).await?;
    assert!(!kv.put_if_absent(&ns, "b", vec![2]).await?);
    assert_eq!(kv.count(&ns).await?, 3, "after overwrites");
    kv.delete(&ns, "c").await?;
    assert_eq!(kv.count(&ns).await?, 2, "after delete");
    Ok(())
}

/// Data written through one handle is there after it is dropped and the store is opened
/// again with `open` (a reopened SQLite file, a new Scylla session); reopening applies no
/// migration twice.
pub async fn survives_reopen<F, Fut>(open: F) -> Result<(), StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Arc<dyn Store>, StoreError>>,
{
    let ns = fresh_namespace("reopen");
    let first = open().await?;
    first.kv().put(&ns, "kept", b"value".to_vec()).await?;
    assert!(first.kv().put_if_absent(&ns, "claimed", vec![1]).await?);
    drop(first);

    let second = open().await?;
    second.ping().await?;
    assert_eq!(
        second.kv().get(&ns, "kept").await?.as_deref(),
        Some(&b"value"[..]),
        "value lost on reopen"
    );
    assert!(!second.kv().put_if_absent(&ns, "claimed", vec![2]).await?);
    assert_eq!(second.kv().count(&ns).await?, 2);
    Ok(())
}
