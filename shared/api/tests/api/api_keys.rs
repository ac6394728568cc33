//! A tenant's API keys over the router: listed without secrets, revoked, rotated, expiring,
//! last use recorded once an hour, a suspended tenant refused; and what a weaker key or
//! another tenant cannot do to them.

use super::*;
use herald_domain::ids::TenantId;

async fn issue(api: &Api, t: &Tenant, role: &str, body: Value) -> Value {
    let mut body = body;
    body["role"] = json!(role);
    if body.get("name").is_none() {
        body["name"] = json!(role);
    }
    let (s, _, v) = api.post("/v1/api-keys", &t.key, body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

#[tokio::test]
async fn keys_are_listed_without_secrets_and_revoked_at_once() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let viewer = issue(&api, &t, "viewer", json!({})).await;
    let secret = viewer["key"].as_str().unwrap();
    let (s, _, _) = api.get("/v1/posts", secret).await;
    assert_eq!(s, StatusCode::OK);

    let (s, _, list) = api.get("/v1/api-keys", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "the bootstrap admin and the viewer: {list}");
    assert_eq!(items[0]["id"], viewer["id"], "newest first");
    assert_eq!(items[0]["status"], "active");
    let hint = items[0]["hint"].as_str().unwrap();
    assert!(hint.starts_with("hrld_") && hint.contains('…'), "{hint}");
    assert!(secret.ends_with(&hint[hint.len() - 4..]));
    assert!(!list.to_string().contains(secret), "a secret in the list");
    assert!(
        items[0]["last_used_at"].is_string(),
        "its use was recorded: {list}"
    );

    // A viewer may neither list nor revoke.
    let (s, _, _) = api.get("/v1/api-keys", secret).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let admin_id = items[1]["id"].as_str().unwrap();
    let (s, _, _) = api
        .call(
            "DELETE",
            &format!("/v1/api-keys/{admin_id}"),
            Some(secret),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, _, revoked) = api
        .call(
            "DELETE",
            &format!("/v1/api-keys/{}", viewer["id"].as_str().unwrap()),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["status"], "revoked");
    let (s, h, v) = api.get("/v1/posts", secret).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_problem(&h, &v, s);
    assert!(v["detail"].as_str().unwrap().contains("revoked"), "{v}");
    // Revoking again keeps the first time; an unknown id is a 404.
    let (s, _, again) = api
        .call(
            "DELETE",
            &format!("/v1/api-keys/{}", viewer["id"].as_str().unwrap()),
            Some(&t.key),
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, &again["revoked_at"]),
        (StatusCode::OK, &revoked["revoked_at"])
    );
    let (s, _, _) = api
        .call("DELETE", "/v1/api-keys/key_nope", Some(&t.key), None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A revoked key has no successor.
    let (s, _, v) = api
        .act(
            &format!("/v1/api-keys/{}/rotate", viewer["id"].as_str().unwrap()),
            &t.key,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
}

#[tokio::test]
async fn another_tenant_can_neither_see_nor_touch_a_tenants_keys() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let a_key = issue(&api, &a, "editor", json!({})).await;
    let id = a_key["id"].as_str().unwrap();
    let (_, _, b_list) = api.get("/v1/api-keys", &b.key).await;
    assert!(!b_list.to_string().contains(id), "{b_list}");
    let (s, _, _) = api
        .call(
            "DELETE",
            &format!("/v1/api-keys/{id}"),
            Some(&b.key),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.act(&format!("/v1/api-keys/{id}/rotate"), &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = api.get("/v1/posts", a_key["key"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "a's key untouched");
}

#[tokio::test]
async fn a_rotation_overlaps_the_old_key_and_an_expired_key_is_refused() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let editor = issue(&api, &t, "editor", json!({"name": "ci"})).await;
    let old_secret = editor["key"].as_str().unwrap();
    let id = editor["id"].as_str().unwrap();
    let (s, _, rotated) = api
        .post(
            &format!("/v1/api-keys/{id}/rotate"),
            &t.key,
            json!({"overlap_seconds": 3600}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rotated}");
    assert_eq!(rotated["key"]["name"], "ci");
    assert_eq!(rotated["key"]["role"], "editor");
    assert_eq!(
        rotated["previous"]["status"], "active",
        "within the overlap"
    );
    assert!(rotated["previous"]["expires_at"].is_string());
    let new_secret = rotated["key"]["key"].as_str().unwrap();
    for secret in [old_secret, new_secret] {
        let (s, _, _) = api.get("/v1/posts", secret).await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(rotated["previous"]["rotated_to"], rotated["key"]["id"]);
    // A key is rotated once: a second rotation (a retry without the Idempotency-Key, or a
    // second client) names the successor instead of minting another live key.
    let (s, _, twice) = api
        .post(&format!("/v1/api-keys/{id}/rotate"), &t.key, json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{twice}");
    assert!(
        twice["detail"]
            .as_str()
            .unwrap()
            .contains(rotated["key"]["id"].as_str().unwrap()),
        "{twice}"
    );
    // No overlap: the old key is refused at once, as expired.
    let (s, _, again) = api
        .post(
            &format!(
                "/v1/api-keys/{}/rotate",
                rotated["key"]["id"].as_str().unwrap()
            ),
            &t.key,
            json!({"overlap_seconds": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    let (s, _, v) = api.get("/v1/posts", new_secret).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");
    // An expired key cannot be rotated; a bad overlap or expiry is a 422.
    let (s, _, _) = api
        .post(
            &format!(
                "/v1/api-keys/{}/rotate",
                rotated["key"]["id"].as_str().unwrap()
            ),
            &t.key,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    for body in [
        json!({"overlap_seconds": -1}),
        json!({"overlap_seconds": 604_801}),
    ] {
        let (s, _, _) = api
            .post(&format!("/v1/api-keys/{id}/rotate"), &t.key, body)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for at in ["2020-01-01T00:00:00Z", "2100-01-01T00:00:00Z"] {
        let (s, _, _) = api
            .post(
                "/v1/api-keys",
                &t.key,
                json!({"name": "x", "role": "viewer", "expires_at": at}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{at}");
    }
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiring = issue(&api, &t, "viewer", json!({"expires_at": soon})).await;
    assert!(expiring["expires_at"].is_string(), "{expiring}");
}

#[tokio::test]
async fn a_suspended_tenants_keys_are_refused_naming_the_suspension() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let other = api.tenant(false).await;
    let tenant = TenantId(t.id.clone());
    herald_domain::tenants::set_suspension(
        api.store.as_ref(),
        &SystemClock,
        &tenant,
        Some("unpaid invoice"),
    )
    .await
    .unwrap();
    let (s, h, v) = api.get("/v1/posts", &t.key).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_problem(&h, &v, s);
    assert!(
        v["type"].as_str().unwrap().ends_with("tenant-suspended"),
        "{v}"
    );
    assert!(
        v["detail"].as_str().unwrap().contains("unpaid invoice"),
        "{v}"
    );
    let (s, _, _) = api.get("/v1/posts", &other.key).await;
    assert_eq!(s, StatusCode::OK, "another tenant is not affected");
    herald_domain::tenants::set_suspension(api.store.as_ref(), &SystemClock, &tenant, None)
        .await
        .unwrap();
    let (s, _, _) = api.get("/v1/posts", &t.key).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn last_use_is_written_at_most_once_an_hour() {
    let api = Api::new();
    let t = api.tenant(false).await;
    for _ in 0..5 {
        api.get("/v1/posts", &t.key).await;
    }
    assert_eq!(
        api.store.calls.snapshot().get("touch_api_key").copied(),
        Some(1),
        "{:?}",
        api.store.calls.snapshot()
    );
}
