//! Dead-letter queues on SQS, as the drain and a requeue use them: a batch received (hidden
//! while its messages are moved into records), a batch removed, messages sent back to the
//! queue they came from. Nothing here lists a queue for a reader: readers read the records
//! (`dynamo/dead_letters.rs`).

use crate::errors::store_error;
use crate::sqs::{CORRELATION_ATTRIBUTE, DEAD_LETTER_REASON_ATTRIBUTE};
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName,
    SendMessageBatchRequestEntry,
};
use herald_domain::StoreError;
use herald_domain::clock::from_epoch_millis;
use herald_domain::dead_letters::{DeadLetter, DeadLetterQueues, Drained};
use herald_domain::outbound::DeliveryMessage;
use herald_domain::ports::PublishMessage;

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

/// How long a received message stays hidden while the drain moves it: long enough for its
/// record to be written, short enough that a drain that died is retried soon.
const DRAIN_VISIBILITY: i32 = 60;

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
}

fn letter(source: &str, m: &Message) -> DeadLetter {
    let attr = |name: MessageSystemAttributeName| {
        m.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<i64>().ok())
    };
    DeadLetter::from_body(
        m.message_id().unwrap_or_default(),
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

/// The body a letter goes back with: a publish message with a fresh failure budget, an
/// outbound delivery with a fresh schedule, anything else as it was.
fn fresh_body(letter: &DeadLetter) -> Result<String, StoreError> {
    let invalid = |e: serde_json::Error| StoreError::Invalid(e.to_string());
    if let Ok(mut message) = serde_json::from_str::<PublishMessage>(&letter.body) {
        message.failures = 0;
        // Its step is claimed afresh: it takes a window slot and counts an attempt again.
        message.continues_upload = false;
        return serde_json::to_string(&message).map_err(invalid);
    }
    if let Ok(mut message) = serde_json::from_str::<DeliveryMessage>(&letter.body) {
        message.attempts = 0;
        message.not_before = None;
        return serde_json::to_string(&message).map_err(invalid);
    }
    Ok(letter.body.clone())
}

/// The correlation id a message body carries (publish and outbound messages do).
fn correlation_of(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["correlation_id"]
        .as_str()
        .or_else(|| value["event"]["correlation_id"].as_str())
        .map(str::to_owned)
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

#[async_trait]
impl DeadLetterQueues for SqsDeadLetters {
    fn sources(&self) -> Vec<String> {
        self.queues.iter().map(|q| q.source.clone()).collect()
    }

    async fn receive(&self, source: &str) -> Result<Vec<Drained>, StoreError> {
        let q = self.queue(source)?;
        let page = self
            .client
            .receive_message()
            .queue_url(&q.url)
            .max_number_of_messages(10)
            .visibility_timeout(DRAIN_VISIBILITY)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(store_error)?;
        Ok(page
            .messages
            .unwrap_or_default()
            .iter()
            .filter_map(|m| {
                Some(Drained {
                    letter: letter(source, m),
                    handle: m.receipt_handle()?.to_owned(),
                })
            })
            .collect())
    }

    async fn remove(&self, source: &str, handles: &[String]) -> Result<(), StoreError> {
        let q = self.queue(source)?;
        for chunk in handles.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(h)
                        .build()
                        .map_err(|e| StoreError::Invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // A message whose deletion failed comes back after the visibility timeout and
            // is drained again: its record exists, so nothing changes.
            self.client
                .delete_message_batch()
                .queue_url(&q.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(store_error)?;
        }
        Ok(())
    }

    async fn send_back(&self, letters: &[DeadLetter]) -> Result<Vec<bool>, StoreError> {
        let mut sent = vec![false; letters.len()];
        for source in self.sources() {
            let q = self.queue(&source)?;
            let mine: Vec<usize> = (0..letters.len())
                .filter(|&i| letters[i].source == source)
                .collect();
            for chunk in mine.chunks(10) {
                let entries = chunk
                    .iter()
                    .map(|&i| {
                        let letter = &letters[i];
                        let mut entry = SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(fresh_body(letter)?)
                            .message_attributes("requeued_from", string_attribute(&letter.id)?);
                        // The request's correlation id follows the message back.
                        if let Some(c) = correlation_of(&letter.body) {
                            entry = entry
                                .message_attributes(CORRELATION_ATTRIBUTE, string_attribute(&c)?);
                        }
                        entry
                            .build()
                            .map_err(|e| StoreError::Invalid(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&q.source_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(store_error)?;
                for ok in out.successful() {
                    if let Ok(i) = ok.id().parse::<usize>() {
                        sent[i] = true;
                    }
                }
            }
        }
        Ok(sent)
    }
}
