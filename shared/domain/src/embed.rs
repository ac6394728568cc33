//! Embed tokens: short-lived HS256 JWTs that let a tenant's own web page frame one of its
//! Herald dashboards without an API key. This module owns the claims, the request rules, the
//! key id, issuing and every refusal reason; it never reads the environment or logs a token.
//!
//! The signing key is the `EmbedSigningKeySecret` (a `key-256` secret the rotation function
//! renews), read through the [`SecretCache`]. A token names its key in the JWT header's `kid`:
//! the first 16 hex digits of SHA-256 over a label and the key, a stable id that says nothing
//! about the key and needs no version id beside the ring. Verification accepts the current key
//! and, for the grace period after the current one was created, the previous one; a `kid`
//! nobody knows makes one refetch of the ring (a rotation may have happened since it was
//! cached; the cache bounds how often).
//!
//! `jsonwebtoken` checks the algorithm (HS256 only), the signature, the issuer and the
//! audience; expiry is checked here against the injected clock with a small leeway, so tests
//! and simulations drive time.

use crate::StoreError;
use crate::clock::Clock;
use crate::ids::TenantId;
use crate::posts::FieldError;
use crate::secrets::{SecretCache, SecretKind};
use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Who issues embed tokens and whom they are for: a token for another audience (or from
/// another issuer) signed with the same key is refused.
pub const ISSUER: &str = "herald";
pub const AUDIENCE: &str = "herald-embed";
/// A token's life when the request names none, and the bounds a request may ask within.
pub const DEFAULT_TTL_SECONDS: i64 = 60;
pub const MIN_TTL_SECONDS: i64 = 10;
pub const MAX_TTL_SECONDS: i64 = 3600;
/// Clock skew tolerated on `exp` (and a future `iat`).
pub const LEEWAY_SECONDS: i64 = 5;
pub const MAX_ORIGINS: usize = 10;
/// The dashboards a token may open.
pub const DASHBOARDS: &[&str] = &["overview"];

/// The token's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedClaims {
    pub iss: String,
    pub aud: String,
    /// The tenant whose data the token shows.
    pub sub: String,
    pub dashboard: String,
    /// Origins (`scheme://host[:port]`) allowed to embed the dashboard and call its data.
    pub origins: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl EmbedClaims {
    pub fn tenant_id(&self) -> TenantId {
        TenantId(self.sub.clone())
    }

    pub fn allows(&self, origin: &str) -> bool {
        normalize_origin(origin).is_some_and(|o| self.origins.contains(&o))
    }
}

/// Why a token (or the request carrying it) was refused. Each has a label for the counters
/// and a sentence for the caller; neither quotes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no embed token was sent")]
    Missing,
    #[error("the embed token is not a well-formed HS256 JWT with a kid")]
    Malformed,
    #[error("the embed token's signature does not verify")]
    BadSignature,
    #[error("the embed token was signed with a key Herald does not know")]
    UnknownKey,
    #[error("the embed token was signed with a retired key; ask for a new token")]
    RetiredKey,
    #[error("the embed token has expired; ask for a new token")]
    Expired,
    #[error("the embed token was not issued for Herald embeds (wrong audience)")]
    WrongAudience,
    #[error("the embed token was not issued by Herald (wrong issuer)")]
    WrongIssuer,
    #[error("the embed token is for another dashboard")]
    WrongDashboard,
    #[error("the request's origin is not one the embed token allows")]
    OriginNotAllowed,
    #[error("the request names no origin (Origin or Referer) to check against the token")]
    OriginMissing,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_kid",
            Self::RetiredKey => "retired_key",
            Self::Expired => "expired",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongDashboard => "wrong_dashboard",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::OriginMissing => "origin_missing",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An origin as browsers send it: `http(s)://host[:port]`, lower-cased, without a path (a
/// single trailing `/` is dropped). `None` for anything else, including `*` and `null`.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let raw = raw.strip_suffix('/').unwrap_or(raw);
    let (scheme, rest) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            || (host.starts_with('[') && host.ends_with(']')));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then(|| match port {
        Some(p) => format!("{scheme}://{}:{p}", host.to_ascii_lowercase()),
        None => format!("{scheme}://{}", host.to_ascii_lowercase()),
    })
}

