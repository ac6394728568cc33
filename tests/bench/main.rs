//! `make bench`: prints `BENCH <name> <value> <unit>` lines.
//!
//! - cold start of each release binary: process start → its first poll of the Lambda Runtime
//!   API (served here), median of several runs, next to a hello-world lambda_runtime binary;
//! - RSS after the first invocation (each function gets its warm-up event from `events/`);
//! - DynamoDB calls for one happy-path publish and for a duplicate delivery (moto, counted by
//!   the SDK interceptor);
//! - the API's in-process handler overhead for `POST /v1/posts` (p50/p99, in-memory ports),
//!   with port calls per request, and AWS calls per request against moto;
//! - inbound webhooks: verification p50/p99 per scheme, AWS calls per accepted webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark harness fails loudly.

mod webhooks;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::{get, post};
use herald_domain::alerts::AlertLedger;
use herald_domain::clock::SystemEntropy;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::idempotency::Idempotency;
use herald_domain::memory::MemoryStore;
use herald_domain::model::*;
use herald_domain::ports::{AccountStore, AppLimiter, PostStore, PublishStore, TenantStore};
use herald_domain::publishing::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::publishing::platform::{
    LookupRequest, PlatformClient, PlatformError, PublishRequest, PublishedPost,
};
use herald_domain::publishing::posts::{Actor, NewPost, PostService, Target};
use herald_domain::publishing::publish::{
    Delivery, Disposition, Done, PublishConfig, PublishService,
};
use herald_tests::{bootstrap, moto, repo_root, sdk_config};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tower::ServiceExt;

mod ingest;

fn bench(name: &str, value: impl std::fmt::Display, unit: &str) {
    println!("BENCH {name} {value} {unit}");
}

