//! The adapters against DynamoDB and SQS on moto, with AWS calls counted.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use herald_aws::Clients;
use herald_aws::calls::Tally;
use herald_aws::dead_letters::{DeadLetterQueue, SqsDeadLetters};
use herald_aws::dynamo::{DynamoIdempotency, DynamoStore};
use herald_aws::s3::S3Media;
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::StoreError;
use herald_domain::audit::{AuditEntry, AuditRecord, ChainHead};
use herald_domain::clock::SystemEntropy;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::dead_letters::DeadLetterQueues;
use herald_domain::idempotency::{Begin, Idempotency, IdempotencyKey, StoredResponse};
use herald_domain::ids::{AccountId, ApiKeyId, PostId, TenantId};
use herald_domain::media::{
    DEFAULT_UPLOAD_URL_TTL, MediaService, MediaType, NewMedia, PresignedUpload, Resolved, samples,
};
use herald_domain::model::*;
use herald_domain::ports::*;
use herald_domain::publishing::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::publishing::gates::{
    Breaker, BreakerPolicy, BreakerState, Crisis, RateLimits, Window,
};
use herald_domain::publishing::platform::{
    LookupRequest, PlatformClient, PlatformError, PublishRequest, PublishedPost,
};
use herald_domain::publishing::posts::{Actor, NewPost, PostService, Target};
use herald_domain::publishing::publish::{
    Delivery, Disposition, Done, PublishConfig, PublishService,
};
use herald_domain::publishing::reconcile::{ReconcileConfig, Reconciler};
use herald_tests::{bootstrap, moto, sdk_config};
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct RecordingPlatform {
    published: Mutex<Vec<String>>,
    fail_with: Mutex<Option<PlatformError>>,
    /// The bytes of every media upload, in order.
    uploads: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl PlatformClient for RecordingPlatform {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        for upload in req.media {
            let bytes = upload.content.collect().await.unwrap();
            self.uploads.lock().unwrap().push(bytes);
        }
        if let Some(e) = self.fail_with.lock().unwrap().clone() {
            return Err(e);
        }
        let mut p = self.published.lock().unwrap();
        p.push(req.text.to_owned());
        Ok(PublishedPost::new(format!("pp-{}", p.len())))
    }

    async fn find_post(
        &self,
        req: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        let p = self.published.lock().unwrap();
        Ok(p.iter()
            .position(|t| t == req.text)
            .map(|i| PublishedPost::new(format!("pp-{}", i + 1))))
    }
}

fn delivery(receive_count: u32) -> Delivery {
    Delivery {
        receive_count,
        deadline: SystemClock.now() + time::Duration::seconds(30),
    }
}

fn gate(now: time::OffsetDateTime) -> ClaimGate {
    ClaimGate {
        platform: Platform::Facebook,
        now,
        account_window: None,
        breaker: BreakerGate::Closed,
        lease_until: now + time::Duration::minutes(2),
    }
}

struct Env {
    vars: HashMap<String, String>,
    clients: Clients,
    store: Arc<DynamoStore>,
    queue: Arc<SqsPublishQueue>,
    media: Arc<S3Media>,
    tenant: TenantId,
    account: AccountId,
}

impl Env {
    async fn new() -> Self {
        let endpoint = moto().endpoint.clone();
        let vars = bootstrap(&endpoint);
        let clients = Clients::from_sdk_config(&sdk_config(&endpoint).await);
        let store = Arc::new(
            DynamoStore::new(clients.dynamodb.clone(), &vars["HERALD_TABLE"])
                .with_audit_table(&vars["HERALD_AUDIT_TABLE"])
                .with_token_vault(Arc::new(
                    herald_domain::secrets::token_crypto::TokenVault::fixed(
                        herald_domain::secrets::token_crypto::TokenKeys::from_keys(&[9; 32], &[])
                            .unwrap(),
                    ),
                )),
        );
        let queue = Arc::new(
            SqsPublishQueue::new(clients.sqs.clone(), &vars["HERALD_PUBLISH_QUEUE_URL"])
                .with_dead_letter_queue(&vars["HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE"]),
        );
        let media = Arc::new(S3Media::new(
            clients.s3.clone(),
            &vars["HERALD_MEDIA_BUCKET"],
        ));
        let (tenant, _, _) =
            herald_domain::tenants::create_tenant(store.as_ref(), &SystemClock, "t", false)
                .await
                .unwrap();
        let account = Account {
            id: Account::id_for(Platform::Facebook, "page-1"),
            tenant_id: tenant.id.clone(),
            platform: Platform::Facebook,
            external_id: "page-1".into(),
            display_name: None,
            access_token: SecretString::from("tok"),
            refresh_token: None,
            token_expires_at: None,
            status: AccountStatus::Active,
            created_at: SystemClock.now(),
            updated_at: SystemClock.now(),
            breaker: Default::default(),
        };
        assert!(store.upsert_account(&account).await.unwrap(), "new account");
        assert!(
            !store.upsert_account(&account).await.unwrap(),
            "second upsert refreshes"
        );
        Self {
            vars,
            clients,
            store,
            queue,
            media,
            tenant: tenant.id,
            account: account.id,
        }
    }

