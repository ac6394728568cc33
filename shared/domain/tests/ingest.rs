//! Ingestion: the stream runner and the poller against in-memory ports, and a simulation
//! with random page sizes, crash points, 429s, deadlines and malformed items.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::clock::{Clock, FakeClock};
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::ingest::memory::{MemoryIngestQueue, MemoryIngestStore, ScriptedTimeline};
use herald_domain::ingest::poller::{PollConfig, Poller};
use herald_domain::ingest::runner::{IngestConfig, RunOutcome, StreamRunner};
use herald_domain::ingest::*;
use herald_domain::memory::MemoryStore;
use herald_domain::model::{Account, AccountStatus, Platform};
use herald_domain::ports::AccountStore;
use herald_domain::publishing::platform::PlatformError;
use proptest::prelude::*;
use secrecy::SecretString;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const USER: &str = "4242";

struct World {
    clock: Arc<FakeClock>,
    store: Arc<MemoryIngestStore>,
    timeline: Arc<ScriptedTimeline>,
    accounts: Arc<MemoryStore>,
    tenant: TenantId,
    account: AccountId,
    key: StreamKey,
}

async fn world() -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-03-01 12:00 UTC)));
    let accounts = Arc::new(MemoryStore::default());
    let tenant = TenantId("t1".into());
    let account = Account::id_for(Platform::X, USER);
    accounts
        .upsert_account(&Account {
            id: account.clone(),
            tenant_id: tenant.clone(),
            platform: Platform::X,
            external_id: USER.into(),
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
    let store = Arc::new(MemoryIngestStore::default());
    let key = StreamKey::for_account(Platform::X, USER);
    store.register(&tenant, &account, &key);
    World {
        clock,
        store,
        timeline: Arc::new(ScriptedTimeline::default()),
        accounts,
        tenant,
        account,
        key,
    }
}

fn tweet(id: u64) -> serde_json::Value {
    json!({"id": id.to_string(), "text": format!("tweet {id}"), "created_at": "2026-03-01T10:00:00.000Z"})
}

fn malformed(id: u64) -> serde_json::Value {
    json!({"id": id.to_string(), "created_at": "2026-03-01T10:00:00.000Z"})
}

impl World {
    /// A poller over the world's store and clock with `config`, and the queue it sends to.
    fn poller(&self, config: PollConfig) -> (Poller, Arc<MemoryIngestQueue>) {
        let queue = Arc::new(MemoryIngestQueue::default());
        let poller = Poller {
            store: self.store.clone(),
            queue: queue.clone(),
            clock: self.clock.clone(),
            config,
        };
        (poller, queue)
    }

    fn runner(&self, store: Arc<dyn IngestStore>, config: IngestConfig) -> StreamRunner {
        StreamRunner {
            store,
            accounts: self.accounts.clone(),
            source: self.timeline.clone(),
            clock: self.clock.clone(),
            config,
        }
    }

    fn job(&self, dry_run: bool) -> IngestJob {
        IngestJob {
            tenant_id: self.tenant.clone(),
            account_id: self.account.clone(),
            stream: self.key.clone(),
            dry_run,
            correlation_id: None,
        }
    }

    async fn stored(&self) -> BTreeSet<String> {
        self.store
            .items(&self.tenant, &self.key)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.platform_id)
            .collect()
    }

    async fn reviewed(&self) -> BTreeSet<String> {
        let (items, _) = self
            .store
            .review_items(&self.tenant, 10_000, None)
            .await
            .unwrap();
        items.into_iter().map(|r| r.platform_id.unwrap()).collect()
    }

    fn far(&self) -> OffsetDateTime {
        self.clock.now() + Duration::hours(1)
    }
}

fn config(page_size: u32) -> IngestConfig {
    IngestConfig {
        page_size,
        ..Default::default()
    }
}

