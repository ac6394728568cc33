//! Meta (Facebook Pages) webhooks: the signed POSTs and the GET subscription handshake.
//!
//! ```text
//! POST  X-Hub-Signature-256: sha256=<hex(HMAC-SHA256(key = app secret, msg = raw body))>
//! GET   ?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<echo this back>
//! ```
//!
//! Meta signs neither a delivery id nor a time. The event id is therefore the SHA-256 of the
//! raw body: a redelivery carries the same bytes and hashes the same, and two different
//! notifications cannot share a hash. There is no time window to check, so a captured request
//! stays valid for as long as the secret does and is refused as a replay only while the
//! receiver remembers its id: those ids should be kept as long as storage allows.
//!
//! The GET handshake proves the callback is ours: Meta sends the verify token we configured
//! and expects `hub.challenge` back verbatim. The token is compared in constant time (against
//! each configured token, current first), and the challenge must be a short run of letters,
//! digits, `-`, `_` or `.`, so a caller that echoes it cannot be made to reflect markup.

use crate::crypto::{self, first_matching_secret};
use crate::request::header_text;
use crate::{Rejection, Request, Verified};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";

/// The longest `hub.challenge` echoed back. Meta's are short numbers.
pub const MAX_CHALLENGE_BYTES: usize = 256;

/// Verifies a Meta POST; see the module documentation. The secrets are the app secret(s).
pub fn verify(request: &Request<'_>, secrets: &[SecretString]) -> Result<Verified, Rejection> {
    let (body, matched_secret) =
        crypto::body_signed_in_header(request, SIGNATURE_HEADER, crypto::decode_hex_tag, secrets)?;
    Ok(Verified {
        event_id: crypto::sha256_hex(body),
        timestamp: None,
        matched_secret,
    })
}

/// The GET handshake's query parameters, decoded, as the receiver found them.
#[derive(Clone, Copy, Default)]
pub struct Subscription<'a> {
    pub mode: Option<&'a str>,
    pub verify_token: Option<&'a str>,
    pub challenge: Option<&'a str>,
}

