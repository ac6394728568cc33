//! The publish path on DynamoDB: post items, a publish's calls, dispatch claims, the claim's
//! gates (pause, rate window, breaker, app budgets), outcomes, deferrals, and accounts.

use super::*;

#[tokio::test]
async fn post_items_round_trip_and_stale_writes_lose() {
    let env = Env::new().await;
    let post = env.post_now("hello").await;
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, post);
    // A target's options and an image's alt text round trip too (absent, as in items written
    // before them, they read as none).
    let mut stale = post.clone();
    stale.version += 1;
    let variant = stale.variants.values_mut().next().unwrap();
    variant.options.x = Some(herald_domain::publishing::options::XOptions {
        reply_settings: Some(herald_domain::publishing::options::ReplySettings::Following),
    });
    variant.media_override = Some(vec![herald_domain::media::Attachment {
        media_id: herald_domain::ids::MediaId("med_1".into()),
        key: "media/t/med_1".into(),
        etag: "\"e\"".into(),
        media_type: herald_domain::media::MediaType::Png,
        size: 10,
        dimensions: None,
        file_name: "bike.png".into(),
        created_at: herald_domain::clock::to_millis(SystemClock.now()),
        alt_text: Some("A red bicycle".into()),
    }]);
    env.store.replace_post(&stale, post.version).await.unwrap();
    let stored = env.store.get_post(&env.tenant, &post.id).await.unwrap();
    assert_eq!(stored.as_ref(), Some(&stale));
    assert_eq!(
        env.store.replace_post(&stale, post.version).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        env.store.insert_post(&post).await,
        Err(StoreError::Conflict)
    );
    assert!(
        env.store
            .get_post(&TenantId("ten_other".into()), &post.id)
            .await
            .unwrap()
            .is_none(),
        "tenant-scoped keys"
    );
}

#[tokio::test]
async fn a_publish_costs_three_calls_and_a_duplicate_one_failed_write() {
    let env = Env::new().await;
    let post = env.post_now("hello dynamo").await;
    let report = env.dispatcher().run_once().await.unwrap();
    assert_eq!((report.claimed, report.messages_sent), (1, 1), "{report:?}");
    assert!(
        env.store
            .due_posts(SystemClock.now(), 10)
            .await
            .unwrap()
            .is_empty(),
        "confirmed: off the due index"
    );

    let messages = env.receive().await;
    assert_eq!(messages.len(), 1);
    let body: PublishMessage = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(body.correlation_id, "corr-it");
    let attr = messages[0].message_attributes().unwrap()["correlation_id"]
        .string_value()
        .unwrap();
    assert_eq!(attr, "corr-it");

    let platform = Arc::new(RecordingPlatform::default());
    let publisher = env.publisher(platform.clone());
    env.clients.calls.reset();
    assert_eq!(
        publisher.handle(&body, delivery(1)).await,
        Disposition::Done(Done::Published)
    );
    let calls = env.calls();
    assert_eq!(
        tally(&calls, "DynamoDB.TransactWriteItems"),
        (2, 0),
        "the gated claim, then the outcome with its audit record: {calls:?}"
    );
    assert_eq!(
        tally(&calls, "DynamoDB.BatchGetItem"),
        (1, 0),
        "the post, the account's token and the audit chain's head: {calls:?}"
    );
    assert_eq!(calls.len(), 2, "nothing else: {calls:?}");
    env.clients.calls.reset();
    assert_eq!(
        publisher.handle(&body, delivery(2)).await,
        Disposition::Done(Done::Duplicate)
    );
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "a duplicate costs one call: {calls:?}");
    assert_eq!(
        tally(&calls, "DynamoDB.TransactWriteItems"),
        (0, 1),
        "one failed conditional write: {calls:?}"
    );

    assert_eq!(
        *platform.published.lock().unwrap(),
        vec!["hello dynamo".to_owned()]
    );
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    let v = stored.variants.values().next().unwrap();
    assert_eq!(
        (v.status, v.attempts, v.platform_post_id.as_deref()),
        (VariantStatus::Published, 1, Some("pp-1"))
    );
}

