//! The ingest queue: one message per stream job, sent ten to a SendMessageBatch call.

use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use herald_domain::StoreError;
use herald_domain::ingest::{IngestJob, IngestQueue};

#[derive(Debug, Clone)]
pub struct SqsIngestQueue {
    client: Client,
    url: String,
}

impl SqsIngestQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

#[async_trait]
impl IngestQueue for SqsIngestQueue {
    async fn send(&self, jobs: &[IngestJob]) -> Result<Vec<Result<(), String>>, StoreError> {
        let mut results: Vec<Result<(), String>> = vec![Ok(()); jobs.len()];
        for (chunk_no, chunk) in jobs.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, job)| {
                    let body = serde_json::to_string(job)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
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
