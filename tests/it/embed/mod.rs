//! Embed tokens and embeddable dashboards.
//!
//! On the emulated AWS (this binary's own): the signing key rotated by the real rotation
//! function (old tokens verify through the grace period, then are refused as retired), and the
//! per-key rate limit held in DynamoDB across two clients. On the local stack: tokens issued
//! with an admin key over HTTP, the dashboard's data and page fetched with them, and every
//! refusal over HTTP; then headless Chromium frames the page from an allowed and a refused
//! origin.

use crate::support::*;
use herald_aws::Clients;
use herald_aws::dynamo::DynamoStore;
use herald_aws::secrets::SecretsManagerStore;
use herald_domain::analytics::embed::{
    AUDIENCE, EmbedClaims, EmbedError, EmbedTokens, ISSUER, Refusal, RequestCounter, TOKEN_POLICY,
    TokenRequest, key_id,
};
use herald_domain::clock::FakeClock;
use herald_domain::ids::TenantId;
use herald_domain::secrets::{CachePolicy, SecretCache, SecretKind};
use herald_fn_rotator::{RotationEvent, handle, rotation};
use herald_tests::{bootstrap, create_secret, local_aws, repo_root, sdk_config};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SHOP: &str = "https://shop.example";

async fn aws_clients() -> Clients {
    local_aws().clients().await
}

async fn rotate(clients: &Clients, secret: &str, token: &str) {
    // The embed key is not the token key: the gate never reads the table.
    let config = herald_fn_rotator::Config {
        table: "unused".into(),
        token_key_secret: "herald-not-rotated-here".into(),
    };
    let rotation = rotation(&config, clients);
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        handle(
            &rotation,
            &RotationEvent {
                secret_id: secret.to_owned(),
                client_request_token: token.to_owned(),
                step: step.to_owned(),
            },
        )
        .await
        .unwrap();
    }
}

fn overview(
    origins: &[&str],
    ttl: Option<i64>,
) -> herald_domain::analytics::embed::ValidTokenRequest {
    TokenRequest {
        dashboard: "overview".into(),
        origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        ttl_seconds: ttl,
    }
    .validate()
    .unwrap()
}

#[tokio::test]
async fn a_rotated_embed_key_verifies_old_tokens_through_the_grace_period_then_retires_them() {
    let clients = aws_clients().await;
    let secret = create_secret(&clients.secrets, "herald-embed-", Some("key-256"), None).await;
    rotate(&clients, &secret, "00000000-0000-4000-8000-0000000000e1").await;
    let clock = Arc::new(FakeClock::new(time::OffsetDateTime::now_utc()));
    let tokens = EmbedTokens {
        secrets: Arc::new(SecretCache::new(
            Arc::new(SecretsManagerStore::new(clients.secrets.clone())),
            clock.clone(),
            CachePolicy::default(),
        )),
        secret_id: secret.clone(),
        clock: clock.clone(),
        grace: time::Duration::hours(2),
    };
    let tenant = TenantId("t-embed".into());
    let old = tokens
        .issue(&tenant, &overview(&[SHOP], Some(3600)))
        .await
        .unwrap();
    assert!(
        tokens
            .verify(&old.token, "overview", Some(SHOP))
            .await
            .is_ok()
    );

    rotate(&clients, &secret, "00000000-0000-4000-8000-0000000000e2").await;
    // The cached ring still signs with the old key until it is refetched (TTL 5 min).
    clock.advance(time::Duration::minutes(6));
    let new = tokens
        .issue(&tenant, &overview(&[SHOP], Some(3600)))
        .await
        .unwrap();
    assert_ne!(new.kid, old.kid, "the new key has its own kid");
    assert!(
        tokens
            .verify(&new.token, "overview", Some(SHOP))
            .await
            .is_ok()
    );
    assert!(
        tokens
            .verify(&old.token, "overview", Some(SHOP))
            .await
            .is_ok(),
        "the previous key verifies within the grace period"
    );
    // Past the grace period (the old token has not expired: its refusal is the key's).
    clock.advance(time::Duration::hours(2));
    match tokens.verify(&old.token, "overview", Some(SHOP)).await {
        Err(EmbedError::Refused(Refusal::RetiredKey)) => {}
        other => panic!("expected a retired key, got {other:?}"),
    }
}

