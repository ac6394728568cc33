//! Inbound webhooks: a provider's request is verified over its exact bytes (through
//! `herald-webhooks`, with the provider's current and, in its grace period, previous secret),
//! its event id is accepted once (a conditional write that expires), and the event is handed
//! to a queue for the processor. Nothing is applied here: the receiver answers fast.
//!
//! A verification that fails with the cached secrets refetches them once (at most every few
//! seconds, see `CachePolicy`) before refusing, so a secret rotated a moment ago never turns
//! a genuine request away.
//!
//! The event is queued *before* its id is recorded: an id is never marked seen for an event
//! that is not on the queue, whatever fails or dies in between (a sender told 200 has its
//! event queued). The price is that a replay is queued again before it is recognised; the
//! processor keeps each (provider, event id) once and its effects are idempotent, so a
//! duplicate on the queue applies nothing.

pub mod billing;

use crate::StoreError;
use crate::clock::{Clock, Entropy};
use crate::rate_limits::{RateDecision, RequestCounter, RequestPolicy, WEBHOOK_POLICY};
use crate::secrets::SecretCache;
use async_trait::async_trait;
use herald_webhooks::{Rejection, Request, Scheme, Verified};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

/// A provider Herald takes webhooks from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookProvider {
    /// The `{provider}` in `/webhooks/{provider}`.
    pub name: String,
    pub scheme: Scheme,
    /// The secret that signs its requests (Secrets Manager id).
    pub secret_id: String,
    /// Meta's subscription handshake compares `hub.verify_token` against this secret.
    pub verify_token_id: Option<String>,
}

/// A verified event on its way to the processor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub provider: String,
    pub scheme: Scheme,
    pub event_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub correlation_id: String,
    /// The body as received (every provider sends JSON, so UTF-8).
    pub body: String,
}

#[async_trait]
pub trait WebhookInbox: Send + Sync {
    /// Records `event_id` as seen until `expires_at`; `false` when it already was (and that
    /// record has not expired).
    async fn first_sighting(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait InboundQueue: Send + Sync {
    async fn enqueue(&self, event: &InboundEvent) -> Result<(), StoreError>;
}

/// What became of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Verified, seen for the first time and queued.
    Accepted {
        event_id: String,
        old_secret: bool,
    },
    /// Verified, but its event id was already accepted (the copy queued applies nothing).
    Replayed,
    Refused(Rejection),
    UnknownProvider,
    /// The secrets or the queue could not be reached: the sender should retry.
    Unavailable,
    /// Verified, but over the provider's budget: nothing was queued; the sender should retry
    /// after the window resets.
    Throttled,
}

/// What became of a request, and where it left its provider's budget (none before the
/// request verified, or when the limiter could not count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub outcome: Received,
    pub rate: Option<RateDecision>,
}

impl From<Received> for Receipt {
    fn from(outcome: Received) -> Self {
        Self {
            outcome,
            rate: None,
        }
    }
}

impl Received {
    /// The metric name this outcome counts under.
    pub fn metric(&self) -> &'static str {
        match self {
            Received::Accepted { .. } => "verified",
            Received::Replayed => "replayed",
            Received::Refused(_) | Received::UnknownProvider => "rejected",
            Received::Unavailable => "unavailable",
            Received::Throttled => "throttled",
        }
    }
}

/// How a handshake (`GET`) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// The body to answer with, and whether it is JSON (X) or plain text (Meta).
    Answer {
        body: String,
        json: bool,
    },
    Refused(Rejection),
    /// This provider has no handshake, or there is no such provider.
    NotFound,
    Unavailable,
}

#[derive(Debug, Clone, Copy)]
pub struct ReceiverConfig {
    /// How long the previous secret keeps verifying after a new one became current.
    pub grace: time::Duration,
    /// How long an event id is remembered. Meta and X sign no time: this is how long a
    /// captured request of theirs is refused as a replay, so it is long.
    pub remember_for: time::Duration,
    /// Verified webhooks per provider (every instance shares the count).
    pub rate: RequestPolicy,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grace: time::Duration::hours(24),
            remember_for: time::Duration::days(30),
            rate: WEBHOOK_POLICY,
        }
    }
}

