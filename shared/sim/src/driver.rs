//! One seed's world and its run: tenants and accounts on the three platforms, a plan of posts
//! (created, edited, cancelled, approved through the real `PostService`), pauses, the
//! dispatcher and the reconciler on their one-minute schedules, the publisher's SQS pollers,
//! an operator who reconnects refused accounts, and the faults; then the run until everything
//! is quiet, and the invariants.
//!
//! Everything random is drawn from the seed: the plan up front, the rest (invocation fates,
//! platform answers, queue duplicates, store faults) from per-concern streams as the run goes.

use crate::Env;
use crate::faults::{Fate, Faults, Invocation, Rates, SimStore, StoreEnv};
use crate::invariants::{self, Observed, SeedReport};
use crate::lambda;
use crate::ledger::{Ledger, Stats, TraceLine};
use crate::platform::{Episode, EpisodeKind, FakePlatform, PlatformClientFor};
use crate::queue::{QueueClient, SqsModel};
use crate::rng::{Rng, SharedRng, SimEntropy};
use crate::vclock::{self, RunEnd, SimClock, Spawner};
use futures::FutureExt;
use herald_domain::alerts::{AlertConfig, Alerter};
use herald_domain::clock::{Clock, Entropy};
use herald_domain::gates::{Breaker, Crisis};
use herald_domain::ids::{AccountId, ApiKeyId, PostId, TenantId};
use herald_domain::memory::{MemoryAlerts, MemoryStore};
use herald_domain::model::{
    Account, AccountStatus, Platform, Tenant, TenantSettings, VariantStatus,
};
use herald_domain::ports::{AccountStore, CrisisStore, TenantStore};
use herald_domain::posts::{Actor, NewPost, PostEdit, PostError, PostService, Target};
use herald_domain::publish::{PublishConfig, PublishService};
use herald_domain::reconcile::ReconcileConfig;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

/// When every seed's simulated day begins.
pub const START: OffsetDateTime = datetime!(2026-03-02 08:00 UTC);
const TENANTS: usize = 3;

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Variants (one post to one account) per seed.
    pub publishes: usize,
    pub faults: Faults,
    pub rates: Rates,
    /// Tenants pause and resume publishing.
    pub crises: bool,
    /// The API edits and cancels posts that are not claimed yet.
    pub edits: bool,
    /// The publisher's `Delivery::deadline` is the Lambda deadline less this
    /// (`HERALD_DEADLINE_MARGIN_MS`, 2 s by default).
    pub deadline_margin: Duration,
    /// How long after the last scheduled post the run may go on before it is cut off.
    pub cap: time::Duration,
    /// The reconciler's schedule (`None`: no reconciler, to see what it saves).
    pub reconcile_every: Option<Duration>,
    /// Keep a trace line per event (for replaying a failing seed).
    pub trace: bool,
}

impl SimConfig {
    pub fn new(seed: u64, publishes: usize) -> Self {
        Self {
            seed,
            publishes,
            faults: Faults::ALL,
            rates: Rates::default(),
            crises: true,
            edits: true,
            deadline_margin: Duration::from_secs(2),
            cap: time::Duration::hours(48),
            reconcile_every: Some(Duration::from_secs(60)),
            trace: false,
        }
    }
}

#[derive(Debug)]
struct TenantPlan {
    id: TenantId,
    require_approval: bool,
    accounts: Vec<AccountPlan>,
}

#[derive(Debug, Clone)]
struct AccountPlan {
    id: AccountId,
    platform: Platform,
    /// `t0.x1`: also the account's external id on the fake platform.
    label: String,
}

#[derive(Debug, Clone)]
enum ApiAction {
    Create {
        /// (index of the account in the tenant, whether the variant has its own text)
        targets: Vec<(usize, bool)>,
        scheduled_at: Option<OffsetDateTime>,
    },
    Edit {
        rev: u32,
        text: bool,
        scheduled_at: Option<OffsetDateTime>,
    },
    Cancel,
    Review {
        approve: bool,
    },
}

