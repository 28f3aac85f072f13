//! Short codes: 7 Base62 characters, unique by construction and unpredictable without a key.
//!
//! A code is a counter value pushed through a keyed permutation of the code space
//! `[0, 62^7)` and written in Base62. Distinct counters give distinct codes (the permutation is
//! a bijection), so the create path never checks for collisions; without the key, consecutive
//! counters give unrelated codes.
//!
//! The permutation is a 6-round Feistel network on 42 bits (two 21-bit halves; 2^42 is just
//! above 62^7) whose round function is SHA-256 of the key, round number and half, with cycle
//! walking to stay inside `[0, 62^7)`: re-apply the network until the value falls inside,
//! which keeps it a bijection on the smaller set (on average 1.25 applications). The network
//! must never change once codes are issued, since uniqueness holds only under one permutation.

use sha2::{Digest, Sha256};

/// Length of a generated code.
pub const CODE_LEN: usize = 7;
/// Number of distinct generated codes: 62^7.
pub const CODE_SPACE: u64 = 3_521_614_606_208;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const HALF_BITS: u32 = 21;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUNDS: u8 = 6;

/// The keyed permutation from counter values to codes.
#[derive(Clone)]
pub struct CodeScrambler {
    key: [u8; 32],
}

impl CodeScrambler {
    /// A scrambler keyed by `secret` (any length; it is hashed).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: Sha256::digest(secret).into(),
        }
    }

    /// The code for counter value `n` (`n < CODE_SPACE`), or `None` past the space.
    pub fn code(&self, n: u64) -> Option<String> {
        (n < CODE_SPACE).then(|| encode_base62(self.scramble(n)))
    }

    /// The counter value a code was made from (the inverse of [`CodeScrambler::code`]).
    pub fn counter(&self, code: &str) -> Option<u64> {
        decode_base62(code).map(|v| self.unscramble(v))
    }

    fn scramble(&self, n: u64) -> u64 {
        let mut x = n;
        loop {
            x = self.feistel(x);
            if x < CODE_SPACE {
                return x;
            }
        }
    }

    fn unscramble(&self, y: u64) -> u64 {
        let mut x = y;
        loop {
            x = self.feistel_inverse(x);
            if x < CODE_SPACE {
                return x;
            }
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let (mut left, mut right) = (x >> HALF_BITS, x & HALF_MASK);
        for round in 0..ROUNDS {
            let next = left ^ self.round(round, right);
            left = right;
            right = next;
        }
        (left << HALF_BITS) | right
    }

    fn feistel_inverse(&self, y: u64) -> u64 {
        let (mut left, mut right) = (y >> HALF_BITS, y & HALF_MASK);
        for round in (0..ROUNDS).rev() {
            let previous = right ^ self.round(round, left);
            right = left;
            left = previous;
        }
        (left << HALF_BITS) | right
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(self.key);
        hasher.update([round]);
        hasher.update(half.to_le_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(bytes) & HALF_MASK
    }
}

/// `value` (< 62^7) as exactly 7 Base62 characters.
fn encode_base62(mut value: u64) -> String {
    let mut out = [b'0'; CODE_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|&b| b as char).collect()
}

/// The value of a 7-character Base62 code.
fn decode_base62(code: &str) -> Option<u64> {
    if code.len() != CODE_LEN {
        return None;
    }
    code.bytes().try_fold(0u64, |acc, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)? as u64;
        Some(acc * 62 + digit)
    })
}

/// Whether `code` has the shape of a generated code (7 Base62 characters).
pub fn is_generated_shape(code: &str) -> bool {
    code.len() == CODE_LEN && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    fn scrambler() -> CodeScrambler {
        CodeScrambler::new(b"test secret")
    }

    proptest! {
        #[test]
        fn every_counter_maps_to_a_code_and_back(n in 0..CODE_SPACE) {
            let s = scrambler();
            let code = s.code(n).unwrap();
            prop_assert!(is_generated_shape(&code));
            prop_assert_eq!(s.counter(&code), Some(n));
        }

        #[test]
        fn different_keys_give_different_codes(n in 0..CODE_SPACE) {
            let a = CodeScrambler::new(b"key a").code(n);
            let b = CodeScrambler::new(b"key b").code(n);
            // Equal by chance with probability 1/62^7 per value.
            prop_assert_ne!(a, b);
        }
    }

    #[test]
    fn codes_never_repeat_over_a_large_sample() {
        let s = scrambler();
        let mut seen = HashSet::new();
        for n in 0..300_000 {
            assert!(seen.insert(s.code(n).unwrap()), "repeat at counter {n}");
        }
        // A sample far along the space too.
        for n in (CODE_SPACE - 50_000)..CODE_SPACE {
            assert!(seen.insert(s.code(n).unwrap()), "repeat at counter {n}");
        }
        assert_eq!(s.code(CODE_SPACE), None);
    }

    #[test]
    fn consecutive_codes_share_no_obvious_pattern() {
        let s = scrambler();
        let codes: Vec<Vec<u8>> = (0..20_000)
            .map(|n| s.code(n).unwrap().into_bytes())
            .collect();
        let pairs = codes.len() - 1;
        let mut same_position = 0usize;
        let mut same_prefix2 = 0usize;
        for w in codes.windows(2) {
            same_position += w[0].iter().zip(&w[1]).filter(|(a, b)| a == b).count();
            same_prefix2 += usize::from(w[0][..2] == w[1][..2]);
        }
        // Unrelated codes agree in a position with probability 1/62: ~0.113 per pair.
        let per_pair = same_position as f64 / pairs as f64;
        assert!(
            per_pair < 0.2,
            "consecutive codes agree in {per_pair:.3} positions on average"
        );
        // A shared 2-character prefix happens by chance 1 time in 3844.
        assert!(
            same_prefix2 < 20,
            "{same_prefix2} consecutive pairs share a 2-char prefix"
        );
        // Every character position uses the whole alphabet.
        for position in 0..CODE_LEN {
            let used: HashSet<u8> = codes.iter().map(|c| c[position]).collect();
            assert_eq!(
                used.len(),
                62,
                "position {position} uses {} symbols",
                used.len()
            );
        }
    }
}
