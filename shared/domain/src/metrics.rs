//! The metrics Herald records, through the `metrics` facade: each function's recorder writes
//! them as CloudWatch Embedded Metric Format after every invocation (`herald_aws::metrics`);
//! without a recorder (the simulation, most tests) they cost nothing. Every name and label is
//! here, so the dashboard, the alarms and `docs/runbooks.md` have one list to match.
//!
//! Labels stay few and bounded (platform, outcome, reason, route): each label value is a
//! CloudWatch dimension value, and each combination a metric of its own.

use crate::ids::Platform;
use std::time::Duration;

/// Publish outcomes by `outcome` (`published`, `adopted`, `failed`, `retrying`, `unknown`,
/// `dead_lettered`), `error` (the failure's class, `none` for a success) and `platform`.
pub const PUBLISH_OUTCOME: &str = "publish.outcome";
/// Deliveries held back instead of attempted, by `reason` and `platform`.
pub const PUBLISH_DEFERRED: &str = "publish.deferred";
/// From a post's `scheduled_at` to its variant's publication, in milliseconds, by platform.
pub const PUBLISH_LATENESS: &str = "publish.lateness_ms";
/// Attempts a variant took to reach a final outcome, by platform.
pub const PUBLISH_ATTEMPTS: &str = "publish.attempts";
/// Outbound webhook deliveries by `outcome`.
pub const OUTBOUND_DELIVERY: &str = "outbound.delivery";
/// Inbound webhook requests by `provider` and `result` (`accepted`, `duplicate`, or why one
/// was rejected).
pub const WEBHOOK_VERIFICATION: &str = "webhooks.verification";
/// API requests by `route` (the matched path, never the raw one), `method` and `status`.
pub const API_REQUESTS: &str = "api.requests";
/// API request latency in milliseconds by `route`.
pub const API_LATENCY: &str = "api.latency_ms";

/// Credits moved by wallet changes, by `change` (the ledger's kind: `top_up`, `grant`,
/// `reserve`, `debit`, `release`, `reverse`); replays count nothing.
pub const WALLET_CREDITS: &str = "wallet.credits";

pub fn wallet_credits(change: &'static str, credits: i64) {
    ::metrics::counter!(WALLET_CREDITS, "change" => change).increment(credits.max(0) as u64);
}

/// Dead letters waiting in their records, by `source` queue: the reconciler's gauge after
/// each drain, and the dead-letter alarms' metric.
pub const DEAD_LETTERS_PENDING: &str = "dead_letters.pending";

pub fn dead_letters_pending(source: &str, waiting: u64) {
    ::metrics::gauge!(DEAD_LETTERS_PENDING, "source" => source.to_owned()).set(waiting as f64);
}

/// Health answers that failed (one per `GET /v1/health` answering 503): the alarm's metric.
pub const HEALTH_FAILED: &str = "health.failed";

pub fn health_failed() {
    ::metrics::counter!(HEALTH_FAILED).increment(1);
}

pub fn publish_outcome(platform: Platform, outcome: &'static str, error: &'static str) {
    ::metrics::counter!(PUBLISH_OUTCOME, "platform" => platform.as_str(), "outcome" => outcome, "error" => error)
        .increment(1);
}

pub fn publish_deferred(platform: Platform, reason: &'static str) {
    ::metrics::counter!(PUBLISH_DEFERRED, "platform" => platform.as_str(), "reason" => reason)
        .increment(1);
}

pub fn publish_lateness(platform: Platform, lateness: time::Duration) {
    let ms = lateness.whole_milliseconds().max(0) as f64;
    ::metrics::histogram!(PUBLISH_LATENESS, "platform" => platform.as_str()).record(ms);
}

pub fn publish_attempts(platform: Platform, attempts: u32) {
    ::metrics::histogram!(PUBLISH_ATTEMPTS, "platform" => platform.as_str())
        .record(f64::from(attempts));
}

pub fn outbound_delivery(outcome: &'static str) {
    ::metrics::counter!(OUTBOUND_DELIVERY, "outcome" => outcome).increment(1);
}

pub fn webhook_verification(provider: &str, result: &'static str) {
    ::metrics::counter!(WEBHOOK_VERIFICATION, "provider" => provider.to_owned(), "result" => result)
        .increment(1);
}

pub fn api_request(route: &str, method: &str, status: u16, latency: Duration) {
    let route = route.to_owned();
    ::metrics::counter!(API_REQUESTS, "route" => route.clone(), "method" => method.to_owned(), "status" => status.to_string())
        .increment(1);
    ::metrics::histogram!(API_LATENCY, "route" => route).record(latency.as_secs_f64() * 1000.0);
}