    fn posts(&self) -> PostService {
        PostService {
            posts: self.store.clone(),
            accounts: self.store.clone(),
            tenants: self.store.clone(),
            media: MediaService {
                records: self.store.clone(),
                objects: self.media.clone(),
                clock: Arc::new(SystemClock),
                upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
            },
            clock: Arc::new(SystemClock),
        }
    }

    fn actor(&self) -> Actor {
        Actor {
            tenant_id: self.tenant.clone(),
            key_id: ApiKeyId("key_t".into()),
        }
    }

    async fn post_now(&self, text: &str) -> Post {
        self.posts()
            .create(
                &self.actor(),
                NewPost {
                    text: text.into(),
                    scheduled_at: None,
                    targets: vec![Target {
                        account_id: self.account.clone(),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
                },
                "corr-it".into(),
            )
            .await
            .unwrap()
    }

    /// Alerts go to the log; the ledger is the real table.
    fn alerter(&self) -> herald_domain::alerts::Alerter {
        herald_platforms::alerter(None, self.store.clone(), Arc::new(SystemClock)).unwrap()
    }

    /// A post for the test account, dispatched: its variant is claimable.
    async fn variant_now(&self, text: &str) -> VariantRef {
        let post = self.post_now(text).await;
        self.dispatcher().run_once().await.unwrap();
        VariantRef {
            tenant_id: self.tenant.clone(),
            post_id: post.id,
            account_id: self.account.clone(),
        }
    }

    /// Records `attempt`'s success on `v`, with its audit record and breaker reset.
    async fn record_published(
        &self,
        v: &VariantRef,
        attempt: &str,
        at: time::OffsetDateTime,
        reset: BreakerReset,
    ) {
        let head = self.store.load_for_publish(v).await.unwrap().audit_head;
        let audit = AuditRecord::chain(
            AuditEntry {
                tenant_id: self.tenant.clone(),
                entity: variant_entity(v),
                action: "publish.published".into(),
                actor: "system:publisher".into(),
                old: None,
                new: None,
                ip: None,
                user_agent: None,
                at,
            },
            &head,
        );
        let outcome = VariantOutcome::Published {
            platform_post_id: format!("p-{attempt}"),
            at,
        };
        self.store
            .record_outcome(v, attempt, &outcome, false, &audit, Some(reset))
            .await
            .unwrap();
    }

    async fn breaker(&self) -> Breaker {
        self.store
            .get_account(&self.tenant, &self.account)
            .await
            .unwrap()
            .expect("the test account")
            .breaker
    }

    fn dispatcher(&self) -> Dispatcher {
        Dispatcher {
            store: self.store.clone(),
            crises: self.store.clone(),
            queue: self.queue.clone(),
            clock: Arc::new(SystemClock),
            config: DispatchConfig::default(),
        }
    }

    fn publisher(&self, platform: Arc<RecordingPlatform>) -> PublishService {
        let mut config = PublishConfig {
            max_receive_count: 3,
            max_attempts: 1,
            ..PublishConfig::default()
        };
        config.redelivery.base = Duration::from_secs(1);
        config.redelivery.cap = Duration::from_secs(1);
        PublishService {
            store: self.store.clone(),
            limiter: self.store.clone(),
            alerter: self.alerter(),
            tokens: None,
            platform,
            media: self.media.clone(),
            clock: Arc::new(SystemClock),
            entropy: Arc::new(SystemEntropy),
            config,
        }
    }

    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.clients
            .sqs
            .receive_message()
            .queue_url(&self.vars["HERALD_PUBLISH_QUEUE_URL"])
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }

    fn calls(&self) -> BTreeMap<String, Tally> {
        self.clients.calls.snapshot()
    }
}

fn tally(calls: &BTreeMap<String, Tally>, op: &str) -> (usize, usize) {
    calls.get(op).map_or((0, 0), |t| (t.ok, t.failed))
}

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
    let mut stale = post.clone();
    stale.version += 1;
    env.store.replace_post(&stale, post.version).await.unwrap();
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
                text: "later".into(),
                scheduled_at: Some(now + time::Duration::hours(1)),
                targets: vec![Target {
                    account_id: env.account.clone(),
                    text: None,
                    media: None,
                }],
                media: vec![],
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
    let post = env.post_now("x").await;
    env.dispatcher().run_once().await.unwrap();
    let v = VariantRef {
        tenant_id: env.tenant.clone(),
        post_id: post.id.clone(),
        account_id: env.account.clone(),
    };
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
    let mut breaker = Breaker::default();
    for _ in 0..policy.failure_threshold {
        breaker = env
            .store
            .update_breaker(
                &env.tenant,
                &env.account,
                BreakerChange::Failure { policy, now },
            )
            .await
            .unwrap();
    }
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
    for _ in 0..2 {
        env.store
            .update_breaker(
                &env.tenant,
                &env.account,
                BreakerChange::Failure { policy, now },
            )
            .await
            .unwrap();
    }
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
    for _ in 0..policy.failure_threshold {
        env.store
            .update_breaker(
                &env.tenant,
                &env.account,
                BreakerChange::Failure { policy, now },
            )
            .await
            .unwrap();
    }
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

/// The dead-letter tools on SQS: list, requeue (a fresh failure budget, the correlation id
/// kept) and delete, each exactly once.
#[tokio::test]
async fn dead_letters_are_listed_requeued_and_deleted_once() {
    let env = Env::new().await;
    let message = |post: &str| PublishMessage {
        tenant_id: env.tenant.clone(),
        post_id: PostId(post.into()),
        account_id: env.account.clone(),
        platform: Platform::Facebook,
        correlation_id: format!("corr-{post}"),
        failures: 5,
    };
    for post in ["post_a", "post_b"] {
        env.queue
            .dead_letter(&message(post), "503 five times")
            .await
            .unwrap();
    }
    let letters = SqsDeadLetters::new(
        env.clients.sqs.clone(),
        vec![DeadLetterQueue {
            source: "publish".into(),
            url: env.vars["HERALD_QUEUE_URL_PUBLISH_DEAD_LETTER_QUEUE"].clone(),
            source_url: env.vars["HERALD_PUBLISH_QUEUE_URL"].clone(),
        }],
    );
    let listed = letters.list(10).await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let find = |post: &str| {
        listed
            .iter()
            .find(|l| l.body.contains(post))
            .cloned()
            .unwrap()
    };
    let (a, b) = (find("post_a"), find("post_b"));
    assert_eq!(a.source, "publish");

    assert!(letters.delete(&a).await.unwrap());
    assert!(
        !letters.delete(&a).await.unwrap(),
        "gone: nothing to delete"
    );
    assert!(letters.requeue(&b).await.unwrap());
    assert!(!letters.requeue(&b).await.unwrap(), "moved once, not twice");
    tokio::time::sleep(Duration::from_millis(1100)).await; // the list's visibility hold
    assert!(
        letters.list(10).await.unwrap().is_empty(),
        "the DLQ is empty"
    );
    let back = env.receive().await;
    assert_eq!(back.len(), 1, "exactly one copy back in the source queue");
    assert_eq!(
        back[0].message_attributes().unwrap()["correlation_id"].string_value(),
        Some("corr-post_b"),
        "the correlation id follows the message"
    );
    let copy: PublishMessage = serde_json::from_str(back[0].body().unwrap()).unwrap();
    assert_eq!(
        copy,
        PublishMessage {
            failures: 0,
            ..message("post_b")
        }
    );
}

#[tokio::test]
async fn idempotency_records_replay_and_a_duplicate_costs_one_failed_write() {
    let env = Env::new().await;
    let idem = Idempotency::new(
        Arc::new(DynamoIdempotency::new(
            env.clients.dynamodb.clone(),
            &env.vars["HERALD_IDEMPOTENCY_TABLE"],
        )),
        Arc::new(SystemClock),
        time::Duration::seconds(30),
    );
    let key = IdempotencyKey::parse("k-1").unwrap();
    let Begin::Proceed(ticket) = idem.begin(&env.tenant, &key, "fp".into()).await.unwrap() else {
        panic!("first use proceeds")
    };
    assert_eq!(
        idem.begin(&env.tenant, &key, "fp".into()).await.unwrap(),
        Begin::InFlight
    );
    assert_eq!(
        idem.begin(&env.tenant, &key, "other".into()).await.unwrap(),
        Begin::Mismatch
    );
    let response = StoredResponse {
        status: 201,
        headers: vec![("content-type".into(), "application/json".into())],
        body: b"{\"id\":1}".to_vec(),
    };
    idem.complete(ticket, response.clone()).await.unwrap();
    env.clients.calls.reset();
    assert_eq!(
        idem.begin(&env.tenant, &key, "fp".into()).await.unwrap(),
        Begin::Replay(response)
    );
    let calls = env.calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        tally(&calls, "DynamoDB.PutItem"),
        (0, 1),
        "one failed conditional write, no read: {calls:?}"
    );
    // Scoped to the tenant.
    assert!(matches!(
        idem.begin(&TenantId("ten_other".into()), &key, "fp".into())
            .await
            .unwrap(),
        Begin::Proceed(_)
    ));
    // Expiry is decided in code (moto never runs TTL): an expired record frees the key.
    let short = idem.clone().with_ttl(time::Duration::seconds(-1));
    let key2 = IdempotencyKey::parse("k-2").unwrap();
    let Begin::Proceed(t) = short.begin(&env.tenant, &key2, "fp".into()).await.unwrap() else {
        panic!()
    };
    short
        .complete(
            t,
            StoredResponse {
                status: 200,
                headers: vec![],
                body: vec![],
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        idem.begin(&env.tenant, &key2, "fp".into()).await.unwrap(),
        Begin::Proceed(_)
    ));
    // An abandoned in-progress record (its Lambda died) frees the key after its lease.
    let dying = Idempotency::new(
        Arc::new(DynamoIdempotency::new(
            env.clients.dynamodb.clone(),
            &env.vars["HERALD_IDEMPOTENCY_TABLE"],
        )),
        Arc::new(SystemClock),
        time::Duration::seconds(-1),
    );
    let key3 = IdempotencyKey::parse("k-3").unwrap();
    assert!(matches!(
        dying.begin(&env.tenant, &key3, "fp".into()).await.unwrap(),
        Begin::Proceed(_)
    ));
    assert!(matches!(
        idem.begin(&env.tenant, &key3, "fp".into()).await.unwrap(),
        Begin::Proceed(_)
    ));
}

