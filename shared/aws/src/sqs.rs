//! The publish queue and the inbound webhook queue on SQS.

use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use herald_domain::StoreError;
use herald_domain::ports::{PublishMessage, PublishQueue};
use herald_domain::settle::MessageActions;

/// Message attribute carrying the correlation id, so it is visible without parsing the body.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

/// Message attribute saying why a message was moved to a dead-letter queue by Herald itself.
pub const DEAD_LETTER_REASON_ATTRIBUTE: &str = "dead_letter_reason";

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: u64 = 900;

#[derive(Debug, Clone)]
pub struct SqsPublishQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
}

impl SqsPublishQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            dead_letter_url: None,
        }
    }

    /// The queue's DLQ, for messages Herald moves there itself (see `PublishQueue::dead_letter`).
    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_url = Some(url.into());
        self
    }

    /// Makes a received message visible again after `seconds` (the publisher's backoff; 0 for
    /// at once).
    pub async fn retry_after(&self, receipt_handle: &str, seconds: u32) -> Result<(), StoreError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds.min(43_200)).unwrap_or(43_200))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// One received message, as the publisher's settle step acts on it.
    pub fn received<'a>(&'a self, receipt_handle: &'a str) -> ReceivedPublish<'a> {
        ReceivedPublish {
            queue: self,
            receipt_handle,
        }
    }
}

/// A received publish message: its receipt handle on the queue (the port of one SQS record
/// that `herald_domain::settle` acts through).
#[derive(Debug, Clone, Copy)]
pub struct ReceivedPublish<'a> {
    queue: &'a SqsPublishQueue,
    receipt_handle: &'a str,
}

#[async_trait]
impl MessageActions for ReceivedPublish<'_> {
    async fn make_visible_in(&self, seconds: u32) -> Result<(), StoreError> {
        self.queue.retry_after(self.receipt_handle, seconds).await
    }

    async fn send_delayed(
        &self,
        copy: &PublishMessage,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        PublishQueue::send_delayed(self.queue, copy, delay).await
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        PublishQueue::dead_letter(self.queue, message, reason).await
    }
}

#[async_trait]
impl PublishQueue for SqsPublishQueue {
    async fn send(
        &self,
        messages: &[PublishMessage],
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); messages.len()];
        for (chunk_no, chunk) in messages.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body(m)?)
                        .message_attributes(CORRELATION_ATTRIBUTE, text(&m.correlation_id)?)
                        .build()
                        .map_err(|e| StoreError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = match self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let msg = store_error(e).to_string();
                    for r in &mut results[chunk_no * 10..chunk_no * 10 + chunk.len()] {
                        *r = Err(msg.clone());
                    }
                    continue;
                }
            };
            // Per-entry failures: a batch call can succeed while some entries fail.
            for failed in out.failed() {
                if let Ok(i) = failed.id().parse::<usize>() {
                    results[chunk_no * 10 + i] = Err(format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or("")
                    ));
                }
            }
        }
        Ok(results)
    }
    async fn send_delayed(
        &self,
        message: &PublishMessage,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        // Round up: a message must never come back before its wait is over.
        let seconds = (delay.as_millis().div_ceil(1000) as u64).min(MAX_DELAY_SECONDS);
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body(message)?)
            .delay_seconds(i32::try_from(seconds).unwrap_or(900))
            .message_attributes(CORRELATION_ATTRIBUTE, text(&message.correlation_id)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        let url = self.dead_letter_url.as_deref().ok_or_else(|| {
            StoreError::Invalid("no dead-letter queue is configured for the publish queue".into())
        })?;
        let reason: String = reason.chars().take(1000).collect();
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body(message)?)
            .message_attributes(CORRELATION_ATTRIBUTE, text(&message.correlation_id)?)
            .message_attributes(DEAD_LETTER_REASON_ATTRIBUTE, text(&reason)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

fn body(message: &PublishMessage) -> Result<String, StoreError> {
    serde_json::to_string(message).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn text(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

#[async_trait]
impl herald_domain::ports::QueueStats for SqsPublishQueue {
    async fn depths(&self) -> Result<(u64, u64), StoreError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let count = |attrs: &std::collections::HashMap<A, String>, names: &[A]| -> u64 {
            names
                .iter()
                .filter_map(|n| attrs.get(n).and_then(|v| v.parse::<u64>().ok()))
                .sum()
        };
        let read = |url: String, names: Vec<A>| async move {
            self.client
                .get_queue_attributes()
                .queue_url(url)
                .set_attribute_names(Some(names))
                .send()
                .await
                .map_err(store_error)
        };
        let waiting = [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesDelayed,
        ];
        let out = read(self.url.clone(), waiting.to_vec()).await?;
        let publish = count(out.attributes().unwrap_or(&Default::default()), &waiting);
        let dead = match &self.dead_letter_url {
            Some(url) => {
                let visible = [A::ApproximateNumberOfMessages];
                let out = read(url.clone(), visible.to_vec()).await?;
                count(out.attributes().unwrap_or(&Default::default()), &visible)
            }
            None => 0,
        };
        Ok((publish, dead))
    }
}

/// The queue between the webhook receiver and its processor.
#[derive(Debug, Clone)]
pub struct SqsInboundQueue {
    client: Client,
    url: String,
}

impl SqsInboundQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl herald_domain::inbound::InboundQueue for SqsInboundQueue {
    async fn enqueue(
        &self,
        event: &herald_domain::inbound::InboundEvent,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(event).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes(CORRELATION_ATTRIBUTE, text(&event.correlation_id)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
