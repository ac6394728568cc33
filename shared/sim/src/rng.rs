//! Seeded randomness. Every random decision in a run comes from a stream derived from the
//! seed, and each stream is consumed in an order fixed by the (single-threaded, virtual-time)
//! executor, so a seed replays exactly.
//!
//! SplitMix64 (Steele, Lea and Flood, 2014) is a dozen lines, passes BigCrush and keeps its
//! whole state in one `u64`: no dependency is needed for a reproducible stream.

use herald_domain::clock::Entropy;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// An independent stream for one concern (`stream` names it: queue, platform, store...),
    /// so adding a draw in one concern does not shift every other decision of the seed.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn fraction(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.fraction() < p
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in [lo, hi].
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.between(lo, hi))
    }

    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// A stream shared by the parts of one concern (e.g. every clone of the store wrapper).
#[derive(Debug)]
pub struct SharedRng(Mutex<Rng>);

impl SharedRng {
    pub fn new(rng: Rng) -> Self {
        Self(Mutex::new(rng))
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Rng) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn chance(&self, p: f64) -> bool {
        self.with(|r| r.chance(p))
    }

    pub fn millis(&self, lo: u64, hi: u64) -> Duration {
        self.with(|r| r.millis(lo, hi))
    }
}

/// The services' randomness (backoff jitter, attempt ids), from the seed.
#[derive(Debug)]
pub struct SimEntropy {
    rng: SharedRng,
    tokens: AtomicU64,
}

impl SimEntropy {
    pub fn new(rng: Rng) -> Self {
        Self {
            rng: SharedRng::new(rng),
            tokens: AtomicU64::new(0),
        }
    }
}

impl Entropy for SimEntropy {
    fn fraction(&self) -> f64 {
        self.rng.with(Rng::fraction)
    }

    fn token(&self) -> String {
        format!("att{}", self.tokens.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_replay_and_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::stream(7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed, same stream");
        assert_ne!(Rng::stream(7, 1).next_u64(), Rng::stream(7, 2).next_u64());
        let mut r = Rng::stream(1, 1);
        for _ in 0..1000 {
            let f = r.fraction();
            assert!((0.0..1.0).contains(&f));
            assert!((3..=5).contains(&r.between(3, 5)));
        }
    }
}
