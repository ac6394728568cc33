//! Dead letters: messages a queue gave up on. Nothing in a DLQ is lost, and no tenant ever
//! touches another's.
//!
//! A drain (the reconciler, every minute) moves each DLQ message into a dead-letter record
//! under its tenant (messages that name no tenant, such as providers' webhook events, under
//! the operators): the record is written first and the message deleted second, so a crash in
//! between only leaves a message whose record already exists (its id is the message's own, so
//! the second write changes nothing). From then on a tenant's dead letters are a query on its
//! own partition: listed a page at a time with a cursor, without receiving any message, so
//! reading hides nothing and costs O(page). Requeueing sends the body back to the queue it
//! came from (with a fresh failure budget) and then removes the record; deleting removes it.
//! Every action is audited. A count per source queue is kept with the records, for the health
//! check, the alerts and the metrics.

use crate::StoreError;
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::ids::TenantId;
use crate::ports::{AuditLog, Page, PublishMessage};
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// Where dead letters that name no tenant are kept (and audited).
pub const OPERATORS: &str = "operators";

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// `<sent_at, 13-digit epoch millis>-<the queue's message id>`: stable across redeliveries
    /// of the message, and in the order the messages were sent.
    pub id: String,
    /// The queue it came from, e.g. `publish`.
    pub source: String,
    /// What kind of message it is, e.g. `publish`; `unreadable` when the body is not one.
    pub kind: String,
    /// The tenant the message belongs to, when its body says.
    pub tenant_id: Option<TenantId>,
    pub body: String,
    /// Why Herald moved it there, when Herald did (SQS's own redrive says nothing).
    pub reason: Option<String>,
    pub receive_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

impl DeadLetter {
    pub fn from_body(
        message_id: &str,
        source: &str,
        body: String,
        reason: Option<String>,
        receive_count: u32,
        sent_at: OffsetDateTime,
    ) -> Self {
        let message = serde_json::from_str::<PublishMessage>(&body).ok();
        // An outbound webhook that used up its schedule belongs to its tenant, like a post.
        let outbound = serde_json::from_str::<crate::outbound::DeliveryMessage>(&body).ok();
        let kind = if message.is_some() {
            source.to_owned()
        } else if let Some(m) = &outbound {
            format!("outbound:{}", m.event.event_type)
        } else if let Ok(event) = serde_json::from_str::<crate::inbound::InboundEvent>(&body) {
            // A provider's event belongs to no tenant: only operators (the CLI) see it.
            format!("webhook:{}", event.provider)
        } else {
            "unreadable".to_owned()
        };
        Self {
            id: Self::id_for(sent_at, message_id),
            source: source.to_owned(),
            kind,
            tenant_id: message
                .map(|m| m.tenant_id)
                .or(outbound.map(|m| m.tenant_id)),
            body,
            reason,
            receive_count,
            sent_at,
        }
    }

    /// The id of the dead letter a message becomes.
    pub fn id_for(sent_at: OffsetDateTime, message_id: &str) -> String {
        format!(
            "{:013}-{message_id}",
            crate::clock::epoch_millis(sent_at).max(0)
        )
    }

    /// Whose it is: its tenant, or the operators'.
    pub fn owner(&self) -> TenantId {
        self.tenant_id
            .clone()
            .unwrap_or_else(|| TenantId(OPERATORS.into()))
    }
}

/// Which of an owner's dead letters to act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterQuery {
    pub source: Option<String>,
    pub kind: Option<String>,
    /// Only messages sent before this time.
    pub older_than: Option<OffsetDateTime>,
}

impl DeadLetterQuery {
    pub fn matches(&self, d: &DeadLetter) -> bool {
        self.source.as_ref().is_none_or(|s| *s == d.source)
            && self.kind.as_ref().is_none_or(|k| *k == d.kind)
            && self.older_than.is_none_or(|t| d.sent_at < t)
    }
}

/// A message received from a DLQ, with the handle that removes it.
#[derive(Debug, Clone)]
pub struct Drained {
    pub letter: DeadLetter,
    pub handle: String,
}

