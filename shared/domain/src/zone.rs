//! Wall-clock times in IANA time zones: a tenant's zone, and a post scheduled at a local time.
//!
//! The tz database is compiled in (`jiff`'s bundled copy), so a zone resolves the same on a
//! Lambda image without `/usr/share/zoneinfo`. A local time that does not exist (the hour a
//! spring-forward skips) or exists twice (the hour a fall-back repeats) is never guessed:
//! [`resolve`] refuses it with both candidate instants unless the caller said which it wants.

use std::fmt;
use thiserror::Error;
use time::{OffsetDateTime, PrimitiveDateTime};

/// An IANA zone name (`Europe/Paris`), known to the bundled tz database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn utc() -> Self {
        Self("UTC".into())
    }

    /// `Unknown` unless the tz database has the zone; kept as the database spells it
    /// (`europe/paris` is `Europe/Paris`).
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let unknown = || ZoneError::Unknown(name.chars().take(64).collect());
        if name.is_empty() || name.len() > 64 {
            return Err(unknown());
        }
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| unknown())?;
        Ok(Self(tz.iana_name().unwrap_or(name).to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn tz(&self) -> jiff::tz::TimeZone {
        // Checked in `parse`; UTC only if the database changed under a stored name.
        jiff::tz::TimeZone::get(&self.0).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    /// The wall-clock time of `at` in this zone.
    pub fn local(&self, at: OffsetDateTime) -> PrimitiveDateTime {
        let offset_seconds = jiff::Timestamp::from_second(at.unix_timestamp())
            .map(|ts| self.tz().to_offset(ts).seconds())
            .unwrap_or(0);
        let shifted = at + time::Duration::seconds(i64::from(offset_seconds));
        PrimitiveDateTime::new(shifted.date(), shifted.time())
    }
}

impl serde::Serialize for TimeZoneName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for TimeZoneName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <String as serde::Deserialize>::deserialize(d)?;
        TimeZoneName::parse(&name).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which instant a local time that is skipped or repeated means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dst {
    /// The earlier instant: in a repeated hour its first pass; in a skipped hour, the local
    /// time read with the offset before the change.
    Earlier,
    /// The later instant.
    Later,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ZoneError {
    #[error("{0:?} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)")]
    Unknown(String),
    #[error(
        "{local} does not exist in {zone} (the clocks skip it); say `dst: earlier` for {earlier} or `dst: later` for {later}"
    )]
    Skipped {
        local: PrimitiveDateTime,
        zone: String,
        earlier: OffsetDateTime,
        later: OffsetDateTime,
    },
    #[error(
        "{local} happens twice in {zone} (the clocks repeat it); say `dst: earlier` for {earlier} or `dst: later` for {later}"
    )]
    Repeated {
        local: PrimitiveDateTime,
        zone: String,
        earlier: OffsetDateTime,
        later: OffsetDateTime,
    },
    #[error("{0} is out of range")]
    OutOfRange(PrimitiveDateTime),
}

/// The instant the wall-clock time `local` names in `zone`; a skipped or repeated time needs
/// `dst`.
pub fn resolve(
    local: PrimitiveDateTime,
    zone: &TimeZoneName,
    dst: Option<Dst>,
) -> Result<OffsetDateTime, ZoneError> {
    let civil = jiff::civil::DateTime::new(
        i16::try_from(local.year()).map_err(|_| ZoneError::OutOfRange(local))?,
        local.month() as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        0,
    )
    .map_err(|_| ZoneError::OutOfRange(local))?;
    let ambiguous = zone.tz().to_ambiguous_zoned(civil);
    let instant = |z: Result<jiff::Zoned, jiff::Error>| {
        z.ok()
            .and_then(|z| OffsetDateTime::from_unix_timestamp(z.timestamp().as_second()).ok())
            .ok_or(ZoneError::OutOfRange(local))
    };
    let (earlier, later) = (
        instant(ambiguous.clone().earlier())?,
        instant(ambiguous.clone().later())?,
    );
    match (ambiguous.is_ambiguous(), dst) {
        (false, _) => Ok(earlier),
        (true, Some(Dst::Earlier)) => Ok(earlier.min(later)),
        (true, Some(Dst::Later)) => Ok(earlier.max(later)),
        (true, None) => {
            let (earlier, later) = (earlier.min(later), earlier.max(later));
            let zone = zone.as_str().to_owned();
            Err(
                if matches!(ambiguous.offset(), jiff::tz::AmbiguousOffset::Gap { .. }) {
                    ZoneError::Skipped {
                        local,
                        zone,
                        earlier,
                        later,
                    }
                } else {
                    ZoneError::Repeated {
                        local,
                        zone,
                        earlier,
                        later,
                    }
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    fn zone(name: &str) -> TimeZoneName {
        TimeZoneName::parse(name).unwrap()
    }

    #[test]
    fn an_ordinary_local_time_is_one_instant() {
        let at = resolve(datetime!(2027-07-01 09:00), &zone("Europe/Paris"), None).unwrap();
        assert_eq!(at, datetime!(2027-07-01 07:00 UTC));
        let at = resolve(datetime!(2027-01-15 09:00), &zone("America/New_York"), None).unwrap();
        assert_eq!(at, datetime!(2027-01-15 14:00 UTC));
    }

    #[test]
    fn a_skipped_time_is_refused_with_both_candidates_unless_dst_says() {
        // Paris skips 02:00-03:00 on 28 March 2027.
        let local = datetime!(2027-03-28 02:30);
        let err = resolve(local, &zone("Europe/Paris"), None).unwrap_err();
        let ZoneError::Skipped { earlier, later, .. } = err.clone() else {
            panic!("{err:?}")
        };
        assert_eq!(earlier, datetime!(2027-03-28 00:30 UTC));
        assert_eq!(later, datetime!(2027-03-28 01:30 UTC));
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(
            resolve(local, &zone("Europe/Paris"), Some(Dst::Later)).unwrap(),
            later
        );
    }

    #[test]
    fn a_repeated_time_is_refused_with_both_candidates_unless_dst_says() {
        // New York repeats 01:00-02:00 on 7 November 2027.
        let local = datetime!(2027-11-07 01:30);
        let err = resolve(local, &zone("America/New_York"), None).unwrap_err();
        let ZoneError::Repeated { earlier, later, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(earlier, datetime!(2027-11-07 05:30 UTC));
        assert_eq!(later, datetime!(2027-11-07 06:30 UTC));
        let at = resolve(local, &zone("America/New_York"), Some(Dst::Earlier)).unwrap();
        assert_eq!(at, earlier);
    }

    #[test]
    fn unknown_zones_are_refused() {
        for name in ["Europe/Pariss", "", "../../etc/passwd", "+02:00"] {
            assert!(TimeZoneName::parse(name).is_err(), "{name}");
        }
        assert_eq!(zone("europe/paris").as_str(), "Europe/Paris");
    }

    proptest! {
        /// Every instant, shown in a zone and resolved back (with either `dst`), is itself or,
        /// in a repeated hour, its twin an hour away.
        #[test]
        fn local_then_resolve_round_trips(secs in 1_600_000_000i64..2_000_000_000, z in 0usize..5, later: bool) {
            let name = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"][z];
            let zone = zone(name);
            let at = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            let local = zone.local(at);
            let dst = if later { Dst::Later } else { Dst::Earlier };
            let back = resolve(local, &zone, Some(dst)).unwrap();
            prop_assert!((back - at).whole_seconds().abs() <= 3600, "{name} {at} -> {local} -> {back}");
            prop_assert_eq!(zone.local(back), local);
        }
    }
}
