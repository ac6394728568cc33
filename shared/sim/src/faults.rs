//! What can go wrong, and how often: the fault switches, their rates, the fate of one Lambda
//! invocation (crash, stall), and the store wrapper that injects throttling and lost
//! responses around the in-memory store.
//!
//! Faults are decided from the seed's streams only. The wrapper adds a few milliseconds of
//! virtual latency to every store call, so concurrent processes interleave at the same await
//! points as they would against DynamoDB; it never changes what the store decides.

use crate::ledger::{Ledger, PauseChange, Stats};
use crate::rng::{Rng, SharedRng};
use crate::vclock::SimClock;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::audit::{AuditEntry, AuditRecord, ChainHead};
use herald_domain::ids::{AccountId, PostId, TenantId};
use herald_domain::memory::MemoryStore;
use herald_domain::model::{Account, ApiKey, Platform, Post, Tenant, TenantSettings};
use herald_domain::ports::*;
use herald_domain::publishing::gates::{Breaker, Crisis, WindowSlot};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

/// Fault classes, each switchable from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// Invocations (publisher and dispatcher) die at a random call, or at an outcome write.
    pub crashes: bool,
    /// Invocations stall at a random call, long enough to hit the Lambda timeout at times.
    pub timeouts: bool,
    /// Store throttling and unavailability before a write; lost responses after one.
    pub store: bool,
    /// 429, 5xx, ambiguous (sent, no answer), permanent, auth, slow calls, lookup failures.
    pub platform: bool,
    /// At-least-once SQS: a message delivered again while in flight, sent twice, or back
    /// after its delete.
    pub duplicates: bool,
    /// SQS calls failing: send entries, deletes, visibility changes, delayed sends.
    pub queue: bool,
}

impl Faults {
    pub const ALL: Faults = Faults {
        crashes: true,
        timeouts: true,
        store: true,
        platform: true,
        duplicates: true,
        queue: true,
    };
    pub const NONE: Faults = Faults {
        crashes: false,
        timeouts: false,
        store: false,
        platform: false,
        duplicates: false,
        queue: false,
    };

    pub fn describe(&self) -> String {
        let on: Vec<&str> = [
            (self.crashes, "crashes"),
            (self.timeouts, "timeouts"),
            (self.store, "store"),
            (self.platform, "platform"),
            (self.duplicates, "duplicates"),
            (self.queue, "queue"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        if on.is_empty() {
            "none".into()
        } else {
            on.join(",")
        }
    }
}

/// How often each fault strikes when its class is on. Probabilities are per call unless said.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Per invocation.
    pub crash: f64,
    /// Per invocation.
    pub stall: f64,
    pub store_unavailable: f64,
    /// During a throttling episode.
    pub store_throttled: f64,
    /// The write is applied but the caller sees a timeout.
    pub store_lost_response: f64,
    pub platform_rate_limited: f64,
    pub platform_transient: f64,
    /// Sent, created, no answer.
    pub platform_ambiguous: f64,
    /// Sent, not created, no answer.
    pub platform_ambiguous_lost: f64,
    pub platform_permanent: f64,
    pub platform_auth: f64,
    /// Per post text: the platform fails it with a 500 every time (it trips over something
    /// in that post). The only way a message reaches the DLQ for real.
    pub platform_poison: f64,
    /// A call slower than usual (seconds); past the client's timeout it ends ambiguous.
    pub platform_slow: f64,
    pub lookup_failure: f64,
    /// In-flight message handed out again a few seconds later (per receive).
    pub duplicate_delivery: f64,
    /// A send that enqueues the message twice (per entry).
    pub duplicate_send: f64,
    /// A delete that does not stick: the message comes back (per delete).
    pub resurrection: f64,
    pub queue_call_failure: f64,
    pub queue_entry_failure: f64,
}

impl Default for Rates {
    fn default() -> Self {
        Self {
            crash: 0.02,
            stall: 0.01,
            store_unavailable: 0.003,
            store_throttled: 0.3,
            store_lost_response: 0.002,
            platform_rate_limited: 0.01,
            platform_transient: 0.02,
            platform_ambiguous: 0.01,
            platform_ambiguous_lost: 0.005,
            platform_permanent: 0.003,
            platform_auth: 0.0002,
            platform_poison: 0.002,
            platform_slow: 0.02,
            lookup_failure: 0.03,
            duplicate_delivery: 0.01,
            duplicate_send: 0.005,
            resurrection: 0.002,
            queue_call_failure: 0.003,
            queue_entry_failure: 0.005,
        }
    }
}

/// How one invocation ends, decided when it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Normal,
    /// Dies as it starts its `n`-th outside call (store, platform or queue): that call and
    /// everything after it never happen.
    CrashAtCall(u32),
    /// Dies at its `nth` outcome write: before the write, or after it (the answer is lost).
    CrashAtOutcome {
        nth: u32,
        applied: bool,
    },
    /// Hangs this long at its `nth` call (a stuck connection); past the timeout it is killed.
    StallAtCall {
        nth: u32,
        stall: Duration,
    },
}

