//! The poller function: on its schedule, one ingest job per due stream (streams derive from
//! connected accounts), sent to the ingest queue.

use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::ingest_queue::SqsIngestQueue;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::health::Heartbeat;
use herald_domain::ingest::poller::{HEARTBEAT, PollConfig, PollReport, Poller};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub ingest_queue_url: String,
    pub poll: PollConfig,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Env::read(vars, |env| Self {
            common: CommonConfig::read(env),
            ingest_queue_url: env.url("HERALD_INGEST_QUEUE_URL"),
            poll: PollConfig {
                enabled: env.parsed("INGEST_ENABLED", true),
                dry_run: env.parsed("DRY_RUN", false),
            },
        })
    }
}

/// The poller and the heartbeat it leaves after each run.
pub fn poller(config: &Config, clients: &Clients) -> (Poller, Heartbeat) {
    let store = Arc::new(config.common.store(clients));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let heartbeat = Heartbeat {
        store: store.clone(),
        clock: clock.clone(),
        function: HEARTBEAT,
    };
    let poller = Poller {
        store,
        queue: Arc::new(SqsIngestQueue::new(
            clients.sqs.clone(),
            &config.ingest_queue_url,
        )),
        clock,
        config: config.poll.clone(),
    };
    (poller, heartbeat)
}

/// One scheduled run; the summary is the invocation's result.
pub async fn handle(
    (poller, heartbeat): &(Poller, Heartbeat),
) -> Result<PollReport, herald_domain::StoreError> {
    let report = poller.run_once().await?;
    heartbeat.record(&report).await;
    if report.sent > 0 || report.send_failures > 0 {
        tracing::info!(
            streams = report.streams,
            sent = report.sent,
            send_failures = report.send_failures,
            leased = report.leased,
            deferred = report.deferred,
            not_due = report.not_due,
            dry_run_jobs = report.dry_run_jobs,
            processed = report.totals.processed,
            failed = report.totals.failed,
            rate_limited = report.totals.rate_limited,
            skipped = report.totals.skipped,
            "poll run"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_come_from_the_environment_and_bad_ones_are_listed() {
        let mut vars: HashMap<String, String> = [
            ("HERALD_TABLE", "t"),
            ("HERALD_IDEMPOTENCY_TABLE", "i"),
            ("HERALD_AUDIT_TABLE", "a"),
            ("HERALD_PUBLISH_QUEUE_URL", "http://q"),
            ("HERALD_TOKEN_KEY_SECRET", "k"),
            ("HERALD_INGEST_QUEUE_URL", "http://iq"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let c = Config::from_env(&vars).unwrap();
        assert!(c.poll.enabled && !c.poll.dry_run);
        vars.insert("INGEST_ENABLED".into(), "false".into());
        vars.insert("DRY_RUN".into(), "true".into());
        let c = Config::from_env(&vars).unwrap();
        assert!(!c.poll.enabled && c.poll.dry_run);
        vars.insert("DRY_RUN".into(), "maybe".into());
        vars.remove("HERALD_INGEST_QUEUE_URL");
        let err = Config::from_env(&vars).unwrap_err().to_string();
        assert!(
            err.contains("DRY_RUN") && err.contains("HERALD_INGEST_QUEUE_URL"),
            "{err}"
        );
    }
}
