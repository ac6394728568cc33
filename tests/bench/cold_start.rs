//! Cold starts of every function, next to a hello-world `lambda_runtime` binary in the same run.
//!
//! Each run starts a release binary against a Runtime API served here and sends it one event:
//! - `init`: process start to its first poll for an event (what the function builds before
//!   it can take one);
//! - `first_invoke`: process start to its answer, less the time the emulator spent answering
//!   its AWS calls (those are counted apart, through a counting proxy in front of the
//!   emulators, as `first_invoke_aws_calls` and `first_invoke_aws_ms`);
//! - RSS after the first invocation.
//!
//! Medians of several runs per function; each function's runs alternate with hello-world's, and
//! its ratios are to the median of the hello-world runs paired with its own.

use crate::bench;
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{any, get, post};
use herald_tests::repo_root;
use std::collections::HashMap;
use std::path::Path as FsPath;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Every function binary, with the event its first invocation gets.
const FUNCTIONS: [(&str, &str); 11] = [
    ("api", "api/warmup.json"),
    ("analytics", "analytics/warmup.json"),
    ("deliverer", "deliverer/warmup.json"),
    ("dispatcher", "dispatcher/warmup.json"),
    ("ingester", "ingester/warmup.json"),
    ("poller", "poller/warmup.json"),
    ("publisher", "publisher/warmup.json"),
    ("reconciler", "reconciler/warmup.json"),
    // The event is made per run: a createSecret step on a secret of the bench's own.
    ("rotator", ""),
    ("webhook-processor", "webhook-processor/warmup.json"),
    ("webhooks", "webhooks/warmup.json"),
];

const RUNS: usize = 15;

#[derive(Default)]
struct RuntimeApi {
    event: Mutex<Option<Bytes>>,
    first_poll: Mutex<Option<Instant>>,
    answered_at: Mutex<Option<Instant>>,
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
    api.answered_at
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
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

/// Forwards every request to the emulator (DynamoDB's to the local DynamoDB, the rest to moto),
/// counting calls and the time spent waiting on them.
struct Proxy {
    upstream: String,
    dynamodb: String,
    http: reqwest::Client,
    calls: AtomicU64,
    busy_micros: AtomicU64,
}

async fn forward(State(proxy): State<Arc<Proxy>>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let dynamodb = parts
        .headers
        .get("x-amz-target")
        .is_some_and(|t| t.as_bytes().starts_with(b"DynamoDB_"));
    let upstream = if dynamodb {
        &proxy.dynamodb
    } else {
        &proxy.upstream
    };
    let mut out = proxy
        .http
        .request(parts.method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    let answer = out.body(body).send().await.unwrap();
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap();
    proxy.calls.fetch_add(1, Ordering::Relaxed);
    proxy
        .busy_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    response.body(Body::from(bytes)).unwrap()
}

/// Serves the proxy; answers its address.
async fn start_proxy(upstream: &str, dynamodb: &str) -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        dynamodb: dynamodb.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        calls: AtomicU64::new(0),
        busy_micros: AtomicU64::new(0),
    });
    let app = Router::new()
        .fallback(any(forward))
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (proxy, format!("http://{addr}"))
}

struct Run {
    init: Duration,
    /// Start to answer, less the emulator's time.
    first_invoke: Duration,
    aws_calls: u64,
    aws_time: Duration,
    rss_kib: u64,
}

