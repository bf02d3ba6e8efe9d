// SPDX-License-Identifier: GPL-2.0
//! The fuzzer's PRNG: one splitmix64 stream per thread. A seed replays a
//! run only while every draw from it stays in its place: the generator's
//! order of draws is part of what a printed seed means.

/// splitmix64: small, fast, and every seed is a good one.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator with state `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The generator of thread `thread` of a run seeded with `seed`.
    pub fn for_thread(seed: u64, thread: usize) -> Self {
        let mut r = Rng(seed ^ (thread as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        Rng(r.next())
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::parse_seed;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let mut a = Rng::for_thread(42, 1);
        let mut b = Rng::for_thread(42, 1);
        let mut c = Rng::for_thread(42, 2);
        let va: Vec<u64> = (0..8).map(|_| a.next()).collect();
        let vb: Vec<u64> = (0..8).map(|_| b.next()).collect();
        let vc: Vec<u64> = (0..8).map(|_| c.next()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(parse_seed("0x10"), Some(16));
        assert_eq!(parse_seed("0XfF"), Some(255));
        assert_eq!(parse_seed("1_000"), Some(1000));
        assert_eq!(parse_seed("0xg"), None);
        assert_eq!(parse_seed(""), None);
    }
}
