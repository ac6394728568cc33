//! The request as a verifier sees it, and the grammar every scheme shares: header lookup,
//! Unix timestamps and the tolerance window, event ids.

use crate::{MAX_BODY_BYTES, MAX_EVENT_ID_BYTES, MAX_HEADER_BYTES, Rejection, TOLERANCE};
use std::fmt;
use time::OffsetDateTime;

/// A POSTed webhook: its headers as `(name, value)` pairs, and the body exactly as received.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub headers: &'a [(&'a str, &'a [u8])],
    pub body: &'a [u8],
}

/// Header names and the body's length only: values carry signatures and bodies carry phone
/// numbers, and neither belongs in a log line.
impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl<'a> Request<'a> {
    pub fn new(headers: &'a [(&'a str, &'a [u8])], body: &'a [u8]) -> Self {
        Self { headers, body }
    }

    /// Refuses a body over the limit before anything is hashed.
    pub(crate) fn bounded_body(&self) -> Result<&'a [u8], Rejection> {
        if self.body.len() > MAX_BODY_BYTES {
            return Err(Rejection::TooLarge);
        }
        Ok(self.body)
    }

    /// The one value of a required header, trimmed of surrounding spaces and tabs.
    ///
    /// Two headers of the same name (in any case) are refused rather than picking one: a
    /// proxy and the verifier choosing differently is how signature checks get bypassed.
    pub(crate) fn header(&self, name: &str) -> Result<&'a str, Rejection> {
        let mut found = None;
        for (candidate, value) in self.headers {
            if candidate.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return Err(Rejection::MalformedHeader);
                }
                found = Some(*value);
            }
        }
        header_text(found.ok_or(Rejection::MissingHeader)?)
    }
}

/// A header value (or GET parameter) as text: bounded, visible ASCII and spaces only, trimmed,
/// not empty.
pub(crate) fn header_text(value: &[u8]) -> Result<&str, Rejection> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(Rejection::TooLarge);
    }
    if !value
        .iter()
        .all(|&b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err(Rejection::MalformedHeader);
    }
    // Only ASCII bytes remain, so this cannot fail; the error arm keeps it panic-free anyway.
    let text = std::str::from_utf8(value).map_err(|_| Rejection::MalformedHeader)?;
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Err(Rejection::MalformedHeader);
    }
    Ok(text)
}

/// Seconds since the Unix epoch, as plain decimal digits (no sign, no fraction). Twelve digits
/// reach the year 33658, so anything longer is not a timestamp.
pub(crate) fn parse_unix_seconds(text: &str) -> Result<OffsetDateTime, Rejection> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::MalformedHeader);
    }
    let seconds: i64 = text.parse().map_err(|_| Rejection::MalformedHeader)?;
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| Rejection::MalformedHeader)
}

