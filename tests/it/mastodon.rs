//! The Mastodon client against the fake Mastodon (infra/fake_platforms/mastodon*.py) over
//! HTTP: a video that is still processing is waited for, the `Idempotency-Key` makes a repeat
//! answer the first status, every refusal is classified, and who a token is, its timeline and a
//! status's engagement are read the way Mastodon serves them.

use crate::platforms::{admin, attachment, client, fault};
use herald_domain::ingest::{Position, StreamKind, TimelineSource};
use herald_domain::media::{MediaContent, MediaType, samples};
use herald_domain::model::{Account, FailureKind, Platform};
use herald_domain::publishing::platform::{
    LookupRequest, MediaUpload, PlatformClient, PlatformError, PublishRequest, PublishedPost,
    TokenOwners,
};
use herald_platforms::HttpPlatforms;
use herald_tests::{FakePlatforms, fake_platforms};
use secrecy::SecretString;
use serde_json::json;

const TOKEN: &str = "masto-token";
const ACCOUNT: &str = "109000000000000001";

async fn token_for(fake: &FakePlatforms, token: &str, account: &str) {
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/tokens", fake.url))
        .json(&json!({"platform": "mastodon", "token": token, "account": account}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
}

async fn status(
    client: &HttpPlatforms,
    text: &str,
    key: &str,
    media: &[(herald_domain::media::Attachment, Vec<u8>)],
) -> Result<PublishedPost, PlatformError> {
    let token = SecretString::from(TOKEN);
    client
        .publish(PublishRequest {
            platform: Platform::Mastodon,
            external_id: ACCOUNT,
            access_token: &token,
            text,
            correlation_id: "c",
            media: media
                .iter()
                .map(|(a, bytes)| MediaUpload {
                    attachment: a,
                    body: herald_domain::publishing::platform::MediaBody::Bytes(
                        MediaContent::from_bytes(bytes.clone()),
                    ),
                })
                .collect(),
            reply_to: None,
            idempotency_key: key,
            due_at: herald_tests::DUE,
            progress: &herald_domain::publishing::platform::KeptInMemory::default(),
            uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            options: &Default::default(),
        })
        .await
}

#[tokio::test]
async fn a_video_is_attached_once_mastodon_has_processed_it() {
    let fake = fake_platforms();
    token_for(&fake, TOKEN, ACCOUNT).await;
    let client = client(&fake);
    let video = samples::mp4(60_000);
    let posted = status(
        &client,
        "our film",
        "k-video",
        &[(attachment("med_v", MediaType::Mp4, &video), video.clone())],
    )
    .await
    .unwrap();
    let [upload] = admin(&fake, "media", "mastodon").await.try_into().unwrap();
    assert_eq!(upload["kind"], "video");
    let [post] = admin(&fake, "posts", "mastodon").await.try_into().unwrap();
    assert_eq!(post["id"], posted.platform_post_id.as_str());
    assert_eq!(post["account"], ACCOUNT);
    // The fake refuses a status whose media is still processing: it was waited for.
    assert_eq!(post["media"], json!([upload["id"]]));
    // Every answer carries the account's budget: one status of 300 used.
    assert_eq!(posted.signal.remaining, Some(299));
    assert!(posted.signal.reset_after.is_some());
}

#[tokio::test]
async fn a_repeat_with_the_same_key_answers_the_first_status_and_creates_nothing() {
    let fake = fake_platforms();
    token_for(&fake, TOKEN, ACCOUNT).await;
    let client = client(&fake);
    // The first answer is lost after Mastodon created the status.
    fault(
        &fake,
        json!({"platform": "mastodon", "ambiguous": true, "count": 1}),
    )
    .await;
    let lost = status(&client, "only once", "k-1", &[]).await.unwrap_err();
    assert_eq!(lost.kind(), FailureKind::Ambiguous, "{lost}");
    let again = status(&client, "only once", "k-1", &[]).await.unwrap();
    let posts = admin(&fake, "posts", "mastodon").await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["id"], again.platform_post_id.as_str());
    // Another step (another key) with the same text is a status of its own.
    status(&client, "only once", "k-2", &[]).await.unwrap();
    assert_eq!(admin(&fake, "posts", "mastodon").await.len(), 2);
}

#[tokio::test]
async fn mastodons_refusals_are_classified() {
    let fake = fake_platforms();
    token_for(&fake, TOKEN, ACCOUNT).await;
    let client = client(&fake);
    let too_long = status(&client, &"a".repeat(501), "k-long", &[])
        .await
        .unwrap_err();
    assert_eq!(too_long.kind(), FailureKind::Permanent, "{too_long}");
    assert!(
        too_long.message().starts_with("Mastodon answered 422: ")
            && too_long.message().contains("character limit"),
        "{too_long}"
    );
    fault(
        &fake,
        json!({"platform": "mastodon", "status": 429, "retry_after": 30, "count": 1}),
    )
    .await;
    let slow_down = status(&client, "hello", "k-429", &[]).await.unwrap_err();
    assert_eq!(slow_down.kind(), FailureKind::RateLimited, "{slow_down}");
    let wait = slow_down.retry_after().unwrap().as_secs();
    assert!((25..=31).contains(&wait), "{wait}");
    for (status_code, kind) in [(401, FailureKind::Auth), (503, FailureKind::Transient)] {
        fault(
            &fake,
            json!({"platform": "mastodon", "status": status_code, "count": 1}),
        )
        .await;
        let err = status(&client, "hello", "k-x", &[]).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{status_code}: {err}");
    }
    fault(
        &fake,
        json!({"platform": "mastodon", "endpoints": "upload", "status": 500, "count": 1}),
    )
    .await;
    let photo = samples::png(800, 600, 5_000);
    let upload = status(
        &client,
        "hello",
        "k-up",
        &[(attachment("med_p", MediaType::Png, &photo), photo.clone())],
    )
    .await
    .unwrap_err();
    assert_eq!(upload.kind(), FailureKind::Transient, "{upload}");
    assert!(upload.message().contains("to the media upload"), "{upload}");
    assert!(admin(&fake, "posts", "mastodon").await.is_empty());
}

#[tokio::test]
async fn a_status_is_found_by_its_text_read_back_from_mastodons_html() {
    let fake = fake_platforms();
    token_for(&fake, TOKEN, ACCOUNT).await;
    let client = client(&fake);
    let text = "Fish & chips <today>\n\nsee https://example.com/menu?a=1&b=2 \"quoted\" it's";
    let posted = status(&client, text, "k-html", &[]).await.unwrap();
    let token = SecretString::from(TOKEN);
    let find = |text: &'static str| {
        let (client, token) = (&client, &token);
        async move {
            client
                .find_post(LookupRequest {
                    platform: Platform::Mastodon,
                    external_id: ACCOUNT,
                    access_token: token,
                    text,
                    since: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
                    reply_to: None,
                    idempotency_key: "k-html",
                    due_at: herald_tests::DUE,
                    progress: &herald_domain::publishing::platform::KeptInMemory::default(),
                })
                .await
                .unwrap()
                .map(|p| p.platform_post_id)
        }
    };
    assert_eq!(
        find("Fish & chips <today>\n\nsee https://example.com/menu?a=1&b=2 \"quoted\" it's").await,
        Some(posted.platform_post_id)
    );
    assert_eq!(
        find("Fish & chips <today>").await,
        None,
        "the whole text, not a part"
    );
}

