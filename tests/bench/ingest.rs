//! Ingestion: items stored per second for one stream in-process (in-memory store, the
//! scripted X-like timeline), and AWS calls per page stored (on the emulated DynamoDB).

use crate::bench;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::ingest::memory::{MemoryIngestStore, ScriptedTimeline};
use herald_domain::ingest::runner::{IngestConfig, RunOutcome, StreamRunner};
use herald_domain::ingest::{IngestJob, IngestStore, StreamKey};
use herald_domain::memory::MemoryStore;
use herald_domain::model::{Account, AccountStatus, Platform};
use herald_domain::ports::AccountStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

const PAGE: u32 = 50;

async fn setup(items: u64) -> (Arc<MemoryStore>, Arc<ScriptedTimeline>, IngestJob) {
    let accounts = Arc::new(MemoryStore::new());
    let tenant = herald_domain::ids::TenantId(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    let account = Account {
        id: Account::id_for(Platform::X, "bench-user"),
        tenant_id: tenant.clone(),
        platform: Platform::X,
        external_id: "bench-user".into(),
        display_name: None,
        access_token: secrecy::SecretString::from("token"),
        refresh_token: None,
        token_expires_at: None,
        status: AccountStatus::Active,
        created_at: SystemClock.now(),
        updated_at: SystemClock.now(),
        breaker: Default::default(),
    };
    accounts.upsert_account(&account).await.unwrap();
    let timeline = Arc::new(ScriptedTimeline::default());
    for id in 1..=items {
        let raw = if id % 100 == 0 {
            serde_json::json!({"id": id.to_string(), "created_at": "2026-01-01T00:00:00Z"})
        } else {
            serde_json::json!({"id": id.to_string(), "text": format!("post {id}"), "created_at": "2026-01-01T00:00:00Z"})
        };
        timeline.push(id, raw);
    }
    let job = IngestJob {
        tenant_id: tenant,
        account_id: account.id.clone(),
        stream: StreamKey::for_account(Platform::X, "bench-user"),
        dry_run: false,
        correlation_id: None,
    };
    (accounts, timeline, job)
}

fn runner(
    store: Arc<dyn IngestStore>,
    accounts: Arc<MemoryStore>,
    timeline: Arc<ScriptedTimeline>,
) -> StreamRunner {
    StreamRunner {
        store,
        accounts,
        source: timeline,
        clock: Arc::new(SystemClock),
        config: IngestConfig {
            page_size: PAGE,
            ..Default::default()
        },
    }
}

pub async fn ingest_in_memory() {
    const ITEMS: u64 = 3_200;
    let (accounts, timeline, job) = setup(ITEMS).await;
    let store = Arc::new(MemoryIngestStore::default());
    let r = runner(store.clone(), accounts, timeline);
    let started = Instant::now();
    let report = r
        .run(&job, SystemClock.now() + time::Duration::minutes(5))
        .await;
    let wall = started.elapsed();
    assert_eq!(report.outcome, RunOutcome::Done);
    assert_eq!(report.counters.processed + report.counters.failed, ITEMS);
    bench(
        "ingest.in_memory.items_per_second_per_stream",
        (ITEMS as f64 / wall.as_secs_f64()).round(),
        "items/s",
    );
    bench(
        "ingest.in_memory.store_calls_per_page",
        format!(
            "{:.2}",
            store.calls.total() as f64 / f64::from(report.pages)
        ),
        "calls",
    );
}

pub async fn ingest_calls(env: &HashMap<String, String>) {
    use herald_aws::dynamo::DynamoStore;
    const ITEMS: u64 = 1_000;
    let clients = herald_tests::stack_clients(env).await;
    let store = Arc::new(DynamoStore::new(
        clients.dynamodb.clone(),
        &env["HERALD_TABLE"],
    ));
    let (accounts, timeline, job) = setup(ITEMS).await;
    let r = runner(store.clone(), accounts, timeline);
    clients.calls.reset();
    let started = Instant::now();
    let report = r
        .run(&job, SystemClock.now() + time::Duration::minutes(5))
        .await;
    let wall = started.elapsed();
    assert_eq!(report.outcome, RunOutcome::Done, "{report:?}");
    let snap = clients.calls.snapshot();
    let total: usize = snap.values().map(|t| t.ok + t.failed).sum();
    bench(
        "ingest.emulated.aws_calls_per_page",
        format!("{:.2}", total as f64 / f64::from(report.pages)),
        "calls",
    );
    bench(
        "ingest.emulated.items_per_second_per_stream",
        (ITEMS as f64 / wall.as_secs_f64()).round(),
        "items/s",
    );
    let stored = store.items(&job.tenant_id, &job.stream).await.unwrap();
    assert_eq!(stored.len() as u64, report.counters.processed);
    println!(
        "ingest.emulated calls: {snap:?} over {} pages",
        report.pages
    );
}
