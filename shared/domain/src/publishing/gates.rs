//! What may hold a publish back before it reaches the platform: a tenant's pause (crisis
//! mode), rate limits (per account and per platform app), and the per-account circuit breaker.
//!
//! The rules live here as plain values and functions; the stores enforce them atomically
//! with the publish claim (see `PublishStore::claim_for_publish`), so every Lambda instance
//! sees the same limits and no claim commits after a pause.

use crate::clock::{epoch_millis, from_epoch_millis};
use crate::ids::{AccountId, ApiKeyId, Platform, TenantId};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// A tenant's pause switch. An empty `platforms` list pauses every platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crisis {
    pub tenant_id: TenantId,
    pub platforms: Vec<Platform>,
    pub reason: String,
    pub started_by: ApiKeyId,
    pub started_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Crisis {
    /// The default length of a pause when the caller gives none.
    pub const DEFAULT_LENGTH: Duration = Duration::hours(24);

    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }

    pub fn pauses(&self, platform: Platform, now: OffsetDateTime) -> bool {
        self.is_active(now) && (self.platforms.is_empty() || self.platforms.contains(&platform))
    }
}

/// A fixed rate window: at most `limit` calls per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: u32,
    pub period: Duration,
}

/// The window a call at `now` falls in, with its limit: what a store counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSlot {
    /// Identifies the counter, e.g. `acc_123` or `app#facebook`.
    pub scope: String,
    /// The window's number since the epoch; a new window is a new counter.
    pub index: i64,
    pub limit: u32,
    pub ends_at: OffsetDateTime,
}

impl Window {
    pub fn slot(&self, scope: impl Into<String>, now: OffsetDateTime) -> WindowSlot {
        let period_ms = self.period.whole_milliseconds().max(1) as i64;
        let index = epoch_millis(now).div_euclid(period_ms);
        WindowSlot {
            scope: scope.into(),
            index,
            limit: self.limit,
            ends_at: from_epoch_millis((index + 1) * period_ms),
        }
    }
}

/// Rate limits per platform: per connected account and per Herald's app on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    pub per_account: BTreeMap<Platform, Window>,
    pub per_app: BTreeMap<Platform, Window>,
    /// Above this share of Meta's app budget (`X-App-Usage`, percent) the app is held back
    /// for `app_usage_cooldown`, before Meta starts answering 4/17/32/613.
    pub app_usage_ceiling: u32,
    pub app_usage_cooldown: Duration,
}

impl Default for RateLimits {
    /// The platforms' published limits: X 100 posts per user per 15 minutes and 10,000 per
    /// app per day; Facebook 200 calls per app per hour; LinkedIn 500 calls per member per day;
    /// Mastodon 300 statuses per account per 3 hours; Bluesky 5,000 repo-write points per
    /// account per hour (a create costs 3); Instagram 100 API-published posts per account per
    /// 24 hours (`content_publishing_limit`).
    fn default() -> Self {
        let w = |limit, period| Window { limit, period };
        Self {
            per_account: BTreeMap::from([
                (Platform::X, w(100, Duration::minutes(15))),
                (Platform::Linkedin, w(500, Duration::days(1))),
                (Platform::Mastodon, w(300, Duration::hours(3))),
                (Platform::Bluesky, w(1_666, Duration::hours(1))),
                (Platform::Instagram, w(100, Duration::days(1))),
            ]),
            per_app: BTreeMap::from([
                (Platform::X, w(10_000, Duration::days(1))),
                (Platform::Facebook, w(200, Duration::hours(1))),
            ]),
            app_usage_ceiling: 95,
            app_usage_cooldown: Duration::minutes(10),
        }
    }
}