#[derive(Debug, Clone)]
struct ApiCall {
    at: OffsetDateTime,
    seq: usize,
    tenant: usize,
    action: ApiAction,
}

#[derive(Debug, Clone)]
struct PausePlan {
    tenant: usize,
    at: OffsetDateTime,
    platforms: Vec<Platform>,
    length: time::Duration,
    lift_after: Option<time::Duration>,
}

#[derive(Debug)]
struct Plan {
    tenants: Vec<TenantPlan>,
    api: Vec<ApiCall>,
    pauses: Vec<PausePlan>,
    episodes: Vec<Episode>,
    throttles: Vec<(OffsetDateTime, OffsetDateTime)>,
    /// After this, no new work is planned.
    window_end: OffsetDateTime,
    pollers: usize,
    reconciler_phase: Duration,
}

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
    entropy: Arc<SimEntropy>,
    /// Alerts the publisher and reconciler raised (kept, not checked).
    pub alerts: Arc<MemoryAlerts>,
    publish_config: PublishConfig,
    posts: PostService,
    fates: SharedRng,
    jitter: SharedRng,
    plan: Plan,
    created: Mutex<BTreeMap<usize, PostId>>,
    next_invocation: AtomicU64,
    running: AtomicUsize,
    api_outstanding: AtomicUsize,
    spawner: Spawner,
    stop: AtomicBool,
    capped: AtomicBool,
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
            media: Arc::new(herald_domain::memory::MemoryMedia::default()),
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

    fn now(&self) -> OffsetDateTime {
        self.clock.time()
    }

    fn actor(&self, tenant: usize) -> Actor {
        Actor {
            tenant_id: self.plan.tenants[tenant].id.clone(),
            key_id: ApiKeyId(format!("key_sim_t{tenant}")),
        }
    }
}

