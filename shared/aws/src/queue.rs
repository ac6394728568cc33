//! One SQS queue of JSON messages, and its dead-letter queue: the batch send, the single and
//! delayed sends and Herald's own dead-lettering, written once for every queue Herald has
//! (publish, ingest, outbound webhooks, inbound webhooks).

use crate::errors::store_error;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use herald_domain::StoreError;
use serde::Serialize;
use std::time::Duration;

/// Message attribute carrying the correlation id, so it is visible without parsing the body.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

/// Message attribute saying why a message was moved to a dead-letter queue by Herald itself.
pub const DEAD_LETTER_REASON_ATTRIBUTE: &str = "dead_letter_reason";

/// SQS's longest message delay.
const MAX_DELAY_SECONDS: u64 = 900;

/// SQS takes at most ten entries per `SendMessageBatch`.
const BATCH: usize = 10;

/// A dead-letter reason is cut to this many characters.
const MAX_REASON_CHARS: usize = 1000;

#[derive(Debug, Clone)]
pub struct JsonQueue {
    pub(crate) client: crate::Lazy<Client>,
    pub(crate) url: String,
    pub(crate) dead_letter_url: Option<String>,
    /// What the queue carries, for errors ("publish", "outbound").
    name: &'static str,
}

impl JsonQueue {
    pub fn new(
        client: impl Into<crate::Lazy<Client>>,
        url: impl Into<String>,
        name: &'static str,
    ) -> Self {
        Self {
            client: client.into(),
            url: url.into(),
            dead_letter_url: None,
            name,
        }
    }

    /// The queue's DLQ, for messages Herald moves there itself.
    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.dead_letter_url = Some(url.into());
        self
    }

    /// Sends `messages` ten to a call; answers per message, in order. A failed call fails its
    /// ten; a call that succeeds can still refuse some of its entries.
    pub async fn send_batch<T: Serialize>(
        &self,
        messages: &[T],
        correlation: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); messages.len()];
        for (chunk_no, chunk) in messages.chunks(BATCH).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let mut entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body(m)?);
                    if let Some(id) = correlation(m) {
                        entry = entry.message_attributes(CORRELATION_ATTRIBUTE, text(id)?);
                    }
                    entry
                        .build()
                        .map_err(|e| StoreError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let first = chunk_no * BATCH;
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
                    for r in &mut results[first..first + chunk.len()] {
                        *r = Err(msg.clone());
                    }
                    continue;
                }
            };
            for failed in out.failed() {
                if let Ok(i) = failed.id().parse::<usize>() {
                    results[first + i] = Err(format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or("")
                    ));
                }
            }
        }
        Ok(results)
    }

    /// Sends one message, visible at once (the queue's own delay applies).
    pub async fn send<T: Serialize>(
        &self,
        message: &T,
        correlation: &str,
    ) -> Result<(), StoreError> {
        self.send_one(message, correlation, None).await
    }

    /// Sends one message, visible after `delay` rounded up to whole seconds (a message must
    /// never come back before its wait is over), at most SQS's 15 minutes.
    pub async fn send_delayed<T: Serialize>(
        &self,
        message: &T,
        correlation: &str,
        delay: Duration,
    ) -> Result<(), StoreError> {
        let seconds = (delay.as_millis().div_ceil(1000) as u64).min(MAX_DELAY_SECONDS);
        self.send_one(
            message,
            correlation,
            Some(i32::try_from(seconds).unwrap_or(900)),
        )
        .await
    }

    async fn send_one<T: Serialize>(
        &self,
        message: &T,
        correlation: &str,
        delay_seconds: Option<i32>,
    ) -> Result<(), StoreError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body(message)?)
            .set_delay_seconds(delay_seconds)
            .message_attributes(CORRELATION_ATTRIBUTE, text(correlation)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Moves a message to the DLQ with Herald's reason (cut to 1,000 characters).
    pub async fn dead_letter<T: Serialize>(
        &self,
        message: &T,
        correlation: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let url = self.dead_letter_url.as_deref().ok_or_else(|| {
            StoreError::Invalid(format!(
                "no dead-letter queue is configured for the {} queue",
                self.name
            ))
        })?;
        let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body(message)?)
            .message_attributes(CORRELATION_ATTRIBUTE, text(correlation)?)
            .message_attributes(DEAD_LETTER_REASON_ATTRIBUTE, text(&reason)?)
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

fn body<T: Serialize>(message: &T) -> Result<String, StoreError> {
    serde_json::to_string(message).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn text(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}