#[tokio::test]
async fn pages_through_a_timeline_storing_valid_items_and_quarantining_malformed_ones() {
    let w = world().await;
    for id in 1..=23 {
        w.timeline.push(
            id,
            if id % 7 == 0 {
                malformed(id)
            } else {
                tweet(id)
            },
        );
    }
    let runner = w.runner(w.store.clone(), config(5));
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(report.outcome, RunOutcome::Done);
    assert_eq!(report.pages, 5);
    assert_eq!(report.counters.processed, 20);
    assert_eq!(report.counters.failed, 3);
    assert_eq!(w.stored().await.len(), 20);
    assert_eq!(
        w.reviewed().await,
        ["7", "14", "21"].map(String::from).into()
    );
    let (reviews, _) = w.store.review_items(&w.tenant, 10, None).await.unwrap();
    assert!(
        reviews[0].reason.contains("`text` is missing"),
        "{reviews:?}"
    );
    let state = w.store.stream(&w.tenant, &w.key).await.unwrap().unwrap();
    assert_eq!(state.position.since.as_deref(), Some("23"));
    assert_eq!(state.lease_owner, None);
    assert_eq!(state.counters.processed, 20);
    assert_eq!(state.next_due, Some(w.clock.now() + Duration::minutes(5)));

    // The next run asks only for what is newer.
    w.timeline.push(24, tweet(24));
    let before = w.timeline.fetches();
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(report.counters.processed, 1);
    assert_eq!(w.timeline.fetches() - before, 1);
    assert_eq!(
        w.store.writes().values().max(),
        Some(&1),
        "an item was written twice"
    );
}

#[tokio::test]
async fn a_429_defers_the_stream_until_its_reset_and_the_poller_leaves_it_alone() {
    let w = world().await;
    for id in 1..=10 {
        w.timeline.push(id, tweet(id));
    }
    w.timeline
        .throttle_fetch(1, std::time::Duration::from_secs(90));
    let runner = w.runner(w.store.clone(), config(4));
    let report = runner.run(&w.job(false), w.far()).await;
    let until = w.clock.now() + Duration::seconds(90);
    assert_eq!(report.outcome, RunOutcome::Throttled { until });
    assert_eq!(report.counters.rate_limited, 1);
    assert_eq!(w.stored().await.len(), 4, "the page before the 429 is kept");
    let (poller, queue) = w.poller(PollConfig::default());
    let r = poller.run_once().await.unwrap();
    assert_eq!((r.deferred, r.sent), (1, 0));
    assert_eq!(r.totals.rate_limited, 1);
    // A job that arrives anyway is skipped, and the platform is not called.
    let fetches = w.timeline.fetches();
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(report.outcome, RunOutcome::Deferred);
    assert_eq!(w.timeline.fetches(), fetches);
    w.clock.advance(Duration::seconds(91));
    let r = poller.run_once().await.unwrap();
    assert_eq!(r.sent, 1);
    let job = queue.sent.lock().unwrap()[0].clone();
    let report = runner.run(&job, w.far()).await;
    assert_eq!(report.outcome, RunOutcome::Done);
    assert_eq!(w.stored().await, (1..=10).map(|i| i.to_string()).collect());
}

#[tokio::test]
async fn spent_budget_headers_stop_the_stream_before_a_429() {
    struct Spent(Arc<ScriptedTimeline>);
    #[async_trait]
    impl TimelineSource for Spent {
        async fn fetch(
            &self,
            a: &Account,
            k: StreamKind,
            p: &Position,
            n: u32,
        ) -> Result<Page, PlatformError> {
            let mut page = self.0.fetch(a, k, p, n).await?;
            page.rate.app_usage_percent = Some(95);
            page.rate.reset_after = Some(std::time::Duration::from_secs(600));
            Ok(page)
        }
    }
    let w = world().await;
    for id in 1..=10 {
        w.timeline.push(id, tweet(id));
    }
    let mut runner = w.runner(w.store.clone(), config(4));
    runner.source = Arc::new(Spent(w.timeline.clone()));
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Throttled {
            until: w.clock.now() + Duration::minutes(10)
        }
    );
    assert_eq!(report.pages, 1);
}

#[tokio::test]
async fn a_run_stops_at_its_deadline_with_a_consistent_checkpoint() {
    let w = world().await;
    for id in 1..=50 {
        w.timeline.push(id, tweet(id));
    }
    let mut runner = w.runner(w.store.clone(), config(5));
    runner.source = Arc::new(Ticking(
        w.timeline.clone(),
        w.clock.clone(),
        Duration::seconds(10),
    ));
    let report = runner
        .run(&w.job(false), w.clock.now() + Duration::seconds(25))
        .await;
    assert_eq!(report.outcome, RunOutcome::Deadline);
    assert_eq!(report.pages, 3);
    let state = w.store.stream(&w.tenant, &w.key).await.unwrap().unwrap();
    assert_eq!(state.position.cursor.as_deref(), Some("35"));
    assert_eq!(state.lease_owner, None, "released for the next job");
    assert!(state.next_due.unwrap() <= w.clock.now());
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(report.outcome, RunOutcome::Done);
    assert_eq!(w.stored().await.len(), 50);
}

