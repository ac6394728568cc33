//! Embed tokens and their request rate limits.

use super::*;
use crate::StoreError;
use crate::clock::Clock;
use crate::clock::FakeClock;
use crate::ids::TenantId;
use crate::secrets::{CURRENT, CachePolicy, PREVIOUS, SecretMeta, SecretStore};
use crate::secrets::{SecretCache, SecretKind};
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::Mutex;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

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
    assert_eq!(d.header("embed-tokens"), "\"embed-tokens\";r=0;t=45");
    assert_eq!(
        TOKEN_POLICY.header("embed-tokens"),
        "\"embed-tokens\";q=10;w=60"
    );
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
