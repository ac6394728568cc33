//! The services against the in-memory ports, with a fake clock and a scripted platform.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::audit::AuditRecord;
use herald_domain::clock::{Clock, Entropy, FakeClock};
use herald_domain::ids::MediaId;
use herald_domain::ids::{AccountId, ApiKeyId, TenantId};
use herald_domain::media::{
    DEFAULT_UPLOAD_URL_TTL, MediaError, MediaRecord, MediaRule, MediaService, MediaStatus,
    MediaType, NewMedia, samples,
};
use herald_domain::memory::{MemoryMedia, MemoryQueue, MemoryStore};
use herald_domain::model::*;
use herald_domain::ports::{
    AccountStore, AuditLog, BreakerChange, BreakerReset, ClaimGate, ClaimRejected, CrisisStore,
    HeartbeatStore, Loaded, MediaRecords, PostStore, PublishMessage, PublishStore, TenantStore,
    VariantOutcome, VariantRef,
};
use herald_domain::publishing::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::publishing::gates::Breaker;
use herald_domain::publishing::gates::{Crisis, Window};
use herald_domain::publishing::platform::{
    LookupRequest, PlatformClient, PlatformError, PublishRequest, PublishedPost,
};
use herald_domain::publishing::posts::{Actor, NewPost, PostEdit, PostError, PostService, Target};
use herald_domain::publishing::publish::{
    Delivery, Disposition, Done, PublishConfig, PublishService,
};
use herald_domain::publishing::reconcile::{HEARTBEAT, ReconcileConfig, Reconciler};
use secrecy::SecretString;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::macros::datetime;

/// One scripted platform answer.
#[derive(Debug, Clone)]
enum Step {
    Fail(PlatformError),
    /// The post is created, then the answer is lost: what a timeout after sending looks like.
    CreatedButLost,
    /// Published, and the platform says the account has no calls left until the reset.
    Exhausted(Duration),
    /// Published once the test says so: the call is in flight until then.
    After(Arc<tokio::sync::Notify>),
}

#[derive(Debug, Default)]
struct ScriptedPlatform {
    script: Mutex<VecDeque<Step>>,
    published: Mutex<Vec<(Platform, String, String)>>,
    lookups: Mutex<usize>,
    /// Every media upload, in order: (media id, the bytes received).
    uploads: Mutex<Vec<(String, Vec<u8>)>>,
}

impl ScriptedPlatform {
    fn then(&self, r: Result<(), PlatformError>) {
        if let Err(e) = r {
            self.script.lock().unwrap().push_back(Step::Fail(e));
        }
    }
    fn then_created_but_lost(&self) {
        self.script.lock().unwrap().push_back(Step::CreatedButLost);
    }
    fn published(&self) -> Vec<(Platform, String, String)> {
        self.published.lock().unwrap().clone()
    }
    fn lookups(&self) -> usize {
        *self.lookups.lock().unwrap()
    }
}

#[async_trait]
impl PlatformClient for ScriptedPlatform {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        for upload in req.media {
            let id = upload.attachment.media_id.0.clone();
            let bytes = upload.content.collect().await.unwrap();
            self.uploads.lock().unwrap().push((id, bytes));
        }
        let next = self.script.lock().unwrap().pop_front();
        match &next {
            Some(Step::Fail(e)) => return Err(e.clone()),
            Some(Step::After(go)) => go.notified().await,
            _ => {}
        }
        let mut published = self.published.lock().unwrap();
        published.push((
            req.platform,
            req.external_id.to_owned(),
            req.text.to_owned(),
        ));
        if let Some(Step::CreatedButLost) = next {
            return Err(PlatformError::Ambiguous {
                message: "no answer after the request was sent".into(),
            });
        }
        let mut post = PublishedPost::new(format!("p{}", published.len()));
        if let Some(Step::Exhausted(reset)) = next {
            post.signal.remaining = Some(0);
            post.signal.reset_after = Some(reset);
        }
        Ok(post)
    }

    async fn find_post(
        &self,
        req: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        *self.lookups.lock().unwrap() += 1;
        let published = self.published.lock().unwrap();
        Ok(published
            .iter()
            .position(|(p, ext, text)| {
                *p == req.platform && ext == req.external_id && text == req.text
            })
            .map(|i| PublishedPost::new(format!("p{}", i + 1))))
    }
}