/// The dead-letter queues (SQS in production), as the drain and a requeue use them.
#[async_trait]
pub trait DeadLetterQueues: Send + Sync {
    /// The source queues whose DLQs are drained, e.g. `publish`.
    fn sources(&self) -> Vec<String>;
    /// Up to ten messages of `source`'s DLQ, hidden from other readers while they are moved.
    async fn receive(&self, source: &str) -> Result<Vec<Drained>, StoreError>;
    /// Removes received messages from `source`'s DLQ.
    async fn remove(&self, source: &str, handles: &[String]) -> Result<(), StoreError>;
    /// Sends each letter's message back to the queue it came from (a publish message with a
    /// fresh failure budget, an outbound delivery with a fresh schedule); whether each went.
    async fn send_back(&self, letters: &[DeadLetter]) -> Result<Vec<bool>, StoreError>;
}

/// Dead-letter records (the main table): one per drained message, under its owner.
#[async_trait]
pub trait DeadLetterRecords: Send + Sync {
    /// Keeps `letter` and counts it; `Ok(false)` when it is already kept.
    async fn keep(&self, letter: &DeadLetter) -> Result<bool, StoreError>;
    /// A page of an owner's dead letters matching `query`, oldest first.
    async fn page(
        &self,
        owner: &TenantId,
        query: &DeadLetterQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeadLetter>, StoreError>;
    async fn find(&self, owner: &TenantId, id: &str) -> Result<Option<DeadLetter>, StoreError>;
    /// Removes it and uncounts it; `Ok(false)` when it is no longer there.
    async fn discard(&self, letter: &DeadLetter) -> Result<bool, StoreError>;
    /// How many dead letters each source queue has left.
    async fn pending(&self) -> Result<BTreeMap<String, u64>, StoreError>;
}

#[derive(Clone)]
pub struct DeadLetterService {
    pub queues: Arc<dyn DeadLetterQueues>,
    pub records: Arc<dyn DeadLetterRecords>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(DeadLetterService);

/// Who acts, for the audit log.
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The most dead letters one page shows.
pub const MAX_PAGE: usize = 100;
/// The most dead letters one bulk requeue sends back; past it the answer says more remain.
pub const REQUEUE_BATCH: usize = 500;

/// What a bulk requeue did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    pub letters: Vec<DeadLetter>,
    /// Matching dead letters were left for another call (the batch was full).
    pub more: bool,
}

impl DeadLetterService {
    /// Moves up to `max` messages from every DLQ into records; how many it moved.
    pub async fn drain(&self, max: usize) -> Result<usize, StoreError> {
        let mut moved = 0;
        for source in self.queues.sources() {
            while moved < max {
                let batch = self.queues.receive(&source).await?;
                if batch.is_empty() {
                    break;
                }
                let mut handles = Vec::with_capacity(batch.len());
                for Drained { letter, handle } in batch {
                    // Kept first: a failure here leaves the message where it was.
                    if self.records.keep(&letter).await? {
                        tracing::warn!(
                            dead_letter_id = %letter.id,
                            source = %letter.source,
                            kind = %letter.kind,
                            tenant_id = %letter.owner(),
                            "dead letter recorded"
                        );
                    }
                    handles.push(handle);
                }
                moved += handles.len();
                self.queues.remove(&source, &handles).await?;
            }
        }
        Ok(moved)
    }

    pub async fn list(
        &self,
        owner: &TenantId,
        query: &DeadLetterQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeadLetter>, StoreError> {
        self.records
            .page(owner, query, cursor, limit.clamp(1, MAX_PAGE))
            .await
    }

    pub async fn get(&self, owner: &TenantId, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.records.find(owner, id).await
    }

    /// Requeues the owner's dead letters named in `ids`.
    pub async fn requeue_ids(
        &self,
        owner: &TenantId,
        ids: &[String],
        by: &Operator,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(letter) = self.records.find(owner, id).await? {
                found.push(letter);
            }
        }
        self.send_back(found, by).await
    }

