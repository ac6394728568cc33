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
use crate::publishing::posts::FieldError;
use crate::secrets::{SecretCache, SecretKind};
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

crate::debug_fields!(EmbedTokens, grace);

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

#[cfg(test)]
mod tests;

pub use crate::rate_limits::*;
