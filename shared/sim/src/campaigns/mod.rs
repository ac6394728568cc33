//! SMS campaigns in the simulation. Per seed, one tenant's contacts (some never opted in), its
//! credits (sometimes short at first: the enqueue must reserve nothing), a campaign enqueued
//! twice, and the real `SmsSender` working its batches behind a model queue that delivers them
//! at least once, out of order and again after a failed run. Around it: a store whose claims
//! and outcomes sometimes fail after they were written (a crash or a lost answer) or before, a
//! provider that throttles, refuses some numbers, takes a message and loses its answer, and
//! whose lookups sometimes fail; STOPs texted through the real keyword handler while the
//! campaign sends; delivery receipts duplicated, reordered and early; sometimes a cancel;
//! sometimes quiet hours that hold the Los Angeles numbers (not the Paris ones) for a while.
//!
//! Checked per seed (`CampaignReport::findings`): no number texted after its STOP committed,
//! at most one message per recipient, every recipient ended (sent, failed or skipped) and every
//! one opted in throughout texted or failed unless the campaign was cancelled, the campaign's
//! counters equal its recipients' states, the wallet invariant
//! (`balance + reserved = top-ups + grants - debits - reversals`), no negative balance, no
//! reservation left open, and nobody texted inside their own quiet hours.

mod check;
mod models;

use crate::rng::{Rng, SharedRng};
use herald_domain::campaigns::keywords::{InboundSms, Keywords};
use herald_domain::campaigns::memory::{MemoryCampaigns, MemorySmsQueue};
use herald_domain::campaigns::quiet::format_clock;
use herald_domain::campaigns::sender::{BatchReport, SmsSender};
use herald_domain::campaigns::{
    Campaign, CampaignError, CampaignService, CampaignStatus, CampaignStore, EnqueueLimits,
    EnqueueProblem, NewCampaign, NewQuietHours, Receipt, ReceiptApplied, Recipient, STALE,
    SmsBatch,
};
use herald_domain::clock::{Clock, FakeClock};
use herald_domain::contacts::memory::MemoryContacts;
use herald_domain::contacts::{Consent, Contact, ContactService, ContactStore};
use herald_domain::dead_letters::Operator;
use herald_domain::ids::{ContactId, TenantId};
use herald_domain::memory::MemoryStore;
use herald_domain::model::{Tenant, TenantSettings};
use herald_domain::rate_limits::MemoryCounter;
use herald_domain::wallet::memory::MemoryWallets;
use herald_domain::wallet::{PriceTable, WalletStore, Wallets};
use herald_domain::zone::TimeZoneName;
use models::{FaultyStore, Provider};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The sender's lease: a claim left this long is resumed by another run.
const LEASE: Duration = Duration::seconds(30);
/// Steps a seed may take before it is called stuck.
const MAX_STEPS: usize = 20_000;

/// What one seed did and found.
#[derive(Debug, Clone, Default)]
pub struct CampaignReport {
    pub seed: u64,
    pub recipients: usize,
    /// Messages the provider took for the campaign.
    pub texted: usize,
    pub stops: usize,
    pub cancelled: bool,
    /// Faults that happened: store calls that failed (before or after their write), and
    /// messages the provider took and then lost the answer to.
    pub crashes: usize,
    pub lost_answers: usize,
    /// Enqueue jobs worked (the enqueue did not fit the API's limits).
    pub enqueue_jobs: usize,
    /// The campaign had quiet hours.
    pub quiet_hours: bool,
    pub findings: Vec<String>,
}

/// Totals over the campaign seeds, and the findings by class (the text before `:`).
#[derive(Debug, Default, Clone)]
pub struct CampaignSummary {
    pub seeds: usize,
    pub recipients: usize,
    pub texted: usize,
    pub stops: usize,
    pub cancelled: usize,
    pub crashes: usize,
    pub lost_answers: usize,
    pub enqueue_jobs: usize,
    pub quiet_hours: usize,
    pub classes: BTreeMap<String, (usize, u64)>,
    pub failed_seeds: Vec<u64>,
}

impl CampaignSummary {
    pub fn add(&mut self, r: &CampaignReport) {
        self.seeds += 1;
        self.recipients += r.recipients;
        self.texted += r.texted;
        self.stops += r.stops;
        self.cancelled += usize::from(r.cancelled);
        self.crashes += r.crashes;
        self.lost_answers += r.lost_answers;
        self.enqueue_jobs += r.enqueue_jobs;
        self.quiet_hours += usize::from(r.quiet_hours);
        for f in &r.findings {
            let class = f.split(':').next().unwrap_or(f).to_owned();
            self.classes.entry(class).or_insert((0, r.seed)).0 += 1;
        }
        if !r.findings.is_empty() {
            self.failed_seeds.push(r.seed);
        }
    }

