//! X (Account Activity API) webhooks: the GET challenge-response check (CRC) and the signed
//! POSTs.
//!
//! ```text
//! GET   ?crc_token=<token>   ->  {"response_token": "sha256=<base64(HMAC-SHA256(consumer secret, token))>"}
//! POST  x-twitter-webhooks-signature: sha256=<base64(HMAC-SHA256(consumer secret, raw body))>
//! ```
//!
//! Both use the same key over attacker-chosen bytes, and the CRC endpoint answers anyone: it is
//! a signing oracle. Whoever sends `crc_token=<a body>` gets back that body's POST signature.
//! Two rules close it. A CRC token must be a short run of letters, digits and `-_.=+/`,
//! which no JSON document is; and a POST body must be a JSON object (start with `{`), which
//! no CRC token is. So nothing the oracle signs is ever accepted as an event.
//!
//! X signs no delivery id or time: as for Meta, the event id is the SHA-256 of the raw body
//! and a replay is refused only while the receiver remembers it.

use crate::crypto::{self, hmac_sha256, plain_key};
use crate::{Rejection, Request, Verified};
use secrecy::SecretString;

pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";

/// The longest `crc_token` answered.
pub const MAX_CRC_TOKEN_BYTES: usize = 256;

/// Verifies an X POST; see the module documentation. The secrets are the app's consumer
/// secret(s).
pub fn verify(request: &Request<'_>, secrets: &[SecretString]) -> Result<Verified, Rejection> {
    let (body, matched_secret) = crypto::body_signed_in_header(
        request,
        SIGNATURE_HEADER,
        crypto::decode_base64_tag,
        secrets,
    )?;
    // Checked after the signature, so that an oracle-signed token shows up as a malformed
    // body in the counts rather than as a plain forgery.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(Rejection::MalformedBody);
    }
    Ok(Verified {
        event_id: crypto::sha256_hex(body),
        timestamp: None,
        matched_secret,
    })
}

