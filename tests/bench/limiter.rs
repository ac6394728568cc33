//! The rate limiter's cost per request: one conditional UpdateItem on a `RATE#` window item
//! (counted by the SDK interceptor), its latency against the local DynamoDB, and the
//! in-process counter's for comparison. Every authenticated API request, every embed read and
//! every verified webhook pays it once.

use crate::bench;
use herald_aws::dynamo::DynamoStore;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::rate_limits::{MemoryCounter, RequestCounter, RequestPolicy};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const CHECKS: usize = 500;

pub async fn limiter(env: &HashMap<String, String>) {
    let policy = RequestPolicy {
        limit: 1_000_000,
        window: time::Duration::minutes(1),
    };
    let memory = MemoryCounter::default();
    let times = checks(&memory, policy, "bench#memory", CHECKS * 20).await;
    report("limiter.memory", &times);

    let clients = herald_tests::stack_clients(env).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), &env["HERALD_TABLE"]);
    // One scope per request stream, as each API key and class has.
    checks(&store, policy, "bench#warm", 10).await;
    clients.calls.reset();
    let times = checks(&store, policy, "bench#dynamodb", CHECKS).await;
    let calls: usize = clients
        .calls
        .snapshot()
        .values()
        .map(|t| t.ok + t.failed)
        .sum();
    report("limiter.dynamodb", &times);
    bench(
        "limiter.dynamodb.aws_calls_per_request",
        format!("{:.2}", calls as f64 / CHECKS as f64),
        "calls",
    );
    // Past the budget the refusal costs the same one call (the condition fails, nothing is
    // written).
    let full = RequestPolicy {
        limit: 1,
        window: policy.window,
    };
    checks(&store, full, "bench#full", 1).await;
    clients.calls.reset();
    let refused = checks(&store, full, "bench#full", 50).await;
    report("limiter.dynamodb.refused", &refused);
}

async fn checks(
    counter: &dyn RequestCounter,
    policy: RequestPolicy,
    scope: &str,
    n: usize,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        policy
            .check(counter, scope, SystemClock.now())
            .await
            .unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn report(name: &str, times: &[Duration]) {
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    bench(&format!("{name}.p50"), format!("{:.1}", at(50)), "us");
    bench(&format!("{name}.p99"), format!("{:.1}", at(99)), "us");
}