/// The origin of a `Referer` URL (`https://shop.example/page?x` → `https://shop.example`).
pub fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    normalize_origin(&format!("{scheme}://{authority}"))
}

/// What a caller asks for.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub dashboard: String,
    pub origins: Vec<String>,
    pub ttl_seconds: Option<i64>,
}

/// A request that passed [`TokenRequest::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTokenRequest {
    pub dashboard: String,
    pub origins: Vec<String>,
    pub ttl: Duration,
}

impl TokenRequest {
    /// Every problem at once.
    pub fn validate(&self) -> Result<ValidTokenRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        if !DASHBOARDS.contains(&self.dashboard.as_str()) {
            errors.push(FieldError::new(
                "dashboard",
                format!("must be one of: {}", DASHBOARDS.join(", ")),
            ));
        }
        if self.origins.is_empty() || self.origins.len() > MAX_ORIGINS {
            errors.push(FieldError::new(
                "origins",
                format!("must list 1 to {MAX_ORIGINS} origins"),
            ));
        }
        let mut origins = Vec::new();
        for (i, o) in self.origins.iter().enumerate() {
            match normalize_origin(o) {
                Some(o) if !origins.contains(&o) => origins.push(o),
                Some(_) => {}
                None => errors.push(FieldError::new(
                    format!("origins[{i}]"),
                    "must be an origin: http(s)://host[:port], without a path or wildcard",
                )),
            }
        }
        let ttl = self.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS);
        if !(MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(&ttl) {
            errors.push(FieldError::new(
                "ttl_seconds",
                format!("must be {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}"),
            ));
        }
        if errors.is_empty() {
            Ok(ValidTokenRequest {
                dashboard: self.dashboard.clone(),
                origins,
                ttl: Duration::seconds(ttl),
            })
        } else {
            Err(errors)
        }
    }
}

/// The `kid` of a key: stable for the key, reveals nothing about it.
pub fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(b"herald-embed-kid\0")
        .chain_update(key)
        .finalize();
    hex::encode(&digest[..8])
}

/// A token as issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub kid: String,
    pub claims: EmbedClaims,
    pub expires_at: OffsetDateTime,
}

/// Issues and verifies embed tokens with the keys of one secret.
#[derive(Clone)]
pub struct EmbedTokens {
    pub secrets: Arc<SecretCache>,
    pub secret_id: String,
    pub clock: Arc<dyn Clock>,
    /// How long the previous key keeps verifying after a rotation.
    pub grace: Duration,
}

impl std::fmt::Debug for EmbedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedTokens")
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

fn key_bytes(value: &secrecy::SecretString) -> Result<Vec<u8>, StoreError> {
    SecretKind::Key256.key_bytes(value).map_err(|reason| {
        StoreError::Invalid(format!("the embed signing key is invalid: {reason}"))
    })
}

/// Where a `kid` stands in a ring.
enum KeyLookup {
    Found(Vec<u8>),
    Retired,
    Unknown,
}

