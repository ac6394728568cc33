//! The publish queue on SQS.

use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use herald_domain::StoreError;
use herald_domain::ports::{PublishMessage, PublishQueue};

/// Message attribute carrying the correlation id, so it is visible without parsing the body.
pub const CORRELATION_ATTRIBUTE: &str = "correlation_id";

#[derive(Debug, Clone)]
pub struct SqsPublishQueue {
    client: Client,
    url: String,
}

impl SqsPublishQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
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
                    let body =
                        serde_json::to_string(m).map_err(|e| StoreError::Invalid(e.to_string()))?;
                    let attr = MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(&m.correlation_id)
                        .build()
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_attributes(CORRELATION_ATTRIBUTE, attr)
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
}
