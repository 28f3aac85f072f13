//! A Bloom filter for the seen-URL set: "have we queued this URL before?" in a fixed amount of
//! memory, with no false negatives and a chosen rate of false positives.
//!
//! A false positive makes the crawler skip a URL it has not seen, which is the cheap mistake;
//! a false negative would refetch, which is what the filter exists to prevent, and cannot
//! happen. Sizing follows the textbook optimum: for `n` items at false-positive rate `p`,
//! `m = ceil(-n ln p / (ln 2)²)` bits and `k = round(m / n · ln 2)` hash functions.
//!
//! The `k` bit positions come from two 64-bit hashes by double hashing (Kirsch and
//! Mitzenmacher, "Less hashing, same performance"). The hash is defined here, not taken from
//! `std`, because a filter outlives a process (snapshots, other replicas) and must hash the
//! same way in every build; `std`'s `DefaultHasher` may change between Rust releases. It is
//! not collision-resistant: a site that crafts colliding URLs can only hide its own pages.

use std::f64::consts::LN_2;

/// Seeds of the two hashes (hex digits of π), fixed forever: changing them invalidates every
/// stored filter.
const SEED_1: u64 = 0x243F_6A88_85A3_08D3;
const SEED_2: u64 = 0x1319_8A2E_0370_7344;
/// 2^64 / φ, which spreads the length into the starting state.
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Why a filter cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BloomError {
    /// The false-positive rate is not strictly between 0 and 1.
    #[error("false-positive rate must be strictly between 0 and 1, got {0}")]
    InvalidRate(f64),
    /// The filter would need more memory than this machine can address.
    #[error("{expected_items} items at a false-positive rate of {rate} need too many bits")]
    TooLarge {
        /// The expected number of items asked for.
        expected_items: u64,
        /// The false-positive rate asked for.
        rate: f64,
    },
}

/// A Bloom filter over byte strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BloomFilter {
    words: Vec<u64>,
    bits: u64,
    hashes: u32,
    len: u64,
    ones: u64,
}

impl BloomFilter {
    /// A filter for `expected_items` items (0 is taken as 1) with false-positive rate
    /// `false_positive_rate` once that many are inserted. Inserting more raises the rate; see
    /// [`BloomFilter::expected_false_positive_rate`].
    pub fn with_rate(expected_items: u64, false_positive_rate: f64) -> Result<Self, BloomError> {
        if !(false_positive_rate > 0.0 && false_positive_rate < 1.0) {
            return Err(BloomError::InvalidRate(false_positive_rate));
        }
        let too_large = BloomError::TooLarge {
            expected_items,
            rate: false_positive_rate,
        };
        let bits = optimal_bits(expected_items, false_positive_rate);
        // Positions are computed modulo a u64; `bits` is finite because 0 < p < 1.
        if bits >= 2f64.powi(63) {
            return Err(too_large);
        }
        // Checked above: finite, positive and below 2^63, so the cast is exact enough.
        let bits = (bits as u64).max(1);
        let words = usize::try_from(bits.div_ceil(64)).map_err(|_| too_large)?;
        Ok(Self {
            words: vec![0; words],
            bits,
            hashes: optimal_hashes(bits, expected_items),
            len: 0,
            ones: 0,
        })
    }

    /// Adds `item`. Returns `true` if it was not (as far as the filter can tell) present
    /// before, so that check-and-insert is one call: `if seen.insert(url) { enqueue(url) }`.
    pub fn insert(&mut self, item: &[u8]) -> bool {
        let mut new = false;
        for position in self.positions(item) {
            let (word, mask) = bit_location(position);
            if self.words[word] & mask == 0 {
                self.words[word] |= mask;
                self.ones += 1;
                new = true;
            }
        }
        if new {
            self.len += 1;
        }
        new
    }

    /// `false` if `item` was never inserted; `true` if it was, or by a false positive.
    pub fn might_contain(&self, item: &[u8]) -> bool {
        self.positions(item).all(|position| {
            let (word, mask) = bit_location(position);
            self.words[word] & mask != 0
        })
    }

