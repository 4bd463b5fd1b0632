//! The per-sample random stream.
//!
//! Every sample owns a ChaCha8 stream seeded from (seed, split, index), so any sample can be made on
//! its own, in any order, on any thread. Draws go through the raw `u64` output and the arithmetic
//! below, not through `rand`'s distributions, so a dependency update cannot change the data.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// SplitMix64 finaliser: a bijective mixer for building seeds.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bit: a stable hash for splitting the corpus (never changes between Rust versions,
/// unlike `std::hash`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub fn for_sample(seed: u64, split: u64, index: u64) -> Self {
        let mut key = [0u8; 32];
        let mut z = mix64(seed ^ mix64(split.wrapping_add(0x5EED)));
        z = mix64(z ^ index);
        for chunk in key.chunks_exact_mut(8) {
            z = mix64(z);
            chunk.copy_from_slice(&z.to_le_bytes());
        }
        Rng(ChaCha8Rng::from_seed(key))
    }

    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// Uniform integer in [lo, hi] (inclusive); `lo` when the range is empty.
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        let n = (hi - lo + 1) as u64;
        // Multiply-shift: unbiased enough for our ranges (n ≪ 2^32).
        lo + (((self.u64() >> 32) * n) >> 32) as usize
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            self.int(0, n - 1)
        }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    /// Standard normal (Box–Muller; one of the pair is thrown away to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.f64(); // (0, 1]
        let u2 = self.f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-uniform in [lo, hi).
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.f64()).exp()
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Index into `weights` drawn in proportion to the weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}
