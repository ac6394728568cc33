//! Around the publish: auth errors marking the account, approval, validation, tenancy,
//! backoff, the dispatcher under a pause, the reconciler, audit, alerts, and duplicates.

use super::*;

#[tokio::test]
async fn an_auth_error_marks_the_account_and_fails_its_next_posts_fast() {
    let w = World::new(false).await;
    let first = w.create("one", 0, &["acc_x"]).await;
    let second = w.create("two", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let messages = w.queue.take();
    w.platform.then(Err(PlatformError::Auth {
        message: "X answered 401: Unauthorized".into(),
        code: None,
    }));
    assert_eq!(
        w.deliver(&messages[0], 1).await,
        Disposition::Done(Done::Failed)
    );
    let account = w
        .store
        .get_account(&first.tenant_id, &AccountId("acc_x".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.status, AccountStatus::NeedsReauth);
    assert_eq!(
        w.deliver(&messages[1], 1).await,
        Disposition::Done(Done::Failed)
    );
    let v = w.variant(&second).await;
    assert!(
        v.last_error
            .unwrap()
            .message
            .contains("reconnect the account"),
        "an actionable reason"
    );
    assert_eq!(w.platform.published().len(), 0);
}

#[tokio::test]
async fn approval_gates_dispatch() {
    let w = World::new(true).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    assert_eq!(post.status, PostStatus::PendingApproval);
    assert_eq!(w.dispatcher.run_once().await.unwrap().due, 0);
    w.posts
        .review(&w.actor, &post.id, true, Some("ok".into()))
        .await
        .unwrap();
    assert_eq!(w.dispatcher.run_once().await.unwrap().messages_sent, 1);
    let err = w
        .posts
        .review(&w.actor, &post.id, true, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PostError::InvalidState(_)));
}

#[tokio::test]
async fn a_rejected_post_never_publishes() {
    let w = World::new(true).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    let rejected = w
        .posts
        .review(&w.actor, &post.id, false, None)
        .await
        .unwrap();
    assert_eq!(rejected.display_status(), "rejected");
    assert_eq!(w.dispatcher.run_once().await.unwrap().due, 0);
}

#[tokio::test]
async fn validation_lists_every_problem() {
    let w = World::new(false).await;
    let err = w
        .posts
        .create(
            &w.actor,
            NewPost {
                alt_text: Default::default(),
                text: "x".repeat(300),
                scheduled_at: Some(datetime!(2020-01-01 00:00:00 UTC)),
                targets: vec![
                    Target {
                        options: Default::default(),
                        account_id: AccountId("acc_x".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        options: Default::default(),
                        account_id: AccountId("acc_x".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        options: Default::default(),
                        account_id: AccountId("acc_nope".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        options: Default::default(),
                        account_id: AccountId("acc_li".into()),
                        text: Some(" ".into()),
                        media: None,
                    },
                ],
                media: vec![],
                follow_ups: Default::default(),
                draft: false,
                local: None,
                next_slot: false,
            },
            "c".into(),
        )
        .await
        .unwrap_err();
    let PostError::Invalid(errors) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "scheduled_at",
            "text",
            "targets[1]",
            "targets[2].account_id",
            "targets[3].text"
        ],
        "{errors:?}"
    );
    assert!(w.store.all_posts().is_empty(), "nothing written");
}

#[tokio::test]
async fn a_message_for_another_tenant_claims_nothing() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let mut m: PublishMessage = w.queue.take().pop().unwrap();
    m.tenant_id = TenantId("ten_other".into());
    assert_eq!(w.deliver(&m, 1).await, Disposition::Done(Done::Duplicate));
    assert_eq!(
        w.get(&post).await.variants.values().next().unwrap().status,
        VariantStatus::Pending
    );
}

#[test]
fn backoff_ceilings_grow_and_are_capped() {
    let b = PublishConfig::default().redelivery;
    assert_eq!(b.ceiling(1), Duration::from_secs(30));
    assert_eq!(b.ceiling(3), Duration::from_secs(120));
    assert_eq!(b.ceiling(40), Duration::from_secs(900));
    assert_eq!(b.delay(2, &HalfEntropy), Duration::from_secs(30));
}

#[tokio::test]
async fn the_dispatcher_holds_a_fully_paused_tenant_until_the_pause_is_lifted() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    let crisis = Crisis {
        tenant_id: post.tenant_id.clone(),
        platforms: vec![],
        reason: "storm".into(),
        started_by: ApiKeyId("key_1".into()),
        started_at: w.clock.now(),
        expires_at: w.clock.now() + time::Duration::hours(1),
    };
    w.store.put_crisis(&crisis).await.unwrap();
    let report = w.dispatcher.run_once().await.unwrap();
    assert_eq!((report.held, report.claimed), (1, 0));
    assert_eq!(w.get(&post).await.status, PostStatus::Scheduled);
    // A pause of some platforms only is the publisher's to hold, per variant.
    w.store
        .put_crisis(&Crisis {
            platforms: vec![Platform::Facebook],
            ..crisis.clone()
        })
        .await
        .unwrap();
    assert_eq!(w.dispatcher.run_once().await.unwrap().claimed, 1);
    w.store.put_crisis(&crisis).await.unwrap();
    // An expired pause holds nothing.
    let other = w.create("later", 0, &["acc_li"]).await;
    w.clock.advance(time::Duration::hours(1));
    assert_eq!(w.dispatcher.run_once().await.unwrap().held, 0);
    assert_eq!(w.get(&other).await.status, PostStatus::Dispatched);
}

