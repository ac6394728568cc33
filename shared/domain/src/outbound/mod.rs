//! Outbound webhooks: tenants register endpoints, and facts Herald commits (a variant
//! published or failed, an unknown outcome resolved, a message dead-lettered) are delivered to
//! every enabled endpoint subscribed to them, signed per Standard Webhooks.
//!
//! This module owns the endpoint record, the event envelope, the retry schedule and the pure
//! decision taken after each attempt ([`schedule`]), the SSRF guard ([`guard`]), the fan-out
//! ([`OutboundEvents`]) and one delivery ([`deliver::Deliverer`]). It never reads the
//! environment, never logs a secret, and never calls the network except through its ports.
//!
//! Delivery is at least once: the event id (`webhook-id`) is stable per fact, so a receiver
//! dedupes on it.

pub mod deliver;
pub mod guard;
#[cfg(feature = "memory")]
pub mod memory;
pub mod schedule;

use crate::StoreError;
use crate::clock::Clock;
use crate::ids::TenantId;
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;

/// An endpoint's id: `we_` and a UUIDv7, so a tenant's endpoints list in creation order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EndpointId(pub String);

impl EndpointId {
    pub fn generate() -> Self {
        Self(format!("we_{}", uuid::Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The facts a tenant can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "post.published")]
    PostPublished,
    #[serde(rename = "post.failed")]
    PostFailed,
    #[serde(rename = "post.unknown_resolved")]
    PostUnknownResolved,
    #[serde(rename = "dead_letter.added")]
    DeadLetterAdded,
    /// A campaign sent to its last recipient and settled its credits.
    #[serde(rename = "campaign.completed")]
    CampaignCompleted,
    /// The provider reported a campaign message delivered.
    #[serde(rename = "sms.delivered")]
    SmsDelivered,
    /// A campaign message was refused by the provider, or reported undelivered.
    #[serde(rename = "sms.failed")]
    SmsFailed,
    /// A change took the wallet's balance below the tenant's `low_balance_credits`.
    #[serde(rename = "wallet.low_balance")]
    WalletLowBalance,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        Self::PostPublished,
        Self::PostFailed,
        Self::PostUnknownResolved,
        Self::DeadLetterAdded,
        Self::CampaignCompleted,
        Self::SmsDelivered,
        Self::SmsFailed,
        Self::WalletLowBalance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PostPublished => "post.published",
            Self::PostFailed => "post.failed",
            Self::PostUnknownResolved => "post.unknown_resolved",
            Self::DeadLetterAdded => "dead_letter.added",
            Self::CampaignCompleted => "campaign.completed",
            Self::SmsDelivered => "sms.delivered",
            Self::SmsFailed => "sms.failed",
            Self::WalletLowBalance => "wallet.low_balance",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an endpoint no longer receives events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub reason: String,
    pub at: OffsetDateTime,
}

/// A secret that still signs, alongside the current one, until `until`.
#[derive(Debug, Clone)]
pub struct PreviousSecret {
    pub secret: SecretString,
    pub until: OffsetDateTime,
}

/// A tenant's registered receiver.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub event_types: Vec<EventType>,
    pub disabled: Option<Disabled>,
    /// `whsec_...`: returned once at creation and rotation, never by a read.
    pub secret: SecretString,
    pub previous_secret: Option<PreviousSecret>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Endpoint {
    pub fn is_enabled(&self) -> bool {
        self.disabled.is_none()
    }

    pub fn subscribes(&self, event_type: EventType) -> bool {
        self.event_types.contains(&event_type)
    }

    /// The secrets a delivery at `now` is signed with: the current one, and the previous one
    /// while its overlap lasts (so a receiver verifies whichever it holds).
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<SecretString> {
        let mut secrets = vec![self.secret.clone()];
        if let Some(p) = self.previous_secret.as_ref().filter(|p| p.until > now) {
            secrets.push(p.secret.clone());
        }
        secrets
    }

    /// A new current secret; the old one keeps signing until `now + overlap`.
    pub fn rotated(&self, secret: SecretString, now: OffsetDateTime, overlap: Duration) -> Self {
        Self {
            previous_secret: Some(PreviousSecret {
                secret: SecretString::from(self.secret.expose_secret().to_owned()),
                until: now + overlap,
            }),
            secret,
            updated_at: now,
            ..self.clone()
        }
    }
}

/// One fact, as every endpoint receives it. The id is derived from the fact, so the same fact
/// emitted twice (a retried publisher, a redelivered message) carries the same `webhook-id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub tenant_id: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub data: serde_json::Value,
}

