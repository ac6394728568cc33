//! Everything a seed's processes share, and how it is built from the seed's config and plan.

use crate::Env;
use crate::config::{START, SimConfig};
use crate::faults::{Fate, Invocation, SimStore, StoreEnv};
use crate::ledger::{Ledger, Stats};
use crate::plan::{Plan, make_plan};
use crate::platform::{FakePlatform, PlatformClientFor};
use crate::queue::{QueueClient, SqsModel};
use crate::rng::{Rng, SharedRng, SimEntropy};
use crate::vclock::{SimClock, Spawner};
use futures::FutureExt;
use herald_domain::alerts::{AlertConfig, Alerter};
use herald_domain::clock::{Clock, Entropy};
use herald_domain::ids::{ApiKeyId, PostId};
use herald_domain::memory::{MemoryAlerts, MemoryStore};
use herald_domain::model::{Account, AccountStatus, Tenant, TenantSettings};
use herald_domain::ports::{AccountStore, TenantStore};
use herald_domain::publishing::gates::Breaker;
use herald_domain::publishing::posts::{Actor, PostService};
use herald_domain::publishing::publish::{PublishConfig, PublishService};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Everything a seed's processes share.
#[derive(Debug)]
pub struct World {
    pub config: SimConfig,
    pub clock: Arc<SimClock>,
    pub ledger: Arc<Ledger>,
    pub stats: Arc<Stats>,
    pub memory: Arc<MemoryStore>,
    pub store: SimStore,
    pub queue: Arc<SqsModel>,
    pub queue_client: QueueClient,
    pub platform: Arc<FakePlatform>,
    pub(crate) entropy: Arc<SimEntropy>,
    /// Alerts the publisher and reconciler raised (kept, not checked).
    pub alerts: Arc<MemoryAlerts>,
    pub(crate) publish_config: PublishConfig,
    pub(crate) posts: PostService,
    /// The media bucket the posts' checks and the publishers read (Instagram's links).
    pub(crate) media: Arc<herald_domain::memory::MemoryMedia>,
    /// Each tenant's one uploaded JPEG, which every Instagram target carries.
    pub(crate) tenant_media: Vec<herald_domain::ids::MediaId>,
    /// Each tenant's video, too large for one invocation: X takes it in chunks.
    pub(crate) tenant_video: Vec<herald_domain::ids::MediaId>,
    pub(crate) fates: SharedRng,
    pub(crate) jitter: SharedRng,
    pub(crate) plan: Plan,
    pub(crate) created: Mutex<BTreeMap<usize, PostId>>,
    pub(crate) next_invocation: AtomicU64,
    pub(crate) running: AtomicUsize,
    pub(crate) api_outstanding: AtomicUsize,
    pub(crate) spawner: Spawner,
    pub(crate) stop: AtomicBool,
    pub(crate) capped: AtomicBool,
}

impl World {
    /// A new invocation with its fate drawn from the seed.
    pub fn invocation(&self, records: usize) -> Arc<Invocation> {
        Stats::bump(&self.stats.invocations);
        let id = self.next_invocation.fetch_add(1, Ordering::Relaxed) + 1;
        let fate = self
            .fates
            .with(|r| Fate::draw(r, self.config.faults, &self.config.rates, records));
        Invocation::new(id, fate)
    }

    /// The publisher's service as one invocation builds it (clients per cold start; here
    /// per invocation, so each takes part in its invocation's fate).
    pub fn publish_service(&self, inv: &Arc<Invocation>) -> PublishService {
        let store = Arc::new(self.store.for_invocation(inv));
        PublishService {
            store: store.clone(),
            limiter: store,
            platform: Arc::new(PlatformClientFor {
                platform: self.platform.clone(),
                inv: Some(inv.clone()),
            }),
            media: self.media.clone(),
            clock: self.clock.clone(),
            entropy: self.entropy.clone() as Arc<dyn Entropy>,
            alerter: self.alerter(),
            tokens: None,
            config: self.publish_config.clone(),
        }
    }

    /// Alerts are deduplicated in the in-memory ledger and kept; faults do not reach them.
    pub fn alerter(&self) -> Alerter {
        Alerter {
            ledger: self.memory.clone(),
            sink: self.alerts.clone(),
            clock: self.clock.clone(),
            config: AlertConfig::default(),
        }
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.time()
    }

    pub(crate) fn actor(&self, tenant: usize) -> Actor {
        Actor {
            tenant_id: self.plan.tenants[tenant].id.clone(),
            key_id: ApiKeyId(format!("key_sim_t{tenant}")),
        }
    }
}