impl EmbedTokens {
    pub async fn issue(
        &self,
        tenant: &TenantId,
        request: &ValidTokenRequest,
    ) -> Result<IssuedToken, StoreError> {
        let ring = self.secrets.get(&self.secret_id).await?;
        let key = key_bytes(&ring.current)?;
        let kid = key_id(&key);
        let now = self.clock.now();
        let expires_at = now + request.ttl;
        let claims = EmbedClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: tenant.0.clone(),
            dashboard: request.dashboard.clone(),
            origins: request.origins.clone(),
            iat: now.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key))
            .map_err(|e| StoreError::Invalid(format!("signing an embed token failed: {e}")))?;
        Ok(IssuedToken {
            token,
            kid,
            claims,
            expires_at,
        })
    }

    async fn lookup(&self, kid: &str, fresh: bool) -> Result<Option<KeyLookup>, StoreError> {
        let ring = if fresh {
            match self.secrets.refetch(&self.secret_id).await? {
                Some(ring) => ring,
                None => return Ok(None),
            }
        } else {
            self.secrets.get(&self.secret_id).await?
        };
        let now = self.clock.now();
        for value in ring.accepted(now, self.grace) {
            let key = key_bytes(value)?;
            if key_id(&key) == kid {
                return Ok(Some(KeyLookup::Found(key)));
            }
        }
        if let Some(previous) = &ring.previous
            && key_id(&key_bytes(previous)?) == kid
        {
            return Ok(Some(KeyLookup::Retired));
        }
        Ok(Some(KeyLookup::Unknown))
    }

    /// The token's claims if it verifies for `dashboard` from `origin` (already normalized or
    /// raw; `None`: the request named none).
    pub async fn verify(
        &self,
        token: &str,
        dashboard: &str,
        origin: Option<&str>,
    ) -> Result<EmbedClaims, EmbedError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(Refusal::Malformed.into());
        }
        let kid = header.kid.ok_or(Refusal::Malformed)?;
        let key = match self.lookup(&kid, false).await? {
            Some(KeyLookup::Found(key)) => key,
            // Perhaps rotated since the ring was cached: look once more (rate-bounded).
            _ => match self.lookup(&kid, true).await? {
                Some(KeyLookup::Found(key)) => key,
                Some(KeyLookup::Retired) => return Err(Refusal::RetiredKey.into()),
                Some(KeyLookup::Unknown) => return Err(Refusal::UnknownKey.into()),
                None => match self.lookup(&kid, false).await? {
                    Some(KeyLookup::Retired) => return Err(Refusal::RetiredKey.into()),
                    _ => return Err(Refusal::UnknownKey.into()),
                },
            },
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        // Time is the injected clock's (below), not the library's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<EmbedClaims>(
            token,
            &DecodingKey::from_secret(&key),
            &validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => Refusal::BadSignature,
            ErrorKind::InvalidAudience => Refusal::WrongAudience,
            ErrorKind::InvalidIssuer => Refusal::WrongIssuer,
            _ => Refusal::Malformed,
        })?
        .claims;
        let now = self.clock.now().unix_timestamp();
        if now > claims.exp + LEEWAY_SECONDS {
            return Err(Refusal::Expired.into());
        }
        if claims.iat > now + LEEWAY_SECONDS {
            return Err(Refusal::Malformed.into());
        }
        if claims.dashboard != dashboard {
            return Err(Refusal::WrongDashboard.into());
        }
        match origin {
            None => Err(Refusal::OriginMissing.into()),
            Some(o) if claims.allows(o) => Ok(claims),
            Some(_) => Err(Refusal::OriginNotAllowed.into()),
        }
    }
}

// ---------------------------------------------------------------- request rate limits

/// A fixed-window request budget: `limit` requests per `window` per scope (an API key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPolicy {
    pub limit: u32,
    pub window: Duration,
}

/// `POST /v1/embed/tokens`: ten per minute per API key.
pub const TOKEN_POLICY: RequestPolicy = RequestPolicy {
    limit: 10,
    window: Duration::seconds(60),
};

/// A shared counter per scope and window, so the budget holds across every Lambda instance.
#[async_trait]
pub trait RequestCounter: Send + Sync {
    /// Counts one request in window `index` of `scope` if fewer than `limit` were counted:
    /// the count after it, or `None` (nothing counted) when the window is full. The counter
    /// may be forgotten after `expires`.
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError>;
}

/// One request's place in its window: what the `RateLimit` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window resets (at least 1).
    pub reset_seconds: i64,
}

impl RequestPolicy {
    /// `RateLimit-Policy` (IETF httpapi-ratelimit-headers draft): `10;w=60`.
    pub fn header(&self) -> String {
        format!("{};w={}", self.limit, self.window.whole_seconds())
    }