    /// Size of the filter in bits.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Number of hash functions (bit positions per item).
    pub fn hashes(&self) -> u32 {
        self.hashes
    }

    /// Number of items inserted. Repeated items and items that were already false positives
    /// set no new bit and are not counted.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing has been inserted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The probability that an item never inserted is reported present, at the current fill:
    /// (fraction of bits set)^k. Measured on the bits rather than estimated from `len`, so it
    /// stays right when more items than planned were inserted.
    pub fn expected_false_positive_rate(&self) -> f64 {
        // u64 to f64 loses precision only past 2^53 bits, far beyond any filter we build.
        (self.ones as f64 / self.bits as f64).powi(self.hashes as i32)
    }

    /// Bit positions of `item`: `h1 + i·h2 mod m` for `i` in `0..k`. `h2` is made odd so that
    /// it is never 0, which would put all k positions on one bit.
    fn positions(&self, item: &[u8]) -> impl Iterator<Item = u64> + use<> {
        let first = hash64(item, SEED_1);
        let step = hash64(item, SEED_2) | 1;
        let bits = self.bits;
        (0..u64::from(self.hashes)).map(move |i| first.wrapping_add(i.wrapping_mul(step)) % bits)
    }
}

/// The word index and bit mask of bit `position`. Positions are below `bits`, and the filter
/// has `ceil(bits / 64)` words, so the index is always in range (and fits a `usize`, which
/// [`BloomFilter::with_rate`] checked).
fn bit_location(position: u64) -> (usize, u64) {
    ((position / 64) as usize, 1 << (position % 64))
}

/// `-n ln p / (ln 2)²`, rounded up: bits for `n` items at false-positive rate `p`.
fn optimal_bits(expected_items: u64, false_positive_rate: f64) -> f64 {
    let n = expected_items.max(1) as f64;
    (-n * false_positive_rate.ln() / (LN_2 * LN_2)).ceil()
}

/// `m / n · ln 2`, rounded, at least 1: the number of hashes that minimizes false positives.
fn optimal_hashes(bits: u64, expected_items: u64) -> u32 {
    let per_item = bits as f64 / expected_items.max(1) as f64;
    // Saturates on absurd inputs; `p` would need to be below 1e-1000000000 to get there.
    ((per_item * LN_2).round() as u32).max(1)
}

/// A 64-bit hash of `bytes`, stable across platforms and Rust versions: each 8-byte
/// little-endian word is XORed into the state, which then goes through the SplitMix64
/// finalizer (a bijection with full avalanche). The length goes into the starting state so
/// that zero padding of the last word cannot make `a` and `a\0` collide.
fn hash64(bytes: &[u8], seed: u64) -> u64 {
    let mut state = mix64(seed ^ (bytes.len() as u64).wrapping_mul(GOLDEN_GAMMA));
    for chunk in bytes.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        state = mix64(state ^ u64::from_le_bytes(word));
    }
    state
}

