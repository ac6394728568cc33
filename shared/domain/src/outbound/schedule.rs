//! When to try again: the retry schedule as data, and the pure decision taken after each
//! attempt.
//!
//! ```text
//! attempt:  1    2    3      4       5     6     7      8      9      10
//! waits:    0    5 s  5 min  30 min  2 h   5 h   10 h   14 h   20 h   24 h   (+ jitter)
//! ```
//! A 2xx is delivered; 410 Gone disables the endpoint; anything else (other statuses,
//! timeouts, refused or unreachable targets) waits for the next slot, and after the last the
//! event goes to the DLQ. 429, 502 and 504 ask the sender to slow down: their `Retry-After`
//! is honoured (the later of it and the schedule's wait, capped).

use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The wait before each attempt; the first is normally zero. Its length is the number of
    /// attempts.
    pub delays: Vec<Duration>,
    /// Up to this fraction of a wait is added at random, so endpoints recovering from an
    /// outage are not hit by every retry at once.
    pub jitter: f64,
    /// A `Retry-After` longer than this is cut to it.
    pub retry_after_cap: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        const M: u64 = 60;
        const H: u64 = 3600;
        Self {
            delays: [
                0,
                5,
                5 * M,
                30 * M,
                2 * H,
                5 * H,
                10 * H,
                14 * H,
                20 * H,
                24 * H,
            ]
            .into_iter()
            .map(Duration::from_secs)
            .collect(),
            jitter: 0.1,
            retry_after_cap: Duration::from_secs(24 * H),
        }
    }
}

impl std::str::FromStr for Schedule {
    type Err = String;

    /// Comma-separated seconds, e.g. `0,1,2` (the local stack's short schedule).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let delays = s
            .split(',')
            .map(|p| p.trim().parse::<u64>().map(Duration::from_secs))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "expected comma-separated seconds".to_owned())?;
        if delays.is_empty() || delays.len() > 50 {
            return Err("1 to 50 attempts".into());
        }
        Ok(Self {
            delays,
            ..Self::default()
        })
    }
}

impl Schedule {
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.delays.len()).unwrap_or(u32::MAX)
    }

    /// The wait before attempt `n` (1-based), jittered by `fraction` in [0, 1); `None` once the
    /// schedule is used up.
    pub fn delay_before(&self, n: u32, fraction: f64) -> Option<Duration> {
        let base = *self.delays.get(usize::try_from(n.checked_sub(1)?).ok()?)?;
        Some(base + base.mul_f64(self.jitter.max(0.0) * fraction.clamp(0.0, 1.0)))
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The endpoint answered.
    Answered {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer within the timeout.
    TimedOut,
    /// No connection, or a refused target: why, without secrets.
    Failed(String),
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Delivered,
    Retry {
        after: Duration,
    },
    /// 410 Gone: the receiver asked not to be called again.
    Disable,
    /// The schedule is used up.
    DeadLetter,
}

impl Decision {
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry { .. } => "retrying",
            Self::Disable => "disabled",
            Self::DeadLetter => "dead_lettered",
        }
    }
}

/// The decision after attempt `made` (1-based) ended with `result`.
pub fn decide(schedule: &Schedule, made: u32, result: &AttemptResult, fraction: f64) -> Decision {
    let mut honour = None;
    if let AttemptResult::Answered {
        status,
        retry_after,
    } = result
    {
        match status {
            200..=299 => return Decision::Delivered,
            410 => return Decision::Disable,
            429 | 502 | 504 => honour = *retry_after,
            _ => {}
        }
    }
    match schedule.delay_before(made.saturating_add(1), fraction) {
        None => Decision::DeadLetter,
        Some(wait) => Decision::Retry {
            after: honour.map_or(wait, |r| wait.max(r.min(schedule.retry_after_cap))),
        },
    }
}

