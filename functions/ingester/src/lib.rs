//! The ingester function: one stream job per SQS record (batch size 1), run by the domain's
//! `StreamRunner` until done, throttled, or shortly before the invocation's deadline.
//!
//! Invoked directly with a job (`{"tenant_id", "account_id", "stream", "dry_run"}`), it runs
//! that one job and answers its report: how an operator dry-runs one stream.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
pub use herald_aws::lambda::deadline_of;
use herald_aws::lambda::{batch_response, parse_record};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::ingest::IngestJob;
use herald_domain::ingest::runner::{IngestConfig, RunOutcome, RunReport, StreamRunner};
use herald_platforms::{Endpoints, HttpPlatforms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub ingest: IngestConfig,
    /// `INGEST_ENABLED`: when false, jobs are acknowledged and nothing is fetched.
    pub enabled: bool,
    pub endpoints: Endpoints,
    pub platform_timeout: Duration,
    /// Time kept back from the Lambda deadline to store the last page and release the lease.
    pub deadline_margin: Duration,
    /// The function's timeout (template `Timeout`), used when the runtime gives no deadline.
    pub function_timeout: Duration,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let d = IngestConfig::default();
        let page_size: u32 = env.parsed("HERALD_INGEST_PAGE_SIZE", d.page_size);
        if !(5..=99).contains(&page_size) {
            env.problem("HERALD_INGEST_PAGE_SIZE must be between 5 and 99 (a page and its checkpoint are one transaction)");
        }
        let ingest = IngestConfig {
            page_size,
            lease: env.seconds("HERALD_INGEST_LEASE_SECONDS", d.lease),
            interval: env.seconds("HERALD_INGEST_INTERVAL_SECONDS", d.interval),
            retry_after_failure: env.seconds("HERALD_INGEST_RETRY_SECONDS", d.retry_after_failure),
            default_throttle: env
                .seconds("HERALD_INGEST_DEFAULT_THROTTLE_SECONDS", d.default_throttle),
            usage_threshold_percent: env
                .parsed("HERALD_INGEST_USAGE_THRESHOLD", d.usage_threshold_percent),
            dry_run: env.parsed("DRY_RUN", false),
        };
        let enabled = env.parsed("INGEST_ENABLED", true);
        let endpoints = Endpoints::read(|name| env.url(name));
        let platform_timeout =
            Duration::from_secs(env.parsed("HERALD_PLATFORM_TIMEOUT_SECONDS", 10));
        let deadline_margin = Duration::from_millis(env.parsed("HERALD_DEADLINE_MARGIN_MS", 3_000));
        let function_timeout =
            Duration::from_secs(env.parsed("HERALD_FUNCTION_TIMEOUT_SECONDS", 60));
        if ingest.lease.whole_seconds() <= function_timeout.as_secs() as i64 {
            env.problem("HERALD_INGEST_LEASE_SECONDS must be longer than the function's timeout");
        }
        env.finish()?;
        Ok(Self {
            common,
            ingest,
            enabled,
            endpoints,
            platform_timeout,
            deadline_margin,
            function_timeout,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Ingester {
    pub runner: StreamRunner,
    pub enabled: bool,
    pub deadline_margin: Duration,
}

pub fn ingester(config: &Config, clients: &Clients) -> Ingester {
    let store = Arc::new(config.common.store(clients));
    let platforms = HttpPlatforms::new(config.endpoints.clone(), config.platform_timeout);
    Ingester {
        runner: StreamRunner {
            store: store.clone(),
            accounts: store,
            source: Arc::new(platforms),
            clock: Arc::new(SystemClock),
            config: config.ingest.clone(),
        },
        enabled: config.enabled,
        deadline_margin: config.deadline_margin,
    }
}

/// Runs one job, logging its report.
pub async fn run_job(ingester: &Ingester, job: &IngestJob, deadline: OffsetDateTime) -> RunReport {
    let deadline = deadline - ingester.deadline_margin;
    if !ingester.enabled {
        tracing::info!(stream = %job.stream, "ingestion is disabled (INGEST_ENABLED=false); job skipped");
        return RunReport {
            stream: job.stream.clone(),
            dry_run: job.dry_run,
            outcome: RunOutcome::Failed {
                reason: "ingestion is disabled".into(),
            },
            pages: 0,
            counters: herald_domain::ingest::Counters {
                skipped: 1,
                ..Default::default()
            },
            would_store: vec![],
            would_review: vec![],
            position: Default::default(),
        };
    }
    let span = tracing::info_span!(
        "ingest",
        correlation_id = job.correlation_id.as_deref().unwrap_or("direct"),
        stream = %job.stream,
    );
    let report = ingester.runner.run(job, deadline).instrument(span).await;
    tracing::info!(
        // Counted by the template's Ingest* metric filters (dry runs excepted).
        metric = "ingest.run",
        correlation_id = job.correlation_id.as_deref().unwrap_or("direct"),
        kind = job.stream.as_str().split(':').next().unwrap_or_default(),
        stream = %job.stream,
        dry_run = report.dry_run,
        outcome = ?report.outcome,
        pages = report.pages,
        processed = report.counters.processed,
        failed = report.counters.failed,
        rate_limited = report.counters.rate_limited,
        skipped = report.counters.skipped,
        would_store = report.would_store.len(),
        would_review = report.would_review.len(),
        "stream run"
    );
    report
}

/// An SQS batch (the queue's), or one job invoked directly (its report is the answer).
pub async fn handle(
    ingester: &Ingester,
    event: serde_json::Value,
    deadline: OffsetDateTime,
) -> Result<serde_json::Value, String> {
    if event.get("Records").is_some() {
        let batch: SqsEvent = serde_json::from_value(event).map_err(|e| e.to_string())?;
        let response = handle_batch(ingester, batch, deadline).await;
        return serde_json::to_value(response).map_err(|e| e.to_string());
    }
    let job: IngestJob =
        serde_json::from_value(event).map_err(|e| format!("not an ingest job: {e}"))?;
    serde_json::to_value(run_job(ingester, &job, deadline).await).map_err(|e| e.to_string())
}

/// Every job is acknowledged once run, whatever its outcome: the stream's state says when it
/// is due again and the poller sends it then. A record that is not a job stays for the DLQ.
pub async fn handle_batch(
    ingester: &Ingester,
    event: SqsEvent,
    deadline: OffsetDateTime,
) -> SqsBatchResponse {
    let mut keep = Vec::new();
    for record in event.records {
        match parse_record::<IngestJob>(&record) {
            Ok(job) => {
                run_job(ingester, &job, deadline).await;
            }
            Err(id) => {
                tracing::error!(message_id = %id, "malformed ingest job");
                keep.push(id);
            }
        }
    }
    batch_response(keep)
}

pub fn now() -> OffsetDateTime {
    SystemClock.now()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [
            ("HERALD_TABLE", "t"),
            ("HERALD_IDEMPOTENCY_TABLE", "i"),
            ("HERALD_AUDIT_TABLE", "a"),
            ("HERALD_PUBLISH_QUEUE_URL", "http://q"),
            ("HERALD_TOKEN_KEY_SECRET", "k"),
            ("HERALD_X_API_URL", "http://x"),
            ("HERALD_FACEBOOK_API_URL", "http://f"),
            ("HERALD_LINKEDIN_API_URL", "http://l"),
            ("HERALD_MASTODON_API_URL", "http://m"),
            ("HERALD_BLUESKY_API_URL", "http://b"),
            ("HERALD_INSTAGRAM_API_URL", "http://i"),
            ("HERALD_FUNCTION_TIMEOUT_SECONDS", "30"),
            ("HERALD_INGEST_LEASE_SECONDS", "45"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/ingester/ingest-job.json"))
                .unwrap();
        let job: IngestJob =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(job.stream.as_str(), "x:2244994945");
        let direct: IngestJob =
            serde_json::from_slice(include_bytes!("../../../events/ingester/dry-run.json"))
                .unwrap();
        assert!(direct.dry_run);
        let empty: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/ingester/warmup.json")).unwrap();
        assert!(empty.records.is_empty());
    }

    #[test]
    fn config_reads_flags_and_lists_every_problem() {
        let mut v = vars();
        let c = Config::from_env(&v).unwrap();
        assert!(c.enabled && !c.ingest.dry_run);
        assert_eq!(c.ingest.lease, time::Duration::seconds(45));
        v.insert("DRY_RUN".into(), "true".into());
        v.insert("INGEST_ENABLED".into(), "false".into());
        let c = Config::from_env(&v).unwrap();
        assert!(!c.enabled && c.ingest.dry_run);
        v.insert("HERALD_INGEST_PAGE_SIZE".into(), "100".into());
        v.insert("HERALD_INGEST_LEASE_SECONDS".into(), "10".into());
        v.remove("HERALD_X_API_URL");
        let err = Config::from_env(&v).unwrap_err().to_string();
        for name in [
            "HERALD_INGEST_PAGE_SIZE",
            "HERALD_INGEST_LEASE_SECONDS",
            "HERALD_X_API_URL",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }
}