impl RateLimits {
    /// The account's window, scoped to the tenant that connected it: account ids derive from
    /// the platform's id alone, so two tenants connecting the same page would otherwise spend
    /// one budget (and one could exhaust the other's).
    pub fn account_slot(
        &self,
        platform: Platform,
        tenant: &TenantId,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Option<WindowSlot> {
        self.per_account
            .get(&platform)
            .map(|w| w.slot(format!("{tenant}#{account}"), now))
    }

    pub fn app_slot(&self, platform: Platform, now: OffsetDateTime) -> Option<WindowSlot> {
        self.per_app
            .get(&platform)
            .map(|w| w.slot(format!("app#{platform}"), now))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the circuit.
    pub failure_threshold: u32,
    /// How long it stays open before one probe may go through.
    pub reset_after: Duration,
    /// How long a probe holds the half-open circuit before another may try.
    pub probe_lease: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            reset_after: Duration::minutes(5),
            probe_lease: Duration::minutes(1),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BreakerState {
    #[default]
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            BreakerState::Closed,
            BreakerState::Open,
            BreakerState::HalfOpen,
        ]
        .into_iter()
        .find(|b| b.as_str() == s)
    }
}

/// A platform account's circuit and the platform's own "stop until" signal. Kept with the
/// account, so the claim can check it in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Breaker {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Open: when a probe may go. Half-open: when the probe's lease ends.
    pub until: Option<OffsetDateTime>,
    /// The platform said this account has no calls left until then (`x-rate-limit-reset`).
    pub blocked_until: Option<OffsetDateTime>,
}

/// What the breaker lets a claim do at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go.
    Pass,
    /// Take the single half-open probe.
    Probe,
    /// Come back then; this does not count as a failed delivery.
    WaitUntil(OffsetDateTime),
}

impl Breaker {
    pub fn admission(&self, now: OffsetDateTime) -> Admission {
        if let Some(until) = self.blocked_until.filter(|t| *t > now) {
            return Admission::WaitUntil(until);
        }
        match (self.state, self.until) {
            (BreakerState::Closed, _) => Admission::Pass,
            (_, Some(until)) if until > now => Admission::WaitUntil(until),
            _ => Admission::Probe,
        }
    }

    /// Closed, with no failure counted.
    pub fn is_pristine(&self) -> bool {
        self.state == BreakerState::Closed && self.consecutive_failures == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn windows_are_fixed_and_end_where_the_next_starts() {
        let w = Window {
            limit: 3,
            period: Duration::minutes(15),
        };
        let a = w.slot("acc", datetime!(2026-01-01 10:14:59.999 UTC));
        let b = w.slot("acc", datetime!(2026-01-01 10:15:00 UTC));
        assert_eq!(a.ends_at, datetime!(2026-01-01 10:15:00 UTC));
        assert_eq!(b.index, a.index + 1);
        assert_eq!(b.ends_at, datetime!(2026-01-01 10:30:00 UTC));
    }

    #[test]
    fn a_pause_covers_its_platforms_until_it_expires() {
        let now = datetime!(2026-01-01 10:00 UTC);
        let crisis = Crisis {
            tenant_id: TenantId("t".into()),
            platforms: vec![Platform::X],
            reason: "r".into(),
            started_by: ApiKeyId("k".into()),
            started_at: now,
            expires_at: now + Duration::hours(1),
        };
        assert!(crisis.pauses(Platform::X, now));
        assert!(!crisis.pauses(Platform::Facebook, now));
        assert!(!crisis.pauses(Platform::X, now + Duration::hours(1)));
        let all = Crisis {
            platforms: vec![],
            ..crisis
        };
        assert!(all.pauses(Platform::Linkedin, now));
    }

    #[test]
    fn the_breaker_admits_one_probe_after_its_reset() {
        let now = datetime!(2026-01-01 10:00 UTC);
        let open = Breaker {
            state: BreakerState::Open,
            consecutive_failures: 5,
            until: Some(now + Duration::minutes(5)),
            blocked_until: None,
        };
        assert_eq!(
            open.admission(now),
            Admission::WaitUntil(now + Duration::minutes(5))
        );
        assert_eq!(open.admission(now + Duration::minutes(5)), Admission::Probe);
        let probing = Breaker {
            state: BreakerState::HalfOpen,
            until: Some(now + Duration::minutes(1)),
            ..open.clone()
        };
        assert_eq!(
            probing.admission(now),
            Admission::WaitUntil(now + Duration::minutes(1))
        );
        assert_eq!(Breaker::default().admission(now), Admission::Pass);
        let blocked = Breaker {
            blocked_until: Some(now + Duration::seconds(30)),
            ..Breaker::default()
        };
        assert_eq!(
            blocked.admission(now),
            Admission::WaitUntil(now + Duration::seconds(30))
        );
    }
}
