//! The outbound webhook queue on SQS: a message per event and endpoint, delayed copies for
//! later attempts, and the DLQ the deliverer moves a message to once its schedule is used up.

use crate::queue::JsonQueue;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use herald_domain::StoreError;
use herald_domain::outbound::{DeliveryMessage, OutboundQueue};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SqsOutboundQueue {
    queue: JsonQueue,
}

impl SqsOutboundQueue {
    pub fn new(client: impl Into<crate::Lazy<Client>>, url: impl Into<String>) -> Self {
        Self {
            queue: JsonQueue::new(client, url, "outbound"),
        }
    }

    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.queue = self.queue.with_dead_letter_queue(url);
        self
    }
}

/// The correlation id, or a stand-in: SQS refuses empty attribute values.
fn correlation(message: &DeliveryMessage) -> &str {
    if message.correlation_id.is_empty() {
        "none"
    } else {
        &message.correlation_id
    }
}

#[async_trait]
impl OutboundQueue for SqsOutboundQueue {
    async fn send(&self, message: &DeliveryMessage, delay: Duration) -> Result<(), StoreError> {
        self.queue
            .send_delayed(message, correlation(message), delay)
            .await
    }

    async fn dead_letter(&self, message: &DeliveryMessage, reason: &str) -> Result<(), StoreError> {
        self.queue
            .dead_letter(message, correlation(message), reason)
            .await
    }
}
