//! Per-platform options and alt text end to end: each target's own platform block and each
//! image's alt text reach the fake platforms as each one takes them; a block for another
//! platform, a preview with nothing to preview and alt text that does not fit are one 422.

use super::*;

#[tokio::test]
async fn options_and_alt_text_reach_each_platform_as_it_takes_them() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let (user, org, page, toot) = (unique("xu"), unique("org"), unique("page"), unique("md"));
    let x = stack.connect_mapped(&t, "x", &user).await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let md = stack.connect_mapped(&t, "mastodon", &toot).await;
    let (bsky, did) = stack.connect_bluesky(&t, "alt").await;
    let photo = samples::png(1200, 630, 60_000);
    let image = stack
        .upload_media(&t, "image/png", "bike.png", &photo)
        .await;
    let other_image = stack
        .upload_media(&t, "image/png", "other.png", &photo)
        .await;

    // Every mistake at once: a LinkedIn block on X, a preview of a text without a link,
    // alt text too long for X, and alt text for media no target carries.
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "No link here", "media": [image],
                "targets": [
                    {"account_id": x, "options": {"linkedin": {"visibility": "public"}}},
                    {"account_id": fb, "media": [], "options": {"facebook": {"link_preview": true}}}
                ],
                "alt_text": {image.clone(): "x".repeat(1001), other_image.clone(): "Nothing"}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(is_problem(&h));
    let fields: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in [
        "targets[0].options.linkedin",
        "targets[1].options.facebook.link_preview",
        &format!("alt_text.{image}"),
        &format!("alt_text.{other_image}"),
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let (s, _, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "Ride with us", "targets": [{"account_id": x, "options": {"x": {"reply_settings": "anyone"}}}]})),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown setting: {v}"
    );
    assert!(
        v["detail"].as_str().unwrap().contains("mentioned_users"),
        "{v}"
    );

    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "Ride with us: https://example.com/ride", "media": [image],
                "alt_text": {image.clone(): "A red bicycle against a white wall"},
                "targets": [
                    {"account_id": x, "options": {"x": {"reply_settings": "following"}}},
                    {"account_id": li, "options": {"linkedin": {"visibility": "logged_in"}}},
                    {"account_id": fb, "media": [], "options": {"facebook": {"link_preview": true}}},
                    {"account_id": md},
                    {"account_id": bsky}
                ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    assert_eq!(
        post["alt_text"][&image],
        "A red bicycle against a white wall"
    );
    let id = post["id"].as_str().unwrap();
    let published = stack
        .wait_for(
            PUBLISH_TIMEOUT,
            "the post with options to go out",
            || async {
                let p = stack.read_post(&t, id).await;
                (p["status"] == "published").then_some(p)
            },
        )
        .await;
    let x_view = published["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["platform"] == "x")
        .unwrap();
    assert_eq!(
        x_view["options"],
        json!({"x": {"reply_settings": "following"}})
    );

    let alt = "A red bicycle against a white wall";
    let [tweet] = stack.fake_posts("x", &user).await.try_into().unwrap();
    assert_eq!(tweet["attributes"]["reply_settings"], "following");
    let [x_media] = stack.fake_media("x", &user).await.try_into().unwrap();
    assert_eq!(x_media["attributes"]["alt_text"], alt);
    let [share] = stack.fake_posts("linkedin", &org).await.try_into().unwrap();
    assert_eq!(share["attributes"]["visibility"], "LOGGED_IN");
    assert_eq!(share["attributes"]["alt_text"], json!([alt]));
    let [link_post] = stack
        .fake_posts("facebook", &page)
        .await
        .try_into()
        .unwrap();
    assert_eq!(link_post["attributes"]["link"], "https://example.com/ride");
    assert!(stack.fake_media("facebook", &page).await.is_empty());
    let [md_media] = stack
        .fake_media("mastodon", &toot)
        .await
        .try_into()
        .unwrap();
    assert_eq!(md_media["attributes"]["description"], alt);
    let [skeet] = stack.fake_posts("bluesky", &did).await.try_into().unwrap();
    let rkey = skeet["id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let record = json_of(
        stack
            .http
            .get(format!(
                "{}/bluesky/xrpc/com.atproto.repo.getRecord",
                stack.url("FAKE_PLATFORMS_URL")
            ))
            .query(&[
                ("repo", did.as_str()),
                ("collection", "app.bsky.feed.post"),
                ("rkey", &rkey),
            ]),
    )
    .await;
    assert_eq!(record["value"]["embed"]["images"][0]["alt"], alt);
}
