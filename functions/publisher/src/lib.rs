//! The publisher function: one SQS batch in, each record handled concurrently by the
//! domain's `PublishService`; failures are reported per record (`batchItemFailures`).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::dynamo::DynamoStore;
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::clock::SystemClock;
use herald_domain::ports::PublishMessage;
use herald_domain::publish::{Disposition, PublishConfig, PublishService};
use herald_platforms::{Endpoints, HttpPlatforms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub publish: PublishConfig,
    pub endpoints: Endpoints,
    pub platform_timeout: Duration,
    /// Records of one batch handled at once.
    pub concurrency: usize,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let defaults = PublishConfig::default();
        let publish = PublishConfig {
            max_receive_count: env.parsed(
                "HERALD_PUBLISH_MAX_RECEIVE_COUNT",
                defaults.max_receive_count,
            ),
            retry_base: Duration::from_secs(
                env.parsed("HERALD_RETRY_BASE_SECONDS", defaults.retry_base.as_secs()),
            ),
            retry_cap: Duration::from_secs(
                env.parsed("HERALD_RETRY_CAP_SECONDS", defaults.retry_cap.as_secs()),
            ),
        };
        let endpoints = Endpoints {
            x: env.url("HERALD_X_API_URL"),
            facebook: env.url("HERALD_FACEBOOK_API_URL"),
            linkedin: env.url("HERALD_LINKEDIN_API_URL"),
        };
        let platform_timeout =
            Duration::from_secs(env.parsed("HERALD_PLATFORM_TIMEOUT_SECONDS", 10));
        let concurrency = env.parsed("HERALD_PUBLISH_CONCURRENCY", 10);
        env.finish()?;
        Ok(Self {
            common,
            publish,
            endpoints,
            platform_timeout,
            concurrency,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Publisher {
    pub service: PublishService,
    pub queue: SqsPublishQueue,
    pub concurrency: usize,
}

pub fn publisher(config: &Config, clients: &Clients) -> Result<Publisher, String> {
    let store = Arc::new(DynamoStore::new(
        clients.dynamodb.clone(),
        &config.common.table,
    ));
    let platform = HttpPlatforms::new(config.endpoints.clone(), config.platform_timeout)
        .map_err(|e| e.to_string())?;
    Ok(Publisher {
        service: PublishService {
            store: store.clone(),
            accounts: store,
            platform: Arc::new(platform),
            clock: Arc::new(SystemClock),
            config: config.publish.clone(),
        },
        queue: SqsPublishQueue::new(clients.sqs.clone(), &config.common.publish_queue_url),
        concurrency: config.concurrency,
    })
}

pub async fn handle(publisher: &Publisher, event: SqsEvent) -> SqsBatchResponse {
    let failures: Vec<Option<String>> = futures::stream::iter(event.records)
        .map(|record| handle_record(publisher, record))
        .buffer_unordered(publisher.concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .flatten()
        .map(|id| {
            let mut f = BatchItemFailure::default();
            f.item_identifier = id;
            f
        })
        .collect();
    response
}

/// Returns the message id when the record must stay on the queue.
async fn handle_record(publisher: &Publisher, record: SqsMessage) -> Option<String> {
    let id = record.message_id.clone().unwrap_or_default();
    let receive_count: u32 = record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let message: PublishMessage = match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(m)) => m,
        _ => {
            // Never valid: leave it for the DLQ, where an operator can look at it.
            tracing::error!(message_id = %id, "malformed publish message");
            return Some(id);
        }
    };
    let span = tracing::info_span!(
        "publish",
        correlation_id = %message.correlation_id,
        message_id = %id,
        post_id = %message.post_id,
        account_id = %message.account_id,
        receive_count
    );
    async {
        match publisher.service.handle(&message, receive_count).await {
            Disposition::Done(done) => {
                tracing::info!(outcome = ?done, "record done");
                None
            }
            Disposition::RetryAfter(delay) => {
                let seconds = u32::try_from(delay.as_secs()).unwrap_or(u32::MAX).max(1);
                make_visible_in(publisher, &record, seconds).await;
                tracing::info!(retry_in_seconds = seconds, "will retry");
                Some(id.clone())
            }
            Disposition::DeadLetter => {
                make_visible_in(publisher, &record, 0).await;
                tracing::warn!("deliveries exhausted; SQS moves the message to the DLQ");
                Some(id.clone())
            }
            Disposition::Fail => Some(id.clone()),
        }
    }
    .instrument(span)
    .await
}

async fn make_visible_in(publisher: &Publisher, record: &SqsMessage, seconds: u32) {
    let receipt = record.receipt_handle.as_deref().unwrap_or_default();
    if let Err(e) = publisher.queue.retry_after(receipt, seconds).await {
        tracing::warn!(error = %e, "could not change the message's visibility; the queue's timeout applies");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent = serde_json::from_slice(include_bytes!(
            "../../../events/publisher/publish-message.json"
        ))
        .unwrap();
        let message: PublishMessage =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(message.account_id.as_str(), "acc_5a1f0c3a1b27c3d8e9f0a1b2");
        let empty: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/publisher/warmup.json"))
                .unwrap();
        assert!(empty.records.is_empty());
    }

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([(
            "HERALD_RETRY_BASE_SECONDS".to_owned(),
            "soon".to_owned(),
        )]))
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_PUBLISH_QUEUE_URL",
            "HERALD_X_API_URL",
            "HERALD_RETRY_BASE_SECONDS",
        ] {
            assert!(text.contains(name), "{name} not in {text}");
        }
    }
}
