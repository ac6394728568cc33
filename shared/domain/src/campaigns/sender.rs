//! The SMS sender: works one queued batch. Per recipient: one conditional claim (skipped if
//! opted out, the campaign stopped, or already done), one send through the provider with a
//! client reference, the credits debited from the campaign's reservation (keyed by contact:
//! once), then the recipient marked sent. A claim that outlived its lease is resumed by
//! looking the reference up at the provider before any resend.

use super::service::SmsBatch;
use super::{Campaign, CampaignStore, Claim, Recipient, RecipientState, SendOutcome};
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ports::CrisisStore;
use crate::rate_limits::{RequestCounter, RequestPolicy};
use crate::wallet::{WalletError, Wallets};
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
    /// The tenant's pause holds the batch back.
    pub paused: bool,
    /// This batch was the campaign's last: it is completed and settled.
    pub completed: bool,
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
        for recipient in self.store.batch(tenant, &campaign.id, batch.batch).await? {
            if !matches!(
                recipient.state,
                RecipientState::Queued | RecipientState::Sending { .. }
            ) {
                continue;
            }
            if report.retry_after.is_some() {
                // The provider throttled: leave the rest for the batch's next delivery.
                report.pending += 1;
                continue;
            }
            self.send_one(&campaign, &recipient, &mut report).await?;
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
        }
        Ok(report)
    }

    async fn send_one(
        &self,
        campaign: &Campaign,
        recipient: &Recipient,
        report: &mut BatchReport,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        // The provider's rate is taken before the claim, so a full window leaves the
        // recipient queued for the batch's next delivery.
        if !self.within_rate(now).await? {
            report.pending += 1;
            report.retry_after = Some(Duration::seconds(1));
            return Ok(());
        }
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
                        self.store
                            .finish(recipient, &SendOutcome::Failed { reason })
                            .await?;
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
        self.debit(campaign, recipient).await?;
        self.store
            .finish(recipient, &SendOutcome::Sent { message_id })
            .await?;
        report.sent += 1;
        Ok(())
    }

    /// Debits the recipient's segments from the reservation, once per contact. A reservation
    /// already settled (the campaign was cancelled while this send was in flight) cannot pay:
    /// the message went out uncharged, which is counted, never sent again.
    async fn debit(&self, campaign: &Campaign, recipient: &Recipient) -> Result<(), StoreError> {
        let credits = i64::from(recipient.segments.max(1));
        match self
            .wallets
            .debit(
                &campaign.tenant_id,
                &campaign.reservation(),
                recipient.contact_id.as_str(),
                credits,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(WalletError::ReservationShort { .. }) => {
                metrics::counter!("herald_sms_uncharged_total").increment(1);
                tracing::warn!(campaign = %campaign.id, "a send's reservation was already settled: uncharged");
                Ok(())
            }
            Err(WalletError::Store(e)) => Err(e),
            Err(e) => Err(StoreError::Invalid(e.to_string())),
        }
    }

    async fn within_rate(&self, now: time::OffsetDateTime) -> Result<bool, StoreError> {
        let policy = RequestPolicy {
            limit: self.messages_per_second,
            window: Duration::seconds(1),
        };
        Ok(policy
            .check(self.limiter.as_ref(), "sms:provider", now)
            .await?
            .allowed)
    }
}