/// The `response_token` for a CRC GET (`sha256=` and the base64 tag), to be returned as
/// `{"response_token": …}`.
///
/// It is made with the first usable secret only: X checks the answer against the consumer
/// secret the app has now, which is the current one. A previous secret is still accepted on
/// POSTs while X may be delivering with it.
pub fn crc_response(
    crc_token: Option<&str>,
    secrets: &[SecretString],
) -> Result<String, Rejection> {
    let token = crc_token.ok_or(Rejection::MissingHeader)?;
    if token.len() > MAX_CRC_TOKEN_BYTES {
        return Err(Rejection::TooLarge);
    }
    if token.is_empty()
        || !token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
        })
    {
        return Err(Rejection::MalformedHeader);
    }
    let key = secrets
        .iter()
        .find_map(plain_key)
        .ok_or(Rejection::NoSecret)?;
    let tag = hmac_sha256(key, &[token.as_bytes()]);
    Ok(format!("sha256={}", crypto::encode_base64(&tag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with
    //   python3 -c 'import hmac,hashlib,base64; k=b"x-consumer-secret-0123456789ABCDEFGHIJ";
    //     print(base64.b64encode(hmac.new(k, CRC_TOKEN or BODY, hashlib.sha256).digest()),
    //     hashlib.sha256(BODY).hexdigest())'
    const SECRET: &str = "x-consumer-secret-0123456789ABCDEFGHIJ";
    const CRC_TOKEN: &str = "9b4507b3-9040-4669-9ec1-fd0e2a5bd4cb";
    const CRC_RESPONSE: &str = "sha256=cMouQdjhm2xf2SsWSzTjCIRyQIM7Bi4rl/gbd/1ZoKs=";
    const BODY: &[u8] = br#"{"for_user_id":"2244994945","tweet_create_events":[]}"#;
    const SIGNATURE: &str = "sha256=rzWr/GS2U3ruKZHPU0dmx3W1oCFdRZXkCAkZnC9ah9Y=";
    const BODY_SHA256: &str = "069ab77334725fd653a40b5ec47ea69e85a1154224b808fcfac654001cf5cb0b";

    fn check(signature: &str, body: &[u8], keys: &[&str]) -> Result<Verified, Rejection> {
        let headers: &[(&str, &[u8])] = &[("X-Twitter-Webhooks-Signature", signature.as_bytes())];
        verify(&Request::new(headers, body), &crate::secrets(keys))
    }

    #[test]
    fn the_crc_reference_vector_is_answered_with_the_current_secret() {
        assert_eq!(
            crc_response(Some(CRC_TOKEN), &crate::secrets(&[SECRET])).as_deref(),
            Ok(CRC_RESPONSE)
        );
        assert_eq!(
            crc_response(Some(CRC_TOKEN), &crate::secrets(&["", SECRET, "older"])).as_deref(),
            Ok(CRC_RESPONSE)
        );
        assert_ne!(
            crc_response(Some(CRC_TOKEN), &crate::secrets(&["newer", SECRET])).as_deref(),
            Ok(CRC_RESPONSE)
        );
    }

    #[test]
    fn crc_tokens_are_short_plain_text() {
        let keys = crate::secrets(&[SECRET]);
        assert_eq!(crc_response(None, &keys), Err(Rejection::MissingHeader));
        for token in ["", "{\"a\":1}", "a b", "a\n", "é"] {
            assert_eq!(
                crc_response(Some(token), &keys),
                Err(Rejection::MalformedHeader),
                "{token:?}"
            );
        }
        assert_eq!(
            crc_response(Some(&"a".repeat(257)), &keys),
            Err(Rejection::TooLarge)
        );
        assert!(crc_response(Some("aB9-_.=+/"), &keys).is_ok());
        assert_eq!(crc_response(Some(CRC_TOKEN), &[]), Err(Rejection::NoSecret));
    }

    #[test]
    fn the_post_reference_vector_verifies_with_the_body_hash_as_event_id() {
        crate::assert_body_hash_vector(|keys| check(SIGNATURE, BODY, keys), SECRET, BODY_SHA256);
    }

    #[test]
    fn tampering_or_the_wrong_secret_is_a_bad_signature() {
        let bad = Err(Rejection::BadSignature);
        assert_eq!(
            check(
                SIGNATURE,
                br#"{"for_user_id":"2244994946","tweet_create_events":[]}"#,
                &[SECRET]
            ),
            bad
        );
        assert_eq!(check(SIGNATURE, BODY, &["x-consumer-secret"]), bad);
        // A tag over the body in hex (Meta's encoding) is not X's encoding.
        let hex = hex::encode(hmac_sha256(SECRET.as_bytes(), &[BODY]));
        assert_eq!(
            check(&format!("sha256={hex}"), BODY, &[SECRET]),
            Err(Rejection::MalformedHeader)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "rzWr/GS2U3ruKZHPU0dmx3W1oCFdRZXkCAkZnC9ah9Y=",
            "sha1=rzWr/GS2U3ruKZHPU0dmx3W1oCFdRZXkCAkZnC9ah9Y=",
            "sha256=rzWr/GS2U3ruKZHPU0dmx3W1oCFdRZXkCAkZnC9ah9Y",
            "sha256=rzWr/GS2U3ruKZHPU0dmx3W1oCFdRZXkCAkZnC9ah9Y=,sha256=x",
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

    #[test]
    fn the_crc_oracle_cannot_sign_an_acceptable_event() {
        let keys = crate::secrets(&[SECRET]);
        // Whatever token the oracle signs, its signature over those bytes as a body is refused.
        let token = "dGhpcyBpcyBub3QgSlNPTg==";
        let response = crc_response(Some(token), &keys).unwrap();
        assert_eq!(
            check(&response, token.as_bytes(), &[SECRET]),
            Err(Rejection::MalformedBody)
        );
        // And a body that is a JSON object cannot be a token.
        assert_eq!(
            crc_response(Some(std::str::from_utf8(BODY).unwrap()), &keys),
            Err(Rejection::MalformedHeader)
        );
    }
}
