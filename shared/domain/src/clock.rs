//! Time is injected: every decision about due dates, leases and expiry reads a [`Clock`].

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

#[async_trait::async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
    /// Waits (a backoff between attempts). A simulated clock just moves forward.
    async fn sleep(&self, duration: std::time::Duration);
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    /// Millisecond precision: what the store keeps, so a record reads back as it was written.
    fn now(&self) -> OffsetDateTime {
        to_millis(OffsetDateTime::now_utc())
    }

    async fn sleep(&self, duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that only moves when told to, for tests and simulations.
#[derive(Debug)]
pub struct FakeClock(Mutex<OffsetDateTime>);

impl FakeClock {
    pub fn new(start: OffsetDateTime) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

#[async_trait::async_trait]
impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep(&self, duration: std::time::Duration) {
        self.advance(Duration::try_from(duration).unwrap_or(Duration::MAX));
    }
}

/// Randomness the services use (backoff jitter, attempt ids), injectable so a simulation
/// replays exactly from its seed.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    /// Uniform in [0, 1).
    fn fraction(&self) -> f64;
    /// A fresh opaque identifier.
    fn token(&self) -> String;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEntropy;

impl Entropy for SystemEntropy {
    fn fraction(&self) -> f64 {
        let mut r = [0u8; 8];
        // Jitter only spreads load; a failing RNG just means no spread.
        let _ = getrandom::fill(&mut r);
        (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn token(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }
}

/// Milliseconds since the Unix epoch: the form stored wherever a condition compares times.
pub fn epoch_millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn from_epoch_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Drops what the store cannot keep (below a millisecond).
pub fn to_millis(t: OffsetDateTime) -> OffsetDateTime {
    from_epoch_millis(epoch_millis(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trips_through_epoch_millis() {
        let now = SystemClock.now();
        assert_eq!(from_epoch_millis(epoch_millis(now)), now);
        let precise = time::macros::datetime!(2026-01-02 03:04:05.123_456_789 UTC);
        assert_eq!(
            to_millis(precise),
            time::macros::datetime!(2026-01-02 03:04:05.123 UTC)
        );
    }
}
