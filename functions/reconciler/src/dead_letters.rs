//! The dead-letter drain the reconciler runs first on each schedule (every DLQ's messages
//! into records under their tenants), and the publish queue's depths as the alerts see them:
//! the dead letters are the records (and whatever the drain has not reached yet).

use crate::{Config, Shared};
use async_trait::async_trait;
use herald_aws::Clients;
use herald_aws::dead_letters::{DeadLetterQueue, SqsDeadLetters};
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::StoreError;
use herald_domain::clock::SystemClock;
use herald_domain::dead_letters::{DeadLetterRecords, DeadLetterService};
use herald_domain::ports::QueueStats;
use std::sync::Arc;

/// The most messages one run moves (the rest wait for the next run, a minute later): each is
/// a transaction, so 500 take a few seconds of the run's 30, leaving the rest to reconciling.
pub const DRAIN_PER_RUN: usize = 500;

/// The DLQs drained: publish, the inbound webhooks and the outbound webhooks.
pub fn drain(config: &Config, clients: &Clients, shared: &Shared) -> DeadLetterService {
    let mut queues = vec![DeadLetterQueue {
        source: "publish".into(),
        url: config.publish_dlq_url.clone(),
        source_url: config.common.publish_queue_url.clone(),
    }];
    let (webhook, webhook_dlq) = &config.webhook_queues;
    queues.push(DeadLetterQueue {
        source: "webhooks".into(),
        url: webhook_dlq.clone(),
        source_url: webhook.clone(),
    });
    if let (Some(queue), Some(dlq)) = (&config.outbound_queue_url, &config.outbound_dlq_url) {
        queues.push(DeadLetterQueue {
            source: "outbound".into(),
            url: dlq.clone(),
            source_url: queue.clone(),
        });
    }
    DeadLetterService {
        queues: Arc::new(SqsDeadLetters::new(clients.sqs.clone(), queues)),
        records: shared.store.clone(),
        audit: shared.store.clone(),
        clock: Arc::new(SystemClock),
    }
}

/// One drain pass, then how many dead letters wait per source (the alarms' gauge); a failure
/// is logged and the next run tries again (nothing is lost: a message leaves its DLQ only once
/// its record is written).
pub async fn drain_dead_letters(drain: &DeadLetterService) {
    match drain.drain(DRAIN_PER_RUN).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(moved = n, "dead letters moved into records"),
        Err(e) => tracing::warn!(error = %e, "draining the dead-letter queues failed"),
    }
    match drain.records.pending().await {
        Ok(pending) => {
            for source in drain.queues.sources() {
                let waiting = pending.get(&source).copied().unwrap_or(0);
                herald_domain::metrics::dead_letters_pending(&source, waiting);
            }
        }
        Err(e) => tracing::warn!(error = %e, "counting the dead letters failed"),
    }
}

/// The publish queue's waiting messages (SQS) and its dead letters: the records waiting plus
/// the messages not drained yet.
pub struct PublishDepths {
    pub queue: Arc<SqsPublishQueue>,
    pub records: Arc<dyn DeadLetterRecords>,
}

herald_domain::debug_fields!(PublishDepths);

#[async_trait]
impl QueueStats for PublishDepths {
    async fn depths(&self) -> Result<(u64, u64), StoreError> {
        let (waiting, undrained) = self.queue.depths().await?;
        let kept = self
            .records
            .pending()
            .await?
            .get("publish")
            .copied()
            .unwrap_or(0);
        Ok((waiting, undrained + kept))
    }
}