#[tokio::test]
async fn the_publisher_handler_reports_batch_item_failures_and_sets_the_retry_delay() {
    let env = Env::new().await;
    for i in 0..3 {
        env.post_now(&format!("post {i}")).await;
    }
    env.dispatcher().run_once().await.unwrap();
    let received = env.receive().await;
    assert_eq!(received.len(), 3);
    let platform = Arc::new(RecordingPlatform::default());
    *platform.fail_with.lock().unwrap() = Some(PlatformError::Transient {
        message: "Facebook answered 503".into(),
        code: None,
        retry_after: Some(Duration::from_secs(1)),
    });
    let publisher = herald_fn_publisher::Publisher {
        service: env.publisher(platform.clone()),
        queue: (*env.queue).clone(),
        concurrency: 4,
        deadline_margin: Duration::from_secs(1),
        outbound: None,
    };
    let mut records: Vec<SqsMessage> = received.iter().map(to_lambda_record).collect();
    let mut garbage = to_lambda_record(&received[0]);
    garbage.message_id = Some("garbage".into());
    garbage.body = Some("{not a publish message".into());
    records.push(garbage);
    let mut event = SqsEvent::default();
    event.records = records;
    let deadline = SystemClock.now() + time::Duration::seconds(30);
    let response = herald_fn_publisher::handle(&publisher, event, deadline).await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    let mut expected: Vec<String> = received
        .iter()
        .map(|m| m.message_id().unwrap().to_owned())
        .collect();
    expected.push("garbage".into());
    expected.sort();
    assert_eq!(
        failed, expected,
        "every transient failure and the malformed record stay on the queue"
    );
    // The handler set their visibility to the platform's Retry-After: they come back soon.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(env.receive().await.len(), 3);
    assert!(platform.published.lock().unwrap().is_empty());
}

