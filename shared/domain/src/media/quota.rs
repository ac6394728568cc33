//! A tenant's media quota: how many objects and bytes it may hold in the bucket at once.
//!
//! Usage is counted when media is created (its declared size: the upload URL accepts exactly
//! that many bytes), by the month it was created in. The bucket deletes media
//! [`MEDIA_RETENTION`] after creation, so a month stops counting once the last media it can
//! hold is gone: usage is never below what the bucket holds, and at most one month above it.

use super::MEDIA_RETENTION;
use super::rules::{Measure, MediaRule, MediaViolation};
use crate::publishing::posts::FieldError;
use std::collections::BTreeMap;
use time::{Date, Month, OffsetDateTime, Time};

/// 5 GiB.
pub const DEFAULT_QUOTA_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const DEFAULT_QUOTA_OBJECTS: u64 = 10_000;

/// The most media one tenant may hold (deployment configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaQuota {
    pub max_bytes: u64,
    pub max_objects: u64,
}

impl Default for MediaQuota {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_QUOTA_BYTES,
            max_objects: DEFAULT_QUOTA_OBJECTS,
        }
    }
}

/// Objects and bytes created in one month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub objects: u64,
    pub bytes: u64,
}

/// A tenant's media usage by month of creation (`YYYY-MM`), and how many times it was
/// written (for optimistic concurrency: a write expects the version it read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaUsage {
    pub months: BTreeMap<String, Tally>,
    pub version: u64,
}

impl MediaUsage {
    /// The months whose media may still be in the bucket at `now`.
    pub fn live(&self, now: OffsetDateTime) -> impl Iterator<Item = (&String, &Tally)> {
        self.months
            .iter()
            .filter(move |(month, _)| month_expiry(month).is_none_or(|gone| gone > now))
    }

    /// What the tenant holds at `now`.
    pub fn total(&self, now: OffsetDateTime) -> Tally {
        self.live(now).fold(Tally::default(), |sum, (_, t)| Tally {
            objects: sum.objects.saturating_add(t.objects),
            bytes: sum.bytes.saturating_add(t.bytes),
        })
    }

    /// The usage with one more media of `size` bytes created at `now` (expired months
    /// dropped, version advanced), or every limit it would break.
    pub fn admit(
        &self,
        size: u64,
        now: OffsetDateTime,
        quota: MediaQuota,
    ) -> Result<MediaUsage, Vec<FieldError>> {
        let held = self.total(now);
        let mut errors = Vec::new();
        if held.objects >= quota.max_objects {
            errors.push(quota_error(
                "media",
                MediaRule::QuotaObjects,
                Measure::Count(clamp(quota.max_objects)),
                Measure::Count(clamp(held.objects.saturating_add(1))),
            ));
        }
        let bytes = held.bytes.saturating_add(size);
        if bytes > quota.max_bytes {
            errors.push(quota_error(
                "size",
                MediaRule::QuotaBytes,
                Measure::Bytes(quota.max_bytes),
                Measure::Bytes(bytes),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut months: BTreeMap<String, Tally> =
            self.live(now).map(|(m, t)| (m.clone(), *t)).collect();
        let month = months.entry(month_of(now)).or_default();
        month.objects += 1;
        month.bytes = month.bytes.saturating_add(size);
        Ok(MediaUsage {
            months,
            version: self.version + 1,
        })
    }

    /// Counts media created at `at` (a recount from the records).
    pub fn count(&mut self, at: OffsetDateTime, size: u64) {
        let month = self.months.entry(month_of(at)).or_default();
        month.objects += 1;
        month.bytes = month.bytes.saturating_add(size);
    }
}

fn quota_error(field: &str, rule: MediaRule, limit: Measure, actual: Measure) -> FieldError {
    FieldError::media(
        field,
        MediaViolation {
            media_id: None,
            platform: None,
            rule,
            limit: Some(limit),
            actual: Some(actual),
        },
    )
}

fn clamp(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `YYYY-MM` of a time (UTC).
pub fn month_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// When the last media created in `month` is gone from the bucket; `None` for a month that
/// cannot be read (kept, so usage is never undercounted).
fn month_expiry(month: &str) -> Option<OffsetDateTime> {
    let (year, number) = month.split_once('-')?;
    let month = Month::try_from(number.parse::<u8>().ok()?).ok()?;
    let first = Date::from_calendar_date(year.parse().ok()?, month, 1).ok()?;
    let next = first
        .replace_day(1)
        .ok()?
        .checked_add(time::Duration::days(i64::from(time::util::days_in_month(
            month,
            first.year(),
        ))))?;
    next.with_time(Time::MIDNIGHT)
        .assume_utc()
        .checked_add(MEDIA_RETENTION)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const QUOTA: MediaQuota = MediaQuota {
        max_bytes: 1_000,
        max_objects: 3,
    };

    fn rules(errors: &[FieldError]) -> Vec<&'static str> {
        errors
            .iter()
            .map(|e| e.media.as_ref().map_or("", |m| m.rule.as_str()))
            .collect()
    }

    #[test]
    fn admits_up_to_both_limits_and_names_what_is_exceeded() {
        let now = datetime!(2026-12-04 10:00 UTC);
        let mut usage = MediaUsage::default();
        usage = usage.admit(400, now, QUOTA).unwrap();
        usage = usage.admit(600, now, QUOTA).unwrap();
        assert_eq!(usage.version, 2);
        assert_eq!(
            usage.total(now),
            Tally {
                objects: 2,
                bytes: 1_000
            }
        );
        assert_eq!(
            rules(&usage.admit(1, now, QUOTA).unwrap_err()),
            ["quota_bytes"]
        );
        usage = usage.admit(0, now, QUOTA).unwrap();
        let both = usage.admit(1, now, QUOTA).unwrap_err();
        assert_eq!(rules(&both), ["quota_objects", "quota_bytes"]);
        assert_eq!(both[0].field, "media");
        assert_eq!(both[1].field, "size");
        assert!(both[1].message.contains("1001"), "{}", both[1].message);
    }

    #[test]
    fn a_month_stops_counting_once_its_last_media_expired() {
        let created = datetime!(2025-01-31 23:59 UTC);
        let mut usage = MediaUsage::default();
        usage.count(created, 900);
        // Media of 31 January expire 400 days later; the month counts until then.
        let last = datetime!(2025-02-01 00:00 UTC) + MEDIA_RETENTION;
        assert_eq!(usage.total(last - time::Duration::seconds(1)).bytes, 900);
        assert_eq!(usage.total(last).bytes, 0);
        let next = usage.admit(1_000, last, QUOTA).unwrap();
        assert_eq!(next.months.len(), 1, "the expired month is dropped");
        assert_eq!(
            next.months.keys().next().map(String::as_str),
            Some("2026-03")
        );
    }

    #[test]
    fn an_unreadable_month_keeps_counting() {
        let mut usage = MediaUsage::default();
        usage.months.insert(
            "garbage".into(),
            Tally {
                objects: 3,
                bytes: 3,
            },
        );
        let far = datetime!(2099-01-01 00:00 UTC);
        assert_eq!(usage.total(far).objects, 3);
    }
}
