//! The ingestion adapters against the emulated DynamoDB and SQS: the stream's lease, a page and its
//! checkpoint in one transaction (conditional on the lease, idempotent by platform id), the
//! poller's view of accounts, review items' pagination, the job queue.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_aws::Clients;
use herald_aws::dynamo::DynamoStore;
use herald_aws::ingest_queue::SqsIngestQueue;
use herald_domain::StoreError;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::ids::TenantId;
use herald_domain::ingest::*;
use herald_domain::model::{Account, AccountStatus, Platform};
use herald_domain::ports::AccountStore;
use secrecy::SecretString;
use std::collections::{BTreeSet, HashMap};
use time::Duration;

struct Env {
    vars: HashMap<String, String>,
    clients: Clients,
    store: DynamoStore,
}

async fn env() -> Env {
    let Emulator { vars, clients } = Emulator::new().await;
    let store = store_on(&clients, &vars, [9; 32]);
    Env {
        vars,
        clients,
        store,
    }
}

fn account(
    tenant: &TenantId,
    platform: Platform,
    external: &str,
    status: AccountStatus,
) -> Account {
    Account {
        id: Account::id_for(platform, external),
        tenant_id: tenant.clone(),
        platform,
        external_id: external.into(),
        display_name: None,
        access_token: SecretString::from("secret-token"),
        refresh_token: None,
        token_expires_at: None,
        status,
        created_at: SystemClock.now(),
        updated_at: SystemClock.now(),
        breaker: Default::default(),
    }
}

fn item(id: &str) -> IngestedItem {
    IngestedItem {
        platform_id: id.into(),
        text: format!("text {id}"),
        created_at: time::macros::datetime!(2026-01-01 00:00 UTC),
        // Every seventh an insight, so both shapes go through the table.
        insight: id
            .parse::<u32>()
            .ok()
            .filter(|n| n % 7 == 0)
            .map(|n| Insight {
                metric: "page_impressions".into(),
                period: "day".into(),
                value: u64::from(n) * 1_000,
            }),
    }
}

