//! [Standard Webhooks](https://www.standardwebhooks.com/): what generic senders use to reach
//! us, and what Herald uses to sign the webhooks it sends.
//!
//! ```text
//! webhook-id:        msg_p5jXN8AQM9LWM0D4loKWxJek
//! webhook-timestamp: 1614265330
//! webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,<another>
//!
//! tag = HMAC-SHA256(key = base64-decode(secret without "whsec_"),
//!                   msg = "{webhook-id}.{webhook-timestamp}.{raw body}")
//! ```
//!
//! The signature header holds space-separated `version,signature` entries; only `v1`
//! (HMAC-SHA256, standard padded base64) is checked and other versions (such as the
//! asymmetric `v1a`) are ignored, as the specification asks. A request is accepted when any
//! `v1` entry matches any of the receiver's secrets, which is how a sender rotates: it signs
//! with both the old and the new secret during the overlap ([`sign`] does the same for us).
//! The event id is `webhook-id`, the one the sender keeps across retries of a message.
//!
//! Secrets are `whsec_` and the standard base64 of 24 to 64 random bytes (ours: 32, from
//! [`generate_secret`]). As in the reference libraries, the `whsec_` prefix may be left out.

use crate::crypto::{self, Offered, first_matching_secret, hmac_sha256};
use crate::request::{check_window, is_event_id, parse_unix_seconds};
use crate::{MAX_SIGNATURES, Rejection, Request, Verified};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use time::OffsetDateTime;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

pub const SECRET_PREFIX: &str = "whsec_";
const MIN_KEY_BYTES: usize = 24;
const MAX_KEY_BYTES: usize = 64;
/// What [`generate_secret`] draws: 256 bits, the size of the HMAC-SHA256 output.
const GENERATED_KEY_BYTES: usize = 32;

/// Verifies a Standard Webhooks request; see the module documentation.
pub fn verify(
    request: &Request<'_>,
    secrets: &[SecretString],
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    let body = request.bounded_body()?;
    let id = request.header(ID_HEADER)?;
    if !is_event_id(id) {
        return Err(Rejection::MalformedHeader);
    }
    // The timestamp is signed as sent, so the tag is computed over this text, not a
    // re-formatting of the parsed value.
    let timestamp = request.header(TIMESTAMP_HEADER)?;
    let signed_at = parse_unix_seconds(timestamp)?;
    let offered = parse_signatures(request.header(SIGNATURE_HEADER)?)?;

    let matched_secret = first_matching_secret(secrets, |secret| {
        let key = decode_key(secret)?;
        let expected = hmac_sha256(
            key.as_slice(),
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        );
        Some(offered.contains(&expected))
    })?;
    // After the signature, so that a replay of a real request counts as stale, not forged.
    check_window(signed_at, now)?;
    Ok(Verified {
        event_id: id.to_owned(),
        timestamp: Some(signed_at),
        matched_secret,
    })
}

/// The `v1` tags of a `webhook-signature` value. Entries of other versions, and `v1` entries
/// that are not 32 bytes of base64, cannot match and are skipped; a header with no usable
/// `v1` entry at all is malformed.
fn parse_signatures(header: &str) -> Result<Offered, Rejection> {
    let mut offered = Offered::new();
    for (position, entry) in header.split(' ').filter(|e| !e.is_empty()).enumerate() {
        if position >= MAX_SIGNATURES {
            return Err(Rejection::TooLarge);
        }
        if let Some(tag) = entry
            .strip_prefix("v1,")
            .and_then(crypto::decode_base64_tag)
        {
            offered.push(tag)?;
        }
    }
    if offered.is_empty() {
        return Err(Rejection::MalformedHeader);
    }
    Ok(offered)
}

/// The decoded key of a secret, wiped from the stack when dropped.
struct Key {
    // Large enough for the base64 decoder's estimate for 64 bytes (88 characters -> 66).
    bytes: Zeroizing<[u8; 66]>,
    len: usize,
}

