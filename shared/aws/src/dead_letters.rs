//! Dead-letter queues on SQS. SQS has no "peek" and moto no `StartMessageMoveTask`, so a
//! message is found by receiving the DLQ with a short visibility timeout (it reappears a
//! moment later), and moved by sending it to its source queue first and deleting it from
//! the DLQ second: a failure in between leaves a harmless second copy, never a lost one.

use crate::errors::store_error;
use crate::sqs::{CORRELATION_ATTRIBUTE, DEAD_LETTER_REASON_ATTRIBUTE};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName,
};
use herald_domain::StoreError;
use herald_domain::clock::from_epoch_millis;
use herald_domain::dead_letters::{DeadLetter, DeadLetterQueues};
use herald_domain::outbound::DeliveryMessage;
use herald_domain::ports::PublishMessage;
use std::collections::HashSet;

/// A DLQ and the queue its messages came from.
#[derive(Debug, Clone)]
pub struct DeadLetterQueue {
    /// A short name, e.g. `publish`.
    pub source: String,
    pub url: String,
    pub source_url: String,
}

#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: crate::Lazy<Client>,
    queues: Vec<DeadLetterQueue>,
}

/// How long a listed message stays hidden from other readers.
const LIST_VISIBILITY: i32 = 1;
/// How long a message being moved stays hidden.
const MOVE_VISIBILITY: i32 = 30;

impl SqsDeadLetters {
    pub fn new(client: impl Into<crate::Lazy<Client>>, queues: Vec<DeadLetterQueue>) -> Self {
        Self {
            client: client.into(),
            queues,
        }
    }

    fn queue(&self, source: &str) -> Result<&DeadLetterQueue, StoreError> {
        self.queues
            .iter()
            .find(|q| q.source == source)
            .ok_or_else(|| StoreError::Invalid(format!("no dead-letter queue for `{source}`")))
    }

    /// Receives pages until `stop` says so or nothing new comes back.
    async fn receive_all(
        &self,
        url: &str,
        visibility: i32,
        max: usize,
        mut stop: impl FnMut(&Message) -> bool,
    ) -> Result<Vec<Message>, StoreError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        while out.len() < max {
            let page = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(visibility)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .map_err(store_error)?;
            // The whole page is kept even past a match: every message received is now hidden
            // and the caller must see it to show it again.
            let mut fresh = 0;
            let mut done = false;
            for m in page.messages.unwrap_or_default() {
                if seen.insert(m.message_id().unwrap_or_default().to_owned()) {
                    fresh += 1;
                    done |= stop(&m);
                    out.push(m);
                }
            }
            if done || fresh == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Makes listed messages visible again at once, so looking never hides them from an
    /// action that follows (ten per call).
    async fn show_again(&self, url: &str, messages: &[Message]) {
        for chunk in messages.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle()?)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            // At worst the messages reappear a second later, by themselves.
            let _ = self
                .client
                .change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await;
        }
    }

    /// Deletes a message found by `find` (while it is still hidden for us).
    async fn remove(&self, q: &DeadLetterQueue, m: &Message) -> Result<(), StoreError> {
        self.client
            .delete_message()
            .queue_url(&q.url)
            .receipt_handle(m.receipt_handle().unwrap_or_default())
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// Finds one message by id, hiding it for the move; every other message found on the way
    /// is made visible again at once. A listing running at the same time hides what it read
    /// for `LIST_VISIBILITY`: when the first pass misses, a second one after that tells "hidden
    /// for a moment" from "not there" (a requeue answered a false 404 otherwise).
    async fn find(&self, q: &DeadLetterQueue, id: &str) -> Result<Option<Message>, StoreError> {
        if let Some(found) = self.find_once(q, id).await? {
            return Ok(Some(found));
        }
        let hidden = u64::try_from(LIST_VISIBILITY).unwrap_or(1) * 1000;
        tokio::time::sleep(std::time::Duration::from_millis(hidden + 250)).await;
        self.find_once(q, id).await
    }

    async fn find_once(
        &self,
        q: &DeadLetterQueue,
        id: &str,
    ) -> Result<Option<Message>, StoreError> {
        let found = self
            .receive_all(&q.url, MOVE_VISIBILITY, usize::MAX, |m| {
                m.message_id() == Some(id)
            })
            .await?;
        let mut target = None;
        for m in found {
            if m.message_id() == Some(id) {
                target = Some(m);
            } else if let Some(receipt) = m.receipt_handle() {
                let _ = self
                    .client
                    .change_message_visibility()
                    .queue_url(&q.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
        Ok(target)
    }
}

fn letter(source: &str, m: &Message) -> DeadLetter {
    let attr = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    DeadLetter::from_body(
        m.message_id().unwrap_or_default().to_owned(),
        source,
        m.body().unwrap_or_default().to_owned(),
        m.message_attributes()
            .and_then(|a| a.get(DEAD_LETTER_REASON_ATTRIBUTE))
            .and_then(|v| v.string_value())
            .map(str::to_owned),
        attr(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        from_epoch_millis(attr(MessageSystemAttributeName::SentTimestamp).unwrap_or(0)),
    )
}

#[async_trait]
impl DeadLetterQueues for SqsDeadLetters {
    async fn list(&self, max: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for q in &self.queues {
            let left = max.saturating_sub(out.len());
            let messages = self
                .receive_all(&q.url, LIST_VISIBILITY, left, |_| false)
                .await?;
            self.show_again(&q.url, &messages).await;
            out.extend(messages.iter().map(|m| letter(&q.source, m)));
        }
        Ok(out)
    }

    async fn requeue(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let q = self.queue(&letter.source)?;
        let Some(m) = self.find(q, &letter.id).await? else {
            return Ok(false);
        };
        // A publish message goes back with a fresh failure budget.
        let body = match serde_json::from_str::<PublishMessage>(&letter.body) {
            Ok(mut message) => {
                message.failures = 0;
                serde_json::to_string(&message).map_err(|e| StoreError::Invalid(e.to_string()))?
            }
            // An outbound webhook goes back with a fresh schedule.
            Err(_) => match serde_json::from_str::<DeliveryMessage>(&letter.body) {
                Ok(mut message) => {
                    message.attempts = 0;
                    message.not_before = None;
                    serde_json::to_string(&message)
                        .map_err(|e| StoreError::Invalid(e.to_string()))?
                }
                Err(_) => letter.body.clone(),
            },
        };
        let mut send = self
            .client
            .send_message()
            .queue_url(&q.source_url)
            .message_body(body);
        if let Some(c) = m
            .message_attributes()
            .and_then(|a| a.get(CORRELATION_ATTRIBUTE))
        {
            send = send.message_attributes(CORRELATION_ATTRIBUTE, c.clone());
        }
        send.message_attributes(
            "requeued_from",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(&letter.id)
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?,
        )
        .send()
        .await
        .map_err(store_error)?;
        self.remove(q, &m).await?;
        Ok(true)
    }

    async fn delete(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let q = self.queue(&letter.source)?;
        let Some(m) = self.find(q, &letter.id).await? else {
            return Ok(false);
        };
        self.remove(q, &m).await?;
        Ok(true)
    }
}
