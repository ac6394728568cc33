//! Properties of every verifier and parser, over generated input: nothing panics, nothing is
//! accepted without the secret, a correctly signed request is accepted by its own scheme only,
//! and any change to one is refused. The requests are signed here with `hmac` directly, not
//! with the crate's code, so a shared mistake cannot make both sides agree.
//!
//! Case counts are kept small so that the whole crate's tests take seconds in a debug build;
//! `PROPTEST_CASES=10000 cargo test -p herald-webhooks --release` runs a longer search.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use herald_webhooks::{Rejection, Request, Scheme, Verified, meta, standard, verify, x};
use hmac::{Hmac, Mac};
use proptest::collection::vec;
use proptest::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const NOW: i64 = 1_700_000_000;
const TOLERANCE_SECONDS: i64 = 300;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap()
}

fn config(cases: u32) -> ProptestConfig {
    // PROPTEST_CASES, when set, wins over the small default.
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The secret text a provider would be configured with, for key material `raw`: a `whsec_`
/// secret for Standard Webhooks, plain text (hex) for the others.
fn secret_for(scheme: Scheme, raw: &[u8; 32]) -> SecretString {
    match scheme {
        Scheme::StandardWebhooks => format!("whsec_{}", STANDARD.encode(raw)).into(),
        _ => hex::encode(raw).into(),
    }
}

/// The bytes each scheme keys its HMAC with, for a configured secret.
fn hmac_key(scheme: Scheme, secret: &SecretString) -> Vec<u8> {
    let text = secret.expose_secret();
    match scheme {
        Scheme::StandardWebhooks => STANDARD.decode(&text["whsec_".len()..]).unwrap(),
        _ => text.as_bytes().to_vec(),
    }
}

type Headers = Vec<(String, Vec<u8>)>;

/// A request signed as `scheme` specifies, by this file's own reading of the scheme.
fn sign_as(
    scheme: Scheme,
    secret: &SecretString,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Headers {
    let key = hmac_key(scheme, secret);
    let ts = timestamp.to_string();
    let joined = |prefix: &str| [prefix.as_bytes(), body].concat();
    let header = |name: &str, value: String| (name.to_owned(), value.into_bytes());
    match scheme {
        Scheme::StandardWebhooks => {
            let tag = hmac(&key, &joined(&format!("{id}.{ts}.")));
            vec![
                header("webhook-id", id.to_owned()),
                header("webhook-timestamp", ts),
                header("webhook-signature", format!("v1,{}", STANDARD.encode(tag))),
            ]
        }
        Scheme::Stripe => {
            let tag = hmac(&key, &joined(&format!("{ts}.")));
            vec![header(
                "Stripe-Signature",
                format!("t={ts},v1={}", hex::encode(tag)),
            )]
        }
        Scheme::Meta => vec![header(
            "X-Hub-Signature-256",
            format!("sha256={}", hex::encode(hmac(&key, body))),
        )],
        Scheme::X => vec![header(
            "x-twitter-webhooks-signature",
            format!("sha256={}", STANDARD.encode(hmac(&key, body))),
        )],
        Scheme::Sms => {
            let tag = hmac(&key, &joined(&format!("{ts}.")));
            vec![
                header("X-Sms-Timestamp", ts),
                header("X-Sms-Signature", format!("sha256={}", hex::encode(tag))),
            ]
        }
    }
}

fn check(
    scheme: Scheme,
    headers: &Headers,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<Verified, Rejection> {
    let pairs: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect();
    verify(scheme, &Request::new(&pairs, body), secrets, now())
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop::sample::select(Scheme::ALL.to_vec())
}

/// A body each scheme accepts once signed: a JSON object with a string `"id"`.
fn event() -> impl Strategy<Value = (String, Vec<u8>)> {
    ("[A-Za-z0-9_]{1,40}", "[ -~]{0,200}").prop_map(|(id, text)| {
        let body = serde_json::json!({ "id": id, "text": text }).to_string();
        (id, body.into_bytes())
    })
}

fn expected_event_id(scheme: Scheme, id: &str, body: &[u8]) -> String {
    match scheme {
        Scheme::StandardWebhooks | Scheme::Stripe | Scheme::Sms => id.to_owned(),
        Scheme::Meta | Scheme::X => hex::encode(Sha256::digest(body)),
    }
}

/// Header names that reach the verifiers (in the case they are usually sent, and others),
/// and some that do not.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "Webhook-Signature",
            "Stripe-Signature",
            "stripe-signature",
            "X-Hub-Signature-256",
            "x-twitter-webhooks-signature",
            "X-Sms-Timestamp",
            "X-Sms-Signature",
        ])
        .prop_map(str::to_owned),
        "[A-Za-z-]{1,24}",
    ]
}