/// The SplitMix64 finalizer (Steele, Lea and Flood; the variant Java's `SplittableRandom`
/// uses).
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use proptest::collection;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn inserted_items_are_always_found(
            items in collection::vec(collection::vec(any::<u8>(), 0..40), 0..200),
            rate in 0.0001f64..0.5,
        ) {
            let mut filter = BloomFilter::with_rate(items.len() as u64, rate).unwrap();
            for item in &items {
                filter.insert(item);
            }
            for item in &items {
                prop_assert!(filter.might_contain(item));
                prop_assert!(!filter.insert(item));
            }
        }
    }

    fn page(i: u32) -> Vec<u8> {
        format!("https://example.com/articles/{i}?page=1").into_bytes()
    }

    fn fresh(i: u32) -> Vec<u8> {
        format!("https://example.org/other/{i}").into_bytes()
    }

    #[test]
    fn sizing_follows_the_formulas() {
        let filter = BloomFilter::with_rate(1_000_000, 0.01).unwrap();
        // -1e6 · ln 0.01 / ln²2 = 9_585_058.4
        assert_eq!(filter.bits(), 9_585_059);
        assert_eq!(filter.hashes(), 7);
        assert_eq!(filter.words.len(), 149_767);

        // (n, p, bits, hashes)
        let table = [
            (1_000, 0.01, 9_586, 7),
            (1_000, 0.001, 14_378, 10),
            (1_000_000, 0.1, 4_792_530, 3),
            (1, 0.5, 2, 1),
            (0, 0.5, 2, 1),
        ];
        for (n, p, bits, hashes) in table {
            let filter = BloomFilter::with_rate(n, p).unwrap();
            assert_eq!(
                (filter.bits(), filter.hashes()),
                (bits, hashes),
                "n={n} p={p}"
            );
        }
    }

    #[test]
    fn invalid_rates_are_refused() {
        for rate in [0.0, 1.0, -0.5, 2.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    BloomFilter::with_rate(10, rate),
                    Err(BloomError::InvalidRate(_))
                ),
                "{rate}"
            );
        }
        assert!(matches!(
            BloomFilter::with_rate(u64::MAX, 1e-300),
            Err(BloomError::TooLarge { .. })
        ));
    }

    #[test]
    fn no_false_negatives_and_the_promised_false_positive_rate() {
        const N: u32 = 100_000;
        let mut filter = BloomFilter::with_rate(u64::from(N), 0.01).unwrap();
        let mut inserted_as_new = 0;
        for i in 0..N {
            if filter.insert(&page(i)) {
                inserted_as_new += 1;
            }
        }
        for i in 0..N {
            assert!(filter.might_contain(&page(i)), "false negative for {i}");
        }
        let false_positives = (0..N).filter(|&i| filter.might_contain(&fresh(i))).count();
        let measured = false_positives as f64 / f64::from(N);
        assert!(measured <= 0.02, "false-positive rate {measured}");
        assert!(
            measured >= 0.005,
            "suspiciously few false positives: {measured}"
        );

        // Items that were already false positives are not counted as inserted.
        assert_eq!(filter.len(), inserted_as_new);
        assert!(filter.len() > u64::from(N) * 98 / 100);
        let expected = filter.expected_false_positive_rate();
        assert!(
            (0.008..0.012).contains(&expected),
            "expected rate {expected}"
        );
    }

    #[test]
    fn insert_reports_new_items() {
        let mut filter = BloomFilter::with_rate(100, 0.01).unwrap();
        assert!(filter.is_empty());
        assert!(!filter.might_contain(b"a"));
        assert_eq!(filter.expected_false_positive_rate(), 0.0);
        assert!(filter.insert(b"a"));
        assert!(!filter.insert(b"a"));
        assert!(filter.insert(b""));
        assert!(filter.might_contain(b""));
        assert_eq!(filter.len(), 2);
        assert!(!filter.is_empty());
        assert!(filter.expected_false_positive_rate() > 0.0);
    }

    #[test]
    fn overfilling_raises_the_expected_rate() {
        let mut filter = BloomFilter::with_rate(1_000, 0.01).unwrap();
        for i in 0..10_000 {
            filter.insert(&page(i));
        }
        assert!(filter.expected_false_positive_rate() > 0.5);
    }

    #[test]
    fn hash_is_pinned() {
        // These values must never change: stored filters depend on them. They were computed
        // by an independent reimplementation of `hash64`, not copied from this one's output.
        assert_eq!(hash64(b"", SEED_1), 0xE9E0_033E_3BAD_AF36);
        assert_eq!(
            hash64(b"https://example.com/", SEED_1),
            0x2972_23FD_2770_2EC8
        );
        assert_eq!(
            hash64(b"https://example.com/", SEED_2),
            0x3941_FF59_0EF2_835C
        );
        // Zero padding and length: `a` and `a\0` differ.
        assert_ne!(hash64(b"a", SEED_1), hash64(b"a\0", SEED_1));
        assert_ne!(hash64(b"", SEED_1), hash64(b"\0", SEED_1));
    }
}
