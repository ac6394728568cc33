//! The router in-process (`oneshot`) over the in-memory ports.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use herald_api::{AppState, router};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::idempotency::{Idempotency, IdempotencyKey};
use herald_domain::media::{DEFAULT_UPLOAD_URL_TTL, MediaService};
use herald_domain::memory::{MemoryMedia, MemoryStore};
use herald_domain::ports::HeartbeatStore;
use herald_domain::publishing::posts::PostService;
use herald_domain::tenants::create_tenant;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    app: Router,
    store: Arc<MemoryStore>,
    /// The media bucket: `put` stands in for a client's upload to the presigned URL.
    media: Arc<MemoryMedia>,
    dead_letters: Arc<herald_domain::memory::MemoryDeadLetters>,
    idempotency: Idempotency,
}

struct Tenant {
    id: String,
    key: String,
}

impl Api {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let dead_letters = Arc::new(herald_domain::memory::MemoryDeadLetters::default());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let idempotency =
            Idempotency::new(store.clone(), clock.clone(), time::Duration::seconds(30));
        let media = Arc::new(MemoryMedia::default());
        let ingest = Arc::new(herald_domain::ingest::memory::MemoryIngestStore::default());
        let state = AppState {
            tenants: store.clone(),
            accounts: store.clone(),
            crises: store.clone(),
            heartbeats: store.clone(),
            audit: store.clone(),
            dead_letters: herald_domain::dead_letters::DeadLetterService {
                queues: dead_letters.clone(),
                audit: store.clone(),
                clock: clock.clone(),
            },
            posts: PostService {
                posts: store.clone(),
                accounts: store.clone(),
                tenants: store.clone(),
                media: MediaService {
                    records: store.clone(),
                    objects: media.clone(),
                    clock: clock.clone(),
                    upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
                },
                clock: clock.clone(),
            },
            idempotency: idempotency.clone(),
            clock,
            webhook_endpoints: herald_domain::outbound::EndpointRegistry {
                store: Arc::new(herald_domain::outbound::memory::MemoryEndpoints::default()),
                // Every name resolves to a public address (example.com's), unless a test says otherwise.
                resolver: Arc::new(herald_domain::outbound::memory::FixedResolver(vec![
                    std::net::IpAddr::from([93, 184, 215, 14]),
                ])),
                policy: Default::default(),
                secret_overlap: std::time::Duration::from_secs(24 * 3600),
            },
            operator: None,
            ingest: ingest.clone(),
        };
        Self {
            app: router(state),
            store,
            media,
            dead_letters,
            idempotency,
        }
    }

    async fn tenant(&self, require_approval: bool) -> Tenant {
        let (t, _, secret) =
            create_tenant(self.store.as_ref(), &SystemClock, "t", require_approval)
                .await
                .unwrap();
        Tenant {
            id: t.id.0,
            key: secret.expose_secret().to_owned(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(i) = idem {
            req = req.header("idempotency-key", i);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, v)
    }

    async fn connect(&self, t: &Tenant, platform: &str, external: &str) -> String {
        let (s, _, v) = self
            .call("POST", "/v1/accounts", Some(&t.key), None, Some(json!({"platform": platform, "external_id": external, "access_token": "secret-token-123"})))
            .await;
        assert!(s.is_success(), "{s} {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn create_post(
        &self,
        t: &Tenant,
        key: &str,
        account: &str,
        text: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some(key),
            Some(json!({"text": text, "targets": [{"account_id": account}]})),
        )
        .await
    }
}

fn assert_problem(headers: &axum::http::HeaderMap, body: &Value, status: StatusCode) {
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn health_and_openapi_need_no_key() {
    let api = Api::new();
    let (s, _, v) = api.call("GET", "/v1/health", None, None, None).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("degraded")),
        "the reconciler never ran: {v}"
    );
    api.store
        .beat(
            herald_domain::publishing::reconcile::HEARTBEAT,
            SystemClock.now() - time::Duration::minutes(6),
            "{}",
        )
        .await
        .unwrap();
    let (_, _, v) = api.call("GET", "/v1/health", None, None, None).await;
    assert_eq!(v["status"], "degraded", "a stale heartbeat: {v}");
    assert_eq!(v["reconciler"]["stale"], true);
    api.store
        .beat(
            herald_domain::publishing::reconcile::HEARTBEAT,
            SystemClock.now(),
            "{}",
        )
        .await
        .unwrap();
    let (_, _, v) = api.call("GET", "/v1/health", None, None, None).await;
    assert_eq!(v["status"], "ok", "{v}");
    let (s, _, v) = api.call("GET", "/v1/openapi.json", None, None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    for path in [
        "/v1/posts",
        "/v1/posts/{id}",
        "/v1/posts/{id}/approve",
        "/v1/accounts",
        "/v1/tenant",
        "/v1/api-keys",
        "/v1/media",
        "/v1/media/{id}",
    ] {
        assert!(
            v["paths"][path].is_object(),
            "{path} missing from the document"
        );
    }
}

#[tokio::test]
async fn operator_routes_are_off_without_an_operator_token_and_tenant_keys_do_not_open_them() {
    let api = Api::new();
    let t = api.tenant(false).await;
    for key in [None, Some(t.key.as_str())] {
        let body = Some(serde_json::json!({"name": "x"}));
        let (s, h, v) = api.call("POST", "/v1/tenants", key, None, body).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_problem(&h, &v, s);
    }
}

#[tokio::test]
async fn requests_without_a_valid_key_are_refused() {
    let api = Api::new();
    for key in [None, Some("hrld_wrong"), Some("")] {
        let (s, h, v) = api.call("GET", "/v1/posts", key, None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_problem(&h, &v, s);
        assert_eq!(h["www-authenticate"], "Bearer");
    }
    let (s, h, v) = api.call("GET", "/v1/nope", None, None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);
}

#[tokio::test]
async fn accounts_never_show_their_token() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/accounts",
            Some(&t.key),
            None,
            Some(json!({"platform": "x", "external_id": "42", "access_token": "secret-token-123"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v.to_string().contains("secret-token"), "{v}");
    let (s, _, again) = api
        .call(
            "POST",
            "/v1/accounts",
            Some(&t.key),
            None,
            Some(json!({"platform": "x", "external_id": "42", "access_token": "secret-token-456"})),
        )
        .await;
    assert_eq!(
        (s, &again["id"]),
        (StatusCode::OK, &v["id"]),
        "reconnecting refreshes the same account"
    );
    let (_, _, list) = api
        .call("GET", "/v1/accounts", Some(&t.key), None, None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("secret-token"));
}

#[tokio::test]
async fn bad_account_input_lists_every_problem_and_writes_nothing() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/accounts",
            Some(&t.key),
            None,
            Some(json!({"platform": "myspace", "external_id": "a b", "access_token": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["platform", "external_id", "access_token"]);
    let (_, _, list) = api
        .call("GET", "/v1/accounts", Some(&t.key), None, None)
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn malformed_bodies_are_problems() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let cases: [(&str, Option<&str>, StatusCode); 3] = [
        (
            "{not json",
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"text":"x","targets":[],"colour":"red"}"#,
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"text":"x","targets":[]}"#,
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (i, (body, ct, want)) in cases.into_iter().enumerate() {
        let mut req = Request::builder()
            .method("POST")
            .uri("/v1/posts")
            .header("authorization", format!("Bearer {}", t.key))
            .header("idempotency-key", format!("k-{i}"));
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let res = api
            .app
            .clone()
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), want, "{body}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("k-time"),
            Some(json!({"text": "x", "scheduled_at": "tomorrow", "targets": []})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(api.store.all_posts().is_empty());
}

#[tokio::test]
async fn idempotency_key_semantics() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "1").await;

    // Required on POST /v1/posts.
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            None,
            Some(json!({"text": "a", "targets": [{"account_id": acc}]})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_problem(&h, &v, s);
    // Malformed.
    for bad in ["\"unterminated", "has space", &"k".repeat(256)] {
        let (s, _, _) = api.create_post(&t, bad, &acc, "a").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}");
    }
    // First use, then a replay with the same body.
    let (s1, h1, first) = api.create_post(&t, "key-1", &acc, "hello").await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert!(h1.get("idempotent-replayed").is_none());
    let (s2, h2, second) = api.create_post(&t, "\"key-1\"", &acc, "hello").await;
    assert_eq!(
        (s2, &second),
        (StatusCode::CREATED, &first),
        "the sf-string form is the same key"
    );
    assert_eq!(h2["idempotent-replayed"], "true");
    assert_eq!(h2["location"], h1["location"]);
    assert_eq!(
        api.store.all_posts().len(),
        1,
        "one post, however often it is retried"
    );
    // Same key, another payload.
    let (s, h, v) = api.create_post(&t, "key-1", &acc, "different").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    // Still in flight.
    let key = IdempotencyKey::parse("key-2").unwrap();
    let body = json!({"text": "a", "targets": [{"account_id": acc}]}).to_string();
    let fp = herald_domain::idempotency::fingerprint("POST", "/v1/posts", body.as_bytes());
    let tenant_id = herald_domain::ids::TenantId(t.id.clone());
    assert!(matches!(
        api.idempotency.begin(&tenant_id, &key, fp).await.unwrap(),
        herald_domain::idempotency::Begin::Proceed(_)
    ));
    let (s, h, v) = api.create_post(&t, "key-2", &acc, "a").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_problem(&h, &v, s);
    // Keys are per tenant: another tenant's "key-1" is a different key.
    let other = api.tenant(false).await;
    let other_acc = api.connect(&other, "x", "1").await;
    let (s, h, _) = api.create_post(&other, "key-1", &other_acc, "hello").await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(h.get("idempotent-replayed").is_none());
    // A 4xx is stored and replayed too: the request was wrong, retrying it will not fix it.
    let (s, _, _) = api.create_post(&t, "key-3", "acc_missing", "x").await;
    let (s2, h2, _) = api.create_post(&t, "key-3", "acc_missing", "x").await;
    assert_eq!(
        (s, s2),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY
        )
    );
    assert_eq!(h2["idempotent-replayed"], "true");
}

#[tokio::test]
async fn tenants_never_see_each_others_posts() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let acc = api.connect(&a, "x", "1").await;
    let (_, _, post) = api.create_post(&a, "k", &acc, "hello").await;
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (s, h, v) = api.call("GET", &path, Some(&b.key), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);
    let (s, _, _) = api
        .call(
            "PATCH",
            &path,
            Some(&b.key),
            None,
            Some(json!({"text": "hijack"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.call("DELETE", &path, Some(&b.key), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // B cannot target A's account either.
    let (s, _, v) = api.create_post(&b, "k", &acc, "hello").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (_, _, list) = api.call("GET", "/v1/posts", Some(&b.key), None, None).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (_, _, mine) = api.call("GET", &path, Some(&a.key), None, None).await;
    assert_eq!(mine["text"], "hello", "nothing changed");
}

#[tokio::test]
async fn roles_limit_what_a_key_may_do() {
    let api = Api::new();
    let t = api.tenant(true).await;
    let acc = api.connect(&t, "linkedin", "99").await;
    let mut keys = std::collections::HashMap::new();
    for role in ["viewer", "approver", "editor"] {
        let (s, _, v) = api
            .call(
                "POST",
                "/v1/api-keys",
                Some(&t.key),
                None,
                Some(json!({"name": role, "role": role})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        keys.insert(role, v["key"].as_str().unwrap().to_owned());
    }
    let (s, _, _) = api
        .call(
            "POST",
            "/v1/api-keys",
            Some(&keys["editor"]),
            None,
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let viewer = Tenant {
        id: t.id.clone(),
        key: keys["viewer"].clone(),
    };
    let (s, h, v) = api.create_post(&viewer, "k", &acc, "x").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_problem(&h, &v, s);
    let editor = Tenant {
        id: t.id.clone(),
        key: keys["editor"].clone(),
    };
    let (s, _, post) = api.create_post(&editor, "k", &acc, "x").await;
    assert_eq!(
        (s, post["status"].as_str()),
        (StatusCode::CREATED, Some("pending_approval"))
    );
    let approve = format!("/v1/posts/{}/approve", post["id"].as_str().unwrap());
    let (s, _, _) = api
        .call("POST", &approve, Some(&keys["editor"]), None, None)
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "editors cannot approve their own posts"
    );
    let (s, _, v) = api
        .call(
            "POST",
            &approve,
            Some(&keys["approver"]),
            None,
            Some(json!({"note": "lgtm"})),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str(), v["review"]["note"].as_str()),
        (StatusCode::OK, Some("scheduled"), Some("lgtm"))
    );
    let (s, _, _) = api
        .call("POST", &approve, Some(&keys["approver"]), None, None)
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "already approved");
}

#[tokio::test]
async fn posts_list_with_status_filter_and_cursor() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "facebook", "page1").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, _, p) = api
            .create_post(&t, &format!("k{i}"), &acc, &format!("post {i}"))
            .await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    api.call(
        "DELETE",
        &format!("/v1/posts/{}", ids[1]),
        Some(&t.key),
        None,
        None,
    )
    .await;
    let (_, _, page1) = api
        .call("GET", "/v1/posts?limit=2", Some(&t.key), None, None)
        .await;
    let got: Vec<&str> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()], "newest first");
    let cursor = page1["next_cursor"].as_str().unwrap();
    let (_, _, page2) = api
        .call(
            "GET",
            &format!("/v1/posts?limit=2&cursor={cursor}"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    let got: Vec<&str> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let (_, _, cancelled) = api
        .call(
            "GET",
            "/v1/posts?status=cancelled",
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(cancelled["items"].as_array().unwrap().len(), 1);
    assert_eq!(cancelled["items"][0]["id"], ids[1]);
    assert!(cancelled["next_cursor"].is_null());
    for bad in [
        "/v1/posts?status=lost",
        "/v1/posts?limit=0",
        "/v1/posts?limit=abc",
        "/v1/posts?cursor=%%%",
        "/v1/posts?bogus=1",
    ] {
        let (s, h, v) = api.call("GET", bad, Some(&t.key), None, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert_problem(&h, &v, s);
    }
}

#[tokio::test]
async fn edit_and_cancel_through_the_api() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let acc = api.connect(&t, "x", "1").await;
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _, post) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("k"),
            Some(json!({"text": "a", "scheduled_at": later, "targets": [{"account_id": acc}]})),
        )
        .await;
    assert_eq!(
        (s, post["status"].as_str()),
        (StatusCode::CREATED, Some("scheduled")),
        "{post}"
    );
    let (s, _, _) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("k2"), Some(json!({"text": "a", "scheduled_at": "2199-01-01T00:00:00Z", "targets": [{"account_id": acc}]})))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "more than a year ahead"
    );
    let path = format!("/v1/posts/{}", post["id"].as_str().unwrap());
    let (s, _, edited) = api
        .call(
            "PATCH",
            &path,
            Some(&t.key),
            None,
            Some(json!({"text": "b"})),
        )
        .await;
    assert_eq!((s, edited["text"].as_str()), (StatusCode::OK, Some("b")));
    assert!(edited["version"].as_u64() > post["version"].as_u64());
    let (s, h, v) = api
        .call(
            "PATCH",
            &path,
            Some(&t.key),
            None,
            Some(json!({"text": "x".repeat(281)})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let (_, _, unchanged) = api.call("GET", &path, Some(&t.key), None, None).await;
    assert_eq!(unchanged["text"], "b", "a refused edit changes nothing");
    let (s, _, cancelled) = api
        .call("DELETE", &path, Some(&t.key), Some("del-1"), None)
        .await;
    assert_eq!(
        (s, cancelled["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, h, _) = api
        .call("DELETE", &path, Some(&t.key), Some("del-1"), None)
        .await;
    assert_eq!(
        (s, h["idempotent-replayed"].to_str().unwrap()),
        (StatusCode::OK, "true"),
        "a retried cancel replays"
    );
    let (s, _, _) = api.call("DELETE", &path, Some(&t.key), None, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "already cancelled");
    let (s, _, _) = api
        .call(
            "PATCH",
            &path,
            Some(&t.key),
            None,
            Some(json!({"text": "c"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _, _) = api
        .call("GET", "/v1/posts/not-an-id!", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn crisis_mode_is_admin_only_validated_and_lifted_once() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, v) = api
        .call("GET", "/v1/crisis", Some(&t.key), None, None)
        .await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(false)));

    let (s, h, v) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            None,
            Some(json!({"reason": " ", "platforms": ["x", "myspace", "x"], "expires_at": "2001-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["reason", "platforms[1]", "platforms[2]", "expires_at"],
        "{v}"
    );
    let (s, _, v) = api
        .call("GET", "/v1/crisis", Some(&t.key), None, None)
        .await;
    assert_eq!(
        (s, &v["active"]),
        (StatusCode::OK, &json!(false)),
        "nothing changed"
    );

    let (s, _, v) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            Some("pause-1"),
            Some(json!({"reason": "brand safety review", "platforms": ["linkedin", "x"]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["platforms"], json!(["x", "linkedin"]));
    assert_eq!(v["all_platforms"], json!(false));
    let expires = time::OffsetDateTime::parse(
        v["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let day = expires - SystemClock.now();
    assert!(
        day > time::Duration::hours(23) && day <= time::Duration::hours(24),
        "24 hours by default: {day}"
    );
    let (_, _, v) = api
        .call("GET", "/v1/crisis", Some(&t.key), None, None)
        .await;
    assert_eq!(v["reason"], "brand safety review");

    // Only admins see or touch it.
    let (_, _, editor) = api
        .call(
            "POST",
            "/v1/api-keys",
            Some(&t.key),
            None,
            Some(json!({"name": "ed", "role": "editor"})),
        )
        .await;
    let editor = editor["key"].as_str().unwrap().to_owned();
    for method in ["GET", "DELETE"] {
        let (s, _, _) = api
            .call(method, "/v1/crisis", Some(&editor), None, None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method}");
    }

    let (s, _, v) = api
        .call("DELETE", "/v1/crisis", Some(&t.key), None, None)
        .await;
    assert_eq!((s, &v["active"]), (StatusCode::OK, &json!(false)), "{v}");
    assert_eq!(v["reason"], "brand safety review", "says what was lifted");
    let (s, h, _) = api
        .call("DELETE", "/v1/crisis", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(h["content-type"], "application/problem+json");
}

#[tokio::test]
async fn api_actions_are_audited_with_who_and_from_where() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, _) = api
        .call(
            "PUT",
            "/v1/crisis",
            Some(&t.key),
            None,
            Some(json!({"reason": "audit me"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let req = Request::builder()
        .method("DELETE")
        .uri("/v1/crisis")
        .header("authorization", format!("Bearer {}", t.key))
        .header("x-forwarded-for", "203.0.113.66, 198.51.100.4")
        .header("user-agent", "ops-console/2")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        api.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::OK
    );

    let (s, _, v) = api
        .call("GET", "/v1/audit?entity=crisis", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(items[0]["action"], "crisis.lifted");
    assert_eq!(
        items[0]["ip"], "198.51.100.4",
        "the address API Gateway saw, not one the client claimed"
    );
    assert_eq!(items[0]["user_agent"], "ops-console/2");
    assert_eq!(items[0]["old"]["reason"], "audit me");
    assert_eq!(items[1]["action"], "crisis.started");
    assert!(items[0]["actor"].as_str().unwrap().starts_with("key:key_"));
    let (_, _, v) = api
        .call(
            "GET",
            "/v1/audit?action=crisis.started&limit=1",
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, _, _) = api
        .call("GET", "/v1/audit?limit=0", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _, _) = api
        .call("GET", "/v1/audit?from=yesterday", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let other = api.tenant(false).await;
    let (_, _, v) = api
        .call("GET", "/v1/audit", Some(&other.key), None, None)
        .await;
    assert_eq!(v["items"], json!([]), "another tenant sees none of it");
}

#[tokio::test]
async fn dead_letters_are_tenant_scoped_admin_only_and_audited() {
    use herald_domain::dead_letters::DeadLetter;
    let api = Api::new();
    let (a, b) = (api.tenant(false).await, api.tenant(false).await);
    let letter = |id: &str, tenant: &str, age_secs: i64| {
        DeadLetter::from_body(
            id.into(),
            "publish",
            json!({"tenant_id": tenant, "post_id": "post_1", "account_id": "acc_1", "platform": "x", "correlation_id": "c"}).to_string(),
            Some("X answered 503 (after 5 failed deliveries)".into()),
            5,
            SystemClock.now() - time::Duration::seconds(age_secs),
        )
    };
    *api.dead_letters.dead.lock().unwrap() = vec![
        letter("m1", &a.id, 3600),
        letter("m2", &a.id, 10),
        letter("m3", &b.id, 10),
        DeadLetter::from_body(
            "m4".into(),
            "publish",
            "{garbage".into(),
            None,
            5,
            SystemClock.now(),
        ),
    ];
    let (s, _, v) = api
        .call("GET", "/v1/dead-letters", Some(&a.key), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["m1", "m2"], "only A's, oldest first");
    assert_eq!(v["items"][0]["payload"]["post_id"], "post_1");
    assert_eq!(v["items"][0]["receive_count"], 5);
    let (_, _, v) = api
        .call(
            "GET",
            "/v1/dead-letters?older_than_seconds=600",
            Some(&a.key),
            None,
            None,
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (s, _, _) = api
        .call("GET", "/v1/dead-letters/m3", Some(&a.key), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "B's letter is not A's to see");
    let (s, _, _) = api
        .call("DELETE", "/v1/dead-letters/m3", Some(&a.key), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nor to delete");
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/dead-letters/requeue",
            Some(&a.key),
            None,
            Some(json!({"ids": []})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let (s, _, v) = api
        .call(
            "POST",
            "/v1/dead-letters/m1/requeue",
            Some(&a.key),
            None,
            None,
        )
        .await;
    assert_eq!((s, &v["requeued"]), (StatusCode::OK, &json!(1)), "{v}");
    let (s, _, v) = api
        .call("DELETE", "/v1/dead-letters/m2", Some(&a.key), None, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _, _) = api
        .call(
            "POST",
            "/v1/dead-letters/m1/requeue",
            Some(&a.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "already gone");
    let left: Vec<String> = api
        .dead_letters
        .dead
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(left, ["m3", "m4"]);
    assert_eq!(api.dead_letters.requeued.lock().unwrap()[0].id, "m1");

    let (_, _, log) = api.call("GET", "/v1/audit", Some(&a.key), None, None).await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["dead_letter.deleted", "dead_letter.requeued"]);
}

impl Api {
    /// `POST /v1/media`, then the client's upload (the bytes go to the bucket, not the API).
    async fn upload(&self, t: &Tenant, declared: &str, name: &str, content: Vec<u8>) -> String {
        let (s, _, v) = self
            .call(
                "POST",
                "/v1/media",
                Some(&t.key),
                None,
                Some(json!({"content_type": declared, "file_name": name, "size": content.len()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let key = v["upload"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix("memory://media/")
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        self.media.put(&key, content);
        v["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn media_is_created_with_an_upload_url_and_shows_what_arrived() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let body = json!({"content_type": "image/png", "file_name": "launch.png", "size": 2048});
    let (s, h, created) = api
        .call(
            "POST",
            "/v1/media",
            Some(&t.key),
            Some("m-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(h["location"], format!("/v1/media/{id}"));
    assert_eq!(created["status"], "pending_upload");
    assert_eq!(created["upload"]["method"], "PUT");
    assert_eq!(created["upload"]["headers"]["content-type"], "image/png");
    assert_eq!(created["upload"]["headers"]["content-length"], "2048");
    assert!(created["upload"]["expires_at"].is_string());
    // A retry with the same key is the same media and URL, not a second one.
    let (s, h, again) = api
        .call("POST", "/v1/media", Some(&t.key), Some("m-1"), Some(body))
        .await;
    assert_eq!(
        (s, &h["idempotent-replayed"]),
        (StatusCode::CREATED, &"true".parse().unwrap())
    );
    assert_eq!(again, created);

    let (s, _, v) = api
        .call("GET", &format!("/v1/media/{id}"), Some(&t.key), None, None)
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("pending_upload")),
        "{v}"
    );
    assert!(v.get("upload").is_none(), "the URL is shown once: {v}");
    let key = format!("media/{}/{id}", t.id);
    api.media
        .put(&key, herald_domain::media::samples::png(1200, 630, 2048));
    let (_, _, v) = api
        .call("GET", &format!("/v1/media/{id}"), Some(&t.key), None, None)
        .await;
    assert_eq!(v["status"], "uploaded", "{v}");
    assert_eq!(v["detected_type"], "image/png");
    assert_eq!(v["size"], 2048);
    assert_eq!(v["dimensions"], json!({"width": 1200, "height": 630}));

    // Another tenant cannot see it.
    let other = api.tenant(false).await;
    let (s, h, v) = api
        .call(
            "GET",
            &format!("/v1/media/{id}"),
            Some(&other.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);
    // Creating media is audited, without the file name.
    let (_, _, audit) = api
        .call(
            "GET",
            &format!("/v1/audit?entity=media:{id}"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(audit["items"][0]["action"], "media.created", "{audit}");
    assert!(!audit.to_string().contains("launch.png"), "{audit}");
}

#[tokio::test]
async fn bad_media_requests_list_every_problem() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/media",
            Some(&t.key),
            None,
            Some(json!({"content_type": "text/html", "file_name": "", "size": 0})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let fields: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["content_type", "size", "file_name"], "{v}");
    let (_, _, v) = api
        .call(
            "POST",
            "/v1/api-keys",
            Some(&t.key),
            None,
            Some(json!({"name": "v", "role": "viewer"})),
        )
        .await;
    let viewer = v["key"].as_str().unwrap();
    let (s, _, _) = api
        .call(
            "POST",
            "/v1/media",
            Some(viewer),
            None,
            Some(json!({"content_type": "image/png", "file_name": "a.png", "size": 10})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_post_with_bad_media_gets_one_422_naming_media_platform_rule_and_limits() {
    use herald_domain::media::samples;
    let api = Api::new();
    let t = api.tenant(false).await;
    let fb = api.connect(&t, "facebook", "page-1").await;
    let li = api.connect(&t, "linkedin", "42").await;
    let x = api.connect(&t, "x", "user-1").await;
    let small = api
        .upload(&t, "image/png", "small.png", samples::png(300, 200, 1000))
        .await;
    let gif_named_png = api
        .upload(&t, "image/png", "cat.png", samples::gif(800, 600, 500))
        .await;
    let big = api
        .upload(
            &t,
            "image/jpeg",
            "big.jpg",
            samples::jpeg(1200, 630, 4 * 1024 * 1024 + 1),
        )
        .await;
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("p-bad"),
            Some(json!({
                "text": "launch",
                "media": [small, gif_named_png, big, "med_nope"],
                "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x, "media": [small]}],
            })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let errors = v["errors"].as_array().unwrap();
    let has = |field: &str, media: &str, platform: Option<&str>, rule: &str| {
        errors.iter().any(|e| {
            e["field"] == field
                && e["media_id"] == media
                && e.get("platform").and_then(Value::as_str) == platform
                && e["rule"] == rule
        })
    };
    assert!(
        has("media[0]", &small, Some("facebook"), "too_small"),
        "{v}"
    );
    assert!(
        has("media[0]", &small, Some("linkedin"), "too_small"),
        "{v}"
    );
    assert!(
        has("media[1]", &gif_named_png, None, "type_mismatch"),
        "{v}"
    );
    assert!(has("media[2]", &big, Some("facebook"), "too_large"), "{v}");
    assert!(
        !has("media[2]", &big, Some("linkedin"), "too_large"),
        "LinkedIn takes 5 MB: {v}"
    );
    assert!(has("media[3]", "med_nope", None, "unknown_media"), "{v}");
    let too_large = errors
        .iter()
        .find(|e| e["media_id"] == big.as_str() && e["platform"] == "facebook")
        .unwrap();
    assert_eq!(too_large["limit"], 4 * 1024 * 1024, "{too_large}");
    assert_eq!(too_large["actual"], 4 * 1024 * 1024 + 1, "{too_large}");
    let mismatch = errors
        .iter()
        .find(|e| e["rule"] == "type_mismatch")
        .unwrap();
    assert_eq!(
        (&mismatch["limit"], &mismatch["actual"]),
        (&json!("image/png"), &json!("image/gif"))
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e["field"].as_str().unwrap().starts_with("targets[2]"))
            .count(),
        0,
        "X takes the small PNG: {v}"
    );
    let (_, _, list) = api.call("GET", "/v1/posts", Some(&t.key), None, None).await;
    assert_eq!(list["items"], json!([]), "nothing created");

    // The same post with media every platform takes.
    let good = api
        .upload(&t, "image/jpeg", "good.jpg", samples::jpeg(1200, 630, 9000))
        .await;
    let (s, _, post) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("p-good"),
            Some(json!({"text": "launch", "media": [good], "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    assert_eq!(post["media"], json!([good]));
}

#[tokio::test]
async fn disconnecting_an_account_removes_it_once_and_is_audited() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let other = api.tenant(false).await;
    let account = api.connect(&t, "facebook", "page-9").await;
    let path = format!("/v1/accounts/{account}");
    let (s, h, v) = api
        .call("DELETE", &path, Some(&other.key), None, None)
        .await;
    assert_problem(&h, &v, StatusCode::NOT_FOUND);
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's account is not found"
    );

    let (s, _, v) = api.call("DELETE", &path, Some(&t.key), None, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], account.as_str());
    assert!(!v.to_string().contains("secret-token"), "{v}");
    let (_, _, list) = api
        .call("GET", "/v1/accounts", Some(&t.key), None, None)
        .await;
    assert_eq!(list["items"], json!([]));
    let (s, h, v) = api.call("DELETE", &path, Some(&t.key), None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, StatusCode::NOT_FOUND);

    let (_, _, log) = api
        .call(
            "GET",
            &format!("/v1/audit?entity=account:{account}"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        ["account.disconnected", "account.connected"],
        "{log}"
    );
    assert_eq!(log["items"][0]["old"]["external_id"], "page-9");
}

#[tokio::test]
async fn bad_refresh_token_or_expiry_is_refused_and_the_tokens_are_never_shown() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/accounts",
            Some(&t.key),
            None,
            Some(json!({"platform": "x", "external_id": "42", "access_token": "a", "refresh_token": " ", "expires_in": 5})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["refresh_token", "expires_in"]);
    let (_, _, list) = api
        .call("GET", "/v1/accounts", Some(&t.key), None, None)
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());

    let (s, _, v) = api
        .call(
            "POST",
            "/v1/accounts",
            Some(&t.key),
            None,
            Some(json!({"platform": "x", "external_id": "42", "access_token": "secret-a", "refresh_token": "secret-r", "expires_in": 7200})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v.to_string().contains("secret-"), "{v}");
    assert!(v["token_expires_at"].is_string(), "{v}");
}

#[tokio::test]
async fn webhook_endpoints_register_rotate_and_delete() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let other = api.tenant(false).await;
    // Refused: plain http, a private literal, the metadata address, an unknown event type.
    for (body, field) in [
        (
            json!({"url": "http://hooks.example.com/in", "event_types": ["post.published"]}),
            "url",
        ),
        (
            json!({"url": "https://10.0.0.7/in", "event_types": ["post.published"]}),
            "url",
        ),
        (
            json!({"url": "https://169.254.169.254/latest", "event_types": ["post.published"]}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "event_types": ["post.exploded"]}),
            "event_types[0]",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "event_types": []}),
            "event_types",
        ),
    ] {
        let (s, h, v) = api
            .call(
                "POST",
                "/v1/webhook-endpoints",
                Some(&t.key),
                None,
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_problem(&h, &v, s);
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    let (_, _, v) = api
        .call("GET", "/v1/webhook-endpoints", Some(&t.key), None, None)
        .await;
    assert_eq!(v["items"], json!([]), "a refused endpoint changes nothing");

    let (s, _, created) = api
        .call(
            "POST",
            "/v1/webhook-endpoints",
            Some(&t.key),
            Some("we-1"),
            Some(json!({"url": "https://hooks.example.com/in", "event_types": ["post.published", "post.failed"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(created["status"], "enabled");

    let (s, _, got) = api
        .call(
            "GET",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "a read never returns the secret: {got}"
    );
    assert!(!got.to_string().contains(&secret));
    let (s, h, v) = api
        .call(
            "GET",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&other.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);

    let (s, _, rotated) = api
        .call(
            "POST",
            &format!("/v1/webhook-endpoints/{id}/rotate-secret"),
            Some(&t.key),
            Some("we-rot-1"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    let (s, _, attempts) = api
        .call(
            "GET",
            &format!("/v1/webhook-endpoints/{id}/attempts"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(attempts["items"], json!([]));

    let (s, _, _) = api
        .call(
            "DELETE",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&other.key),
            Some("we-del-x"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant cannot delete it");
    let (s, _, _) = api
        .call(
            "DELETE",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&t.key),
            Some("we-del-1"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = api
        .call(
            "GET",
            &format!("/v1/webhook-endpoints/{id}"),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, _, audit) = api.call("GET", "/v1/audit", Some(&t.key), None, None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in [
        "webhook_endpoint.created",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.deleted",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
    assert!(
        !audit.to_string().contains("whsec_"),
        "no secret in the audit log"
    );
}