pub struct WebhookReceiver {
    pub providers: HashMap<String, WebhookProvider>,
    pub secrets: Arc<SecretCache>,
    pub inbox: Arc<dyn WebhookInbox>,
    pub queue: Arc<dyn InboundQueue>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: ReceiverConfig,
    /// Counts verified webhooks against each provider's budget (`config.rate`).
    pub counter: Arc<dyn RequestCounter>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why the secrets could not be used.
enum Refusal {
    Rejected(Rejection),
    Unavailable,
}

impl WebhookReceiver {
    pub async fn receive(&self, provider: &str, request: &Request<'_>) -> Receipt {
        let Some(p) = self.providers.get(provider) else {
            return Received::UnknownProvider.into();
        };
        let now = self.clock.now();
        let verified = match self
            .with_secrets(&p.secret_id, |secrets| {
                herald_webhooks::verify(p.scheme, request, secrets, now)
            })
            .await
        {
            Ok(v) => v,
            Err(Refusal::Rejected(r)) => return Received::Refused(r).into(),
            Err(Refusal::Unavailable) => return Received::Unavailable.into(),
        };
        let Ok(body) = std::str::from_utf8(request.body) else {
            return Received::Refused(Rejection::MalformedBody).into();
        };
        // Counted once verified: forged requests cannot spend a provider's budget.
        let scope = format!("webhook#{}", p.name);
        let rate = match self
            .config
            .rate
            .check(self.counter.as_ref(), &scope, now)
            .await
        {
            Ok(decision) => Some(decision),
            Err(e) => {
                tracing::warn!(error = %e, "the webhook rate limiter could not count; admitted");
                None
            }
        };
        let outcome = if rate.is_some_and(|d| !d.allowed) {
            Received::Throttled
        } else {
            self.hand_over(p, verified, body, now).await
        };
        Receipt { outcome, rate }
    }

    async fn hand_over(
        &self,
        p: &WebhookProvider,
        verified: Verified,
        body: &str,
        now: OffsetDateTime,
    ) -> Received {
        let Verified {
            event_id,
            matched_secret,
            ..
        } = verified;
        let event = InboundEvent {
            provider: p.name.clone(),
            scheme: p.scheme,
            event_id: event_id.clone(),
            received_at: now,
            correlation_id: self.entropy.token(),
            body: body.to_owned(),
        };
        if let Err(e) = self.queue.enqueue(&event).await {
            tracing::warn!(error = %e, "queueing the webhook failed; the sender is asked to retry");
            return Received::Unavailable;
        }
        tracing::info!(correlation_id = %event.correlation_id, provider = %p.name, event_id, "webhook queued");
        match self
            .inbox
            .first_sighting(&p.name, &event_id, now, now + self.config.remember_for)
            .await
        {
            Ok(false) => Received::Replayed,
            Ok(true) => Received::Accepted {
                event_id,
                old_secret: matched_secret > 0,
            },
            // The event is queued and the processor keeps it once: a failure here only
            // loses the replay count.
            Err(e) => {
                tracing::warn!(error = %e, "recording the webhook's event id failed");
                Received::Accepted {
                    event_id,
                    old_secret: matched_secret > 0,
                }
            }
        }
    }

