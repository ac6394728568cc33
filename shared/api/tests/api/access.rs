//! Who gets in and what they see: health and OpenAPI, operator routes, keys, accounts and
//! their tokens, malformed bodies.

use super::*;

#[tokio::test]
async fn health_and_openapi_need_no_key() {
    let api = Api::new();
    let (s, h, v) = api.call("GET", "/v1/health", None, None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/health+json");
    assert_eq!(
        v,
        json!({"status": "pass", "serviceId": "herald"}),
        "liveness only, no details"
    );
    assert_eq!(api.store.calls.total(), 0, "liveness asks no dependency");
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

/// The checks of one name in a health answer, by component id.
fn checks<'a>(v: &'a Value, name: &str) -> std::collections::BTreeMap<&'a str, &'a Value> {
    v["checks"][name]
        .as_array()
        .unwrap_or_else(|| panic!("no {name} checks in {v}"))
        .iter()
        .map(|c| (c["componentId"].as_str().unwrap(), c))
        .collect()
}

#[tokio::test]
async fn health_details_are_for_admins_and_show_only_their_own_accounts() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    api.connect(&a, "x", "a1").await;
    api.connect(&b, "x", "b1").await;
    api.connect(&b, "linkedin", "b2").await;
    let (s, _, v) = api
        .post(
            "/v1/api-keys",
            &a.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let viewer = v["key"].as_str().unwrap().to_owned();

    let (s, h, v) = api.get("/v1/health", &viewer).await;
    assert_eq!(
        (s, &v),
        (
            StatusCode::OK,
            &json!({"status": "pass", "serviceId": "herald"})
        )
    );
    assert_eq!(h["content-type"], "application/health+json");

    let (s, h, v) = api.get("/v1/health", "hrld_nobody_issued_this").await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a wrong key is told so, not shown `pass`"
    );
    assert_problem(&h, &v, s);

    // Nothing ran yet: every scheduled function's heartbeat warns.
    let (s, h, v) = api.get("/v1/health", &a.key).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("warn")),
        "{v}"
    );
    assert_eq!(h["content-type"], "application/health+json");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(v["version"], "1");
    assert!(
        v["releaseId"]
            .as_str()
            .unwrap()
            .starts_with(env!("CARGO_PKG_VERSION")),
        "{v}"
    );
    let beats = checks(&v, "heartbeat:age");
    for function in ["dispatcher", "poller", "analytics", "reconciler"] {
        assert_eq!(beats[function]["status"], "warn", "{function}: {v}");
        assert!(
            beats[function].get("output").is_none(),
            "a tenant sees no shared details: {v}"
        );
    }
    let accounts = checks(&v, "accounts:needsReauth");
    assert_eq!(
        accounts.keys().copied().collect::<Vec<_>>(),
        vec![a.id.as_str()],
        "{v}"
    );
    assert_eq!(accounts[a.id.as_str()]["observedValue"], 0);
    assert_eq!(
        checks(&v, "accounts:openCircuits")[a.id.as_str()]["status"],
        "pass"
    );
    assert!(
        !v.to_string().contains(&b.id),
        "tenant b's id is nowhere in a's answer: {v}"
    );
    assert!(v["checks"].get("platform:appBlock").is_some(), "{v}");

    // Fresh heartbeats pass; a stopped one fails the whole answer with 503.
    let now = SystemClock.now();
    for function in ["dispatcher", "poller", "analytics", "reconciler"] {
        api.store.beat(function, now, "{}").await.unwrap();
    }
    let (s, _, v) = api.get("/v1/health", &a.key).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("pass")),
        "{v}"
    );
    api.store
        .beat("dispatcher", now - time::Duration::minutes(20), "{}")
        .await
        .unwrap();
    let (s, h, v) = api.get("/v1/health", &b.key).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("fail")),
        "{v}"
    );
    assert_eq!(h["content-type"], "application/health+json");
    assert_eq!(checks(&v, "heartbeat:age")["dispatcher"]["status"], "fail");
    assert_eq!(
        checks(&v, "accounts:needsReauth")[b.id.as_str()]["observedValue"],
        0
    );
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
        .post(
            "/v1/accounts",
            &t.key,
            json!({"platform": "x", "external_id": "42", "access_token": "secret-token-123"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v.to_string().contains("secret-token"), "{v}");
    let (s, _, again) = api
        .post(
            "/v1/accounts",
            &t.key,
            json!({"platform": "x", "external_id": "42", "access_token": "secret-token-456"}),
        )
        .await;
    assert_eq!(
        (s, &again["id"]),
        (StatusCode::OK, &v["id"]),
        "reconnecting refreshes the same account"
    );
    let (_, _, list) = api.get("/v1/accounts", &t.key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("secret-token"));
}

#[tokio::test]
async fn bad_account_input_lists_every_problem_and_writes_nothing() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, h, v) = api
        .post(
            "/v1/accounts",
            &t.key,
            json!({"platform": "myspace", "external_id": "a b", "access_token": ""}),
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
    let (_, _, list) = api.get("/v1/accounts", &t.key).await;
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
async fn disconnecting_an_account_removes_it_once_and_is_audited() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let other = api.tenant(false).await;
    let account = api.connect(&t, "facebook", "page-9").await;
    let path = format!("/v1/accounts/{account}");
    let (s, h, v) = api.delete(&path, &other.key).await;
    assert_problem(&h, &v, StatusCode::NOT_FOUND);
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another tenant's account is not found"
    );

    let (s, _, v) = api.delete(&path, &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["id"], account.as_str());
    assert!(!v.to_string().contains("secret-token"), "{v}");
    let (_, _, list) = api.get("/v1/accounts", &t.key).await;
    assert_eq!(list["items"], json!([]));
    let (s, h, v) = api.delete(&path, &t.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, StatusCode::NOT_FOUND);

    let (_, _, log) = api
        .get(&format!("/v1/audit?entity=account:{account}"), &t.key)
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
        .post("/v1/accounts", &t.key, json!({"platform": "x", "external_id": "42", "access_token": "a", "refresh_token": " ", "expires_in": 5}))
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
    let (_, _, list) = api.get("/v1/accounts", &t.key).await;
    assert!(list["items"].as_array().unwrap().is_empty());

    let (s, _, v) = api
        .post("/v1/accounts", &t.key, json!({"platform": "x", "external_id": "42", "access_token": "secret-a", "refresh_token": "secret-r", "expires_in": 7200}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(!v.to_string().contains("secret-"), "{v}");
    assert!(v["token_expires_at"].is_string(), "{v}");
}

/// Every `/v1` answer, success or refusal, is uncacheable, unsniffable and unframeable.
#[tokio::test]
async fn every_v1_answer_carries_the_security_headers() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let answers = [
        api.get("/v1/tenant", &t.key).await,
        api.get("/v1/tenant", "hk_wrong").await,
        api.post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "x", "role": "admin"}),
        )
        .await,
        api.get("/v1/no-such-route", &t.key).await,
        api.call("GET", "/v1/health", None, None, None).await,
    ];
    for (status, h, _) in answers {
        assert_eq!(h["cache-control"], "no-store", "{status}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{status}");
        assert_eq!(h["x-frame-options"], "DENY", "{status}");
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .starts_with("max-age="),
            "{status}"
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{status}"
        );
    }
}

