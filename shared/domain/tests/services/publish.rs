//! Publishing a due post: once per target, leases, cancels and edits before the claim,
//! stale writes, failures by kind, lookups after an ambiguous answer, deadlines, and the claim's
//! gates (pause, account window, app budget, breaker, a platform's own limit).

use super::*;

#[tokio::test]
async fn a_due_post_is_published_once_per_target() {
    let w = World::new(false).await;
    let post = w.create("hello", 10, &["acc_x", "acc_li"]).await;
    assert_eq!(
        w.dispatcher.run_once().await.unwrap().claimed,
        0,
        "not due yet"
    );
    w.clock.advance(time::Duration::seconds(10));
    let report = w.dispatcher.run_once().await.unwrap();
    assert_eq!((report.claimed, report.messages_sent), (1, 2));
    let messages = w.queue.take();
    for m in &messages {
        assert_eq!(w.deliver(m, 1).await, Disposition::Done(Done::Published));
        // A duplicate delivery publishes nothing more.
        assert_eq!(w.deliver(m, 2).await, Disposition::Done(Done::Duplicate));
    }
    assert_eq!(w.platform.published().len(), 2);
    let stored = w.get(&post).await;
    assert_eq!(stored.display_status(), "published");
    assert!(
        stored
            .variants
            .values()
            .all(|v| v.attempts == 1 && v.platform_post_id.is_some())
    );
    assert_eq!(
        w.dispatcher.run_once().await.unwrap().due,
        0,
        "confirmed dispatches leave the due index"
    );
}

#[tokio::test]
async fn an_unconfirmed_dispatch_is_sent_again_after_its_lease() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.queue.fail_next(1);
    let report = w.dispatcher.run_once().await.unwrap();
    assert_eq!(report.send_failures, 1);
    assert_eq!(
        w.dispatcher.run_once().await.unwrap().claimed,
        0,
        "lease still running"
    );
    w.clock
        .advance(DispatchConfig::default().lease + time::Duration::seconds(1));
    assert_eq!(w.dispatcher.run_once().await.unwrap().messages_sent, 1);
    w.deliver_all().await;
    assert_eq!(w.get(&post).await.display_status(), "published");
    assert_eq!(w.platform.published().len(), 1);
}

#[tokio::test]
async fn a_cancel_before_the_claim_wins_even_after_dispatch() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let cancelled = w.posts.cancel(&w.actor, &post.id).await.unwrap();
    assert_eq!(cancelled.status, PostStatus::Cancelled);
    assert_eq!(
        w.deliver_all().await,
        vec![Disposition::Done(Done::Duplicate)]
    );
    assert!(w.platform.published().is_empty());
}

#[tokio::test]
async fn an_edit_before_the_claim_is_what_gets_published() {
    let w = World::new(false).await;
    let post = w.create("first", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    w.posts
        .edit(
            &w.actor,
            &post.id,
            PostEdit {
                text: Some("second".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // The old message finds the post scheduled again, not dispatched: nothing happens.
    assert_eq!(
        w.deliver_all().await,
        vec![Disposition::Done(Done::Duplicate)]
    );
    w.dispatcher.run_once().await.unwrap();
    w.deliver_all().await;
    assert_eq!(
        w.platform.published(),
        vec![(Platform::X, "ext-acc_x".into(), "second".into())]
    );
}

#[tokio::test]
async fn edits_and_cancels_after_a_claim_are_refused() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    w.deliver_all().await;
    let err = w.posts.cancel(&w.actor, &post.id).await.unwrap_err();
    assert!(matches!(err, PostError::InvalidState(_)), "{err:?}");
    let err = w
        .posts
        .edit(
            &w.actor,
            &post.id,
            PostEdit {
                text: Some("x".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PostError::InvalidState(_)), "{err:?}");
}

#[tokio::test]
async fn a_stale_write_loses_and_the_service_decides_again() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    let mut stale = post.clone();
    stale.text = "stale".into();
    stale.version += 1;
    w.dispatcher.run_once().await.unwrap(); // bumps the version
    assert_eq!(
        w.store.replace_post(&stale, post.version).await,
        Err(herald_domain::StoreError::Conflict)
    );
}

#[tokio::test]
async fn permanent_and_auth_errors_fail_with_the_platform_reason() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x", "acc_li"]).await;
    w.dispatcher.run_once().await.unwrap();
    w.platform.then(Err(PlatformError::Permanent {
        message: "X answered 403: duplicate content".into(),
        code: Some("187".into()),
    }));
    w.platform.then(Err(PlatformError::Auth {
        message: "token revoked".into(),
        code: Some("190".into()),
    }));
    let d = w.deliver_all().await;
    assert_eq!(d, vec![Disposition::Done(Done::Failed); 2]);
    let stored = w.get(&post).await;
    assert_eq!(stored.display_status(), "failed");
    let errors: Vec<_> = stored
        .variants
        .values()
        .map(|v| v.last_error.clone().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.kind == FailureKind::Permanent && e.message.contains("duplicate"))
    );
    assert!(errors.iter().any(|e| e.kind == FailureKind::Auth));
}

#[tokio::test]
async fn transient_errors_retry_then_dead_letter_on_the_last_delivery() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    for _ in 0..3 {
        w.platform.then(Err(PlatformError::Transient {
            message: "X answered 503".into(),
            code: None,
            retry_after: None,
        }));
    }
    assert!(matches!(w.deliver(&m, 1).await, Disposition::RetryAfter(_)));
    assert_eq!(
        w.get(&post).await.variants.values().next().unwrap().status,
        VariantStatus::Retrying
    );
    assert!(matches!(w.deliver(&m, 2).await, Disposition::RetryAfter(_)));
    assert_eq!(w.deliver(&m, 3).await, Disposition::DeadLetter);
    let v = w.get(&post).await.variants.values().next().unwrap().clone();
    assert_eq!((v.status, v.attempts), (VariantStatus::DeadLettered, 3));
    assert_eq!(v.last_error.unwrap().message, "X answered 503");
    // Requeued from the DLQ, it is claimable again and publishes once.
    assert_eq!(w.deliver(&m, 1).await, Disposition::Done(Done::Published));
    assert_eq!(w.platform.published().len(), 1);
}

