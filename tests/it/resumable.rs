//! Videos in chunks against the fake platforms over HTTP: X's chunked upload
//! (INIT/APPEND/FINALIZE/STATUS) and Facebook's resumable upload (start/transfer/finish),
//! resumed from the kept checkpoint after an invocation died between sending a chunk and
//! keeping it, and continued in another invocation when the time runs out.

use crate::platforms::{admin, attachment, client, fault};
use async_trait::async_trait;
use herald_domain::media::memory::MemoryMedia;
use herald_domain::media::{Attachment, MediaType, samples};
use herald_domain::model::{FailureKind, Platform};
use herald_domain::ports::MediaObjects;
use herald_domain::publishing::platform::{
    ChunkSource, KeptInMemory, MediaBody, MediaUpload, PlatformClient, PlatformError,
    PublishRequest, StepProgress,
};
use herald_platforms::HttpPlatforms;
use herald_tests::fake_platforms;
use secrecy::SecretString;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

const MB: usize = 1024 * 1024;

/// The video in an in-memory bucket, and its attachment (with the bucket's etag).
async fn stored(video: &[u8]) -> (Arc<MemoryMedia>, Attachment) {
    let bucket = Arc::new(MemoryMedia::default());
    let mut a = attachment("med_v", MediaType::Mp4, video);
    bucket.put(&a.key, video.to_vec());
    a.etag = bucket.head(&a.key).await.unwrap().unwrap().etag;
    (bucket, a)
}

/// Progress that keeps the first `good` values, then fails (the store is down: the
/// invocation gives up), and may pause after the second value to use up the call's time.
#[derive(Debug, Default)]
struct Flaky {
    kept: KeptInMemory,
    good: usize,
    keeps: AtomicUsize,
    pause: Duration,
}

#[async_trait]
impl StepProgress for Flaky {
    fn kept(&self) -> Option<String> {
        self.kept.kept()
    }

    async fn keep(&self, value: &str) -> Result<(), PlatformError> {
        let n = self.keeps.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.good {
            return Err(PlatformError::Transient {
                message: "the store is down".into(),
                code: None,
                retry_after: None,
            });
        }
        self.kept.keep(value).await?;
        if n == 2 {
            tokio::time::sleep(self.pause).await;
        }
        Ok(())
    }
}

impl Flaky {
    fn failing_after(good: usize, from: Option<String>) -> Self {
        Self {
            kept: from.map(KeptInMemory::with).unwrap_or_default(),
            good,
            ..Self::default()
        }
    }
}

async fn publish(
    client: &HttpPlatforms,
    platform: Platform,
    account: &str,
    (bucket, a): &(Arc<MemoryMedia>, Attachment),
    progress: &dyn StepProgress,
    uploads_until: OffsetDateTime,
) -> Result<String, PlatformError> {
    let token = SecretString::from("token-1");
    let source = ChunkSource::new(bucket.clone(), a);
    client
        .publish(PublishRequest {
            options: &Default::default(),
            platform,
            external_id: account,
            access_token: &token,
            text: "the launch video",
            correlation_id: "c",
            media: vec![MediaUpload {
                attachment: a,
                body: MediaBody::Chunks(source),
            }],
            reply_to: None,
            idempotency_key: "herald-p-a-0",
            due_at: herald_tests::DUE,
            progress,
            uploads_until,
        })
        .await
        .map(|p| p.platform_post_id)
}

fn later() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::minutes(5)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn an_x_video_resumes_from_its_checkpoint_and_is_tweeted_once_processed() {
    let fake = fake_platforms();
    let client = client(&fake);
    let video = samples::mp4(10 * MB + 7);
    let stored = stored(&video).await;

    // The first invocation keeps INIT and two chunks, sends the third, and dies before
    // keeping it.
    let first = Flaky::failing_after(3, None);
    let died = publish(&client, Platform::X, "u1", &stored, &first, later()).await;
    assert_eq!(died.unwrap_err().kind(), FailureKind::Transient);
    let kept: serde_json::Value = serde_json::from_str(&first.kept().unwrap()).unwrap();
    assert_eq!(
        (kept["sent"].as_u64(), kept["next"].as_u64()),
        (Some(8 * MB as u64), Some(2))
    );

    // The next resumes at segment 2 (sent again: X replaces it), finalizes, waits for
    // processing and tweets.
    let resumed = KeptInMemory::with(first.kept().unwrap());
    let id = publish(&client, Platform::X, "u1", &stored, &resumed, later())
        .await
        .unwrap();

    let [upload] = admin(&fake, "uploads", "x").await.try_into().unwrap();
    assert_eq!(upload["sha256"], sha256(&video), "every byte, in order");
    assert_eq!(upload["appends"], 4, "three chunks and the one sent again");
    let [tweet] = admin(&fake, "posts", "x").await.try_into().unwrap();
    assert_eq!(tweet["id"], id.as_str());
    assert_eq!(tweet["media"], json!([upload["id"]]));
    let [session] = admin(&fake, "uploads", "x").await.try_into().unwrap();
    assert_eq!(session["finalized"], true);
}