/// CORS for `/v1` only when origins are configured, and only for those: a preflight from an
/// allowed origin is answered without a key, another origin gets no grant.
#[tokio::test]
async fn cors_grants_only_the_configured_origins() {
    let plain = Api::new();
    let t = plain.tenant(false).await;
    let ask = |app: Router, method: &str, origin: &str, key: Option<String>| {
        let mut req = Request::builder()
            .method(method)
            .uri("/v1/posts")
            .header("origin", origin)
            .header("access-control-request-method", "POST");
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        async move { app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap() }
    };
    let res = ask(
        plain.app.clone(),
        "GET",
        "https://app.example.com",
        Some(t.key.clone()),
    )
    .await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "no CORS by default"
    );

    let mut m = AppState::in_memory();
    m.state.cors_origins = vec![axum::http::HeaderValue::from_static(
        "https://app.example.com",
    )];
    let store = m.store.clone();
    let app = router(m.state);
    let (_, _, secret) = create_tenant(store.as_ref(), &SystemClock, "c", false)
        .await
        .unwrap();
    let key = secret.expose_secret().to_owned();
    let pre = ask(app.clone(), "OPTIONS", "https://app.example.com", None).await;
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        pre.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    let get = ask(
        app.clone(),
        "GET",
        "https://app.example.com",
        Some(key.clone()),
    )
    .await;
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = ask(app, "GET", "https://evil.example.com", Some(key)).await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
