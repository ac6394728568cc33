//! The SMS provider's delivery receipts. This is the scheme our provider integration (and the
//! local fake provider, which must sign the same way) uses:
//!
//! ```text
//! POST /webhooks/sms
//! X-Sms-Timestamp: 1700000000                      (Unix seconds when the receipt was sent)
//! X-Sms-Signature: sha256=<hex(HMAC-SHA256(key = the webhook secret as is,
//!                                          msg = "{X-Sms-Timestamp}.{raw body}"))>
//!
//! {"id": "dlr_0001", "message_id": "sms_42", "status": "delivered", ...}
//! ```
//!
//! The timestamp must be within five minutes of now either way, and the event id is the body's
//! top-level `"id"`, which the provider keeps when it redelivers a receipt. Receipts carry
//! phone numbers: nothing here logs or formats the body.

use crate::crypto::{self, Offered, first_matching_secret, hmac_sha256, plain_key};
use crate::request::{body_event_id, check_window, parse_unix_seconds};
use crate::{Rejection, Request, Verified};
use secrecy::SecretString;
use time::OffsetDateTime;

pub const TIMESTAMP_HEADER: &str = "X-Sms-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Sms-Signature";

/// Verifies a delivery receipt; see the module documentation.
pub fn verify(
    request: &Request<'_>,
    secrets: &[SecretString],
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    let body = request.bounded_body()?;
    let timestamp = request.header(TIMESTAMP_HEADER)?;
    let signed_at = parse_unix_seconds(timestamp)?;
    let offered = request
        .header(SIGNATURE_HEADER)?
        .strip_prefix("sha256=")
        .and_then(crypto::decode_hex_tag)
        .map(Offered::one)
        .ok_or(Rejection::MalformedHeader)?;

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

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    //   python3 -c 'import hmac,hashlib; print(hmac.new(b"sms-receipt-secret-0123456789",
    //     b"1700000000." + BODY, hashlib.sha256).hexdigest())'
    const SECRET: &str = "sms-receipt-secret-0123456789";
    const BODY: &[u8] = br#"{"id":"dlr_0001","message_id":"sms_42","status":"delivered"}"#;
    const TIMESTAMP: &str = "1700000000";
    const SIGNATURE: &str =
        "sha256=3cfe80f85c17b48b7c0b1ff41db0581880e959898b5863fbcac76112005707ba";

    fn signed_at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    fn check_at(
        timestamp: &str,
        signature: &str,
        body: &[u8],
        keys: &[&str],
        now: OffsetDateTime,
    ) -> Result<Verified, Rejection> {
        let headers: &[(&str, &[u8])] = &[
            ("x-sms-timestamp", timestamp.as_bytes()),
            ("x-sms-signature", signature.as_bytes()),
        ];
        let secrets = crate::secrets(keys);
        verify(&Request::new(headers, body), &secrets, now)
    }

    fn check(timestamp: &str, signature: &str, keys: &[&str]) -> Result<Verified, Rejection> {
        check_at(timestamp, signature, BODY, keys, signed_at())
    }

    #[test]
    fn the_reference_vector_verifies_and_yields_the_receipt_id() {
        assert_eq!(
            check(TIMESTAMP, SIGNATURE, &[SECRET]),
            Ok(Verified {
                event_id: "dlr_0001".to_owned(),
                timestamp: Some(signed_at()),
                matched_secret: 0,
            })
        );
        assert_eq!(
            check(TIMESTAMP, SIGNATURE, &["rotated-in", SECRET]).map(|v| v.matched_secret),
            Ok(1)
        );
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_bad_signature() {
        let bad = Err(Rejection::BadSignature);
        let tampered = br#"{"id":"dlr_0001","message_id":"sms_42","status":"failed"}"#;
        assert_eq!(
            check_at(TIMESTAMP, SIGNATURE, tampered, &[SECRET], signed_at()),
            bad
        );
        assert_eq!(check("1700000001", SIGNATURE, &[SECRET]), bad);
        assert_eq!(check(TIMESTAMP, SIGNATURE, &["sms-receipt-secret"]), bad);
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        crate::assert_five_minute_window(signed_at(), |now| {
            check_at(TIMESTAMP, SIGNATURE, BODY, &[SECRET], now).map(|_| ())
        });
    }

    #[test]
    fn malformed_or_missing_headers_are_refused() {
        let malformed = Err(Rejection::MalformedHeader);
        for timestamp in ["", "soon", "-1700000000", "1700000000.0"] {
            assert_eq!(
                check(timestamp, SIGNATURE, &[SECRET]),
                malformed,
                "{timestamp:?}"
            );
        }
        let hex = SIGNATURE.trim_start_matches("sha256=");
        for signature in [
            "",
            hex,
            &format!("sha512={hex}"),
            &format!("sha256={}", &hex[2..]),
        ] {
            assert_eq!(
                check(TIMESTAMP, signature, &[SECRET]),
                malformed,
                "{signature:?}"
            );
        }
        let only_timestamp: &[(&str, &[u8])] = &[("x-sms-timestamp", TIMESTAMP.as_bytes())];
        let only_signature: &[(&str, &[u8])] = &[("x-sms-signature", SIGNATURE.as_bytes())];
        for headers in [only_timestamp, only_signature] {
            assert_eq!(
                verify(
                    &Request::new(headers, BODY),
                    &[SecretString::from(SECRET)],
                    signed_at()
                ),
                Err(Rejection::MissingHeader)
            );
        }
        assert_eq!(check(TIMESTAMP, SIGNATURE, &[]), Err(Rejection::NoSecret));
    }

    #[test]
    fn a_verified_receipt_without_an_id_is_malformed() {
        // python3: hmac.new(SECRET, b'1700000000.{"status":"delivered"}', hashlib.sha256).hexdigest()
        let body = br#"{"status":"delivered"}"#;
        let signature = "sha256=2b15deb5236d547517d484a9ab53e048b535b4e8dadfb9740cc867fa4ed7a1f1";
        assert_eq!(
            check_at(TIMESTAMP, signature, body, &[SECRET], signed_at()),
            Err(Rejection::MalformedBody)
        );
    }
}
