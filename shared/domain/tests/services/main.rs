//! The services against the in-memory ports, with a fake clock and a scripted platform.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::audit::AuditRecord;
use herald_domain::clock::{Clock, Entropy, FakeClock};
use herald_domain::ids::MediaId;
use herald_domain::ids::{AccountId, ApiKeyId, TenantId};
use herald_domain::media::{
    DEFAULT_UPLOAD_URL_TTL, MediaError, MediaQuota, MediaRecord, MediaRule, MediaService,
    MediaStatus, MediaType, MediaUsage, NewMedia, samples,
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
    ChunkSource, LookupRequest, MediaBody, MediaUpload, PlatformClient, PlatformError,
    PublishRequest, PublishedPost, StepProgress, UPLOAD_CHUNK_BYTES,
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
    /// Published, nothing else to say.
    Publish,
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
    /// What each published post answers, in the same order (`None`: a post of its own).
    parents: Mutex<Vec<Option<String>>>,
    lookups: Mutex<usize>,
    /// Every media upload, in order: (media id, the bytes received).
    uploads: Mutex<Vec<(String, Vec<u8>)>>,
    /// A resumable upload's bytes so far: one chunk goes up per call, from the kept offset.
    partial: Mutex<Vec<u8>>,
    /// Resumable uploads answer "continues" without moving on (and keep nothing).
    stalled: Mutex<bool>,
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
    fn parents(&self) -> Vec<Option<String>> {
        self.parents.lock().unwrap().clone()
    }
}

impl ScriptedPlatform {
    /// One chunk from the kept offset, kept; the whole file once the last chunk is up.
    async fn resume(
        &self,
        source: &ChunkSource,
        size: u64,
        progress: &dyn StepProgress,
    ) -> Result<Vec<u8>, PlatformError> {
        let continues = |moved| PlatformError::UploadContinues {
            message: "continues".into(),
            moved,
        };
        if *self.stalled.lock().unwrap() {
            return Err(continues(false));
        }
        let from: u64 = progress.kept().map_or(0, |k| k.parse().unwrap());
        let chunk = source.read(from, UPLOAD_CHUNK_BYTES).await?;
        let sent = from + chunk.len() as u64;
        {
            let mut partial = self.partial.lock().unwrap();
            assert_eq!(partial.len() as u64, from, "resumed where it stopped");
            partial.extend_from_slice(&chunk);
        }
        progress.keep(&sent.to_string()).await?;
        if sent < size {
            return Err(continues(true));
        }
        Ok(std::mem::take(&mut *self.partial.lock().unwrap()))
    }
}

#[async_trait]
impl PlatformClient for ScriptedPlatform {
    async fn publish(&self, req: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        for MediaUpload { attachment, body } in req.media {
            let id = attachment.media_id.0.clone();
            let bytes = match body {
                MediaBody::Chunks(source) => {
                    self.resume(&source, attachment.size, req.progress).await?
                }
                body => MediaUpload { attachment, body }
                    .into_content()
                    .unwrap()
                    .collect()
                    .await
                    .unwrap(),
            };
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
        self.parents
            .lock()
            .unwrap()
            .push(req.reply_to.map(str::to_owned));
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
        let parents = self.parents.lock().unwrap();
        Ok(published
            .iter()
            .zip(parents.iter())
            .position(|((p, ext, text), parent)| {
                *p == req.platform
                    && ext == req.external_id
                    && text == req.text
                    && parent.as_deref() == req.reply_to
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
                settings: TenantSettings {
                    require_approval,
                    ..TenantSettings::default()
                },
                created_at: clock.now(),
                suspended: None,
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
            slots: store.clone(),
            media: MediaService {
                records: store.clone(),
                objects: media.clone(),
                clock: clock.clone(),
                upload_url_ttl: DEFAULT_UPLOAD_URL_TTL,
                quota: Default::default(),
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
                    alt_text: Default::default(),
                    text: text.into(),
                    scheduled_at: Some(self.clock.now() + time::Duration::seconds(in_secs)),
                    targets: accounts
                        .iter()
                        .map(|a| Target {
                            options: Default::default(),
                            account_id: AccountId((*a).into()),
                            text: None,
                            media: None,
                        })
                        .collect(),
                    media: vec![],
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: false,
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

mod drafts;
mod lifecycle;
mod media;
mod metrics;
mod publish;
mod slots;
mod threads;