impl Fate {
    /// `records`: the batch size, to aim crashes where the work is.
    pub fn draw(rng: &mut Rng, faults: Faults, rates: &Rates, records: usize) -> Fate {
        let calls = (records as u64).max(1) * 6 + 2;
        if faults.crashes && rng.chance(rates.crash) {
            if rng.chance(0.5) {
                Fate::CrashAtOutcome {
                    nth: rng.between(1, records.max(1) as u64) as u32,
                    applied: rng.chance(0.5),
                }
            } else {
                Fate::CrashAtCall(rng.between(1, calls) as u32)
            }
        } else if faults.timeouts && rng.chance(rates.stall) {
            Fate::StallAtCall {
                nth: rng.between(1, calls) as u32,
                stall: rng.millis(5_000, 60_000),
            }
        } else {
            Fate::Normal
        }
    }
}

/// One Lambda invocation as the outside world sees it: it makes calls until it returns, dies,
/// or is killed at its timeout.
#[derive(Debug)]
pub struct Invocation {
    pub id: u64,
    pub fate: Fate,
    calls: AtomicU32,
    outcomes: AtomicU32,
    crashed: AtomicBool,
}

impl Invocation {
    pub fn new(id: u64, fate: Fate) -> Arc<Self> {
        Arc::new(Self {
            id,
            fate,
            calls: AtomicU32::new(0),
            outcomes: AtomicU32::new(0),
            crashed: AtomicBool::new(false),
        })
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::Relaxed)
    }

    /// A dead process makes no further progress: whoever awaits this is dropped with it.
    async fn die(&self) {
        self.crashed.store(true, Ordering::Relaxed);
        std::future::pending::<()>().await;
    }

    /// Before every outside call.
    pub async fn call(&self, clock: &SimClock) {
        if self.crashed() {
            std::future::pending::<()>().await;
        }
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        match self.fate {
            Fate::CrashAtCall(k) if k == n => self.die().await,
            Fate::StallAtCall { nth, stall } if nth == n => clock.sleep_for(stall).await,
            _ => {}
        }
    }

    /// Around an outcome write: `applied` false just before it, true just after.
    pub async fn outcome(&self, applied: bool) {
        let n = if applied {
            self.outcomes.load(Ordering::Relaxed)
        } else {
            self.outcomes.fetch_add(1, Ordering::Relaxed) + 1
        };
        if let Fate::CrashAtOutcome { nth, applied: at } = self.fate
            && nth == n
            && at == applied
        {
            self.die().await;
        }
    }
}

/// What the store wrapper shares between its clones.
#[derive(Debug)]
pub struct StoreEnv {
    pub clock: Arc<SimClock>,
    pub ledger: Arc<Ledger>,
    pub stats: Arc<Stats>,
    pub rng: SharedRng,
    pub faults: bool,
    pub rates: Rates,
    /// Episodes in which much of the traffic is throttled (a hot partition, a burst).
    pub throttles: Vec<(OffsetDateTime, OffsetDateTime)>,
}

/// The in-memory store behind DynamoDB-like latency and faults. A clone with an invocation
/// attached takes part in that invocation's fate (crash, stall).
#[derive(Debug, Clone)]
pub struct SimStore {
    pub memory: Arc<MemoryStore>,
    env: Arc<StoreEnv>,
    inv: Option<Arc<Invocation>>,
}

