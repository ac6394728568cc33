//! Media on S3: presigned uploads, inspection once, publishing from the bucket, and the
//! bucket's own settings.

use super::*;
use aws_sdk_dynamodb::types::AttributeValue;

/// What a client does with `POST /v1/media`'s answer: PUT the bytes with exactly its headers.
async fn put_to(upload: &PresignedUpload, bytes: Vec<u8>) -> reqwest::StatusCode {
    let mut req = reqwest::Client::new().request(upload.method.parse().unwrap(), &upload.url);
    for (k, v) in &upload.headers {
        req = req.header(k, v);
    }
    req.body(bytes).send().await.unwrap().status()
}

#[tokio::test]
async fn media_uploads_through_a_presigned_url_and_reads_back_only_as_checked() {
    let env = Env::new().await;
    let key = format!("media/{}/med_it1", env.tenant);
    let photo = samples::png(1200, 630, 70_000);
    env.clients.calls.reset();
    let upload = env
        .media
        .presign_upload(
            &key,
            MediaType::Png.mime(),
            photo.len() as u64,
            Duration::from_secs(900),
            SystemClock.now(),
        )
        .await
        .unwrap();
    assert!(
        env.calls().is_empty(),
        "signing is local: {:?}",
        env.calls()
    );
    assert_eq!(upload.method, "PUT");
    assert!(upload.url.contains("X-Amz-Signature="), "{}", upload.url);
    assert!(upload.url.contains("X-Amz-Expires=900"), "{}", upload.url);
    let headers: HashMap<_, _> = upload.headers.iter().cloned().collect();
    assert_eq!(
        headers.get("content-type").map(String::as_str),
        Some("image/png")
    );
    assert_eq!(
        headers.get("content-length").map(String::as_str),
        Some("70000"),
        "the size is signed into the URL"
    );
    assert!(put_to(&upload, photo.clone()).await.is_success());

    let head = env.media.head(&key).await.unwrap().unwrap();
    assert_eq!(head.size, 70_000);
    let prefix = env
        .media
        .read_range(&key, &head.etag, 0, 64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prefix, photo[..64]);
    // A range from the middle, and one running past the end (its rest only).
    let middle = env.media.read_range(&key, &head.etag, 1_000, 4_096).await;
    assert_eq!(middle.unwrap().unwrap(), photo[1_000..5_096]);
    let tail = env.media.read_range(&key, &head.etag, 69_990, 64).await;
    assert_eq!(tail.unwrap().unwrap(), photo[69_990..]);
    assert_eq!(
        env.media
            .read_range(&key, "\"not-this-version\"", 0, 64)
            .await,
        Err(StoreError::Conflict)
    );
    let whole = env.media.open(&key, &head.etag).await.unwrap().unwrap();
    assert_eq!(whole.size, 70_000);
    assert_eq!(whole.collect().await.unwrap(), photo);

    let missing = format!("media/{}/med_none", env.tenant);
    assert_eq!(env.media.head(&missing).await.unwrap(), None);
    assert!(
        env.media
            .open(&missing, &head.etag)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        env.media
            .read_range(&missing, &head.etag, 0, 8)
            .await
            .unwrap(),
        None
    );

    // The same URL again, with other bytes: the checked version is gone.
    let mut other = samples::png(1200, 630, 70_000);
    other[70_000 - 20] = 1;
    assert!(put_to(&upload, other).await.is_success());
    assert!(matches!(
        env.media.open(&key, &head.etag).await,
        Err(StoreError::Conflict)
    ));
}

