//! Idempotency keys with the semantics of the IETF draft "The Idempotency-Key HTTP Header
//! Field": a retried request with the same key and payload gets the first response replayed;
//! a retry while the first is still running gets 409; the same key with another payload gets
//! 422; a malformed key gets 400. Keys are scoped to a tenant and live 24 hours.
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    InProgress,
    Completed(StoredResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// `<tenant>#<key>`: keys never collide across tenants.
    pub id: String,
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
}

/// Proof that this request holds the key; hand it back to `complete` or `abandon`.
#[derive(Debug, PartialEq, Eq)]
pub struct Ticket(IdempotencyRecord);

#[derive(Clone)]
pub struct Idempotency {
    persistence: Arc<dyn IdempotencyPersistence>,
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
        clock: Arc<dyn Clock>,
        in_progress_ttl: Duration,
    ) -> Self {
        Self {
            persistence,
            clock,
            ttl: Self::DEFAULT_TTL,
            in_progress_ttl,
        }
    }

    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub async fn begin(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: String,
    ) -> Result<Begin, StoreError> {
        let now = self.clock.now();
        let record = IdempotencyRecord {
            id: format!("{}#{}", tenant, key.as_str()),
            fingerprint,
            state: RecordState::InProgress,
            expires_at: now + self.ttl,
            in_progress_expires_at: now + self.in_progress_ttl,
        };
        match self.persistence.put_in_progress(&record, now).await {
            Ok(()) => Ok(Begin::Proceed(Ticket(record))),
            Err(PutRejected::Store(e)) => Err(e),
            Err(PutRejected::Exists(existing)) => {
                Ok(if existing.fingerprint != record.fingerprint {
                    Begin::Mismatch
                } else {
                    match existing.state {
                        RecordState::InProgress => Begin::InFlight,
                        RecordState::Completed(response) => Begin::Replay(response),
                    }
                })
            }
        }
    }

    pub async fn complete(
        &self,
        ticket: Ticket,
        response: StoredResponse,
    ) -> Result<(), StoreError> {
        let mut record = ticket.0;
        record.state = RecordState::Completed(response);
        self.persistence.save_completed(&record).await
    }

    /// Frees the key after a failure the client may retry (a 5xx).
    pub async fn abandon(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.persistence.delete(&ticket.0.id).await
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
