//! Quiet hours: a campaign may keep its texts out of a daily window of the recipient's
//! wall-clock time (`21:00`–`08:00`). A recipient's time is read in the zone of its number
//! (libphonenumber's time-zone metadata, `phone_zones.tsv`, by the longest prefix the number
//! starts with) when every zone that prefix may be in shows the same time now (`+33…` is
//! Paris; a UK mobile is in London, Jersey, Guernsey or Man, which all read one time); otherwise (`+1` without an area
//! code Herald knows, most of `+7`) in the campaign's fallback zone, the tenant's unless the
//! campaign names one.
//!
//! A recipient in its quiet hours is left queued and its batch comes back when the window
//! ends; the window is checked again then, so a clock change during the night delays a text,
//! never sends one early.

use crate::publishing::posts::FieldError;
use crate::zone::TimeZoneName;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::LazyLock;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// `prefix \t zone zone…`, one per line, written by `infra/phone_zones.py` from the pinned
/// `phonenumbers` package (a Python test checks it has not drifted from it).
const TABLE: &str = include_str!("phone_zones.tsv");

/// The longest prefix the table holds.
const LONGEST_PREFIX: usize = 9;

static ZONES: LazyLock<HashMap<&'static str, Vec<TimeZoneName>>> = LazyLock::new(|| {
    TABLE
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (prefix, zones) = line.split_once('\t')?;
            // A zone the bundled tz database lacks is left out (checked by a test: none is).
            let zones = zones
                .split(' ')
                .filter_map(|z| TimeZoneName::parse(z).ok())
                .collect();
            Some((prefix, zones))
        })
        .collect()
});

/// The zones a number (E.164, `+` and digits) may be in, by the longest known prefix; empty
/// when none is known.
pub fn zones_of(phone: &str) -> &'static [TimeZoneName] {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    (1..=digits.len().min(LONGEST_PREFIX))
        .rev()
        .find_map(|n| ZONES.get(&digits[..n]))
        .map_or(&[], Vec::as_slice)
}

/// The recipient's wall-clock time at `now`: its number's zones' when they all agree, else
/// the fallback zone's.
pub fn local_time(phone: &str, fallback: &TimeZoneName, now: OffsetDateTime) -> PrimitiveDateTime {
    let mut times = zones_of(phone).iter().map(|zone| zone.local(now));
    match times.next() {
        Some(first) if times.all(|t| t == first) => first,
        _ => fallback.local(now),
    }
}

const DAY_MINUTES: u16 = 24 * 60;

/// A daily window of local time in which a campaign texts no one. `start` is inside,
/// `end` is not; a window past midnight (`21:00`–`08:00`) wraps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Minutes after local midnight.
    pub start: u16,
    pub end: u16,
    /// The zone of numbers whose own zone is not known.
    pub time_zone: TimeZoneName,
}