fn write<'a>(
    tenant: &'a TenantId,
    key: &'a StreamKey,
    owner: &'a str,
    items: &'a [IngestedItem],
    reviews: &'a [ReviewItem],
    position: &'a Position,
) -> PageWrite<'a> {
    PageWrite {
        tenant_id: tenant,
        key,
        owner,
        items,
        reviews,
        position,
        counters: Counters {
            processed: items.len() as u64,
            failed: reviews.len() as u64,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn lease_page_checkpoint_and_release_on_dynamodb() {
    let e = env().await;
    let tenant = TenantId("t-ingest".into());
    let acc = account(&tenant, Platform::X, "u1", AccountStatus::Active);
    e.store.upsert_account(&acc).await.unwrap();
    e.store
        .upsert_account(&account(
            &tenant,
            Platform::Facebook,
            "p9",
            AccountStatus::NeedsReauth,
        ))
        .await
        .unwrap();
    let key = StreamKey::for_account(Platform::X, "u1");
    let now = SystemClock.now();

    e.store
        .upsert_account(&account(
            &tenant,
            Platform::Facebook,
            "p1",
            AccountStatus::Active,
        ))
        .await
        .unwrap();

    // The poller sees the active accounts' streams only (a Page has posts and insights),
    // with no state yet.
    let c = e.store.candidates().await.unwrap();
    let mut mine: Vec<&Candidate> = c.iter().filter(|c| c.tenant_id == tenant).collect();
    mine.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = mine.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["fb-insights:p1", "fb:p1", "x:u1"]);
    assert!(mine.iter().all(|c| c.state.is_none()));

    // One lease at a time; an expired one can be taken over.
    let state = e
        .store
        .take_lease(
            &tenant,
            &acc.id,
            &key,
            "a",
            now,
            now + Duration::seconds(60),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.lease_owner.as_deref(), Some("a"));
    assert!(
        e.store
            .take_lease(
                &tenant,
                &acc.id,
                &key,
                "b",
                now,
                now + Duration::seconds(60)
            )
            .await
            .unwrap()
            .is_none()
    );

    // A page: items, a review item and the checkpoint, all or nothing under the lease.
    let items: Vec<IngestedItem> = (1..=120).map(|i| item(&i.to_string())).collect();
    let review = ReviewItem {
        id: format!("{key}#121"),
        tenant_id: tenant.clone(),
        account_id: acc.id.clone(),
        stream: key.clone(),
        platform_id: Some("121".into()),
        reason: "`text` is missing".into(),
        raw: r#"{"id":"121"}"#.into(),
        received_at: now,
    };
    let position = Position {
        since: None,
        cursor: Some("0".into()),
        run_newest: Some("121".into()),
    };
    let page =
        |owner: &'static str, items: &'static [IngestedItem], reviews: &'static [ReviewItem]| {
            write(&tenant, &key, owner, items, reviews, &position)
        };
    let items: &'static [IngestedItem] = Box::leak(items.into_boxed_slice());
    let reviews: &'static [ReviewItem] = Box::leak(vec![review].into_boxed_slice());
    // Not the lease holder: the checkpoint does not move.
    assert_eq!(
        e.store.store_page(page("b", &items[..10], &[])).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        e.store
            .stream(&tenant, &key)
            .await
            .unwrap()
            .unwrap()
            .position,
        Position::default()
    );
    e.clients.calls.reset();
    e.store.store_page(page("a", items, reviews)).await.unwrap();
    // 121 puts and the checkpoint: two transactions (100, then 21 + the update).
    let calls = e.clients.calls.snapshot();
    assert_eq!(calls["DynamoDB.TransactWriteItems"].ok, 2, "{calls:?}");
    // Again (a redelivery): nothing changes.
    e.store.store_page(page("a", items, reviews)).await.unwrap();
    let stored = e.store.items(&tenant, &key).await.unwrap();
    assert_eq!(stored.len(), 120);
    let seventh = stored.iter().find(|i| i.platform_id == "7").unwrap();
    assert_eq!(seventh, &item("7"), "an insight reads back as written");
    assert_eq!(seventh.insight.as_ref().unwrap().value, 7_000);
    let state = e.store.stream(&tenant, &key).await.unwrap().unwrap();
    assert_eq!(state.position, position);
    assert_eq!(state.counters.processed, 240, "counted per page stored");

    // Release: next due, deferral, counters; only by the holder.
    let finish = Finish {
        next_due: now + Duration::seconds(90),
        deferred_until: Some(now + Duration::seconds(90)),
        counters: Counters {
            rate_limited: 1,
            ..Default::default()
        },
    };
    assert_eq!(
        e.store.finish(&tenant, &key, "b", &finish).await,
        Err(StoreError::Conflict)
    );
    e.store.finish(&tenant, &key, "a", &finish).await.unwrap();
    e.store.count_skip(&tenant, &key).await.unwrap();
    let state = e.store.stream(&tenant, &key).await.unwrap().unwrap();
    assert_eq!(state.lease_owner, None);
    assert_eq!(state.deferred_until, Some(now + Duration::seconds(90)));
    assert_eq!(state.counters.rate_limited, 1);
    assert_eq!(state.counters.skipped, 1);
    let c = e.store.candidates().await.unwrap();
    let mine = c.iter().find(|c| c.tenant_id == tenant).unwrap();
    assert_eq!(mine.state.as_ref().unwrap().position, position);

    // Review items: the tenant's, paginated.
    let (list, next) = e.store.review_items(&tenant, 10, None).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].reason, "`text` is missing");
    assert!(
        next.is_none()
            || e.store
                .review_items(&tenant, 10, next.as_deref())
                .await
                .unwrap()
                .0
                .is_empty()
    );
    assert!(
        e.store
            .review_items(&TenantId("other".into()), 10, None)
            .await
            .unwrap()
            .0
            .is_empty()
    );
}

