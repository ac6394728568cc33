//! Outbound webhook endpoints over HTTP: registered, rotated and deleted.

use super::*;

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
        let (s, h, v) = api.post("/v1/webhook-endpoints", &t.key, body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_problem(&h, &v, s);
        assert_eq!(v["errors"][0]["field"], field, "{v}");
    }
    let (_, _, v) = api.get("/v1/webhook-endpoints", &t.key).await;
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
        .get(&format!("/v1/webhook-endpoints/{id}"), &t.key)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "a read never returns the secret: {got}"
    );
    assert!(!got.to_string().contains(&secret));
    let (s, h, v) = api
        .get(&format!("/v1/webhook-endpoints/{id}"), &other.key)
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
        .get(&format!("/v1/webhook-endpoints/{id}/attempts"), &t.key)
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
        .get(&format!("/v1/webhook-endpoints/{id}"), &t.key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, _, audit) = api.get("/v1/audit", &t.key).await;
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

/// Endpoint URLs often carry the receiver's own credential: only admins see them.
#[tokio::test]
async fn only_admins_see_endpoints_and_their_attempts() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, _, created) = api
        .post(
            "/v1/webhook-endpoints",
            &t.key,
            json!({"url": "https://hooks.example.com/in?token=receiver-secret", "event_types": ["post.published"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    for role in ["viewer", "editor", "approver"] {
        let (_, _, key) = api
            .post("/v1/api-keys", &t.key, json!({"name": role, "role": role}))
            .await;
        let key = key["key"].as_str().unwrap();
        for path in [
            "/v1/webhook-endpoints".to_owned(),
            format!("/v1/webhook-endpoints/{id}"),
            format!("/v1/webhook-endpoints/{id}/attempts"),
        ] {
            let (s, _, v) = api.get(&path, key).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{role} {path}: {v}");
            assert!(!v.to_string().contains("receiver-secret"));
        }
    }
    let (s, _, _) = api.get("/v1/webhook-endpoints", &t.key).await;
    assert_eq!(s, StatusCode::OK);
}