/// Within [`TOLERANCE`] of `now`, both ends included.
pub(crate) fn check_window(
    signed_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<(), Rejection> {
    if signed_at < now - TOLERANCE {
        Err(Rejection::Stale)
    } else if signed_at > now + TOLERANCE {
        Err(Rejection::Future)
    } else {
        Ok(())
    }
}

/// An event id we are willing to store and key on: 1 to [`MAX_EVENT_ID_BYTES`] visible ASCII
/// characters.
pub(crate) fn is_event_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_EVENT_ID_BYTES && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The string `"id"` at the top of a verified JSON body (Stripe-style and SMS events).
pub(crate) fn body_event_id(body: &[u8]) -> Result<String, Rejection> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    // serde's derive would also take `["evt_1"]` for this struct: only an object will do.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(Rejection::MalformedBody);
    }
    // A duplicate "id" key is an error in serde's derive: ambiguous bodies are refused.
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|_| Rejection::MalformedBody)?;
    if !is_event_id(&envelope.id) {
        return Err(Rejection::MalformedBody);
    }
    Ok(envelope.id.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn headers_are_found_in_any_case_and_refused_when_repeated() {
        let headers: &[(&str, &[u8])] = &[("Webhook-ID", b"  msg_1\t"), ("other", b"x")];
        let request = Request::new(headers, b"");
        assert_eq!(request.header("webhook-id"), Ok("msg_1"));
        assert_eq!(request.header("WEBHOOK-ID"), Ok("msg_1"));
        assert_eq!(request.header("missing"), Err(Rejection::MissingHeader));

        let twice: &[(&str, &[u8])] = &[("webhook-id", b"a"), ("WEBHOOK-ID", b"a")];
        assert_eq!(
            Request::new(twice, b"").header("webhook-id"),
            Err(Rejection::MalformedHeader)
        );
    }

    #[test]
    fn header_values_are_bounded_visible_ascii() {
        assert_eq!(header_text(b"ok value"), Ok("ok value"));
        assert_eq!(header_text(b""), Err(Rejection::MalformedHeader));
        assert_eq!(header_text(b"   "), Err(Rejection::MalformedHeader));
        assert_eq!(header_text(b"a\nb"), Err(Rejection::MalformedHeader));
        assert_eq!(header_text("é".as_bytes()), Err(Rejection::MalformedHeader));
        assert_eq!(header_text(b"a\0"), Err(Rejection::MalformedHeader));
        let long = vec![b'a'; MAX_HEADER_BYTES + 1];
        assert_eq!(header_text(&long), Err(Rejection::TooLarge));
        let limit = vec![b'a'; MAX_HEADER_BYTES];
        assert!(header_text(&limit).is_ok());
    }

    #[test]
    fn bodies_over_the_limit_are_refused() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            Request::new(&[], &big).bounded_body(),
            Err(Rejection::TooLarge)
        );
        assert!(Request::new(&[], &big[1..]).bounded_body().is_ok());
    }

    #[test]
    fn timestamps_are_plain_decimal_seconds() {
        assert_eq!(
            parse_unix_seconds("1614265330"),
            Ok(datetime!(2021-02-25 15:02:10 UTC))
        );
        assert_eq!(parse_unix_seconds("0"), Ok(OffsetDateTime::UNIX_EPOCH));
        for bad in [
            "",
            "-1",
            "+1614265330",
            "1614265330.5",
            "1e9",
            " 1",
            "9999999999999",
        ] {
            assert_eq!(
                parse_unix_seconds(bad),
                Err(Rejection::MalformedHeader),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_window_is_five_minutes_each_way_inclusive() {
        let now = datetime!(2026-01-01 12:00:00 UTC);
        assert_eq!(check_window(now, now), Ok(()));
        assert_eq!(check_window(now - TOLERANCE, now), Ok(()));
        assert_eq!(check_window(now + TOLERANCE, now), Ok(()));
        let second = time::Duration::SECOND;
        assert_eq!(
            check_window(now - TOLERANCE - second, now),
            Err(Rejection::Stale)
        );
        assert_eq!(
            check_window(now + TOLERANCE + second, now),
            Err(Rejection::Future)
        );
    }

    #[test]
    fn body_ids_must_be_a_single_visible_string() {
        assert_eq!(
            body_event_id(br#"{"id":"evt_1","data":{"id":"inner"}}"#),
            Ok("evt_1".to_owned())
        );
        assert_eq!(
            body_event_id(br#"{"id":"evt_\u0031"}"#),
            Ok("evt_1".to_owned())
        );
        let too_long = format!(r#"{{"id":"{}"}}"#, "a".repeat(MAX_EVENT_ID_BYTES + 1));
        for bad in [
            &br#"{"data":{"id":"inner"}}"#[..],
            br#"{"id":42}"#,
            br#"{"id":""}"#,
            br#"{"id":"a b"}"#,
            br#"{"id":"a","id":"b"}"#,
            br#"["id"]"#,
            br#"["evt_1"]"#,
            br#"{"id":"evt_1""#,
            b"",
            too_long.as_bytes(),
        ] {
            assert_eq!(
                body_event_id(bad),
                Err(Rejection::MalformedBody),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
