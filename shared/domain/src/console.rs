//! Console sessions: an API key (or the operator token) exchanged once for a short-lived
//! session, so the browser holds an HttpOnly cookie instead of the key.
//!
//! A session is stored under the SHA-256 of its cookie value and keeps only the hash of the
//! key (or the digest of the operator token) it was opened with. Every request checks the key
//! again, so a revoked key, a suspended tenant or a rotated operator token ends its sessions
//! on the next request. Sessions are never extended: they end [`SESSION_LIFETIME`] after
//! sign-in, or at sign-out.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::secrets::secret::{api_key_hash, random_hex};
use async_trait::async_trait;
use secrecy::SecretString;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// How long a session lasts from sign-in.
pub const SESSION_LIFETIME: Duration = Duration::minutes(30);

/// Prefix of every session cookie value, so a leaked one is recognisable.
pub const COOKIE_PREFIX: &str = "hrldc_";

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A tenant's API key, by its hash (`tenants::authenticate_hash` checks it each time).
    Key { key_hash: String },
    /// The operator token, by its SHA-256 in hex.
    Operator { token_digest: String },
}

#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 (hex) of the cookie's value: what the store is keyed by.
    pub id: String,
    pub subject: Subject,
    /// What the console's script sends back in a header with every change: a page of
    /// another site can neither read it nor make the browser add it.
    pub csrf: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

crate::debug_fields!(Session, id, subject, created_at, expires_at);

impl Session {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn put_session(&self, session: &Session) -> Result<(), StoreError>;
    /// The session stored under `id`, expired or not (the store may keep expired ones a
    /// while: DynamoDB's TTL deletes them late, and never on the emulator).
    async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
}

/// A new session and the cookie value that names it (given to the browser once).
pub struct Opened {
    pub cookie: SecretString,
    pub session: Session,
}

crate::debug_fields!(Opened, session);

/// Opens a session for `subject`, who has just proved who they are.
pub async fn open(
    store: &dyn SessionStore,
    clock: &dyn Clock,
    subject: Subject,
) -> Result<Opened, StoreError> {
    let cookie = format!("{COOKIE_PREFIX}{}", random_hex(32));
    let now = clock.now();
    let session = Session {
        id: api_key_hash(&cookie),
        subject,
        csrf: random_hex(32),
        created_at: now,
        expires_at: now + SESSION_LIFETIME,
    };
    store.put_session(&session).await?;
    Ok(Opened {
        cookie: SecretString::from(cookie),
        session,
    })
}

/// The live session a cookie value names: `None` for an unknown, malformed or expired one.
pub async fn find(
    store: &dyn SessionStore,
    clock: &dyn Clock,
    cookie: &str,
) -> Result<Option<Session>, StoreError> {
    if !plausible(cookie) {
        return Ok(None);
    }
    let found = store.get_session(&api_key_hash(cookie)).await?;
    Ok(found.filter(|s| s.expires_at > clock.now()))
}

/// Ends the session a cookie value names (nothing happens for an unknown one).
pub async fn close(store: &dyn SessionStore, cookie: &str) -> Result<(), StoreError> {
    if plausible(cookie) {
        store.delete_session(&api_key_hash(cookie)).await?;
    }
    Ok(())
}

/// A value Herald could have issued: anything else is not worth a read.
fn plausible(cookie: &str) -> bool {
    cookie
        .strip_prefix(COOKIE_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::memory::MemoryStore;
    use secrecy::ExposeSecret;
    use time::macros::datetime;

    fn key() -> Subject {
        Subject::Key {
            key_hash: "ab".repeat(32),
        }
    }

    #[tokio::test]
    async fn a_session_is_found_by_its_cookie_until_it_expires() {
        let store = MemoryStore::default();
        let clock = FakeClock::new(datetime!(2026-12-04 12:00 UTC));
        let opened = open(&store, &clock, key()).await.unwrap();
        let cookie = opened.cookie.expose_secret();
        assert!(cookie.starts_with(COOKIE_PREFIX));
        assert_ne!(opened.session.id, cookie, "stored by hash, never by value");
        let found = find(&store, &clock, cookie).await.unwrap().unwrap();
        assert_eq!(found, opened.session);
        clock.advance(SESSION_LIFETIME - Duration::seconds(1));
        assert!(find(&store, &clock, cookie).await.unwrap().is_some());
        clock.advance(Duration::seconds(1));
        assert!(find(&store, &clock, cookie).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_closed_or_forged_cookie_finds_nothing() {
        let store = MemoryStore::default();
        let clock = FakeClock::new(datetime!(2026-12-04 12:00 UTC));
        let opened = open(&store, &clock, key()).await.unwrap();
        let cookie = opened.cookie.expose_secret().to_owned();
        for forged in [
            String::new(),
            "hrldc_".into(),
            format!("{cookie}0"),
            cookie.replace(COOKIE_PREFIX, "hrld_"),
            opened.session.id.clone(),
        ] {
            assert!(
                find(&store, &clock, &forged).await.unwrap().is_none(),
                "{forged}"
            );
        }
        close(&store, &cookie).await.unwrap();
        assert!(find(&store, &clock, &cookie).await.unwrap().is_none());
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let session = Session {
            id: "x".into(),
            subject: key(),
            csrf: "c".repeat(64),
            created_at: datetime!(2026-12-04 12:00 UTC),
            expires_at: datetime!(2026-12-04 12:30 UTC),
        };
        assert!(session.csrf_matches(&"c".repeat(64)));
        assert!(!session.csrf_matches(&"c".repeat(63)));
        assert!(!session.csrf_matches(""));
        assert!(!format!("{session:?}").contains("ccc"), "no token in logs");
    }
}
