//! `POST /v1/posts/preview`: what each target would receive and every problem `POST /v1/posts`
//! would answer, creating nothing and taking no Idempotency-Key.

use super::*;

#[tokio::test]
async fn a_preview_shows_each_target_as_its_platform_counts_and_creates_nothing() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "px").await;
    let li = api.connect(&t, "linkedin", "pl").await;
    let url = format!("https://example.com/{}", "long-path/".repeat(20));
    let body = json!({"text": format!("Read this {url}"), "targets": [
        {"account_id": x}, {"account_id": li, "text": "Our longer LinkedIn text"}]});
    // A key sent with a preview is not taken: the same key still creates the post later.
    let (s, _, v) = api
        .call(
            "POST",
            "/v1/posts/preview",
            Some(&t.key),
            Some("same-key"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["errors"], json!([]));
    let x_target = &v["targets"][0];
    assert_eq!(x_target["platform"], "x");
    assert_eq!(x_target["length"], 10 + 23, "a URL counts 23 on X: {v}");
    assert_eq!(x_target["limit"], 280);
    assert_eq!(v["targets"][1]["text"], "Our longer LinkedIn text");
    assert_eq!(v["targets"][1]["limit"], 3_000);
    assert!(
        api.store.all_posts().is_empty(),
        "a preview creates nothing"
    );
    let (s, _, created) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("same-key"),
            Some(body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
}

#[tokio::test]
async fn a_preview_lists_the_problems_create_would_answer() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let x = api.connect(&t, "x", "qx").await;
    let fb = api.connect(&t, "facebook", "qf").await;
    let body = json!({"text": "z".repeat(281), "targets": [{"account_id": x}, {"account_id": fb}],
                      "thread": ["a part"]});
    let (s, _, preview) = api.post("/v1/posts/preview", &t.key, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    assert_eq!(preview["valid"], false);
    assert_eq!(preview["targets"][0]["follow_ups"], json!(["a part"]));
    assert_eq!(preview["targets"][1]["follow_ups"], json!([]));
    let (s, _, refused) = api
        .call("POST", "/v1/posts", Some(&t.key), Some("k"), Some(body))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        preview["errors"], refused["errors"],
        "the same problems, entry for entry"
    );
    let fields: Vec<&str> = preview["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["text", "thread"]);
    assert!(api.store.all_posts().is_empty());
}

#[tokio::test]
async fn a_viewer_or_another_tenant_learns_nothing_from_a_preview() {
    let api = Api::new();
    let a = api.tenant(false).await;
    let b = api.tenant(false).await;
    let x = api.connect(&a, "x", "vx").await;
    let body = json!({"text": "hi", "targets": [{"account_id": x}]});
    let (s, _, v) = api.post("/v1/posts/preview", &b.key, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["targets"],
        json!([]),
        "A's account is not B's to see: {v}"
    );
    assert_eq!(v["errors"][0]["field"], "targets[0].account_id");
    let (s, _, viewer) = api
        .post(
            "/v1/api-keys",
            &a.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, h, v) = api
        .post("/v1/posts/preview", viewer["key"].as_str().unwrap(), body)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_problem(&h, &v, s);
}
