//! `make bench`: prints `BENCH <name> <value> <unit>` lines.
//!
//! - `cold_start`: every function's init and first invocation next to a hello-world
//!   lambda_runtime binary, its AWS calls counted apart, and RSS after the first invocation;
//! - DynamoDB calls for one happy-path publish and for a duplicate delivery (emulated, counted by
//!   the SDK interceptor);
//! - the API's in-process handler overhead for `POST /v1/posts` (p50/p99, in-memory ports),
//!   with port calls per request, and AWS calls per request against the emulators;
//! - inbound webhooks: verification p50/p99 per scheme, AWS calls per accepted webhook;
//! - the rate limiter: AWS calls and latency per request (`limiter`);
//! - SMS campaigns: AWS calls per SMS sent, simulated sends per second, enqueue time and
//!   calls (`sms`).
//!
//! Each feature's figures live in a module of their own (`cold_start`, `webhooks`, `ingest`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark harness fails loudly.

mod webhooks;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_domain::alerts::AlertLedger;
use herald_domain::clock::SystemEntropy;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::memory::MemoryStore;
use herald_domain::model::*;
use herald_domain::ports::{
    AccountStore, AppLimiter, PostStore, PublishStore, SlotStore, TenantStore,
};
use herald_domain::publishing::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::publishing::platform::{
    LookupRequest, PlatformClient, PlatformError, PublishRequest, PublishedPost,
};
use herald_domain::publishing::posts::{Actor, NewPost, PostService, Target};
use herald_domain::publishing::publish::{
    Delivery, Disposition, Done, PublishConfig, PublishService,
};
use herald_tests::{bootstrap_functions, local_aws, sdk_config};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

mod api_load;
mod cold_start;
mod cost;
mod health;
mod ingest;
mod limiter;
mod sms;

pub(crate) fn bench(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("BENCH {name} {value} {unit}");
}

const BATCH: usize = 10;

/// A platform that accepts every post after `latency`.
#[derive(Debug)]
struct Accepting {
    latency: Duration,
}

#[async_trait::async_trait]
impl PlatformClient for Accepting {
    async fn publish(&self, _: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        tokio::time::sleep(self.latency).await;
        Ok(PublishedPost::new("1"))
    }
    async fn find_post(
        &self,
        _: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        Ok(None)
    }
}

