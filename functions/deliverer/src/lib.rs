//! The deliverer function: one outbound webhook attempt per SQS record (see
//! `herald_domain::outbound::deliver`), records handled concurrently, reporting the records
//! SQS must keep.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::lambda::{batch_response, parse_record};
use herald_aws::outbound::SqsOutboundQueue;
use herald_domain::clock::{SystemClock, SystemEntropy};
use herald_domain::outbound::DeliveryMessage;
use herald_domain::outbound::deliver::{Deliverer, DeliveryConfig, Handled};
use herald_domain::outbound::guard::TargetPolicy;
use herald_platforms::outbound::{HttpWebhookSender, SystemResolver};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub outbound_queue_url: String,
    pub outbound_dlq_url: String,
    pub delivery: DeliveryConfig,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let d = DeliveryConfig::default();
        Env::read(vars, |env| Self {
            common: CommonConfig::read(env),
            outbound_queue_url: env.url("HERALD_OUTBOUND_QUEUE_URL"),
            outbound_dlq_url: env.url("HERALD_OUTBOUND_DLQ_URL"),
            delivery: DeliveryConfig {
                schedule: env.parsed("HERALD_OUTBOUND_SCHEDULE", d.schedule.clone()),
                policy: TargetPolicy {
                    allow_private: env.parsed("HERALD_OUTBOUND_ALLOW_PRIVATE", false),
                },
                timeout: {
                    let timeout = Duration::from_secs(
                        env.parsed("HERALD_OUTBOUND_TIMEOUT_SECONDS", d.timeout.as_secs()),
                    );
                    if timeout.is_zero() || timeout > Duration::from_secs(30) {
                        env.problem("HERALD_OUTBOUND_TIMEOUT_SECONDS must be 1 to 30");
                    }
                    timeout
                },
            },
        })
    }
}

pub fn deliverer(config: &Config, clients: &Clients) -> Deliverer {
    let store = Arc::new(config.common.store(clients));
    Deliverer {
        endpoints: store.clone(),
        queue: Arc::new(
            SqsOutboundQueue::new(clients.sqs.clone(), &config.outbound_queue_url)
                .with_dead_letter_queue(&config.outbound_dlq_url),
        ),
        sender: Arc::new(HttpWebhookSender),
        resolver: Arc::new(SystemResolver),
        audit: store,
        clock: Arc::new(SystemClock),
        entropy: Arc::new(SystemEntropy),
        config: config.delivery.clone(),
    }
}

/// Records are independent (each is one event for one endpoint), so they go concurrently.
pub async fn handle(deliverer: &Deliverer, event: SqsEvent) -> SqsBatchResponse {
    let results = futures::future::join_all(event.records.into_iter().map(|record| async move {
        let id = record.message_id.clone().unwrap_or_default();
        let Ok(message) = parse_record::<DeliveryMessage>(&record) else {
            // Never valid: left for the DLQ, where an operator can look at it.
            tracing::error!(message_id = %id, "malformed outbound message");
            return Some(id);
        };
        let span = tracing::info_span!(
            "deliver",
            correlation_id = %message.correlation_id,
            tenant_id = %message.tenant_id,
            endpoint_id = %message.endpoint_id,
            event_id = %message.event.id,
            attempt = message.attempts + 1,
        );
        match deliverer.handle(&message).instrument(span.clone()).await {
            Ok(Handled::Dropped(why)) => {
                span.in_scope(|| tracing::info!(why, "outbound message dropped"));
                None
            }
            Ok(_) => None,
            Err(e) => {
                span.in_scope(
                    || tracing::warn!(error = %e, "outbound message kept for redelivery"),
                );
                Some(id)
            }
        }
    }))
    .await;
    batch_response(results.into_iter().flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent = serde_json::from_slice(include_bytes!(
            "../../../events/deliverer/outbound-message.json"
        ))
        .unwrap();
        let message: DeliveryMessage =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(
            message.endpoint_id.as_str(),
            "we_0193b1f0c3a17d2e9f0a1b2c3d4e5f60"
        );
        let empty: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/deliverer/warmup.json"))
                .unwrap();
        assert!(empty.records.is_empty());
    }

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([
            ("HERALD_OUTBOUND_SCHEDULE".to_owned(), "soon".to_owned()),
            (
                "HERALD_OUTBOUND_ALLOW_PRIVATE".to_owned(),
                "maybe".to_owned(),
            ),
            (
                "HERALD_OUTBOUND_TIMEOUT_SECONDS".to_owned(),
                "60".to_owned(),
            ),
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_OUTBOUND_QUEUE_URL",
            "HERALD_OUTBOUND_DLQ_URL",
            "HERALD_OUTBOUND_SCHEDULE",
            "HERALD_OUTBOUND_ALLOW_PRIVATE",
            "HERALD_OUTBOUND_TIMEOUT_SECONDS must be 1 to 30",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }
}