/// Header values: raw bytes, printable text, and text shaped like each scheme's signatures
/// (the right prefixes and lengths around random tags), so parsing gets past the first byte.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let tag = any::<[u8; 32]>();
    prop_oneof![
        vec(any::<u8>(), 0..96),
        "[ -~]{0,120}".prop_map(String::into_bytes),
        (TOLERANCE_SECONDS * -2..TOLERANCE_SECONDS * 2)
            .prop_map(|d| (NOW + d).to_string().into_bytes()),
        vec(tag, 1..4).prop_map(|tags| tags
            .iter()
            .map(|t| format!("v1,{}", STANDARD.encode(t)))
            .collect::<Vec<_>>()
            .join(" ")
            .into_bytes()),
        (tag, "[ -~]{0,20}")
            .prop_map(|(t, tail)| format!("t={NOW},v1={}{tail}", hex::encode(t)).into_bytes()),
        tag.prop_map(|t| format!("sha256={}", hex::encode(t)).into_bytes()),
        tag.prop_map(|t| format!("sha256={}", STANDARD.encode(t)).into_bytes()),
    ]
}

fn headers() -> impl Strategy<Value = Headers> {
    vec((header_name(), header_value()), 0..6)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..256), event().prop_map(|(_, body)| body),]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_requests_never_verify_without_the_secret(
        headers in headers(),
        body in body(),
        raw in any::<[u8; 32]>(),
    ) {
        for scheme in Scheme::ALL {
            let secret = secret_for(scheme, &raw);
            prop_assert!(check(scheme, &headers, &body, &[secret]).is_err());
            prop_assert!(check(scheme, &headers, &body, &[]).is_err());
        }
    }

    #[test]
    fn the_get_handshakes_never_panic_nor_accept_a_wrong_token(
        mode in prop::option::of("[ -~]{0,12}"),
        token in prop::option::of("[ -~]{0,40}"),
        challenge in prop::option::of(prop_oneof!["[ -~]{0,40}", "[0-9]{1,300}"]),
        raw in any::<[u8; 32]>(),
    ) {
        let configured = hex::encode(raw);
        let query = meta::Subscription {
            mode: mode.as_deref(),
            verify_token: token.as_deref(),
            challenge: challenge.as_deref(),
        };
        prop_assert!(meta::answer_subscription(&query, &[configured.into()]).is_err());
        let response = x::crc_response(challenge.as_deref(), &[hex::encode(raw).into()]);
        if let Ok(response) = response {
            prop_assert!(response.starts_with("sha256="));
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn a_signed_request_verifies_under_its_own_scheme_only(
        scheme in scheme(),
        (id, body) in event(),
        skew in -TOLERANCE_SECONDS..=TOLERANCE_SECONDS,
        raw in any::<[u8; 32]>(),
        previous in any::<[u8; 32]>(),
    ) {
        let secret = secret_for(scheme, &raw);
        let headers = sign_as(scheme, &secret, &id, NOW + skew, &body);
        let verified = check(scheme, &headers, &body, std::slice::from_ref(&secret));
        prop_assert_eq!(
            verified.as_ref().map(|v| v.event_id.clone()),
            Ok(expected_event_id(scheme, &id, &body))
        );
        // During a rotation the request may be signed with the previous secret.
        let current = secret_for(scheme, &previous);
        prop_assert_eq!(
            check(scheme, &headers, &body, &[current, secret.clone()]).map(|v| v.matched_secret),
            Ok(if previous == raw { 0 } else { 1 })
        );
        for other in Scheme::ALL.into_iter().filter(|s| *s != scheme) {
            let secret = secret_for(other, &raw);
            prop_assert!(check(other, &headers, &body, &[secret]).is_err());
        }
    }

    #[test]
    fn a_request_signed_with_another_key_is_a_bad_signature(
        scheme in scheme(),
        (id, body) in event(),
        raw in any::<[u8; 32]>(),
        forger in any::<[u8; 32]>(),
        skew in -TOLERANCE_SECONDS..=TOLERANCE_SECONDS,
    ) {
        prop_assume!(forger != raw);
        let headers = sign_as(scheme, &secret_for(scheme, &forger), &id, NOW + skew, &body);
        prop_assert_eq!(
            check(scheme, &headers, &body, &[secret_for(scheme, &raw)]),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn any_change_to_a_signed_request_is_refused(
        scheme in scheme(),
        (id, body) in event(),
        raw in any::<[u8; 32]>(),
        position in any::<prop::sample::Index>(),
        bit in 0..8u32,
        header_index in any::<prop::sample::Index>(),
        // Not bit 5: it changes the case of a hex digit, which names the same tag.
        header_bit in prop::sample::select(vec![0u32, 1, 2, 3, 4, 6, 7]),
    ) {
        let secret = secret_for(scheme, &raw);
        let headers = sign_as(scheme, &secret, &id, NOW, &body);

        let mut flipped_body = body.clone();
        flipped_body[position.index(body.len())] ^= 1 << bit;
        prop_assert!(check(scheme, &headers, &flipped_body, std::slice::from_ref(&secret)).is_err());

        let mut flipped_headers = headers.clone();
        let value = &mut flipped_headers[header_index.index(headers.len())].1;
        let at = position.index(value.len());
        value[at] ^= 1 << header_bit;
        prop_assert!(check(scheme, &flipped_headers, &body, std::slice::from_ref(&secret)).is_err());

        let mut truncated = body.clone();
        truncated.pop();
        prop_assert!(check(scheme, &headers, &truncated, &[secret]).is_err());
    }

    #[test]
    fn signed_times_outside_five_minutes_are_refused(
        scheme in prop::sample::select(vec![Scheme::StandardWebhooks, Scheme::Stripe, Scheme::Sms]),
        (id, body) in event(),
        raw in any::<[u8; 32]>(),
        beyond in prop_oneof![1..=60i64, 1..1_000_000i64],
        late in any::<bool>(),
    ) {
        let secret = secret_for(scheme, &raw);
        let (timestamp, expected) = if late {
            (NOW - TOLERANCE_SECONDS - beyond, Rejection::Stale)
        } else {
            (NOW + TOLERANCE_SECONDS + beyond, Rejection::Future)
        };
        let headers = sign_as(scheme, &secret, &id, timestamp, &body);
        prop_assert_eq!(check(scheme, &headers, &body, &[secret]), Err(expected));
    }

    #[test]
    fn our_outbound_signatures_verify_with_either_secret_of_a_rotation(
        (id, body) in event(),
        rotating in any::<bool>(),
    ) {
        let new = standard::generate_secret().unwrap();
        let old = standard::generate_secret().unwrap();
        let active = if rotating { vec![new.clone(), old.clone()] } else { vec![new.clone()] };
        let signed = standard::sign(&id, now(), &body, &active).unwrap();
        let headers: Headers = signed
            .pairs()
            .iter()
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        // The signatures are this file's own signing of the message, new secret first.
        let ours = |secret| {
            let headers = sign_as(Scheme::StandardWebhooks, secret, &id, NOW, &body);
            String::from_utf8(headers[2].1.clone()).unwrap()
        };
        let mut expected = ours(&new);
        if rotating {
            expected = format!("{expected} {}", ours(&old));
        }
        prop_assert_eq!(&signed.signature, &expected);
        prop_assert!(check(Scheme::StandardWebhooks, &headers, &body, &[new]).is_ok());
        prop_assert_eq!(
            check(Scheme::StandardWebhooks, &headers, &body, &[old]).is_ok(),
            rotating
        );
    }
}
