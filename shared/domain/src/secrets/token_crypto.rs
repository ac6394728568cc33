//! Platform tokens at rest: AES-256-GCM under the token-encryption key (a `key-256` secret,
//! `TokenEncryptionKeySecret`). This module owns the sealed format and the key ring; it never
//! logs, formats or returns a plaintext token except inside a [`SecretString`].
//!
//! A sealed token is one string: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`.
//! - The nonce is 96 random bits, new for every encryption.
//! - The key id names the key that sealed it: the first 16 hex digits of SHA-256 over a
//!   domain label and the key (a fingerprint; it reveals nothing usable about a 256-bit
//!   random key). It travels with the ciphertext, so after a rotation tokens sealed under
//!   `AWSPREVIOUS` still open, and the sweep finds what is not under `AWSCURRENT` yet.
//! - The associated data binds the ciphertext to its tenant, account and field (`access` or
//!   `refresh`): a ciphertext copied to another account, or from one field to the other,
//!   does not open.
//!
//! Keys come from the secret's ring through [`SecretCache`] (5-minute TTL). A token sealed
//! under a key the cached ring does not hold refetches the ring once (rate-limited by the
//! cache) before it is refused.

use crate::StoreError;
use crate::ids::{AccountId, TenantId};
use crate::secrets::{SecretCache, SecretKind, SecretRing};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

const VERSION: &str = "v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Which secret a ciphertext holds (part of the associated data): one of an account's
/// tokens, or one of an outbound webhook endpoint's signing secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenField {
    Access,
    Refresh,
    WebhookSecret,
    WebhookPreviousSecret,
    /// A response kept for `Idempotency-Key` replays (owner: the record's id).
    IdempotentResponse,
    /// A token waiting for its person to pick an account (owner: `<choice id>:<account>`).
    PendingConnect,
}

impl TokenField {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
            Self::WebhookSecret => "webhook-secret",
            Self::WebhookPreviousSecret => "webhook-previous-secret",
            Self::IdempotentResponse => "idempotent-response",
            Self::PendingConnect => "pending-connect",
        }
    }
}

/// Why a sealed token could not be opened. None of them quotes the ciphertext or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenCryptoError {
    #[error("the sealed token is malformed")]
    Malformed,
    #[error("the sealed token is under key {0}, which the key ring does not hold")]
    UnknownKey(String),
    #[error("the sealed token does not authenticate (tampered, or bound to another account)")]
    Unauthentic,
    #[error("the token-encryption key is invalid: {0}")]
    BadKey(String),
}

impl From<TokenCryptoError> for StoreError {
    fn from(e: TokenCryptoError) -> Self {
        StoreError::Invalid(e.to_string())
    }
}

/// One key and its id.
#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8]) -> Result<Self, TokenCryptoError> {
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| TokenCryptoError::BadKey(format!("{} bytes, not 32", bytes.len())))?;
        Ok(Self {
            id: key_id(bytes),
            cipher,
        })
    }
}

/// The fingerprint a key is known by in sealed tokens.
pub fn key_id(key: &[u8]) -> String {
    let digest = crate::secrets::secret::sha256_hex(&[b"herald-token-key-v1", key]);
    digest[..16].to_owned()
}

/// The key ring: the current key seals, every key opens what it sealed.
#[derive(Clone)]
pub struct TokenKeys {
    current: Key,
    previous: Vec<Key>,
    /// When the current key became current (`None`: unknown, e.g. fixed keys).
    current_since: Option<time::OffsetDateTime>,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// `owner`: the account id (`acc_…`) or the webhook endpoint id (`we_…`) the secret belongs to.
fn aad(tenant: &TenantId, owner: &str, field: TokenField) -> Vec<u8> {
    format!(
        "herald-token:{VERSION}:{}:{owner}:{}",
        tenant.as_str(),
        field.as_str()
    )
    .into_bytes()
}

impl TokenKeys {
    /// From raw 32-byte keys, newest first.
    pub fn from_keys(current: &[u8], previous: &[&[u8]]) -> Result<Self, TokenCryptoError> {
        Ok(Self {
            current: Key::new(current)?,
            previous: previous
                .iter()
                .map(|k| Key::new(k))
                .collect::<Result<_, _>>()?,
            current_since: None,
        })
    }

