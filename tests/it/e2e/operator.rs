//! The operator token: creates tenants over HTTP and keeps working across its rotation.

use super::*;

/// The bootstrap operator token from Secrets Manager creates a tenant over HTTP (idempotently,
/// audited in the new tenant's log); a rotation by the real rotation function changes nothing
/// for a caller: the new token works at once and the old one through the grace period.
#[tokio::test]
async fn the_operator_token_creates_tenants_and_keeps_working_across_its_rotation() {
    let stack = Stack::running();
    let api = stack.url("HERALD_API_URL").to_owned();
    let create = |token: String, body: Value, key: Option<String>| {
        let mut request = stack
            .http
            .post(format!("{api}/v1/tenants"))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { request.send().await.unwrap() }
    };
    let old = stack.secret("herald-AdminTokenSecret").await;
    let name = unique("acme-");
    let key = unique("op-");
    let created = create(old.clone(), json!({"name": name}), Some(key.clone())).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let replayed = create(old.clone(), json!({"name": name}), Some(key)).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(
        replayed["id"], created["id"],
        "a retry creates no second tenant"
    );

    let tenant_key = created["api_key"]["key"].as_str().unwrap().to_owned();
    let (_, _, tenant) = stack.get("/v1/tenant", &tenant_key).await;
    assert_eq!(tenant["name"], name.as_str());
    let (_, _, audit) = stack.get("/v1/audit", &tenant_key).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"tenant.created"), "{audit}");

    // Rotate with the real rotation function, as Secrets Manager would.
    let runtime = stack.url("HERALD_RUNTIME_URL").to_owned();
    let token = uuid::Uuid::new_v4().to_string();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let res = stack
            .http
            .post(format!("{runtime}/2015-03-31/functions/rotator/invocations"))
            .json(&json!({"SecretId": "herald-AdminTokenSecret", "ClientRequestToken": token, "Step": step}))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{step}: {}", res.status());
        assert!(
            res.headers().get("x-amz-function-error").is_none(),
            "{step} failed"
        );
    }
    let new = stack.secret("herald-AdminTokenSecret").await;
    assert_ne!(new, old);
    // A token the cached ring does not know refetches it, at most once per 10 s per process
    // (so forged tokens cannot flood Secrets Manager): let the last fetch age past that.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for token in [new, old] {
        let res = create(token, json!({"name": unique("after-")}), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
    }

    // Refusals: a tenant's key, a wrong token, a bad body.
    for (token, body, status) in [
        (
            tenant_key.clone(),
            json!({"name": "x"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "hrld_wrong".to_owned(),
            json!({"name": "x"}),
            StatusCode::UNAUTHORIZED,
        ),
        (
            stack.secret("herald-AdminTokenSecret").await,
            json!({"name": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let res = create(token, body, None).await;
        assert_eq!(res.status(), status);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
}
