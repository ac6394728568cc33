//! The adapters against the emulated DynamoDB and SQS, with AWS calls counted.

use crate::support::*;
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
use herald_domain::dead_letters::{
    DeadLetterQuery, DeadLetterQueues, DeadLetterRecords, DeadLetterService,
};
use herald_domain::idempotency::{Begin, Idempotency, IdempotencyKey, StoredResponse};
use herald_domain::ids::{AccountId, ApiKeyId, PostId, TenantId};
use herald_domain::media::{
    DEFAULT_UPLOAD_URL_TTL, MediaError, MediaQuota, MediaRule, MediaService, MediaType, NewMedia,
    PresignedUpload, Resolved, samples,
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
use secrecy::SecretString;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Default)]
struct RecordingPlatform {
    published: Mutex<Vec<String>>,
    /// What each published post answers, in the same order.
    parents: Mutex<Vec<Option<String>>>,
    fail_with: Mutex<Option<PlatformError>>,
    /// The bytes of every media upload, in order.
    uploads: Mutex<Vec<Vec<u8>>>,
}

#[async_trait]
impl PlatformClient for RecordingPlatform {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        for upload in req.media {
            let bytes = upload.into_content().unwrap().collect().await.unwrap();
            self.uploads.lock().unwrap().push(bytes);
        }
        if let Some(e) = self.fail_with.lock().unwrap().clone() {
            return Err(e);
        }
        let mut p = self.published.lock().unwrap();
        p.push(req.text.to_owned());
        self.parents
            .lock()
            .unwrap()
            .push(req.reply_to.map(str::to_owned));
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
        counts_attempt: true,
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
        let Emulator { vars, clients } = Emulator::new().await;
        let store = Arc::new(store_on(&clients, &vars, [9; 32]));
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
            slots: self.store.clone(),
            media: MediaService {
                records: self.store.clone(),
                objects: self.media.clone(),
                clock: Arc::new(SystemClock),
                upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
                quota: Default::default(),
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
                    alt_text: Default::default(),
                    text: text.into(),
                    scheduled_at: None,
                    targets: vec![Target {
                        options: Default::default(),
                        account_id: self.account.clone(),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: false,
                },
                "corr-it".into(),
            )
            .await
            .unwrap()
    }

    /// Alerts go to the log; the ledger is the real table.
    fn alerter(&self) -> herald_domain::alerts::Alerter {
        herald_platforms::alerter(None, self.store.clone(), Arc::new(SystemClock))
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
            step: 0,
            more: false,
        };
        self.store
            .record_outcome(v, attempt, &outcome, false, &audit, Some(reset))
            .await
            .unwrap();
    }

    /// Records `times` failures on the test account's breaker; answers the breaker as stored.
    async fn fail(&self, times: u32, policy: BreakerPolicy, now: time::OffsetDateTime) -> Breaker {
        let mut breaker = Breaker::default();
        for _ in 0..times {
            let change = BreakerChange::Failure { policy, now };
            let update = self
                .store
                .update_breaker(&self.tenant, &self.account, change);
            breaker = update.await.unwrap();
        }
        breaker
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

mod audit;
mod backup;
mod calendar;
mod campaigns;
mod contacts;
mod imports;
mod keys;
mod media;
mod offboarding;
mod publish;
mod queues;
mod resets;
mod wallet;