    /// From the token-encryption key secret's ring (`key-256` values: base64 of 32 bytes).
    pub fn from_ring(ring: &SecretRing) -> Result<Self, TokenCryptoError> {
        let bytes = |v: &SecretString| {
            SecretKind::Key256
                .key_bytes(v)
                .map_err(TokenCryptoError::BadKey)
        };
        let current = bytes(&ring.current)?;
        let previous = ring.previous.as_ref().map(bytes).transpose()?;
        let mut keys = Self::from_keys(
            &current,
            previous
                .as_deref()
                .map(|p| vec![p])
                .unwrap_or_default()
                .as_slice(),
        )?;
        keys.current_since = Some(ring.current_since);
        Ok(keys)
    }

    pub fn current_since(&self) -> Option<time::OffsetDateTime> {
        self.current_since
    }

    /// The id of the key new tokens are sealed under.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    pub fn holds(&self, key_id: &str) -> bool {
        self.current.id == key_id || self.previous.iter().any(|k| k.id == key_id)
    }

    /// Seals `token` for `field` of `account` under the current key, with a fresh nonce.
    pub fn seal(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        field: TokenField,
        token: &SecretString,
    ) -> String {
        self.seal_for(tenant, account.as_str(), field, token)
    }

    /// Seals `secret` for `field` of `owner` (an account or webhook endpoint id).
    pub fn seal_for(
        &self,
        tenant: &TenantId,
        owner: &str,
        field: TokenField,
        secret: &SecretString,
    ) -> String {
        self.seal_bytes(tenant, owner, field, secret.expose_secret().as_bytes())
    }

    /// Seals any bytes (a stored response) in the same format.
    pub fn seal_bytes(
        &self,
        tenant: &TenantId,
        owner: &str,
        field: TokenField,
        plain: &[u8],
    ) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        self.seal_with_nonce(tenant, owner, field, plain, nonce)
    }

    fn seal_with_nonce(
        &self,
        tenant: &TenantId,
        owner: &str,
        field: TokenField,
        plain: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> String {
        let aad = aad(tenant, owner, field);
        let ciphertext = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            // AES-GCM fails only past 64 GiB of plaintext; what is sealed is at most 300 KiB.
            .expect("AES-GCM encryption of a token cannot fail");
        let mut body = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        format!(
            "{VERSION}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// Opens a sealed token of `field` of `account`.
    pub fn open(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        field: TokenField,
        sealed: &str,
    ) -> Result<SecretString, TokenCryptoError> {
        self.open_for(tenant, account.as_str(), field, sealed)
    }

    /// Opens a sealed secret of `field` of `owner` (an account or webhook endpoint id).
    pub fn open_for(
        &self,
        tenant: &TenantId,
        owner: &str,
        field: TokenField,
        sealed: &str,
    ) -> Result<SecretString, TokenCryptoError> {
        String::from_utf8(self.open_bytes(tenant, owner, field, sealed)?)
            .map(SecretString::from)
            .map_err(|_| TokenCryptoError::Unauthentic)
    }

    /// Opens what [`TokenKeys::seal_bytes`] sealed.
    pub fn open_bytes(
        &self,
        tenant: &TenantId,
        owner: &str,
        field: TokenField,
        sealed: &str,
    ) -> Result<Vec<u8>, TokenCryptoError> {
        let (id, body) = parse(sealed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| TokenCryptoError::UnknownKey(id.to_owned()))?;
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad(tenant, owner, field),
                },
            )
            .map_err(|_| TokenCryptoError::Unauthentic)
    }
}

/// What one sweep pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Items found with a secret not under the current key (accounts' tokens, webhook
    /// endpoints' signing secrets).
    pub examined: u32,
    /// Re-sealed under the current key.
    pub resealed: u32,
    /// Changed concurrently (a refresh or a reconnect wrote them first): left alone.
    pub skipped: u32,
    /// Could not be opened with any key the secret holds (logged by item key).
    pub unreadable: u32,
    /// Every token is under the current key: later passes cost one read until the next
    /// rotation.
    pub done: bool,
}

