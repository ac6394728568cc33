//! The billing provider's Stripe-style signatures.
//!
//! ```text
//! Stripe-Signature: t=1700000000,v1=615928fe…acd3,v1=<another>,v0=<ignored>
//!
//! tag = hex(HMAC-SHA256(key = the endpoint secret as is, "whsec_" included,
//!                       msg = "{t}.{raw body}"))
//! ```
//!
//! Unlike Standard Webhooks the secret is not base64-decoded: its text is the key. Several
//! `v1` entries may be present (the provider sends one per active secret while an endpoint's
//! secret is rolled) and any one matching is enough; other schemes (`v0`, test-mode) are
//! ignored. Exactly one `t` is required: with two, which one was signed is anyone's guess.
//!
//! The event id is the body's top-level `"id"` (`evt_…`), which the provider keeps across
//! redeliveries; it is read only once the signature holds. A verified body without one is
//! [`Rejection::MalformedBody`].

use crate::crypto::{self, Offered, first_matching_secret, hmac_sha256, plain_key};
use crate::request::{body_event_id, check_window, parse_unix_seconds};
use crate::{MAX_SIGNATURES, Rejection, Request, Verified};
use secrecy::SecretString;
use time::OffsetDateTime;

pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Verifies a Stripe-style request; see the module documentation.
pub fn verify(
    request: &Request<'_>,
    secrets: &[SecretString],
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    let body = request.bounded_body()?;
    let (timestamp, offered) = parse_header(request.header(SIGNATURE_HEADER)?)?;
    let signed_at = parse_unix_seconds(timestamp)?;

    let matched_secret = first_matching_secret(secrets, |secret| {
        let expected = hmac_sha256(plain_key(secret)?, &[timestamp.as_bytes(), b".", body]);
        Some(offered.contains(&expected))
    })?;
    check_window(signed_at, now)?;
    Ok(Verified {
        event_id: body_event_id(body)?,
        timestamp: Some(signed_at),
        matched_secret,
    })
}

