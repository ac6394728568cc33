//! The publish queue and the inbound webhook queue on SQS.

use crate::errors::store_error;
use crate::queue::JsonQueue;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use herald_domain::StoreError;
use herald_domain::ports::{PublishMessage, PublishQueue};
use herald_domain::publishing::settle::MessageActions;

pub use crate::queue::{CORRELATION_ATTRIBUTE, DEAD_LETTER_REASON_ATTRIBUTE};

#[derive(Debug, Clone)]
pub struct SqsPublishQueue {
    queue: JsonQueue,
}

impl SqsPublishQueue {
    pub fn new(client: impl Into<crate::Lazy<Client>>, url: impl Into<String>) -> Self {
        Self {
            queue: JsonQueue::new(client, url, "publish"),
        }
    }

    /// The queue's DLQ, for messages Herald moves there itself (see `PublishQueue::dead_letter`).
    pub fn with_dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.queue = self.queue.with_dead_letter_queue(url);
        self
    }

    /// Makes a received message visible again after `seconds` (the publisher's backoff; 0 for
    /// at once).
    pub async fn retry_after(&self, receipt_handle: &str, seconds: u32) -> Result<(), StoreError> {
        self.queue
            .client
            .change_message_visibility()
            .queue_url(&self.queue.url)
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
/// that `herald_domain::publishing::settle` acts through).
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
        self.queue
            .send_batch(messages, |m| Some(m.correlation_id.as_str()))
            .await
    }

    async fn send_delayed(
        &self,
        message: &PublishMessage,
        delay: std::time::Duration,
    ) -> Result<(), StoreError> {
        self.queue
            .send_delayed(message, &message.correlation_id, delay)
            .await
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        self.queue
            .dead_letter(message, &message.correlation_id, reason)
            .await
    }
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
            self.queue
                .client
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
        let out = read(self.queue.url.clone(), waiting.to_vec()).await?;
        let publish = count(out.attributes().unwrap_or(&Default::default()), &waiting);
        let dead = match &self.queue.dead_letter_url {
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
    queue: JsonQueue,
}

impl SqsInboundQueue {
    pub fn new(client: impl Into<crate::Lazy<Client>>, url: impl Into<String>) -> Self {
        Self {
            queue: JsonQueue::new(client, url, "inbound"),
        }
    }
}

#[async_trait]
impl herald_domain::inbound::InboundQueue for SqsInboundQueue {
    async fn enqueue(
        &self,
        event: &herald_domain::inbound::InboundEvent,
    ) -> Result<(), StoreError> {
        self.queue.send(event, &event.correlation_id).await
    }
}

/// The queue between a campaign's enqueue and the SMS sender: one message per batch.
#[derive(Debug, Clone)]
pub struct SqsSmsQueue {
    queue: JsonQueue,
}

impl SqsSmsQueue {
    pub fn new(client: impl Into<crate::Lazy<Client>>, url: impl Into<String>) -> Self {
        Self {
            queue: JsonQueue::new(client, url, "sms"),
        }
    }
}

#[async_trait]
impl herald_domain::campaigns::SmsQueue for SqsSmsQueue {
    async fn send_batches(
        &self,
        batches: &[herald_domain::campaigns::SmsBatch],
    ) -> Result<(), StoreError> {
        let results = self
            .queue
            .send_batch(batches, |b| Some(b.correlation_id.as_str()))
            .await?;
        match results.into_iter().find_map(Result::err) {
            Some(e) => Err(StoreError::Unavailable(format!("queueing a batch: {e}"))),
            None => Ok(()),
        }
    }

    async fn send_job(&self, job: &herald_domain::campaigns::EnqueueJob) -> Result<(), StoreError> {
        self.queue.send(job, &job.correlation_id).await
    }
}

/// Contact imports are worked by the SMS sender too (they feed its campaigns).
#[async_trait]
impl herald_domain::imports::ImportQueue for SqsSmsQueue {
    async fn send_import(&self, job: &herald_domain::imports::ImportJob) -> Result<(), StoreError> {
        self.queue.send(job, &job.correlation_id).await
    }
}