    fn count(&self, prefix: &str) -> usize {
        self.classes
            .iter()
            .filter(|(c, _)| c.starts_with(prefix))
            .map(|(_, (n, _))| n)
            .sum()
    }

    /// The campaign part of the `SIM` line.
    pub fn line(&self) -> String {
        format!(
            "campaigns={} sms={} stops={} cancelled={} store_crashes={} lost_answers={} enqueue_jobs={} enqueue_findings={} sms_duplicates={} texted_after_stop={} unended={} not_texted={} counter_mismatch={} wallet_mismatch={} negative_balance={} open_reservations={} quiet_hours={} texted_in_quiet_hours={} sms_findings={}",
            self.seeds,
            self.texted,
            self.stops,
            self.cancelled,
            self.crashes,
            self.lost_answers,
            self.enqueue_jobs,
            self.count("enqueue"),
            self.count("texted ") - self.count("texted after"),
            self.count("texted after"),
            self.count("never ended"),
            self.count("opted in throughout") + self.count("neither texted"),
            self.count("counters"),
            self.count("wallet") + self.count("debited"),
            self.count("negative"),
            self.count("reservation left open"),
            self.quiet_hours,
            self.count("inside quiet hours"),
            self.classes.values().map(|(n, _)| n).sum::<usize>(),
        )
    }
}

/// When a batch left with recipients comes back: as the SMS sender defers it, except that a
/// paused one is tried again after a lease (the sim's pauses are short).
fn comes_back_in(r: &BatchReport) -> Duration {
    if r.paused {
        return LEASE;
    }
    r.comes_back_in(LEASE, Duration::minutes(15))
        .unwrap_or(LEASE)
}

/// A receipt on its way: the message, the verdict, when it arrives, and how many times it
/// came back already.
type PendingReceipt = (String, Receipt, OffsetDateTime, u32);

/// A batch delivery waiting in the model queue.
#[derive(Debug, Clone)]
struct Delivery {
    batch: SmsBatch,
    visible_at: OffsetDateTime,
}

struct World {
    tenant: TenantId,
    clock: Arc<FakeClock>,
    rng: Arc<SharedRng>,
    contacts: Arc<MemoryContacts>,
    campaigns: Arc<MemoryCampaigns>,
    wallets: Arc<MemoryWallets>,
    service: CampaignService,
    sender: SmsSender,
    provider: Arc<Provider>,
    keywords: Keywords,
    queue: Arc<MemorySmsQueue>,
    faulty: Arc<FaultyStore>,
}

const SENDER_ID: &str = "SIMSMS";

fn world(seed: u64, faults: bool, audience: usize) -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-12-05 09:00 UTC)));
    let rng = Arc::new(SharedRng::new(Rng::stream(seed, 0x5a5)));
    let contacts = Arc::new(MemoryContacts::default());
    let campaigns = Arc::new(MemoryCampaigns::new(contacts.clone()));
    let faulty = Arc::new(FaultyStore {
        inner: campaigns.clone(),
        rng: rng.clone(),
        rate: if faults { 0.03 } else { 0.0 },
        crashes: AtomicUsize::new(0),
    });
    let memory = Arc::new(MemoryStore::new());
    let wallet_store = Arc::new(MemoryWallets::new());
    let wallets = Arc::new(Wallets {
        store: wallet_store.clone(),
        audit: memory.clone(),
        clock: clock.clone(),
        prices: PriceTable::default(),
        low_balance: None,
    });
    let queue = Arc::new(MemorySmsQueue::default());
    let provider = Arc::new(Provider {
        taken: Mutex::new(Vec::new()),
        refused: Mutex::new(BTreeSet::new()),
        rng: rng.clone(),
        clock: clock.clone(),
        faults,
        lost_answers: AtomicUsize::new(0),
    });
    World {
        tenant: TenantId(format!("ten_sim_{seed}")),
        service: CampaignService {
            store: faulty.clone(),
            contacts: contacts.clone(),
            wallets: wallets.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            // Often too small for the audience: the enqueue goes on in jobs.
            limits: EnqueueLimits {
                audience: Some(rng.with(|r| r.below(2 * audience as u64)) as usize + 1),
                ..EnqueueLimits::API
            },
        },
        sender: SmsSender {
            store: faulty.clone(),
            wallets,
            provider: provider.clone(),
            crisis: memory.clone(),
            limiter: Arc::new(MemoryCounter::default()),
            messages_per_second: 20,
            clock: clock.clone(),
            lease: LEASE,
            events: None,
        },
        keywords: Keywords {
            senders: campaigns.clone(),
            contacts: ContactService {
                store: contacts.clone(),
                audit: memory.clone(),
                clock: clock.clone(),
            },
            tenants: memory,
            provider: None,
            clock: clock.clone(),
        },
        clock,
        rng,
        contacts,
        campaigns,
        wallets: wallet_store,
        provider,
        queue,
        faulty,
    }
}