#[derive(Debug)]
struct HalfEntropy;

impl Entropy for HalfEntropy {
    fn fraction(&self) -> f64 {
        0.5
    }
    fn token(&self) -> String {
        uuid_like()
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("attempt-{}", N.fetch_add(1, Ordering::SeqCst))
}

struct World {
    store: Arc<MemoryStore>,
    media: Arc<MemoryMedia>,
    alerts: Arc<herald_domain::memory::MemoryAlerts>,
    queue: Arc<MemoryQueue>,
    clock: Arc<FakeClock>,
    platform: Arc<ScriptedPlatform>,
    posts: PostService,
    dispatcher: Dispatcher,
    publisher: PublishService,
    actor: Actor,
}

impl World {
    async fn new(require_approval: bool) -> Self {
        let store = Arc::new(MemoryStore::new());
        let queue = Arc::new(MemoryQueue::default());
        let clock = Arc::new(FakeClock::new(datetime!(2026-03-01 12:00:00 UTC)));
        let platform = Arc::new(ScriptedPlatform::default());
        let tenant = TenantId("ten_a".into());
        store
            .create_tenant(&Tenant {
                id: tenant.clone(),
                name: "a".into(),
                settings: TenantSettings { require_approval },
                created_at: clock.now(),
            })
            .await
            .unwrap();
        for (id, platform) in [
            ("acc_x", Platform::X),
            ("acc_li", Platform::Linkedin),
            ("acc_fb", Platform::Facebook),
        ] {
            store
                .upsert_account(&Account {
                    id: AccountId(id.into()),
                    tenant_id: tenant.clone(),
                    platform,
                    external_id: format!("ext-{id}"),
                    display_name: None,
                    access_token: SecretString::from("token"),
                    refresh_token: None,
                    token_expires_at: None,
                    status: AccountStatus::Active,
                    created_at: clock.now(),
                    updated_at: clock.now(),
                    breaker: Default::default(),
                })
                .await
                .unwrap();
        }
        let media = Arc::new(MemoryMedia::default());
        let posts = PostService {
            posts: store.clone(),
            accounts: store.clone(),
            tenants: store.clone(),
            media: MediaService {
                records: store.clone(),
                objects: media.clone(),
                clock: clock.clone(),
                upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
            },
            clock: clock.clone(),
        };
        let dispatcher = Dispatcher {
            store: store.clone(),
            crises: store.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            config: DispatchConfig::default(),
        };
        let (alerter, alerts) = herald_domain::memory::alerter(store.clone(), clock.clone());
        let publisher = PublishService {
            store: store.clone(),
            limiter: store.clone(),
            alerter,
            tokens: None,
            platform: platform.clone(),
            media: media.clone(),
            clock: clock.clone(),
            entropy: Arc::new(HalfEntropy),
            config: PublishConfig {
                max_receive_count: 3,
                // One call per delivery unless a test says otherwise.
                max_attempts: 1,
                ..PublishConfig::default()
            },
        };
        let actor = Actor {
            tenant_id: tenant,
            key_id: ApiKeyId("key_1".into()),
        };
        Self {
            store,
            media,
            alerts,
            queue,
            clock,
            platform,
            posts,
            dispatcher,
            publisher,
            actor,
        }
    }

    async fn create(&self, text: &str, in_secs: i64, accounts: &[&str]) -> Post {
        self.posts
            .create(
                &self.actor,
                NewPost {
                    text: text.into(),
                    scheduled_at: Some(self.clock.now() + time::Duration::seconds(in_secs)),
                    targets: accounts
                        .iter()
                        .map(|a| Target {
                            account_id: AccountId((*a).into()),
                            text: None,
                            media: None,
                        })
                        .collect(),
                    media: vec![],
                },
                "corr-1".into(),
            )
            .await
            .unwrap()
    }