#[tokio::test]
async fn a_leased_stream_is_skipped_and_a_lost_lease_stops_the_run() {
    let w = world().await;
    w.timeline.push(1, tweet(1));
    let now = w.clock.now();
    w.store
        .take_lease(
            &w.tenant,
            &w.account,
            &w.key,
            "other",
            now,
            now + Duration::seconds(60),
        )
        .await
        .unwrap()
        .unwrap();
    let runner = w.runner(w.store.clone(), config(5));
    let report = runner.run(&w.job(false), w.far()).await;
    assert_eq!(report.outcome, RunOutcome::Leased);
    assert_eq!(report.counters.skipped, 1);
    assert!(w.stored().await.is_empty());
    let account = w
        .accounts
        .get_account(&w.tenant, &w.account)
        .await
        .unwrap()
        .unwrap();
    let page = w
        .timeline
        .fetch(&account, StreamKind::Posts, &Position::default(), 5)
        .await
        .unwrap();
    let items = vec![IngestedItem {
        platform_id: "1".into(),
        text: "x".into(),
        created_at: now,
        insight: None,
    }];
    let lost = w
        .store
        .store_page(PageWrite {
            tenant_id: &w.tenant,
            key: &w.key,
            owner: "me",
            items: &items,
            reviews: &[],
            position: &Position::default().after(&page),
            counters: Counters::default(),
        })
        .await;
    assert_eq!(lost, Err(StoreError::Conflict));
}

#[tokio::test]
async fn a_dry_run_reports_what_it_would_write_and_writes_nothing() {
    let w = world().await;
    for id in 1..=12 {
        w.timeline
            .push(id, if id == 5 { malformed(id) } else { tweet(id) });
    }
    let before = w.store.snapshot();
    // Per job, and globally.
    for (job_flag, global) in [(true, false), (false, true)] {
        let runner = w.runner(
            w.store.clone(),
            IngestConfig {
                dry_run: global,
                ..config(5)
            },
        );
        let report = runner.run(&w.job(job_flag), w.far()).await;
        assert!(report.dry_run);
        assert_eq!(report.outcome, RunOutcome::Done);
        assert_eq!(report.would_store.len(), 11);
        assert_eq!(report.would_review, vec!["x:4242#5".to_owned()]);
        assert_eq!(report.position.since.as_deref(), Some("12"));
        assert_eq!(w.store.snapshot(), before, "a dry run wrote something");
    }
    // A per-stream dry run: the poller marks the stream's jobs.
    w.store
        .set_dry_run(&w.tenant, &w.account, &w.key, true)
        .await
        .unwrap();
    let (poller, queue) = w.poller(PollConfig::default());
    let r = poller.run_once().await.unwrap();
    assert_eq!((r.sent, r.dry_run_jobs), (1, 1));
    assert!(queue.sent.lock().unwrap()[0].dry_run);
    // A job sent before the switch reads only, and gives the lease back.
    let report = w
        .runner(w.store.clone(), config(5))
        .run(&w.job(false), w.far())
        .await;
    assert!(report.dry_run);
    assert_eq!(report.would_store.len(), 11);
    let state = w.store.stream(&w.tenant, &w.key).await.unwrap().unwrap();
    assert!(state.lease_owner.is_none(), "{state:?}");
    assert_eq!(state.position, Position::default());
    assert_eq!(w.store.items(&w.tenant, &w.key).await.unwrap(), vec![]);
    // Off again: the next job stores.
    w.store
        .set_dry_run(&w.tenant, &w.account, &w.key, false)
        .await
        .unwrap();
    let report = w
        .runner(w.store.clone(), config(5))
        .run(&w.job(false), w.far())
        .await;
    assert!(!report.dry_run);
    assert_eq!(w.store.items(&w.tenant, &w.key).await.unwrap().len(), 11);
}