    pub async fn check(
        &self,
        counter: &dyn RequestCounter,
        scope: &str,
        now: OffsetDateTime,
    ) -> Result<RateDecision, StoreError> {
        let w = self.window.whole_seconds().max(1);
        let t = now.unix_timestamp();
        let index = t.div_euclid(w);
        let ends = OffsetDateTime::from_unix_timestamp((index + 1) * w)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let reset_seconds = ((index + 1) * w - t).max(1);
        let taken = counter
            .take(scope, index, self.limit, ends + self.window)
            .await?;
        Ok(match taken {
            Some(used) => RateDecision {
                allowed: true,
                limit: self.limit,
                remaining: self.limit.saturating_sub(used),
                reset_seconds,
            },
            None => RateDecision {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset_seconds,
            },
        })
    }
}

impl RateDecision {
    /// `RateLimit`: `limit=10, remaining=3, reset=42`.
    pub fn header(&self) -> String {
        format!(
            "limit={}, remaining={}, reset={}",
            self.limit, self.remaining, self.reset_seconds
        )
    }
}

/// An in-process counter for tests.
#[derive(Debug, Default)]
pub struct MemoryCounter(std::sync::Mutex<std::collections::HashMap<(String, i64), u32>>);

#[async_trait]
impl RequestCounter for MemoryCounter {
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        _expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let used = map.entry((scope.to_owned(), index)).or_insert(0);
        if *used >= limit {
            return Ok(None);
        }
        *used += 1;
        Ok(Some(*used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::secrets::{CURRENT, CachePolicy, PREVIOUS, SecretMeta, SecretStore};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use secrecy::SecretString;
    use std::sync::Mutex;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    const SHOP: &str = "https://shop.example";

    /// A secret with a current and (after `rotate`) a previous version.
    #[derive(Default)]
    struct Keys {
        current: Mutex<Option<(SecretString, OffsetDateTime)>>,
        previous: Mutex<Option<(SecretString, OffsetDateTime)>>,
    }

    impl Keys {
        fn rotate(&self, at: OffsetDateTime, fill: u8) {
            let old = self.current.lock().unwrap().take();
            *self.previous.lock().unwrap() = old;
            *self.current.lock().unwrap() = Some((SecretKind::Key256.value_from(&[fill; 32]), at));
        }
    }

    #[async_trait]
    impl SecretStore for Keys {
        async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
            unreachable!("verification never describes")
        }
        async fn value(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
            Ok(None)
        }
        async fn staged_value(
            &self,
            _: &str,
            stage: &str,
        ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
            Ok(match stage {
                CURRENT => self.current.lock().unwrap().clone(),
                PREVIOUS => self.previous.lock().unwrap().clone(),
                _ => None,
            })
        }
        async fn put_pending(&self, _: &str, _: &str, _: &SecretString) -> Result<(), StoreError> {
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

    fn setup() -> (Arc<Keys>, Arc<FakeClock>, EmbedTokens) {
        let keys = Arc::new(Keys::default());
        keys.rotate(T0 - Duration::days(30), 1);
        let clock = Arc::new(FakeClock::new(T0));
        let tokens = EmbedTokens {
            secrets: Arc::new(SecretCache::new(
                keys.clone(),
                clock.clone(),
                CachePolicy {
                    ttl: Duration::minutes(5),
                    refetch_every: Duration::seconds(10),
                },
            )),
            secret_id: "embed".into(),
            clock: clock.clone(),
            grace: Duration::minutes(30),
        };
        (keys, clock, tokens)
    }

    fn request(ttl: Option<i64>) -> ValidTokenRequest {
        TokenRequest {
            dashboard: "overview".into(),
            origins: vec![SHOP.into(), "http://127.0.0.1:8080/".into()],
            ttl_seconds: ttl,
        }
        .validate()
        .unwrap()
    }

    fn tenant() -> TenantId {
        TenantId("t1".into())
    }

    async fn refused(tokens: &EmbedTokens, token: &str, origin: Option<&str>) -> Refusal {
        match tokens.verify(token, "overview", origin).await {
            Err(EmbedError::Refused(r)) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// A token with the right key but claims of our choosing.
    fn forge(key: &[u8], claims: &EmbedClaims, kid: Option<String>) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid;
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
    }

    #[tokio::test]
    async fn a_fresh_token_verifies_from_an_allowed_origin_with_its_claims() {
        let (_, _, tokens) = setup();
        let issued = tokens.issue(&tenant(), &request(None)).await.unwrap();
        assert_eq!(
            issued.expires_at,
            T0 + Duration::seconds(60),
            "60 s default"
        );
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key_id(&[1; 32]).as_str()));
        let claims = tokens
            .verify(&issued.token, "overview", Some("https://SHOP.example/"))
            .await
            .unwrap();
        assert_eq!(claims.sub, "t1");
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!(claims.origins, [SHOP, "http://127.0.0.1:8080"]);
        assert!(
            tokens
                .verify(&issued.token, "overview", Some("http://127.0.0.1:8080"))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_tampered_token_is_refused_for_its_signature() {
        let (_, _, tokens) = setup();
        let issued = tokens.issue(&tenant(), &request(None)).await.unwrap();
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        claims["sub"] = "someone-else".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
        assert_eq!(
            refused(&tokens, &tampered, Some(SHOP)).await,
            Refusal::BadSignature
        );
        // A signature from another key, with our kid.
        let other = forge(&[9; 32], &issued.claims, Some(issued.kid.clone()));
        assert_eq!(
            refused(&tokens, &other, Some(SHOP)).await,
            Refusal::BadSignature
        );
        for junk in ["", "a.b", "not.a.jwt", "eyJhbGciOiJub25lIn0.e30."] {
            assert_eq!(
                refused(&tokens, junk, Some(SHOP)).await,
                Refusal::Malformed,
                "{junk}"
            );
        }
        // No kid.
        let no_kid = forge(&[1; 32], &issued.claims, None);
        assert_eq!(
            refused(&tokens, &no_kid, Some(SHOP)).await,
            Refusal::Malformed
        );
    }

    #[tokio::test]
    async fn an_expired_token_is_refused_after_the_leeway() {
        let (_, clock, tokens) = setup();
        let issued = tokens.issue(&tenant(), &request(None)).await.unwrap();
        clock.advance(Duration::seconds(60 + LEEWAY_SECONDS));
        assert!(
            tokens
                .verify(&issued.token, "overview", Some(SHOP))
                .await
                .is_ok(),
            "within the leeway"
        );
        clock.advance(Duration::seconds(1));
        assert_eq!(
            refused(&tokens, &issued.token, Some(SHOP)).await,
            Refusal::Expired
        );
    }

    #[tokio::test]
    async fn wrong_audience_issuer_dashboard_and_origins_are_refused_by_name() {
        let (_, _, tokens) = setup();
        let issued = tokens.issue(&tenant(), &request(None)).await.unwrap();
        let kid = Some(issued.kid.clone());
        let mut other_aud = issued.claims.clone();
        other_aud.aud = "herald-api".into();
        assert_eq!(
            refused(
                &tokens,
                &forge(&[1; 32], &other_aud, kid.clone()),
                Some(SHOP)
            )
            .await,
            Refusal::WrongAudience
        );
        let mut other_iss = issued.claims.clone();
        other_iss.iss = "someone".into();
        assert_eq!(
            refused(&tokens, &forge(&[1; 32], &other_iss, kid), Some(SHOP)).await,
            Refusal::WrongIssuer
        );
        assert!(matches!(
            tokens.verify(&issued.token, "billing", Some(SHOP)).await,
            Err(EmbedError::Refused(Refusal::WrongDashboard))
        ));
        for origin in [
            "https://evil.example",
            "http://shop.example",
            "https://shop.example:8443",
            "null",
        ] {
            assert_eq!(
                refused(&tokens, &issued.token, Some(origin)).await,
                Refusal::OriginNotAllowed,
                "{origin}"
            );
        }
        assert_eq!(
            refused(&tokens, &issued.token, None).await,
            Refusal::OriginMissing
        );
    }

    #[tokio::test]
    async fn an_unknown_kid_is_refused_after_one_refetch() {
        let (_, _, tokens) = setup();
        let issued = tokens.issue(&tenant(), &request(None)).await.unwrap();
        let stranger = forge(&[7; 32], &issued.claims, Some(key_id(&[7; 32])));
        assert_eq!(
            refused(&tokens, &stranger, Some(SHOP)).await,
            Refusal::UnknownKey
        );
    }

    #[tokio::test]
    async fn after_a_rotation_the_old_key_verifies_in_the_grace_period_then_is_retired() {
        let (keys, clock, tokens) = setup();
        let old = tokens
            .issue(&tenant(), &request(Some(MAX_TTL_SECONDS)))
            .await
            .unwrap();
        clock.advance(Duration::seconds(1));
        keys.rotate(clock.now(), 2);
        // The cached ring does not know the new key yet; the refetch after a miss finds it.
        clock.advance(Duration::seconds(11));
        let fresh_kid_token = forge(&[2; 32], &old.claims, Some(key_id(&[2; 32])));
        assert!(
            tokens
                .verify(&fresh_kid_token, "overview", Some(SHOP))
                .await
                .is_ok()
        );
        // Issuing now signs with the new key; the old token still verifies within the grace.
        let new = tokens.issue(&tenant(), &request(None)).await.unwrap();
        assert_eq!(new.kid, key_id(&[2; 32]));
        assert_ne!(new.kid, old.kid);
        assert!(
            tokens
                .verify(&old.token, "overview", Some(SHOP))
                .await
                .is_ok()
        );
        // After the grace period the old key is retired.
        clock.advance(Duration::minutes(30));
        assert_eq!(
            refused(&tokens, &old.token, Some(SHOP)).await,
            Refusal::RetiredKey
        );
        assert!(
            tokens
                .verify(&new.token, "overview", Some(SHOP))
                .await
                .is_err_and(|e| matches!(e, EmbedError::Refused(Refusal::Expired)))
        );
    }

    #[test]
    fn requests_are_validated_all_at_once() {
        let errors = TokenRequest {
            dashboard: "secret-stuff".into(),
            origins: vec!["*".into(), "https://ok.example".into(), "ftp://x".into()],
            ttl_seconds: Some(MAX_TTL_SECONDS + 1),
        }
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["dashboard", "origins[0]", "origins[2]", "ttl_seconds"]
        );
        assert!(
            TokenRequest {
                dashboard: "overview".into(),
                origins: vec![],
                ttl_seconds: None
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn origins_normalize_and_referers_yield_their_origin() {
        assert_eq!(
            normalize_origin("HTTPS://Shop.Example:443/").as_deref(),
            Some("https://shop.example:443")
        );
        for bad in [
            "*",
            "null",
            "https://",
            "https://a b",
            "https://x/path",
            "https://x:99999",
            "javascript:alert(1)",
        ] {
            assert_eq!(normalize_origin(bad), None, "{bad}");
        }
        assert_eq!(
            origin_of_url("http://127.0.0.1:9000/host.html?x=1").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(origin_of_url("https://user@evil.example/"), None);
        // A key id is 16 hex digits and differs per key.
        assert_eq!(key_id(&[1; 32]).len(), 16);
        assert_ne!(key_id(&[1; 32]), key_id(&[2; 32]));
    }

    #[tokio::test]
    async fn the_eleventh_request_in_a_window_is_refused_until_the_next() {
        let counter = MemoryCounter::default();
        let t = datetime!(2026-03-01 12:00:15 UTC);
        for i in 1..=10u32 {
            let d = TOKEN_POLICY.check(&counter, "key", t).await.unwrap();
            assert!(d.allowed);
            assert_eq!(d.remaining, 10 - i);
            assert_eq!(d.reset_seconds, 45);
        }
        let d = TOKEN_POLICY.check(&counter, "key", t).await.unwrap();
        assert_eq!(
            d,
            RateDecision {
                allowed: false,
                limit: 10,
                remaining: 0,
                reset_seconds: 45
            }
        );
        assert_eq!(d.header(), "limit=10, remaining=0, reset=45");
        assert_eq!(TOKEN_POLICY.header(), "10;w=60");
        assert!(
            TOKEN_POLICY
                .check(&counter, "other", t)
                .await
                .unwrap()
                .allowed
        );
        let next = datetime!(2026-03-01 12:01:00 UTC);
        assert!(
            TOKEN_POLICY
                .check(&counter, "key", next)
                .await
                .unwrap()
                .allowed
        );
    }
}