    /// The provider's `GET` handshake: Meta's subscription check or X's CRC.
    pub async fn challenge(&self, provider: &str, query: &HashMap<String, String>) -> Challenge {
        let Some(p) = self.providers.get(provider) else {
            return Challenge::NotFound;
        };
        let param = |name: &str| query.get(name).map(String::as_str);
        let answer = match (p.scheme, &p.verify_token_id) {
            (Scheme::Meta, Some(tokens)) => {
                let subscription = herald_webhooks::meta::Subscription {
                    mode: param("hub.mode"),
                    verify_token: param("hub.verify_token"),
                    challenge: param("hub.challenge"),
                };
                self.with_secrets(tokens, |secrets| {
                    herald_webhooks::meta::answer_subscription(&subscription, secrets)
                        .map(|c| (c.to_owned(), false))
                })
                .await
            }
            (Scheme::X, _) => {
                self.with_secrets(&p.secret_id, |secrets| {
                    herald_webhooks::x::crc_response(param("crc_token"), secrets).map(|token| {
                        (
                            serde_json::json!({ "response_token": token }).to_string(),
                            true,
                        )
                    })
                })
                .await
            }
            _ => return Challenge::NotFound,
        };
        match answer {
            Ok((body, json)) => Challenge::Answer { body, json },
            Err(Refusal::Rejected(r)) => Challenge::Refused(r),
            Err(Refusal::Unavailable) => Challenge::Unavailable,
        }
    }

    /// Runs `check` with the secret's accepted values; when it finds a bad signature, once
    /// more with freshly fetched ones (a rotation may have just happened).
    async fn with_secrets<T>(
        &self,
        secret_id: &str,
        check: impl Fn(&[SecretString]) -> Result<T, Rejection>,
    ) -> Result<T, Refusal> {
        let now = self.clock.now();
        let accepted = |ring: &crate::secrets::SecretRing| -> Vec<SecretString> {
            ring.accepted(now, self.config.grace)
                .into_iter()
                .cloned()
                .collect()
        };
        let ring = self.secrets.get(secret_id).await.map_err(|e| {
            tracing::error!(error = %e, "reading the webhook secret failed");
            Refusal::Unavailable
        })?;
        match check(&accepted(&ring)) {
            Err(Rejection::BadSignature) => match self.secrets.refetch(secret_id).await {
                Ok(Some(fresh)) => check(&accepted(&fresh)).map_err(Refusal::Rejected),
                Ok(None) => Err(Refusal::Rejected(Rejection::BadSignature)),
                Err(e) => {
                    tracing::error!(error = %e, "refetching the webhook secret failed");
                    Err(Refusal::Rejected(Rejection::BadSignature))
                }
            },
            other => other.map_err(Refusal::Rejected),
        }
    }
}

/// A platform telling Herald that one of its posts is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Herald's account id for the platform account (`Account::id_for`).
    pub account_id: crate::ids::AccountId,
    pub platform_post_id: String,
}

/// What an event says, read from its (already verified) body: its type, and the removals it
/// reports. A body this code does not understand is still kept, with type `unknown`.
pub fn read_event(event: &InboundEvent) -> (String, Vec<Removal>) {
    use crate::model::{Account, Platform};
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&event.body) else {
        return ("unknown".into(), Vec::new());
    };
    let text = |v: &serde_json::Value| {
        v.as_str()
            .map(str::to_owned)
            .or_else(|| v.as_u64().map(|n| n.to_string()))
    };
    match event.scheme {
        // Page feed changes: {"object":"page","entry":[{"id":<page>,"changes":[{"field":"feed",
        // "value":{"verb":"remove","post_id":...}}]}]}
        Scheme::Meta => {
            let mut removals = Vec::new();
            let mut kind = "meta.unknown".to_owned();
            for entry in body["entry"].as_array().into_iter().flatten() {
                let Some(page) = text(&entry["id"]) else {
                    continue;
                };
                for change in entry["changes"].as_array().into_iter().flatten() {
                    let field = change["field"].as_str().unwrap_or("unknown");
                    let verb = change["value"]["verb"].as_str().unwrap_or("unknown");
                    kind = format!("meta.{field}.{verb}");
                    if field == "feed"
                        && verb == "remove"
                        && let Some(id) = text(&change["value"]["post_id"])
                    {
                        removals.push(Removal {
                            account_id: Account::id_for(Platform::Facebook, &page),
                            platform_post_id: id,
                        });
                    }
                }
            }
            (kind, removals)
        }
        // Account Activity: {"for_user_id":...,"tweet_delete_events":[{"status":{"id":...,
        // "user_id":...}}]}
        Scheme::X => {
            let Some(user) = text(&body["for_user_id"]) else {
                return ("x.unknown".into(), Vec::new());
            };
            let kind = body
                .as_object()
                .and_then(|o| o.keys().find(|k| k.ends_with("_events")).cloned())
                .map_or("x.unknown".into(), |k| format!("x.{k}"));
            let removals = body["tweet_delete_events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| text(&e["status"]["id"]))
                .map(|id| Removal {
                    account_id: Account::id_for(Platform::X, &user),
                    platform_post_id: id,
                })
                .collect();
            (kind, removals)
        }
        _ => (
            body["type"]
                .as_str()
                .or(body["status"].as_str())
                .unwrap_or("unknown")
                .chars()
                .take(100)
                .collect(),
            Vec::new(),
        ),
    }
}

