//! HMAC-SHA256 tags, their encodings, and constant-time matching against a list of secrets.
//! Nothing here allocates on the verification path: offered tags are decoded into a fixed
//! array, and each secret's tag is computed once however many tags were offered.

use crate::{MAX_SIGNATURES, Rejection};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

pub(crate) const TAG_LEN: usize = 32;
pub(crate) type Tag = [u8; TAG_LEN];

/// HMAC-SHA256 of the concatenation of `parts` (so `{id}.{ts}.{body}` needs no buffer).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Tag {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The tags a request offers (one per signature entry), decoded.
#[derive(Debug)]
pub(crate) struct Offered {
    tags: [Tag; MAX_SIGNATURES],
    len: usize,
}

impl Offered {
    pub(crate) fn new() -> Self {
        Self {
            tags: [[0; TAG_LEN]; MAX_SIGNATURES],
            len: 0,
        }
    }

    pub(crate) fn one(tag: Tag) -> Self {
        let mut offered = Self::new();
        offered.tags[0] = tag;
        offered.len = 1;
        offered
    }

    pub(crate) fn push(&mut self, tag: Tag) -> Result<(), Rejection> {
        let slot = self.tags.get_mut(self.len).ok_or(Rejection::TooLarge)?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_slice(&self) -> &[Tag] {
        &self.tags[..self.len]
    }

    /// Whether `expected` equals any offered tag. Every offered tag is compared, in constant
    /// time, so neither a tag's content nor its position shows in the timing.
    pub(crate) fn contains(&self, expected: &Tag) -> bool {
        let hit = self
            .as_slice()
            .iter()
            .fold(Choice::from(0), |hit, tag| hit | expected.ct_eq(tag));
        hit.into()
    }
}

/// The index of the first secret for which `matches` says yes, trying them in order.
///
/// `matches` returns `None` for a secret that cannot be used as a key (say, a `whsec_` that is
/// not base64): it is skipped, and if no secret is usable the answer is [`Rejection::NoSecret`]
/// rather than a bad signature, since the fault is ours.
pub(crate) fn first_matching_secret(
    secrets: &[SecretString],
    mut matches: impl FnMut(&SecretString) -> Option<bool>,
) -> Result<usize, Rejection> {
    let mut any_usable = false;
    for (index, secret) in secrets.iter().enumerate() {
        match matches(secret) {
            Some(true) => return Ok(index),
            Some(false) => any_usable = true,
            None => {}
        }
    }
    Err(if any_usable {
        Rejection::BadSignature
    } else {
        Rejection::NoSecret
    })
}

/// A POST whose `header` is `sha256=<tag>`, the tag (hex for Meta, base64 for X, read by
/// `decode`) an HMAC-SHA256 of the raw body alone: its body, and the index of the secret that
/// signed it.
pub(crate) fn body_signed_in_header<'a>(
    request: &crate::Request<'a>,
    header: &str,
    decode: fn(&str) -> Option<Tag>,
    secrets: &[SecretString],
) -> Result<(&'a [u8], usize), Rejection> {
    let body = request.bounded_body()?;
    let offered = request
        .header(header)?
        .strip_prefix("sha256=")
        .and_then(decode)
        .map(Offered::one)
        .ok_or(Rejection::MalformedHeader)?;
    let matched_secret = first_matching_secret(secrets, |secret| {
        Some(offered.contains(&hmac_sha256(plain_key(secret)?, &[body])))
    })?;
    Ok((body, matched_secret))
}

/// A secret used as the HMAC key byte for byte (Stripe-style, Meta, X, SMS). An empty one is
/// unusable: HMAC accepts it, and so could anyone who guessed it.
pub(crate) fn plain_key(secret: &SecretString) -> Option<&[u8]> {
    let key = secret.expose_secret().as_bytes();
    (!key.is_empty()).then_some(key)
}

/// 64 hex digits, either case.
pub(crate) fn decode_hex_tag(text: &str) -> Option<Tag> {
    let mut tag = [0; TAG_LEN];
    hex::decode_to_slice(text, &mut tag).ok()?;
    Some(tag)
}