#[tokio::test]
async fn ingest_disabled_sends_nothing_and_the_poller_fans_out_one_job_per_due_stream() {
    let w = world().await;
    let other = StreamKey::for_account(Platform::Facebook, "page1");
    w.store
        .register(&w.tenant, &AccountId("acc_fb".into()), &other);
    let (mut poller, queue) = w.poller(PollConfig {
        enabled: false,
        dry_run: false,
    });
    let r = poller.run_once().await.unwrap();
    assert!(!r.enabled);
    assert!(queue.sent.lock().unwrap().is_empty());
    poller.config.enabled = true;
    let r = poller.run_once().await.unwrap();
    assert_eq!((r.streams, r.sent), (2, 2));
    // A finished stream is not due until its interval passes.
    w.timeline.push(1, tweet(1));
    w.runner(w.store.clone(), config(5))
        .run(&w.job(false), w.far())
        .await;
    let r = poller.run_once().await.unwrap();
    assert_eq!((r.sent, r.not_due), (1, 1));
    assert_eq!(r.totals.processed, 1);
}

#[tokio::test]
async fn a_disconnected_account_is_skipped() {
    let w = world().await;
    w.accounts
        .delete_account(&w.tenant, &w.account)
        .await
        .unwrap();
    let report = w
        .runner(w.store.clone(), config(5))
        .run(&w.job(false), w.far())
        .await;
    assert_eq!(report.outcome, RunOutcome::AccountUnavailable);
    assert_eq!(w.timeline.fetches(), 0);
}

/// A store that dies at its `crash_at`-th page write: the page's items land, its checkpoint
/// does not, and nothing after it happens (the lease stays taken until it expires).
struct Crashing {
    inner: Arc<MemoryIngestStore>,
    writes: AtomicUsize,
    crash_at: usize,
    dead: AtomicBool,
}

#[async_trait]
impl IngestStore for Crashing {
    async fn candidates(&self) -> Result<Vec<Candidate>, StoreError> {
        self.inner.candidates().await
    }
    async fn streams(&self, t: &TenantId) -> Result<Vec<Candidate>, StoreError> {
        self.inner.streams(t).await
    }
    async fn set_dry_run(
        &self,
        t: &TenantId,
        a: &AccountId,
        k: &StreamKey,
        on: bool,
    ) -> Result<StreamState, StoreError> {
        self.inner.set_dry_run(t, a, k, on).await
    }
    async fn stream(&self, t: &TenantId, k: &StreamKey) -> Result<Option<StreamState>, StoreError> {
        self.inner.stream(t, k).await
    }
    async fn take_lease(
        &self,
        t: &TenantId,
        a: &AccountId,
        k: &StreamKey,
        o: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError> {
        self.inner.take_lease(t, a, k, o, now, until).await
    }
    async fn store_page(&self, page: PageWrite<'_>) -> Result<(), StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("dead".into()));
        }
        if self.writes.fetch_add(1, Ordering::SeqCst) == self.crash_at {
            let old = self.inner.stream(page.tenant_id, page.key).await?.unwrap();
            self.inner
                .store_page(PageWrite {
                    position: &old.position,
                    counters: Counters::default(),
                    ..page
                })
                .await?;
            self.dead.store(true, Ordering::SeqCst);
            return Err(StoreError::Unavailable("crashed".into()));
        }
        self.inner.store_page(page).await
    }
    async fn finish(
        &self,
        t: &TenantId,
        k: &StreamKey,
        o: &str,
        f: &Finish,
    ) -> Result<(), StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("dead".into()));
        }
        self.inner.finish(t, k, o, f).await
    }
    async fn count_skip(&self, t: &TenantId, k: &StreamKey) -> Result<(), StoreError> {
        self.inner.count_skip(t, k).await
    }
    async fn items(&self, t: &TenantId, k: &StreamKey) -> Result<Vec<IngestedItem>, StoreError> {
        self.inner.items(t, k).await
    }
    async fn review_items(
        &self,
        t: &TenantId,
        l: usize,
        c: Option<&str>,
    ) -> Result<(Vec<ReviewItem>, Option<String>), StoreError> {
        self.inner.review_items(t, l, c).await
    }
}

/// Advances the clock by its step per fetch, so deadlines fall between pages.
struct Ticking(Arc<ScriptedTimeline>, Arc<FakeClock>, Duration);

#[async_trait]
impl TimelineSource for Ticking {
    async fn fetch(
        &self,
        a: &Account,
        k: StreamKind,
        p: &Position,
        n: u32,
    ) -> Result<Page, PlatformError> {
        self.1.advance(self.2);
        self.0.fetch(a, k, p, n).await
    }
}

