//! The outbound webhook queue on SQS: a message per event and endpoint, delayed copies for
//! later attempts, and the DLQ the deliverer moves a message to once its schedule is used up.

use crate::errors::store_error;
use crate::sqs::{CORRELATION_ATTRIBUTE, DEAD_LETTER_REASON_ATTRIBUTE};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use herald_domain::StoreError;
use herald_domain::outbound::{DeliveryMessage, OutboundQueue};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SqsOutboundQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
}

impl SqsOutboundQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            dead_letter_url: None,
        }
    }

    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_url = Some(url.into());
        self
    }
}

fn text(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

fn body(message: &DeliveryMessage) -> Result<String, StoreError> {
    serde_json::to_string(message).map_err(|e| StoreError::Invalid(e.to_string()))
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
        // Round up: a message must never come back before its wait is over.
        let seconds = (delay.as_millis().div_ceil(1000) as u64).min(900);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body(message)?)
            .delay_seconds(i32::try_from(seconds).unwrap_or(900))
            .message_attributes(CORRELATION_ATTRIBUTE, text(correlation(message))?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn dead_letter(&self, message: &DeliveryMessage, reason: &str) -> Result<(), StoreError> {
        let url = self.dead_letter_url.as_deref().ok_or_else(|| {
            StoreError::Invalid("no dead-letter queue is configured for the outbound queue".into())
        })?;
        let reason: String = reason.chars().take(1000).collect();
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body(message)?)
            .message_attributes(CORRELATION_ATTRIBUTE, text(correlation(message))?)
            .message_attributes(DEAD_LETTER_REASON_ATTRIBUTE, text(&reason)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