#[tokio::test]
async fn who_a_token_is_its_timeline_and_a_statuss_engagement() {
    let fake = fake_platforms();
    token_for(&fake, TOKEN, ACCOUNT).await;
    let client = client(&fake);
    let token = SecretString::from(TOKEN);
    let mine = client
        .ownership(Platform::Mastodon, &token, ACCOUNT)
        .await
        .unwrap();
    assert!(mine.owns, "{mine:?}");
    assert_eq!(
        mine.name.as_deref(),
        Some(&*format!("Mastodon user {ACCOUNT}"))
    );
    let theirs = client
        .ownership(Platform::Mastodon, &token, "999")
        .await
        .unwrap();
    assert!(!theirs.owns);
    assert_eq!(theirs.actual_id, ACCOUNT);

    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            status(&client, &format!("status {n}"), &format!("k{n}"), &[])
                .await
                .unwrap()
                .platform_post_id,
        );
    }
    let now = time::OffsetDateTime::now_utc();
    let account = Account {
        id: Account::id_for(Platform::Mastodon, ACCOUNT),
        tenant_id: herald_domain::ids::TenantId("ten_m".into()),
        platform: Platform::Mastodon,
        external_id: ACCOUNT.into(),
        display_name: None,
        access_token: token.clone(),
        refresh_token: None,
        token_expires_at: None,
        status: herald_domain::model::AccountStatus::Active,
        created_at: now,
        updated_at: now,
        breaker: Default::default(),
    };
    // Two to a page, newest first, then the next page from the oldest seen.
    let first = client
        .fetch(&account, StreamKind::Posts, &Position::default(), 2)
        .await
        .unwrap();
    let seen: Vec<_> = first
        .items
        .iter()
        .filter_map(|i| i.platform_id.clone())
        .collect();
    assert_eq!(seen, [ids[4].clone(), ids[3].clone()]);
    assert_eq!(first.newest.as_deref(), Some(ids[4].as_str()));
    let second = client
        .fetch(
            &account,
            StreamKind::Posts,
            &Position {
                cursor: first.next.clone(),
                ..Default::default()
            },
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        second.items[0].platform_id.as_deref(),
        Some(ids[2].as_str())
    );
    // A later run asks only for what is newer than the newest stored.
    let later = client
        .fetch(
            &account,
            StreamKind::Posts,
            &Position {
                since: Some(ids[3].clone()),
                ..Default::default()
            },
            40,
        )
        .await
        .unwrap();
    assert_eq!(later.items.len(), 1);
    assert_eq!(later.next, None);

    use herald_domain::analytics::EngagementClient;
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/metrics", fake.url))
        .json(&json!({"platform": "mastodon", "post_id": ids[0], "likes": 7, "shares": 2, "comments": 1}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let engagement = client
        .engagement(Platform::Mastodon, ACCOUNT, &token, &ids[0])
        .await
        .unwrap();
    assert_eq!(
        (
            engagement.likes,
            engagement.comments,
            engagement.shares,
            engagement.impressions
        ),
        (Some(7), Some(1), Some(2), None)
    );
}
