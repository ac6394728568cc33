//! The ingest queue: one message per stream job, sent ten to a SendMessageBatch call.

use crate::queue::JsonQueue;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use herald_domain::StoreError;
use herald_domain::ingest::{IngestJob, IngestQueue};

#[derive(Debug, Clone)]
pub struct SqsIngestQueue {
    queue: JsonQueue,
}

impl SqsIngestQueue {
    pub fn new(client: impl Into<crate::Lazy<Client>>, url: impl Into<String>) -> Self {
        Self {
            queue: JsonQueue::new(client, url, "ingest"),
        }
    }
}

#[async_trait]
impl IngestQueue for SqsIngestQueue {
    async fn send(&self, jobs: &[IngestJob]) -> Result<Vec<Result<(), String>>, StoreError> {
        // The job carries its correlation id in its body.
        self.queue.send_batch(jobs, |_| None).await
    }
}