impl OutboundEvent {
    /// `parts` name the fact (e.g. post id and account id); the id is `msg_` and a hash of
    /// them with the type and tenant.
    pub fn new(
        event_type: EventType,
        tenant_id: TenantId,
        parts: &[&str],
        timestamp: OffsetDateTime,
        data: serde_json::Value,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(event_type.as_str());
        h.update([0]);
        h.update(tenant_id.as_str());
        for p in parts {
            h.update([0]);
            h.update(p);
        }
        let id = format!("msg_{}", &hex::encode(h.finalize())[..32]);
        Self {
            id,
            event_type,
            tenant_id,
            timestamp,
            data,
        }
    }

    /// The body sent, in Standard Webhooks' recommended shape: `type`, `timestamp`, `data`.
    pub fn body(&self) -> Vec<u8> {
        let ts = self
            .timestamp
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        serde_json::to_vec(&serde_json::json!({
            "id": self.id,
            "type": self.event_type.as_str(),
            "timestamp": ts,
            "data": self.data,
        }))
        .unwrap_or_default()
    }
}

/// One queue message: one event for one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub tenant_id: TenantId,
    pub endpoint_id: EndpointId,
    pub event: OutboundEvent,
    /// Attempts already made (0 for a fresh message).
    #[serde(default)]
    pub attempts: u32,
    /// Not to be attempted before then: SQS delays at most 15 minutes, so a longer wait is
    /// a chain of delayed copies.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    #[serde(default)]
    pub correlation_id: String,
}

/// One recorded delivery attempt (kept 30 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub tenant_id: TenantId,
    pub endpoint_id: EndpointId,
    pub event_id: String,
    pub event_type: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at: OffsetDateTime,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// Why it did not answer (timeout, refused target, connection error): no secret, no body.
    pub error: Option<String>,
    /// `delivered`, `retrying`, `disabled` or `dead_lettered`.
    pub outcome: String,
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// How long attempt records are kept.
pub const ATTEMPT_RETENTION: time::Duration = time::Duration::days(30);

/// Endpoints and their attempts.
#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Writes a new endpoint; `Conflict` when the id exists.
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError>;
    /// Replaces an endpoint if it was last updated at `expected` (optimistic concurrency);
    /// `Conflict` otherwise, or when it is gone.
    async fn replace_endpoint(
        &self,
        endpoint: &Endpoint,
        expected: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError>;
    /// Every endpoint of a tenant (one Query).
    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>, StoreError>;
    /// Deletes it; the endpoint as it was, or `None` if there was none.
    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError>;
    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError>;
    /// An endpoint's attempts, newest first.
    async fn list_attempts(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
}

/// The outbound queue and its dead-letter queue.
#[async_trait]
pub trait OutboundQueue: Send + Sync {
    /// Sends one message, visible after `delay` (at most 15 minutes).
    async fn send(&self, message: &DeliveryMessage, delay: Duration) -> Result<(), StoreError>;
    /// Moves a message to the DLQ, saying why.
    async fn dead_letter(&self, message: &DeliveryMessage, reason: &str) -> Result<(), StoreError>;
}

/// Name resolution, so the addresses a host name stands for are checked before connecting.
#[async_trait]
pub trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String>;
}

/// Fans events out to a tenant's subscribed, enabled endpoints: one queue message each.
///
/// Reads a tenant's endpoints with one Query, cached in-process for `cache_ttl` (a new endpoint
/// may miss events for that long on a warm function; zero disables the cache).
pub struct OutboundEvents {
    pub endpoints: Arc<dyn EndpointStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub clock: Arc<dyn Clock>,
    pub cache_ttl: time::Duration,
    cache: Mutex<HashMap<TenantId, Cached>>,
}

