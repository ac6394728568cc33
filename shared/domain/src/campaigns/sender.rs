//! The SMS sender: works one queued batch. Per recipient: left for later while the campaign's
//! quiet hours hold it (see [`super::quiet`]), then a place in the provider's shared
//! rate window (taken ten at a time), one conditional claim (skipped if opted out, the
//! campaign stopped, or already done), one send through the provider with a client
//! reference, then the recipient marked sent in one write that also counts its segments as
//! the campaign's credits used. A claim that outlived its lease is resumed by looking the
//! reference up at the provider before any resend.
//!
//! Credits: the campaign's reservation holds them while it sends; when it completes or is
//! cancelled, [`super::service::settle`] debits what its recipients used (the counter every
//! finish added to, exactly once) and releases the rest. No wallet write per message: the
//! wallet is one item per tenant, and a write per SMS would both cost three more calls and
//! serialise every sender of the tenant on it.

use super::plan::SmsBatch;
use super::{
    Campaign, CampaignStatus, CampaignStore, Claim, Recipient, RecipientState, SendOutcome,
};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::outbound::{EventType, OutboundEvent};
use crate::ports::CrisisStore;
use crate::publishing::settle::OutcomeEvents;
use crate::rate_limits::{RequestCounter, RequestPolicy};
use crate::wallet::Wallets;
use async_trait::async_trait;
use std::sync::Arc;
use time::Duration;

/// One message for the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    pub from: String,
    pub to: String,
    pub text: String,
    pub client_ref: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    /// The provider refused this message for good (bad number, blocked content).
    #[error("refused: {0}")]
    Permanent(String),
    /// The provider did not take the message (429, refused connection): try later.
    #[error("throttled")]
    Throttled { retry_after: Option<Duration> },
    /// No clear answer (5xx, timeout): the message may have been taken.
    #[error("no clear answer: {0}")]
    Ambiguous(String),
}

#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// Sends; the provider's message id.
    async fn send(&self, sms: &OutboundSms) -> Result<String, SmsError>;
    /// The message sent with this client reference, if the provider has one.
    async fn lookup(&self, client_ref: &str) -> Result<Option<String>, SmsError>;
}

/// What a batch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub sent: u32,
    pub failed: u32,
    pub skipped: u32,
    /// Recipients left for a later delivery of the batch (throttled, unclear, or claimed by
    /// another sender); the batch must come back.
    pub pending: u32,
    /// Seconds the provider asked to wait, when it throttled.
    pub retry_after: Option<Duration>,
    /// Of `pending`, recipients in the campaign's quiet hours, and how long until the first
    /// of them may be texted.
    pub quiet: u32,
    pub quiet_for: Option<Duration>,
    /// The tenant's pause holds the batch back.
    pub paused: bool,
    /// This batch was the campaign's last: it is completed and settled.
    pub completed: bool,
}

impl BatchReport {
    /// When a batch with recipients left over should come back (`None`: nothing left): the
    /// soonest any of them may go. Paused: after `longest`. Throttled: after the provider's
    /// wait (at least a second). Unclear or busy claims: once their `lease` has run out.
    /// Quiet hours: when the window ends, at most `longest` (SQS's longest delay).
    pub fn comes_back_in(&self, lease: Duration, longest: Duration) -> Option<Duration> {
        if self.paused {
            return Some(longest);
        }
        let second = Duration::seconds(1);
        let throttled = self.retry_after.map(|wait| wait.max(second));
        let held = (self.pending > self.quiet && throttled.is_none()).then_some(lease);
        let quiet = self.quiet_for.map(|wait| wait.clamp(second, longest));
        [throttled, held, quiet].into_iter().flatten().min()
    }
}

/// Places in the provider's rate window taken in one shared write, at most.
const RATE_CHUNK: u32 = 10;

/// Places taken in the shared window and not used yet; worthless once the window passed.
#[derive(Debug, Default)]
struct Budget {
    window: i64,
    left: u32,
}