/// `Retry-After`: delay-seconds or an HTTP-date (IMF-fixdate), as a wait from `now`. A date in
/// the past is no wait; anything else unreadable is ignored.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn answered(status: u16, retry_after: Option<u64>) -> AttemptResult {
        AttemptResult::Answered {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn the_default_is_the_production_schedule() {
        let s = Schedule::default();
        let secs: Vec<u64> = s.delays.iter().map(Duration::as_secs).collect();
        assert_eq!(
            secs,
            [0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
        );
        assert_eq!(s.attempts(), 10);
    }

    #[test]
    fn every_status_class() {
        let s: Schedule = "0,5,300".parse().unwrap();
        for status in [200, 201, 204, 299] {
            assert_eq!(
                decide(&s, 1, &answered(status, None), 0.0),
                Decision::Delivered
            );
        }
        assert_eq!(decide(&s, 1, &answered(410, None), 0.0), Decision::Disable);
        for status in [300, 400, 401, 404, 500, 503] {
            assert_eq!(
                decide(&s, 1, &answered(status, Some(9_999)), 0.0),
                Decision::Retry {
                    after: Duration::from_secs(5)
                },
                "{status}: Retry-After is only for 429/502/504"
            );
        }
        for status in [429, 502, 504] {
            assert_eq!(
                decide(&s, 1, &answered(status, Some(60)), 0.0),
                Decision::Retry {
                    after: Duration::from_secs(60)
                }
            );
            // A shorter Retry-After does not hurry the schedule.
            assert_eq!(
                decide(&s, 2, &answered(status, Some(1)), 0.0),
                Decision::Retry {
                    after: Duration::from_secs(300)
                }
            );
        }
        assert_eq!(
            decide(&s, 1, &AttemptResult::TimedOut, 0.0),
            Decision::Retry {
                after: Duration::from_secs(5)
            }
        );
        assert_eq!(
            decide(&s, 2, &AttemptResult::Failed("refused".into()), 0.0),
            Decision::Retry {
                after: Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn retry_after_is_capped() {
        let s = Schedule::default();
        assert_eq!(
            decide(&s, 1, &answered(429, Some(10 * 86_400)), 0.0),
            Decision::Retry {
                after: Duration::from_secs(86_400)
            }
        );
    }

    #[test]
    fn the_schedule_runs_out_into_the_dlq() {
        let s: Schedule = "0,1,2".parse().unwrap();
        assert!(matches!(
            decide(&s, 2, &answered(500, None), 0.0),
            Decision::Retry { .. }
        ));
        assert_eq!(
            decide(&s, 3, &answered(500, None), 0.0),
            Decision::DeadLetter
        );
        assert_eq!(
            decide(&s, 3, &AttemptResult::TimedOut, 0.0),
            Decision::DeadLetter
        );
        // A success or a 410 on the last attempt is still that.
        assert_eq!(
            decide(&s, 3, &answered(200, None), 0.0),
            Decision::Delivered
        );
        assert_eq!(decide(&s, 3, &answered(410, None), 0.0), Decision::Disable);
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in ["", "1,,2", "-1", "a", &vec!["1"; 51].join(",")] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = time::macros::datetime!(1994-11-06 08:49:00 UTC);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(37))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "soon", "-5", "1.5", "Sunday, 06-Nov-94 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn jitter_stays_within_its_fraction(n in 1u32..=10, fraction in 0.0f64..1.0) {
            let s = Schedule::default();
            let base = s.delays[(n - 1) as usize];
            let d = s.delay_before(n, fraction).unwrap();
            prop_assert!(d >= base);
            prop_assert!(d <= base + base.mul_f64(s.jitter));
        }

        #[test]
        fn waits_never_shrink_and_end_in_the_dlq(made in 1u32..=20, status in 300u16..=599, fraction in 0.0f64..1.0) {
            let s = Schedule::default();
            let d = decide(&s, made, &answered(status, None), fraction);
            if status == 410 {
                prop_assert_eq!(d, Decision::Disable);
            } else if made >= s.attempts() {
                prop_assert_eq!(d, Decision::DeadLetter);
            } else {
                let Decision::Retry { after } = d else { return Err(TestCaseError::fail("no retry")) };
                prop_assert!(after >= s.delays[made as usize]);
            }
        }
    }
}