/// The outcome of one seed.
#[derive(Debug)]
pub struct SeedRun {
    pub report: SeedReport,
    pub stats: Vec<(&'static str, u64)>,
    pub simulated: time::Duration,
    pub trace: Vec<TraceLine>,
}

/// Builds the seed's world, runs it until it is quiet (or capped), and checks it.
pub fn run_seed(config: SimConfig) -> SeedRun {
    // One thread per seed: the world and its processes are shared with `Rc`.
    let world = Rc::new(build(config));
    spawn_processes(&world);
    let end = vclock::run(&world.clock, &world.spawner, &world.stop);
    let observed = Observed::of(
        &world,
        world.capped.load(Ordering::Relaxed),
        end == RunEnd::Stuck,
    );
    let report = invariants::check(world.config.seed, &observed, &world.ledger);
    SeedRun {
        report,
        stats: world.stats.snapshot(),
        simulated: world.now() - START,
        trace: world.ledger.trace_lines(),
    }
}

fn build(config: SimConfig) -> World {
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
    let posts = PostService {
        posts: Arc::new(store.clone()),
        accounts: Arc::new(store.clone()),
        tenants: Arc::new(store.clone()),
        media: herald_domain::memory::MemoryMedia::service(clock.clone()),
        clock: clock.clone() as Arc<dyn Clock>,
    };
    // Tenants and their connected accounts exist before the run starts.
    for (i, t) in plan.tenants.iter().enumerate() {
        let tenant = Tenant {
            id: t.id.clone(),
            name: format!("tenant {i}"),
            settings: TenantSettings {
                require_approval: t.require_approval,
            },
            created_at: START,
        };
        // The in-memory store answers at once: its futures complete on the first poll.
        let _ = memory.create_tenant(&tenant).now_or_never();
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

fn minutes(m: u64) -> time::Duration {
    time::Duration::minutes(m as i64)
}

fn seconds(s: u64) -> time::Duration {
    time::Duration::seconds(s as i64)
}

/// The seed's script: who posts what when, edits, cancels, reviews, pauses, platform
/// episodes and store throttling.
fn make_plan(config: &SimConfig, rng: &mut Rng) -> Plan {
    let window = minutes(rng.between(120, 480));
    let window_start = START + minutes(1);
    let mut tenants = Vec::new();
    for t in 0..TENANTS {
        let mut accounts = Vec::new();
        for platform in Platform::ALL {
            for n in 0..rng.between(1, 2) {
                let label = format!("t{t}.{}{n}", platform.as_str());
                accounts.push(AccountPlan {
                    id: Account::id_for(platform, &label),
                    platform,
                    label,
                });
            }
        }
        tenants.push(TenantPlan {
            id: TenantId(format!("ten_sim{t}")),
            // The last tenant reviews every post before it goes out.
            require_approval: t == TENANTS - 1,
            accounts,
        });
    }
    // A busy minute: many posts for one tenant at once (rate windows, app budgets).
    let burst_at = window_start + seconds(rng.below(window.whole_seconds() as u64));
    let burst_tenant = rng.index(TENANTS);
    let mut api = Vec::new();
    let mut variants = 0;
    let mut seq = 0;
    let mut window_end = window_start + window;
    while variants < config.publishes {
        seq += 1;
        let burst = rng.chance(0.15);
        let tenant = if burst {
            burst_tenant
        } else {
            rng.index(TENANTS)
        };
        let accounts = tenants[tenant].accounts.len();
        let want = (rng.between(1, 3) as usize)
            .min(accounts)
            .min(config.publishes - variants);
        let mut picked: Vec<usize> = Vec::new();
        while picked.len() < want {
            let a = rng.index(accounts);
            if !picked.contains(&a) {
                picked.push(a);
            }
        }
        picked.sort_unstable();
        variants += picked.len();
        let targets: Vec<(usize, bool)> =
            picked.into_iter().map(|a| (a, rng.chance(0.25))).collect();
        let due = if burst {
            burst_at + seconds(rng.below(60))
        } else {
            window_start + seconds(rng.below(window.whole_seconds() as u64))
        };
        let now_post = rng.chance(0.08);
        let created_at = if now_post {
            due
        } else {
            (due - minutes(rng.below(120))).max(START)
        };
        api.push(ApiCall {
            at: created_at,
            seq,
            tenant,
            action: ApiAction::Create {
                targets,
                scheduled_at: (!now_post).then_some(due),
            },
        });
        let review = |rng: &mut Rng, after: OffsetDateTime| ApiCall {
            at: after + seconds(rng.between(30, 900)),
            seq,
            tenant,
            action: ApiAction::Review {
                approve: rng.chance(0.95),
            },
        };
        if tenants[tenant].require_approval {
            api.push(review(rng, created_at));
        }
        if config.edits {
            // Edits and cancels land around the due time: some before the dispatch, some
            // between dispatch and claim, some too late.
            let span = (due + minutes(5) - created_at).whole_seconds().max(1) as u64;
            let mut rev = 1;
            let mut due_now = due;
            for _ in 0..2 {
                if !rng.chance(0.12) {
                    continue;
                }
                rev += 1;
                let at = created_at + seconds(1 + rng.below(span));
                let text = rng.chance(0.7);
                let reschedule = !text || rng.chance(0.4);
                let scheduled_at = reschedule.then(|| {
                    let to = (due_now + minutes(rng.below(90)) - minutes(30)).max(at);
                    due_now = to;
                    to
                });
                api.push(ApiCall {
                    at,
                    seq,
                    tenant,
                    action: ApiAction::Edit {
                        rev,
                        text,
                        scheduled_at,
                    },
                });
                if tenants[tenant].require_approval {
                    api.push(review(rng, at));
                }
            }
            window_end = window_end.max(due_now);
            if rng.chance(0.04) {
                api.push(ApiCall {
                    at: created_at + seconds(1 + rng.below(span)),
                    seq,
                    tenant,
                    action: ApiAction::Cancel,
                });
            }
        }
    }
    api.sort_by_key(|c| (c.at, c.seq));
    window_end = window_end.max(api.last().map_or(START, |c| c.at));

    let mut pauses = Vec::new();
    if config.crises {
        for tenant in 0..TENANTS {
            for _ in 0..rng.between(0, 2) {
                let platforms = if rng.chance(0.5) {
                    Vec::new()
                } else {
                    let mut p = vec![Platform::ALL[rng.index(3)]];
                    let second = Platform::ALL[rng.index(3)];
                    if rng.chance(0.3) && !p.contains(&second) {
                        p.push(second);
                    }
                    p
                };
                let length = minutes(rng.between(5, 90));
                let lift_after = rng
                    .chance(0.5)
                    .then(|| minutes(rng.between(1, length.whole_minutes() as u64)));
                pauses.push(PausePlan {
                    tenant,
                    at: window_start + seconds(rng.below(window.whole_seconds() as u64)),
                    platforms,
                    length,
                    lift_after,
                });
            }
        }
    }
    let mut episodes = Vec::new();
    if config.faults.platform {
        for platform in Platform::ALL {
            for (kind, chance, lo, hi) in [
                (EpisodeKind::Outage, 0.5, 5, 30),
                (EpisodeKind::RateLimitStorm, 0.3, 2, 15),
            ] {
                if rng.chance(chance) {
                    let from = window_start + seconds(rng.below(window.whole_seconds() as u64));
                    episodes.push(Episode {
                        platform,
                        from,
                        until: from + minutes(rng.between(lo, hi)),
                        kind,
                    });
                }
            }
        }
    }
    let mut throttles = Vec::new();
    if config.faults.store {
        for _ in 0..rng.between(0, 2) {
            let from = window_start + seconds(rng.below(window.whole_seconds() as u64));
            throttles.push((from, from + minutes(rng.between(1, 5))));
        }
    }
    Plan {
        tenants,
        api,
        pauses,
        episodes,
        throttles,
        window_end,
        pollers: rng.between(2, 6) as usize,
        reconciler_phase: rng.millis(0, 59_999),
    }
}

fn spawn_processes(world: &Rc<World>) {
    let w = world.clone();
    world.spawner.spawn(async move { api_script(&w).await });
    let w = world.clone();
    world
        .spawner
        .spawn(async move { dispatcher_schedule(&w).await });
    for _ in 0..world.plan.pollers {
        let w = world.clone();
        world.spawner.spawn(async move { poller(&w).await });
    }
    for pause in world.plan.pauses.clone() {
        let w = world.clone();
        world
            .spawner
            .spawn(async move { pause_script(&w, pause).await });
    }
    let w = world.clone();
    world.spawner.spawn(async move { operator(&w).await });
    if let Some(every) = world.config.reconcile_every {
        let w = world.clone();
        world
            .spawner
            .spawn(async move { reconciler_schedule(&w, every).await });
    }
    let w = world.clone();
    world.spawner.spawn(async move { watcher(&w).await });
}

/// The API's callers, each call at its planned time (concurrent with everything else).
async fn api_script(world: &Rc<World>) {
    for call in world.plan.api.clone() {
        world.clock.sleep_until(call.at).await;
        let w = world.clone();
        world.spawner.spawn(async move {
            api_call(&w, call).await;
            w.api_outstanding.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

fn post_text(seq: usize, rev: u32, tenant: usize) -> String {
    format!("p{seq}.r{rev} news from tenant {tenant}, item {seq}")
}

async fn api_call(world: &World, call: ApiCall) {
    let actor = world.actor(call.tenant);
    let seq = call.seq;
    let created = world
        .created
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&seq)
        .cloned();
    let now = world.now();
    let ledger = &world.ledger;
    match (call.action, created) {
        (
            ApiAction::Create {
                targets,
                scheduled_at,
            },
            _,
        ) => {
            let accounts = &world.plan.tenants[call.tenant].accounts;
            let mut targets: Vec<Target> = targets
                .iter()
                .map(|(a, own_text)| Target {
                    account_id: accounts[*a].id.clone(),
                    text: own_text.then(|| {
                        format!(
                            "p{seq}.r1.{} for {}",
                            accounts[*a].label, accounts[*a].platform
                        )
                    }),
                    media: None,
                })
                .collect();
            let new = |targets: Vec<Target>| NewPost {
                text: post_text(seq, 1, call.tenant),
                scheduled_at,
                targets,
                media: vec![],
            };
            let mut result = world
                .posts
                .create(&actor, new(targets.clone()), format!("corr-p{seq}"))
                .await;
            if let Err(PostError::Invalid(_)) = &result {
                // A target needs reconnecting: the caller drops it and tries again.
                let active = world
                    .memory
                    .list_accounts(&actor.tenant_id)
                    .await
                    .unwrap_or_default();
                targets.retain(|t| {
                    active
                        .iter()
                        .any(|a| a.id == t.account_id && a.status == AccountStatus::Active)
                });
                if !targets.is_empty() {
                    result = world
                        .posts
                        .create(&actor, new(targets), format!("corr-p{seq}"))
                        .await;
                }
            }
            match result {
                Ok(post) => {
                    ledger.name_post(&post.id, seq);
                    world
                        .created
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(seq, post.id.clone());
                    ledger.post_event(now, seq, || {
                        format!(
                            "created ({}, due {}, {} variants)",
                            post.status.as_str(),
                            post.scheduled_at,
                            post.variants.len()
                        )
                    });
                }
                Err(e) => ledger.post_event(now, seq, || format!("create refused: {e}")),
            }
        }
        (_, None) => {}
        (
            ApiAction::Edit {
                rev,
                text,
                scheduled_at,
            },
            Some(id),
        ) => {
            let edit = PostEdit {
                text: text.then(|| post_text(seq, rev, call.tenant)),
                scheduled_at,
                targets: None,
                media: None,
            };
            let result = world.posts.edit(&actor, &id, edit).await;
            count(&result, &world.stats.edits, &world.stats.edits_refused);
            ledger.post_event(world.now(), seq, || match &result {
                Ok(p) => format!("edited to r{rev} (due {})", p.scheduled_at),
                Err(e) => format!("edit r{rev} refused: {e}"),
            });
        }
        (ApiAction::Cancel, Some(id)) => {
            let result = world.posts.cancel(&actor, &id).await;
            count(&result, &world.stats.cancels, &world.stats.cancels_refused);
            ledger.post_event(world.now(), seq, || match &result {
                Ok(_) => "cancelled".into(),
                Err(e) => format!("cancel refused: {e}"),
            });
        }
        (ApiAction::Review { approve }, Some(id)) => {
            let result = world.posts.review(&actor, &id, approve, None).await;
            if result.is_ok() {
                Stats::bump(&world.stats.reviews);
            }
            ledger.post_event(world.now(), seq, || match &result {
                Ok(p) => format!("reviewed: {}", p.status.as_str()),
                Err(e) => format!("review refused: {e}"),
            });
        }
    }
}

fn count<T>(result: &Result<T, PostError>, ok: &AtomicU64, refused: &AtomicU64) {
    Stats::bump(if result.is_ok() { ok } else { refused });
}

/// EventBridge `rate(1 minute)`: a dispatcher invocation every minute, overlapping if slow.
async fn dispatcher_schedule(world: &Rc<World>) {
    let mut next = START + time::Duration::minutes(1);
    loop {
        world.clock.sleep_until(next).await;
        let w = world.clone();
        world
            .spawner
            .spawn(async move { lambda::dispatcher(&w).await });
        next += time::Duration::minutes(1);
    }
}

/// One of the event source mapping's pollers: receive a batch, invoke, repeat.
async fn poller(world: &World) {
    loop {
        let batch = world.queue.receive(lambda::BATCH_SIZE);
        if batch.is_empty() {
            world.queue.wait_for_messages().await;
            continue;
        }
        // Getting the batch to a warm instance; now and then a cold start.
        let start = world.jitter.with(|r| {
            if r.chance(0.02) {
                r.millis(200, 900)
            } else {
                r.millis(5, 40)
            }
        });
        world.clock.sleep_for(start).await;
        world.running.fetch_add(1, Ordering::Relaxed);
        lambda::publisher(world, batch).await;
        world.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A tenant's admin pauses publishing (crisis mode), and maybe lifts the pause early.
async fn pause_script(world: &World, pause: PausePlan) {
    world.clock.sleep_until(pause.at).await;
    let now = world.now();
    let tenant_id = world.plan.tenants[pause.tenant].id.clone();
    let crisis = Crisis {
        tenant_id: tenant_id.clone(),
        platforms: pause.platforms.clone(),
        reason: "simulated crisis".into(),
        started_by: ApiKeyId(format!("key_sim_t{}", pause.tenant)),
        started_at: now,
        expires_at: now + pause.length,
    };
    if world.store.put_crisis(&crisis).await.is_ok() {
        Stats::bump(&world.stats.pauses);
        world.ledger.world_event(world.now(), || {
            format!(
                "t{} paused {:?} until {}",
                pause.tenant, pause.platforms, crisis.expires_at
            )
        });
    }
    if let Some(after) = pause.lift_after {
        world.clock.sleep_until(now + after).await;
        let _ = world.store.delete_crisis(&tenant_id).await;
        world
            .ledger
            .world_event(world.now(), || format!("t{} pause lifted", pause.tenant));
    }
}

/// An operator who reconnects accounts whose token was refused, every ten minutes.
async fn operator(world: &World) {
    loop {
        world.clock.sleep_for(Duration::from_secs(600)).await;
        for t in &world.plan.tenants {
            let accounts = world.store.list_accounts(&t.id).await.unwrap_or_default();
            for mut a in accounts {
                if a.status == AccountStatus::NeedsReauth {
                    // Read-modify-write, so the breaker the account carries is kept.
                    a.status = AccountStatus::Active;
                    a.updated_at = world.now();
                    if world.store.upsert_account(&a).await.is_ok() {
                        Stats::bump(&world.stats.reconnects);
                        world.ledger.world_event(world.now(), || {
                            format!("{} reconnected", world.ledger.account_label(&a.id))
                        });
                    }
                }
            }
        }
    }
}

/// EventBridge `rate(1 minute)` for the reconciler (`SimConfig::reconcile_every`).
async fn reconciler_schedule(world: &Rc<World>, every: Duration) {
    // Its own phase against the dispatcher's, drawn from the seed.
    world.clock.sleep_for(world.plan.reconciler_phase).await;
    loop {
        world.clock.sleep_for(every).await;
        let w = world.clone();
        world
            .spawner
            .spawn(async move { lambda::reconciler(&w).await });
    }
}

/// Ends the run once nothing is left to happen, or at the cap.
async fn watcher(world: &World) {
    let cap = world.plan.window_end + world.config.cap;
    loop {
        world.clock.sleep_for(Duration::from_secs(60)).await;
        let now = world.now();
        if now >= cap {
            world.capped.store(true, Ordering::Relaxed);
            world.stop.store(true, Ordering::Relaxed);
            return;
        }
        // With a reconciler, a claim left `publishing` is work to come, until the reconciler
        // has clearly missed it (its lease plus ten runs): then it is lost, and waiting for
        // the cap would only burn time.
        let give_up = ReconcileConfig::default().lease + time::Duration::minutes(10);
        let reconciling = world.config.reconcile_every.is_some();
        let pending_claim = |claimed_at: Option<OffsetDateTime>| {
            reconciling && claimed_at.is_none_or(|at| at + give_up > now)
        };
        let quiet = world.api_outstanding.load(Ordering::Relaxed) == 0
            && now >= world.plan.window_end
            && world.running.load(Ordering::Relaxed) == 0
            && world.queue.is_empty()
            && !world.memory.all_posts().iter().any(|p| {
                p.due_at().is_some()
                    || p.variants.values().any(|v| {
                        v.status == VariantStatus::Publishing && pending_claim(v.claimed_at)
                    })
            });
        if quiet {
            world.stop.store(true, Ordering::Relaxed);
            return;
        }
    }
}