#[tokio::test]
async fn dispatch_claims_respect_schedule_cancel_and_lease() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let future = env
        .posts()
        .create(
            &env.actor(),
            NewPost {
                alt_text: Default::default(),
                text: "later".into(),
                scheduled_at: Some(now + time::Duration::hours(1)),
                targets: vec![Target {
                    options: Default::default(),
                    account_id: env.account.clone(),
                    text: None,
                    media: None,
                }],
                media: vec![],
                follow_ups: Default::default(),
                draft: false,
                local: None,
                next_slot: false,
            },
            "c".into(),
        )
        .await
        .unwrap();
    let post_ref = |p: &Post| PostRef {
        tenant_id: p.tenant_id.clone(),
        post_id: p.id.clone(),
    };
    assert!(
        env.store
            .claim_for_dispatch(&post_ref(&future), now, "t1", now)
            .await
            .unwrap()
            .is_none(),
        "not due"
    );
    assert!(env.store.due_posts(now, 10).await.unwrap().is_empty());
    assert_eq!(
        env.store
            .due_posts(now + time::Duration::hours(2), 10)
            .await
            .unwrap(),
        vec![post_ref(&future)]
    );

    let due = env.post_now("now").await;
    env.posts().cancel(&env.actor(), &due.id).await.unwrap();
    assert!(
        env.store
            .claim_for_dispatch(&post_ref(&due), now + time::Duration::seconds(1), "t2", now)
            .await
            .unwrap()
            .is_none(),
        "cancelled"
    );

    let due = env.post_now("now again").await;
    let later = SystemClock.now() + time::Duration::seconds(1);
    let lease = later + time::Duration::seconds(60);
    let claimed = env
        .store
        .claim_for_dispatch(&post_ref(&due), later, "t3", lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.status, PostStatus::Dispatched);
    assert!(
        env.store
            .claim_for_dispatch(&post_ref(&due), later, "t4", lease)
            .await
            .unwrap()
            .is_none(),
        "lease held"
    );
    // Never confirmed: due again once the lease ends, and claimable by a new token.
    assert!(
        env.store
            .due_posts(lease, 10)
            .await
            .unwrap()
            .contains(&post_ref(&due))
    );
    assert!(
        env.store
            .claim_for_dispatch(
                &post_ref(&due),
                lease,
                "t5",
                lease + time::Duration::seconds(60)
            )
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        env.store.confirm_dispatch(&post_ref(&due), "t3").await,
        Err(StoreError::Conflict),
        "stale token"
    );
    env.store
        .confirm_dispatch(&post_ref(&due), "t5")
        .await
        .unwrap();
}