#[tokio::test]
async fn media_is_inspected_once_and_published_from_the_bucket() {
    let env = Env::new().await;
    let service = env.posts().media;
    let photo = samples::jpeg(1200, 630, 50_000);
    let (media, upload) = service
        .create(
            &env.actor(),
            NewMedia {
                content_type: "image/jpeg".into(),
                file_name: "launch.jpg".into(),
                size: photo.len() as u64,
            },
        )
        .await
        .unwrap();
    assert!(put_to(&upload, photo.clone()).await.is_success());

    env.clients.calls.reset();
    let found = service
        .resolve(&env.tenant, std::slice::from_ref(&media.id))
        .await
        .unwrap();
    let Resolved::Uploaded {
        attachment,
        declared,
    } = &found[&media.id]
    else {
        panic!("{found:?}")
    };
    assert_eq!(*declared, MediaType::Jpeg);
    assert_eq!(
        (
            attachment.media_type,
            attachment.dimensions.map(|d| (d.width, d.height))
        ),
        (MediaType::Jpeg, Some((1200, 630)))
    );
    let calls = env.calls();
    for op in [
        "DynamoDB.BatchGetItem",
        "S3.HeadObject",
        "S3.GetObject",
        "DynamoDB.UpdateItem",
    ] {
        assert_eq!(tally(&calls, op), (1, 0), "{op}: {calls:?}");
    }
    assert_eq!(calls.len(), 4, "{calls:?}");
    env.clients.calls.reset();
    service
        .resolve(&env.tenant, std::slice::from_ref(&media.id))
        .await
        .unwrap();
    let calls = env.calls();
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        ["DynamoDB.BatchGetItem", "S3.HeadObject"],
        "inspected once: {calls:?}"
    );

    let post = env
        .posts()
        .create(
            &env.actor(),
            NewPost {
                alt_text: Default::default(),
                text: "with a photo".into(),
                scheduled_at: None,
                targets: vec![Target {
                    options: Default::default(),
                    account_id: env.account.clone(),
                    text: None,
                    media: None,
                }],
                media: vec![media.id.clone()],
                follow_ups: Default::default(),
                draft: false,
                local: None,
                next_slot: false,
            },
            "corr-media".into(),
        )
        .await
        .unwrap();
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.media, post.media, "the snapshot round-trips");
    env.dispatcher().run_once().await.unwrap();
    let body: PublishMessage =
        serde_json::from_str(env.receive().await[0].body().unwrap()).unwrap();
    let platform = Arc::new(RecordingPlatform::default());
    env.clients.calls.reset();
    assert_eq!(
        env.publisher(platform.clone())
            .handle(&body, delivery(1))
            .await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(*platform.uploads.lock().unwrap(), vec![photo]);
    let calls = env.calls();
    assert_eq!(tally(&calls, "S3.GetObject"), (1, 0), "{calls:?}");
    assert_eq!(calls.len(), 3, "claim, load, media, outcome: {calls:?}");
}

#[tokio::test]
async fn the_media_bucket_is_private_encrypted_and_expires_uploads() {
    let env = Env::new().await;
    let s3 = &env.clients.s3;
    let bucket = &env.vars["HERALD_MEDIA_BUCKET"];
    let block = s3
        .get_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = s3
        .get_bucket_encryption()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(encryption.server_side_encryption_configuration().is_some());
    let lifecycle = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let days: Vec<_> = lifecycle
        .rules()
        .iter()
        .filter_map(|r| r.expiration().and_then(|e| e.days()))
        .collect();
    // Media outlive any post; imported files go after a week (template.yaml).
    assert_eq!(
        days,
        [herald_domain::media::MEDIA_RETENTION.whole_days() as i32, 7]
    );
}

#[tokio::test]
async fn the_media_quota_holds_under_concurrent_creates_and_a_recount_restores_it() {
    let env = Env::new().await;
    let mut service = env.posts().media;
    service.quota = MediaQuota {
        max_bytes: 10_000,
        max_objects: 3,
    };
    let new = || NewMedia {
        content_type: "image/png".into(),
        file_name: "a.png".into(),
        size: 100,
    };
    // Eight creates at once from as many tasks: the usage item's version lets three through.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let service = service.clone();
            let actor = env.actor();
            tokio::spawn(async move { service.create(&actor, new()).await })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(MediaError::Invalid(errors)) => {
                let rules: Vec<_> = errors
                    .iter()
                    .map(|e| e.media.as_ref().unwrap().rule)
                    .collect();
                assert_eq!(rules, [MediaRule::QuotaObjects]);
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(created, 3);
    let now = SystemClock.now();
    let usage = env.store.media_usage(&env.tenant).await.unwrap();
    assert_eq!(usage.total(now).objects, 3);
    assert_eq!(usage.total(now).bytes, 300);

    // A deployment from before the quota holds media records and no usage: the recount
    // writes it from the records, and a second run finds the same.
    env.clients
        .dynamodb
        .delete_item()
        .table_name(&env.vars["HERALD_TABLE"])
        .key("pk", AttributeValue::S(format!("TENANT#{}", env.tenant)))
        .key("sk", AttributeValue::S("MEDIAUSAGE".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(env.store.media_usage(&env.tenant).await.unwrap().version, 0);
    assert!(env.store.recount_media_usage(now).await.unwrap() >= 1);
    let recounted = env.store.media_usage(&env.tenant).await.unwrap();
    assert_eq!(recounted.total(now), usage.total(now));
    env.store.recount_media_usage(now).await.unwrap();
    assert_eq!(
        env.store.media_usage(&env.tenant).await.unwrap().total(now),
        usage.total(now)
    );
    let refused = service.create(&env.actor(), new()).await.unwrap_err();
    assert!(matches!(refused, MediaError::Invalid(_)), "{refused:?}");
}
