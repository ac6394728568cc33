//! A 200 MB video through the whole stack: uploaded to the media bucket through its presigned
//! PUT, published to X in X's chunked upload a chunk at a time from the bucket, across several
//! publisher invocations from the checkpoint kept on the variant, with the publisher killed
//! mid-upload once. X ends with every byte in order, one upload and one tweet.

use super::*;

const MB: usize = 1024 * 1024;

#[tokio::test]
#[ignore = "run alone by infra/test.sh: it kills the publisher, which other tests' posts would feel"]
async fn a_200_mb_video_publishes_once_across_invocations_with_the_publisher_killed_mid_upload() {
    use herald_domain::media::samples;
    use sha2::Digest;
    let stack = Stack::running();
    let t = stack.tenant();
    let user = unique("user");
    let account = stack.connect(&t, "x", &user, &unique("x-token-")).await;
    let video = samples::mp4(200 * MB);
    let media = stack
        .upload_media(&t, "video/mp4", "launch.mp4", &video)
        .await;
    // X takes a second for each chunk: the 50 chunks need several invocations (30 s each,
    // chunks starting until the last 9 s), so the upload continues from its checkpoint.
    stack
        .fault(
            json!({"platform": "x", "account": user, "endpoints": "upload",
                      "latency_ms": 1000}),
        )
        .await;
    let post = stack
        .schedule_with_media(&t, &account, "The launch, in full", &media)
        .await;
    let id = post["id"].as_str().unwrap();

    // Killed once X holds part of the video.
    stack
        .wait_for(
            Duration::from_secs(120),
            "X to receive part of the video",
            || async {
                let uploads = stack.fake_listing("uploads", "x", &user).await;
                let received = uploads.first()?["received_bytes"].as_u64()?;
                (received > 0 && received < video.len() as u64).then_some(())
            },
        )
        .await;
    let killed = stack
        .kill_mid_run("publisher", true, "the publisher mid-upload")
        .await;
    assert!(!killed.is_empty());

    let done = stack
        .wait_for(Duration::from_secs(600), "the video's tweet", || async {
            let p = stack.read_post(&t, id).await;
            matches!(p["status"].as_str(), Some("published" | "failed")).then_some(p)
        })
        .await;
    assert_eq!(done["status"], "published", "{done}");

    // One upload session, every byte in order; one tweet carrying it.
    let [upload] = stack
        .fake_listing("uploads", "x", &user)
        .await
        .try_into()
        .expect("one chunked upload");
    assert_eq!(upload["sha256"], hex::encode(sha2::Sha256::digest(&video)));
    assert_eq!(upload["finalized"], true);
    assert!(upload["appends"].as_u64().unwrap() >= 50, "{upload}");
    let [tweet] = stack
        .fake_posts("x", &user)
        .await
        .try_into()
        .expect("exactly one tweet");
    assert_eq!(tweet["text"], "The launch, in full");
    assert_eq!(tweet["media"], json!([upload["id"]]));
    assert_eq!(done["variants"][0]["platform_post_id"], tweet["id"]);

    // It went on from its checkpoint in later invocations: the audit trail says so.
    let entity = format!("variant:{id}:{account}");
    let (_, _, log) = stack
        .get(
            &format!("/v1/audit?action=publish.retrying&entity={entity}"),
            &t,
        )
        .await;
    let continued = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["new"]["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("continues in the next invocation"))
        })
        .count();
    assert!(continued >= 1, "{log}");
}