#[tokio::test]
async fn an_ambiguous_failure_is_looked_up_and_adopted_never_sent_twice() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.platform.then_created_but_lost();
    assert!(matches!(w.deliver(&m, 1).await, Disposition::RetryAfter(_)));
    let v = w.variant(&post).await;
    assert_eq!((v.status, v.lookup), (VariantStatus::Unknown, true));
    assert_eq!(w.get(&post).await.display_status(), "needs_attention");
    // The redelivery looks the post up first, finds it and adopts it.
    assert_eq!(w.deliver(&m, 2).await, Disposition::Done(Done::Adopted));
    assert_eq!(w.platform.published().len(), 1, "never sent twice");
    assert_eq!(w.platform.lookups(), 1);
    let v = w.variant(&post).await;
    assert_eq!(
        (v.status, v.platform_post_id.as_deref(), v.lookup),
        (VariantStatus::Published, Some("p1"), false)
    );
}

#[tokio::test]
async fn an_ambiguous_failure_that_created_nothing_is_sent_once_after_the_lookup() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.platform.then(Err(PlatformError::Ambiguous {
        message: "timeout".into(),
    }));
    assert!(matches!(w.deliver(&m, 1).await, Disposition::RetryAfter(_)));
    assert_eq!(w.deliver(&m, 2).await, Disposition::Done(Done::Published));
    assert_eq!((w.platform.published().len(), w.platform.lookups()), (1, 1));
    assert_eq!(w.variant(&post).await.status, VariantStatus::Published);
}

#[tokio::test]
async fn within_one_delivery_transient_failures_retry_with_backoff() {
    let mut w = World::new(false).await;
    w.publisher.config.max_attempts = 6;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    for _ in 0..2 {
        w.platform.then(Err(PlatformError::Transient {
            message: "X answered 503".into(),
            code: None,
            retry_after: None,
        }));
    }
    let before = w.clock.now();
    assert_eq!(w.deliver(&m, 1).await, Disposition::Done(Done::Published));
    // Half of 500 ms, then half of 1 s (the entropy is fixed at one half).
    assert_eq!(w.clock.now() - before, time::Duration::milliseconds(750));
    let v = w.variant(&post).await;
    assert_eq!((v.status, v.attempts), (VariantStatus::Published, 1));
}

#[tokio::test]
async fn no_call_starts_that_cannot_finish_before_the_deadline() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    let late = Delivery {
        receive_count: 1,
        deadline: w.clock.now() + time::Duration::seconds(5),
    };
    assert!(matches!(
        w.publisher.handle(&m, late).await,
        Disposition::RetryAfter(_)
    ));
    assert!(w.platform.published().is_empty());
    assert_eq!(w.variant(&post).await.status, VariantStatus::Retrying);
}