/// The `t` text and the decodable `v1` tags of a `Stripe-Signature` value.
fn parse_header(header: &str) -> Result<(&str, Offered), Rejection> {
    let mut timestamp = None;
    let mut offered = Offered::new();
    let mut signatures = 0;
    for item in header.split(',') {
        let (key, value) = item
            .trim_matches([' ', '\t'])
            .split_once('=')
            .ok_or(Rejection::MalformedHeader)?;
        if key == "t" {
            if timestamp.replace(value).is_some() {
                return Err(Rejection::MalformedHeader);
            }
            continue;
        }
        signatures += 1;
        if signatures > MAX_SIGNATURES {
            return Err(Rejection::TooLarge);
        }
        // A v1 that is not 64 hex digits cannot match: skipped like an unknown scheme.
        if key == "v1"
            && let Some(tag) = crypto::decode_hex_tag(value)
        {
            offered.push(tag)?;
        }
    }
    let timestamp = timestamp.ok_or(Rejection::MalformedHeader)?;
    if offered.is_empty() {
        return Err(Rejection::MalformedHeader);
    }
    Ok((timestamp, offered))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    //   python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_StripeStyleTestSecret0123456789",
    //     b"1700000000." + BODY, hashlib.sha256).hexdigest())'
    const SECRET: &str = "whsec_StripeStyleTestSecret0123456789";
    const BODY: &[u8] =
        br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event","type":"invoice.paid"}"#;
    const T: &str = "1700000000";
    const V1: &str = "615928fe9cfb9ac557540b85afc3979c15e3be10a493b6839264216f1774acd3";
    const OTHER_SECRET: &str = "whsec_SomeoneElsesSecret";

    fn signed_at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn check_at(
        header: &str,
        body: &[u8],
        keys: &[&str],
        now: OffsetDateTime,
    ) -> Result<Verified, Rejection> {
        let headers: &[(&str, &[u8])] = &[("stripe-signature", header.as_bytes())];
        let secrets: Vec<SecretString> = keys.iter().map(|k| SecretString::from(*k)).collect();
        verify(&Request::new(headers, body), &secrets, now)
    }

    fn check(header: &str, keys: &[&str]) -> Result<Verified, Rejection> {
        check_at(header, BODY, keys, signed_at())
    }

    fn good_header() -> String {
        format!("t={T},v1={V1}")
    }

    #[test]
    fn the_reference_vector_verifies_and_yields_the_event_id() {
        assert_eq!(
            check(&good_header(), &[SECRET]),
            Ok(Verified {
                event_id: "evt_1NG8Du2eZvKYlo2CUI79vXWy".to_owned(),
                timestamp: Some(signed_at()),
                matched_secret: 0,
            })
        );
        // Upper-case hex, spaces after commas, other schemes and extra v1 entries are fine.
        let upper = format!(
            "t={T}, v0=abc, v1={}, v1={}",
            "00".repeat(32),
            V1.to_uppercase()
        );
        assert!(check(&upper, &[SECRET]).is_ok());
        assert_eq!(
            check(&good_header(), &[OTHER_SECRET, SECRET]).map(|v| v.matched_secret),
            Ok(1)
        );
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_bad_signature() {
        let bad = Err(Rejection::BadSignature);
        let tampered =
            br#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWz","object":"event","type":"invoice.paid"}"#;
        assert_eq!(
            check_at(&good_header(), tampered, &[SECRET], signed_at()),
            bad
        );
        assert_eq!(check(&good_header(), &[OTHER_SECRET]), bad);
        // The secret's text is the key: its base64 decoding is not.
        assert_eq!(
            check(&good_header(), &["StripeStyleTestSecret0123456789"]),
            bad
        );
        assert_eq!(check(&format!("t=1700000001,v1={V1}"), &[SECRET]), bad);
        let v0 = format!("t={T},v0={V1},v1={}", "00".repeat(32));
        assert_eq!(check(&v0, &[SECRET]), bad);
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        crate::assert_five_minute_window(signed_at(), |now| {
            check_at(&good_header(), BODY, &[SECRET], now).map(|_| ())
        });
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "t=1700000000",
            &format!("v1={V1}"),
            &format!("t={T},v1={V1},t={T}"),
            &format!("t={T},v1={V1},garbage"),
            &format!("t=,v1={V1}"),
            &format!("t=-1,v1={V1}"),
            &format!("t=1.7e9,v1={V1}"),
            &format!("t={T},v1={}", &V1[1..]),
            &format!("t={T},v1=zz{}", &V1[2..]),
            &format!("t={T};v1={V1}"),
            &format!("t={T},v0={V1}"),
        ] {
            assert_eq!(
                check(header, &[SECRET]),
                Err(Rejection::MalformedHeader),
                "{header:?}"
            );
        }
        let many = format!("t={T}{}", format!(",v1={V1}").repeat(MAX_SIGNATURES + 1));
        assert_eq!(check(&many, &[SECRET]), Err(Rejection::TooLarge));
        let missing: &[(&str, &[u8])] = &[("webhook-signature", b"v1,abc")];
        assert_eq!(
            verify(
                &Request::new(missing, BODY),
                &[SecretString::from(SECRET)],
                signed_at()
            ),
            Err(Rejection::MissingHeader)
        );
    }

    #[test]
    fn a_verified_body_without_an_id_is_malformed() {
        // python3: hmac.new(SECRET, b'1700000000.{"object":"event"}', hashlib.sha256).hexdigest()
        let body = br#"{"object":"event"}"#;
        let v1 = "892a3e6fd7400ded7256cc6006e5d0fbc7d58403ab5e340c9571b0f033a96bdc";
        let header = format!("t={T},v1={v1}");
        assert_eq!(
            check_at(&header, body, &[SECRET], signed_at()),
            Err(Rejection::MalformedBody)
        );
        // Unsigned, the same body is simply forged: it is never parsed.
        assert_eq!(
            check_at(&good_header(), body, &[SECRET], signed_at()),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn without_a_secret_nothing_verifies() {
        assert_eq!(check(&good_header(), &[]), Err(Rejection::NoSecret));
        assert_eq!(check(&good_header(), &[""]), Err(Rejection::NoSecret));
    }
}