pub(crate) fn build(config: SimConfig) -> World {
    let seed = config.seed;
    let clock = Arc::new(SimClock::new(START));
    let ledger = Arc::new(Ledger::new(config.trace));
    let stats = Arc::new(Stats::default());
    let memory = Arc::new(MemoryStore::new());
    let plan = make_plan(&config, &mut Rng::stream(seed, 1));
    let store = SimStore::new(
        memory.clone(),
        StoreEnv {
            clock: clock.clone(),
            ledger: ledger.clone(),
            stats: stats.clone(),
            rng: SharedRng::new(Rng::stream(seed, 2)),
            faults: config.faults.store,
            rates: config.rates,
            throttles: plan.throttles.clone(),
        },
    );
    let env = Env {
        clock: clock.clone(),
        ledger: ledger.clone(),
        stats: stats.clone(),
    };
    let queue = Arc::new(SqsModel::new(
        &env,
        SharedRng::new(Rng::stream(seed, 3)),
        config.rates,
        config.faults.duplicates,
    ));
    let platform = Arc::new(FakePlatform::new(
        &env,
        SharedRng::new(Rng::stream(seed, 4)),
        seed,
        config.rates,
        config.faults.platform,
        plan.episodes.clone(),
    ));
    let media = Arc::new(herald_domain::memory::MemoryMedia::default());
    let media_service = herald_domain::media::MediaService {
        objects: media.clone(),
        ..herald_domain::memory::MemoryMedia::service(clock.clone())
    };
    let posts = PostService {
        posts: Arc::new(store.clone()),
        accounts: Arc::new(store.clone()),
        tenants: Arc::new(store.clone()),
        // The simulation schedules by time; slots need no faults of their own.
        slots: store.memory.clone(),
        media: media_service.clone(),
        clock: clock.clone() as Arc<dyn Clock>,
    };
    let mut tenant_media = Vec::new();
    let mut tenant_video = Vec::new();
    // Tenants and their connected accounts exist before the run starts.
    for (i, t) in plan.tenants.iter().enumerate() {
        let tenant = Tenant {
            id: t.id.clone(),
            name: format!("tenant {i}"),
            settings: TenantSettings {
                require_approval: t.require_approval,
                ..TenantSettings::default()
            },
            created_at: START,
            suspended: None,
        };
        // The in-memory store answers at once: its futures complete on the first poll.
        let _ = memory.create_tenant(&tenant).now_or_never();
        tenant_media.push(upload(&media_service, &media, &t.id, i, Sample::Jpeg));
        tenant_video.push(upload(&media_service, &media, &t.id, i, Sample::Video));
        for a in &t.accounts {
            ledger.name_account(&a.id, a.label.clone());
            let account = Account {
                id: a.id.clone(),
                tenant_id: t.id.clone(),
                platform: a.platform,
                external_id: a.label.clone(),
                display_name: Some(a.label.clone()),
                access_token: format!("token-{}", a.label).into(),
                refresh_token: None,
                token_expires_at: None,
                status: AccountStatus::Active,
                created_at: START,
                updated_at: START,
                breaker: Breaker::default(),
            };
            let _ = memory.upsert_account(&account).now_or_never();
        }
    }
    let api_outstanding = AtomicUsize::new(plan.api.len());
    World {
        media,
        tenant_media,
        tenant_video,
        queue_client: QueueClient::new(queue.clone(), config.faults.queue),
        entropy: Arc::new(SimEntropy::new(Rng::stream(seed, 5))),
        alerts: Arc::new(MemoryAlerts::default()),
        fates: SharedRng::new(Rng::stream(seed, 6)),
        jitter: SharedRng::new(Rng::stream(seed, 7)),
        publish_config: PublishConfig::default(),
        config,
        clock,
        ledger,
        stats,
        memory,
        store,
        queue,
        platform,
        posts,
        plan,
        created: Mutex::new(BTreeMap::new()),
        next_invocation: AtomicU64::new(0),
        running: AtomicUsize::new(0),
        api_outstanding,
        spawner: Spawner::default(),
        stop: AtomicBool::new(false),
        capped: AtomicBool::new(false),
    }
}

/// What a tenant uploads.
#[derive(Clone, Copy)]
enum Sample {
    Jpeg,
    /// 30 MB: eight chunks, more than one invocation's worth at `CHUNK_TIME` each.
    Video,
}

/// One file uploaded for the tenant, as a client would (created, then its bytes stored).
fn upload(
    service: &herald_domain::media::MediaService,
    bucket: &herald_domain::memory::MemoryMedia,
    tenant: &herald_domain::ids::TenantId,
    n: usize,
    sample: Sample,
) -> herald_domain::ids::MediaId {
    // One copy of each sample for the whole run: the bucket keeps it by reference.
    static JPEG: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    static VIDEO: std::sync::OnceLock<bytes::Bytes> = std::sync::OnceLock::new();
    let (bytes, content_type, file_name) = match sample {
        Sample::Jpeg => (
            JPEG.get_or_init(|| herald_domain::media::samples::jpeg(1080, 1080, 4_000).into()),
            "image/jpeg",
            "sim.jpg",
        ),
        Sample::Video => (
            VIDEO.get_or_init(|| herald_domain::media::samples::mp4(30 * 1024 * 1024).into()),
            "video/mp4",
            "sim.mp4",
        ),
    };
    let actor = Actor {
        tenant_id: tenant.clone(),
        key_id: ApiKeyId(format!("key_sim_t{n}")),
    };
    let new = herald_domain::media::NewMedia {
        content_type: content_type.into(),
        file_name: file_name.into(),
        size: bytes.len() as u64,
    };
    let (record, _) = service
        .create(&actor, new)
        .now_or_never()
        .and_then(Result::ok)
        .unwrap_or_else(|| unreachable!("the in-memory media service answers at once"));
    bucket.put(&record.key, bytes.clone());
    record.id
}