/// The verify token is a credential: only whether one was given.
impl fmt::Debug for Subscription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("mode", &self.mode)
            .field("verify_token", &self.verify_token.map(|_| "<redacted>"))
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// Answers the subscription handshake: the challenge to send back (as `text/plain`, status
/// 200) when the mode is `subscribe` and the token is one of `verify_tokens`.
pub fn answer_subscription<'a>(
    query: &Subscription<'a>,
    verify_tokens: &[SecretString],
) -> Result<&'a str, Rejection> {
    let mode = query.mode.ok_or(Rejection::MissingHeader)?;
    let token = query.verify_token.ok_or(Rejection::MissingHeader)?;
    let challenge = query.challenge.ok_or(Rejection::MissingHeader)?;
    if mode != "subscribe" {
        return Err(Rejection::MalformedHeader);
    }
    let token = header_text(token.as_bytes())?;
    if challenge.len() > MAX_CHALLENGE_BYTES {
        return Err(Rejection::TooLarge);
    }
    if challenge.is_empty()
        || !challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Rejection::MalformedHeader);
    }
    first_matching_secret(verify_tokens, |expected| {
        let expected = expected.expose_secret().as_bytes();
        (!expected.is_empty()).then(|| crypto::secret_equals(expected, token.as_bytes()))
    })?;
    Ok(challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    //   python3 -c 'import hmac,hashlib; print(hmac.new(b"meta-app-secret-0123456789abcdef", BODY,
    //     hashlib.sha256).hexdigest(), hashlib.sha256(BODY).hexdigest())'
    const SECRET: &str = "meta-app-secret-0123456789abcdef";
    const BODY: &[u8] =
        br#"{"object":"page","entry":[{"id":"123","time":1700000000,"changes":[]}]}"#;
    const SIGNATURE: &str =
        "sha256=b65f05fae41ec0b0a1a177c23d23ffcf73242e1a9dab89c40b8398e473cb437b";
    const BODY_SHA256: &str = "3571fc17ad7350f47fee932ba8b5bee1ccc9e421b5e19a28a87b2eac8623a0ff";

    fn check(signature: &str, body: &[u8], keys: &[&str]) -> Result<Verified, Rejection> {
        let headers: &[(&str, &[u8])] = &[("x-hub-signature-256", signature.as_bytes())];
        verify(&Request::new(headers, body), &crate::secrets(keys))
    }

    #[test]
    fn the_reference_vector_verifies_with_the_body_hash_as_event_id() {
        crate::assert_body_hash_vector(|keys| check(SIGNATURE, BODY, keys), SECRET, BODY_SHA256);
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_bad_signature() {
        let bad = Err(Rejection::BadSignature);
        let mut tampered = BODY.to_vec();
        tampered[20] ^= 1;
        assert_eq!(check(SIGNATURE, &tampered, &[SECRET]), bad);
        assert_eq!(check(SIGNATURE, &BODY[..BODY.len() - 1], &[SECRET]), bad);
        assert_eq!(
            check(SIGNATURE, BODY, &["meta-app-secret-0123456789abcdeF"]),
            bad
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let hex = SIGNATURE.trim_start_matches("sha256=");
        for header in [
            "",
            hex,
            &format!("sha1={hex}"),
            &format!("SHA256={hex}"),
            &format!("sha256={}", &hex[1..]),
            &format!("sha256={hex},sha256={hex}"),
        ] {
            assert_eq!(
                check(header, BODY, &[SECRET]),
                Err(Rejection::MalformedHeader),
                "{header:?}"
            );
        }
        assert_eq!(
            verify(&Request::new(&[], BODY), &crate::secrets(&[SECRET])),
            Err(Rejection::MissingHeader)
        );
        assert_eq!(check(SIGNATURE, BODY, &[]), Err(Rejection::NoSecret));
    }

    fn subscription<'a>(mode: &'a str, token: &'a str, challenge: &'a str) -> Subscription<'a> {
        Subscription {
            mode: Some(mode),
            verify_token: Some(token),
            challenge: Some(challenge),
        }
    }

    #[test]
    fn the_handshake_echoes_the_challenge_for_a_known_token() {
        let tokens = crate::secrets(&["current-token", "previous-token"]);
        assert_eq!(
            answer_subscription(
                &subscription("subscribe", "current-token", "1158201444"),
                &tokens
            ),
            Ok("1158201444")
        );
        assert_eq!(
            answer_subscription(
                &subscription("subscribe", "previous-token", "abc_1.2-3"),
                &tokens
            ),
            Ok("abc_1.2-3")
        );
    }

    #[test]
    fn the_handshake_refuses_anything_else() {
        let tokens = crate::secrets(&["current-token"]);
        let verdict = |q: Subscription<'_>| answer_subscription(&q, &tokens).map(|_| ());
        assert_eq!(
            verdict(subscription("subscribe", "current-tokeN", "1")),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verdict(subscription("subscribe", "current-token-", "1")),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            verdict(subscription("unsubscribe", "current-token", "1")),
            Err(Rejection::MalformedHeader)
        );
        for challenge in ["", "<script>", "a b", "1\n"] {
            assert_eq!(
                verdict(subscription("subscribe", "current-token", challenge)),
                Err(Rejection::MalformedHeader),
                "{challenge:?}"
            );
        }
        assert_eq!(
            verdict(subscription("subscribe", "current-token", &"1".repeat(257))),
            Err(Rejection::TooLarge)
        );
        assert_eq!(
            verdict(Subscription::default()),
            Err(Rejection::MissingHeader)
        );
        assert_eq!(
            verdict(Subscription {
                challenge: None,
                ..subscription("subscribe", "current-token", "1")
            }),
            Err(Rejection::MissingHeader)
        );
        // No configured token (or an empty one) matches nothing, not even an empty offer.
        let q = subscription("subscribe", "current-token", "1");
        assert_eq!(answer_subscription(&q, &[]), Err(Rejection::NoSecret));
        assert_eq!(
            answer_subscription(&q, &crate::secrets(&[""])),
            Err(Rejection::NoSecret)
        );
    }

    #[test]
    fn debug_never_shows_the_verify_token() {
        let shown = format!("{:?}", subscription("subscribe", "hunter2", "1"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
