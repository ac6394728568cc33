//! Media through the services: uploaded with every variant as checked, bad sets refused whole,
//! replacement after the check, storage outages, status, creation and edits.

use super::*;

impl World {
    /// Creates media and uploads `content` to it, as a client would through the URL.
    async fn upload(&self, declared: &str, content: Vec<u8>) -> MediaId {
        let (media, upload) = self
            .posts
            .media
            .create(
                &self.actor,
                NewMedia {
                    content_type: declared.into(),
                    file_name: "file.bin".into(),
                    size: content.len() as u64,
                },
            )
            .await
            .unwrap();
        assert_eq!(upload.method, "PUT");
        self.media.put(&media.key, content);
        media.id
    }

    async fn create_with_media(
        &self,
        accounts: &[&str],
        media: &[&MediaId],
    ) -> Result<Post, PostError> {
        self.posts
            .create(
                &self.actor,
                NewPost {
                    alt_text: Default::default(),
                    text: "with media".into(),
                    scheduled_at: None,
                    targets: accounts
                        .iter()
                        .map(|a| Target {
                            options: Default::default(),
                            account_id: AccountId((*a).into()),
                            text: None,
                            media: None,
                        })
                        .collect(),
                    media: media.iter().map(|m| (*m).clone()).collect(),
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: false,
                },
                "corr-m".into(),
            )
            .await
    }
}

#[tokio::test]
async fn media_is_uploaded_with_every_variant_exactly_as_checked() {
    let w = World::new(false).await;
    let photo = samples::png(1200, 630, 3000);
    let id = w.upload("image/png", photo.clone()).await;
    let post = w
        .create_with_media(&["acc_x", "acc_li", "acc_fb"], &[&id])
        .await
        .unwrap();
    let attached = &post.media[0];
    assert_eq!(
        (
            attached.size,
            attached.dimensions.map(|d| (d.width, d.height))
        ),
        (3000, Some((1200, 630)))
    );
    w.dispatcher.run_once().await.unwrap();
    for m in w.queue.take() {
        assert_eq!(w.deliver(&m, 1).await, Disposition::Done(Done::Published));
    }
    let uploads = w.platform.uploads.lock().unwrap().clone();
    assert_eq!(uploads.len(), 3, "one upload per platform");
    assert!(
        uploads
            .iter()
            .all(|(m, bytes)| *m == id.0 && *bytes == photo)
    );
    assert_eq!(w.get(&post).await.display_status(), "published");
}

