//! The publisher: one SQS record in, at most one platform post out.
//!
//! Claim (one conditional write) → publish through the platform client → record the outcome
//! (one conditional write, valid only for this attempt). A duplicate delivery loses the claim
//! and publishes nothing. An ambiguous failure (sent, no answer) is recorded `unknown` and is
//! never retried blindly: the post has to be looked up on the platform first.

use crate::clock::Clock;
use crate::model::{AccountStatus, FailureKind, VariantError};
use crate::platform::{PlatformClient, PlatformError, PublishRequest};
use crate::ports::{AccountStore, ClaimRejected, PublishMessage, PublishStore, VariantOutcome};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// The queue's redrive `maxReceiveCount`: the delivery with this count is the last.
    pub max_receive_count: u32,
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(900),
        }
    }
}

/// What to do with the SQS record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it: published, failed for good, recorded as unknown, or a duplicate.
    Done(Done),
    /// Leave it on the queue and make it visible again after this long.
    RetryAfter(Duration),
    /// Leave it on the queue as it is (the store failed; SQS redelivers after the visibility
    /// timeout, and after `maxReceiveCount` deliveries moves it to the DLQ).
    Fail,
    /// The last delivery failed: make it visible at once so SQS moves it to the DLQ now.
    DeadLetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Published,
    Failed,
    Unknown,
    Duplicate,
}

#[derive(Clone)]
pub struct PublishService {
    pub store: Arc<dyn PublishStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub platform: Arc<dyn PlatformClient>,
    pub clock: Arc<dyn Clock>,
    pub config: PublishConfig,
}

impl std::fmt::Debug for PublishService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PublishService {
    pub async fn handle(&self, message: &PublishMessage, receive_count: u32) -> Disposition {
        let variant = message.variant();
        let attempt_id = uuid::Uuid::new_v4().simple().to_string();
        let post = match self
            .store
            .claim_for_publish(&variant, &attempt_id, self.clock.now())
            .await
        {
            Ok(post) => post,
            Err(ClaimRejected::NotClaimable) => {
                tracing::info!(
                    "not claimable (duplicate delivery, cancelled or already handled); nothing to do"
                );
                return Disposition::Done(Done::Duplicate);
            }
            Err(ClaimRejected::Store(e)) => {
                tracing::warn!(error = %e, "claim failed");
                return Disposition::Fail;
            }
        };

        let result = match self
            .accounts
            .get_account(&message.tenant_id, &message.account_id)
            .await
        {
            Err(e) => {
                // Nothing was sent: hand the variant back for the next delivery.
                tracing::warn!(error = %e, "reading the account failed");
                Err(PlatformError::Transient {
                    message: "could not read the account".into(),
                    code: None,
                    retry_after: None,
                })
            }
            Ok(None) => Err(PlatformError::Permanent {
                message: "the account was disconnected; reconnect it and post again".into(),
                code: None,
            }),
            Ok(Some(account)) if account.status != AccountStatus::Active => {
                Err(PlatformError::Auth {
                    message: "the account needs to be reconnected".into(),
                    code: None,
                })
            }
            Ok(Some(account)) => {
                self.platform
                    .publish(PublishRequest {
                        platform: account.platform,
                        external_id: &account.external_id,
                        access_token: &account.access_token,
                        text: post.text_for(&message.account_id),
                        correlation_id: &message.correlation_id,
                    })
                    .await
            }
        };

        let now = self.clock.now();
        let (outcome, disposition) = match result {
            Ok(published) => {
                tracing::info!(platform_post_id = %published.platform_post_id, "published");
                (
                    VariantOutcome::Published {
                        platform_post_id: published.platform_post_id,
                        at: now,
                    },
                    Disposition::Done(Done::Published),
                )
            }
            Err(err) => {
                let error = VariantError {
                    kind: err.kind(),
                    message: err.message().to_owned(),
                    platform_code: err.code().map(str::to_owned),
                    at: now,
                };
                tracing::warn!(kind = err.kind().as_str(), code = ?err.code(), message = %err.message(), "publish failed");
                match err.kind() {
                    FailureKind::Permanent | FailureKind::Auth => (
                        VariantOutcome::Failed(error),
                        Disposition::Done(Done::Failed),
                    ),
                    FailureKind::Ambiguous => (
                        VariantOutcome::Unknown(error),
                        Disposition::Done(Done::Unknown),
                    ),
                    FailureKind::Transient | FailureKind::RateLimited
                        if receive_count >= self.config.max_receive_count =>
                    {
                        // The last delivery: SQS moves the message to the DLQ on its next
                        // receive; the variant says so, with the cause.
                        (VariantOutcome::DeadLettered(error), Disposition::DeadLetter)
                    }
                    FailureKind::Transient | FailureKind::RateLimited => (
                        VariantOutcome::Retrying(error),
                        Disposition::RetryAfter(self.backoff(receive_count, err.retry_after())),
                    ),
                }
            }
        };

        match self
            .store
            .record_outcome(&variant, &attempt_id, &outcome)
            .await
        {
            Ok(()) => disposition,
            Err(e) => {
                // The variant stays `publishing` under this attempt; a redelivery cannot claim
                // it, so nothing is published twice. The reconciler resolves it.
                tracing::error!(error = %e, "recording the outcome failed");
                Disposition::Fail
            }
        }
    }

    /// Exponential backoff with full jitter, at least one second (SQS counts in seconds);
    /// the platform's Retry-After wins when it asks for longer.
    pub fn backoff(&self, receive_count: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .config
            .retry_base
            .saturating_mul(1u32 << receive_count.saturating_sub(1).min(20))
            .min(self.config.retry_cap);
        let mut r = [0u8; 8];
        // Jitter only spreads load; a failing RNG just means no spread.
        let _ = getrandom::fill(&mut r);
        let fraction = (u64::from_le_bytes(r) >> 11) as f64 / (1u64 << 53) as f64;
        let jittered = exp.mul_f64(fraction).max(Duration::from_secs(1));
        retry_after.map_or(jittered, |ra| ra.max(jittered))
    }
}
