//! The services against the in-memory ports, with a fake clock and a scripted platform.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use async_trait::async_trait;
use herald_domain::clock::{Clock, FakeClock};
use herald_domain::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::ids::{AccountId, ApiKeyId, TenantId};
use herald_domain::memory::{MemoryQueue, MemoryStore};
use herald_domain::model::*;
use herald_domain::platform::{PlatformClient, PlatformError, PublishRequest, PublishedPost};
use herald_domain::ports::{AccountStore, PostStore, PublishMessage, TenantStore};
use herald_domain::posts::{Actor, NewPost, PostEdit, PostError, PostService, Target};
use herald_domain::publish::{Disposition, Done, PublishConfig, PublishService};
use secrecy::SecretString;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::macros::datetime;

#[derive(Debug, Default)]
struct ScriptedPlatform {
    script: Mutex<VecDeque<Result<(), PlatformError>>>,
    published: Mutex<Vec<(Platform, String, String)>>,
}

impl ScriptedPlatform {
    fn then(&self, r: Result<(), PlatformError>) {
        self.script.lock().unwrap().push_back(r);
    }
    fn published(&self) -> Vec<(Platform, String, String)> {
        self.published.lock().unwrap().clone()
    }
}

#[async_trait]
impl PlatformClient for ScriptedPlatform {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        let next = self.script.lock().unwrap().pop_front().unwrap_or(Ok(()));
        next?;
        let mut published = self.published.lock().unwrap();
        published.push((
            req.platform,
            req.external_id.to_owned(),
            req.text.to_owned(),
        ));
        Ok(PublishedPost {
            platform_post_id: format!("p{}", published.len()),
        })
    }
}

struct World {
    store: Arc<MemoryStore>,
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
        for (id, platform) in [("acc_x", Platform::X), ("acc_li", Platform::Linkedin)] {
            store
                .upsert_account(&Account {
                    id: AccountId(id.into()),
                    tenant_id: tenant.clone(),
                    platform,
                    external_id: format!("ext-{id}"),
                    display_name: None,
                    access_token: SecretString::from("token"),
                    status: AccountStatus::Active,
                    created_at: clock.now(),
                    updated_at: clock.now(),
                })
                .await
                .unwrap();
        }
        let posts = PostService {
            posts: store.clone(),
            accounts: store.clone(),
            tenants: store.clone(),
            clock: clock.clone(),
        };
        let dispatcher = Dispatcher {
            store: store.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            config: DispatchConfig::default(),
        };
        let publisher = PublishService {
            store: store.clone(),
            accounts: store.clone(),
            platform: platform.clone(),
            clock: clock.clone(),
            config: PublishConfig {
                max_receive_count: 3,
                retry_base: Duration::from_secs(1),
                retry_cap: Duration::from_secs(60),
            },
        };
        let actor = Actor {
            tenant_id: tenant,
            key_id: ApiKeyId("key_1".into()),
        };
        Self {
            store,
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
                        })
                        .collect(),
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
            out.push(self.publisher.handle(&m, 1).await);
        }
        out
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
        assert_eq!(
            w.publisher.handle(m, 1).await,
            Disposition::Done(Done::Published)
        );
        // A duplicate delivery publishes nothing more.
        assert_eq!(
            w.publisher.handle(m, 2).await,
            Disposition::Done(Done::Duplicate)
        );
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
    assert!(matches!(
        w.publisher.handle(&m, 1).await,
        Disposition::RetryAfter(_)
    ));
    assert_eq!(
        w.get(&post).await.variants.values().next().unwrap().status,
        VariantStatus::Retrying
    );
    assert!(matches!(
        w.publisher.handle(&m, 2).await,
        Disposition::RetryAfter(_)
    ));
    assert_eq!(w.publisher.handle(&m, 3).await, Disposition::DeadLetter);
    let v = w.get(&post).await.variants.values().next().unwrap().clone();
    assert_eq!((v.status, v.attempts), (VariantStatus::DeadLettered, 3));
    assert_eq!(v.last_error.unwrap().message, "X answered 503");
    // Requeued from the DLQ, it is claimable again and publishes once.
    assert_eq!(
        w.publisher.handle(&m, 1).await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(w.platform.published().len(), 1);
}

#[tokio::test]
async fn an_ambiguous_failure_is_recorded_unknown_and_never_retried_blindly() {
    let w = World::new(false).await;
    let post = w.create("hello", 0, &["acc_x"]).await;
    w.dispatcher.run_once().await.unwrap();
    let m = w.queue.take().pop().unwrap();
    w.platform.then(Err(PlatformError::Ambiguous {
        message: "timeout after send".into(),
    }));
    assert_eq!(
        w.publisher.handle(&m, 1).await,
        Disposition::Done(Done::Unknown)
    );
    assert_eq!(
        w.publisher.handle(&m, 2).await,
        Disposition::Done(Done::Duplicate)
    );
    assert_eq!(w.get(&post).await.display_status(), "needs_attention");
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
                    },
                    Target {
                        account_id: AccountId("acc_x".into()),
                        text: None,
                    },
                    Target {
                        account_id: AccountId("acc_nope".into()),
                        text: None,
                    },
                    Target {
                        account_id: AccountId("acc_li".into()),
                        text: Some(" ".into()),
                    },
                ],
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
    assert_eq!(
        w.publisher.handle(&m, 1).await,
        Disposition::Done(Done::Duplicate)
    );
    assert_eq!(
        w.get(&post).await.variants.values().next().unwrap().status,
        VariantStatus::Pending
    );
}

#[test]
fn backoff_grows_is_capped_and_honours_retry_after() {
    let svc = PublishConfig {
        max_receive_count: 5,
        retry_base: Duration::from_secs(2),
        retry_cap: Duration::from_secs(10),
    };
    let store = Arc::new(MemoryStore::new());
    let p = PublishService {
        store: store.clone(),
        accounts: store,
        platform: Arc::new(ScriptedPlatform::default()),
        clock: Arc::new(FakeClock::new(datetime!(2026-01-01 00:00:00 UTC))),
        config: svc,
    };
    for n in 1..30 {
        let d = p.backoff(n, None);
        assert!(
            d >= Duration::from_secs(1) && d <= Duration::from_secs(10),
            "{n}: {d:?}"
        );
    }
    assert!(p.backoff(1, Some(Duration::from_secs(90))) >= Duration::from_secs(90));
}
