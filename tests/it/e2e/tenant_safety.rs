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