    /// Requeues the owner's dead letters matching `query`, at most [`REQUEUE_BATCH`] a call,
    /// reading them a page at a time.
    pub async fn requeue_matching(
        &self,
        owner: &TenantId,
        query: &DeadLetterQuery,
        by: &Operator,
    ) -> Result<Requeued, StoreError> {
        let mut done = Requeued::default();
        let mut cursor: Option<String> = None;
        loop {
            let room = REQUEUE_BATCH - done.letters.len();
            let page = self
                .records
                .page(owner, query, cursor.as_deref(), room.min(MAX_PAGE))
                .await?;
            done.letters.extend(self.send_back(page.items, by).await?);
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok(done);
            }
            if done.letters.len() >= REQUEUE_BATCH {
                done.more = true;
                return Ok(done);
            }
        }
    }

    /// Sends the letters back and removes their records: a record goes only once its message
    /// went (a crash in between leaves a second copy to requeue, never a lost one; publishing
    /// is idempotent).
    async fn send_back(
        &self,
        letters: Vec<DeadLetter>,
        by: &Operator,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut done = Vec::with_capacity(letters.len());
        for chunk in letters.chunks(10) {
            let sent = self.queues.send_back(chunk).await?;
            for (letter, went) in chunk.iter().zip(sent) {
                if went && self.records.discard(letter).await? {
                    self.record(letter, "dead_letter.requeued", by).await;
                    done.push(letter.clone());
                }
            }
        }
        Ok(done)
    }

    pub async fn delete(
        &self,
        owner: &TenantId,
        id: &str,
        by: &Operator,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let Some(letter) = self.records.find(owner, id).await? else {
            return Ok(None);
        };
        if !self.records.discard(&letter).await? {
            return Ok(None);
        }
        self.record(&letter, "dead_letter.deleted", by).await;
        Ok(Some(letter))
    }

    async fn record(&self, letter: &DeadLetter, action: &str, by: &Operator) {
        let entry = AuditEntry {
            tenant_id: letter.owner(),
            entity: format!("dead_letter:{}", letter.id),
            action: action.to_owned(),
            actor: by.actor.clone(),
            old: Some(
                serde_json::json!({"source": letter.source, "reason": letter.reason, "receive_count": letter.receive_count}),
            ),
            new: None,
            ip: by.ip.clone(),
            user_agent: by.user_agent.clone(),
            at: self.clock.now(),
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, action, "the audit record could not be written");
        }
    }
}

#[cfg(test)]
mod tests {
    // The service over the in-memory queues and records: the drain, pages, requeues and deletes,
    // two tenants and the operators kept apart.