#[tokio::test]
async fn the_eleventh_token_request_in_a_minute_is_refused_across_two_clients() {
    let vars = bootstrap(local_aws());
    // Two clients, as two Lambda instances would have.
    let a = DynamoStore::new(local_aws().clients().await.dynamodb, &vars["HERALD_TABLE"]);
    let b = DynamoStore::new(local_aws().clients().await.dynamodb, &vars["HERALD_TABLE"]);
    // Mid-window, so the eleven calls share one window.
    let now = time::OffsetDateTime::now_utc().replace_second(20).unwrap();
    let scope = format!("apikey#{}#embed-tokens", uuid::Uuid::new_v4().simple());
    let mut remaining = Vec::new();
    for i in 0..10 {
        let counter: &dyn RequestCounter = if i % 2 == 0 { &a } else { &b };
        let d = TOKEN_POLICY.check(counter, &scope, now).await.unwrap();
        assert!(d.allowed, "call {}", i + 1);
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for counter in [&a as &dyn RequestCounter, &b] {
        let d = TOKEN_POLICY.check(counter, &scope, now).await.unwrap();
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.reset_seconds), (0, 40));
    }
    // Another key has its own budget; the next window starts afresh.
    assert!(
        TOKEN_POLICY
            .check(&a, "apikey#other#embed-tokens", now)
            .await
            .unwrap()
            .allowed
    );
    let next = now + time::Duration::seconds(40);
    assert!(TOKEN_POLICY.check(&b, &scope, next).await.unwrap().allowed);
}

// ---------------------------------------------------------------- the local stack

impl Stack {
    async fn issue(
        &self,
        key: &str,
        body: Value,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        self.call(
            self.http
                .post(self.api_url("/v1/embed/tokens"))
                .bearer_auth(key)
                .header("idempotency-key", unique("k-"))
                .json(&body),
        )
        .await
    }

    async fn data(
        &self,
        token: &str,
        origin: Option<&str>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .http
            .get(self.api_url("/embed/v1/dashboards/overview/data"))
            .bearer_auth(token);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.call(req).await
    }

    /// Publishes one post on X through the whole stack and waits until it is published.
    async fn publish_one(&self, t: &Tenant) {
        let account = self.connect_mapped(t, "x", &unique("embed-x-")).await;
        let post = self.schedule(t, &account, "embedded", 1).await;
        self.await_variant(t, post["id"].as_str().unwrap(), "published")
            .await;
    }

    /// The stack's signing key, read from its Secrets Manager, to forge tokens that only a
    /// key holder could make (expired, for another audience).
    async fn signing_key(&self) -> Vec<u8> {
        let sm =
            aws_sdk_secretsmanager::Client::new(&sdk_config(self.url("AWS_ENDPOINT_URL")).await);
        let value = sm
            .get_secret_value()
            .secret_id(self.url("HERALD_EMBED_SIGNING_SECRET_ID"))
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_owned();
        SecretKind::Key256
            .key_bytes(&SecretString::from(value))
            .unwrap()
    }
}

fn forge(key: &[u8], claims: &EmbedClaims) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key_id(key));
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn claims_of(token: &str) -> EmbedClaims {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

fn series<'a>(data: &'a Value, id: &str) -> &'a Value {
    data["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no series {id} in {data}"))
}

