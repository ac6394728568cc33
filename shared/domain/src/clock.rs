//! Time is injected: every decision about due dates, leases and expiry reads a [`Clock`].

use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Millisecond precision: what the store keeps, so a record reads back as it was written.
    fn now(&self) -> OffsetDateTime {
        to_millis(OffsetDateTime::now_utc())
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

impl Clock for FakeClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
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