/// A tenant with one X account (an account window and an app window apply: the most gates of
/// any platform) and `BATCH` posts due now.
async fn seed_batch<S>(store: &Arc<S>)
where
    S: TenantStore + AccountStore + PostStore + SlotStore + 'static,
{
    let (tenant, key, _) = herald_domain::tenants::create_tenant(
        store.as_ref() as &dyn TenantStore,
        &SystemClock,
        "bench",
        false,
    )
    .await
    .unwrap();
    let account = Account {
        id: Account::id_for(Platform::X, "1"),
        tenant_id: tenant.id.clone(),
        platform: Platform::X,
        external_id: "1".into(),
        display_name: None,
        access_token: secrecy::SecretString::from("t"),
        refresh_token: None,
        token_expires_at: None,
        status: AccountStatus::Active,
        created_at: SystemClock.now(),
        updated_at: SystemClock.now(),
        breaker: Default::default(),
    };
    store.upsert_account(&account).await.unwrap();
    let posts = PostService {
        posts: store.clone(),
        accounts: store.clone(),
        tenants: store.clone(),
        slots: store.clone(),
        media: herald_domain::memory::MemoryMedia::service(Arc::new(SystemClock)),
        clock: Arc::new(SystemClock),
    };
    for i in 0..BATCH {
        posts
            .create(
                &Actor {
                    tenant_id: tenant.id.clone(),
                    key_id: key.id.clone(),
                },
                NewPost {
                    alt_text: Default::default(),
                    text: format!("bench {i}"),
                    scheduled_at: None,
                    targets: vec![Target {
                        options: Default::default(),
                        account_id: account.id.clone(),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
                    follow_ups: Default::default(),
                    draft: false,
                    local: None,
                    next_slot: false,
                },
                "bench".into(),
            )
            .await
            .unwrap();
    }
}

/// The publisher over `store`, against a platform answering in 200 ms.
fn accepting_publisher<S>(store: Arc<S>) -> PublishService
where
    S: PublishStore + AppLimiter + AlertLedger + 'static,
{
    let alerter = herald_platforms::alerter(None, store.clone(), Arc::new(SystemClock));
    PublishService {
        store: store.clone(),
        limiter: store.clone(),
        alerter,
        tokens: None,
        platform: Arc::new(Accepting {
            latency: Duration::from_millis(200),
        }),
        media: Arc::new(herald_domain::memory::MemoryMedia::default()),
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SystemEntropy),
        config: PublishConfig::default(),
    }
}

/// The wall time of a batch over the in-memory store: the publisher's own concurrency, without
/// the emulator (whose DynamoDB requests are serialized) in the way.
async fn publish_batch_in_memory() {
    let store = Arc::new(MemoryStore::new());
    seed_batch(&store).await;
    let queue = Arc::new(herald_domain::memory::MemoryQueue::default());
    let dispatcher = Dispatcher {
        store: store.clone(),
        crises: store.clone(),
        queue: queue.clone(),
        clock: Arc::new(SystemClock),
        config: DispatchConfig::default(),
    };
    dispatcher.run_once().await.unwrap();
    let deadline = SystemClock.now() + time::Duration::seconds(30);
    let records: Vec<_> = queue
        .take()
        .into_iter()
        .map(|m| {
            (
                m,
                Delivery {
                    receive_count: 1,
                    deadline,
                },
            )
        })
        .collect();
    assert_eq!(records.len(), BATCH);
    let publisher = accepting_publisher(store);
    let started = Instant::now();
    let dispositions = publisher.handle_batch(&records, BATCH).await;
    let wall = started.elapsed();
    assert!(
        dispositions
            .iter()
            .all(|d| *d == Disposition::Done(Done::Published)),
        "{dispositions:?}"
    );
    bench(
        "publish.batch10.wall_time_200ms_platform.memory_store",
        wall.as_millis(),
        "ms",
    );
}

/// The dispatch and publish stages' AWS calls, for the cost figures.
async fn publish_calls(env: &HashMap<String, String>) -> [cost::Stage; 2] {
    use herald_aws::sqs::SqsPublishQueue;
    use herald_domain::ports::PublishMessage;

    let clients = herald_tests::stack_clients(env).await;
    let store = Arc::new(
        herald_aws::config::CommonConfig::read(&mut herald_aws::config::Env::new(env))
            .store(&clients),
    );
    seed_batch(&store).await;
    let queue = Arc::new(SqsPublishQueue::new(
        clients.sqs.clone(),
        &env["HERALD_PUBLISH_QUEUE_URL"],
    ));
    let dispatcher = Dispatcher {
        store: store.clone(),
        crises: store.clone(),
        queue,
        clock: Arc::new(SystemClock),
        config: DispatchConfig::default(),
    };
    clients.calls.reset();
    dispatcher.run_once().await.unwrap();
    let dispatch_calls = clients.calls.snapshot();
    let mut messages: Vec<PublishMessage> = Vec::new();
    while messages.len() < BATCH {
        let received = clients
            .sqs
            .receive_message()
            .queue_url(&env["HERALD_PUBLISH_QUEUE_URL"])
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in received.messages() {
            messages.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
    }
    let publisher = accepting_publisher(store.clone());
    let delivery = |n| Delivery {
        receive_count: n,
        deadline: SystemClock.now() + time::Duration::seconds(30),
    };
    let count = |snap: &std::collections::BTreeMap<String, herald_aws::calls::Tally>,
                 f: &dyn Fn(&str) -> bool,
                 ok: bool|
     -> usize {
        snap.iter()
            .filter(|(op, _)| f(op))
            .map(|(_, t)| if ok { t.ok } else { t.failed })
            .sum()
    };
    let all = |_: &str| true;
    let is_read = |op: &str| {
        [
            "DynamoDB.GetItem",
            "DynamoDB.Query",
            "DynamoDB.BatchGetItem",
        ]
        .contains(&op)
    };
    bench(
        "dispatch.dynamodb_calls_per_post",
        count(&dispatch_calls, &|op| op.starts_with("DynamoDB"), true) as f64 / BATCH as f64,
        "calls",
    );
    bench(
        "dispatch.sqs_calls_per_post",
        count(&dispatch_calls, &|op| op.starts_with("SQS"), true) as f64 / BATCH as f64,
        "calls",
    );
    let records: Vec<_> = messages.iter().map(|m| (m.clone(), delivery(1))).collect();
    clients.calls.reset();
    let started = Instant::now();
    let dispositions = publisher.handle_batch(&records, BATCH).await;
    let wall = started.elapsed();
    assert!(
        dispositions
            .iter()
            .all(|d| matches!(d, herald_domain::publishing::publish::Disposition::Done(_))),
        "{dispositions:?}"
    );
    let snap = clients.calls.snapshot();
    // Claim (with pause check, account window and breaker, one transaction), read of the post
    // and token, outcome; plus the app budget once per batch.
    bench(
        "publish.batch10.aws_calls_per_variant",
        (count(&snap, &all, true) + count(&snap, &all, false)) as f64 / BATCH as f64,
        "calls",
    );
    bench(
        "publish.batch10.wall_time_200ms_platform",
        wall.as_millis(),
        "ms",
    );
    let stages = [
        cost::Stage {
            name: "dispatch",
            calls: dispatch_calls.clone(),
            posts: BATCH as f64,
            // It runs once a minute whatever is due: no invocation is a post's own.
            invocations_per_post: 0.0,
            own_ms_per_post: 0.0,
            http_requests_per_post: 0.0,
        },
        cost::Stage {
            name: "publish",
            calls: snap.clone(),
            posts: BATCH as f64,
            invocations_per_post: 1.0 / BATCH as f64,
            // The batch waits for the platform (200 ms here) once, its ten calls at once.
            own_ms_per_post: 200.0 / BATCH as f64,
            http_requests_per_post: 0.0,
        },
    ];
    clients.calls.reset();
    publisher.handle(&messages[0], delivery(2)).await;
    let snap = clients.calls.snapshot();
    bench(
        "publish.duplicate.aws_calls",
        count(&snap, &all, true) + count(&snap, &all, false),
        "calls",
    );
    bench(
        "publish.duplicate.dynamodb_reads",
        count(&snap, &is_read, true) + count(&snap, &is_read, false),
        "calls",
    );
    stages
}

/// The API's `POST /v1/posts` stage, for the cost figures.
async fn api_overhead(env: &HashMap<String, String>) -> cost::Stage {
    // In-process over in-memory ports: the handler's own cost.
    let memory = herald_api::AppState::in_memory();
    let store = memory.store;
    let app = herald_api::router(memory.state);
    let (_, _, secret) =
        herald_domain::tenants::create_tenant(store.as_ref(), &SystemClock, "bench", false)
            .await
            .unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let account = connect(&app, &key).await;
    let n = 3000;
    let mut times = Vec::with_capacity(n);
    store.calls.reset();
    for i in 0..n {
        let req = create_request(&key, &account, &format!("bench-{i}"));
        let t = Instant::now();
        let res = app.clone().oneshot(req).await.unwrap();
        times.push(t.elapsed());
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let calls = store.calls.total() as f64 / n as f64;
    times.sort();
    bench(
        "api.post_posts.p50",
        format!("{:.1}", times[n / 2].as_secs_f64() * 1e6),
        "us",
    );
    bench(
        "api.post_posts.p99",
        format!("{:.1}", times[n * 99 / 100].as_secs_f64() * 1e6),
        "us",
    );
    bench(
        "api.post_posts.port_calls_per_request",
        format!("{calls:.1}"),
        "calls",
    );

    // The same request through the DynamoDB adapters, counting AWS calls.
    let clients = herald_tests::stack_clients(env).await;
    let config = herald_fn_api::Config::from_env(env).unwrap();
    let shared = herald_fn_api::shared(&config, &clients);
    let mut state = herald_fn_api::state(&config, &clients, &shared);
    // Connecting asks the platform who the token is; no platform answers here, and the
    // figures are about creating posts.
    state.owners = Arc::new(herald_domain::publishing::platform::TrustingOwners);
    let app = herald_api::router(state);
    let store =
        herald_aws::dynamo::DynamoStore::new(clients.dynamodb.clone(), &env["HERALD_TABLE"]);
    let (_, _, secret) =
        herald_domain::tenants::create_tenant(&store, &SystemClock, "bench-aws", false)
            .await
            .unwrap();
    let key = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let account = connect(&app, &key).await;
    clients.calls.reset();
    let res = app
        .clone()
        .oneshot(create_request(&key, &account, "aws-1"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let snap = clients.calls.snapshot();
    let total: usize = snap.values().map(|t| t.ok + t.failed).sum();
    bench("api.post_posts.aws_calls_per_request", total, "calls");
    let create = cost::Stage {
        name: "api_create",
        calls: snap.clone(),
        posts: 1.0,
        invocations_per_post: 1.0,
        own_ms_per_post: times[n / 2].as_secs_f64() * 1e3,
        http_requests_per_post: 1.0,
    };
    for (op, t) in &snap {
        bench(
            &format!("api.post_posts.aws.{op}"),
            t.ok + t.failed,
            "calls",
        );
    }
    clients.calls.reset();
    let res = app
        .clone()
        .oneshot(create_request(&key, &account, "aws-1"))
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let snap = clients.calls.snapshot();
    bench(
        "api.post_posts.replay.aws_calls",
        snap.values().map(|t| t.ok + t.failed).sum::<usize>(),
        "calls",
    );
    create
}

async fn connect(app: &Router, key: &str) -> String {
    let req = Request::post("/v1/accounts")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"platform":"x","external_id":"1","access_token":"t"}"#,
        ))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn create_request(key: &str, account: &str, idem: &str) -> Request<Body> {
    Request::post("/v1/posts")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .header("idempotency-key", idem)
        .body(Body::from(format!(
            r#"{{"text":"hello","targets":[{{"account_id":"{account}"}}]}}"#
        )))
        .unwrap()
}

#[tokio::main]
async fn main() {
    let aws = local_aws();
    let (mut env, functions) = bootstrap_functions(aws);
    env.insert("AWS_ENDPOINT_URL".into(), aws.endpoint.clone());
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), aws.dynamodb.clone());
    env.insert("AWS_REGION".into(), "us-east-1".into());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    // The API function's own variables (the embed key, the queues its health check reads),
    // for the in-process API below.
    for (name, value) in &functions["api"] {
        env.entry(name.clone()).or_insert_with(|| value.clone());
    }
    // The token-encryption key's first value (the local stack's rotation gives it one).
    {
        use secrecy::ExposeSecret;
        aws_sdk_secretsmanager::Client::new(&sdk_config(&env["AWS_ENDPOINT_URL"]).await)
            .put_secret_value()
            .secret_id(&env["HERALD_TOKEN_KEY_SECRET"])
            .secret_string(
                herald_domain::secrets::SecretKind::Key256
                    .generate()
                    .expose_secret(),
            )
            .send()
            .await
            .unwrap();
    }
    // `herald-bench <section>...` runs only those sections (all by default).
    let only: Vec<String> = std::env::args().skip(1).collect();
    let wants = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    if wants("cold_starts") {
        cold_start::cold_starts(&env, &functions).await;
    }
    let publish = if wants("publish_calls") {
        Some(publish_calls(&env).await)
    } else {
        None
    };
    if wants("publish_batch_in_memory") {
        publish_batch_in_memory().await;
    }
    let create = if wants("api_overhead") {
        Some(api_overhead(&env).await)
    } else {
        None
    };
    if let (Some(create), Some([dispatch, publish])) = (create, publish) {
        cost::report(&[create, dispatch, publish]);
    }
    if wants("api_load") {
        api_load::api_load().await;
    }
    if wants("webhook_verification") {
        webhooks::verification();
    }
    if wants("webhook_calls") {
        webhooks::calls_per_webhook(&env).await;
    }
    if wants("ingest_in_memory") {
        ingest::ingest_in_memory().await;
    }
    if wants("ingest_calls") {
        ingest::ingest_calls(&env).await;
    }
    if wants("health") {
        health::health(&env).await;
    }
    if wants("rate_limiter") {
        limiter::limiter(&env).await;
    }
    if wants("sms_in_memory") {
        sms::sms_in_memory().await;
    }
    if wants("sms_calls") {
        sms::sms_calls(&env, &functions["sms-sender"]["HERALD_SMS_QUEUE_URL"]).await;
    }
}
