//! The Bluesky client against the fake PDS (infra/fake_platforms/bluesky*.py) over HTTP: an
//! app password signs in to a session whose tokens Herald keeps, a post and a thread are
//! records under keys Herald chose (a repeat makes no second post, a lost answer is read back
//! by its key), sessions refresh, and timelines and engagement are read as the PDS serves them.

use crate::platforms::{admin, attachment, client, fault};
use herald_domain::analytics::EngagementClient;
use herald_domain::ingest::{Position, StreamKind, TimelineSource};
use herald_domain::media::{MediaContent, MediaType, samples};
use herald_domain::model::{Account, AccountStatus, FailureKind, Platform};
use herald_domain::publishing::platform::{
    LookupRequest, MediaUpload, PlatformClient, PlatformError, PublishRequest, PublishedPost,
    TokenOwners,
};
use herald_domain::secrets::token_refresh::{RefreshError, TokenRefresher};
use herald_platforms::HttpPlatforms;
use herald_tests::{FakePlatforms, fake_platforms};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const PASSWORD: &str = "abcd-efgh-ijkl-mnop";

/// A Bluesky account on the fake; its DID.
async fn bluesky_account(fake: &FakePlatforms, handle: &str) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{}/_admin/bluesky/accounts", fake.url))
        .json(&json!({"handle": handle, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["did"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

/// Signs in as Herald does when the account is connected: the session's access token.
async fn session(client: &HttpPlatforms, handle: &str) -> (String, SecretString, SecretString) {
    let owner = client
        .ownership(Platform::Bluesky, &SecretString::from(PASSWORD), handle)
        .await
        .unwrap();
    assert!(owner.owns, "{owner:?}");
    let issued = owner.issued.expect("a session");
    (
        owner.actual_id,
        issued.access_token,
        issued.refresh_token.unwrap(),
    )
}

struct Poster<'a> {
    client: &'a HttpPlatforms,
    did: &'a str,
    token: &'a SecretString,
}

impl Poster<'_> {
    async fn post(
        &self,
        text: &str,
        key: &str,
        reply_to: Option<&str>,
        media: &[(herald_domain::media::Attachment, Vec<u8>)],
    ) -> Result<PublishedPost, PlatformError> {
        self.client
            .publish(PublishRequest {
                platform: Platform::Bluesky,
                external_id: self.did,
                access_token: self.token,
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
                reply_to,
                idempotency_key: key,
                due_at: herald_tests::DUE,
                progress: &herald_domain::publishing::platform::KeptInMemory::default(),
                uploads_until: time::OffsetDateTime::now_utc() + time::Duration::minutes(5),
                options: &Default::default(),
            })
            .await
    }

    async fn find(&self, text: &str, key: &str, reply_to: Option<&str>) -> Option<String> {
        self.client
            .find_post(LookupRequest {
                platform: Platform::Bluesky,
                external_id: self.did,
                access_token: self.token,
                text,
                since: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
                reply_to,
                idempotency_key: key,
                due_at: herald_tests::DUE,
                progress: &herald_domain::publishing::platform::KeptInMemory::default(),
            })
            .await
            .unwrap()
            .map(|p| p.platform_post_id)
    }
}

#[tokio::test]
async fn an_app_password_signs_in_and_only_its_account_is_connected() {
    let fake = fake_platforms();
    let did = bluesky_account(&fake, "alice.test").await;
    let client = client(&fake);
    let (actual, access, refresh) = session(&client, "alice.test").await;
    assert_eq!(actual, did, "the account is kept under its DID");
    assert!(!access.expose_secret().is_empty() && !refresh.expose_secret().is_empty());
    // By its DID too; never as someone else.
    let by_did = client
        .ownership(Platform::Bluesky, &SecretString::from(PASSWORD), &did)
        .await
        .unwrap();
    assert!(by_did.owns);
    let issued = by_did.issued.unwrap();
    let left = issued.expires_in.unwrap();
    assert!(
        left > time::Duration::minutes(30) && left <= time::Duration::hours(2),
        "{left}"
    );
    let wrong = client
        .ownership(
            Platform::Bluesky,
            &SecretString::from("wrong-pass-word"),
            "alice.test",
        )
        .await
        .unwrap_err();
    assert_eq!(wrong.kind(), FailureKind::Auth, "{wrong}");
    assert!(!wrong.message().contains("wrong-pass"), "{wrong}");
}

#[tokio::test]
async fn a_thread_with_an_image_is_records_under_herald_keys_and_a_repeat_posts_nothing() {
    let fake = fake_platforms();
    bluesky_account(&fake, "bob.test").await;
    let client = client(&fake);
    let (did, token, _) = session(&client, "bob.test").await;
    let poster = Poster {
        client: &client,
        did: &did,
        token: &token,
    };
    let photo = samples::png(800, 600, 20_000);
    let head = poster
        .post(
            "Launch day, see https://example.com/launch",
            "k-0",
            None,
            &[(attachment("med_p", MediaType::Png, &photo), photo.clone())],
        )
        .await
        .unwrap()
        .platform_post_id;
    assert!(
        head.starts_with(&format!("at://{did}/app.bsky.feed.post/")),
        "{head}"
    );
    let reply = poster
        .post("2/3 the middle", "k-1", Some(&head), &[])
        .await
        .unwrap()
        .platform_post_id;
    let last = poster
        .post("3/3 the end", "k-2", Some(&reply), &[])
        .await
        .unwrap()
        .platform_post_id;
    let posts = admin(&fake, "posts", "bluesky").await;
    assert_eq!(posts.len(), 3, "{posts:?}");
    let [blob] = admin(&fake, "media", "bluesky").await.try_into().unwrap();
    assert_eq!(
        posts[0]["media"],
        json!([blob["id"]]),
        "the image, uploaded first"
    );
    let record = |uri: String| {
        let url = format!("{}/bluesky/xrpc/com.atproto.repo.getRecord", fake.url);
        async move {
            let rkey = uri.rsplit('/').next().unwrap().to_owned();
            let repo = uri
                .trim_start_matches("at://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            let v: Value = reqwest::Client::new()
                .get(url)
                .query(&[
                    ("repo", repo.as_str()),
                    ("collection", "app.bsky.feed.post"),
                    ("rkey", &rkey),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["value"].clone()
        }
    };
    let first = record(head.clone()).await;
    assert_eq!(first["embed"]["$type"], "app.bsky.embed.images");
    assert_eq!(
        first["embed"]["images"][0]["image"]["ref"]["$link"],
        blob["id"]
    );
    assert_eq!(
        first["facets"][0]["features"][0]["uri"],
        "https://example.com/launch"
    );
    // The last reply's root is the thread's first post, its parent the reply before it.
    let refs = &record(last.clone()).await["reply"];
    assert_eq!(
        (&refs["root"]["uri"], &refs["parent"]["uri"]),
        (&json!(head), &json!(reply))
    );
    // A repeat of a step makes no second post: the PDS refuses the key, the client reads it.
    let again = poster
        .post("2/3 the middle", "k-1", Some(&head), &[])
        .await
        .unwrap();
    assert_eq!(again.platform_post_id, reply);
    assert_eq!(admin(&fake, "posts", "bluesky").await.len(), 3);
    // A lost answer: the post is there, and the lookup reads it by its key.
    fault(
        &fake,
        json!({"platform": "bluesky", "ambiguous": true, "count": 1}),
    )
    .await;
    let lost = poster.post("lost", "k-lost", None, &[]).await.unwrap_err();
    assert_eq!(lost.kind(), FailureKind::Ambiguous, "{lost}");
    let found = poster.find("lost", "k-lost", None).await.unwrap();
    let on_fake = admin(&fake, "posts", "bluesky").await;
    assert_eq!(on_fake.len(), 4);
    assert_eq!(on_fake[3]["id"], found.as_str());
    assert_eq!(poster.find("never sent", "k-never", None).await, None);
    // The key names the record: another text under it is not the step's post.
    assert_eq!(poster.find("something else", "k-lost", None).await, None);
}

#[tokio::test]
async fn refusals_are_classified_and_sessions_refresh() {
    let fake = fake_platforms();
    bluesky_account(&fake, "carol.test").await;
    let client = client(&fake);
    let (did, token, refresh) = session(&client, "carol.test").await;
    let poster = Poster {
        client: &client,
        did: &did,
        token: &token,
    };
    let long = poster
        .post(&"a".repeat(301), "k-long", None, &[])
        .await
        .unwrap_err();
    assert_eq!(long.kind(), FailureKind::Permanent, "{long}");
    assert!(long.message().contains("300 graphemes"), "{long}");
    fault(
        &fake,
        json!({"platform": "bluesky", "status": 429, "retry_after": 20, "count": 1}),
    )
    .await;
    let slow = poster.post("hi", "k-429", None, &[]).await.unwrap_err();
    assert_eq!(slow.kind(), FailureKind::RateLimited, "{slow}");
    let wait = slow.retry_after().unwrap().as_secs();
    assert!((15..=21).contains(&wait), "{wait}");
    fault(
        &fake,
        json!({"platform": "bluesky", "status": 502, "count": 1}),
    )
    .await;
    let busy = poster.post("hi", "k-502", None, &[]).await.unwrap_err();
    assert_eq!(busy.kind(), FailureKind::Transient, "{busy}");
    let stranger = Poster {
        client: &client,
        did: &did,
        token: &SecretString::from("not-a-session"),
    };
    let refused = stranger.post("hi", "k-x", None, &[]).await.unwrap_err();
    assert_eq!(refused.kind(), FailureKind::Auth, "{refused}");
    // A refresh rotates both tokens; the spent refresh token is refused for good.
    let fresh = client.refresh(Platform::Bluesky, &refresh).await.unwrap();
    assert_ne!(fresh.access_token.expose_secret(), token.expose_secret());
    let posted = Poster {
        client: &client,
        did: &did,
        token: &fresh.access_token,
    }
    .post("after the refresh", "k-r", None, &[])
    .await;
    assert!(posted.is_ok(), "{posted:?}");
    match client.refresh(Platform::Bluesky, &refresh).await {
        Err(RefreshError::Revoked(_)) => {}
        other => panic!("a spent refresh token: {other:?}"),
    }
}

#[tokio::test]
async fn a_timeline_pages_by_record_key_and_engagement_is_read_per_post() {
    let fake = fake_platforms();
    bluesky_account(&fake, "dave.test").await;
    let client = client(&fake);
    let (did, token, _) = session(&client, "dave.test").await;
    let poster = Poster {
        client: &client,
        did: &did,
        token: &token,
    };
    let mut uris = Vec::new();
    for n in 0..3 {
        uris.push(
            poster
                .post(&format!("post {n}"), &format!("k{n}"), None, &[])
                .await
                .unwrap()
                .platform_post_id,
        );
    }
    let now = time::OffsetDateTime::now_utc();
    let account = Account {
        id: Account::id_for(Platform::Bluesky, &did),
        tenant_id: herald_domain::ids::TenantId("ten_b".into()),
        platform: Platform::Bluesky,
        external_id: did.clone(),
        display_name: None,
        access_token: token.clone(),
        refresh_token: None,
        token_expires_at: None,
        status: AccountStatus::Active,
        created_at: now,
        updated_at: now,
        breaker: Default::default(),
    };
    let mut seen = Vec::new();
    let mut position = Position::default();
    loop {
        let page = client
            .fetch(&account, StreamKind::Posts, &position, 2)
            .await
            .unwrap();
        for item in &page.items {
            assert_eq!(item.raw["id"], item.platform_id.clone().unwrap().as_str());
            assert!(item.raw["text"].as_str().unwrap().starts_with("post "));
            seen.push(item.platform_id.clone().unwrap());
        }
        match page.next {
            Some(next) => position.cursor = Some(next),
            None => break,
        }
    }
    let mut expected = uris.clone();
    expected.sort();
    expected.reverse();
    assert_eq!(seen, expected, "every record once, newest key first");
    let res = reqwest::Client::new()
        .post(format!("{}/_admin/metrics", fake.url))
        .json(&json!({"platform": "bluesky", "post_id": uris[0], "likes": 4, "shares": 2, "comments": 1, "quotes": 1}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{:?}", res.text().await);
    let e = client
        .engagement(Platform::Bluesky, &did, &token, &uris[0])
        .await
        .unwrap();
    assert_eq!(
        (e.likes, e.comments, e.shares, e.impressions),
        (Some(4), Some(1), Some(3), None)
    );
}
