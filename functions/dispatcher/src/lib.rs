//! The dispatcher function: on its schedule, hands due posts to the publish queue.

use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::health::Heartbeat;
use herald_domain::publishing::dispatch::{DispatchConfig, DispatchReport, Dispatcher, HEARTBEAT};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub dispatch: DispatchConfig,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let d = DispatchConfig::default();
        Env::read(vars, |env| Self {
            common: CommonConfig::read(env),
            dispatch: DispatchConfig {
                lease: env.seconds("HERALD_DISPATCH_LEASE_SECONDS", d.lease),
                batch: env.parsed("HERALD_DISPATCH_BATCH", d.batch),
                concurrency: env.parsed("HERALD_DISPATCH_CONCURRENCY", d.concurrency),
            },
        })
    }
}

/// The dispatcher and the heartbeat it leaves after each run.
pub fn dispatcher(config: &Config, clients: &Clients) -> (Dispatcher, Heartbeat) {
    let store = Arc::new(config.common.store(clients));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let heartbeat = Heartbeat {
        store: store.clone(),
        clock: clock.clone(),
        function: HEARTBEAT,
    };
    let dispatcher = Dispatcher {
        store: store.clone(),
        crises: store,
        queue: Arc::new(SqsPublishQueue::new(
            clients.sqs.clone(),
            &config.common.publish_queue_url,
        )),
        clock,
        config: config.dispatch.clone(),
    };
    (dispatcher, heartbeat)
}

/// One scheduled run. The event's content does not matter (EventBridge's "Scheduled Event").
pub async fn handle(
    (dispatcher, heartbeat): &(Dispatcher, Heartbeat),
) -> Result<DispatchReport, herald_domain::StoreError> {
    let report = dispatcher.run_once().await?;
    heartbeat.record(&report).await;
    if report.due > 0 {
        tracing::info!(
            due = report.due,
            held = report.held,
            claimed = report.claimed,
            sent = report.messages_sent,
            send_failures = report.send_failures,
            skipped = report.skipped,
            errors = report.errors,
            "dispatch run"
        );
    }
    Ok(report)
}