#[async_trait]
pub trait InboundStore: Send + Sync {
    /// Marks the variant published as `removal.platform_post_id` on that account as removed
    /// on the platform; `false` when there is no such variant or it already was.
    async fn mark_removed(&self, removal: &Removal, at: OffsetDateTime)
    -> Result<bool, StoreError>;
    /// Keeps the event (by provider and event id) for inspection and for the features that
    /// apply billing events and delivery receipts; `false` when it was already kept.
    async fn keep_event(
        &self,
        event: &InboundEvent,
        kind: &str,
        applied: usize,
    ) -> Result<bool, StoreError>;
}

/// The webhook processor: applies each queued event once. Effects first (each idempotent),
/// then the event is kept: a redelivery after a crash in between applies nothing twice.
pub struct WebhookProcessor {
    pub store: Arc<dyn InboundStore>,
    pub clock: Arc<dyn Clock>,
    /// Applies billing events (scheme `stripe`) to the wallets; `None`: they are only kept.
    pub billing: Option<billing::Billing>,
    /// Applies the SMS provider's delivery receipts (scheme `sms`) to campaign recipients;
    /// `None`: they are only kept.
    pub campaigns: Option<Arc<dyn crate::campaigns::CampaignStore>>,
    /// Applies and answers STOP, START and HELP texted to a tenant's sender (scheme `sms`);
    /// `None`: inbound messages are only kept.
    pub keywords: Option<crate::campaigns::keywords::Keywords>,
    /// Where applied delivery receipts are announced (`sms.delivered`, `sms.failed`);
    /// `None`: they are not.
    pub events: Option<Arc<dyn crate::publishing::settle::OutcomeEvents>>,
}

crate::debug_fields!(WebhookProcessor);

/// What processing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub kind: String,
    /// Variants newly marked removed.
    pub removed: usize,
    /// A billing event changed a wallet now.
    pub credited: bool,
    /// A delivery receipt changed a campaign recipient now.
    pub receipt: bool,
    /// An inbound SMS keyword changed a contact's consent now.
    pub consent_changed: bool,
    /// The event had been kept before (a redelivery).
    pub duplicate: bool,
}

impl WebhookProcessor {
    pub async fn process(&self, event: &InboundEvent) -> Result<Processed, StoreError> {
        let (kind, removals) = read_event(event);
        let now = self.clock.now();
        let mut removed = 0;
        for removal in &removals {
            if self.store.mark_removed(removal, now).await? {
                removed += 1;
            }
        }
        let credited = match (&self.billing, event.scheme) {
            (Some(billing), Scheme::Stripe) => billing.apply(event).await?,
            _ => false,
        };
        let announced = match (&self.campaigns, event.scheme) {
            (Some(campaigns), Scheme::Sms) => apply_receipt(campaigns.as_ref(), event, now).await?,
            _ => None,
        };
        let receipt = announced.is_some();
        if let (Some(events), Some(fact)) = (&self.events, &announced) {
            events.emit(fact, &event.correlation_id).await;
        }
        let consent_changed = match (&self.keywords, event.scheme) {
            (Some(keywords), Scheme::Sms) => apply_keyword(keywords, event).await?,
            _ => false,
        };
        let applied =
            removed + usize::from(credited) + usize::from(receipt) + usize::from(consent_changed);
        let kept = self.store.keep_event(event, &kind, applied).await?;
        Ok(Processed {
            kind,
            removed,
            credited,
            receipt,
            consent_changed,
            duplicate: !kept,
        })
    }
}