fn point(data: &Value, series_id: &str, label: &str) -> u64 {
    series(data, series_id)["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["label"] == label)
        .and_then(|p| p["value"].as_u64())
        .unwrap()
}

fn problem_type(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn embed_tokens_over_http_open_the_tenants_data_and_every_bad_token_is_refused_by_name() {
    let stack = Stack::running();
    let t = stack.tenant();
    stack.publish_one(&t).await;

    // Only admin keys issue tokens.
    let (s, _, editor) = stack
        .call(
            stack
                .http
                .post(stack.api_url("/v1/api-keys"))
                .bearer_auth(&t.key)
                .json(&json!({"role": "editor", "name": "ed"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{editor}");
    let (s, _, v) = stack
        .issue(
            editor["key"].as_str().unwrap(),
            json!({"dashboard": "overview", "origins": [SHOP]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Bad requests are 422 problems listing each field.
    let (s, h, v) = stack
        .issue(
            &t.key,
            json!({"dashboard": "nope", "origins": ["*"], "ttl_seconds": 99999}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(v["errors"].as_array().unwrap().len(), 3, "{v}");

    let (s, h, issued) = stack
        .issue(
            &t.key,
            json!({"dashboard": "overview", "origins": [SHOP, "http://127.0.0.1:9"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    assert_eq!(h["ratelimit-policy"], "\"embed-tokens\";q=10;w=60");
    assert!(
        h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"embed-tokens\";r=")
    );
    assert_eq!(issued["expires_in"], 60, "the default TTL");
    let token = issued["token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(
        (claims.aud.as_str(), claims.iss.as_str()),
        (AUDIENCE, ISSUER)
    );

    // The data, for the tenant, to an allowed origin (with CORS for it alone).
    let (s, h, data) = stack.data(token, Some(SHOP)).await;
    assert_eq!(s, StatusCode::OK, "{data}");
    assert_eq!(h["access-control-allow-origin"], SHOP);
    assert_eq!(data["tenant_id"], claims.sub.as_str());
    assert_eq!(point(&data, "published_by_platform", "x"), 1);
    assert_eq!(point(&data, "variants_by_status", "published"), 1);

    // Refusals, each named.
    let key = stack.signing_key().await;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut sig = parts[2].clone().into_bytes();
    sig[5] = if sig[5] == b'A' { b'B' } else { b'A' };
    parts[2] = String::from_utf8(sig).unwrap();
    let tampered = parts.join(".");
    let mut expired = claims.clone();
    expired.iat -= 600;
    expired.exp = expired.iat + 60;
    let mut other_audience = claims.clone();
    other_audience.aud = "herald-api".into();
    let mut stranger = claims.clone();
    stranger.sub = "someone".into();
    let unknown_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(key_id(&[3; 32]));
        jsonwebtoken::encode(
            &header,
            &stranger,
            &jsonwebtoken::EncodingKey::from_secret(&[3; 32]),
        )
        .unwrap()
    };
    let cases: Vec<(&str, String, Option<&str>, StatusCode, &str)> = vec![
        (
            "tampered",
            tampered,
            Some(SHOP),
            StatusCode::UNAUTHORIZED,
            "/problems/embed-token-bad-signature",
        ),
        (
            "expired",
            forge(&key, &expired),
            Some(SHOP),
            StatusCode::UNAUTHORIZED,
            "/problems/embed-token-expired",
        ),
        (
            "wrong audience",
            forge(&key, &other_audience),
            Some(SHOP),
            StatusCode::UNAUTHORIZED,
            "/problems/embed-token-wrong-audience",
        ),
        (
            "unknown key",
            unknown_key,
            Some(SHOP),
            StatusCode::UNAUTHORIZED,
            "/problems/embed-token-unknown-key",
        ),
        (
            "wrong origin",
            token.to_owned(),
            Some("https://evil.example"),
            StatusCode::FORBIDDEN,
            "/problems/embed-origin-not-allowed",
        ),
        (
            "no origin",
            token.to_owned(),
            None,
            StatusCode::FORBIDDEN,
            "/problems/embed-origin-missing",
        ),
        (
            "garbage",
            "not-a-token".into(),
            Some(SHOP),
            StatusCode::UNAUTHORIZED,
            "/problems/embed-token-malformed",
        ),
    ];
    for (name, bad, origin, status, kind) in cases {
        let (s, h, v) = stack.data(&bad, origin).await;
        assert_eq!((s, problem_type(&v)), (status, kind), "{name}: {v}");
        assert_eq!(h["content-type"], "application/problem+json", "{name}");
        assert!(
            h.get("access-control-allow-origin").is_none(),
            "{name}: no CORS grant"
        );
        assert!(
            bad.len() < 20 || !v.to_string().contains(&bad),
            "{name}: the token is not echoed"
        );
    }

    // The page: framed from an allowed origin (its Referer), with frame-ancestors for them.
    let page = stack.api_url(&format!("/embed/v1/dashboards/overview?token={token}"));
    let res = stack
        .http
        .get(&page)
        .header("referer", format!("{SHOP}/products/1"))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains(&format!("frame-ancestors {SHOP} http://127.0.0.1:9")),
        "{csp}"
    );
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains(r#"data-label="x" data-value="1""#),
        "the chart shows the tenant's post"
    );
    for (referer, dest, kind) in [
        (
            Some("https://evil.example/"),
            Some("iframe"),
            "/problems/embed-origin-not-allowed",
        ),
        (None, Some("iframe"), "/problems/embed-origin-missing"),
        (
            Some("https://shop.example/"),
            Some("document"),
            "/problems/embed-origin-missing",
        ),
    ] {
        let mut req = stack.http.get(&page);
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        if let Some(d) = dest {
            req = req.header("sec-fetch-dest", d);
        }
        let (s, h, v) = stack.call(req).await;
        assert_eq!(
            (s, problem_type(&v)),
            (StatusCode::FORBIDDEN, kind),
            "{referer:?} {dest:?}: {v}"
        );
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }
    let (s, _, v) = stack
        .call(
            stack
                .http
                .get(stack.api_url("/embed/v1/dashboards/overview"))
                .header("referer", SHOP),
        )
        .await;
    assert_eq!(
        (s, problem_type(&v)),
        (StatusCode::UNAUTHORIZED, "/problems/embed-token-missing"),
        "{v}"
    );

    // The issue is audited.
    let (s, _, audit) = stack
        .call(
            stack
                .http
                .get(stack.api_url("/v1/audit?action=embed_token.issued"))
                .bearer_auth(&t.key),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{audit}");
    assert_eq!(
        items[0]["new"]["origins"],
        json!([SHOP, "http://127.0.0.1:9"])
    );
    assert!(
        !audit.to_string().contains(token),
        "the token is never stored"
    );
}

#[tokio::test]
async fn an_admin_key_gets_ten_embed_tokens_a_minute_then_429_with_retry_after() {
    let stack = Stack::running();
    let t = stack.tenant();
    let body = json!({"dashboard": "overview", "origins": [SHOP]});
    // Start early in a window so all eleven calls fall in it.
    let second = time::OffsetDateTime::now_utc().second();
    if second > 40 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - second))).await;
    }
    let mut remaining = Vec::new();
    for _ in 0..10 {
        let (s, h, v) = stack.issue(&t.key, body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let rl = h["ratelimit"].to_str().unwrap().to_owned();
        remaining.push(
            rl.split(';')
                .find_map(|p| p.strip_prefix("r="))
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    let (s, h, v) = stack.issue(&t.key, body.clone()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert_eq!(h["ratelimit-policy"], "\"embed-tokens\";q=10;w=60");
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"embed-tokens\";r=0;t=")
    );
    // Another admin key of the same tenant has its own budget.
    let (s, _, other) = stack
        .call(
            stack
                .http
                .post(stack.api_url("/v1/api-keys"))
                .bearer_auth(&t.key)
                .json(&json!({"role": "admin", "name": "second"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = stack.issue(other["key"].as_str().unwrap(), body).await;
    assert_eq!(s, StatusCode::CREATED);
}

mod browser;

#[tokio::test]
async fn each_embed_token_has_a_read_budget_and_a_suspended_tenants_dashboards_close() {
    let stack = Stack::running();
    let t = stack.tenant();
    let body = json!({"dashboard": "overview", "origins": [SHOP]});
    let token = |v: &Value| v["token"].as_str().unwrap().to_owned();
    let (s, _, first) = stack.issue(&t.key, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, _, second) = stack.issue(&t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{second}");
    let (first, second) = (token(&first), token(&second));
    // Start early in a window so every read falls in it.
    let at = time::OffsetDateTime::now_utc().second();
    if at > 30 {
        tokio::time::sleep(Duration::from_secs(u64::from(61 - at))).await;
    }
    for n in 0..60 {
        let (s, h, v) = stack.data(&first, Some(SHOP)).await;
        assert_eq!(s, StatusCode::OK, "read {n}: {v}");
        assert_eq!(h["ratelimit-policy"], "\"embed-read\";q=60;w=60");
    }
    let (s, h, v) = stack.data(&first, Some(SHOP)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    assert!(h.contains_key("retry-after"));
    assert!(
        h["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"embed-read\";r=0;t=")
    );
    // Another token of the same tenant has its own budget.
    assert_eq!(stack.data(&second, Some(SHOP)).await.0, StatusCode::OK);

    // Suspended: every token of the tenant is refused, page and data alike, until resumed.
    let path = |what: &str| format!("/v1/tenants/{}/{what}", t.id);
    let (s, _, v) = stack
        .operator(
            Method::POST,
            &path("suspend"),
            Some(json!({"reason": "abuse"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, v) = stack.data(&second, Some(SHOP)).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(problem_type(&v), "/problems/tenant-suspended");
    let page = stack
        .http
        .get(stack.api_url(&format!("/embed/v1/dashboards/overview?token={second}")))
        .header("origin", SHOP)
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    let (s, _, v) = stack.operator(Method::POST, &path("resume"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(stack.data(&second, Some(SHOP)).await.0, StatusCode::OK);
}
