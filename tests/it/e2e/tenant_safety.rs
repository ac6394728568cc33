//! A hostile tenant, or a weaker key of the same tenant, against the API over HTTP.

use super::*;

/// An admin creates a key with an Idempotency-Key; a viewer of the same tenant replaying the
/// same key and body gets a 422, not the admin key (and a fresh request from it a 403). The
/// admin's own retry still replays.
#[tokio::test]
async fn a_weaker_key_cannot_replay_another_keys_request() {
    let stack = Stack::running();
    let tenant = stack.tenant();
    let (status, viewer) = stack
        .send(
            Method::POST,
            "/v1/api-keys",
            &tenant,
            Some(json!({"name": "watcher", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{viewer}");
    let viewer = viewer["key"].as_str().unwrap().to_owned();

    let key = unique("k-");
    let body = json!({"name": "ops", "role": "admin"});
    let (status, _, created) = stack
        .api(
            Method::POST,
            "/v1/api-keys",
            &tenant,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let admin_secret = created["key"].as_str().unwrap().to_owned();

    let (status, headers, replay) = stack
        .api(
            Method::POST,
            "/v1/api-keys",
            &viewer,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{replay}");
    assert!(is_problem(&headers));
    assert!(headers.get("idempotent-replayed").is_none());
    assert!(!replay.to_string().contains(&admin_secret));

    let (status, _, fresh) = stack
        .api(
            Method::POST,
            "/v1/api-keys",
            &viewer,
            Some(&unique("k-")),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{fresh}");

    // Another tenant's admin with the same key is another key entirely.
    let other = stack.tenant();
    let (status, _, theirs) = stack
        .api(
            Method::POST,
            "/v1/api-keys",
            &other,
            Some(&key),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    assert_ne!(theirs["key"], created["key"]);

    let (status, headers, again) = stack
        .api(
            Method::POST,
            "/v1/api-keys",
            &tenant,
            Some(&key),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again["key"], created["key"]);
}

/// Over HTTP: a revoked key is refused by the very next request; the operator suspends a
/// tenant (403 naming the reason, for every key of it, not for another tenant) and resumes
/// it; the CLI lists the keys without a secret.
#[tokio::test]
async fn revoked_keys_and_suspended_tenants_are_refused_at_once() {
    let stack = Stack::running();
    let tenant = stack.tenant();
    let other = stack.tenant();
    let (status, editor) = stack
        .send(
            Method::POST,
            "/v1/api-keys",
            &tenant,
            Some(json!({"name": "ci", "role": "editor"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{editor}");
    let secret = editor["key"].as_str().unwrap().to_owned();
    let id = editor["id"].as_str().unwrap().to_owned();
    let (status, headers, _) = stack.get("/v1/posts", &secret).await;
    assert_eq!(status, StatusCode::OK);
    // Every limited answer says its budget (the stack's budgets are raised for the suites).
    assert!(
        headers["ratelimit-policy"]
            .to_str()
            .unwrap()
            .starts_with("\"read\";q=")
    );
    assert!(
        headers["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with("\"read\";r=")
    );
    let (status, revoked) = stack
        .send(Method::DELETE, &format!("/v1/api-keys/{id}"), &tenant, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    let (status, headers, body) = stack.get("/v1/posts", &secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(is_problem(&headers));

    let listed = stack.cli(&["api-key", "list", "--tenant", &tenant.id]);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|k| k["key_id"] == id && k["status"] == "revoked")
    );
    assert!(!format!("{listed:?}").contains(&secret));

    let (status, _, suspended) = stack
        .operator(
            Method::POST,
            &format!("/v1/tenants/{}/suspend", tenant.id),
            Some(json!({"reason": "unpaid invoice"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{suspended}");
    assert_eq!(suspended["suspension_reason"], "unpaid invoice");
    let (status, _, body) = stack.get("/v1/posts", &tenant).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("unpaid invoice"));
    assert_eq!(stack.get("/v1/posts", &other).await.0, StatusCode::OK);
    // A tenant's own key cannot lift it: the operator routes want the operator token.
    let (status, _, _) = stack
        .api(
            Method::POST,
            &format!("/v1/tenants/{}/resume", tenant.id),
            &tenant,
            Some(&unique("k-")),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, resumed) = stack
        .operator(
            Method::POST,
            &format!("/v1/tenants/{}/resume", tenant.id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(stack.get("/v1/posts", &tenant).await.0, StatusCode::OK);
    let (status, _, _) = stack
        .operator(
            Method::POST,
            "/v1/tenants/ten_nope/suspend",
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