#[tokio::test]
async fn the_reconciler_requeues_a_dead_claim_once_and_dead_letters_it_after_too_many() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    let reconciler = Reconciler {
        store: w.store.clone(),
        posts: w.store.clone(),
        outcomes: w.store.clone(),
        queue: w.queue.clone(),
        heartbeats: w.store.clone(),
        audit: w.store.clone(),
        queues: Arc::new(NoQueues),
        alerter: w.publisher.alerter.clone(),
        clock: w.clock.clone(),
        config: ReconcileConfig {
            max_attempts: 2,
            ..ReconcileConfig::default()
        },
    };
    // A publisher that dies after sending: the platform has the post, the store says
    // `publishing`.
    let dying = PublishService {
        store: Arc::new(Dies(w.store.clone())),
        ..w.publisher.clone()
    };
    assert_eq!(dying.handle(&m, w.delivery(1)).await, Disposition::Fail);
    assert_eq!(w.variant(&post).await.status, VariantStatus::Publishing);
    assert_eq!(
        reconciler.run_once().await.unwrap().requeued,
        0,
        "within the lease"
    );
    w.clock.advance(time::Duration::minutes(2));
    let report = reconciler.run_once().await.unwrap();
    assert_eq!(report.requeued, 1);
    // What outbound webhooks announce as `post.unknown_resolved`.
    assert_eq!(report.resolved.len(), 1);
    assert_eq!(report.resolved[0].status, "unknown");
    assert_eq!(report.resolved[0].variant.post_id, post.id);
    let requeued = w.queue.take();
    assert_eq!(requeued.len(), 1);
    assert_eq!(
        reconciler.run_once().await.unwrap().posts,
        0,
        "off the list"
    );
    // The requeued message finds the post on the platform and adopts it.
    assert_eq!(
        w.deliver(&requeued[0], 1).await,
        Disposition::Done(Done::Adopted)
    );
    assert_eq!(w.platform.published().len(), 1);

    // Too many claims without an outcome: the post may be live, so never `failed` (which
    // invites scheduling it again): its message goes to the dead-letter queue with a reason a
    // person can act on, and a redrive looks the post up first.
    let other = w.create("again", 0, &["acc_li"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    for _ in 0..2 {
        assert_eq!(dying.handle(&m, w.delivery(1)).await, Disposition::Fail);
        w.clock.advance(time::Duration::minutes(2));
        reconciler.run_once().await.unwrap();
    }
    let v = w.variant(&other).await;
    assert_eq!(v.status, VariantStatus::DeadLettered);
    assert!(v.lookup, "a redrive looks it up first");
    let reason = v.last_error.unwrap().message;
    assert!(reason.contains("no confirmed outcome"), "{reason}");
    let dead = w.queue.dead_letters.lock().unwrap().clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((&dead[0].0.post_id, &dead[0].1), (&other.id, &reason));
    let (_, summary) = w.store.last_beat(HEARTBEAT).await.unwrap().unwrap();
    assert!(summary.contains("\"dead_lettered\":1"), "{summary}");
}

/// A store whose outcome writes fail: the publisher "dies" between the platform call and
/// recording the outcome.
struct Dies(Arc<MemoryStore>);

#[async_trait]
impl PublishStore for Dies {
    async fn claim_for_publish(
        &self,
        v: &VariantRef,
        attempt: &str,
        gate: &ClaimGate,
    ) -> Result<(), ClaimRejected> {
        self.0.claim_for_publish(v, attempt, gate).await
    }
    async fn load_for_publish(&self, v: &VariantRef) -> Result<Loaded, StoreError> {
        self.0.load_for_publish(v).await
    }
    async fn record_outcome(
        &self,
        _: &VariantRef,
        _: &str,
        _: &VariantOutcome,
        _: bool,
        _: &AuditRecord,
        _: Option<BreakerReset>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("the invocation died".into()))
    }
    async fn update_breaker(
        &self,
        t: &TenantId,
        a: &AccountId,
        c: BreakerChange,
    ) -> Result<Breaker, StoreError> {
        self.0.update_breaker(t, a, c).await
    }
    async fn keep_progress(
        &self,
        v: &VariantRef,
        attempt_id: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.0.keep_progress(v, attempt_id, value).await
    }
    async fn mark_needs_reauth(
        &self,
        t: &TenantId,
        a: &AccountId,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.0.mark_needs_reauth(t, a, now).await
    }
}