#[tokio::test]
async fn outcomes_need_the_claiming_attempt() {
    let env = Env::new().await;
    let v = env.variant_now("x").await;
    let now = SystemClock.now();
    env.store
        .claim_for_publish(&v, "attempt-1", &gate(now))
        .await
        .unwrap();
    let loaded = env.store.load_for_publish(&v).await.unwrap();
    assert_eq!(
        loaded.post.variants[&env.account].status,
        VariantStatus::Publishing
    );
    assert_eq!(loaded.account.unwrap().id, env.account);
    assert_eq!(loaded.audit_head, ChainHead::default());
    let audit = |head: &ChainHead| {
        AuditRecord::chain(
            AuditEntry {
                tenant_id: env.tenant.clone(),
                entity: variant_entity(&v),
                action: "publish.unknown".into(),
                actor: "system:publisher".into(),
                old: None,
                new: None,
                ip: None,
                user_agent: None,
                at: now,
            },
            head,
        )
    };
    assert_eq!(
        env.store
            .claim_for_publish(&v, "attempt-2", &gate(now))
            .await,
        Err(ClaimRejected::Held {
            until: now + time::Duration::minutes(2)
        }),
        "a duplicate while attempt-1 holds it waits out the lease (told without a read)"
    );
    let err = VariantError {
        kind: FailureKind::Ambiguous,
        message: "no answer".into(),
        platform_code: None,
        at: now,
    };
    assert_eq!(
        env.store
            .record_outcome(
                &v,
                "attempt-2",
                &VariantOutcome::Unknown(err.clone()),
                true,
                &audit(&ChainHead::default()),
                None,
            )
            .await,
        Err(StoreError::Conflict)
    );
    env.store
        .record_outcome(
            &v,
            "attempt-1",
            &VariantOutcome::Unknown(err),
            true,
            &audit(&ChainHead::default()),
            None,
        )
        .await
        .unwrap();
    env.store
        .claim_for_publish(&v, "attempt-3", &gate(now))
        .await
        .unwrap();
    let again = env.store.load_for_publish(&v).await.unwrap();
    assert_eq!(
        again.audit_head.seq, 1,
        "the outcome's audit record moved the chain"
    );
    let variant = &again.post.variants[&env.account];
    assert_eq!(variant.attempts, 2, "an unknown variant is claimable again");
    assert!(variant.lookup, "and is looked up before anything is sent");
    // A resumable upload's continuation claims without counting an attempt.
    env.store
        .record_outcome(
            &v,
            "attempt-3",
            &VariantOutcome::Retrying(VariantError {
                kind: FailureKind::Transient,
                message: "the upload continues".into(),
                platform_code: None,
                at: now,
            }),
            true,
            &audit(&again.audit_head),
            None,
        )
        .await
        .unwrap();
    let continuation = ClaimGate {
        counts_attempt: false,
        ..gate(now)
    };
    env.store
        .claim_for_publish(&v, "attempt-4", &continuation)
        .await
        .unwrap();
    let continued = env.store.load_for_publish(&v).await.unwrap();
    assert_eq!(continued.post.variants[&env.account].attempts, 2);
    let missing = VariantRef {
        account_id: AccountId("acc_nope".into()),
        ..v
    };
    assert_eq!(
        env.store.claim_for_publish(&missing, "a", &gate(now)).await,
        Err(ClaimRejected::NotClaimable)
    );
}

