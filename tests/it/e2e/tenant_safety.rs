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

/// Connecting asks the platform who the token is: tenant B cannot connect tenant A's X user,
/// Facebook Page or LinkedIn organisation with a token of its own, a refused token is caught
/// at connect time, and nothing is stored by a refusal.
#[tokio::test]
async fn an_account_is_connected_only_with_a_token_that_may_act_as_it() {
    let stack = Stack::running();
    let (a, b) = (stack.tenant(), stack.tenant());
    let connect = |t: &Tenant, platform: &str, external: &str, token: &str| {
        let body = json!({"platform": platform, "external_id": external, "access_token": token});
        let (stack, key) = (&stack, t.key.clone());
        async move {
            stack
                .send(Method::POST, "/v1/accounts", key.as_str(), Some(body))
                .await
        }
    };
    let register = |platform: &str, token: &str, account: &str| {
        stack.fake(
            "/_admin/tokens",
            json!({"platform": platform, "token": token, "account": account}),
        )
    };
    for platform in ["x", "facebook", "linkedin"] {
        let (victim, own) = (unique("victim"), unique("own"));
        let account = stack.connect_mapped(&a, platform, &victim).await;
        let (s, listed) = stack.send(Method::GET, "/v1/accounts", &a, None).await;
        assert_eq!(s, StatusCode::OK);
        let mine = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == account.as_str())
            .unwrap()
            .clone();
        if platform != "linkedin" {
            // The platform's name for the account, since none was given.
            assert!(
                mine["display_name"].as_str().unwrap().contains(&victim),
                "{mine}"
            );
        }

        // B's token is B's own account's: it may not act as A's.
        let token = unique("b-token-");
        register(platform, &token, &own).await;
        let (s, v) = connect(&b, platform, &victim, &token).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{platform}: {v}");
        assert_eq!(v["errors"][0]["field"], "external_id", "{v}");
        // A token the platform refuses is caught now, not at publish time.
        let (s, v) = connect(&b, platform, &own, "revoked-at-connect").await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{platform}: {v}");
        assert_eq!(v["errors"][0]["field"], "access_token", "{v}");
        // Nothing of B's was stored; A's account is untouched.
        let (_, listed) = stack.send(Method::GET, "/v1/accounts", &b, None).await;
        assert_eq!(listed["items"], json!([]), "{listed}");
        let (_, listed) = stack.send(Method::GET, "/v1/accounts", &a, None).await;
        assert!(
            listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == account.as_str())
        );
        // With its own token B connects its own account.
        let (s, v) = connect(&b, platform, &own, &token).await;
        assert_eq!(s, StatusCode::CREATED, "{platform}: {v}");
        let (s, _) = stack
            .send(
                Method::DELETE,
                &format!("/v1/accounts/{}", v["id"].as_str().unwrap()),
                &b,
                None,
            )
            .await;
        assert!(s.is_success());
    }
}