#[tokio::test]
async fn every_publish_outcome_is_audited_on_its_variants_chain() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.platform.then(Err(PlatformError::Transient {
        message: "X answered 503".into(),
        code: None,
        retry_after: None,
    }));
    w.deliver(&m, 1).await;
    w.deliver(&m, 2).await;
    let (records, heads) = w.store.export(&post.tenant_id).await.unwrap();
    let actions: Vec<_> = records.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(actions, ["publish.retrying", "publish.published"]);
    assert!(records.iter().all(|r| r.entry.actor == "system:publisher"));
    assert_eq!(records[1].entry.new.as_ref().unwrap()["receive_count"], 2);
    assert_eq!(herald_domain::audit::verify(&records, &heads), vec![]);
    w.store.tamper_audit(|log| {
        log.remove(0);
    });
    let (records, heads) = w.store.export(&post.tenant_id).await.unwrap();
    assert!(!herald_domain::audit::verify(&records, &heads).is_empty());
}

#[derive(Debug)]
struct NoQueues;

#[async_trait]
impl herald_domain::ports::QueueStats for NoQueues {
    async fn depths(&self) -> Result<(u64, u64), StoreError> {
        Ok((0, 0))
    }
}

#[tokio::test]
async fn alerts_go_once_per_condition_per_window() {
    let w = World::new(false).await;
    for i in 0..7 {
        w.create(&format!("post {i}"), 0, &["acc_x"]).await;
    }
    w.dispatcher.run_once().await.unwrap();
    for _ in 0..7 {
        w.platform.then(Err(PlatformError::Permanent {
            message: "X answered 403: duplicate content".into(),
            code: None,
        }));
    }
    w.deliver_all().await;
    let alerts = w.alerts.sent.lock().unwrap().clone();
    let keys: Vec<&str> = alerts.iter().map(|a| a.key.as_str()).collect();
    assert_eq!(
        keys,
        ["failed_publishes:ten_a"],
        "the fifth failure alerts, once"
    );
    assert!(alerts[0].detail.contains("duplicate content"));
    // A token going invalid alerts (once), and so does a circuit opening.
    w.create("auth", 0, &["acc_li"]).await;
    w.dispatcher.run_once().await.unwrap();
    w.platform.then(Err(PlatformError::Auth {
        message: "LinkedIn answered 401".into(),
        code: None,
    }));
    w.deliver_all().await;
    let alerter = &w.publisher.alerter;
    alerter.queues(101, 0).await;
    alerter.queues(500, 3).await;
    let keys: Vec<String> = w
        .alerts
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.key.clone())
        .collect();
    assert_eq!(
        keys[1..],
        [
            "token_invalid:ten_a:acc_li".to_owned(),
            "queue_depth:publish".into(),
            "dead_letters:publish".into()
        ]
    );
    w.clock.advance(time::Duration::hours(1));
    alerter.queues(101, 0).await;
    assert_eq!(
        w.alerts.sent.lock().unwrap().len(),
        5,
        "a new window alerts again"
    );
}

#[tokio::test]
async fn a_duplicate_while_another_attempt_holds_the_variant_waits_instead_of_vanishing() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    // Another invocation holds the variant (claimed, still talking to the platform).
    let now = w.clock.now();
    w.store
        .claim_for_publish(
            &m.variant(),
            "the-holder",
            &ClaimGate {
                platform: Platform::X,
                now,
                account_window: None,
                breaker: herald_domain::ports::BreakerGate::Closed,
                lease_until: now + time::Duration::minutes(2),
                counts_attempt: true,
            },
        )
        .await
        .unwrap();
    let Disposition::Defer { delay, copy } = w.deliver(&m, 1).await else {
        panic!("the duplicate must not be dropped while the holder may still need it")
    };
    assert!(delay >= Duration::from_secs(120), "{delay:?}");
    assert_eq!(copy.failures, 0);
    assert_eq!(w.variant(&post).await.attempts, 1);
}