/// Contact `i`'s number: one in four in Paris, the others in Los Angeles.
fn phone(i: usize) -> String {
    match i % 4 {
        0 => format!("+3361{:07}", 1_000_000 + i),
        _ => format!("+1415555{:04}", 1000 + i),
    }
}

/// Sometimes quiet hours that hold Los Angeles now, from half an hour ago to 1 to 20 minutes
/// ahead (Paris is nine hours away, outside them).
fn quiet_hours(w: &World) -> Option<NewQuietHours> {
    if !w.rng.chance(0.3) {
        return None;
    }
    let la = TimeZoneName::parse("America/Los_Angeles").ok()?;
    let local = la.local(w.clock.now());
    let minute = i64::from(local.hour()) * 60 + i64::from(local.minute());
    let ahead = 1 + w.rng.with(|r| r.below(20)) as i64;
    let clock = |m: i64| format_clock(m.rem_euclid(1440) as u16);
    Some(NewQuietHours {
        start: clock(minute - 30),
        end: clock(minute + ahead),
        time_zone: "UTC".into(),
    })
}

/// Runs one seed: `recipients` contacts, every fault class when `faults`.
pub fn run_campaign_seed(seed: u64, recipients: usize, faults: bool) -> CampaignReport {
    block_on(run(seed, recipients, faults))
}

/// Polls `f` to its end. Every port here is in memory and answers at once, so nothing ever
/// waits to be woken: a no-op waker is enough (the publish simulation's virtual-time executor
/// is for processes that sleep).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

async fn run(seed: u64, n: usize, faults: bool) -> CampaignReport {
    let w = world(seed, faults, n);
    let mut report = CampaignReport {
        seed,
        ..CampaignReport::default()
    };
    let now = w.clock.now();
    w.keywords
        .tenants
        .create_tenant(&Tenant {
            id: w.tenant.clone(),
            name: "Sim".into(),
            settings: TenantSettings::default(),
            created_at: now,
            suspended: None,
        })
        .await
        .ok();
    // Contacts: about one in eight never opted in; a few numbers the provider refuses.
    let mut refused = BTreeSet::new();
    for i in 0..n {
        let opted_in = !w.rng.chance(0.125);
        let contact = Contact {
            id: ContactId(format!("con_{i:05}")),
            tenant_id: w.tenant.clone(),
            phone: phone(i),
            name: Some(format!("Ada{i}")),
            tags: ["sim".to_owned()].into(),
            fields: BTreeMap::new(),
            consent: if opted_in {
                Consent::OptedIn {
                    at: now,
                    source: "sim".into(),
                }
            } else {
                Consent::Unknown
            },
            version: 1,
            created_at: now,
            updated_at: now,
        };
        w.contacts.insert_contact(&contact).await.ok();
        if faults && w.rng.chance(0.02) {
            refused.insert(phone(i));
        }
    }
    *w.provider.refused.lock().unwrap_or_else(|p| p.into_inner()) = refused.clone();
    let operator = Operator {
        actor: "operator:sim".into(),
        ip: None,
        user_agent: None,
    };
    let campaign = match w
        .service
        .create(
            &w.tenant,
            NewCampaign {
                name: "Sim".into(),
                text: "Hi {{first_name}}, spring sale".into(),
                tags: vec!["sim".into()],
                sender: SENDER_ID.into(),
                quiet_hours: quiet_hours(&w),
                ..NewCampaign::default()
            },
        )
        .await
    {
        Ok(c) => c,
        Err(e) => {
            report.findings.push(format!("setup: create: {e}"));
            return report;
        }
    };
    // Sometimes short at first: the enqueue reserves nothing, then succeeds after a top-up.
    let estimate = w.service.estimate(&w.tenant, &campaign.id).await;
    let needed = estimate.map(|e| e.credits).unwrap_or(0);
    let short = w.rng.chance(0.3) && needed > 1;
    let first_grant = if short { needed / 2 } else { needed + 5 };
    w.grant(&operator, "g1", first_grant.max(1)).await;
    let mut enqueued = w.enqueue(&campaign, &mut report).await;
    if short {
        match &enqueued {
            Err(CampaignError::Insufficient { .. }) => {
                let wallet = w.wallets.wallet(&w.tenant).await.unwrap_or_default();
                if wallet.reserved != 0 {
                    report
                        .findings
                        .push(format!("a refused enqueue reserved {}", wallet.reserved));
                }
            }
            other => report.findings.push(format!(
                "an enqueue short of credits answered {:?}",
                other.as_ref().map(|c| c.status)
            )),
        }
        w.grant(&operator, "g2", needed).await;
        enqueued = w.enqueue(&campaign, &mut report).await;
    }
    // Enqueued twice (a retried request): nothing more queued.
    let queued = w.queue.batches().len();
    let again = w.enqueue(&campaign, &mut report).await;
    let (Ok(enqueued), Ok(_)) = (enqueued, again) else {
        report.findings.push("setup: the enqueue failed".into());
        return report;
    };
    let batches = w.queue.batches();
    // A crashed enqueue may queue a batch again (at least once); every batch is queued.
    let distinct: BTreeSet<u32> = batches.iter().map(|b| b.batch).collect();
    if batches.len() != queued || distinct != (0..enqueued.progress.batches).collect() {
        report.findings.push(format!(
            "enqueue: batches {distinct:?} queued ({} then {}) for {}",
            queued,
            batches.len(),
            enqueued.progress.batches
        ));
    }
    if w.campaigns.snapshot_parts() != 0 {
        report.findings.push("enqueue: snapshot parts left".into());
    }
    report.recipients = enqueued.progress.recipients as usize;
    let snapshot = w.recipients(&campaign, enqueued.progress.batches).await;

    let stops = w.work(&campaign, batches, &mut report).await;
    w.check(&campaign, &snapshot, &stops, &refused, &mut report)
        .await;
    report.crashes = w.faulty.crashes.load(Ordering::Relaxed);
    report.lost_answers = w.provider.lost_answers.load(Ordering::Relaxed);
    report
}

