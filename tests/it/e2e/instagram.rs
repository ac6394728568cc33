//! Instagram through the whole stack: connected with its token, a carousel whose files
//! Instagram fetches from the media bucket through short-lived links the publisher signs, the
//! container kept on the variant before it is published, a lost publish answer found through
//! it, and a first comment; posts Instagram cannot take are refused whole.

use super::*;

impl Stack {
    /// A post with one media, due now.
    pub(super) async fn schedule_with_media(
        &self,
        t: &Tenant,
        account: &str,
        text: &str,
        media: &str,
    ) -> Value {
        let (s, _, v) = self
            .api(
                Method::POST,
                "/v1/posts",
                t,
                Some(&unique("k-")),
                Some(json!({"text": text, "media": [media],
                            "targets": [{"account_id": account}]})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v
    }
}

/// A professional account's numeric id, new for each test.
pub(crate) fn instagram_id() -> String {
    let n = u64::from_str_radix(&unique("")[..12], 16).unwrap_or(1) % 1_000_000_000_000;
    format!("17841{n:012}")
}

#[tokio::test]
async fn an_instagram_carousel_is_fetched_from_the_bucket_and_published_once_with_its_first_comment()
 {
    use herald_domain::media::samples;
    use sha2::Digest;
    let stack = Stack::running();
    let t = stack.tenant();
    let user = instagram_id();
    let account = stack.connect(&t, "instagram", &user, "ig-token").await;
    let photo = samples::jpeg(1080, 1080, 20_000);
    let video = samples::mp4(60_000);
    let media = [
        stack.upload_media(&t, "image/jpeg", "p.jpg", &photo).await,
        stack.upload_media(&t, "video/mp4", "v.mp4", &video).await,
    ];
    // Instagram publishes the container and the answer is lost: the publisher finds the media
    // through the container it kept, and publishes nothing again.
    stack
        .fault(
            json!({"platform": "instagram", "account": user, "endpoints": "create",
                      "ambiguous": true, "count": 1}),
        )
        .await;
    let (s, _, post) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": "Our launch #new", "media": media,
                        "targets": [{"account_id": account}],
                        "first_comment": "Tickets: https://example.com/t"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{post}");
    let id = post["id"].as_str().unwrap();
    let done = stack
        .wait_for(Duration::from_secs(90), "the Instagram post", || async {
            let p = stack.read_post(&t, id).await;
            (p["status"] == "published").then_some(p)
        })
        .await;
    let faults = stack.fake_get("/_admin/faults").await;
    let lost = faults["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["account"] == user.as_str());
    assert_eq!(
        lost.map(|f| &f["fired"]),
        Some(&json!(1)),
        "the answer was lost: {faults}"
    );
    let on = stack.fake_posts("instagram", &user).await;
    assert_eq!(on.len(), 2, "the post and its comment, once each: {on:?}");
    assert_eq!(on[0]["text"], "Our launch #new");
    assert_eq!(
        (&on[1]["text"], &on[1]["parent"]),
        (&json!("Tickets: https://example.com/t"), &on[0]["id"])
    );
    let variant = &done["variants"][0];
    assert_eq!(variant["platform_post_id"], on[0]["id"]);
    assert_eq!(variant["follow_up_ids"], json!([on[1]["id"]]));
    assert!(
        variant.get("progress").is_none(),
        "the container is Herald's own: {variant}"
    );
    // Instagram fetched exactly the uploaded files, through links to the bucket.
    let made = stack
        .fake_get(&format!("/_admin/instagram/containers?account={user}"))
        .await;
    let made = made["containers"].as_array().unwrap();
    assert_eq!(
        made.len(),
        3,
        "two items and one carousel, none made again: {made:?}"
    );
    let fetched: Vec<&str> = made
        .iter()
        .filter_map(|c| c["fetched"]["sha256"].as_str())
        .collect();
    assert_eq!(
        fetched,
        [
            hex::encode(sha2::Sha256::digest(&photo)),
            hex::encode(sha2::Sha256::digest(&video))
        ]
    );
    for c in made.iter().filter(|c| c["fetched"]["url"].is_string()) {
        assert!(
            c["fetched"]["url"].as_str().unwrap().contains("/media/"),
            "{c}"
        );
        // A signed link reads the tenant's media: the log scan looks for it in Herald's logs.
        let signature = c["fetched"]["signature"].as_str().unwrap_or_default();
        assert!(signature.len() >= 32, "a signed link: {c}");
        crate::support::secrets::remember("media_link", signature);
    }
}

#[tokio::test]
async fn a_post_instagram_cannot_take_is_refused_whole_and_nothing_is_created() {
    let stack = Stack::running();
    let t = stack.tenant();
    let account = stack
        .connect(&t, "instagram", &instagram_id(), "ig-token")
        .await;
    let tags: String = (0..31).map(|i| format!("#t{i} ")).collect();
    let (s, h, v) = stack
        .api(
            Method::POST,
            "/v1/posts",
            &t,
            Some(&unique("k-")),
            Some(json!({"text": tags, "targets": [{"account_id": account}],
                        "thread": ["a reply"]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(is_problem(&h));
    let rules: Vec<(&str, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap(),
                e["rule"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(rules.contains(&("text", "hashtags")), "{rules:?}");
    assert!(rules.contains(&("media", "media_required")), "{rules:?}");
    assert!(rules.iter().any(|(f, _)| *f == "thread"), "{rules:?}");
    let (_, _, list) = stack.get("/v1/posts", &t).await;
    assert_eq!(list["items"], json!([]));
}