#[tokio::test]
async fn a_pause_holds_claims_without_counting_and_lifting_it_releases_them() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    let crisis = Crisis {
        tenant_id: post.tenant_id.clone(),
        platforms: vec![Platform::X],
        reason: "storm".into(),
        started_by: ApiKeyId("key_1".into()),
        started_at: w.clock.now(),
        expires_at: w.clock.now() + time::Duration::hours(24),
    };
    w.store.put_crisis(&crisis).await.unwrap();
    let Disposition::Defer { delay, copy } = w.deliver(&m, 3).await else {
        panic!("a paused variant is deferred")
    };
    assert_eq!(delay, w.publisher.config.pause_recheck);
    assert_eq!(copy.failures, 2, "the copy carries earlier real failures");
    let v = w.variant(&post).await;
    assert_eq!((v.status, v.attempts), (VariantStatus::Pending, 0));
    w.store.delete_crisis(&post.tenant_id).await.unwrap();
    assert_eq!(
        w.deliver(&copy, 1).await,
        Disposition::Done(Done::Published)
    );
}

#[tokio::test]
async fn a_full_account_window_defers_until_it_ends() {
    let mut w = World::new(false).await;
    w.publisher.config.limits.per_account.insert(
        Platform::X,
        Window {
            limit: 1,
            period: time::Duration::minutes(15),
        },
    );
    w.create("one", 0, &["acc_x"]).await;
    w.create("two", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let dispositions = w.deliver_all().await;
    assert_eq!(dispositions[0], Disposition::Done(Done::Published));
    let Disposition::Defer { delay, copy } = &dispositions[1] else {
        panic!("{dispositions:?}")
    };
    assert_eq!(*delay, Duration::from_secs(15 * 60), "to the window's end");
    assert_eq!(copy.failures, 0);
    w.clock.advance(time::Duration::minutes(15));
    assert_eq!(w.deliver(copy, 1).await, Disposition::Done(Done::Published));
}

/// Account ids come from the platform's id alone, so two tenants connecting the same X account
/// share an id: each still spends only its own window, and one cannot exhaust the other's.
#[tokio::test]
async fn each_tenant_spends_its_own_window_on_a_shared_account() {
    let mut w = World::new(false).await;
    w.publisher.config.limits.per_account.insert(
        Platform::X,
        Window {
            limit: 1,
            period: time::Duration::minutes(15),
        },
    );
    let b = TenantId("ten_b".into());
    w.store
        .create_tenant(&Tenant {
            id: b.clone(),
            name: "b".into(),
            settings: TenantSettings::default(),
            created_at: w.clock.now(),
            suspended: None,
        })
        .await
        .unwrap();
    let mut shared = w
        .store
        .get_account(&w.actor.tenant_id, &AccountId("acc_x".into()))
        .await
        .unwrap()
        .unwrap();
    shared.tenant_id = b.clone();
    w.store.upsert_account(&shared).await.unwrap();
    w.create("a's", 0, &["acc_x"]).await;
    let b_actor = Actor {
        tenant_id: b,
        key_id: ApiKeyId("key_b".into()),
    };
    w.posts
        .create(
            &b_actor,
            NewPost {
                alt_text: Default::default(),
                text: "b's".into(),
                scheduled_at: Some(w.clock.now()),
                targets: vec![Target {
                    options: Default::default(),
                    account_id: AccountId("acc_x".into()),
                    text: None,
                    media: None,
                }],
                media: vec![],
                follow_ups: Default::default(),
                draft: false,
                local: None,
                next_slot: false,
            },
            "corr-b".into(),
        )
        .await
        .unwrap();
    w.dispatcher.run_once().await.unwrap();
    let dispositions = w.deliver_all().await;
    assert_eq!(
        dispositions,
        [
            Disposition::Done(Done::Published),
            Disposition::Done(Done::Published)
        ],
        "neither tenant's window was the other's"
    );
}

#[tokio::test]
async fn the_app_budget_is_reserved_once_per_batch() {
    let mut w = World::new(false).await;
    w.publisher.config.limits.per_app.insert(
        Platform::X,
        Window {
            limit: 2,
            period: time::Duration::hours(1),
        },
    );
    for i in 0..3 {
        w.create(&format!("post {i}"), 0, &["acc_x"]).await;
    }
    w.dispatcher.run_once().await.unwrap();
    let records: Vec<_> = w
        .queue
        .take()
        .into_iter()
        .map(|m| (m, w.delivery(1)))
        .collect();
    w.store.calls.reset();
    let out = w.publisher.handle_batch(&records, 4).await;
    let published = out
        .iter()
        .filter(|d| **d == Disposition::Done(Done::Published))
        .count();
    assert_eq!(published, 2);
    assert!(matches!(out[2], Disposition::Defer { .. }), "{out:?}");
    assert_eq!(w.store.calls.snapshot()["reserve"], 1);
}

#[tokio::test]
async fn the_breaker_opens_after_five_failures_and_admits_one_probe() {
    let mut w = World::new(false).await;
    w.publisher.config.max_receive_count = 50;
    let mut messages = Vec::new();
    for i in 0..7 {
        w.create(&format!("post {i}"), 0, &["acc_x"]).await;
    }
    w.dispatcher.run_once().await.unwrap();
    messages.extend(w.queue.take());
    let fail = || PlatformError::Transient {
        message: "X answered 503".into(),
        code: None,
        retry_after: None,
    };
    for _ in 0..6 {
        w.platform.then(Err(fail()));
    }
    for m in &messages[..5] {
        assert!(matches!(w.deliver(m, 1).await, Disposition::RetryAfter(_)));
    }
    // Open: the next claim is held without counting, until the reset.
    let Disposition::Defer { delay, .. } = w.deliver(&messages[5], 1).await else {
        panic!("an open circuit defers")
    };
    assert_eq!(delay, Duration::from_secs(300));
    w.clock.advance(time::Duration::minutes(5));
    // One probe goes; it fails and the circuit opens again.
    assert!(matches!(
        w.deliver(&messages[5], 1).await,
        Disposition::RetryAfter(_)
    ));
    assert!(matches!(
        w.deliver(&messages[6], 1).await,
        Disposition::Defer { .. }
    ));
    w.clock.advance(time::Duration::minutes(5));
    // The next probe succeeds and closes it for everyone.
    assert_eq!(
        w.deliver(&messages[6], 1).await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(
        w.deliver(&messages[0], 2).await,
        Disposition::Done(Done::Published)
    );
}

/// A success forgets the failures committed while it was in flight, so failures interleaved
/// with successes never add up to an open circuit.
#[tokio::test]
async fn a_success_forgets_failures_committed_while_it_was_in_flight() {
    let mut w = World::new(false).await;
    w.publisher.config.max_receive_count = 50;
    for i in 0..2 {
        w.create(&format!("post {i}"), 0, &["acc_x"]).await;
    }
    w.dispatcher.run_once().await.unwrap();
    let messages = w.queue.take();
    let go = Arc::new(tokio::sync::Notify::new());
    w.platform.script.lock().unwrap().extend([
        Step::After(go.clone()),
        Step::Fail(PlatformError::Transient {
            message: "X answered 503".into(),
            code: None,
            retry_after: None,
        }),
    ]);
    let slow = w.deliver(&messages[0], 1);
    let failing = async {
        let d = w.deliver(&messages[1], 1).await;
        go.notify_one();
        d
    };
    let (slow, failing) = tokio::join!(slow, failing);
    assert!(matches!(failing, Disposition::RetryAfter(_)), "{failing:?}");
    assert_eq!(slow, Disposition::Done(Done::Published));
    let account = w
        .store
        .get_account(&w.actor.tenant_id, &AccountId("acc_x".into()))
        .await
        .unwrap()
        .unwrap();
    assert!(account.breaker.is_pristine(), "{:?}", account.breaker);
}

/// `x-rate-limit-remaining: 0` holds the account's next claims until the platform's reset.
#[tokio::test]
async fn a_platform_saying_no_calls_left_holds_the_account_until_its_reset() {
    let w = World::new(false).await;
    w.create("last call", 0, &["acc_x"]).await;
    w.create("next", 0, &["acc_x"]).await;
    w.create("elsewhere", 0, &["acc_li"]).await;
    w.dispatcher.run_once().await.unwrap();
    w.platform
        .script
        .lock()
        .unwrap()
        .push_back(Step::Exhausted(Duration::from_secs(600)));
    let out = w.deliver_all().await;
    assert_eq!(out[0], Disposition::Done(Done::Published));
    let Disposition::Defer { delay, copy } = &out[1] else {
        panic!("the account is blocked: {out:?}")
    };
    assert_eq!(
        *delay,
        Duration::from_secs(600),
        "until the platform's reset"
    );
    assert_eq!(
        out[2],
        Disposition::Done(Done::Published),
        "other accounts go on"
    );
    w.clock.advance(time::Duration::minutes(10));
    assert_eq!(w.deliver(copy, 1).await, Disposition::Done(Done::Published));
}

#[tokio::test]
async fn real_failures_carried_across_deferrals_end_in_the_dlq() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let mut m = w.queue.take().pop().unwrap();
    m.failures = 2;
    w.platform.then(Err(PlatformError::Transient {
        message: "X answered 503".into(),
        code: None,
        retry_after: None,
    }));
    let Disposition::MoveToDeadLetter(reason) = w.deliver(&m, 1).await else {
        panic!("two earlier failures and this one make three")
    };
    assert!(reason.contains("X answered 503"), "{reason}");
    assert_eq!(w.variant(&post).await.status, VariantStatus::DeadLettered);
}
