//! The operator's health answer through the API function's own wiring on the emulated AWS:
//! its latency and what one answer costs in AWS calls (every table, queue, CloudWatch, the
//! secret, the bucket, the heartbeats, the app blocks, the account census), and the same for
//! `GET /v1/metrics`, which reads the same checks.

use super::bench;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use std::collections::HashMap;
use std::time::Instant;
use tower::ServiceExt;

const ANSWERS: usize = 50;

pub async fn health(env: &HashMap<String, String>) {
    let clients = herald_tests::stack_clients(env).await;
    let operator = herald_tests::operator_token(&clients, env).await;
    let app = herald_tests::api_router(&clients, env);
    let ask = |path: &str| {
        Request::get(path)
            .header("authorization", format!("Bearer {operator}"))
            .body(Body::empty())
            .unwrap()
    };
    for path in ["/v1/health", "/v1/metrics"] {
        let name = path.trim_start_matches("/v1/");
        // The first answer warms the secret cache and the clients.
        app.clone().oneshot(ask(path)).await.unwrap();
        clients.calls.reset();
        let mut times = Vec::with_capacity(ANSWERS);
        for _ in 0..ANSWERS {
            let started = Instant::now();
            let res = app.clone().oneshot(ask(path)).await.unwrap();
            assert_ne!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
            times.push(started.elapsed());
        }
        times.sort();
        let ms = |d: std::time::Duration| format!("{:.1}", d.as_secs_f64() * 1e3);
        bench(
            &format!("{name}.operator.p50"),
            ms(times[ANSWERS / 2]),
            "ms",
        );
        bench(
            &format!("{name}.operator.p99"),
            ms(times[ANSWERS * 99 / 100]),
            "ms",
        );
        let snap = clients.calls.snapshot();
        let total: usize = snap.values().map(|t| t.ok + t.failed).sum();
        bench(
            &format!("{name}.operator.aws_calls_per_answer"),
            format!("{:.1}", total as f64 / ANSWERS as f64),
            "calls",
        );
        if path == "/v1/health" {
            for (op, t) in &snap {
                bench(
                    &format!("health.operator.aws.{op}"),
                    format!("{:.1}", (t.ok + t.failed) as f64 / ANSWERS as f64),
                    "calls",
                );
            }
        }
    }
}
