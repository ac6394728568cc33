//! Webhook signatures, both ways: deciding whether a request that claims to come from a
//! provider really does ([`verify`]), and signing the webhooks Herald sends its tenants
//! ([`standard::sign`]).
//!
//! This crate owns the cryptography and the header grammar of each scheme, and nothing else.
//! It must never do I/O, read a clock or the environment, or log: a receiver hands it the raw
//! body bytes, the headers, the current instant and the provider's secrets, and gets back a
//! [`Verified`] (with the event id to deduplicate on) or a [`Rejection`]. Recording that an
//! event id was seen, counting, and answering HTTP are the receiver's.
//!
//! | scheme | signature header(s) | signed bytes | key | event id | time |
//! |---|---|---|---|---|---|
//! | [`standard`] | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> …` | `{id}.{ts}.{body}` | base64 after `whsec_` | `webhook-id` | `webhook-timestamp` |
//! | [`stripe`] | `Stripe-Signature: t=<ts>,v1=<hex>,…` | `{t}.{body}` | the secret string as is | body's `"id"` | `t` |
//! | [`meta`] | `X-Hub-Signature-256: sha256=<hex>` | `{body}` | app secret | SHA-256 of body | none |
//! | [`x`] | `x-twitter-webhooks-signature: sha256=<b64>` | `{body}` | consumer secret | SHA-256 of body | none |
//! | [`sms`] | `X-Sms-Timestamp`, `X-Sms-Signature: sha256=<hex>` | `{ts}.{body}` | the secret string | body's `"id"` | `X-Sms-Timestamp` |
//!
//! Every tag is HMAC-SHA256. The rules common to all of them:
//!
//! - **The exact bytes.** Signatures are checked over the body as received, never over a
//!   re-serialised parse of it; the body is parsed (for an event id) only once it is verified.
//! - **Constant time.** Expected and offered tags are compared with [`subtle`], so the time a
//!   refusal takes says nothing about how much of a forged tag was right.
//! - **Rotation.** Every verifier takes the provider's secrets as a list, current first, then
//!   the previous one while its grace period lasts, and accepts a tag made with any of them;
//!   [`Verified::matched_secret`] says which did, so callers can see when the old one stops
//!   being used.
//! - **Time.** Where a scheme signs a timestamp it must be within [`TOLERANCE`] (five minutes)
//!   of `now`, in either direction: [`Rejection::Stale`] or [`Rejection::Future`] otherwise.
//!   Meta and X sign no time, so a captured request of theirs can only be refused as a replay
//!   while the receiver still remembers its event id: keep those ids for as long as possible.
//! - **Bounded work.** Bodies over [`MAX_BODY_BYTES`], header values over [`MAX_HEADER_BYTES`]
//!   and more than [`MAX_SIGNATURES`] signatures in one header are refused before any HMAC.
//! - **Ambiguity is refused.** A header present twice (in any letter case), a repeated
//!   Stripe `t=`, or a body with two `"id"` fields are malformed, not first-one-wins.
//! - **Refusals reveal nothing.** Every [`Rejection`] displays the same text; its variant is
//!   for counting ([`Rejection::label`]) and must not reach the sender.
//!
//! Headers are `(name, value bytes)` pairs, looked up case-insensitively. From an
//! `http::HeaderMap`: `map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect::<Vec<_>>()`.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;
use time::{Duration, OffsetDateTime};

mod crypto;
pub mod meta;
mod request;
pub mod sms;
pub mod standard;
pub mod stripe;
pub mod x;

pub use request::Request;

/// How far a signed timestamp may be from `now`, either way.
pub const TOLERANCE: Duration = Duration::minutes(5);

/// The largest body any verifier will hash. It bounds what an unauthenticated request can
/// make us compute; the events these providers send are small JSON documents, far below it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest header value (and GET parameter) any verifier will read.
pub const MAX_HEADER_BYTES: usize = 4 * 1024;

/// The most signatures one header may carry. Senders send one, or two while rotating; a few
/// more leave room for schemes we ignore.
pub const MAX_SIGNATURES: usize = 10;

/// The longest event id accepted, from a header or a body.
pub const MAX_EVENT_ID_BYTES: usize = 255;

/// The providers' signature schemes, by the name a provider's configuration uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Standard Webhooks, for generic senders.
    StandardWebhooks,
    /// A Stripe-style billing provider.
    Stripe,
    /// Meta (Facebook Pages).
    Meta,
    /// X's Account Activity API.
    X,
    /// The SMS provider's delivery receipts.
    Sms,
}

impl Scheme {
    pub const ALL: [Scheme; 5] = [
        Scheme::StandardWebhooks,
        Scheme::Stripe,
        Scheme::Meta,
        Scheme::X,
        Scheme::Sms,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::Stripe => "stripe",
            Scheme::Meta => "meta",
            Scheme::X => "x",
            Scheme::Sms => "sms",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("unknown webhook scheme")]
pub struct UnknownScheme;

impl FromStr for Scheme {
    type Err = UnknownScheme;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or(UnknownScheme)
    }
}

/// A request that proved it came from the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// What the receiver deduplicates on (scoped by provider: ids of two providers may clash).
    pub event_id: String,
    /// The signed send time, for the schemes that sign one.
    pub timestamp: Option<OffsetDateTime>,
    /// Which of the secrets passed in signed it: 0 for the current one, 1 for the previous.
    pub matched_secret: usize,
}

impl Verified {
    /// Signed with a secret other than the current one: worth counting during a rotation.
    pub fn used_previous_secret(&self) -> bool {
        self.matched_secret > 0
    }
}