#[derive(Default)]
struct RuntimeApi {
    event: Mutex<Option<Bytes>>,
    first_poll: Mutex<Option<Instant>>,
    answered: Notify,
    outcome: Mutex<Option<String>>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> (StatusCode, HeaderMap, Bytes) {
    api.first_poll
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let event = api.event.lock().unwrap().take();
    let Some(event) = event else {
        // One invocation per process: park the second poll until the process is killed.
        std::future::pending::<()>().await;
        unreachable!()
    };
    let mut h = HeaderMap::new();
    h.insert("lambda-runtime-aws-request-id", "bench-1".parse().unwrap());
    let deadline = (std::time::SystemTime::now() + Duration::from_secs(30))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    h.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    h.insert(
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            .parse()
            .unwrap(),
    );
    (StatusCode::OK, h, event)
}

async fn respond(
    State(api): State<Arc<RuntimeApi>>,
    Path((_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    *api.outcome.lock().unwrap() = Some(format!(
        "{kind}: {}",
        String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .collect::<String>()
    ));
    api.answered.notify_one();
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    *api.outcome.lock().unwrap() = Some(format!("init error: {}", String::from_utf8_lossy(&body)));
    api.answered.notify_one();
    StatusCode::ACCEPTED
}

struct Run {
    cold_start: Duration,
    rss_kib: u64,
}

/// Starts `binary` against a Runtime API served here, sends it `event`, and measures.
async fn run_once(binary: &PathBuf, env: &HashMap<String, String>, event: &[u8]) -> Run {
    let api = Arc::new(RuntimeApi::default());
    *api.event.lock().unwrap() = Some(Bytes::copy_from_slice(event));
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/{kind}", post(respond))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), api.answered.notified())
        .await
        .expect("no answer from the function");
    let rss_kib = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let outcome = api.outcome.lock().unwrap().clone().unwrap_or_default();
    assert!(
        outcome.starts_with("response"),
        "{}: {outcome}",
        binary.display()
    );
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    let cold_start = api.first_poll.lock().unwrap().unwrap() - started;
    Run {
        cold_start,
        rss_kib,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn cold_starts(env: &HashMap<String, String>) {
    let release = repo_root().join("target/release");
    let runs = 7;
    let mut hello = Vec::new();
    for _ in 0..runs {
        hello.push(
            run_once(&release.join("hello-lambda"), env, b"{}")
                .await
                .cold_start,
        );
    }
    let baseline = median(hello);
    bench(
        "cold_start.hello-lambda",
        format!("{:.2}", baseline.as_secs_f64() * 1e3),
        "ms",
    );
    for function in ["api", "dispatcher", "publisher", "reconciler"] {
        let event =
            std::fs::read(repo_root().join(format!("events/{function}/warmup.json"))).unwrap();
        let mut times = Vec::new();
        let mut rss = 0;
        for _ in 0..runs {
            let run = run_once(&release.join(function), env, &event).await;
            times.push(run.cold_start);
            rss = rss.max(run.rss_kib);
        }
        let m = median(times);
        bench(
            &format!("cold_start.{function}"),
            format!("{:.2}", m.as_secs_f64() * 1e3),
            "ms",
        );
        bench(
            &format!("cold_start_ratio.{function}"),
            format!("{:.2}", m.as_secs_f64() / baseline.as_secs_f64()),
            "x_hello",
        );
        bench(
            &format!("rss_after_first_invoke.{function}"),
            format!("{:.1}", rss as f64 / 1024.0),
            "MiB",
        );
    }
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
    S: TenantStore + AccountStore + PostStore + 'static,
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
                    text: format!("bench {i}"),
                    scheduled_at: None,
                    targets: vec![Target {
                        account_id: account.id.clone(),
                        text: None,
                        media: None,
                    }],
                    media: vec![],
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
    let alerter = herald_platforms::alerter(None, store.clone(), Arc::new(SystemClock)).unwrap();
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

async fn publish_calls(env: &HashMap<String, String>) {
    use herald_aws::Clients;
    use herald_aws::sqs::SqsPublishQueue;
    use herald_domain::ports::PublishMessage;

    let clients = Clients::from_sdk_config(&sdk_config(&env["AWS_ENDPOINT_URL"]).await);
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
}

async fn api_overhead(env: &HashMap<String, String>) {
    // In-process over in-memory ports: the handler's own cost.
    let store = Arc::new(MemoryStore::new());
    let dead_letters = Arc::new(herald_domain::memory::MemoryDeadLetters::default());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = herald_api::AppState {
        tenants: store.clone(),
        accounts: store.clone(),
        crises: store.clone(),
        heartbeats: store.clone(),
        audit: store.clone(),
        dead_letters: herald_domain::dead_letters::DeadLetterService {
            queues: dead_letters.clone(),
            audit: store.clone(),
            clock: clock.clone(),
        },
        posts: PostService {
            posts: store.clone(),
            accounts: store.clone(),
            tenants: store.clone(),
            media: herald_domain::memory::MemoryMedia::service(clock.clone()),
            clock: clock.clone(),
        },
        idempotency: Idempotency::new(store.clone(), clock.clone(), time::Duration::seconds(30)),
        clock,
        webhook_endpoints: herald_domain::outbound::EndpointRegistry {
            store: Arc::new(herald_domain::outbound::memory::MemoryEndpoints::default()),
            // Every name resolves to a public address (example.com's), unless a test says otherwise.
            resolver: Arc::new(herald_domain::outbound::memory::FixedResolver(vec![
                std::net::IpAddr::from([93, 184, 215, 14]),
            ])),
            policy: Default::default(),
            secret_overlap: std::time::Duration::from_secs(24 * 3600),
        },
        operator: None,
        ingest: Arc::new(herald_domain::ingest::memory::MemoryIngestStore::default()),
    };
    let app = herald_api::router(state);
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
    let clients = herald_aws::Clients::from_sdk_config(&sdk_config(&env["AWS_ENDPOINT_URL"]).await);
    let config = herald_fn_api::Config::from_env(env).unwrap();
    let shared = herald_fn_api::shared(&config, &clients);
    let app = herald_api::router(herald_fn_api::state(&config, &clients, &shared));
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
    let endpoint = moto().endpoint.clone();
    let mut env = bootstrap(&endpoint);
    env.insert("AWS_ENDPOINT_URL".into(), endpoint);
    env.insert("AWS_REGION".into(), "us-east-1".into());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    // The API function's own variable: the template sets it on the function, not in Globals,
    // which is all `bootstrap` prints. Nothing benchmarked here reads the embed key.
    env.insert(
        "HERALD_EMBED_SIGNING_SECRET_ID".into(),
        "herald-EmbedSigningKeySecret".into(),
    );
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
        cold_starts(&env).await;
    }
    if wants("publish_calls") {
        publish_calls(&env).await;
    }
    if wants("publish_batch_in_memory") {
        publish_batch_in_memory().await;
    }
    if wants("api_overhead") {
        api_overhead(&env).await;
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
}