#[derive(Debug, Clone)]
struct Scenario {
    /// Items in arrival order: (arrives before run #, malformed).
    items: Vec<(usize, bool)>,
    page_sizes: Vec<u32>,
    /// Per run: crash at this page write (None: no crash).
    crashes: Vec<Option<usize>>,
    throttled_fetches: Vec<usize>,
    /// Per run: seconds until its deadline.
    deadlines: Vec<i64>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec((0usize..6, prop::bool::weighted(0.15)), 0..120),
        prop::collection::vec(1u32..15, 12),
        prop::collection::vec(prop::option::weighted(0.4, 0usize..6), 12),
        prop::collection::vec(0usize..60, 0..5),
        prop::collection::vec(2i64..30, 12),
    )
        .prop_map(
            |(mut items, page_sizes, crashes, throttled_fetches, deadlines)| {
                items.sort_by_key(|(run, _)| *run);
                Scenario {
                    items,
                    page_sizes,
                    crashes,
                    throttled_fetches,
                    deadlines,
                }
            },
        )
}

async fn simulate(s: Scenario) {
    let w = world().await;
    for f in &s.throttled_fetches {
        w.timeline
            .throttle_fetch(*f, std::time::Duration::from_secs(1 + (*f as u64 % 100)));
    }
    let (poller, queue) = w.poller(PollConfig::default());
    let (mut valid, mut bad) = (BTreeSet::new(), BTreeSet::new());
    let mut next_id = 1_000u64;
    let mut pushed = 0;
    let mut run = 0usize;
    let mut clean_done_after_last_push = false;
    for tick in 0..400 {
        // New items arrive (run index = how many poller ticks have passed, roughly).
        while pushed < s.items.len() && s.items[pushed].0 <= tick / 4 {
            next_id += 1 + (pushed as u64 % 3);
            let bad_one = s.items[pushed].1;
            w.timeline.push(
                next_id,
                if bad_one {
                    malformed(next_id)
                } else {
                    tweet(next_id)
                },
            );
            if bad_one { &mut bad } else { &mut valid }.insert(next_id.to_string());
            pushed += 1;
            clean_done_after_last_push = false;
        }
        if pushed == s.items.len() && clean_done_after_last_push {
            break;
        }
        poller.run_once().await.unwrap();
        let jobs: Vec<IngestJob> = queue.sent.lock().unwrap().drain(..).collect();
        for job in jobs {
            let i = run % 12;
            run += 1;
            let store = Arc::new(Crashing {
                inner: w.store.clone(),
                writes: AtomicUsize::new(0),
                crash_at: s.crashes[i].unwrap_or(usize::MAX),
                dead: AtomicBool::new(false),
            });
            let mut runner = w.runner(store, config(s.page_sizes[i]));
            runner.source = Arc::new(Ticking(
                w.timeline.clone(),
                w.clock.clone(),
                Duration::seconds(1),
            ));
            let deadline = w.clock.now() + Duration::seconds(s.deadlines[i]);
            runner.run(&job, deadline).await;
            // Caught up: a finished run's checkpoint is the newest item there is.
            let state = w.store.stream(&w.tenant, &w.key).await.unwrap();
            let position = state.map(|s| s.position).unwrap_or_default();
            if pushed == s.items.len()
                && position.cursor.is_none()
                && position.since == (pushed > 0).then(|| next_id.to_string())
            {
                clean_done_after_last_push = true;
            }
        }
        // Past any lease (60 s); interval 5 minutes: every few ticks.
        w.clock.advance(Duration::seconds(61));
    }
    assert!(
        clean_done_after_last_push,
        "the stream never caught up: {s:?}"
    );
    assert_eq!(
        w.stored().await,
        valid,
        "stored items differ from the source's"
    );
    assert_eq!(
        w.reviewed().await,
        bad,
        "review items differ from the malformed ones"
    );
    let stored = w.store.items(&w.tenant, &w.key).await.unwrap();
    for item in stored {
        assert_eq!(item.text, format!("tweet {}", item.platform_id));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]
    #[test]
    fn crashes_429s_and_deadlines_lose_nothing_and_duplicate_nothing(s in scenario()) {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(simulate(s));
    }
}