/// Starts `binary` against a Runtime API served here, sends it `event`, and measures.
async fn run_once(
    binary: &FsPath,
    env: &HashMap<String, String>,
    proxy: &Proxy,
    event: &[u8],
) -> Run {
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
    let calls_before = proxy.calls.load(Ordering::Relaxed);
    let busy_before = proxy.busy_micros.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut child = Command::new(binary)
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("HERALD_LOG_LEVEL", "warn")
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
    let aws_time = Duration::from_micros(proxy.busy_micros.load(Ordering::Relaxed) - busy_before);
    let answered = api.answered_at.lock().unwrap().unwrap() - started;
    Run {
        init: api.first_poll.lock().unwrap().unwrap() - started,
        first_invoke: answered.saturating_sub(aws_time),
        aws_calls: proxy.calls.load(Ordering::Relaxed) - calls_before,
        aws_time,
        rss_kib,
    }
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// A createSecret step on a fresh secret of the bench's own, as Secrets Manager sends it.
async fn rotation_event(env: &HashMap<String, String>) -> Vec<u8> {
    let sm = aws_sdk_secretsmanager::Client::new(
        &herald_tests::sdk_config(&env["AWS_ENDPOINT_URL"]).await,
    );
    let arn = herald_tests::create_secret(
        &sm,
        "herald-bench-",
        Some("webhook-signing"),
        Some(&"x".repeat(64)),
    )
    .await;
    serde_json::to_vec(&serde_json::json!({
        "SecretId": arn,
        "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
        "Step": "createSecret",
    }))
    .unwrap()
}

/// `HERALD_BENCH_BINARIES` names another folder of release binaries (an earlier commit's
/// build, for a before/after comparison in one run); `target/release` by default.
pub async fn cold_starts(
    env: &HashMap<String, String>,
    functions: &HashMap<String, HashMap<String, String>>,
) {
    let release = std::env::var_os("HERALD_BENCH_BINARIES").map_or_else(
        || repo_root().join("target/release"),
        std::path::PathBuf::from,
    );
    let (proxy, proxy_url) =
        start_proxy(&env["AWS_ENDPOINT_URL"], &env["AWS_ENDPOINT_URL_DYNAMODB"]).await;
    let mut env = env.clone();
    env.insert("AWS_ENDPOINT_URL".into(), proxy_url.clone());
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".into(), proxy_url);
    let hello = &release.join("hello-lambda");
    let mut hello_runs = Vec::new();
    for (function, event_file) in FUNCTIONS {
        // Pairs, hello-world then the function, so a drift in the machine's speed during the
        // bench weighs on both sides of every ratio alike.
        let mut runs = Vec::new();
        let mut hellos = Vec::new();
        for _ in 0..RUNS {
            hellos.push(run_once(hello, &env, &proxy, b"{}").await);
            let event = if event_file.is_empty() {
                rotation_event(&env).await
            } else {
                std::fs::read(repo_root().join("events").join(event_file)).unwrap()
            };
            let mut env = env.clone();
            env.extend(functions.get(function).cloned().unwrap_or_default());
            runs.push(run_once(&release.join(function), &env, &proxy, &event).await);
        }
        let hello_init = median(hellos.iter().map(|r| r.init).collect());
        let hello_invoke = median(hellos.iter().map(|r| r.first_invoke).collect());
        hello_runs.extend(hellos);
        let init = median(runs.iter().map(|r| r.init).collect());
        let invoke = median(runs.iter().map(|r| r.first_invoke).collect());
        bench(&format!("cold_start.init.{function}"), ms(init), "ms");
        bench(
            &format!("cold_start.init_ratio.{function}"),
            format!("{:.2}", init.as_secs_f64() / hello_init.as_secs_f64()),
            "x_hello",
        );
        bench(
            &format!("cold_start.first_invoke_ratio.{function}"),
            format!("{:.2}", invoke.as_secs_f64() / hello_invoke.as_secs_f64()),
            "x_hello",
        );
        bench(
            &format!("cold_start.first_invoke.{function}"),
            ms(invoke),
            "ms",
        );
        bench(
            &format!("cold_start.first_invoke_aws_calls.{function}"),
            median(runs.iter().map(|r| r.aws_calls).collect()),
            "calls",
        );
        bench(
            &format!("cold_start.first_invoke_aws_ms.{function}"),
            ms(median(runs.iter().map(|r| r.aws_time).collect())),
            "ms",
        );
        bench(
            &format!("rss_after_first_invoke.{function}"),
            format!(
                "{:.1}",
                runs.iter().map(|r| r.rss_kib).max().unwrap_or(0) as f64 / 1024.0
            ),
            "MiB",
        );
    }
    bench(
        "cold_start.init.hello-lambda",
        ms(median(hello_runs.iter().map(|r| r.init).collect())),
        "ms",
    );
    bench(
        "cold_start.first_invoke.hello-lambda",
        ms(median(hello_runs.iter().map(|r| r.first_invoke).collect())),
        "ms",
    );
}