/// `HH:MM` (24-hour) as minutes after midnight.
fn parse_clock(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl QuietHours {
    /// Every problem of the three fields at once (`quiet_hours.start`, `.end`, `.time_zone`).
    pub fn parse(start: &str, end: &str, time_zone: &str) -> Result<Self, Vec<FieldError>> {
        let mut problems = Vec::new();
        let mut clock = |field: &str, text: &str| {
            let minutes = parse_clock(text);
            if minutes.is_none() {
                problems.push(FieldError::new(
                    format!("quiet_hours.{field}"),
                    "must be a 24-hour time HH:MM (21:00)",
                ));
            }
            minutes
        };
        let (start, end) = (clock("start", start), clock("end", end));
        let zone = TimeZoneName::parse(time_zone)
            .map_err(|e| problems.push(FieldError::new("quiet_hours.time_zone", e.to_string())))
            .ok();
        match (start, end, zone) {
            (Some(start), Some(end), Some(_)) if start == end => Err(vec![FieldError::new(
                "quiet_hours.end",
                "must differ from start (a window of no length, or of a whole day)",
            )]),
            (Some(start), Some(end), Some(time_zone)) => Ok(Self {
                start,
                end,
                time_zone,
            }),
            _ => Err(problems),
        }
    }

    /// How long until the window ends for this number, when `now` is inside it.
    pub fn wait(&self, phone: &str, now: OffsetDateTime) -> Option<Duration> {
        let local = local_time(phone, &self.time_zone, now);
        let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
        let inside = if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        };
        inside.then(|| {
            let minutes = (self.end + DAY_MINUTES - minute) % DAY_MINUTES;
            Duration::minutes(i64::from(minutes)) - Duration::seconds(i64::from(local.second()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn quiet(start: &str, end: &str, zone: &str) -> QuietHours {
        QuietHours::parse(start, end, zone).unwrap()
    }

    #[test]
    fn every_zone_in_the_table_is_in_the_bundled_tz_database() {
        let named: usize = TABLE
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_once('\t').unwrap().1.split(' ').count())
            .sum();
        let known: usize = ZONES.values().map(Vec::len).sum();
        assert_eq!(known, named);
        assert!(ZONES.len() > 3000, "{}", ZONES.len());
    }

    #[test]
    fn a_number_is_read_in_its_own_zone_when_its_prefix_agrees_on_the_time() {
        let utc = TimeZoneName::utc();
        let winter = datetime!(2026-01-15 12:00 UTC);
        // France: one zone.
        assert_eq!(local_time("+33612345678", &utc, winter).hour(), 13);
        // New York's area code 212; Los Angeles' 213.
        assert_eq!(local_time("+12125550100", &utc, winter).hour(), 7);
        assert_eq!(local_time("+12135550100", &utc, winter).hour(), 4);
        // UK mobiles: London, Jersey, Guernsey or Man, which all read the same time.
        assert!(zones_of("+447700900123").len() > 1);
        assert_eq!(local_time("+447700900123", &utc, winter).hour(), 12);
        // Summer time where the zone keeps it.
        assert_eq!(
            local_time("+33612345678", &utc, datetime!(2026-07-15 12:00 UTC)).hour(),
            14
        );
    }

    #[test]
    fn a_number_whose_zones_disagree_or_are_unknown_is_read_in_the_fallback() {
        let tokyo = TimeZoneName::parse("Asia/Tokyo").unwrap();
        let at = datetime!(2026-01-15 12:00 UTC);
        // +1 800 is toll-free: every North American zone.
        assert!(zones_of("+18005550100").len() > 10);
        assert_eq!(local_time("+18005550100", &tokyo, at).hour(), 21);
        // No prefix known at all.
        assert!(zones_of("+999123").is_empty());
        assert_eq!(local_time("+999123", &tokyo, at).hour(), 21);
    }

    #[test]
    fn the_window_holds_a_recipient_until_its_end_and_wraps_midnight() {
        let night = quiet("21:00", "08:00", "UTC");
        let paris = "+33612345678";
        // 22:30 in Paris (21:30 UTC in winter): 9 h 30 to go.
        let at = datetime!(2026-01-15 21:30:20 UTC);
        assert_eq!(
            night.wait(paris, at),
            Some(Duration::minutes(570) - Duration::seconds(20))
        );
        // 07:59 in Paris: one minute.
        assert_eq!(
            night.wait(paris, datetime!(2026-01-16 06:59 UTC)),
            Some(Duration::minutes(1))
        );
        // 08:00 and 20:59 are outside; 21:00 inside.
        assert_eq!(night.wait(paris, datetime!(2026-01-16 07:00 UTC)), None);
        assert_eq!(night.wait(paris, datetime!(2026-01-16 19:59 UTC)), None);
        assert!(night.wait(paris, datetime!(2026-01-16 20:00 UTC)).is_some());
        // A window within one day.
        let lunch = quiet("12:00", "14:00", "UTC");
        assert_eq!(
            lunch.wait(paris, datetime!(2026-01-16 11:00 UTC)),
            Some(Duration::minutes(120))
        );
        assert_eq!(lunch.wait(paris, datetime!(2026-01-16 13:00 UTC)), None);
        // The same instant is quiet in New York (16:30) under an afternoon window, not in Paris.
        let afternoon = quiet("16:00", "18:00", "UTC");
        let at = datetime!(2026-01-16 21:30 UTC);
        assert!(afternoon.wait("+12125550100", at).is_some());
        assert!(afternoon.wait(paris, at).is_none());
    }

    #[test]
    fn bad_windows_list_every_problem() {
        let problems = QuietHours::parse("25:00", "8:00", "Mars/Olympus").unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "quiet_hours.start",
                "quiet_hours.end",
                "quiet_hours.time_zone"
            ]
        );
        let problems = QuietHours::parse("08:00", "08:00", "UTC").unwrap_err();
        assert_eq!(problems[0].field, "quiet_hours.end");
        assert!(QuietHours::parse("23:59", "00:00", "europe/paris").is_ok());
        assert_eq!(format_clock(21 * 60 + 5), "21:05");
    }
}
