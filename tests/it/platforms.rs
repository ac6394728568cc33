//! The platform clients' media uploads against the fake platforms (infra/fake_platforms/,
//! one server per test): each platform's upload shape, the post referring to what came back,
//! and how upload failures are classified.

use herald_domain::ids::MediaId;
use herald_domain::media::{Attachment, Dimensions, MediaContent, MediaType, samples};
use herald_domain::model::{FailureKind, Platform};
use herald_domain::publishing::platform::{
    MediaUpload, PlatformClient, PlatformError, PublishRequest,
};
use herald_platforms::HttpPlatforms;
use herald_tests::{FakePlatforms, fake_platforms};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub(crate) fn client(fake: &FakePlatforms) -> HttpPlatforms {
    HttpPlatforms::new(fake.endpoints(), Duration::from_secs(3))
}

pub(crate) fn attachment(id: &str, media_type: MediaType, content: &[u8]) -> Attachment {
    Attachment {
        alt_text: None,
        media_id: MediaId(id.into()),
        key: format!("media/t/{id}"),
        etag: "\"e\"".into(),
        media_type,
        size: content.len() as u64,
        dimensions: Some(Dimensions {
            width: 1200,
            height: 630,
        }),
        file_name: format!("{id}.bin"),
        created_at: time::OffsetDateTime::now_utc(),
    }
}

async fn publish(
    client: &HttpPlatforms,
    platform: Platform,
    external_id: &str,
    text: &str,
    media: &[(Attachment, Vec<u8>)],
) -> Result<String, PlatformError> {
    let token = SecretString::from("token-1");
    client
        .publish(PublishRequest {
            platform,
            external_id,
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
            idempotency_key: text,
            due_at: herald_tests::DUE,
            progress: &herald_domain::publishing::platform::KeptInMemory::default(),
            uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            options: &Default::default(),
        })
        .await
        .map(|p| p.platform_post_id)
}

pub(crate) async fn admin(fake: &FakePlatforms, what: &str, platform: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/_admin/{what}?platform={platform}", fake.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v[what].as_array().cloned().unwrap()
}

