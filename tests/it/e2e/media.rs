//! Media end to end: uploaded through a presigned URL, sent to every platform before the post
//! that refers to it, a bad set refused whole, and lost answers never leaving a second post.

use super::*;

impl Stack {
    /// `POST /v1/media`, then the bytes to the presigned URL it answered, as a client would.
    pub(super) async fn upload_media(
        &self,
        t: &Tenant,
        declared: &str,
        name: &str,
        bytes: &[u8],
    ) -> String {
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/media",
                t,
                Some(&unique("m-")),
                Some(json!({"content_type": declared, "file_name": name, "size": bytes.len()})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        self.put_upload(&v["upload"], bytes.to_vec()).await;
        v["id"].as_str().unwrap().to_owned()
    }

    /// Sends `body` to a presigned upload (`{method, url, headers}`) as a client would.
    pub(super) async fn put_upload(&self, upload: &Value, body: Vec<u8>) {
        let mut put = self.http.request(
            upload["method"].as_str().unwrap().parse().unwrap(),
            upload["url"].as_str().unwrap(),
        );
        for (k, val) in upload["headers"].as_object().unwrap() {
            put = put.header(k, val.as_str().unwrap());
        }
        let res = put.body(body).send().await.unwrap();
        assert!(res.status().is_success(), "upload: {}", res.status());
    }

    pub(super) async fn fake_media(&self, platform: &str, account: &str) -> Vec<Value> {
        self.fake_listing("media", platform, account).await
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test]
async fn media_goes_to_every_platform_before_the_post_that_refers_to_it() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let (page, org, user) = (unique("page"), unique("org"), unique("user"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let x = stack.connect_mapped(&t, "x", &user).await;
    let photo = samples::png(1200, 630, 120_000);
    let media = stack
        .upload_media(&t, "image/png", "launch.png", &photo)
        .await;
    let (s, _, seen) = stack.get(&format!("/v1/media/{media}"), &t).await;
    assert_eq!(s, StatusCode::OK, "{seen}");
    assert_eq!(
        (&seen["status"], &seen["detected_type"], &seen["size"]),
        (&json!("uploaded"), &json!("image/png"), &json!(120_000))
    );
    assert_eq!(seen["dimensions"], json!({"width": 1200, "height": 630}));

    let at = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "Launch, with a picture", "scheduled_at": at, "media": [media],
                "targets": [{"account_id": fb}, {"account_id": li}, {"account_id": x}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let id = post["id"].as_str().unwrap();
    let published = stack
        .wait_for(PUBLISH_TIMEOUT, "the post with media to go out", || async {
            let p = stack.read_post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    for (platform, account) in [("facebook", &page), ("linkedin", &org), ("x", &user)] {
        let uploads = stack.fake_media(platform, account).await;
        let [upload] = uploads.as_slice() else {
            panic!("{platform}: one upload expected: {uploads:?}")
        };
        assert_eq!(
            upload["sha256"],
            sha256_hex(&photo),
            "{platform}: the very bytes"
        );
        assert_eq!(upload["bytes"], 120_000, "{platform}");
        let posts = stack.fake_posts(platform, account).await;
        let [on_platform] = posts.as_slice() else {
            panic!("{platform}: one post expected: {posts:?}")
        };
        assert_eq!(on_platform["media"], json!([upload["id"]]), "{platform}");
        assert!(
            upload["seq"].as_i64() < on_platform["seq"].as_i64(),
            "{platform}: the upload came first"
        );
        let variant = published["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["platform"] == platform)
            .unwrap();
        assert_eq!(variant["platform_post_id"], on_platform["id"], "{platform}");
    }
}

#[tokio::test]
async fn a_bad_media_set_gets_one_422_listing_every_violation_and_creates_nothing() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let (page, org) = (unique("page"), unique("org"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let li = stack.connect(&t, "linkedin", &org, "li-token").await;
    let small = stack
        .upload_media(&t, "image/png", "small.png", &samples::png(300, 200, 5_000))
        .await;
    // Named and declared a PNG; its bytes are a PDF.
    let pdf_as_png = stack
        .upload_media(&t, "image/png", "photo.png", &samples::pdf(8_000))
        .await;
    let oversize = stack
        .upload_media(
            &t,
            "image/jpeg",
            "big.jpg",
            &samples::jpeg(1200, 630, 4 * 1024 * 1024 + 1),
        )
        .await;
    let (s, _, never) = stack
        .api(
            Method::POST,
            "/v1/media",
            &t,
            None,
            Some(json!({"content_type": "image/gif", "file_name": "later.gif", "size": 100})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let never = never["id"].as_str().unwrap().to_owned();
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "bad media", "media": [small, pdf_as_png, oversize, never, "med_unknown"],
                "targets": [{"account_id": fb}, {"account_id": li}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(h["content-type"], "application/problem+json");
    let got: Vec<(String, String, String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("-").to_owned();
            (
                text("field"),
                text("media_id"),
                text("platform"),
                text("rule"),
            )
        })
        .collect();
    let row = |f: &str, m: &str, p: &str, r: &str| (f.into(), m.into(), p.into(), r.into());
    assert_eq!(
        got,
        vec![
            row("media[0]", &small, "facebook", "too_small"),
            row("media[1]", &pdf_as_png, "-", "type_mismatch"),
            row("media[1]", &pdf_as_png, "facebook", "type_not_accepted"),
            row("media[2]", &oversize, "facebook", "too_large"),
            row("media[3]", &never, "-", "not_uploaded"),
            row("media[4]", "med_unknown", "-", "unknown_media"),
            row("media[0]", &small, "linkedin", "too_small"),
            row("media[1]", &pdf_as_png, "linkedin", "not_alone"),
        ],
        "{v}"
    );
    let too_large = &v["errors"][3];
    assert_eq!(
        (&too_large["limit"], &too_large["actual"]),
        (&json!(4 * 1024 * 1024), &json!(4 * 1024 * 1024 + 1))
    );
    assert_eq!(
        v["errors"][0]["limit"],
        json!({"width": 600, "height": 315})
    );
    assert_eq!(
        v["errors"][0]["actual"],
        json!({"width": 300, "height": 200})
    );
    let (_, _, list) = stack.get("/v1/posts", &t).await;
    assert_eq!(list["items"], json!([]), "nothing created");
    assert!(stack.fake_media("facebook", &page).await.is_empty());
    assert!(stack.fake_posts("linkedin", &org).await.is_empty());
}

#[tokio::test]
async fn lost_answers_around_media_never_leave_a_second_post() {
    use herald_domain::media::samples;
    let stack = Stack::running();
    let t = stack.tenant();
    let (page, user) = (unique("page"), unique("user"));
    let fb = stack.connect(&t, "facebook", &page, "fb-token").await;
    let x = stack.connect_mapped(&t, "x", &user).await;
    let photo = samples::jpeg(1200, 630, 20_000);
    let media = stack.upload_media(&t, "image/jpeg", "p.jpg", &photo).await;
    // Facebook creates the post and the answer is lost; X stores the upload and its answer is
    // lost.
    stack
        .fault(json!({"platform": "facebook", "account": page, "ambiguous": true, "count": 1}))
        .await;
    stack
        .fault(json!({"platform": "x", "account": user, "endpoints": "upload", "ambiguous": true, "count": 1}))
        .await;
    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(
                json!({"text": "said once, with a picture", "media": [media],
                "targets": [{"account_id": fb}, {"account_id": x}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let id = post["id"].as_str().unwrap();
    stack
        .wait_for(PUBLISH_TIMEOUT, "both variants to settle", || async {
            (stack.read_post(&t, id).await["status"] == "published").then_some(())
        })
        .await;
    let fb_posts = stack.fake_posts("facebook", &page).await;
    assert_eq!(fb_posts.len(), 1, "looked up and adopted: {fb_posts:?}");
    assert_eq!(
        stack.fake_media("facebook", &page).await.len(),
        1,
        "not uploaded again"
    );
    let x_posts = stack.fake_posts("x", &user).await;
    let x_media = stack.fake_media("x", &user).await;
    assert_eq!(x_posts.len(), 1, "{x_posts:?}");
    assert_eq!(x_media.len(), 2, "the lost upload was simply sent again");
    assert_eq!(x_posts[0]["media"], json!([x_media[1]["id"]]));
}

#[tokio::test]
async fn the_media_quota_refuses_with_a_422_naming_what_is_exceeded() {
    use herald_domain::media::{DEFAULT_QUOTA_BYTES, MediaType, largest_accepted};
    let stack = Stack::running();
    let (t, other) = (stack.tenant(), stack.tenant());
    let create = |t: &Tenant, size: u64| {
        let (stack, key) = (&stack, t.key.clone());
        async move {
            stack
                .api(
                    Method::POST,
                    "/v1/media",
                    key.as_str(),
                    Some(&unique("q-")),
                    Some(json!({"content_type": "video/mp4", "file_name": "v.mp4", "size": size})),
                )
                .await
        }
    };
    // Nothing is uploaded: the declared size is what the upload URL accepts, and what counts.
    let largest = largest_accepted(MediaType::Mp4).unwrap();
    for _ in 0..DEFAULT_QUOTA_BYTES / largest {
        let (s, _, v) = create(&t, largest).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let room = DEFAULT_QUOTA_BYTES % largest;
    let (s, headers, v) = create(&t, room + 1).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(v["errors"][0]["rule"], "quota_bytes", "{v}");
    assert_eq!(v["errors"][0]["field"], "size");
    assert_eq!(v["errors"][0]["limit"], json!(DEFAULT_QUOTA_BYTES));
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("quota"),
        "{v}"
    );
    if room > 0 {
        let (s, _, v) = create(&t, room).await;
        assert_eq!(s, StatusCode::CREATED, "what is left still fits: {v}");
    }
    // Another tenant's quota is untouched by this one's.
    let (s, _, v) = create(&other, largest).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
