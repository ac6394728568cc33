//! Who gets in and what they see: health and OpenAPI, operator routes, keys, accounts and
//! their tokens, malformed bodies.

use super::*;

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