impl SimStore {
    pub fn new(memory: Arc<MemoryStore>, env: StoreEnv) -> Self {
        Self {
            memory,
            env: Arc::new(env),
            inv: None,
        }
    }

    pub fn for_invocation(&self, inv: &Arc<Invocation>) -> Self {
        Self {
            inv: Some(inv.clone()),
            ..self.clone()
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.env.clock.time()
    }

    async fn latency(&self) {
        let d = self.env.rng.millis(3, 15);
        self.env.clock.sleep_for(d).await;
    }

    /// Before a publisher's or dispatcher's call: its fate, the latency, then maybe a refusal.
    async fn before(&self, op: &'static str) -> Result<(), StoreError> {
        if let Some(inv) = &self.inv {
            inv.call(&self.env.clock).await;
        }
        self.latency().await;
        if !self.env.faults {
            return Ok(());
        }
        let now = self.now();
        let throttled = self
            .env
            .throttles
            .iter()
            .any(|(a, b)| *a <= now && now < *b);
        let p = if throttled {
            self.env.rates.store_throttled
        } else {
            self.env.rates.store_unavailable
        };
        if self.env.rng.chance(p) {
            Stats::bump(&self.env.stats.store_refused);
            return Err(StoreError::Unavailable(format!(
                "{op}: throttled (simulated)"
            )));
        }
        Ok(())
    }

    /// After a write was applied: maybe the answer is lost.
    fn after_write(&self, op: &'static str) -> Result<(), StoreError> {
        if self.env.faults && self.env.rng.chance(self.env.rates.store_lost_response) {
            Stats::bump(&self.env.stats.store_lost_responses);
            return Err(StoreError::Unavailable(format!(
                "{op}: timed out after the write was applied (simulated)"
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl PublishStore for SimStore {
    async fn claim_for_publish(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        gate: &ClaimGate,
    ) -> Result<(), ClaimRejected> {
        let ledger = &self.env.ledger;
        if let Err(e) = self.before("claim_for_publish").await {
            ledger.variant_event(self.now(), variant, || format!("claim {attempt_id}: {e}"));
            return Err(ClaimRejected::Store(e));
        }
        let result = self
            .memory
            .claim_for_publish(variant, attempt_id, gate)
            .await;
        let now = self.now();
        match &result {
            Ok(()) => {
                ledger.claim_committed(now, variant, gate.platform);
                Stats::bump(&self.env.stats.claims);
                ledger.variant_event(now, variant, || format!("claimed by {attempt_id}"));
            }
            Err(r) => ledger.variant_event(now, variant, || {
                format!("claim {attempt_id} rejected: {}", rejection(r))
            }),
        }
        result?;
        self.after_write("claim_for_publish").map_err(|e| {
            ledger.variant_event(now, variant, || format!("claim {attempt_id}: {e}"));
            ClaimRejected::Store(e)
        })
    }

    async fn load_for_publish(&self, variant: &VariantRef) -> Result<Loaded, StoreError> {
        if let Err(e) = self.before("load_for_publish").await {
            self.env
                .ledger
                .variant_event(self.now(), variant, || format!("load: {e}"));
            return Err(e);
        }
        self.memory.load_for_publish(variant).await
    }

    async fn record_outcome(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        outcome: &VariantOutcome,
        lookup: bool,
        audit: &AuditRecord,
        reset: Option<BreakerReset>,
    ) -> Result<(), StoreError> {
        let ledger = &self.env.ledger;
        if let Some(inv) = &self.inv {
            inv.outcome(false).await;
        }
        if let Err(e) = self.before("record_outcome").await {
            ledger.variant_event(self.now(), variant, || format!("outcome {attempt_id}: {e}"));
            return Err(e);
        }
        let result = self
            .memory
            .record_outcome(variant, attempt_id, outcome, lookup, audit, reset)
            .await;
        let now = self.now();
        ledger.variant_event(now, variant, || {
            format!(
                "outcome {attempt_id} {}{} by {}: {}",
                outcome_name(outcome),
                if lookup { " (look up first)" } else { "" },
                audit.entry.actor,
                match &result {
                    Ok(()) => "recorded".to_owned(),
                    Err(e) => e.to_string(),
                }
            )
        });
        result?;
        if let Some(inv) = &self.inv {
            inv.outcome(true).await;
        }
        self.after_write("record_outcome").inspect_err(|e| {
            ledger.variant_event(now, variant, || format!("outcome {attempt_id}: {e}"));
        })
    }

    async fn update_breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        change: BreakerChange,
    ) -> Result<Breaker, StoreError> {
        self.before("update_breaker").await?;
        let b = self.memory.update_breaker(tenant, account, change).await?;
        self.after_write("update_breaker")?;
        Ok(b)
    }

    async fn keep_progress(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.before("keep_progress").await?;
        self.memory.keep_progress(variant, attempt_id, value).await
    }

    async fn mark_needs_reauth(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.before("mark_needs_reauth").await?;
        self.memory.mark_needs_reauth(tenant, account, now).await?;
        self.env.ledger.world_event(self.now(), || {
            format!(
                "account {} needs reauth",
                self.env.ledger.account_label(account)
            )
        });
        self.after_write("mark_needs_reauth")
    }
}

#[async_trait]
impl AppLimiter for SimStore {
    async fn reserve(
        &self,
        slot: &WindowSlot,
        wanted: u32,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        self.before("reserve").await?;
        let r = self.memory.reserve(slot, wanted, now).await?;
        self.after_write("reserve")?;
        Ok(r)
    }

    async fn block_app(&self, platform: Platform, until: OffsetDateTime) -> Result<(), StoreError> {
        self.before("block_app").await?;
        self.memory.block_app(platform, until).await?;
        self.env.ledger.world_event(self.now(), || {
            format!("{platform} app blocked until {until}")
        });
        self.after_write("block_app")
    }
}

#[async_trait]
impl DispatchStore for SimStore {
    async fn due_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.before("due_posts").await?;
        self.memory.due_posts(now, limit).await
    }

    async fn claim_for_dispatch(
        &self,
        post: &PostRef,
        now: OffsetDateTime,
        token: &str,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError> {
        self.before("claim_for_dispatch").await?;
        let p = self
            .memory
            .claim_for_dispatch(post, now, token, lease_until)
            .await?;
        if let (Some(_), Some(seq)) = (&p, self.env.ledger.post_seq(&post.post_id)) {
            self.env
                .ledger
                .post_event(self.now(), seq, || "dispatch claimed".into());
        }
        self.after_write("claim_for_dispatch")?;
        Ok(p)
    }

    async fn confirm_dispatch(&self, post: &PostRef, token: &str) -> Result<(), StoreError> {
        self.before("confirm_dispatch").await?;
        self.memory.confirm_dispatch(post, token).await?;
        self.after_write("confirm_dispatch")
    }
}

#[async_trait]
impl ReconcileStore for SimStore {
    async fn inflight_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError> {
        self.before("inflight_posts").await?;
        self.memory.inflight_posts(now, limit).await
    }

    async fn reschedule_inflight(
        &self,
        post: &PostRef,
        next: Option<OffsetDateTime>,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.before("reschedule_inflight").await?;
        self.memory
            .reschedule_inflight(post, next, expected_version)
            .await?;
        self.after_write("reschedule_inflight")
    }
}

#[async_trait]
impl HeartbeatStore for SimStore {
    async fn beat(&self, name: &str, at: OffsetDateTime, summary: &str) -> Result<(), StoreError> {
        self.before("beat").await?;
        self.memory.beat(name, at, summary).await
    }

    async fn last_beat(&self, name: &str) -> Result<Option<(OffsetDateTime, String)>, StoreError> {
        self.before("last_beat").await?;
        self.memory.last_beat(name).await
    }
}

#[async_trait]
impl AuditLog for SimStore {
    async fn head(&self, tenant: &TenantId, entity: &str) -> Result<ChainHead, StoreError> {
        self.before("audit_head").await?;
        self.memory.head(tenant, entity).await
    }

    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        self.before("audit_append").await?;
        let record = self.memory.append(entry).await?;
        self.after_write("audit_append")?;
        Ok(record)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.memory.list(tenant, filter, cursor, limit).await
    }

    async fn export(
        &self,
        tenant: &TenantId,
    ) -> Result<(Vec<AuditRecord>, BTreeMap<String, ChainHead>), StoreError> {
        self.memory.export(tenant).await
    }
}

// The API's side (posts, accounts, tenants, pauses): latency only. Its own failure modes are
// the API's tests' business; here it must just race the publisher realistically.

#[async_trait]
impl PostStore for SimStore {
    async fn insert_post(&self, post: &Post) -> Result<(), StoreError> {
        self.latency().await;
        self.memory.insert_post(post).await
    }

    async fn get_post(&self, tenant: &TenantId, id: &PostId) -> Result<Option<Post>, StoreError> {
        self.latency().await;
        self.memory.get_post(tenant, id).await
    }

    async fn list_posts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.latency().await;
        self.memory.list_posts(tenant, cursor, limit).await
    }

    async fn replace_post(&self, post: &Post, expected_version: u64) -> Result<(), StoreError> {
        self.latency().await;
        self.memory.replace_post(post, expected_version).await
    }

    async fn posts_between(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        self.latency().await;
        self.memory
            .posts_between(tenant, from, to, cursor, limit)
            .await
    }
}

#[async_trait]
impl AccountStore for SimStore {
    async fn upsert_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.latency().await;
        self.memory.upsert_account(account).await
    }

    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        self.latency().await;
        self.memory.get_account(tenant, id).await
    }

    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError> {
        self.latency().await;
        self.memory.list_accounts(tenant).await
    }

    async fn delete_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        self.latency().await;
        self.memory.delete_account(tenant, id).await
    }
}

#[async_trait]
impl TenantStore for SimStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.memory.create_tenant(tenant).await
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.latency().await;
        self.memory.get_tenant(id).await
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        self.memory.update_settings(id, settings).await
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.memory.put_api_key(key).await
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.memory.find_api_key(hash).await
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.memory.list_api_keys(tenant).await
    }

    async fn change_api_key(
        &self,
        tenant: &TenantId,
        id: &herald_domain::ids::ApiKeyId,
        change: &herald_domain::model::KeyChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.memory.change_api_key(tenant, id, change).await
    }

    async fn touch_api_key(
        &self,
        hash: &str,
        at: time::OffsetDateTime,
        since: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.memory.touch_api_key(hash, at, since).await
    }

    async fn set_suspension(
        &self,
        tenant: &TenantId,
        suspension: Option<&herald_domain::model::Suspension>,
    ) -> Result<bool, StoreError> {
        self.memory.set_suspension(tenant, suspension).await
    }
}