/// The claim's gates on DynamoDB: a committed pause, a full rate window and an open circuit
/// each hold the claim (and say why), and the half-open probe is taken exactly once.
#[tokio::test]
async fn the_claim_respects_pause_rate_window_and_breaker() {
    let env = Env::new().await;
    let post = env.post_now("gated").await;
    env.dispatcher().run_once().await.unwrap();
    let v = VariantRef {
        tenant_id: env.tenant.clone(),
        post_id: post.id.clone(),
        account_id: env.account.clone(),
    };
    let now = SystemClock.now();

    // A pause of every platform, then of another platform only.
    let crisis = Crisis {
        tenant_id: env.tenant.clone(),
        platforms: vec![],
        reason: "storm".into(),
        started_by: ApiKeyId("key_t".into()),
        started_at: now,
        expires_at: now + time::Duration::hours(1),
    };
    env.store.put_crisis(&crisis).await.unwrap();
    assert_eq!(
        env.store.claim_for_publish(&v, "a1", &gate(now)).await,
        Err(ClaimRejected::Paused {
            until: crisis.expires_at
        })
    );
    let x_only = Crisis {
        platforms: vec![Platform::X],
        ..crisis.clone()
    };
    env.store.put_crisis(&x_only).await.unwrap();
    assert_eq!(
        env.store.get_crisis(&env.tenant).await.unwrap(),
        Some(x_only)
    );

    // A full window holds the claim until the window ends, and counts nothing.
    let window = Window {
        limit: 1,
        period: time::Duration::hours(1),
    };
    let slot = window.slot(env.account.as_str(), now);
    let full = ClaimGate {
        account_window: Some(slot.clone()),
        ..gate(now)
    };
    assert_eq!(
        env.store.reserve(&slot, 1, now).await.unwrap().granted,
        1,
        "the window's only call"
    );
    assert_eq!(
        env.store.claim_for_publish(&v, "a2", &full).await,
        Err(ClaimRejected::RateLimited {
            until: slot.ends_at
        })
    );

    // Five failures open the circuit; the claim sees the breaker as stored.
    let policy = BreakerPolicy::default();
    let breaker = env.fail(policy.failure_threshold, policy, now).await;
    assert_eq!(breaker.state, BreakerState::Open);
    match env.store.claim_for_publish(&v, "a3", &gate(now)).await {
        Err(ClaimRejected::Breaker(b)) => assert_eq!(b, breaker),
        other => panic!("expected the breaker to hold the claim, got {other:?}"),
    }
    // Past the reset, one probe goes through and a second is held.
    let later = now + policy.reset_after;
    let probe = ClaimGate {
        breaker: BreakerGate::Probe {
            lease_until: later + policy.probe_lease,
        },
        ..gate(later)
    };
    env.store
        .claim_for_publish(&v, "probe", &probe)
        .await
        .unwrap();
    let other = VariantRef {
        post_id: env.post_now("second").await.id,
        ..v.clone()
    };
    env.dispatcher().run_once().await.unwrap();
    assert!(matches!(
        env.store.claim_for_publish(&other, "probe-2", &probe).await,
        Err(ClaimRejected::Breaker(b)) if b.state == BreakerState::HalfOpen
    ));
    // The probe's success closes the circuit in the outcome's own write.
    env.record_published(&v, "probe", later, BreakerReset::Probe)
        .await;
    assert!(env.breaker().await.is_pristine());
    env.store
        .claim_for_publish(&other, "after-close", &gate(later))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_success_forgets_failures_committed_while_it_was_in_flight() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let policy = BreakerPolicy::default();
    let v = env.variant_now("in flight").await;
    env.store
        .claim_for_publish(&v, "a1", &gate(now))
        .await
        .unwrap();
    // Another attempt's failures land after this one read a pristine breaker.
    env.fail(2, policy, now).await;
    env.clients.calls.reset();
    env.record_published(&v, "a1", now, BreakerReset::IfClosed)
        .await;
    assert_eq!(
        tally(&env.calls(), "DynamoDB.TransactWriteItems"),
        (1, 0),
        "outcome, audit and reset in one write"
    );
    assert!(env.breaker().await.is_pristine());

    // A circuit that opened meanwhile stays open; the outcome is recorded all the same.
    let w = env.variant_now("while open").await;
    env.store
        .claim_for_publish(&w, "b1", &gate(now))
        .await
        .unwrap();
    env.fail(policy.failure_threshold, policy, now).await;
    env.record_published(&w, "b1", now, BreakerReset::IfClosed)
        .await;
    assert_eq!(env.breaker().await.state, BreakerState::Open);
    let post = env.store.load_for_publish(&w).await.unwrap().post;
    assert_eq!(post.variants[&env.account].status, VariantStatus::Published);
}

#[tokio::test]
async fn app_budgets_are_shared_and_a_block_holds_them() {
    let env = Env::new().await;
    let now = SystemClock.now();
    let window = Window {
        limit: 5,
        period: time::Duration::hours(1),
    };
    let slot = window.slot(format!("app#facebook-{}", env.tenant), now);
    env.clients.calls.reset();
    let first = env.store.reserve(&slot, 3, now).await.unwrap();
    assert_eq!((first.granted, first.retry_at), (3, None));
    let second = env.store.reserve(&slot, 3, now).await.unwrap();
    assert_eq!(
        (second.granted, second.retry_at),
        (2, Some(slot.ends_at)),
        "what is left, no more"
    );
    let third = env.store.reserve(&slot, 1, now).await.unwrap();
    assert_eq!(third.granted, 0);
    let calls = env.calls();
    assert_eq!(tally(&calls, "DynamoDB.Query"), (0, 0), "{calls:?}");

    let facebook = RateLimits::default()
        .app_slot(Platform::Facebook, now)
        .unwrap();
    env.store
        .block_app(Platform::Facebook, now + time::Duration::minutes(10))
        .await
        .unwrap();
    // An earlier block never shortens a later one.
    env.store
        .block_app(Platform::Facebook, now + time::Duration::minutes(1))
        .await
        .unwrap();
    let held = env.store.reserve(&facebook, 1, now).await.unwrap();
    assert_eq!(
        (held.granted, held.retry_at),
        (0, Some(now + time::Duration::minutes(10)))
    );
}