fn to_lambda_record(m: &aws_sdk_sqs::types::Message) -> SqsMessage {
    let mut r = SqsMessage::default();
    r.message_id = m.message_id().map(str::to_owned);
    r.receipt_handle = m.receipt_handle().map(str::to_owned);
    r.body = m.body().map(str::to_owned);
    r.attributes = m
        .attributes()
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    r
}

#[tokio::test]
async fn queue_sends_report_each_entry() {
    let env = Env::new().await;
    let messages: Vec<PublishMessage> = (0..23)
        .map(|i| PublishMessage {
            tenant_id: env.tenant.clone(),
            post_id: PostId(format!("post_{i}")),
            account_id: env.account.clone(),
            platform: Platform::Facebook,
            correlation_id: format!("c{i}"),
            failures: 0,
        })
        .collect();
    env.clients.calls.reset();
    let results = env.queue.send(&messages).await.unwrap();
    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        tally(&env.calls(), "SQS.SendMessageBatch"),
        (3, 0),
        "batches of ten"
    );
}

/// A claim whose publisher died: the reconciler finds it through the `inflight` index, records
/// it `unknown` (to be looked up before anything is sent), requeues it, and beats.
#[tokio::test]
async fn the_reconciler_resolves_a_claim_whose_publisher_died() {
    let env = Env::new().await;
    let post = env.post_now("orphan").await;
    env.dispatcher().run_once().await.unwrap();
    let stale = env.receive().await;
    assert_eq!(stale.len(), 1);
    let v = VariantRef {
        tenant_id: env.tenant.clone(),
        post_id: post.id.clone(),
        account_id: env.account.clone(),
    };
    let now = SystemClock.now();
    env.store
        .claim_for_publish(&v, "dead-attempt", &gate(now))
        .await
        .unwrap();
    let reconciler = |lease| Reconciler {
        store: env.store.clone(),
        posts: env.store.clone(),
        outcomes: env.store.clone(),
        queue: env.queue.clone(),
        heartbeats: env.store.clone(),
        audit: env.store.clone(),
        queues: env.queue.clone(),
        alerter: env.alerter(),
        clock: Arc::new(SystemClock),
        config: ReconcileConfig {
            lease,
            ..ReconcileConfig::default()
        },
    };
    // Within the lease (and before the claim's check time) nothing is touched.
    let report = reconciler(time::Duration::minutes(2))
        .run_once()
        .await
        .unwrap();
    assert_eq!(report.posts, 0);
    assert!(env.receive().await.is_empty());
    // Past it: the claim's check time comes from the gate, so look at it from the future.
    let later = Reconciler {
        clock: Arc::new(herald_domain::clock::FakeClock::new(
            now + time::Duration::minutes(3),
        )),
        ..reconciler(time::Duration::minutes(2))
    };
    env.clients.calls.reset();
    let report = later.run_once().await.unwrap();
    assert_eq!((report.posts, report.requeued), (1, 1), "{report:?}");
    let stored = env
        .store
        .get_post(&env.tenant, &post.id)
        .await
        .unwrap()
        .unwrap();
    let variant = &stored.variants[&env.account];
    assert_eq!(
        (variant.status, variant.lookup),
        (VariantStatus::Unknown, true)
    );
    let requeued = env.receive().await;
    assert_eq!(requeued.len(), 1);
    let message: PublishMessage = serde_json::from_str(requeued[0].body().unwrap()).unwrap();
    assert_eq!(message.post_id, post.id);
    // Resolved posts leave the index: the next run finds nothing.
    assert_eq!(later.run_once().await.unwrap().posts, 0);
    let (at, summary) = env
        .store
        .last_beat(herald_domain::publishing::reconcile::HEARTBEAT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at, now + time::Duration::minutes(3));
    assert!(summary.contains("\"requeued\":0"), "{summary}");
    // The requeued message publishes after a lookup finds nothing: exactly once.
    let platform = Arc::new(RecordingPlatform::default());
    assert_eq!(
        env.publisher(platform.clone())
            .handle(&message, delivery(1))
            .await,
        Disposition::Done(Done::Published)
    );
    assert_eq!(platform.published.lock().unwrap().len(), 1);
}