pub struct SmsSender {
    pub store: Arc<dyn CampaignStore>,
    pub wallets: Arc<Wallets>,
    pub provider: Arc<dyn SmsProvider>,
    pub crisis: Arc<dyn CrisisStore>,
    /// The provider's messages per second, shared by every sender instance.
    pub limiter: Arc<dyn RequestCounter>,
    pub messages_per_second: u32,
    pub clock: Arc<dyn Clock>,
    /// How long a claim is left alone before another sender may resume it.
    pub lease: Duration,
    /// Where `campaign.completed` and a refused message's `sms.failed` are announced;
    /// `None`: they are not.
    pub events: Option<Arc<dyn OutcomeEvents>>,
}

crate::debug_fields!(SmsSender, messages_per_second, lease);

impl SmsSender {
    pub async fn send_batch(&self, batch: &SmsBatch) -> Result<BatchReport, StoreError> {
        let mut report = BatchReport::default();
        let tenant = &batch.tenant_id;
        let Some(campaign) = self.store.get_campaign(tenant, &batch.campaign_id).await? else {
            return Ok(report);
        };
        let now = self.clock.now();
        if let Some(crisis) = self.crisis.get_crisis(tenant).await?
            && crisis.is_active(now)
            && crisis.platforms.is_empty()
        {
            report.paused = true;
            return Ok(report);
        }
        let open: Vec<Recipient> = self
            .store
            .batch(tenant, &campaign.id, batch.batch)
            .await?
            .into_iter()
            .filter(|r| {
                matches!(
                    r.state,
                    RecipientState::Queued | RecipientState::Sending { .. }
                )
            })
            .collect();
        let mut budget = Budget::default();
        // A stopped campaign's recipients are skipped by their claims, quiet or not: holding
        // them would bring its batches back all night for nothing.
        let quiet_hours = campaign
            .quiet_hours
            .as_ref()
            .filter(|_| !matches!(campaign.status, CampaignStatus::Cancelled));
        for (done, recipient) in open.iter().enumerate() {
            // Read per recipient: a batch's sends take time, and a window may begin midway.
            if let Some(wait) = quiet_hours.and_then(|q| q.wait(&recipient.phone, self.clock.now()))
            {
                report.pending += 1;
                report.quiet += 1;
                report.quiet_for = Some(report.quiet_for.map_or(wait, |w| w.min(wait)));
                continue;
            }
            if report.retry_after.is_some() {
                // The provider throttled: leave the rest for the batch's next delivery.
                report.pending += 1;
                continue;
            }
            let left = (open.len() - done) as u32;
            if !self.within_rate(&mut budget, left).await? {
                report.pending += 1;
                report.retry_after = Some(Duration::seconds(1));
                continue;
            }
            self.send_one(&campaign, recipient, &batch.correlation_id, &mut report)
                .await?;
        }
        if report.pending == 0 {
            report.completed = super::service::complete_if_done(
                self.store.as_ref(),
                &self.wallets,
                self.clock.now(),
                tenant,
                &campaign.id,
            )
            .await
            .map_err(|e| match e {
                super::CampaignError::Store(e) => e,
                other => StoreError::Invalid(other.to_string()),
            })?;
            if report.completed {
                self.announce_completed(&campaign, &batch.correlation_id)
                    .await?;
            }
        }
        Ok(report)
    }

    /// `campaign.completed`, with the settled counters.
    async fn announce_completed(
        &self,
        campaign: &Campaign,
        correlation_id: &str,
    ) -> Result<(), StoreError> {
        let Some(events) = &self.events else {
            return Ok(());
        };
        let Some(done) = self
            .store
            .get_campaign(&campaign.tenant_id, &campaign.id)
            .await?
        else {
            return Ok(());
        };
        let p = &done.progress;
        let fact = OutboundEvent::new(
            EventType::CampaignCompleted,
            campaign.tenant_id.clone(),
            &[campaign.id.as_str()],
            self.clock.now(),
            serde_json::json!({
                "campaign_id": campaign.id,
                "name": done.name,
                "recipients": p.recipients,
                "sent": p.sent,
                "delivered": p.delivered,
                "undelivered": p.undelivered,
                "failed": p.failed,
                "skipped": p.skipped,
                "credits_used": p.credits_used,
                "credits_released": p.credits_released,
            }),
        );
        events.emit(&fact, correlation_id).await;
        Ok(())
    }