    use super::*;
    use crate::clock::FakeClock;
    use crate::memory::{MemoryDeadLetterRecords, MemoryDeadLetters, MemoryStore};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-04 10:00 UTC);

    fn publish_body(tenant: &str, n: usize) -> String {
        serde_json::json!({
            "tenant_id": tenant, "post_id": format!("pst_{n}"), "account_id": "acc_1", "platform": "x",
            "correlation_id": "c", "failures": 3
        })
        .to_string()
    }

    fn letter(tenant: &str, n: usize) -> DeadLetter {
        DeadLetter::from_body(
            &format!("m{n:04}"),
            "publish",
            publish_body(tenant, n),
            Some("boom".into()),
            3,
            T0 + time::Duration::seconds(i64::try_from(n).unwrap_or(0)),
        )
    }

    struct World {
        queues: Arc<MemoryDeadLetters>,
        service: DeadLetterService,
    }

    fn world(letters: Vec<DeadLetter>) -> World {
        let queues = Arc::new(MemoryDeadLetters::default());
        *queues.dead.lock().unwrap() = letters;
        let service = DeadLetterService {
            queues: queues.clone(),
            records: Arc::new(MemoryDeadLetterRecords::default()),
            audit: Arc::new(MemoryStore::default()),
            clock: Arc::new(FakeClock::new(T0)),
        };
        World { queues, service }
    }

    fn by() -> Operator {
        Operator {
            actor: "key:k".into(),
            ip: None,
            user_agent: None,
        }
    }

    #[tokio::test]
    async fn the_drain_moves_every_message_into_its_owners_records_once() {
        let mut letters: Vec<DeadLetter> = (0..25).map(|n| letter("ten_a", n)).collect();
        letters.extend((100..105).map(|n| letter("ten_b", n)));
        letters.push(DeadLetter::from_body(
            "w1",
            "webhooks",
            "not json".into(),
            None,
            5,
            T0,
        ));
        let w = world(letters.clone());
        assert_eq!(w.service.drain(1_000).await.unwrap(), 31);
        assert!(w.queues.dead.lock().unwrap().is_empty());
        // A message delivered again (its deletion failed) is kept once.
        *w.queues.dead.lock().unwrap() = vec![letters[0].clone()];
        assert_eq!(w.service.drain(1_000).await.unwrap(), 1);
        let pending = w.service.records.pending().await.unwrap();
        assert_eq!(pending.get("publish"), Some(&30));
        assert_eq!(pending.get("webhooks"), Some(&1));

        let a = TenantId("ten_a".into());
        let all = DeadLetterQuery::default();
        let first = w.service.list(&a, &all, None, 10).await.unwrap();
        assert_eq!(first.items.len(), 10);
        assert!(first.items.windows(2).all(|p| p[0].sent_at <= p[1].sent_at));
        let mut seen = first.items.clone();
        let mut cursor = first.cursor;
        while let Some(c) = cursor {
            let page = w.service.list(&a, &all, Some(&c), 10).await.unwrap();
            seen.extend(page.items);
            cursor = page.cursor;
        }
        assert_eq!(seen.len(), 25);
        assert!(seen.iter().all(|d| d.owner() == a));
        let ops = TenantId(OPERATORS.into());
        assert_eq!(
            w.service
                .list(&ops, &all, None, 10)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn requeues_and_deletes_touch_only_the_owners_letters() {
        let mut letters: Vec<DeadLetter> = (0..3).map(|n| letter("ten_a", n)).collect();
        letters.push(letter("ten_b", 9));
        let w = world(letters.clone());
        w.service.drain(100).await.unwrap();
        let (a, b) = (TenantId("ten_a".into()), TenantId("ten_b".into()));
        // B cannot requeue, see or delete A's letter by its id.
        let theirs = letters[0].id.clone();
        assert!(
            w.service
                .requeue_ids(&b, std::slice::from_ref(&theirs), &by())
                .await
                .unwrap()
                .is_empty()
        );
        assert!(w.service.get(&b, &theirs).await.unwrap().is_none());
        assert!(
            w.service
                .delete(&b, &theirs, &by())
                .await
                .unwrap()
                .is_none()
        );
        // A requeues one, then all that are left; B's stays.
        let one = w
            .service
            .requeue_ids(&a, std::slice::from_ref(&theirs), &by())
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        let rest = w
            .service
            .requeue_matching(&a, &DeadLetterQuery::default(), &by())
            .await
            .unwrap();
        assert_eq!((rest.letters.len(), rest.more), (2, false));
        assert_eq!(w.queues.requeued.lock().unwrap().len(), 3);
        assert_eq!(
            w.service.records.pending().await.unwrap().get("publish"),
            Some(&1)
        );
        let deleted = w.service.delete(&b, &letters[3].id, &by()).await.unwrap();
        assert!(deleted.is_some());
        assert!(
            w.service
                .delete(&b, &letters[3].id, &by())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_bulk_requeue_stops_at_its_batch_and_says_more_remain() {
        let w = world((0..REQUEUE_BATCH + 7).map(|n| letter("ten_a", n)).collect());
        w.service.drain(10_000).await.unwrap();
        let a = TenantId("ten_a".into());
        let first = w
            .service
            .requeue_matching(&a, &DeadLetterQuery::default(), &by())
            .await
            .unwrap();
        assert_eq!((first.letters.len(), first.more), (REQUEUE_BATCH, true));
        let second = w
            .service
            .requeue_matching(&a, &DeadLetterQuery::default(), &by())
            .await
            .unwrap();
        assert_eq!((second.letters.len(), second.more), (7, false));
    }

    #[test]
    fn ids_sort_as_the_messages_were_sent() {
        let early = DeadLetter::id_for(T0, "zzz");
        let late = DeadLetter::id_for(T0 + time::Duration::milliseconds(1), "aaa");
        assert!(early < late, "{early} {late}");
        assert_eq!(early, format!("{}-zzz", crate::clock::epoch_millis(T0)));
    }
}
