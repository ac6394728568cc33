//! Step 1: the gated claim (pause, rate window, breaker) in one conditional write.

use super::*;
use crate::ports::{ClaimGate, ClaimRejected, VariantRef};
use crate::publishing::gates::Admission;

impl PublishService {
    /// The gated claim, with the half-open probe when the breaker allows one; says which breaker
    /// gate the claim passed. `Err` carries what to do with the message when it did not happen.
    pub(super) async fn claim(
        &self,
        message: &PublishMessage,
        variant: &VariantRef,
        attempt_id: &str,
        delivery: Delivery,
    ) -> Result<BreakerGate, Disposition> {
        let now = self.clock.now();
        let mut gate = ClaimGate {
            platform: message.platform,
            now,
            // A continuation's step took its slot when it was first claimed.
            account_window: match message.continues_upload {
                true => None,
                false => self.config.limits.account_slot(
                    message.platform,
                    &message.tenant_id,
                    &message.account_id,
                    now,
                ),
            },
            breaker: BreakerGate::Closed,
            lease_until: now + self.config.claim_lease,
            counts_attempt: !message.continues_upload,
        };
        // At most: the plain claim, then once more if the breaker admits a probe (or was
        // closed again in between).
        for _ in 0..2 {
            let rejected = match self
                .store
                .claim_for_publish(variant, attempt_id, &gate)
                .await
            {
                Ok(()) => return Ok(gate.breaker),
                Err(r) => r,
            };
            let (reason, wait) = match rejected {
                ClaimRejected::Held { until } => {
                    // A duplicate delivery while another attempt holds the variant: that
                    // attempt may still need its message, so this copy waits out the lease.
                    tracing::info!(
                        "another attempt holds the variant; deferred until its lease ends"
                    );
                    (
                        "lease_held",
                        self.wait_until(until) + Duration::from_secs(1),
                    )
                }
                ClaimRejected::NotClaimable => {
                    tracing::info!(
                        "not claimable (duplicate delivery, cancelled, or held elsewhere); nothing to do"
                    );
                    return Err(Disposition::Done(Done::Duplicate));
                }
                ClaimRejected::Store(e) => {
                    tracing::warn!(error = %e, "the claim failed");
                    return Err(Disposition::Fail);
                }
                ClaimRejected::Paused { until } => {
                    tracing::info!("publishing is paused for this platform; deferred");
                    (
                        "paused",
                        self.wait_until(until).min(self.config.pause_recheck),
                    )
                }
                ClaimRejected::RateLimited { until } => {
                    tracing::info!("the account's rate window is full; deferred");
                    ("rate_window", self.wait_until(until))
                }
                ClaimRejected::Contended => (
                    "contended",
                    Duration::from_millis(500) + jitter(&*self.entropy, 1500),
                ),
                ClaimRejected::Breaker(breaker) => match breaker.admission(now) {
                    Admission::WaitUntil(at) => {
                        tracing::info!(
                            state = breaker.state.as_str(),
                            "the account's circuit is open; deferred"
                        );
                        ("circuit_open", self.wait_until(at))
                    }
                    Admission::Probe if gate.breaker == BreakerGate::Closed => {
                        gate.breaker = BreakerGate::Probe {
                            lease_until: now + self.config.breaker.probe_lease,
                        };
                        continue;
                    }
                    Admission::Pass if gate.breaker == BreakerGate::Closed => continue,
                    // Someone else took the probe, or the breaker moved again: come back soon.
                    _ => (
                        "circuit_busy",
                        Duration::from_secs(1) + jitter(&*self.entropy, 4000),
                    ),
                },
            };
            crate::metrics::publish_deferred(message.platform, reason);
            return Err(defer(message, delivery, wait));
        }
        crate::metrics::publish_deferred(message.platform, "circuit_busy");
        Err(defer(message, delivery, Duration::from_secs(1)))
    }
}