    async fn send_one(
        &self,
        campaign: &Campaign,
        recipient: &Recipient,
        correlation_id: &str,
        report: &mut BatchReport,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let claim = self.store.claim(recipient, now, now - self.lease).await?;
        let client_ref = recipient.client_ref();
        let found = match claim {
            Claim::Done => return Ok(()),
            Claim::OptedOut | Claim::Stopped => {
                report.skipped += 1;
                return Ok(());
            }
            Claim::Busy => {
                report.pending += 1;
                return Ok(());
            }
            Claim::Fresh => None,
            Claim::Resumed => match self.provider.lookup(&client_ref).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, "looking a resumed send up failed; later");
                    report.pending += 1;
                    return Ok(());
                }
            },
        };
        let message_id = match found {
            Some(id) => id,
            None => {
                let sms = OutboundSms {
                    from: campaign.sender.clone(),
                    to: recipient.phone.clone(),
                    text: recipient.text.clone(),
                    client_ref: client_ref.clone(),
                };
                match self.provider.send(&sms).await {
                    Ok(id) => id,
                    Err(SmsError::Permanent(reason)) => {
                        let outcome = SendOutcome::Failed {
                            reason: reason.clone(),
                        };
                        if self.store.finish(recipient, &outcome).await?
                            && let Some(events) = &self.events
                        {
                            let fact = OutboundEvent::new(
                                EventType::SmsFailed,
                                campaign.tenant_id.clone(),
                                &[&client_ref, "failed"],
                                now,
                                serde_json::json!({
                                    "campaign_id": campaign.id,
                                    "contact_id": recipient.contact_id,
                                    "message_id": null,
                                    "status": "failed",
                                    "reason": reason,
                                }),
                            );
                            events.emit(&fact, correlation_id).await;
                        }
                        report.failed += 1;
                        return Ok(());
                    }
                    Err(SmsError::Throttled { retry_after }) => {
                        // Not taken: the claim's lease lets the next delivery resume it
                        // (its lookup finds nothing and it sends).
                        report.pending += 1;
                        report.retry_after = Some(retry_after.unwrap_or(Duration::seconds(1)));
                        return Ok(());
                    }
                    Err(SmsError::Ambiguous(e)) => match self.provider.lookup(&client_ref).await {
                        Ok(Some(id)) => id,
                        _ => {
                            tracing::warn!(error = %e, "a send had no clear answer; resumed after the lease");
                            report.pending += 1;
                            return Ok(());
                        }
                    },
                }
            }
        };
        self.store
            .finish(recipient, &SendOutcome::Sent { message_id })
            .await?;
        report.sent += 1;
        Ok(())
    }

    /// A place in the provider's rate window for the next recipient, taken before its claim
    /// (a full window leaves it queued for the batch's next delivery). Places are taken for
    /// up to [`RATE_CHUNK`] of the `left` recipients at once; unused ones lapse with their
    /// window (counted, never sent: the limit errs low).
    async fn within_rate(&self, budget: &mut Budget, left: u32) -> Result<bool, StoreError> {
        let policy = RequestPolicy {
            limit: self.messages_per_second,
            window: Duration::seconds(1),
        };
        let now = self.clock.now();
        let (window, _, _) = policy.window_of(now)?;
        if budget.window == window && budget.left > 0 {
            budget.left -= 1;
            return Ok(true);
        }
        let (granted, window) = policy
            .take_up_to(
                self.limiter.as_ref(),
                "sms:provider",
                now,
                left.min(RATE_CHUNK),
            )
            .await?;
        if granted == 0 {
            return Ok(false);
        }
        *budget = Budget {
            window,
            left: granted - 1,
        };
        Ok(true)
    }
}