/// Why a request was refused. Every variant displays the same words, so nothing about the
/// reason can leak into a response; the variant and [`Rejection::label`] are for metrics.
/// "Header" also covers the GET challenges' query parameters.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// A required header is absent.
    #[error("the webhook could not be verified")]
    MissingHeader,
    /// A header is present but does not follow the scheme's grammar, or appears twice.
    #[error("the webhook could not be verified")]
    MalformedHeader,
    /// The body, a header value or the number of signatures is over its limit.
    #[error("the webhook could not be verified")]
    TooLarge,
    /// Well-formed, but no offered signature (or verify token) matches any secret.
    #[error("the webhook could not be verified")]
    BadSignature,
    /// Signed more than [`TOLERANCE`] ago.
    #[error("the webhook could not be verified")]
    Stale,
    /// Signed more than [`TOLERANCE`] ahead of now.
    #[error("the webhook could not be verified")]
    Future,
    /// Verified, but the body does not carry the event id the scheme promises. The sender
    /// holds the secret, so this is a provider (or integration) bug, not an attack.
    #[error("the webhook could not be verified")]
    MalformedBody,
    /// No usable secret is configured for the provider: our configuration, not the sender.
    #[error("the webhook could not be verified")]
    NoSecret,
}

impl Rejection {
    pub const ALL: [Rejection; 8] = [
        Rejection::MissingHeader,
        Rejection::MalformedHeader,
        Rejection::TooLarge,
        Rejection::BadSignature,
        Rejection::Stale,
        Rejection::Future,
        Rejection::MalformedBody,
        Rejection::NoSecret,
    ];

    /// A stable name for a metric dimension.
    pub fn label(self) -> &'static str {
        match self {
            Rejection::MissingHeader => "missing_header",
            Rejection::MalformedHeader => "malformed_header",
            Rejection::TooLarge => "too_large",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale",
            Rejection::Future => "future",
            Rejection::MalformedBody => "malformed_body",
            Rejection::NoSecret => "no_secret",
        }
    }
}

/// Verifies a POSTed webhook by its provider's scheme: the one entry point a receiver needs,
/// with the scheme from the provider's configuration. `secrets` are current first, then
/// previous; `now` is ignored by the schemes that sign no time.
pub fn verify(
    scheme: Scheme,
    request: &Request<'_>,
    secrets: &[SecretString],
    now: OffsetDateTime,
) -> Result<Verified, Rejection> {
    match scheme {
        Scheme::StandardWebhooks => standard::verify(request, secrets, now),
        Scheme::Stripe => stripe::verify(request, secrets, now),
        Scheme::Meta => meta::verify(request, secrets),
        Scheme::X => x::verify(request, secrets),
        Scheme::Sms => sms::verify(request, secrets, now),
    }
}

/// The five-minute window every timestamped scheme keeps: `verdict` (a check of one signed
/// request at a given time) accepts five minutes either side of `signed_at`, and a second
/// more is too late (`Stale`) or too early (`Future`).
#[cfg(test)]
pub(crate) fn assert_five_minute_window(
    signed_at: OffsetDateTime,
    verdict: impl Fn(OffsetDateTime) -> Result<(), Rejection>,
) {
    let five = Duration::minutes(5);
    assert_eq!(verdict(signed_at + five), Ok(()));
    assert_eq!(verdict(signed_at - five), Ok(()));
    assert_eq!(
        verdict(signed_at + five + Duration::SECOND),
        Err(Rejection::Stale)
    );
    assert_eq!(
        verdict(signed_at - five - Duration::SECOND),
        Err(Rejection::Future)
    );
}

/// A test's secret ring, from the secrets' texts.
#[cfg(test)]
pub(crate) fn secrets(texts: &[&str]) -> Vec<SecretString> {
    texts.iter().map(|t| SecretString::from(*t)).collect()
}

/// A body-hash scheme's (Meta's, X's) reference vector: `check` (verifying the vector with the
/// given secrets) accepts it under `secret`, with the body's SHA-256 as the event id and no
/// time, and under the second secret of a ring.
#[cfg(test)]
pub(crate) fn assert_body_hash_vector(
    check: impl Fn(&[&str]) -> Result<Verified, Rejection>,
    secret: &str,
    body_sha256: &str,
) {
    assert_eq!(
        check(&[secret]),
        Ok(Verified {
            event_id: body_sha256.to_owned(),
            timestamp: None,
            matched_secret: 0,
        })
    );
    assert_eq!(
        check(&["another-secret", secret]).map(|v| v.matched_secret),
        Ok(1)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_names_round_trip_through_str_and_serde() {
        for scheme in Scheme::ALL {
            assert_eq!(scheme.as_str().parse::<Scheme>(), Ok(scheme));
            let json = serde_json::to_string(&scheme).unwrap();
            assert_eq!(json, format!("\"{scheme}\""));
            assert_eq!(serde_json::from_str::<Scheme>(&json).unwrap(), scheme);
        }
        assert_eq!("Stripe".parse::<Scheme>(), Err(UnknownScheme));
        assert_eq!("".parse::<Scheme>(), Err(UnknownScheme));
    }

    #[test]
    fn every_rejection_says_the_same_thing_and_has_its_own_label() {
        let labels: std::collections::HashSet<_> =
            Rejection::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Rejection::ALL.len());
        for rejection in Rejection::ALL {
            assert_eq!(rejection.to_string(), "the webhook could not be verified");
        }
    }
}
