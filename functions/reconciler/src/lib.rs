//! The reconciler function: on its schedule, resolves variants a publisher claimed but never
//! settled (see `herald_domain::reconcile`) and leaves a heartbeat for the health check.

use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::clock::SystemClock;
use herald_domain::reconcile::{ReconcileConfig, Reconciler};
use herald_domain::token_crypto::TokenSweep;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub reconcile: ReconcileConfig,
    pub publish_dlq_url: String,
    pub alert_webhook: Option<secrecy::SecretString>,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let d = ReconcileConfig::default();
        let reconcile = ReconcileConfig {
            lease: time::Duration::seconds(
                env.parsed("HERALD_CLAIM_LEASE_SECONDS", d.lease.whole_seconds()),
            ),
            batch: env.parsed("HERALD_RECONCILE_BATCH", d.batch),
            max_attempts: env.parsed("HERALD_RECONCILE_MAX_ATTEMPTS", d.max_attempts),
        };
        let publish_dlq_url = env.url("HERALD_PUBLISH_DLQ_URL");
        let alert_webhook = env.secret_url("HERALD_ALERT_WEBHOOK_URL");
        env.finish()?;
        Ok(Self {
            common,
            reconcile,
            publish_dlq_url,
            alert_webhook,
        })
    }
}

/// The token sweep the reconciler runs after each pass: re-seals platform tokens still under
/// the previous token-encryption key (one GetItem per run while nothing rotated).
pub fn token_sweep(config: &Config, clients: &Clients) -> Arc<dyn TokenSweep> {
    Arc::new(config.common.store(clients))
}

/// Other instances may seal under the key before the current one for as long as they cache
/// the key ring: the sweep is done only after that (the cache's TTL, with a margin).
pub const SWEEP_SETTLE: time::Duration = time::Duration::minutes(6);

/// One sweep pass; failures are logged, never fail the reconciler's run.
pub async fn sweep_tokens(sweep: &dyn TokenSweep) {
    match sweep
        .sweep_tokens(time::OffsetDateTime::now_utc(), SWEEP_SETTLE)
        .await
    {
        Ok(report) if report.examined > 0 => {
            tracing::info!(?report, "re-sealed platform tokens under the current key");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the token sweep failed; the next run tries again"),
    }
}

pub fn reconciler(config: &Config, clients: &Clients) -> Result<Reconciler, String> {
    let store = Arc::new(config.common.store(clients));
    let clock = Arc::new(SystemClock);
    let queue = Arc::new(
        SqsPublishQueue::new(clients.sqs.clone(), &config.common.publish_queue_url)
            .with_dead_letter_queue(&config.publish_dlq_url),
    );
    let alerter =
        herald_platforms::alerter(config.alert_webhook.clone(), store.clone(), clock.clone())
            .map_err(|e| e.to_string())?;
    Ok(Reconciler {
        store: store.clone(),
        posts: store.clone(),
        outcomes: store.clone(),
        queue: queue.clone(),
        heartbeats: store.clone(),
        audit: store,
        queues: queue,
        alerter,
        clock,
        config: config.reconcile.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        for bytes in [
            &include_bytes!("../../../events/reconciler/schedule.json")[..],
            include_bytes!("../../../events/reconciler/warmup.json"),
        ] {
            let event: aws_lambda_events::event::eventbridge::EventBridgeEvent =
                serde_json::from_slice(bytes).unwrap();
            assert_eq!(event.detail_type, "Scheduled Event");
        }
    }

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([(
            "HERALD_CLAIM_LEASE_SECONDS".to_owned(),
            "long".to_owned(),
        )]))
        .unwrap_err()
        .to_string();
        for name in ["HERALD_TABLE", "HERALD_CLAIM_LEASE_SECONDS"] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }
}
