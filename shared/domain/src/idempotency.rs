//! Idempotency keys with the semantics of the IETF draft "The Idempotency-Key HTTP Header
//! Field": a retried request with the same key and payload gets the first response replayed;
//! a retry while the first is still running gets 409; the same key with another payload gets
//! 422; a malformed key gets 400. Keys are scoped to a tenant and live 24 hours.
//!
//! A record belongs to the credential that created it (an API key's id, or the operator
//! token): the same key sent by another credential of the tenant is refused with 422
//! ([`Begin::OtherCaller`]) and never replayed, so a viewer cannot replay an admin's request to
//! read the key it created. The stored response body is sealed with the token vault (bound to
//! the record's id), so the table never holds a created key or signing secret in plaintext.
//!
//! The state machine lives here, once; the persistence port only puts, saves and deletes
//! (the shape of Powertools' `BasePersistenceLayer`). The put is conditional and returns the
//! record that beat it, so a duplicate costs one failed conditional write and no read.
//!
//! ```text
//!  first request                      retry with the same key
//!  ─────────────                      ───────────────────────
//!  put IN_PROGRESS ── ok ──┐          put IN_PROGRESS ── condition fails, old record back
//!                          │             ├─ fingerprint differs      → 422
//!  run the handler         │             ├─ IN_PROGRESS, not expired → 409
//!    ├─ status < 500 ──► save COMPLETED  └─ COMPLETED, not expired   → replay response
//!    └─ status ≥ 500 ──► delete (the client may retry)
//!
//!  The put succeeds when: no record | record expired (24 h) | IN_PROGRESS past its
//!  in-progress expiry (the first request's Lambda died holding it).
//! ```

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::secrets::token_crypto::{TokenField, TokenVault, sealed_key_id};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;
use time::{Duration, OffsetDateTime};

/// A key that passed [`IdempotencyKey::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the Idempotency-Key header must be a string of 1 to 255 visible ASCII characters")]
    Malformed,
}

impl IdempotencyKey {
    /// Accepts the draft's Structured Field string (`"abc"`, with `\"` and `\\` escapes) and,
    /// as most clients send it, a bare token of visible ASCII without spaces or quotes.
    pub fn parse(header: &str) -> Result<Self, KeyError> {
        let header = header.trim_matches(' ');
        let value = if let Some(inner) = header.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or(KeyError::Malformed)?;
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e @ ('"' | '\\')) => out.push(e),
                        _ => return Err(KeyError::Malformed),
                    },
                    '"' => return Err(KeyError::Malformed),
                    c if c == ' ' || c.is_ascii_graphic() => out.push(c),
                    _ => return Err(KeyError::Malformed),
                }
            }
            out
        } else {
            if !header
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            {
                return Err(KeyError::Malformed);
            }
            header.to_owned()
        };
        if value.is_empty() || value.len() > 255 {
            return Err(KeyError::Malformed);
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parts of a response worth replaying.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response as it is stored: the body sealed under the token key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// `v1.<key id>.<…>` from [`TokenVault`]; `None` in records written before responses were
    /// sealed (those have no owner either, so they are never replayed).
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    InProgress,
    Completed(SealedResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// `<tenant>#<key>`: keys never collide across tenants.
    pub id: String,
    /// The credential that created the record (an API key id, `operator-token`); `None` in
    /// records written before records had owners.
    pub owner: Option<String>,
    pub fingerprint: String,
    pub state: RecordState,
    pub expires_at: OffsetDateTime,
    pub in_progress_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutRejected {
    /// A live record holds the key; this is the record, from the failed write itself.
    Exists(Box<IdempotencyRecord>),
    Store(StoreError),
}

#[async_trait]
pub trait IdempotencyPersistence: Send + Sync {
    /// Writes an IN_PROGRESS record if the key is free at `now` (absent, expired, or an
    /// abandoned IN_PROGRESS), else returns the live record.
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> Result<(), PutRejected>;
    async fn save_completed(&self, record: &IdempotencyRecord) -> Result<(), StoreError>;
    async fn delete(&self, id: &str) -> Result<(), StoreError>;
}

#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    Proceed(Ticket),
    Replay(StoredResponse),
    InFlight,
    Mismatch,
    /// Another credential holds this key.
    OtherCaller,
    /// The request was carried out but its stored response can no longer be opened (its key
    /// left the ring, or the record predates sealing).
    Unreadable,
}

/// Proof that this request holds the key; hand it back to `complete` or `abandon`.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket {
    record: IdempotencyRecord,
    tenant: TenantId,
}

#[derive(Clone)]
pub struct Idempotency {
    persistence: Arc<dyn IdempotencyPersistence>,
    vault: Arc<TokenVault>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    in_progress_ttl: Duration,
}

crate::debug_fields!(Idempotency, ttl);

