//! Drafts through the API: created with `"status": "draft"`, listed by status, scheduled once.

use super::*;

#[tokio::test]
async fn a_draft_is_kept_listed_and_scheduled_once() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let b = api.tenant(false).await;
    let x = api.connect(&t, "x", "dx").await;
    let body = json!({"text": "not yet", "status": "draft", "scheduled_at": "2020-01-01T00:00:00Z",
                      "targets": [{"account_id": x}]});
    let (s, _, v) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("d1"), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "draft");
    let id = v["id"].as_str().unwrap();
    let (_, _, drafts) = api.get("/v1/posts?status=draft", &t.key).await;
    assert_eq!(drafts["items"][0]["id"], id);

    let path = format!("/v1/posts/{id}/schedule");
    let (s, _, _) = api.act(&path, &b.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's draft");
    let (s, _, viewer) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _, _) = api.act(&path, viewer["key"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, h, v) = api
        .post(
            &path,
            &t.key,
            json!({"scheduled_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let (s, _, v) = api.act(&path, &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "scheduled");
    let (s, h, v) = api.act(&path, &t.key).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_problem(&h, &v, s);

    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("d2"),
            Some(json!({"text": "x", "status": "published", "targets": [{"account_id": x}]})),
        )
        .await;
    assert!(s.is_client_error(), "{v}");
}
