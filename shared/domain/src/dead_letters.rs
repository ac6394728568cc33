//! Dead letters: messages a queue gave up on. Nothing in a DLQ is lost: each can be listed,
//! inspected, requeued (to the queue it came from, with a fresh failure budget) or deleted,
//! and every action is audited. Through the API a tenant sees only its own messages.

use crate::StoreError;
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::ids::TenantId;
use crate::ports::{AuditLog, PublishMessage};
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;

/// One message in a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The queue's message id.
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
        id: String,
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
            id,
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
}

/// Which dead letters to act on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub tenant_id: Option<TenantId>,
    pub source: Option<String>,
    pub kind: Option<String>,
    /// Only messages sent before this time.
    pub older_than: Option<OffsetDateTime>,
}

impl DeadLetterFilter {
    pub fn matches(&self, d: &DeadLetter) -> bool {
        self.tenant_id
            .as_ref()
            .is_none_or(|t| d.tenant_id.as_ref() == Some(t))
            && self.source.as_ref().is_none_or(|s| *s == d.source)
            && self.kind.as_ref().is_none_or(|k| *k == d.kind)
            && self.older_than.is_none_or(|t| d.sent_at < t)
    }
}

/// The dead-letter queues (SQS in production).
#[async_trait]
pub trait DeadLetterQueues: Send + Sync {
    /// Every dead letter of every queue, up to `max`.
    async fn list(&self, max: usize) -> Result<Vec<DeadLetter>, StoreError>;
    /// Sends the message back to its source queue, then removes it from the DLQ. Never loses
    /// it: if the removal fails it stays in the DLQ (and a second copy is harmless, since
    /// publishing is idempotent). `Ok(false)` when it is no longer there.
    async fn requeue(&self, letter: &DeadLetter) -> Result<bool, StoreError>;
    /// Removes it for good. `Ok(false)` when it is no longer there.
    async fn delete(&self, letter: &DeadLetter) -> Result<bool, StoreError>;
}

#[derive(Clone)]
pub struct DeadLetterService {
    pub queues: Arc<dyn DeadLetterQueues>,
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

/// How many dead letters one call looks through.
pub const SCAN_LIMIT: usize = 1000;

impl DeadLetterService {
    pub async fn list(&self, filter: &DeadLetterFilter) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self
            .queues
            .list(SCAN_LIMIT)
            .await?
            .into_iter()
            .filter(|d| filter.matches(d))
            .collect())
    }

    pub async fn get(
        &self,
        filter: &DeadLetterFilter,
        id: &str,
    ) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.list(filter).await?.into_iter().find(|d| d.id == id))
    }

    /// Requeues every matching dead letter; returns those requeued.
    pub async fn requeue(
        &self,
        filter: &DeadLetterFilter,
        ids: Option<&[String]>,
        by: &Operator,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut done = Vec::new();
        for letter in self.list(filter).await? {
            if ids.is_some_and(|ids| !ids.contains(&letter.id)) {
                continue;
            }
            if self.queues.requeue(&letter).await? {
                self.record(&letter, "dead_letter.requeued", by).await;
                done.push(letter);
            }
        }
        Ok(done)
    }

    pub async fn delete(
        &self,
        filter: &DeadLetterFilter,
        id: &str,
        by: &Operator,
    ) -> Result<Option<DeadLetter>, StoreError> {
        let Some(letter) = self.get(filter, id).await? else {
            return Ok(None);
        };
        if !self.queues.delete(&letter).await? {
            return Ok(None);
        }
        self.record(&letter, "dead_letter.deleted", by).await;
        Ok(Some(letter))
    }

    async fn record(&self, letter: &DeadLetter, action: &str, by: &Operator) {
        // Messages whose body names no tenant are audited under the operators' own log.
        let tenant = letter
            .tenant_id
            .clone()
            .unwrap_or_else(|| TenantId("operators".into()));
        let entry = AuditEntry {
            tenant_id: tenant,
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