pub(crate) async fn fault(fake: &FakePlatforms, rule: Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/faults", fake.url))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{rule}");
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn each_platform_gets_the_bytes_first_and_a_post_that_refers_to_them() {
    let fake = fake_platforms();
    let client = client(&fake);
    let photo = samples::png(1200, 630, 40_000);
    let second = samples::jpeg(1200, 630, 30_000);
    let media = vec![
        (attachment("med_a", MediaType::Png, &photo), photo.clone()),
        (
            attachment("med_b", MediaType::Jpeg, &second),
            second.clone(),
        ),
    ];
    for (platform, account) in [
        (Platform::X, "ignored"),
        (Platform::Facebook, "page-1"),
        (Platform::Linkedin, "42"),
        (Platform::Mastodon, "ignored"),
    ] {
        let name = platform.as_str();
        let id = publish(&client, platform, account, "two pictures", &media)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let uploads = admin(&fake, "media", name).await;
        assert_eq!(
            uploads
                .iter()
                .map(|m| m["sha256"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>(),
            [sha256(&photo), sha256(&second)],
            "{name}: exactly the bytes, in order"
        );
        assert_eq!(uploads[0]["content_type"], "image/png", "{name}");
        let [post] = admin(&fake, "posts", name).await.try_into().unwrap();
        assert_eq!(post["id"], id, "{name}");
        let ids: Vec<&Value> = uploads.iter().map(|m| &m["id"]).collect();
        assert_eq!(
            post["media"].as_array().unwrap().iter().collect::<Vec<_>>(),
            ids,
            "{name}"
        );
        assert!(
            uploads
                .iter()
                .all(|m| m["seq"].as_i64() < post["seq"].as_i64()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_facebook_video_and_a_linkedin_document_take_their_own_paths() {
    let fake = fake_platforms();
    let client = client(&fake);
    let video = samples::mp4(50_000);
    let id = publish(
        &client,
        Platform::Facebook,
        "page-1",
        "our film",
        &[(attachment("med_v", MediaType::Mp4, &video), video.clone())],
    )
    .await
    .unwrap();
    let [uploaded] = admin(&fake, "media", "facebook").await.try_into().unwrap();
    assert_eq!(
        (&uploaded["id"], &uploaded["kind"]),
        (&json!(id), &json!("video"))
    );
    let [post] = admin(&fake, "posts", "facebook").await.try_into().unwrap();
    assert_eq!(post["text"], "our film", "the video is the post");

    let pdf = samples::pdf(20_000);
    publish(
        &client,
        Platform::Linkedin,
        "42",
        "our report",
        &[(attachment("med_d", MediaType::Pdf, &pdf), pdf.clone())],
    )
    .await
    .unwrap();
    let [doc] = admin(&fake, "media", "linkedin").await.try_into().unwrap();
    assert_eq!(
        (&doc["kind"], &doc["sha256"]),
        (&json!("document"), &json!(sha256(&pdf)))
    );
    assert!(doc["id"].as_str().unwrap().starts_with("urn:li:document:"));
}

#[tokio::test]
async fn an_upload_that_fails_or_loses_its_answer_is_transient_and_posts_nothing() {
    let fake = fake_platforms();
    let client = client(&fake);
    let photo = samples::png(1200, 630, 10_000);
    let media = [(attachment("med_a", MediaType::Png, &photo), photo.clone())];
    fault(
        &fake,
        json!({"platform": "x", "endpoints": "upload", "ambiguous": true, "count": 1}),
    )
    .await;
    let lost = publish(&client, Platform::X, "u", "hello", &media)
        .await
        .unwrap_err();
    assert_eq!(lost.kind(), FailureKind::Transient, "{lost}");
    fault(&fake, json!({"platform": "facebook", "endpoints": "upload", "status": 400, "error_code": 100, "count": 1})).await;
    let refused = publish(&client, Platform::Facebook, "page-1", "hello", &media)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), FailureKind::Permanent, "{refused}");
    assert!(
        refused.message().contains("to the media upload"),
        "{refused}"
    );
    fault(
        &fake,
        json!({"platform": "linkedin", "endpoints": "upload", "status": 503, "count": 1}),
    )
    .await;
    let busy = publish(&client, Platform::Linkedin, "42", "hello", &media)
        .await
        .unwrap_err();
    assert_eq!(busy.kind(), FailureKind::Transient, "{busy}");
    for platform in ["x", "facebook", "linkedin"] {
        assert!(
            admin(&fake, "posts", platform).await.is_empty(),
            "{platform}"
        );
    }
    // Sent again, each goes through: uploaded twice on X (the lost answer), posted once.
    publish(&client, Platform::X, "u", "hello", &media)
        .await
        .unwrap();
    assert_eq!(admin(&fake, "media", "x").await.len(), 2);
    assert_eq!(admin(&fake, "posts", "x").await.len(), 1);
}

/// Token refreshes authenticate with the app's OAuth client (HTTP Basic): without it, or with
/// a wrong secret, the platform's `invalid_client` is Herald's configuration to fix, not the
/// account's token, so the error is transient and names the secret; with it, the refresh
/// rotates the tokens.
#[tokio::test]
async fn refreshes_authenticate_with_the_apps_oauth_client() {
    use herald_domain::secrets::token_refresh::{RefreshError, TokenRefresher};
    use herald_platforms::oauth::{OAuthClient, OAuthClients};
    use secrecy::ExposeSecret;
    let fake = fake_platforms();
    let http = reqwest::Client::new();
    for (path, body) in [
        (
            "oauth/clients",
            json!({"platform": "linkedin", "client_id": "herald-li", "client_secret": "li-s3cret"}),
        ),
        (
            "oauth",
            json!({"platform": "linkedin", "account": "42", "refresh_token": "r0"}),
        ),
    ] {
        let res = http
            .post(format!("{}/_admin/{path}", fake.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}");
    }
    let with = |secret: &str| {
        client(&fake).with_oauth_clients(OAuthClients {
            x: None,
            linkedin: Some(OAuthClient {
                id: "herald-li".into(),
                secret: SecretString::from(secret.to_owned()),
            }),
            facebook: None,
        })
    };
    let r0 = SecretString::from("r0".to_owned());
    for platforms in [client(&fake), with("wrong")] {
        match platforms.refresh(Platform::Linkedin, &r0).await {
            Err(RefreshError::Transient(m)) => {
                assert!(m.contains("OAuthClientsSecret"), "{m}");
                assert!(!m.contains("r0") && !m.contains("wrong"), "{m}");
            }
            other => panic!("not a transient client error: {other:?}"),
        }
    }
    let refreshed = with("li-s3cret")
        .refresh(Platform::Linkedin, &r0)
        .await
        .unwrap();
    assert!(!refreshed.access_token.expose_secret().is_empty());
    assert_ne!(
        refreshed.refresh_token.unwrap().expose_secret(),
        "r0",
        "rotated"
    );
}

#[test]
fn the_oauth_clients_secret_is_parsed_strictly() {
    use herald_platforms::oauth::OAuthClients;
    use secrecy::ExposeSecret;
    let both = OAuthClients::parse(
        r#"{"x": {"client_id": "a", "client_secret": "b"}, "linkedin": {"client_id": "c", "client_secret": "d"}}"#,
    )
    .unwrap();
    assert_eq!(both.x.as_ref().unwrap().id, "a");
    assert_eq!(both.linkedin.unwrap().secret.expose_secret(), "d");
    let none = OAuthClients::parse("{}").unwrap();
    assert!(none.x.is_none() && none.linkedin.is_none());
    for (bad, says) in [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        (r#"{"facebook": {}}"#, "\"facebook\""),
        (r#"{"x": {"client_id": "a"}}"#, "\"x\""),
        (
            r#"{"x": {"client_id": "", "client_secret": "s3"}}"#,
            "\"x\"",
        ),
    ] {
        let err = OAuthClients::parse(bad).unwrap_err();
        assert!(err.contains(says), "{bad}: {err}");
        assert!(!err.contains("s3"), "{err}");
    }
}

async fn follow_up(
    client: &HttpPlatforms,
    platform: Platform,
    external_id: &str,
    text: &str,
    parent: &str,
) -> Result<String, PlatformError> {
    let token = SecretString::from("token-1");
    client
        .publish(PublishRequest {
            platform,
            external_id,
            access_token: &token,
            text,
            correlation_id: "c",
            media: vec![],
            reply_to: Some(parent),
            idempotency_key: text,
            due_at: herald_tests::DUE,
            progress: &herald_domain::publishing::platform::KeptInMemory::default(),
            uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
            options: &Default::default(),
        })
        .await
        .map(|p| p.platform_post_id)
}

async fn find(
    client: &HttpPlatforms,
    platform: Platform,
    external_id: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Option<String> {
    let token = SecretString::from("token-1");
    client
        .find_post(herald_domain::publishing::platform::LookupRequest {
            platform,
            external_id,
            access_token: &token,
            text,
            since: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
            reply_to,
            idempotency_key: text,
            due_at: herald_tests::DUE,
            progress: &herald_domain::publishing::platform::KeptInMemory::default(),
        })
        .await
        .unwrap()
        .map(|p| p.platform_post_id)
}

/// A thread's reply on X and a first comment on Facebook and LinkedIn: each answers its
/// parent, is found among the parent's answers after a lost answer, and is never taken for a
/// post of the account's own.
#[tokio::test]
async fn follow_ups_answer_their_parent_and_are_found_only_among_its_answers() {
    let fake = fake_platforms();
    let client = client(&fake);
    for (platform, account, name) in [
        (Platform::X, None, "x"),
        (Platform::Facebook, Some("page1"), "facebook"),
        (Platform::Linkedin, Some("42"), "linkedin"),
        (Platform::Mastodon, None, "mastodon"),
    ] {
        let head = publish(&client, platform, account.unwrap_or("0"), "the post", &[])
            .await
            .unwrap();
        // X's and Mastodon's account is the token's user, known once it has posted.
        let account = match account {
            Some(a) => a.to_owned(),
            None => admin(&fake, "posts", name).await[0]["account"]
                .as_str()
                .unwrap()
                .to_owned(),
        };
        let first = follow_up(&client, platform, &account, "the answer", &head)
            .await
            .unwrap();
        let posts = admin(&fake, "posts", name).await;
        let answer = posts.iter().find(|p| p["id"] == first.as_str()).unwrap();
        assert_eq!(answer["parent"], head.as_str(), "{name}");
        assert_eq!(
            find(&client, platform, &account, "the answer", Some(&head)).await,
            Some(first.clone()),
            "{name}"
        );
        assert_eq!(
            find(&client, platform, &account, "the answer", None).await,
            None,
            "{name}: an answer is never the account's own post"
        );
        assert_eq!(
            find(&client, platform, &account, "the post", None).await,
            Some(head.clone()),
            "{name}"
        );
        // The answer is lost: the call is ambiguous and the lookup finds what it created.
        fault(
            &fake,
            json!({"platform": name, "ambiguous": true, "count": 1}),
        )
        .await;
        let lost = follow_up(&client, platform, &account, "lost answer", &head).await;
        assert_eq!(
            lost.map_err(|e| e.kind()),
            Err(FailureKind::Ambiguous),
            "{name}"
        );
        assert!(
            find(&client, platform, &account, "lost answer", Some(&head))
                .await
                .is_some(),
            "{name}"
        );
        // Nothing to answer: refused for good.
        let orphan = follow_up(&client, platform, &account, "orphan", "404404").await;
        assert_eq!(
            orphan.map_err(|e| e.kind()),
            Err(FailureKind::Permanent),
            "{name}"
        );
    }
}