/// The tenant's streams and the per-stream dry run on DynamoDB; items written before the
/// `poll` index are found once reindexed.
#[tokio::test]
async fn streams_dry_run_and_reindex_on_dynamodb() {
    let e = env().await;
    let tenant = TenantId("t-streams".into());
    let fb = account(&tenant, Platform::Facebook, "p2", AccountStatus::Active);
    e.store.upsert_account(&fb).await.unwrap();
    let posts = StreamKey::for_account(Platform::Facebook, "p2");
    let insights = StreamKey::of(Platform::Facebook, StreamKind::Insights, "p2").unwrap();

    let listed = e.store.streams(&tenant).await.unwrap();
    let keys: BTreeSet<&str> = listed.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, BTreeSet::from(["fb:p2", "fb-insights:p2"]));
    assert!(listed.iter().all(|c| c.state.is_none()));

    // On for a stream that never ran: its state is created, with the flag.
    let (before, after) = set_stream_dry_run(&e.store, &tenant, &insights, true)
        .await
        .unwrap()
        .unwrap();
    assert!(before.state.is_none());
    let state = after.state.unwrap();
    assert!(state.dry_run);
    assert_eq!(state.account_id, fb.id);
    let polled = e.store.candidates().await.unwrap();
    let mine: Vec<&Candidate> = polled.iter().filter(|c| c.tenant_id == tenant).collect();
    assert_eq!(mine.len(), 2);
    let flagged = mine.iter().find(|c| c.key == insights).unwrap();
    assert!(
        flagged.state.as_ref().unwrap().dry_run,
        "the poller sees the flag"
    );
    // Off again keeps the rest of the state.
    let (_, after) = set_stream_dry_run(&e.store, &tenant, &insights, false)
        .await
        .unwrap()
        .unwrap();
    assert!(!after.state.unwrap().dry_run);
    assert!(
        set_stream_dry_run(&e.store, &tenant, &StreamKey("x:nobody".into()), true)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        e.store
            .streams(&TenantId("t-none".into()))
            .await
            .unwrap()
            .is_empty()
    );

    // An account written before the index: invisible to the poller until reindexed.
    let ddb = &e.clients.dynamodb;
    let table = &e.vars["HERALD_TABLE"];
    ddb.update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("TENANT#t-streams".into()))
        .key("sk", AttributeValue::S(format!("ACCOUNT#{}", fb.id)))
        .update_expression("REMOVE poll_pk")
        .send()
        .await
        .unwrap();
    let polled = e.store.candidates().await.unwrap();
    let keys: BTreeSet<&str> = polled
        .iter()
        .filter(|c| c.tenant_id == tenant)
        .map(|c| c.key.as_str())
        .collect();
    assert!(keys.is_empty(), "{keys:?}");
    assert!(e.store.backfill_poll_index().await.unwrap() >= 1);
    let polled = e.store.candidates().await.unwrap();
    let keys: BTreeSet<&str> = polled
        .iter()
        .filter(|c| c.tenant_id == tenant)
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(keys, BTreeSet::from([posts.as_str(), insights.as_str()]));
    assert_eq!(
        e.store.backfill_poll_index().await.unwrap(),
        0,
        "once is enough"
    );
}

#[tokio::test]
async fn jobs_go_to_the_ingest_queue_in_batches() {
    let e = env().await;
    let url = &e.vars["HERALD_QUEUE_URL_INGEST_QUEUE"];
    let queue = SqsIngestQueue::new(e.clients.sqs.clone(), url);
    let jobs: Vec<IngestJob> = (0..23)
        .map(|i| IngestJob {
            tenant_id: TenantId("t".into()),
            account_id: herald_domain::ids::AccountId(format!("acc_{i}")),
            stream: StreamKey::for_account(Platform::X, &format!("u{i}")),
            dry_run: i == 0,
            correlation_id: Some(format!("poll-{i}")),
        })
        .collect();
    e.clients.calls.reset();
    let results = queue.send(&jobs).await.unwrap();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(e.clients.calls.snapshot()["SQS.SendMessageBatch"].ok, 3);
    let mut received = Vec::new();
    for _ in 0..10 {
        let out = e
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages() {
            received.push(serde_json::from_str::<IngestJob>(m.body().unwrap()).unwrap());
        }
        if received.len() == jobs.len() {
            break;
        }
    }
    received.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    let mut expected = jobs.clone();
    expected.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    assert_eq!(received, expected);
}