    async fn get(&self, post: &Post) -> Post {
        self.store
            .get_post(&post.tenant_id, &post.id)
            .await
            .unwrap()
            .unwrap()
    }

    /// Publishes every queued message once, returning the dispositions.
    async fn deliver_all(&self) -> Vec<Disposition> {
        let mut out = Vec::new();
        for m in self.queue.take() {
            out.push(self.deliver(&m, 1).await);
        }
        out
    }

    /// One delivery with `receive_count`, 30 s before the invocation's deadline.
    async fn deliver(&self, m: &PublishMessage, receive_count: u32) -> Disposition {
        self.publisher.handle(m, self.delivery(receive_count)).await
    }

    fn delivery(&self, receive_count: u32) -> Delivery {
        Delivery {
            receive_count,
            deadline: self.clock.now() + time::Duration::seconds(30),
        }
    }

    fn variant(&self, post: &Post) -> impl std::future::Future<Output = Variant> + '_ {
        let (tenant, id) = (post.tenant_id.clone(), post.id.clone());
        async move {
            self.store
                .get_post(&tenant, &id)
                .await
                .unwrap()
                .unwrap()
                .variants
                .into_values()
                .next()
                .unwrap()
        }
    }
}

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
                text: "x".repeat(300),
                scheduled_at: Some(datetime!(2020-01-01 00:00:00 UTC)),
                targets: vec![
                    Target {
                        account_id: AccountId("acc_x".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        account_id: AccountId("acc_x".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        account_id: AccountId("acc_nope".into()),
                        text: None,
                        media: None,
                    },
                    Target {
                        account_id: AccountId("acc_li".into()),
                        text: Some(" ".into()),
                        media: None,
                    },
                ],
                media: vec![],
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
async fn the_reconciler_requeues_a_dead_claim_once_and_fails_it_after_too_many() {
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

    // Too many claims without an outcome: failed, with a reason a person can act on.
    let other = w.create("again", 0, &["acc_li"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    for _ in 0..2 {
        assert_eq!(dying.handle(&m, w.delivery(1)).await, Disposition::Fail);
        w.clock.advance(time::Duration::minutes(2));
        reconciler.run_once().await.unwrap();
    }
    let v = w.variant(&other).await;
    assert_eq!(v.status, VariantStatus::Failed);
    assert!(
        v.last_error
            .unwrap()
            .message
            .contains("no confirmed outcome")
    );
    let (_, summary) = w.store.last_beat(HEARTBEAT).await.unwrap().unwrap();
    assert!(summary.contains("\"failed\":1"), "{summary}");
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

// ------------------------------------------------------------------------------------ media

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
                    text: "with media".into(),
                    scheduled_at: None,
                    targets: accounts
                        .iter()
                        .map(|a| Target {
                            account_id: AccountId((*a).into()),
                            text: None,
                            media: None,
                        })
                        .collect(),
                    media: media.iter().map(|m| (*m).clone()).collect(),
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
        .insert_media(&MediaRecord {
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
        })
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
    assert_eq!(w.media.calls.snapshot().get("read_prefix"), None);

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
                size: 6 * 1024 * 1024,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MediaError::Invalid(e) if e[0].message.contains("no platform accepts image/png larger than 5242880 bytes")),
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
    // 10 s for the post and 10 s + 1 s per 5 MB for each upload: 21 s fit 5 MB at most.
    w.publisher.config.invocation_budget = Some(Duration::from_secs(21));
    let big = w.upload("video/mp4", samples::mp4(6 * 1024 * 1024)).await;
    let small = w.upload("video/mp4", samples::mp4(1024 * 1024)).await;
    let too_big = w.create_with_media(&["acc_x"], &[&big]).await.unwrap();
    let fits = w.create_with_media(&["acc_x"], &[&small]).await.unwrap();
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
