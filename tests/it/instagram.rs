//! The Instagram client against the fake Instagram (infra/fake_platforms/instagram*.py) over
//! HTTP, the media served from a little file server the fake fetches from (as Instagram fetches
//! S3 links): a carousel with a video waits for processing and publishes once, the container is
//! kept before it is published, a lost publish answer is found through it and never repeated,
//! a container kept by a failed attempt is published rather than another made, refusals are
//! classified, and who a token is and a post's engagement are read.

use crate::platforms::{admin, attachment, client, fault};
use herald_domain::analytics::EngagementClient;
use herald_domain::media::{Attachment, MediaType, samples};
use herald_domain::model::{FailureKind, Platform};
use herald_domain::publishing::platform::{
    KeptInMemory, LookupRequest, MediaBody, MediaUpload, PlatformClient, PlatformError,
    PublishRequest, PublishedPost, StepProgress, TokenOwners,
};
use herald_platforms::HttpPlatforms;
use herald_tests::{FakePlatforms, fake_platforms};
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

const TOKEN: &str = "ig-token";
const ACCOUNT: &str = "17841400000000001";

/// Serves `files` at `/<name>` until the test ends; the base URL.
async fn file_server(files: HashMap<String, Vec<u8>>) -> String {
    let files = Arc::new(files);
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = files.clone();
                async move {
                    match files.get(&name) {
                        Some(bytes) => (axum::http::StatusCode::OK, bytes.clone()),
                        None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn set(fake: &FakePlatforms, what: &str, body: Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/{what}", fake.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{body}");
}

async fn containers(fake: &FakePlatforms) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_admin/instagram/containers", fake.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["containers"].as_array().cloned().unwrap()
}

/// One publish with the media as links under `base`.
async fn publish(
    client: &HttpPlatforms,
    text: &str,
    media: &[(Attachment, String)],
    reply_to: Option<&str>,
    progress: &dyn StepProgress,
) -> Result<PublishedPost, PlatformError> {
    publish_as(client, TOKEN, text, media, reply_to, progress).await
}

async fn publish_as(
    client: &HttpPlatforms,
    token: &str,
    text: &str,
    media: &[(Attachment, String)],
    reply_to: Option<&str>,
    progress: &dyn StepProgress,
) -> Result<PublishedPost, PlatformError> {
    let token = SecretString::from(token);
    client
        .publish(PublishRequest {
            platform: Platform::Instagram,
            external_id: ACCOUNT,
            access_token: &token,
            text,
            correlation_id: "c",
            media: media
                .iter()
                .map(|(a, link)| MediaUpload {
                    attachment: a,
                    body: MediaBody::Link(link.clone()),
                })
                .collect(),
            reply_to,
            idempotency_key: "herald-p-a-0",
            due_at: herald_tests::DUE,
            progress,
            uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            options: &Default::default(),
        })
        .await
}

async fn find(
    client: &HttpPlatforms,
    text: &str,
    reply_to: Option<&str>,
    progress: &dyn StepProgress,
) -> Result<Option<PublishedPost>, PlatformError> {
    let token = SecretString::from(TOKEN);
    client
        .find_post(LookupRequest {
            platform: Platform::Instagram,
            external_id: ACCOUNT,
            access_token: &token,
            text,
            since: herald_tests::DUE - time::Duration::days(1),
            reply_to,
            idempotency_key: "herald-p-a-0",
            due_at: herald_tests::DUE,
            progress,
        })
        .await
}

struct World {
    fake: FakePlatforms,
    client: HttpPlatforms,
    photo: (Attachment, String),
    video: (Attachment, String),
}

async fn world() -> World {
    let fake = fake_platforms();
    set(
        &fake,
        "tokens",
        json!({"platform": "instagram", "token": TOKEN, "account": ACCOUNT}),
    )
    .await;
    let jpeg = samples::jpeg(1080, 1080, 5_000);
    let mp4 = samples::mp4(40_000);
    let base = file_server(HashMap::from([
        ("a.jpg".to_owned(), jpeg.clone()),
        ("b.mp4".to_owned(), mp4.clone()),
    ]))
    .await;
    World {
        client: client(&fake),
        photo: (
            attachment("med_p", MediaType::Jpeg, &jpeg),
            format!("{base}/a.jpg?X-Amz-Signature=s"),
        ),
        video: (
            attachment("med_v", MediaType::Mp4, &mp4),
            format!("{base}/b.mp4?X-Amz-Signature=s"),
        ),
        fake,
    }
}

#[tokio::test]
async fn a_carousel_with_a_video_is_fetched_waited_for_and_published_once_then_commented() {
    let w = world().await;
    let progress = KeptInMemory::default();
    let posted = publish(
        &w.client,
        "our launch #new",
        &[w.photo.clone(), w.video.clone()],
        None,
        &progress,
    )
    .await
    .unwrap();
    let [post] = admin(&w.fake, "posts", "instagram")
        .await
        .try_into()
        .unwrap();
    assert_eq!(
        (post["id"].as_str(), post["text"].as_str()),
        (
            Some(posted.platform_post_id.as_str()),
            Some("our launch #new")
        )
    );
    // Two items (the video waited for until processed) and the carousel kept before publishing.
    let made = containers(&w.fake).await;
    assert_eq!(made.len(), 3, "{made:?}");
    let carousel = made.iter().find(|c| c["media_type"] == "CAROUSEL").unwrap();
    let kept: Value = serde_json::from_str(&progress.kept().unwrap()).unwrap();
    assert_eq!(kept["container"], carousel["id"]);
    assert_eq!(
        kept["children"], carousel["children"],
        "the items, kept as they were made"
    );
    assert_eq!(post["media"], carousel["children"]);
    let fetched: Vec<u64> = made
        .iter()
        .filter_map(|c| c["fetched"]["bytes"].as_u64())
        .collect();
    assert_eq!(fetched, [w.photo.0.size, w.video.0.size]);
    // The first comment answers the post, and is found among its comments.
    let comment = publish(
        &w.client,
        "details below",
        &[],
        Some(&posted.platform_post_id),
        &KeptInMemory::default(),
    )
    .await
    .unwrap();
    let found = find(
        &w.client,
        "details below",
        Some(&posted.platform_post_id),
        &KeptInMemory::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        found.map(|f| f.platform_post_id),
        Some(comment.platform_post_id)
    );
    // Engagement: likes and comments.
    set(&w.fake, "metrics", json!({"platform": "instagram", "post_id": posted.platform_post_id, "likes": 9, "comments": 2})).await;
    let token = SecretString::from(TOKEN);
    let e = w
        .client
        .engagement(
            Platform::Instagram,
            ACCOUNT,
            &token,
            &posted.platform_post_id,
        )
        .await
        .unwrap();
    assert_eq!((e.likes, e.comments, e.shares), (Some(9), Some(2), None));
}

#[tokio::test]
async fn a_lost_publish_answer_is_found_through_the_kept_container_and_never_published_again() {
    let w = world().await;
    let progress = KeptInMemory::default();
    fault(
        &w.fake,
        json!({"platform": "instagram", "endpoints": "create", "ambiguous": true, "count": 1}),
    )
    .await;
    let lost = publish(
        &w.client,
        "lost answer",
        std::slice::from_ref(&w.photo),
        None,
        &progress,
    )
    .await
    .unwrap_err();
    assert_eq!(lost.kind(), FailureKind::Ambiguous, "{lost}");
    let [post] = admin(&w.fake, "posts", "instagram")
        .await
        .try_into()
        .unwrap();
    let found = find(&w.client, "lost answer", None, &progress)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(post["id"].as_str(), Some(found.platform_post_id.as_str()));
    // Even a blind retry publishes nothing: the kept container says it was published.
    let again = publish(
        &w.client,
        "lost answer",
        std::slice::from_ref(&w.photo),
        None,
        &progress,
    )
    .await
    .unwrap();
    assert_eq!(again.platform_post_id, found.platform_post_id);
    assert_eq!(admin(&w.fake, "posts", "instagram").await.len(), 1);
    assert_eq!(containers(&w.fake).await.len(), 1);
    // Without a kept container nothing was ever published: the lookup says so.
    assert!(
        find(&w.client, "lost answer", None, &KeptInMemory::default())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_container_kept_by_a_failed_attempt_is_published_not_made_again() {
    let w = world().await;
    let progress = KeptInMemory::default();
    fault(
        &w.fake,
        json!({"platform": "instagram", "endpoints": "create", "status": 503, "count": 1}),
    )
    .await;
    let failed = publish(
        &w.client,
        "second try",
        std::slice::from_ref(&w.video),
        None,
        &progress,
    )
    .await
    .unwrap_err();
    assert_eq!(failed.kind(), FailureKind::Transient, "{failed}");
    assert!(progress.kept().is_some());
    assert!(
        find(&w.client, "second try", None, &progress)
            .await
            .unwrap()
            .is_none()
    );
    publish(
        &w.client,
        "second try",
        std::slice::from_ref(&w.video),
        None,
        &progress,
    )
    .await
    .unwrap();
    let made = containers(&w.fake).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(
        (
            made[0]["media_type"].as_str(),
            made[0]["status_code"].as_str()
        ),
        (Some("REELS"), Some("PUBLISHED"))
    );
    assert_eq!(admin(&w.fake, "posts", "instagram").await.len(), 1);
}

#[tokio::test]
async fn refusals_are_classified_and_a_token_is_asked_whom_it_acts_for() {
    let w = world().await;
    let gone = (w.photo.0.clone(), w.photo.1.replace("a.jpg", "gone.jpg"));
    let refused = publish(
        &w.client,
        "no file",
        &[gone],
        None,
        &KeptInMemory::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), FailureKind::Permanent, "{refused}");
    assert!(
        refused.message().contains("Instagram answered 400"),
        "{refused}"
    );
    fault(&w.fake, json!({"platform": "instagram", "endpoints": "create", "status": 400, "error_code": 4, "count": 1})).await;
    let limited = publish(
        &w.client,
        "busy",
        std::slice::from_ref(&w.photo),
        None,
        &KeptInMemory::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(limited.kind(), FailureKind::RateLimited, "{limited}");
    let revoked = SecretString::from("revoked-ig");
    let auth = w
        .client
        .ownership(Platform::Instagram, &revoked, ACCOUNT)
        .await
        .unwrap_err();
    assert_eq!(auth.kind(), FailureKind::Auth, "{auth}");
    let token = SecretString::from(TOKEN);
    let mine = w
        .client
        .ownership(Platform::Instagram, &token, ACCOUNT)
        .await
        .unwrap();
    assert!(mine.owns);
    let other = w
        .client
        .ownership(Platform::Instagram, &token, "17841400000000999")
        .await
        .unwrap();
    assert!(!other.owns);
    assert_eq!(other.actual_id, ACCOUNT);
}

#[tokio::test]
async fn a_carousel_still_processing_keeps_its_items_and_the_next_attempt_waits_on_them() {
    let w = world().await;
    // A client whose call limit ends before the video is processed.
    let hasty = HttpPlatforms::new(w.fake.endpoints(), std::time::Duration::from_millis(300));
    let progress = KeptInMemory::default();
    let media = [w.photo.clone(), w.video.clone()];
    let waiting = publish(&hasty, "patience", &media, None, &progress)
        .await
        .unwrap_err();
    assert_eq!(waiting.kind(), FailureKind::Transient, "{waiting}");
    let kept: Value = serde_json::from_str(&progress.kept().unwrap()).unwrap();
    assert_eq!(kept["children"].as_array().map(Vec::len), Some(2), "{kept}");
    assert!(kept.get("container").is_none(), "no carousel yet: {kept}");
    publish(&w.client, "patience", &media, None, &progress)
        .await
        .unwrap();
    assert_eq!(
        containers(&w.fake).await.len(),
        3,
        "the items were not made again"
    );
    assert_eq!(admin(&w.fake, "posts", "instagram").await.len(), 1);
}

#[tokio::test]
async fn once_a_container_may_be_live_a_refused_token_leaves_the_post_unknown_not_failed() {
    let w = world().await;
    let progress = KeptInMemory::default();
    publish(
        &w.client,
        "live already",
        std::slice::from_ref(&w.photo),
        None,
        &progress,
    )
    .await
    .unwrap();
    // The token is refused now: asking about the kept container fails, and the post, which is
    // live, must not end failed.
    let refused = publish_as(
        &w.client,
        "revoked-ig",
        "live already",
        std::slice::from_ref(&w.photo),
        None,
        &progress,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.kind(), FailureKind::Ambiguous, "{refused}");
    assert_eq!(admin(&w.fake, "posts", "instagram").await.len(), 1);
}
