//! The routes `make load` drives on the local stack, in-process over the in-memory store at the
//! same concurrency (16 requests in flight): what Herald's own code costs under that load, so
//! the local stack's figures can be told apart from what moto and dynoxide add.

use super::bench;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_domain::clock::SystemClock;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tower::ServiceExt;

/// `infra/load_phases.py --workers`.
const IN_FLIGHT: usize = 16;
const REQUESTS: usize = 8_000;
const ROUTES: [&str; 4] = ["create", "list", "read", "accounts"];

pub async fn api_load() {
    let memory = herald_api::AppState::in_memory();
    let app = herald_api::router(memory.state);
    let (_, _, secret) =
        herald_domain::tenants::create_tenant(memory.store.as_ref(), &SystemClock, "load", false)
            .await
            .unwrap();
    let key = Arc::new(secrecy::ExposeSecret::expose_secret(&secret).to_owned());
    let account = Arc::new(super::connect(&app, &key).await);
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let times = Arc::new(Mutex::new(vec![Vec::<Duration>::new(); ROUTES.len()]));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (app, key, account) = (app.clone(), key.clone(), account.clone());
            let (created, times, next) = (created.clone(), times.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= REQUESTS {
                        return;
                    }
                    let route = i % ROUTES.len();
                    let read = created.lock().await.get(i / 2 % 64).cloned();
                    let request = request(route, &key, &account, read.as_deref(), i);
                    let t = Instant::now();
                    let (status, id) = send(&app, request).await;
                    times.lock().await[route].push(t.elapsed());
                    assert!(status.is_success(), "{} answered {status}", ROUTES[route]);
                    if let Some(id) = id {
                        created.lock().await.push(id);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut times = times.lock().await;
    for (route, samples) in ROUTES.iter().zip(times.iter_mut()) {
        samples.sort();
        for p in [50, 95, 99] {
            let at = samples[(samples.len() - 1) * p / 100];
            bench(
                &format!("api_load.in_process.{route}.p{p}"),
                format!("{:.1}", at.as_secs_f64() * 1e6),
                "us",
            );
        }
    }
    bench(
        "api_load.in_process.requests_per_second",
        format!("{:.0}", REQUESTS as f64 / elapsed.as_secs_f64()),
        "1/s",
    );
}

fn request(route: usize, key: &str, account: &str, read: Option<&str>, i: usize) -> Request<Body> {
    let auth = format!("Bearer {key}");
    // Due in 30 days, as `make load`'s: the run measures the API, not publishing.
    let due = (time::OffsetDateTime::now_utc() + time::Duration::days(30))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    match (ROUTES[route], read) {
        ("create", _) => Request::post("/v1/posts")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .header("idempotency-key", format!("load-{i}"))
            .body(Body::from(format!(
                r#"{{"text":"load {i}","scheduled_at":"{due}","targets":[{{"account_id":"{account}"}}]}}"#
            )))
            .unwrap(),
        ("list", _) => get("/v1/posts?limit=20", auth),
        ("read", Some(id)) => get(&format!("/v1/posts/{id}"), auth),
        _ => get("/v1/accounts", auth),
    }
}

fn get(path: &str, auth: String) -> Request<Body> {
    Request::get(path)
        .header("authorization", auth)
        .body(Body::empty())
        .unwrap()
}

/// The status, and the id of a created post.
async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Option<String>) {
    let res = app.clone().oneshot(request).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 22)
        .await
        .unwrap();
    let id = (status == StatusCode::CREATED)
        .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .flatten()
        .and_then(|v| v["id"].as_str().map(str::to_owned));
    (status, id)
}