impl Key {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn decode_key(secret: &SecretString) -> Option<Key> {
    let text = secret.expose_secret();
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    // 64 bytes are 88 characters of padded base64; refusing longer text first keeps the
    // decoder within the buffer.
    if encoded.len() > 88 {
        return None;
    }
    let mut bytes = Zeroizing::new([0; 66]);
    let len = STANDARD.decode_slice(encoded, &mut bytes[..]).ok()?;
    (MIN_KEY_BYTES..=MAX_KEY_BYTES)
        .contains(&len)
        .then_some(Key { bytes, len })
}

/// Whether `secret` can sign and verify: worth checking when an endpoint's secret is stored.
pub fn is_valid_secret(secret: &SecretString) -> bool {
    decode_key(secret).is_some()
}

/// A fresh endpoint secret: `whsec_` and 32 random bytes from the operating system.
pub fn generate_secret() -> Result<SecretString, SignError> {
    let mut key = Zeroizing::new([0u8; GENERATED_KEY_BYTES]);
    getrandom::fill(&mut key[..]).map_err(|_| SignError::Randomness)?;
    // Sized up front so the text is never reallocated, which would leave a copy behind.
    let mut text = String::with_capacity(SECRET_PREFIX.len() + 44);
    text.push_str(SECRET_PREFIX);
    STANDARD.encode_string(&key[..], &mut text);
    Ok(SecretString::from(text))
}

/// Why a webhook could not be signed. These are our own configuration or programming errors:
/// an endpoint's stored secrets, or the message id we chose.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SignError {
    #[error("an endpoint needs at least one signing secret")]
    NoSecret,
    #[error("an endpoint signs with at most {MAX_SIGNATURES} secrets at once")]
    TooManySecrets,
    #[error("signing secret #{index} is not whsec_ and the base64 of 24 to 64 bytes")]
    InvalidSecret { index: usize },
    #[error("a message id is 1 to 255 visible ASCII characters")]
    InvalidId,
    #[error("a webhook cannot be signed with a time before 1970")]
    InvalidTimestamp,
    #[error("the operating system's random source failed")]
    Randomness,
}

/// The three headers of a signed outbound webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub id: String,
    pub timestamp: String,
    /// One `v1,<base64>` entry per secret, space-separated, in the order given.
    pub signature: String,
}

impl SignedHeaders {
    /// `(name, value)` pairs, ready for an HTTP client.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            (ID_HEADER, &self.id),
            (TIMESTAMP_HEADER, &self.timestamp),
            (SIGNATURE_HEADER, &self.signature),
        ]
    }
}

