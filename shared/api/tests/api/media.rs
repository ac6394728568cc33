//! Media over HTTP: created with an upload URL, bad requests, bad media on a post.

use super::*;

impl Api {
    /// `POST /v1/media`, then the client's upload (the bytes go to the bucket, not the API).
    async fn upload(&self, t: &Tenant, declared: &str, name: &str, content: Vec<u8>) -> String {
        let (s, _, v) = self
            .post(
                "/v1/media",
                &t.key,
                json!({"content_type": declared, "file_name": name, "size": content.len()}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let key = v["upload"]["url"]
            .as_str()
            .unwrap()
            .strip_prefix("memory://media/")
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        self.media.put(&key, content);
        v["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn media_is_created_with_an_upload_url_and_shows_what_arrived() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let body = json!({"content_type": "image/png", "file_name": "launch.png", "size": 2048});
    let (s, h, created) = api
        .call(
            "POST",
            "/v1/media",
            Some(&t.key),
            Some("m-1"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(h["location"], format!("/v1/media/{id}"));
    assert_eq!(created["status"], "pending_upload");
    assert_eq!(created["upload"]["method"], "PUT");
    assert_eq!(created["upload"]["headers"]["content-type"], "image/png");
    assert_eq!(created["upload"]["headers"]["content-length"], "2048");
    assert!(created["upload"]["expires_at"].is_string());
    // A retry with the same key is the same media and URL, not a second one.
    let (s, h, again) = api
        .call("POST", "/v1/media", Some(&t.key), Some("m-1"), Some(body))
        .await;
    assert_eq!(
        (s, &h["idempotent-replayed"]),
        (StatusCode::CREATED, &"true".parse().unwrap())
    );
    assert_eq!(again, created);

    let (s, _, v) = api.get(&format!("/v1/media/{id}"), &t.key).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("pending_upload")),
        "{v}"
    );
    assert!(v.get("upload").is_none(), "the URL is shown once: {v}");
    let key = format!("media/{}/{id}", t.id);
    api.media
        .put(&key, herald_domain::media::samples::png(1200, 630, 2048));
    let (_, _, v) = api.get(&format!("/v1/media/{id}"), &t.key).await;
    assert_eq!(v["status"], "uploaded", "{v}");
    assert_eq!(v["detected_type"], "image/png");
    assert_eq!(v["size"], 2048);
    assert_eq!(v["dimensions"], json!({"width": 1200, "height": 630}));

    // Another tenant cannot see it.
    let other = api.tenant(false).await;
    let (s, h, v) = api.get(&format!("/v1/media/{id}"), &other.key).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_problem(&h, &v, s);
    // Creating media is audited, without the file name.
    let (_, _, audit) = api
        .get(&format!("/v1/audit?entity=media:{id}"), &t.key)
        .await;
    assert_eq!(audit["items"][0]["action"], "media.created", "{audit}");
    assert!(!audit.to_string().contains("launch.png"), "{audit}");
}

#[tokio::test]
async fn bad_media_requests_list_every_problem() {
    let api = Api::new();
    let t = api.tenant(false).await;
    let (s, h, v) = api
        .post(
            "/v1/media",
            &t.key,
            json!({"content_type": "text/html", "file_name": "", "size": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_problem(&h, &v, s);
    let fields: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["content_type", "size", "file_name"], "{v}");
    let (_, _, v) = api
        .post(
            "/v1/api-keys",
            &t.key,
            json!({"name": "v", "role": "viewer"}),
        )
        .await;
    let viewer = v["key"].as_str().unwrap();
    let (s, _, _) = api
        .post(
            "/v1/media",
            viewer,
            json!({"content_type": "image/png", "file_name": "a.png", "size": 10}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_post_with_bad_media_gets_one_422_naming_media_platform_rule_and_limits() {
    use herald_domain::media::samples;
    let api = Api::new();
    let t = api.tenant(false).await;
    let fb = api.connect(&t, "facebook", "page-1").await;
    let li = api.connect(&t, "linkedin", "42").await;
    let x = api.connect(&t, "x", "user-1").await;
    let small = api
        .upload(&t, "image/png", "small.png", samples::png(300, 200, 1000))
        .await;
    let gif_named_png = api
        .upload(&t, "image/png", "cat.png", samples::gif(800, 600, 500))
        .await;
    let big = api
        .upload(
            &t,
            "image/jpeg",
            "big.jpg",
            samples::jpeg(1200, 630, 4 * 1024 * 1024 + 1),
        )
        .await;
    let (s, h, v) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("p-bad"),
            Some(json!({
                "text": "launch",
                "media": [small, gif_named_png, big, "med_nope"],
                "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x, "media": [small]}],
            })),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_problem(&h, &v, s);
    let errors = v["errors"].as_array().unwrap();
    let has = |field: &str, media: &str, platform: Option<&str>, rule: &str| {
        errors.iter().any(|e| {
            e["field"] == field
                && e["media_id"] == media
                && e.get("platform").and_then(Value::as_str) == platform
                && e["rule"] == rule
        })
    };
    assert!(
        has("media[0]", &small, Some("facebook"), "too_small"),
        "{v}"
    );
    assert!(
        has("media[0]", &small, Some("linkedin"), "too_small"),
        "{v}"
    );
    assert!(
        has("media[1]", &gif_named_png, None, "type_mismatch"),
        "{v}"
    );
    assert!(has("media[2]", &big, Some("facebook"), "too_large"), "{v}");
    assert!(
        !has("media[2]", &big, Some("linkedin"), "too_large"),
        "LinkedIn takes 5 MB: {v}"
    );
    assert!(has("media[3]", "med_nope", None, "unknown_media"), "{v}");
    let too_large = errors
        .iter()
        .find(|e| e["media_id"] == big.as_str() && e["platform"] == "facebook")
        .unwrap();
    assert_eq!(too_large["limit"], 4 * 1024 * 1024, "{too_large}");
    assert_eq!(too_large["actual"], 4 * 1024 * 1024 + 1, "{too_large}");
    let mismatch = errors
        .iter()
        .find(|e| e["rule"] == "type_mismatch")
        .unwrap();
    assert_eq!(
        (&mismatch["limit"], &mismatch["actual"]),
        (&json!("image/png"), &json!("image/gif"))
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e["field"].as_str().unwrap().starts_with("targets[2]"))
            .count(),
        0,
        "X takes the small PNG: {v}"
    );
    let (_, _, list) = api.get("/v1/posts", &t.key).await;
    assert_eq!(list["items"], json!([]), "nothing created");

    // The same post with media every platform takes.
    let good = api
        .upload(&t, "image/jpeg", "good.jpg", samples::jpeg(1200, 630, 9000))
        .await;
    let (s, _, post) = api
        .call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some("p-good"),
            Some(json!({"text": "launch", "media": [good], "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    assert_eq!(post["media"], json!([good]));
}