crate::debug_fields!(OutboundEvents, cache_ttl);

/// A tenant's endpoints and when they were read.
type Cached = (OffsetDateTime, Arc<Vec<Endpoint>>);

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    pub enqueued: usize,
    /// Messages that could not be sent (logged; the event is lost for those endpoints).
    pub failed: usize,
}

impl OutboundEvents {
    pub fn new(
        endpoints: Arc<dyn EndpointStore>,
        queue: Arc<dyn OutboundQueue>,
        clock: Arc<dyn Clock>,
        cache_ttl: time::Duration,
    ) -> Self {
        Self {
            endpoints,
            queue,
            clock,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn endpoints_of(&self, tenant: &TenantId) -> Result<Arc<Vec<Endpoint>>, StoreError> {
        let now = self.clock.now();
        if self.cache_ttl > time::Duration::ZERO {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, list)) = cache.get(tenant)
                && now - *at < self.cache_ttl
            {
                return Ok(list.clone());
            }
        }
        let list = Arc::new(self.endpoints.list_endpoints(tenant).await?);
        if self.cache_ttl > time::Duration::ZERO {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.insert(tenant.clone(), (now, list.clone()));
        }
        Ok(list)
    }

    /// Enqueues `event` for every subscribed, enabled endpoint. Never fails the caller: the
    /// fact is already committed, so a failure here is logged and counted, not propagated.
    pub async fn emit(&self, event: &OutboundEvent, correlation_id: &str) -> FanOut {
        let endpoints = match self.endpoints_of(&event.tenant_id).await {
            Ok(list) => list,
            Err(e) => {
                tracing::error!(error = %e, event_id = %event.id, event_type = %event.event_type,
                    "outbound endpoints could not be read; the event is not delivered");
                return FanOut {
                    enqueued: 0,
                    failed: 1,
                };
            }
        };
        let mut out = FanOut::default();
        for endpoint in endpoints
            .iter()
            .filter(|e| e.is_enabled() && e.subscribes(event.event_type))
        {
            let message = DeliveryMessage {
                tenant_id: event.tenant_id.clone(),
                endpoint_id: endpoint.id.clone(),
                event: event.clone(),
                attempts: 0,
                not_before: None,
                correlation_id: correlation_id.to_owned(),
            };
            match self.queue.send(&message, Duration::ZERO).await {
                Ok(()) => out.enqueued += 1,
                Err(e) => {
                    out.failed += 1;
                    tracing::error!(error = %e, event_id = %event.id, endpoint_id = %endpoint.id,
                        "outbound event could not be enqueued");
                }
            }
        }
        if out.enqueued > 0 || out.failed > 0 {
            tracing::info!(event_id = %event.id, event_type = %event.event_type,
                enqueued = out.enqueued, failed = out.failed, "outbound event fanned out");
        }
        out
    }
}

/// What the API needs to manage endpoints: the store, and the guard's check of a new URL.
#[derive(Clone)]
pub struct EndpointRegistry {
    pub store: Arc<dyn EndpointStore>,
    pub resolver: Arc<dyn Resolver>,
    pub policy: guard::TargetPolicy,
    /// How long the previous secret keeps signing after a rotation (24 h).
    pub secret_overlap: Duration,
}

crate::debug_fields!(EndpointRegistry, policy, secret_overlap);

impl EndpointRegistry {
    /// The guard's check of a URL at registration: its form, and the addresses its host
    /// resolves to now (checked again at every delivery).
    pub async fn check_target(&self, url: &str) -> Result<guard::Target, guard::Refusal> {
        let target = guard::check_url(url, self.policy)?;
        if target.host.parse::<IpAddr>().is_err() {
            let addresses = self
                .resolver
                .resolve(&target.host, target.port)
                .await
                .map_err(|_| guard::Refusal::Unresolved)?;
            guard::check_addresses(&addresses, self.policy)?;
        }
        Ok(target)
    }
}