/// Re-seals stored tokens under the current key, so tokens never depend on a key older than
/// `AWSPREVIOUS` (the ring holds only current and previous: a second rotation before a sweep
/// finished would strand them).
#[async_trait::async_trait]
pub trait TokenSweep: Send + Sync {
    /// One pass. `settle`: how long other instances may still seal under the key before the
    /// current one (their cached ring's TTL); the pass is `done` only after it.
    async fn sweep_tokens(
        &self,
        now: time::OffsetDateTime,
        settle: time::Duration,
    ) -> Result<SweepReport, StoreError>;
}

/// The key id a sealed token names, without opening it (`None`: not a sealed token).
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    parse(sealed).ok().map(|(id, _)| id)
}

fn parse(sealed: &str) -> Result<(&str, Vec<u8>), TokenCryptoError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(VERSION), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(TokenCryptoError::Malformed);
    };
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenCryptoError::Malformed);
    }
    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| TokenCryptoError::Malformed)?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(TokenCryptoError::Malformed);
    }
    Ok((id, body))
}

/// Where the keys come from.
enum Source {
    /// The token-encryption key secret, through the process's secret cache.
    Secret {
        cache: Arc<SecretCache>,
        secret: String,
    },
    /// Fixed keys (tests, tools).
    Fixed(Arc<TokenKeys>),
}

/// The key ring as adapters use it: fetch the keys (async, cached) before sealing or opening.
pub struct TokenVault {
    source: Source,
}

crate::debug_fields!(TokenVault);

impl TokenVault {
    pub fn from_secret(cache: Arc<SecretCache>, secret: impl Into<String>) -> Self {
        Self {
            source: Source::Secret {
                cache,
                secret: secret.into(),
            },
        }
    }

    pub fn fixed(keys: TokenKeys) -> Self {
        Self {
            source: Source::Fixed(Arc::new(keys)),
        }
    }