#[tokio::test]
async fn an_x_upload_out_of_time_continues_and_one_that_never_moved_is_a_failure() {
    let fake = fake_platforms();
    let client = client(&fake);
    let video = samples::mp4(9 * MB);
    let stored = stored(&video).await;
    // A chunk may start while now + 4 s (3 s for the call, 1 s per 5 MB) is before the limit;
    // the pause after the first chunk uses up the rest.
    let progress = Flaky {
        good: usize::MAX,
        pause: Duration::from_millis(1_500),
        ..Flaky::default()
    };
    let until = OffsetDateTime::now_utc() + time::Duration::milliseconds(5_000);
    let out = publish(&client, Platform::X, "u1", &stored, &progress, until).await;
    let Err(PlatformError::UploadContinues {
        message,
        moved: true,
    }) = out
    else {
        panic!("the upload continues: {out:?}");
    };
    assert!(message.contains("4 of 9 MB sent"), "{message}");

    // No time for even one chunk: nothing moved, so this call failed.
    let stuck = KeptInMemory::with(progress.kept().unwrap());
    let past = OffsetDateTime::now_utc();
    let out = publish(&client, Platform::X, "u1", &stored, &stuck, past).await;
    assert!(
        matches!(
            out,
            Err(PlatformError::UploadContinues { moved: false, .. })
        ),
        "{out:?}"
    );
    assert_eq!(stuck.kept(), progress.kept(), "nothing was sent");
    assert!(admin(&fake, "posts", "x").await.is_empty());
}

#[tokio::test]
async fn a_facebook_video_resumes_at_the_offset_facebook_expects_and_posts_once() {
    let fake = fake_platforms();
    let client = client(&fake);
    let video = samples::mp4(10 * MB + 3);
    let stored = stored(&video).await;

    // Dies after sending the third chunk, before keeping it.
    let first = Flaky::failing_after(3, None);
    let died = publish(
        &client,
        Platform::Facebook,
        "page1",
        &stored,
        &first,
        later(),
    )
    .await;
    assert_eq!(died.unwrap_err().kind(), FailureKind::Transient);

    // Resumed at offset 8 MB, which Facebook already has: it names the offset it expects
    // (subcode 1363037) and the upload carries on from there. The finish's answer is lost.
    fault(
        &fake,
        json!({"platform": "facebook", "endpoints": "create", "ambiguous": true, "count": 1}),
    )
    .await;
    let resumed = KeptInMemory::with(first.kept().unwrap());
    let lost = publish(
        &client,
        Platform::Facebook,
        "page1",
        &stored,
        &resumed,
        later(),
    )
    .await;
    assert_eq!(lost.unwrap_err().kind(), FailureKind::Ambiguous);
    // Once a finish was sent, a refusal of the repeat is no proof nothing is live: unknown.
    fault(
        &fake,
        json!({"platform": "facebook", "endpoints": "create", "status": 400, "error_code": 100,
               "count": 1}),
    )
    .await;
    let refused = publish(
        &client,
        Platform::Facebook,
        "page1",
        &stored,
        &resumed,
        later(),
    )
    .await;
    assert_eq!(refused.unwrap_err().kind(), FailureKind::Ambiguous);
    // A retry (after its lookup) finishes the same session again: no second post.
    let id = publish(
        &client,
        Platform::Facebook,
        "page1",
        &stored,
        &resumed,
        later(),
    )
    .await
    .unwrap();

    let [upload] = admin(&fake, "uploads", "facebook")
        .await
        .try_into()
        .unwrap();
    assert_eq!(upload["sha256"], sha256(&video));
    assert_eq!(upload["id"], id.as_str(), "the video is the post");
    let [post] = admin(&fake, "posts", "facebook").await.try_into().unwrap();
    assert_eq!(post["text"], "the launch video");
    assert_eq!(post["media"], json!([id]));
}