impl World {
    /// Enqueues as a client and the queue would: the request retried after a crash, then
    /// every job worked (again after a failure) until none is left. A campaign the jobs put
    /// back to draft answers with its problem.
    async fn enqueue(
        &self,
        campaign: &Campaign,
        report: &mut CampaignReport,
    ) -> Result<Campaign, CampaignError> {
        let (tenant, id) = (&self.tenant, &campaign.id);
        let mut answer = self.service.enqueue(tenant, id, "sim", false).await;
        for _ in 0..20 {
            match answer {
                Err(CampaignError::Store(_) | CampaignError::Contended) => {
                    // Retried once the crashed run's campaign has gone quiet.
                    self.clock.advance(STALE + Duration::seconds(1));
                    answer = self.service.enqueue(tenant, id, "sim", false).await;
                }
                _ => break,
            }
        }
        answer?;
        for _ in 0..200 {
            let jobs = self.queue.take_jobs();
            if jobs.is_empty() {
                break;
            }
            for job in jobs {
                report.enqueue_jobs += 1;
                if self.service.work(&job).await.is_err() {
                    // Redelivered.
                    self.service.queue.send_job(&job).await?;
                }
            }
        }
        let now = self.service.get(tenant, id).await?;
        match (&now.status, &now.problem) {
            (CampaignStatus::Draft, Some(EnqueueProblem::NoRecipients)) => {
                Err(CampaignError::NoRecipients)
            }
            (
                CampaignStatus::Draft,
                Some(EnqueueProblem::InsufficientCredits {
                    needed,
                    available,
                    shortfall,
                }),
            ) => Err(CampaignError::Insufficient {
                needed: *needed,
                available: *available,
                shortfall: *shortfall,
            }),
            _ => Ok(now),
        }
    }

    async fn grant(&self, by: &Operator, key: &str, credits: i64) {
        let wallets = Wallets {
            store: self.wallets.clone(),
            audit: Arc::new(MemoryStore::new()),
            clock: self.clock.clone(),
            prices: PriceTable::default(),
            low_balance: None,
        };
        wallets
            .grant(&self.tenant, by, key, credits, "sim")
            .await
            .ok();
    }

    async fn recipients(&self, campaign: &Campaign, batches: u32) -> Vec<Recipient> {
        let mut all = Vec::new();
        for b in 0..batches {
            all.extend(
                self.campaigns
                    .batch(&self.tenant, &campaign.id, b)
                    .await
                    .unwrap_or_default(),
            );
        }
        all
    }