#[tokio::test]
async fn a_bad_set_of_media_is_refused_whole_with_every_violation() {
    let w = World::new(false).await;
    let small = w.upload("image/png", samples::png(100, 100, 500)).await;
    let pdf_named_png = w.upload("image/png", samples::pdf(400)).await;
    let big = w
        .upload("image/jpeg", samples::jpeg(1200, 630, 4 * 1024 * 1024 + 1))
        .await;
    let (pending, _) = w
        .posts
        .media
        .create(
            &w.actor,
            NewMedia {
                content_type: "image/png".into(),
                file_name: "later.png".into(),
                size: 10,
            },
        )
        .await
        .unwrap();
    // Another tenant's media answers exactly like an unknown id.
    let theirs = MediaId("med_theirs".into());
    w.store
        .insert_media(
            &MediaRecord {
                tenant_id: TenantId("ten_b".into()),
                id: theirs.clone(),
                key: "media/ten_b/med_theirs".into(),
                file_name: "x.png".into(),
                declared_type: MediaType::Png,
                declared_size: 10,
                created_by: ApiKeyId("key_b".into()),
                created_at: w.clock.now(),
                upload_expires_at: w.clock.now() + time::Duration::minutes(15),
                inspection: None,
            },
            &MediaUsage {
                version: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.media
        .put("media/ten_b/med_theirs", samples::png(800, 800, 100));
    let err = w
        .create_with_media(
            &["acc_fb", "acc_li"],
            &[&small, &pdf_named_png, &big, &pending.id, &theirs],
        )
        .await
        .unwrap_err();
    let PostError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let got: Vec<(String, Option<String>, Option<Platform>, MediaRule)> = errors
        .iter()
        .map(|e| {
            let m = e.media.as_ref().unwrap();
            (
                e.field.clone(),
                m.media_id.as_ref().map(|i| i.0.clone()),
                m.platform,
                m.rule,
            )
        })
        .collect();
    let row =
        |f: &str, id: &MediaId, p: Option<Platform>, r| (f.to_owned(), Some(id.0.clone()), p, r);
    use Platform::{Facebook, Linkedin};
    assert_eq!(
        got,
        vec![
            row("media[0]", &small, Some(Facebook), MediaRule::TooSmall),
            row("media[1]", &pdf_named_png, None, MediaRule::TypeMismatch),
            row(
                "media[1]",
                &pdf_named_png,
                Some(Facebook),
                MediaRule::TypeNotAccepted
            ),
            row("media[2]", &big, Some(Facebook), MediaRule::TooLarge),
            row("media[3]", &pending.id, None, MediaRule::NotUploaded),
            row("media[4]", &theirs, None, MediaRule::Unknown),
            row("media[0]", &small, Some(Linkedin), MediaRule::TooSmall),
            // On LinkedIn the PDF (whatever it was called) is a document, which stands alone.
            row(
                "media[1]",
                &pdf_named_png,
                Some(Linkedin),
                MediaRule::NotAlone
            ),
        ],
        "{errors:#?}"
    );
    assert!(w.store.all_posts().is_empty(), "nothing written");
}

#[tokio::test]
async fn media_replaced_after_the_check_fails_the_variant_with_a_reason() {
    let w = World::new(false).await;
    let id = w.upload("image/png", samples::png(800, 800, 200)).await;
    let post = w.create_with_media(&["acc_x"], &[&id]).await.unwrap();
    // The upload URL still works: someone sends other bytes to it.
    w.media.put(&post.media[0].key, samples::png(800, 800, 999));
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    assert_eq!(w.deliver(&m, 1).await, Disposition::Done(Done::Failed));
    let v = w.variant(&post).await;
    assert_eq!(v.status, VariantStatus::Failed);
    let reason = v.last_error.unwrap().message;
    assert!(reason.contains("was replaced"), "{reason}");
    assert!(w.platform.published().is_empty(), "nothing was posted");
}

#[tokio::test]
async fn a_storage_outage_is_transient_and_never_trips_the_platform_breaker() {
    let w = World::new(false).await;
    let id = w.upload("image/png", samples::png(800, 800, 200)).await;
    let post = w.create_with_media(&["acc_x"], &[&id]).await.unwrap();
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.media.fail_next(1);
    assert!(matches!(w.deliver(&m, 1).await, Disposition::RetryAfter(_)));
    assert_eq!(w.variant(&post).await.status, VariantStatus::Retrying);
    let account = w
        .store
        .get_account(&w.actor.tenant_id, &AccountId("acc_x".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.breaker,
        Breaker::default(),
        "the platform did nothing wrong"
    );
    assert_eq!(w.deliver(&m, 2).await, Disposition::Done(Done::Published));
    assert_eq!(w.platform.uploads.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn media_status_follows_the_upload() {
    let w = World::new(false).await;
    let (media, upload) = w
        .posts
        .media
        .create(
            &w.actor,
            NewMedia {
                content_type: "image/gif".into(),
                file_name: "cat.gif".into(),
                size: 64,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        upload.expires_at,
        w.clock.now() + time::Duration::minutes(15)
    );
    assert!(
        upload
            .headers
            .contains(&("content-type".into(), "image/gif".into()))
    );
    let now = w.clock.now();
    let get = || w.posts.media.get(&w.actor.tenant_id, &media.id);
    assert_eq!(get().await.unwrap().status(now), MediaStatus::PendingUpload);
    w.media.put(&media.key, samples::gif(640, 480, 64));
    let seen = get().await.unwrap();
    assert_eq!(seen.status(now), MediaStatus::Uploaded);
    let i = seen.inspection.unwrap();
    assert_eq!((i.detected, i.size), (Some(MediaType::Gif), 64));
    assert_eq!(i.dimensions.map(|d| (d.width, d.height)), Some((640, 480)));
    // Seen once: a second look reads no bytes again.
    w.media.calls.reset();
    get().await.unwrap();
    assert_eq!(w.media.calls.snapshot().get("read_range"), None);

    let (never, _) = w
        .posts
        .media
        .create(
            &w.actor,
            NewMedia {
                content_type: "video/mp4".into(),
                file_name: "clip.mp4".into(),
                size: 10,
            },
        )
        .await
        .unwrap();
    w.clock.advance(time::Duration::minutes(16));
    let expired = w
        .posts
        .media
        .get(&w.actor.tenant_id, &never.id)
        .await
        .unwrap();
    assert_eq!(expired.status(w.clock.now()), MediaStatus::Expired);
}

#[tokio::test]
async fn creating_media_lists_every_problem_and_stores_nothing() {
    let w = World::new(false).await;
    let err = w
        .posts
        .media
        .create(
            &w.actor,
            NewMedia {
                content_type: "image/svg+xml".into(),
                file_name: "../etc/passwd".into(),
                size: 0,
            },
        )
        .await
        .unwrap_err();
    let MediaError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["content_type", "size", "file_name"]);
    let err = w
        .posts
        .media
        .create(
            &w.actor,
            NewMedia {
                content_type: "image/png".into(),
                file_name: "huge.png".into(),
                size: 17 * 1024 * 1024,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MediaError::Invalid(e) if e[0].message.contains("no platform accepts image/png larger than 16777216 bytes")),
        "{err:?}"
    );
    assert_eq!(w.store.calls.snapshot().get("media_insert"), None);
}

#[tokio::test]
async fn edits_check_media_again_against_the_new_targets() {
    let w = World::new(false).await;
    let small = w.upload("image/png", samples::png(320, 240, 300)).await;
    let post = w.create_with_media(&["acc_x"], &[&small]).await.unwrap();
    // X sets no minimum; moving the post to Facebook does.
    let err = w
        .posts
        .edit(
            &w.actor,
            &post.id,
            PostEdit {
                targets: Some(vec![Target {
                    options: Default::default(),
                    account_id: AccountId("acc_fb".into()),
                    text: None,
                    media: None,
                }]),
                ..PostEdit::default()
            },
        )
        .await
        .unwrap_err();
    let PostError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.field.as_str(), e.media.as_ref().map(|m| m.rule)))
            .collect::<Vec<_>>(),
        [("media[0]", Some(MediaRule::TooSmall))]
    );
    // With a media of its own for Facebook, the move goes through; X keeps nothing else.
    let large = w.upload("image/jpeg", samples::jpeg(1200, 630, 900)).await;
    let edited = w
        .posts
        .edit(
            &w.actor,
            &post.id,
            PostEdit {
                targets: Some(vec![Target {
                    options: Default::default(),
                    account_id: AccountId("acc_fb".into()),
                    text: None,
                    media: Some(vec![large.clone()]),
                }]),
                ..PostEdit::default()
            },
        )
        .await
        .unwrap();
    let fb = &edited.variants[&AccountId("acc_fb".into())];
    assert_eq!(
        edited
            .media_for(&fb.account_id)
            .iter()
            .map(|a| &a.media_id)
            .collect::<Vec<_>>(),
        [&large]
    );
    assert_eq!(edited.media[0].media_id, small, "the post's own media stay");
    let stored = w.get(&post).await;
    assert_eq!(stored, edited);
}

#[tokio::test]
async fn media_too_large_for_the_invocation_fail_at_once_with_a_reason() {
    let mut w = World::new(false).await;
    // 10 s for the post and 10 s + 1 s per 5 MB for each upload: 21 s fit one image, not two.
    w.publisher.config.invocation_budget = Some(Duration::from_secs(21));
    let one = w
        .upload("image/jpeg", samples::jpeg(1200, 630, 70_000))
        .await;
    let two = w
        .upload("image/jpeg", samples::jpeg(1200, 630, 80_000))
        .await;
    let too_big = w
        .create_with_media(&["acc_li"], &[&one, &two])
        .await
        .unwrap();
    let fits = w.create_with_media(&["acc_li"], &[&one]).await.unwrap();
    w.dispatcher.run_once().await.unwrap();
    let messages = w.queue.take();
    let message = |post: &Post| messages.iter().find(|m| m.post_id == post.id).unwrap();
    assert_eq!(
        w.deliver(message(&too_big), 1).await,
        Disposition::Done(Done::Failed)
    );
    let reason = w.variant(&too_big).await.last_error.unwrap().message;
    assert!(reason.contains("publisher's time limit (21 s"), "{reason}");
    assert_eq!(
        w.deliver(message(&fits), 1).await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(
        w.platform.uploads.lock().unwrap().len(),
        1,
        "only the one that fits"
    );
}

#[tokio::test]
async fn a_video_larger_than_one_invocation_continues_from_its_checkpoint_until_published() {
    let mut w = World::new(false).await;
    // 21 s fit one 4 MB chunk and the post, not the 10 MB video whole.
    w.publisher.config.invocation_budget = Some(Duration::from_secs(21));
    let video = samples::mp4(10 * 1024 * 1024);
    let media = w.upload("video/mp4", video.clone()).await;
    let post = w.create_with_media(&["acc_x"], &[&media]).await.unwrap();
    w.dispatcher.run_once().await.unwrap();
    let mut message = w.queue.take().pop().unwrap();
    // One chunk per invocation here: two deferrals (fresh copies, never counted toward the
    // DLQ, earlier failures forgiven), then the last chunk and the post.
    message.failures = 2;
    for sent in [4, 8] {
        let Disposition::Defer { delay, copy } = w.deliver(&message, 2).await else {
            panic!("the upload continues in a fresh copy");
        };
        assert_eq!(delay, Duration::ZERO);
        assert_eq!(
            copy.failures, 0,
            "no failure counted, earlier ones forgiven"
        );
        assert!(copy.continues_upload);
        let variant = w.variant(&post).await;
        assert_eq!(variant.status, VariantStatus::Retrying);
        assert_eq!(variant.progress, Some((sent * 1024 * 1024).to_string()));
        assert!(w.platform.published().is_empty());
        message = copy;
    }
    assert_eq!(
        w.deliver(&message, 1).await,
        Disposition::Done(Done::Published)
    );
    let uploads = w.platform.uploads.lock().unwrap().clone();
    assert_eq!(
        uploads,
        [(media.0.clone(), video)],
        "every byte, in order, once"
    );
    assert_eq!(w.platform.published().len(), 1);
    assert_eq!(
        w.variant(&post).await.progress,
        None,
        "cleared once published"
    );
}

#[tokio::test]
async fn a_continued_videos_thread_counts_its_next_steps_claims_as_any() {
    let w = World::new(false).await;
    let media = w.upload("video/mp4", samples::mp4(6 * 1024 * 1024)).await;
    let mut new = NewPost {
        alt_text: Default::default(),
        text: "the launch".into(),
        scheduled_at: None,
        targets: vec![Target {
            options: Default::default(),
            account_id: AccountId("acc_x".into()),
            text: None,
            media: None,
        }],
        media: vec![media],
        follow_ups: Default::default(),
        draft: false,
        local: None,
        next_slot: false,
    };
    new.follow_ups.thread = vec!["and more".into()];
    let post = w
        .posts
        .create(&w.actor, new, "corr-t".into())
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    let message = w.queue.take().pop().unwrap();
    let Disposition::Defer { copy, .. } = w.deliver(&message, 1).await else {
        panic!("the upload continues");
    };
    assert!(copy.continues_upload);
    // The last chunk, the tweet, and in the same invocation the reply: its claim counts.
    assert_eq!(
        w.deliver(&copy, 1).await,
        Disposition::Done(Done::Published)
    );
    let variant = w.variant(&post).await;
    assert_eq!((variant.step, variant.attempts), (1, 1), "{variant:?}");
    assert_eq!(w.platform.published().len(), 2);
}

#[tokio::test]
async fn an_upload_that_continues_without_moving_on_is_a_counted_failure() {
    let w = World::new(false).await;
    let media = w.upload("video/mp4", samples::mp4(6 * 1024 * 1024)).await;
    w.create_with_media(&["acc_fb"], &[&media]).await.unwrap();
    w.dispatcher.run_once().await.unwrap();
    let message = w.queue.take().pop().unwrap();
    *w.platform.stalled.lock().unwrap() = true;
    // The delivery ends at once as a real failure (the queue's receive count, and so the
    // DLQ, bounds it), and the platform is not blamed: the account's breaker is untouched.
    assert!(matches!(
        w.deliver(&message, 1).await,
        Disposition::RetryAfter(_)
    ));
    assert!(w.platform.published().is_empty());
    let account = w
        .store
        .get_account(&w.actor.tenant_id, &AccountId("acc_fb".into()))
        .await
        .unwrap()
        .unwrap();
    assert!(account.breaker.is_pristine(), "{:?}", account.breaker);
}

#[tokio::test]
async fn the_media_quota_holds_per_tenant_and_under_concurrent_creates() {
    let w = World::new(false).await;
    let mut media = w.posts.media.clone();
    media.quota = MediaQuota {
        max_bytes: 1_000,
        max_objects: 3,
    };
    let new = |size: u64| NewMedia {
        content_type: "image/png".into(),
        file_name: "a.png".into(),
        size,
    };
    let rules = |e: MediaError| match e {
        MediaError::Invalid(errors) => errors
            .iter()
            .map(|e| e.media.as_ref().unwrap().rule)
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    media.create(&w.actor, new(400)).await.unwrap();
    media.create(&w.actor, new(600)).await.unwrap();
    let refused = media.create(&w.actor, new(1)).await.unwrap_err();
    assert_eq!(rules(refused), [MediaRule::QuotaBytes]);
    // Another tenant's quota is its own.
    let other = Actor {
        tenant_id: TenantId("ten_other".into()),
        key_id: ApiKeyId("key_other".into()),
    };
    media.create(&other, new(1_000)).await.unwrap();
    // Ten creates at once for a third tenant: exactly the quota's three get through.
    let third = Actor {
        tenant_id: TenantId("ten_third".into()),
        key_id: ApiKeyId("key_third".into()),
    };
    let results = futures::future::join_all((0..10).map(|_| media.create(&third, new(10)))).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 3);
    for refused in results.into_iter().filter_map(Result::err) {
        assert_eq!(rules(refused), [MediaRule::QuotaObjects]);
    }
    let usage = w.store.media_usage(&third.tenant_id).await.unwrap();
    assert_eq!(usage.total(w.clock.now()).objects, 3);
}