#[async_trait]
impl CrisisStore for SimStore {
    async fn get_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.latency().await;
        self.memory.get_crisis(tenant).await
    }

    /// The pause is committed when the inner write returns: that instant goes in the ledger,
    /// in the same order as the claims.
    async fn put_crisis(&self, crisis: &Crisis) -> Result<(), StoreError> {
        self.latency().await;
        self.memory.put_crisis(crisis).await?;
        self.env
            .ledger
            .pause_committed(self.now(), PauseChange::Put(crisis.clone()));
        Ok(())
    }

    async fn delete_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError> {
        self.latency().await;
        let old = self.memory.delete_crisis(tenant).await?;
        self.env
            .ledger
            .pause_committed(self.now(), PauseChange::Delete(tenant.clone()));
        Ok(old)
    }
}

fn rejection(r: &ClaimRejected) -> String {
    match r {
        ClaimRejected::NotClaimable => "not claimable".into(),
        ClaimRejected::Held { until } => format!("held by another attempt until {until}"),
        ClaimRejected::Paused { until } => format!("paused until {until}"),
        ClaimRejected::RateLimited { until } => format!("account window full until {until}"),
        ClaimRejected::Breaker(b) => format!("breaker {}", b.state.as_str()),
        ClaimRejected::Contended => "contended".into(),
        ClaimRejected::Store(e) => e.to_string(),
    }
}

pub fn outcome_name(o: &VariantOutcome) -> String {
    match o {
        VariantOutcome::Published {
            platform_post_id, ..
        } => format!("published {platform_post_id}"),
        VariantOutcome::Failed(e) => format!("failed ({})", e.kind.as_str()),
        VariantOutcome::Retrying(e) => format!("retrying ({})", e.kind.as_str()),
        VariantOutcome::DeadLettered(e) => format!("dead_lettered ({})", e.kind.as_str()),
        VariantOutcome::Unknown(e) => format!("unknown ({})", e.kind.as_str()),
    }
}