    /// A vault with one fresh random key, gone with the process (in-memory stores).
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        Self::fixed(TokenKeys::from_keys(&key, &[]).expect("a 32-byte key is a valid key"))
    }

    /// The keys, from the cache while it is fresh.
    pub async fn keys(&self) -> Result<Arc<TokenKeys>, StoreError> {
        match &self.source {
            Source::Fixed(keys) => Ok(keys.clone()),
            Source::Secret { cache, secret } => {
                let ring = cache.get(secret).await?;
                Ok(Arc::new(TokenKeys::from_ring(&ring)?))
            }
        }
    }

    /// Keys that hold every id in `needed` if the secret does: a ring missing one (a rotation
    /// happened since it was cached) is refetched once.
    pub async fn keys_for<'a>(
        &self,
        needed: impl IntoIterator<Item = &'a str>,
    ) -> Result<Arc<TokenKeys>, StoreError> {
        let keys = self.keys().await?;
        let missing = needed.into_iter().any(|id| !keys.holds(id));
        match (&self.source, missing) {
            (Source::Secret { cache, secret }, true) => match cache.refetch(secret).await? {
                Some(ring) => Ok(Arc::new(TokenKeys::from_ring(&ring)?)),
                None => Ok(keys),
            },
            _ => Ok(keys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> (TenantId, AccountId) {
        (TenantId("t1".into()), AccountId("acc_1".into()))
    }

    fn keys(current: u8, previous: &[u8]) -> TokenKeys {
        let prev: Vec<[u8; 32]> = previous.iter().map(|b| [*b; 32]).collect();
        let prev: Vec<&[u8]> = prev.iter().map(|k| k.as_slice()).collect();
        TokenKeys::from_keys(&[current; 32], &prev).unwrap()
    }

    fn token(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_sealed_token_opens_and_holds_no_plaintext() {
        let (t, a) = ids();
        let k = keys(1, &[]);
        let sealed = k.seal(&t, &a, TokenField::Access, &token("ya29.secret-token"));
        assert!(!sealed.contains("secret-token"), "{sealed}");
        assert!(sealed.starts_with(&format!("v1.{}.", k.current_id())));
        let opened = k.open(&t, &a, TokenField::Access, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), "ya29.secret-token");
        // A fresh nonce each time: the same token seals differently.
        assert_ne!(
            sealed,
            k.seal(&t, &a, TokenField::Access, &token("ya29.secret-token"))
        );
    }

    #[test]
    fn tampering_with_nonce_ciphertext_or_tag_is_refused() {
        let (t, a) = ids();
        let k = keys(1, &[]);
        let sealed = k.seal(&t, &a, TokenField::Access, &token("tok"));
        let (head, body) = sealed.rsplit_once('.').unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        // First byte (nonce), a ciphertext byte, last byte (tag).
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let forged = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&b));
            assert_eq!(
                k.open(&t, &a, TokenField::Access, &forged).unwrap_err(),
                TokenCryptoError::Unauthentic,
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_ciphertext_moved_to_another_account_or_field_does_not_open() {
        let (t, a) = ids();
        let k = keys(1, &[]);
        let sealed = k.seal(&t, &a, TokenField::Access, &token("tok"));
        let other = AccountId("acc_2".into());
        let tenant2 = TenantId("t2".into());
        for (tt, aa, f) in [
            (&t, &other, TokenField::Access),
            (&tenant2, &a, TokenField::Access),
            (&t, &a, TokenField::Refresh),
        ] {
            assert_eq!(
                k.open(tt, aa, f, &sealed).unwrap_err(),
                TokenCryptoError::Unauthentic
            );
        }
    }

    #[test]
    fn a_webhook_secret_is_bound_to_its_endpoint_and_field() {
        let t = TenantId("t1".into());
        let k = keys(1, &[]);
        let sealed = k.seal_for(&t, "we_1", TokenField::WebhookSecret, &token("whsec_x"));
        assert_eq!(
            k.open_for(&t, "we_1", TokenField::WebhookSecret, &sealed)
                .unwrap()
                .expose_secret(),
            "whsec_x"
        );
        for (owner, field) in [
            ("we_2", TokenField::WebhookSecret),
            ("we_1", TokenField::WebhookPreviousSecret),
            ("we_1", TokenField::Access),
        ] {
            assert_eq!(
                k.open_for(&t, owner, field, &sealed).unwrap_err(),
                TokenCryptoError::Unauthentic,
                "{owner} {field:?}"
            );
        }
    }

    #[test]
    fn a_token_under_the_previous_key_still_opens_and_an_unknown_key_is_named() {
        let (t, a) = ids();
        let old = keys(1, &[]);
        let sealed = old.seal(&t, &a, TokenField::Refresh, &token("r1"));
        let rotated = keys(2, &[1]);
        assert_ne!(rotated.current_id(), old.current_id());
        assert_eq!(sealed_key_id(&sealed), Some(old.current_id()));
        assert_eq!(
            rotated
                .open(&t, &a, TokenField::Refresh, &sealed)
                .unwrap()
                .expose_secret(),
            "r1"
        );
        let unrelated = keys(3, &[2]);
        assert_eq!(
            unrelated
                .open(&t, &a, TokenField::Refresh, &sealed)
                .unwrap_err(),
            TokenCryptoError::UnknownKey(old.current_id().to_owned())
        );
    }

    #[test]
    fn a_key_that_is_not_32_bytes_is_refused() {
        assert!(matches!(
            TokenKeys::from_keys(&[0u8; 16], &[]),
            Err(TokenCryptoError::BadKey(_))
        ));
    }

    mod vault {
        use super::*;
        use crate::clock::FakeClock;
        use crate::secrets::{
            CURRENT, CachePolicy, PREVIOUS, SecretMeta, SecretStore, SecretVersion,
        };
        use async_trait::async_trait;
        use std::sync::Mutex;
        use time::OffsetDateTime;
        use time::macros::datetime;

        /// A secret whose current and previous values the test sets; counts fetches.
        #[derive(Default)]
        struct Ring {
            current: Mutex<Option<SecretString>>,
            previous: Mutex<Option<SecretString>>,
            fetches: Mutex<u32>,
        }

        #[async_trait]
        impl SecretStore for Ring {
            async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
                Ok(SecretMeta {
                    kind: Some(SecretKind::Key256),
                    versions: Vec::<SecretVersion>::new(),
                })
            }
            async fn value(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
                Ok(None)
            }
            async fn staged_value(
                &self,
                _: &str,
                stage: &str,
            ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
                let v = match stage {
                    CURRENT => {
                        *self.fetches.lock().unwrap() += 1;
                        self.current.lock().unwrap().clone()
                    }
                    PREVIOUS => self.previous.lock().unwrap().clone(),
                    _ => None,
                };
                Ok(v.map(|v| (v, datetime!(2026-01-01 00:00 UTC))))
            }
            async fn put_pending(
                &self,
                _: &str,
                _: &str,
                _: &SecretString,
            ) -> Result<(), StoreError> {
                Ok(())
            }
            async fn move_stage(
                &self,
                _: &str,
                _: &str,
                _: Option<&str>,
                _: Option<&str>,
            ) -> Result<(), StoreError> {
                Ok(())
            }
        }

        #[tokio::test]
        async fn a_token_under_a_key_the_cache_does_not_hold_refetches_the_ring_once() {
            let (t, a) = ids();
            let ring = Arc::new(Ring::default());
            let v1 = SecretKind::Key256.value_from(&[1; 32]);
            let v2 = SecretKind::Key256.value_from(&[2; 32]);
            *ring.current.lock().unwrap() = Some(v1.clone());
            let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 00:00 UTC)));
            let cache = Arc::new(SecretCache::new(
                ring.clone(),
                clock.clone(),
                CachePolicy::default(),
            ));
            let vault = TokenVault::from_secret(cache, "key");
            let before = vault.keys().await.unwrap();

            // Another instance rotated and sealed under the new key.
            *ring.current.lock().unwrap() = Some(v2);
            *ring.previous.lock().unwrap() = Some(v1);
            let newer = keys(2, &[1]);
            let sealed = newer.seal(&t, &a, TokenField::Access, &token("fresh"));
            assert!(!before.holds(sealed_key_id(&sealed).unwrap()));
            clock.advance(time::Duration::seconds(11));
            let fetches = *ring.fetches.lock().unwrap();
            let k = vault
                .keys_for([sealed_key_id(&sealed).unwrap()])
                .await
                .unwrap();
            assert_eq!(*ring.fetches.lock().unwrap(), fetches + 1, "one refetch");
            assert_eq!(
                k.open(&t, &a, TokenField::Access, &sealed)
                    .unwrap()
                    .expose_secret(),
                "fresh"
            );
            // A known id costs nothing more.
            vault.keys_for([k.current_id()]).await.unwrap();
            assert_eq!(*ring.fetches.lock().unwrap(), fetches + 1);
        }

        #[tokio::test]
        async fn a_secret_value_that_is_not_a_key_is_an_error_not_a_panic() {
            let ring = Arc::new(Ring::default());
            *ring.current.lock().unwrap() = Some(SecretString::from("not base64!"));
            let clock = Arc::new(FakeClock::new(datetime!(2026-01-01 00:00 UTC)));
            let cache = Arc::new(SecretCache::new(ring, clock, CachePolicy::default()));
            let err = TokenVault::from_secret(cache, "key")
                .keys()
                .await
                .unwrap_err();
            assert!(!err.to_string().contains("not base64!"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_input_to_the_decoder_never_panics(s in ".{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let (t, a) = ids();
            let k = keys(1, &[]);
            let _ = k.open(&t, &a, TokenField::Access, &s);
            let _ = sealed_key_id(&s);
            let framed = format!("v1.{}.{}", k.current_id(), URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert!(k.open(&t, &a, TokenField::Access, &framed).is_err());
        }

        #[test]
        fn any_token_round_trips(s in ".{1,300}") {
            let (t, a) = ids();
            let k = keys(7, &[]);
            let sealed = k.seal(&t, &a, TokenField::Refresh, &SecretString::from(s.clone()));
            let opened = k.open(&t, &a, TokenField::Refresh, &sealed).unwrap();
            prop_assert_eq!(opened.expose_secret(), s.as_str());
        }
    }
}