/// The audit log on DynamoDB: chains per entity, listing with filters, and verification that
/// finds a record altered or removed behind the API's back.
#[tokio::test]
async fn the_audit_log_chains_lists_and_detects_tampering() {
    let env = Env::new().await;
    let base = SystemClock.now();
    let entry = |entity: &str, action: &str, secs: i64| AuditEntry {
        tenant_id: env.tenant.clone(),
        entity: entity.into(),
        action: action.into(),
        actor: "key:key_1".into(),
        old: Some(serde_json::json!({"status": "before"})),
        new: Some(serde_json::json!({"status": "after"})),
        ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8".into()),
        at: base + time::Duration::seconds(secs),
    };
    for (i, (entity, action)) in [
        ("post:a", "post.approved"),
        ("crisis", "crisis.started"),
        ("post:a", "post.rejected"),
        ("crisis", "crisis.lifted"),
    ]
    .into_iter()
    .enumerate()
    {
        let r = env
            .store
            .append(entry(entity, action, i as i64))
            .await
            .unwrap();
        assert_eq!(r.seq, if i < 2 { 1 } else { 2 });
    }
    let all = env
        .store
        .list(&env.tenant, &AuditFilter::default(), None, 10)
        .await
        .unwrap();
    let actions: Vec<_> = all.items.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "crisis.lifted",
            "post.rejected",
            "crisis.started",
            "post.approved"
        ],
        "newest first"
    );
    let crisis_only = AuditFilter {
        entity: Some("crisis".into()),
        ..AuditFilter::default()
    };
    let page = env
        .store
        .list(&env.tenant, &crisis_only, None, 1)
        .await
        .unwrap();
    assert_eq!(page.items[0].entry.action, "crisis.lifted");
    let next = env
        .store
        .list(&env.tenant, &crisis_only, page.cursor.as_deref(), 1)
        .await
        .unwrap();
    assert_eq!(
        next.items[0].entry.action, "crisis.started",
        "the cursor pages on"
    );
    let window = AuditFilter {
        from: Some(base + time::Duration::seconds(1)),
        to: Some(base + time::Duration::seconds(3)),
        ..AuditFilter::default()
    };
    assert_eq!(
        env.store
            .list(&env.tenant, &window, None, 10)
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    assert_eq!(herald_domain::audit::verify(&records, &heads), vec![]);

    // Behind the API's back: alter one record, then remove another.
    let table = &env.vars["HERALD_AUDIT_TABLE"];
    let keys = env
        .clients
        .dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("AUDIT#{}", env.tenant)),
        )
        .send()
        .await
        .unwrap();
    let sk_of = |i: usize| keys.items()[i]["sk"].clone();
    env.clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", keys.items()[0]["pk"].clone())
        .key("sk", sk_of(0))
        .update_expression("SET #new = :forged")
        .expression_attribute_names("#new", "new")
        .expression_attribute_values(
            ":forged",
            aws_sdk_dynamodb::types::AttributeValue::S("{\"status\":\"forged\"}".into()),
        )
        .send()
        .await
        .unwrap();
    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    let findings = herald_domain::audit::verify(&records, &heads);
    assert!(
        findings.iter().any(|f| f.problem.contains("altered")),
        "{findings:?}"
    );
    env.clients
        .dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", keys.items()[3]["pk"].clone())
        .key("sk", sk_of(3))
        .send()
        .await
        .unwrap();
    let (records, heads) = env.store.export(&env.tenant).await.unwrap();
    let findings = herald_domain::audit::verify(&records, &heads);
    assert!(
        findings.iter().any(|f| f.problem.contains("head says 2")),
        "{findings:?}"
    );
}

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
            MediaType::Png,
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
        .read_prefix(&key, &head.etag, 64)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prefix, photo[..64]);
    assert_eq!(
        env.media
            .read_prefix(&key, "\"not-this-version\"", 64)
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
            .read_prefix(&missing, &head.etag, 8)
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
                text: "with a photo".into(),
                scheduled_at: None,
                targets: vec![Target {
                    account_id: env.account.clone(),
                    text: None,
                    media: None,
                }],
                media: vec![media.id.clone()],
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
    assert_eq!(
        days,
        [herald_domain::media::MEDIA_RETENTION.whole_days() as i32]
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