/// Signs an outbound webhook with each of the endpoint's active secrets: one normally, the new
/// and the old during a rotation's overlap, so the endpoint verifies whichever it holds.
///
/// `id` must stay the same across retries of the message: it is what the endpoint
/// deduplicates on. `timestamp` is the time of this attempt (a retry is signed afresh).
pub fn sign(
    id: &str,
    timestamp: OffsetDateTime,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<SignedHeaders, SignError> {
    if !is_event_id(id) {
        return Err(SignError::InvalidId);
    }
    let seconds = timestamp.unix_timestamp();
    if seconds < 0 {
        return Err(SignError::InvalidTimestamp);
    }
    if secrets.is_empty() {
        return Err(SignError::NoSecret);
    }
    if secrets.len() > MAX_SIGNATURES {
        return Err(SignError::TooManySecrets);
    }
    let timestamp = seconds.to_string();
    let mut signature = String::with_capacity(secrets.len() * 48);
    for (index, secret) in secrets.iter().enumerate() {
        let key = decode_key(secret).ok_or(SignError::InvalidSecret { index })?;
        let tag = hmac_sha256(
            key.as_slice(),
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        );
        if index > 0 {
            signature.push(' ');
        }
        signature.push_str("v1,");
        STANDARD.encode_string(tag, &mut signature);
    }
    Ok(SignedHeaders {
        id: id.to_owned(),
        timestamp,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets;
    use time::Duration;

    // The specification's own test vector, as in the standardwebhooks and svix reference
    // libraries. Checked independently with
    //   python3 -c 'import hmac,hashlib,base64; k=base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    //     print(base64.b64encode(hmac.new(k, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}",
    //     hashlib.sha256).digest()))'
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // A second secret (32 bytes of 0x01) and its tag over the same message, for rotation; by
    // the same python3 one-liner with k = b"\x01" * 32.
    const OTHER_SECRET: &str = "whsec_AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const OTHER_SIGNATURE: &str = "v1,d8asl+kiM8rGYv5f96CWaB7DltT12R+GlcKk/tAeKa8=";

    fn signed_at() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_614_265_330).unwrap()
    }

    fn check(
        id: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        keys: &[&str],
        now: OffsetDateTime,
    ) -> Result<Verified, Rejection> {
        let headers: &[(&str, &[u8])] = &[
            ("webhook-id", id.as_bytes()),
            ("webhook-timestamp", timestamp.as_bytes()),
            ("webhook-signature", signature.as_bytes()),
        ];
        verify(&Request::new(headers, body), &secrets(keys), now)
    }

    fn check_vector(signature: &str, keys: &[&str]) -> Result<Verified, Rejection> {
        check(ID, TIMESTAMP, signature, BODY, keys, signed_at())
    }

    #[test]
    fn the_specification_vector_verifies() {
        assert_eq!(
            check_vector(SIGNATURE, &[SECRET]),
            Ok(Verified {
                event_id: ID.to_owned(),
                timestamp: Some(signed_at()),
                matched_secret: 0,
            })
        );
        // The prefix is optional, as in the reference libraries.
        let bare = SECRET.trim_start_matches(SECRET_PREFIX);
        assert!(check_vector(SIGNATURE, &[bare]).is_ok());
    }

    #[test]
    fn signing_reproduces_the_specification_vector() {
        let headers = sign(ID, signed_at(), BODY, &secrets(&[SECRET])).unwrap();
        assert_eq!(
            headers.pairs(),
            [
                ("webhook-id", ID),
                ("webhook-timestamp", TIMESTAMP),
                ("webhook-signature", SIGNATURE)
            ]
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign_and_either_verifies() {
        let headers = sign(ID, signed_at(), BODY, &secrets(&[OTHER_SECRET, SECRET])).unwrap();
        assert_eq!(headers.signature, format!("{OTHER_SIGNATURE} {SIGNATURE}"));
        for keys in [&[SECRET][..], &[OTHER_SECRET]] {
            assert_eq!(
                check_vector(&headers.signature, keys).map(|v| v.matched_secret),
                Ok(0)
            );
        }
        // A receiver holding current and previous says which one matched.
        assert_eq!(
            check_vector(SIGNATURE, &[OTHER_SECRET, SECRET]).map(|v| v.matched_secret),
            Ok(1)
        );
        assert!(
            check_vector(SIGNATURE, &[OTHER_SECRET, SECRET])
                .unwrap()
                .used_previous_secret()
        );
    }

    #[test]
    fn anything_tampered_is_a_bad_signature() {
        let now = signed_at();
        let bad = Err(Rejection::BadSignature);
        assert_eq!(
            check(
                ID,
                TIMESTAMP,
                SIGNATURE,
                br#"{"test": 2432232315}"#,
                &[SECRET],
                now
            ),
            bad
        );
        assert_eq!(
            check(
                ID,
                TIMESTAMP,
                SIGNATURE,
                br#"{"test": 2432232314} "#,
                &[SECRET],
                now
            ),
            bad
        );
        assert_eq!(
            check(
                "msg_p5jXN8AQM9LWM0D4loKWxJel",
                TIMESTAMP,
                SIGNATURE,
                BODY,
                &[SECRET],
                now
            ),
            bad
        );
        assert_eq!(
            check(ID, "1614265331", SIGNATURE, BODY, &[SECRET], now),
            bad
        );
        // Same instant, different text: the text is what was signed.
        assert_eq!(
            check(ID, "01614265330", SIGNATURE, BODY, &[SECRET], now),
            bad
        );
        assert_eq!(check_vector(SIGNATURE, &[OTHER_SECRET]), bad);
        let flipped = SIGNATURE.replace("g0hM", "g0hN");
        assert_eq!(check_vector(&flipped, &[SECRET]), bad);
    }

    #[test]
    fn only_v1_entries_count() {
        let v1a = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==";
        assert!(check_vector(&format!("{v1a} v2,abc {SIGNATURE}"), &[SECRET]).is_ok());
        assert!(check_vector(&format!("  {SIGNATURE}  "), &[SECRET]).is_ok());
        assert_eq!(
            check_vector(v1a, &[SECRET]),
            Err(Rejection::MalformedHeader)
        );
        // The right tag under another version is not accepted.
        let v2 = SIGNATURE.replace("v1,", "v2,");
        assert_eq!(
            check_vector(&v2, &[SECRET]),
            Err(Rejection::MalformedHeader)
        );
    }

    #[test]
    fn the_timestamp_must_be_within_five_minutes_either_way() {
        let verdict = |now| check(ID, TIMESTAMP, SIGNATURE, BODY, &[SECRET], now).map(|_| ());
        crate::assert_five_minute_window(signed_at(), verdict);
        assert_eq!(
            verdict(signed_at() + Duration::days(365)),
            Err(Rejection::Stale)
        );
    }

    #[test]
    fn a_forged_signature_is_refused_as_forged_even_when_stale() {
        let late = signed_at() + Duration::hours(1);
        assert_eq!(
            check(ID, TIMESTAMP, SIGNATURE, BODY, &[OTHER_SECRET], late),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn malformed_or_missing_headers_are_refused() {
        let now = signed_at();
        let malformed = Err(Rejection::MalformedHeader);
        for timestamp in ["", "abc", "-1614265330", "1614265330.0", "1614265330 1"] {
            assert_eq!(
                check(ID, timestamp, SIGNATURE, BODY, &[SECRET], now),
                malformed,
                "{timestamp:?}"
            );
        }
        for signature in [
            "",
            "v1,",
            "v1,not base64",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1=g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ] {
            assert_eq!(
                check(ID, TIMESTAMP, signature, BODY, &[SECRET], now),
                malformed,
                "{signature:?}"
            );
        }
        for id in ["", "msg 1", "msg\u{7f}", &"m".repeat(256)] {
            assert_eq!(
                check(id, TIMESTAMP, SIGNATURE, BODY, &[SECRET], now),
                malformed,
                "{id:?}"
            );
        }
        let eleven = [SIGNATURE; MAX_SIGNATURES + 1].join(" ");
        assert_eq!(
            check(ID, TIMESTAMP, &eleven, BODY, &[SECRET], now),
            Err(Rejection::TooLarge)
        );
        let ten = [SIGNATURE; MAX_SIGNATURES].join(" ");
        assert!(check(ID, TIMESTAMP, &ten, BODY, &[SECRET], now).is_ok());

        let all: [(&str, &[u8]); 3] = [
            ("webhook-id", ID.as_bytes()),
            ("webhook-timestamp", TIMESTAMP.as_bytes()),
            ("webhook-signature", SIGNATURE.as_bytes()),
        ];
        for missing in 0..all.len() {
            let mut headers = all.to_vec();
            headers.remove(missing);
            assert_eq!(
                verify(&Request::new(&headers, BODY), &secrets(&[SECRET]), now),
                Err(Rejection::MissingHeader)
            );
        }
        let mut twice = all.to_vec();
        twice.push(("Webhook-Signature", OTHER_SIGNATURE.as_bytes()));
        assert_eq!(
            verify(&Request::new(&twice, BODY), &secrets(&[SECRET]), now),
            malformed
        );
    }

    #[test]
    fn without_a_usable_secret_nothing_verifies() {
        assert_eq!(check_vector(SIGNATURE, &[]), Err(Rejection::NoSecret));
        for unusable in [
            "",
            "whsec_",
            "whsec_not*base64",
            "whsec_AAAA",
            &"A".repeat(100),
        ] {
            assert_eq!(
                check_vector(SIGNATURE, &[unusable]),
                Err(Rejection::NoSecret),
                "{unusable:?}"
            );
            assert!(!is_valid_secret(&SecretString::from(unusable)));
        }
        // An unusable current secret does not stop the previous one from verifying.
        assert_eq!(
            check_vector(SIGNATURE, &["whsec_AAAA", SECRET]).map(|v| v.matched_secret),
            Ok(1)
        );
        assert_eq!(
            check_vector(SIGNATURE, &["whsec_AAAA", OTHER_SECRET]),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn generated_secrets_are_fresh_32_byte_keys_that_sign() {
        let first = generate_secret().unwrap();
        let second = generate_secret().unwrap();
        assert_ne!(first.expose_secret(), second.expose_secret());
        let text = first.expose_secret();
        assert_eq!(text.len(), SECRET_PREFIX.len() + 44);
        let key = STANDARD
            .decode(text.strip_prefix(SECRET_PREFIX).unwrap())
            .unwrap();
        assert_eq!(key.len(), 32);
        assert!(is_valid_secret(&first));

        let now = signed_at();
        let keys = [first];
        let headers = sign("msg_1", now, b"{}", &keys).unwrap();
        let pairs = headers.pairs().map(|(k, v)| (k, v.as_bytes()));
        assert!(verify(&Request::new(&pairs, b"{}"), &keys, now).is_ok());
    }

    #[test]
    fn signing_refuses_what_it_cannot_sign_correctly() {
        let now = signed_at();
        let good = secrets(&[SECRET]);
        assert_eq!(sign(ID, now, BODY, &[]), Err(SignError::NoSecret));
        assert_eq!(
            sign(ID, now, BODY, &secrets(&[SECRET; MAX_SIGNATURES + 1])),
            Err(SignError::TooManySecrets)
        );
        assert_eq!(
            sign(ID, now, BODY, &secrets(&[SECRET, "whsec_AAAA"])),
            Err(SignError::InvalidSecret { index: 1 })
        );
        assert_eq!(sign("", now, BODY, &good), Err(SignError::InvalidId));
        assert_eq!(sign("a b", now, BODY, &good), Err(SignError::InvalidId));
        assert_eq!(
            sign(
                ID,
                OffsetDateTime::UNIX_EPOCH - Duration::SECOND,
                BODY,
                &good
            ),
            Err(SignError::InvalidTimestamp)
        );
    }
}
