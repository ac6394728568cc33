//! What a million published posts cost on AWS at list prices, from what `make bench` measured:
//! each stage's AWS calls by operation (the API's `POST /v1/posts`, the dispatcher, the
//! publisher's batch of ten), and the functions' time. The price table is here and nowhere
//! else; the assumptions a local run cannot measure are named beside it.

use super::bench;
use herald_aws::calls::Tally;
use std::collections::BTreeMap;

/// us-east-1 list prices, on demand (December 2026).
mod price {
    /// Per request, and per GB-second on arm64.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const LAMBDA_GB_SECOND_ARM: f64 = 0.000_013_333_4;
    /// HTTP API, per request (first 300 million a month).
    pub const HTTP_API_REQUEST: f64 = 1.00 / 1e6;
    /// DynamoDB on demand, per write and read request unit.
    pub const DYNAMODB_WRU: f64 = 0.625 / 1e6;
    pub const DYNAMODB_RRU: f64 = 0.125 / 1e6;
    /// SQS standard, per request (64 KB chunk).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
}

/// The request units one call of `op` consumes. Herald's items are under 1 KB (a post with a
/// variant or two; the publish path reads keys, not media). Unmeasurable here, so assumed:
/// a transaction touches four items at twice the units; a batch read three consistent items.
fn units(op: &str) -> (f64, f64) {
    match op {
        "DynamoDB.GetItem" | "DynamoDB.Query" | "DynamoDB.Scan" => (0.0, 1.0),
        "DynamoDB.BatchGetItem" => (0.0, 3.0),
        "DynamoDB.PutItem" | "DynamoDB.UpdateItem" | "DynamoDB.DeleteItem" => (1.0, 0.0),
        "DynamoDB.BatchWriteItem" => (10.0, 0.0),
        "DynamoDB.TransactWriteItems" => (8.0, 0.0),
        _ => (0.0, 0.0),
    }
}

/// The functions' memory (template.yaml's Globals) and the time one DynamoDB or SQS call takes
/// inside AWS (a local emulator's is no guide), for the billed durations.
const MEMORY_GB: f64 = 0.25;
const AWS_CALL_MS: f64 = 5.0;

/// One stage of a post's life: its AWS calls per published post, and the Lambda invocations and
/// milliseconds it bills per post.
pub struct Stage {
    pub name: &'static str,
    pub calls: BTreeMap<String, Tally>,
    /// How many posts `calls` covers.
    pub posts: f64,
    pub invocations_per_post: f64,
    /// Billed time per post apart from the AWS calls (the handler, the platform's answer).
    pub own_ms_per_post: f64,
    pub http_requests_per_post: f64,
}

pub fn report(stages: &[Stage]) {
    let mut total = 0.0;
    for stage in stages {
        let mut dollars = stage.http_requests_per_post * price::HTTP_API_REQUEST;
        let mut calls_per_post = 0.0;
        for (op, tally) in &stage.calls {
            let n = (tally.ok + tally.failed) as f64 / stage.posts;
            calls_per_post += n;
            let (wru, rru) = units(op);
            dollars += n * (wru * price::DYNAMODB_WRU + rru * price::DYNAMODB_RRU);
            if op.starts_with("SQS") {
                dollars += n * price::SQS_REQUEST;
            }
        }
        let ms = stage.own_ms_per_post + calls_per_post * AWS_CALL_MS;
        dollars += stage.invocations_per_post * price::LAMBDA_REQUEST
            + ms / 1000.0 * MEMORY_GB * price::LAMBDA_GB_SECOND_ARM;
        bench(
            &format!("cost.per_million_published_posts.{}", stage.name),
            format!("{:.2}", dollars * 1e6),
            "USD",
        );
        total += dollars;
    }
    // The event source mapping's receives and deletes of the publish queue, ten at a time.
    total += 0.2 * price::SQS_REQUEST;
    bench(
        "cost.per_million_published_posts",
        format!("{:.2}", total * 1e6),
        "USD",
    );
}