/// Applies a keyword texted to a tenant's sender (STOP, START, HELP); `true` when a
/// contact's consent changed now.
async fn apply_keyword(
    keywords: &crate::campaigns::keywords::Keywords,
    event: &InboundEvent,
) -> Result<bool, StoreError> {
    use crate::campaigns::keywords::{Handled, InboundSms};
    let Some(sms) = serde_json::from_str::<serde_json::Value>(&event.body)
        .ok()
        .as_ref()
        .and_then(InboundSms::of)
    else {
        return Ok(false);
    };
    Ok(matches!(
        keywords.handle(&sms).await?,
        Handled::Applied { changed: true, .. }
    ))
}

/// A delivery receipt's verdict: `{"type": "receipt", "message_id": ..., "status":
/// "delivered" | "undelivered" | "failed"}`; `sent` and anything else say nothing final.
pub fn receipt_of(body: &serde_json::Value) -> Option<(String, crate::campaigns::Receipt)> {
    use crate::campaigns::Receipt;
    if body["type"].as_str().is_some_and(|t| t != "receipt") {
        return None;
    }
    let verdict = match body["status"].as_str()? {
        "delivered" => Receipt::Delivered,
        "undelivered" | "failed" => Receipt::Undelivered,
        _ => return None,
    };
    Some((body["message_id"].as_str()?.to_owned(), verdict))
}

/// Applies a receipt to the recipient sent as its message, once; the fact to announce when it
/// changed the recipient now. A late or repeated one, or one for a message Herald did not
/// send, changes nothing. A receipt for one of Herald's sends (its client reference) that
/// overtook the sender's record of the send (the provider answers, then receipts come within
/// moments, while the sender is still recording it) fails, so the queue delivers it again
/// once the send is recorded.
async fn apply_receipt(
    campaigns: &dyn crate::campaigns::CampaignStore,
    event: &InboundEvent,
    now: OffsetDateTime,
) -> Result<Option<crate::outbound::OutboundEvent>, StoreError> {
    use crate::campaigns::{CLIENT_REF_PREFIX, Receipt, ReceiptApplied};
    use crate::outbound::{EventType, OutboundEvent};
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&event.body) else {
        return Ok(None);
    };
    let Some((message_id, verdict)) = receipt_of(&body) else {
        return Ok(None);
    };
    match campaigns.apply_receipt(&message_id, verdict).await? {
        ReceiptApplied::Applied(tenant, campaign, contact) => {
            let (event_type, status) = match verdict {
                Receipt::Delivered => (EventType::SmsDelivered, "delivered"),
                Receipt::Undelivered => (EventType::SmsFailed, "undelivered"),
            };
            Ok(Some(OutboundEvent::new(
                event_type,
                tenant,
                &[&message_id, status],
                now,
                serde_json::json!({
                    "campaign_id": campaign,
                    "contact_id": contact,
                    "message_id": message_id,
                    "status": status,
                }),
            )))
        }
        ReceiptApplied::Unchanged => Ok(None),
        ReceiptApplied::Unknown
            if body["client_ref"]
                .as_str()
                .is_some_and(|r| r.starts_with(CLIENT_REF_PREFIX)) =>
        {
            Err(StoreError::Unavailable(
                "a delivery receipt arrived before its send was recorded".into(),
            ))
        }
        ReceiptApplied::Unknown => Ok(None),
    }
}