impl Idempotency {
    pub const DEFAULT_TTL: Duration = Duration::hours(24);

    /// `in_progress_ttl` should be the function's timeout: past it, the first request is dead.
    pub fn new(
        persistence: Arc<dyn IdempotencyPersistence>,
        vault: Arc<TokenVault>,
        clock: Arc<dyn Clock>,
        in_progress_ttl: Duration,
    ) -> Self {
        Self {
            persistence,
            vault,
            clock,
            ttl: Self::DEFAULT_TTL,
            in_progress_ttl,
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// `owner`: the credential asking (an API key id, or the operator token's name).
    pub async fn begin(
        &self,
        tenant: &TenantId,
        owner: &str,
        key: &IdempotencyKey,
        fingerprint: String,
    ) -> Result<Begin, StoreError> {
        let now = self.clock.now();
        let record = IdempotencyRecord {
            id: format!("{}#{}", tenant, key.as_str()),
            owner: Some(owner.to_owned()),
            fingerprint,
            state: RecordState::InProgress,
            expires_at: now + self.ttl,
            in_progress_expires_at: now + self.in_progress_ttl,
        };
        match self.persistence.put_in_progress(&record, now).await {
            Ok(()) => Ok(Begin::Proceed(Ticket {
                record,
                tenant: tenant.clone(),
            })),
            Err(PutRejected::Store(e)) => Err(e),
            Err(PutRejected::Exists(existing)) => {
                match &existing.owner {
                    // Written before records had owners: whose it was is unknown.
                    None => return Ok(Begin::Unreadable),
                    Some(o) if o != owner => return Ok(Begin::OtherCaller),
                    Some(_) => {}
                }
                if existing.fingerprint != record.fingerprint {
                    return Ok(Begin::Mismatch);
                }
                match existing.state {
                    RecordState::InProgress => Ok(Begin::InFlight),
                    RecordState::Completed(sealed) => self.open(tenant, &existing.id, sealed).await,
                }
            }
        }
    }

    async fn open(
        &self,
        tenant: &TenantId,
        id: &str,
        sealed: SealedResponse,
    ) -> Result<Begin, StoreError> {
        let Some(body) = sealed.body else {
            return Ok(Begin::Unreadable);
        };
        let keys = self.vault.keys_for(sealed_key_id(&body)).await?;
        Ok(
            match keys.open_bytes(tenant, id, TokenField::IdempotentResponse, &body) {
                Ok(body) => Begin::Replay(StoredResponse {
                    status: sealed.status,
                    headers: sealed.headers,
                    body,
                }),
                Err(e) => {
                    tracing::warn!(error = %e, "a stored idempotent response does not open");
                    Begin::Unreadable
                }
            },
        )
    }

    pub async fn complete(
        &self,
        ticket: Ticket,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let Ticket { mut record, tenant } = ticket;
        let keys = self.vault.keys().await?;
        record.state = RecordState::Completed(SealedResponse {
            status: response.status,
            headers: response.headers,
            body: Some(keys.seal_bytes(
                &tenant,
                &record.id,
                TokenField::IdempotentResponse,
                &response.body,
            )),
        });
        self.persistence.save_completed(&record).await
    }

    /// Frees the key after a failure the client may retry (a 5xx).
    pub async fn abandon(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.persistence.delete(&ticket.record.id).await
    }
}

/// The request fingerprint: method, path and body, length-prefixed so no two differ only by
/// where one part ends.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    crate::secrets::secret::sha256_hex(&[method.as_bytes(), path_and_query.as_bytes(), body])
}

/// Whether a stored record still holds its key at `now`. Backends that cannot evaluate the
/// condition themselves, and every reader, use this: TTL deletion is lazy (and the local
/// emulator never deletes), so expiry is always decided in code.
pub fn holds_key(record: &IdempotencyRecord, now: OffsetDateTime) -> bool {
    record.expires_at > now
        && match record.state {
            RecordState::InProgress => record.in_progress_expires_at > now,
            RecordState::Completed(_) => true,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sf_strings_and_bare_tokens() {
        assert_eq!(
            IdempotencyKey::parse("\"abc-123\"").unwrap().as_str(),
            "abc-123"
        );
        assert_eq!(
            IdempotencyKey::parse("abc-123").unwrap().as_str(),
            "abc-123"
        );
        assert_eq!(
            IdempotencyKey::parse(r#""a \"b\"""#).unwrap().as_str(),
            "a \"b\""
        );
        for bad in [
            "",
            "\"\"",
            "\"abc",
            "a b",
            "a\tb",
            "é",
            &"x".repeat(256),
            "\"a\\nb\"",
        ] {
            assert_eq!(
                IdempotencyKey::parse(bad),
                Err(KeyError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(
            fingerprint("POST", "/a", b"bc"),
            fingerprint("POST", "/ab", b"c")
        );
    }
}
