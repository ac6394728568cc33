//! Step 4: the outcome recorded with its audit record, then the breaker and the platform's
//! usage signals.

use super::*;
use crate::alerts::Alert;
use crate::audit::{AuditEntry, AuditRecord};
use crate::model::FailureKind;
use crate::ports::{BreakerChange, BreakerReset, VariantRef, variant_entity};
use crate::publishing::platform::RateSignal;

impl PublishService {
    /// Records the outcome (with its audit record), updates the breaker and the account, and
    /// decides the message.
    pub(super) async fn finish(
        &self,
        message: &PublishMessage,
        variant: &VariantRef,
        attempt: Attempt<'_>,
        attempted: Attempted,
    ) -> Disposition {
        let Attempt {
            id: attempt_id,
            delivery,
            probe,
            audit_head,
            scheduled_at,
            attempts,
            step,
            more,
        } = attempt;
        let now = self.clock.now();
        let error_of = |e: &PlatformError| VariantError {
            kind: e.kind(),
            message: match step {
                0 => e.message().to_owned(),
                n => format!("follow-up {n} (the post itself is live): {}", e.message()),
            },
            platform_code: e.code().map(str::to_owned),
            at: now,
        };
        let failures = message.failures + delivery.receive_count;
        let (outcome, lookup, disposition) = match &attempted {
            Attempted::Published(published, done) => (
                VariantOutcome::Published {
                    platform_post_id: published.platform_post_id.clone(),
                    at: now,
                    step,
                    more,
                },
                false,
                Disposition::Done(*done),
            ),
            Attempted::Failed(e) => (
                VariantOutcome::Failed(error_of(e)),
                false,
                Disposition::Done(Done::Failed),
            ),
            Attempted::RateLimited(e, wait) => {
                crate::metrics::publish_deferred(message.platform, "platform_rate_limit");
                (
                    VariantOutcome::Retrying(error_of(e)),
                    false,
                    defer(message, delivery, *wait),
                )
            }
            Attempted::Continues(e, lookup) => {
                crate::metrics::publish_deferred(message.platform, "upload_continues");
                (
                    VariantOutcome::Retrying(error_of(e)),
                    *lookup,
                    continuation(message),
                )
            }
            Attempted::Deferred(e, wait, lookup) => {
                crate::metrics::publish_deferred(message.platform, "platform_later");
                (
                    VariantOutcome::Retrying(error_of(e)),
                    *lookup,
                    defer(message, delivery, *wait),
                )
            }
            Attempted::GaveUp { error, lookup } if failures >= self.config.max_receive_count => {
                let reason = format!("{} (after {failures} failed deliveries)", error.message());
                let disposition = if delivery.receive_count >= self.config.max_receive_count {
                    Disposition::DeadLetter
                } else {
                    Disposition::MoveToDeadLetter(reason)
                };
                (
                    VariantOutcome::DeadLettered(error_of(error)),
                    *lookup,
                    disposition,
                )
            }
            Attempted::GaveUp { error, lookup } => {
                let outcome = if *lookup {
                    VariantOutcome::Unknown(error_of(error))
                } else {
                    VariantOutcome::Retrying(error_of(error))
                };
                let wait = error
                    .retry_after()
                    .unwrap_or_default()
                    .max(self.config.redelivery.delay(failures, &*self.entropy))
                    .max(Duration::from_secs(1));
                (outcome, *lookup, Disposition::RetryAfter(wait))
            }
        };
        let audit = AuditRecord::chain(
            AuditEntry {
                tenant_id: message.tenant_id.clone(),
                entity: variant_entity(variant),
                action: format!("publish.{}", outcome_name(&outcome, &attempted)),
                actor: "system:publisher".into(),
                old: None,
                new: Some(outcome_json(&outcome, delivery)),
                ip: None,
                user_agent: None,
                at: now,
            },
            audit_head,
        );
        // A success forgets the account's failures in the same write (see `BreakerReset`).
        let reset = matches!(outcome, VariantOutcome::Published { .. }).then_some(if probe {
            BreakerReset::Probe
        } else {
            BreakerReset::IfClosed
        });
        if let Err(e) = self
            .store
            .record_outcome(variant, attempt_id, &outcome, lookup, &audit, reset)
            .await
        {
            // The variant stays `publishing` under this attempt: a redelivery cannot claim
            // it, so nothing is published twice. The reconciler resolves it.
            tracing::error!(error = %e, "recording the outcome failed");
            return Disposition::Fail;
        }
        record_metrics(
            message.platform,
            &outcome,
            &attempted,
            scheduled_at,
            attempts,
        );
        let dead_lettered = matches!(outcome, VariantOutcome::DeadLettered(_));
        self.after_outcome(message, &attempted, dead_lettered).await;
        disposition
    }