#[tokio::test]
async fn deferrals_send_a_fresh_delayed_copy_and_dead_letters_carry_the_reason() {
    let env = Env::new().await;
    let message = PublishMessage {
        tenant_id: env.tenant.clone(),
        post_id: PostId("post_x".into()),
        account_id: env.account.clone(),
        platform: Platform::Facebook,
        correlation_id: "c".into(),
        failures: 2,
        continues_upload: false,
    };
    env.queue
        .send_delayed(&message, Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(env.receive().await.is_empty(), "not before its delay");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let got = env.receive().await;
    assert_eq!(got.len(), 1);
    let copy: PublishMessage = serde_json::from_str(got[0].body().unwrap()).unwrap();
    assert_eq!(copy, message);

    env.queue
        .dead_letter(&message, "503 five times")
        .await
        .unwrap();
    let dlq = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&env.vars["HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE"])
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    let m = &dlq.messages()[0];
    assert_eq!(
        m.message_attributes().unwrap()["dead_letter_reason"].string_value(),
        Some("503 five times")
    );
}

#[tokio::test]
async fn disconnecting_an_account_returns_it_once() {
    let env = Env::new().await;
    let removed = env
        .store
        .delete_account(&env.tenant, &env.account)
        .await
        .unwrap()
        .expect("the account was there");
    assert_eq!(removed.id, env.account);
    assert!(
        env.store
            .delete_account(&env.tenant, &env.account)
            .await
            .unwrap()
            .is_none(),
        "nothing to remove the second time"
    );
    assert!(
        env.store
            .get_account(&env.tenant, &env.account)
            .await
            .unwrap()
            .is_none()
    );
}

/// A first comment on DynamoDB: the post and its comment each take their own claim and
/// outcome; the comment's id is appended to the variant and answers the post.
#[tokio::test]
async fn a_first_comment_is_a_second_step_with_its_own_claim() {
    let env = Env::new().await;
    let post = env
        .posts()
        .create(
            &env.actor(),
            NewPost {
                alt_text: Default::default(),
                text: "the post".into(),
                scheduled_at: None,
                targets: vec![Target {
                    options: Default::default(),
                    account_id: env.account.clone(),
                    text: None,
                    media: None,
                }],
                media: vec![],
                follow_ups: herald_domain::publishing::posts::FollowUps {
                    thread: vec![],
                    first_comment: Some("the comment".into()),
                },
                draft: false,
                local: None,
                next_slot: false,
            },
            "corr-it".into(),
        )
        .await
        .unwrap();
    env.dispatcher().run_once().await.unwrap();
    let messages = env.receive().await;
    let body: PublishMessage = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    let platform = Arc::new(RecordingPlatform::default());
    let publisher = env.publisher(platform.clone());
    env.clients.calls.reset();
    assert_eq!(
        publisher.handle(&body, delivery(1)).await,
        Disposition::Done(Done::Published)
    );
    let calls = env.calls();
    assert_eq!(
        tally(&calls, "DynamoDB.TransactWriteItems"),
        (4, 0),
        "a claim and an outcome per step: {calls:?}"
    );
    assert_eq!(
        *platform.published.lock().unwrap(),
        ["the post", "the comment"]
    );
    assert_eq!(
        *platform.parents.lock().unwrap(),
        [None, Some("pp-1".to_owned())]
    );
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.first_comment.as_deref(), Some("the comment"));
    let v = stored.variants.values().next().unwrap();
    assert_eq!(
        (v.status, v.step, v.platform_post_id.as_deref()),
        (VariantStatus::Published, 1, Some("pp-1"))
    );
    assert_eq!(v.follow_up_ids, ["pp-2"]);
    // A duplicate delivery finds nothing left to claim.
    assert_eq!(
        publisher.handle(&body, delivery(2)).await,
        Disposition::Done(Done::Duplicate)
    );
    assert_eq!(platform.published.lock().unwrap().len(), 2);
}