/// Padded standard base64 of exactly 32 bytes.
pub(crate) fn decode_base64_tag(text: &str) -> Option<Tag> {
    // 32 bytes are 44 characters; checking first keeps the decode within the buffer.
    if text.len() != 44 {
        return None;
    }
    let mut buf = [0; 48];
    let len = STANDARD.decode_slice(text, &mut buf).ok()?;
    buf.get(..len)?.try_into().ok()
}

pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Compares two secrets in constant time, lengths included: both sides are hashed first, so
/// the comparison is always of 32 bytes.
pub(crate) fn secret_equals(expected: &[u8], offered: &[u8]) -> bool {
    Sha256::digest(expected)
        .as_slice()
        .ct_eq(Sha256::digest(offered).as_slice())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_of_parts_is_hmac_of_their_concatenation() {
        // RFC 4231 test case 2.
        let tag = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn offered_tags_are_bounded_and_matched_anywhere_in_the_list() {
        let mut offered = Offered::new();
        assert!(offered.is_empty());
        for i in 0..MAX_SIGNATURES {
            offered.push([i as u8; TAG_LEN]).unwrap();
        }
        assert_eq!(offered.push([0xff; TAG_LEN]), Err(Rejection::TooLarge));
        assert!(offered.contains(&[0; TAG_LEN]));
        assert!(offered.contains(&[(MAX_SIGNATURES - 1) as u8; TAG_LEN]));
        assert!(!offered.contains(&[0xff; TAG_LEN]));
        assert!(!Offered::new().contains(&[0; TAG_LEN]));
    }

    #[test]
    fn the_first_matching_usable_secret_wins() {
        let secrets: Vec<SecretString> = ["bad", "no", "yes", "yes"]
            .into_iter()
            .map(SecretString::from)
            .collect();
        let verdict = |s: &SecretString| match s.expose_secret() {
            "bad" => None,
            other => Some(other == "yes"),
        };
        assert_eq!(first_matching_secret(&secrets, verdict), Ok(2));
        assert_eq!(
            first_matching_secret(&secrets[..2], verdict),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            first_matching_secret(&secrets[..1], verdict),
            Err(Rejection::NoSecret)
        );
        assert_eq!(
            first_matching_secret(&[], verdict),
            Err(Rejection::NoSecret)
        );
    }

    #[test]
    fn empty_secrets_are_not_keys() {
        assert_eq!(plain_key(&SecretString::from("")), None);
        assert_eq!(plain_key(&SecretString::from("k")), Some(&b"k"[..]));
    }

    #[test]
    fn tags_decode_only_at_their_exact_length() {
        let hex64 = "ab".repeat(32);
        assert_eq!(decode_hex_tag(&hex64), Some([0xab; 32]));
        assert_eq!(decode_hex_tag(&hex64.to_uppercase()), Some([0xab; 32]));
        assert_eq!(decode_hex_tag(&hex64[2..]), None);
        assert_eq!(decode_hex_tag(&format!("{hex64}ab")), None);
        assert_eq!(decode_hex_tag(&format!("zz{}", &hex64[2..])), None);

        let b64 = encode_base64(&[7; 32]);
        assert_eq!(decode_base64_tag(&b64), Some([7; 32]));
        assert_eq!(decode_base64_tag(&encode_base64(&[7; 31])), None);
        assert_eq!(decode_base64_tag(&encode_base64(&[7; 33])), None);
        assert_eq!(decode_base64_tag(&b64.replace('=', "A")), None);
        assert_eq!(decode_base64_tag(&"!".repeat(44)), None);
    }

    #[test]
    fn secrets_compare_by_content_whatever_their_length() {
        assert!(secret_equals(b"token", b"token"));
        assert!(!secret_equals(b"token", b"toke"));
        assert!(!secret_equals(b"token", b"tokens"));
        assert!(!secret_equals(b"token", b"Token"));
    }
}