    /// Delivers batches (out of order, at least once), STOPs and receipts until nothing is
    /// left; the numbers stopped and when each STOP committed.
    async fn work(
        &self,
        campaign: &Campaign,
        batches: Vec<SmsBatch>,
        report: &mut CampaignReport,
    ) -> BTreeMap<String, OffsetDateTime> {
        let mut queue: Vec<Delivery> = batches
            .into_iter()
            .map(|batch| Delivery {
                batch,
                visible_at: self.clock.now(),
            })
            .collect();
        let mut stops = BTreeMap::new();
        let mut receipts_done = 0usize;
        let mut pending_receipts: Vec<PendingReceipt> = Vec::new();
        let cancel_at = self
            .rng
            .chance(0.15)
            .then(|| self.rng.with(|r| r.below(40)));
        for step in 0..MAX_STEPS {
            self.clock
                .advance(self.rng.millis(5, 400).try_into().unwrap_or(Duration::ZERO));
            if cancel_at == Some(step as u64) {
                report.cancelled = self
                    .service
                    .cancel(&self.tenant, &campaign.id)
                    .await
                    .is_ok();
            }
            // A STOP texted now and then, through the real keyword handler.
            if self.rng.chance(0.08) {
                let i = self.rng.with(|r| r.index(report.recipients.max(1) * 9 / 8));
                let number = phone(i);
                let sms = InboundSms {
                    id: format!("in_{step}"),
                    from: number.clone(),
                    to: SENDER_ID.into(),
                    text: " stop ".into(),
                };
                if self.keywords.handle(&sms).await.is_ok() {
                    stops.entry(number).or_insert(self.clock.now());
                    report.stops += 1;
                }
            }
            // Receipts of what the provider took: sometimes twice, in any order, some early.
            self.schedule_receipts(&mut receipts_done, &mut pending_receipts);
            self.apply_receipts(&mut pending_receipts).await;
            let now = self.clock.now();
            let visible: Vec<usize> = (0..queue.len())
                .filter(|i| queue[*i].visible_at <= now)
                .collect();
            if visible.is_empty() {
                match queue.iter().map(|d| d.visible_at).min() {
                    Some(next) => {
                        self.clock.advance(next - now);
                        continue;
                    }
                    None if pending_receipts.is_empty() => return stops,
                    None => continue,
                }
            }
            let pick = visible[self.rng.with(|r| r.index(visible.len()))];
            let delivery = queue.swap_remove(pick);
            // At least once: sometimes delivered to two runs.
            if self.rng.chance(0.05) {
                queue.push(delivery.clone());
            }
            match self.sender.send_batch(&delivery.batch).await {
                // A crashed run: the queue brings the batch back after its visibility.
                Err(_) => queue.push(Delivery {
                    visible_at: now + LEASE,
                    ..delivery
                }),
                Ok(r) if r.paused || r.pending > 0 => queue.push(Delivery {
                    visible_at: now + comes_back_in(&r),
                    ..delivery
                }),
                Ok(_) => {}
            }
        }
        report
            .findings
            .push("stuck: work left after every step".into());
        stops
    }

    fn schedule_receipts(&self, done: &mut usize, pending: &mut Vec<PendingReceipt>) {
        let taken = self
            .provider
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for t in taken.iter().skip(*done) {
            let verdict = if self.rng.chance(0.05) {
                Receipt::Undelivered
            } else {
                Receipt::Delivered
            };
            let copies = if self.rng.chance(0.2) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = self
                    .rng
                    .millis(0, 3000)
                    .try_into()
                    .unwrap_or(Duration::ZERO);
                pending.push((t.id.clone(), verdict, t.at + delay, 0));
            }
        }
        *done = taken.len();
    }

    async fn apply_receipts(&self, pending: &mut Vec<PendingReceipt>) {
        let now = self.clock.now();
        let mut later = Vec::new();
        for (id, verdict, at, tries) in pending.drain(..) {
            if at > now {
                later.push((id, verdict, at, tries));
                continue;
            }
            match self.campaigns.apply_receipt(&id, verdict).await {
                // Ahead of the sender's record of the send: the queue brings it back, five
                // times (then its DLQ: a send never recorded, because the campaign stopped
                // before a crashed run's resume).
                Ok(ReceiptApplied::Unknown) | Err(_) if tries < 5 => {
                    later.push((id, verdict, now + Duration::seconds(30), tries + 1));
                }
                _ => {}
            }
        }
        *pending = later;
    }
}