    /// Best-effort bookkeeping after the outcome is safe: breaker, platform signals, reauth.
    pub(super) async fn after_outcome(
        &self,
        message: &PublishMessage,
        attempted: &Attempted,
        dead_lettered: bool,
    ) {
        let now = self.clock.now();
        let (tenant, account) = (&message.tenant_id, &message.account_id);
        let mut changes = Vec::new();
        match attempted {
            Attempted::Published(published, _) => {
                self.apply_signal(message.platform, &published.signal, now, &mut changes)
                    .await;
            }
            Attempted::RateLimited(_, wait) => {
                changes.push(BreakerChange::BlockUntil(now + *wait));
            }
            Attempted::Failed(e) => {
                if e.kind() == FailureKind::Auth {
                    if let Err(e) = self.store.mark_needs_reauth(tenant, account, now).await {
                        tracing::warn!(error = %e, "marking the account for reconnection failed");
                    }
                    self.alerter
                        .raise(Alert {
                            key: format!("token_invalid:{tenant}:{account}"),
                            title: format!("{} refused an account's token", message.platform),
                            detail: format!(
                                "tenant {tenant}, account {account} needs to be reconnected"
                            ),
                        })
                        .await;
                }
                self.alerter
                    .failed_publish(tenant.as_str(), e.message())
                    .await;
            }
            Attempted::GaveUp { error, .. } if dead_lettered => {
                self.alerter
                    .failed_publish(tenant.as_str(), error.message())
                    .await;
            }
            _ => {}
        }
        for change in changes {
            if let Err(e) = self.store.update_breaker(tenant, account, change).await {
                tracing::warn!(error = %e, "updating the account's breaker failed");
            }
        }
    }

    pub(super) async fn apply_signal(
        &self,
        platform: Platform,
        signal: &RateSignal,
        now: OffsetDateTime,
        changes: &mut Vec<BreakerChange>,
    ) {
        if signal.remaining == Some(0) {
            let wait = signal.reset_after.unwrap_or(Duration::from_secs(60));
            changes.push(BreakerChange::BlockUntil(now + wait));
        }
        let limits = &self.config.limits;
        if signal
            .app_usage_percent
            .is_some_and(|p| p >= limits.app_usage_ceiling)
        {
            let until = now + limits.app_usage_cooldown;
            tracing::warn!(%platform, "the platform app's usage is near its limit; holding calls back");
            if let Err(e) = self.limiter.block_app(platform, until).await {
                tracing::warn!(error = %e, "blocking the platform app failed");
            }
        }
    }
}

/// The outcome's counter; for a final one the attempts it took, and for a publication how
/// late it came after `scheduled_at`.
fn record_metrics(
    platform: Platform,
    outcome: &VariantOutcome,
    attempted: &Attempted,
    scheduled_at: OffsetDateTime,
    attempts: u32,
) {
    let error = match outcome {
        VariantOutcome::Published { .. } => "none",
        VariantOutcome::Failed(e)
        | VariantOutcome::Retrying(e)
        | VariantOutcome::DeadLettered(e)
        | VariantOutcome::Unknown(e) => e.kind.as_str(),
    };
    crate::metrics::publish_outcome(platform, outcome_name(outcome, attempted), error);
    match outcome {
        VariantOutcome::Published { at, step, .. } => {
            if *step == 0 {
                crate::metrics::publish_lateness(platform, *at - scheduled_at);
            }
            crate::metrics::publish_attempts(platform, attempts);
        }
        VariantOutcome::Failed(_) | VariantOutcome::DeadLettered(_) => {
            crate::metrics::publish_attempts(platform, attempts);
        }
        VariantOutcome::Retrying(_) | VariantOutcome::Unknown(_) => {}
    }
}
