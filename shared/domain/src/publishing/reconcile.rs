//! The reconciler: finds variants a publisher claimed but never settled (the invocation
//! died, or the outcome write failed) and resolves each, so nothing stays `publishing`.
//!
//! A claim marks its post "in flight" until the claim's lease ends. Past it, a variant still
//! `publishing` may or may not have reached the platform, so it is recorded `unknown` (looked
//! up before anything is sent again) and handed back to the publish queue; after too many
//! attempts its message goes to the dead-letter queue and it ends `dead_lettered` with a reason
//! a person can act on (never `failed`: the post may be live, and a redrive looks it up first).
//! Each run leaves a heartbeat the health check reads.

use crate::StoreError;
use crate::alerts::Alerter;
use crate::audit::{AuditEntry, AuditRecord};
use crate::clock::Clock;
use crate::model::{FailureKind, Post, VariantError, VariantStatus};
use crate::ports::{
    AuditLog, HeartbeatStore, PostStore, PublishMessage, PublishQueue, PublishStore, QueueStats,
    ReconcileStore, VariantOutcome, VariantRef, variant_entity,
};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// How long a claim may hold a variant (the publisher's timeout and a margin).
    pub lease: Duration,
    /// Posts looked at per run.
    pub batch: usize,
    /// Claims after which a variant with no confirmed outcome is dead-lettered instead.
    pub max_attempts: u32,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            lease: Duration::minutes(2),
            batch: 100,
            max_attempts: 10,
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    pub posts: usize,
    pub requeued: usize,
    /// Given up after too many claims: their messages went to the dead-letter queue.
    pub dead_lettered: usize,
    pub errors: usize,
    /// The stuck variants this run resolved (committed), for outbound webhooks.
    #[serde(skip)]
    pub resolved: Vec<ResolvedVariant>,
}

/// A stuck variant the reconciler resolved: recorded `unknown` (and handed back to be looked
/// up) or `dead_lettered` after too many attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVariant {
    pub variant: VariantRef,
    pub platform: crate::model::Platform,
    /// `unknown` or `dead_lettered`.
    pub status: &'static str,
    pub attempts: u32,
    pub correlation_id: String,
}

/// The name the reconciler's heartbeat is stored under.
pub const HEARTBEAT: &str = "reconciler";

#[derive(Clone)]
pub struct Reconciler {
    pub store: Arc<dyn ReconcileStore>,
    pub posts: Arc<dyn PostStore>,
    pub outcomes: Arc<dyn PublishStore>,
    pub queue: Arc<dyn PublishQueue>,
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub audit: Arc<dyn AuditLog>,
    pub queues: Arc<dyn QueueStats>,
    pub alerter: Alerter,
    pub clock: Arc<dyn Clock>,
    pub config: ReconcileConfig,
}

crate::debug_fields!(Reconciler, config);

impl Reconciler {
    pub async fn run_once(&self) -> Result<ReconcileReport, StoreError> {
        let now = self.clock.now();
        let mut report = ReconcileReport::default();
        for post_ref in self.store.inflight_posts(now, self.config.batch).await? {
            report.posts += 1;
            let post = match self
                .posts
                .get_post(&post_ref.tenant_id, &post_ref.post_id)
                .await
            {
                Ok(Some(post)) => post,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(post_id = %post_ref.post_id, error = %e, "reading an in-flight post failed");
                    report.errors += 1;
                    continue;
                }
            };
            let span = tracing::info_span!("reconcile", correlation_id = %post.correlation_id, post_id = %post.id);
            self.resolve(&post, now, &mut report).instrument(span).await;
        }
        match self.queues.depths().await {
            Ok((waiting, dead)) => self.alerter.queues(waiting, dead).await,
            Err(e) => tracing::warn!(error = %e, "reading the queues' depths failed"),
        }
        let summary = serde_json::to_string(&report).unwrap_or_default();
        self.heartbeats.beat(HEARTBEAT, now, &summary).await?;
        if report.requeued + report.dead_lettered + report.errors > 0 {
            tracing::warn!(?report, "reconciled stuck variants");
        }
        Ok(report)
    }

    async fn resolve(&self, post: &Post, now: OffsetDateTime, report: &mut ReconcileReport) {
        let mut next_check: Option<OffsetDateTime> = None;
        let mut soonest = |at: OffsetDateTime| {
            next_check = Some(next_check.map_or(at, |t: OffsetDateTime| t.min(at)));
        };
        // The post's version after this run's own writes: the in-flight entry changes only if
        // nothing else (a new claim) wrote the post meanwhile.
        let mut version = post.version;
        for v in post.variants.values() {
            let expires = v.claimed_at.unwrap_or(post.updated_at) + self.config.lease;
            match v.status {
                VariantStatus::Publishing if expires > now => {
                    soonest(expires);
                    continue;
                }
                VariantStatus::Publishing => {}
                // Its message may be gone (a requeue that failed, an answer lost on the last
                // delivery): send one more; a duplicate is harmless, the claim decides.
                VariantStatus::Unknown if expires <= now => {
                    if self.requeue(post, v).await {
                        report.requeued += 1;
                    } else {
                        report.errors += 1;
                        soonest(now);
                    }
                    continue;
                }
                _ => continue,
            }
            let variant = VariantRef {
                tenant_id: post.tenant_id.clone(),
                post_id: post.id.clone(),
                account_id: v.account_id.clone(),
            };
            let attempt = v.attempt_id.clone().unwrap_or_default();
            let give_up = v.attempts >= self.config.max_attempts;
            let (outcome, what) = if give_up {
                let error = VariantError {
                    kind: FailureKind::Ambiguous,
                    message: format!(
                        "no confirmed outcome after {} attempts, and the post may be live: check the account (reconnect it if it needs it), then redrive the message from the dead-letter queue; Herald looks the post up before it sends anything",
                        v.attempts
                    ),
                    platform_code: None,
                    at: now,
                };
                (VariantOutcome::DeadLettered(error), "dead_lettered")
            } else {
                let error = VariantError {
                    kind: FailureKind::Ambiguous,
                    message: "the publisher stopped before recording an outcome; the post is looked up on the platform before anything is sent again".into(),
                    platform_code: None,
                    at: now,
                };
                (VariantOutcome::Unknown(error), "requeued")
            };
            let head = match self
                .audit
                .head(&post.tenant_id, &variant_entity(&variant))
                .await
            {
                Ok(head) => head,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the variant's audit chain failed");
                    report.errors += 1;
                    soonest(now);
                    continue;
                }
            };
            let audit = AuditRecord::chain(
                AuditEntry {
                    tenant_id: post.tenant_id.clone(),
                    entity: variant_entity(&variant),
                    action: format!("publish.{what}_by_reconciler"),
                    actor: "system:reconciler".into(),
                    old: Some(serde_json::json!({"status": "publishing", "attempts": v.attempts})),
                    new: Some(serde_json::json!({"status": what_status(give_up)})),
                    ip: None,
                    user_agent: None,
                    at: now,
                },
                &head,
            );
            // A given-up variant's message goes to the DLQ just before its outcome: should
            // the write fail, the next run tries both again, and a second copy there is
            // harmless (the claim decides). Without it, the variant waits for the next run.
            if let VariantOutcome::DeadLettered(error) = &outcome
                && let Err(e) = self
                    .queue
                    .dead_letter(&message_for(post, v), &error.message)
                    .await
            {
                tracing::warn!(account_id = %v.account_id, error = %e, "dead-lettering a stuck variant failed");
                report.errors += 1;
                soonest(now);
                continue;
            }
            // Conditional on the stuck attempt: a publisher that finishes meanwhile wins.
            match self
                .outcomes
                // Either way the post may be live: whatever comes next looks it up first.
                .record_outcome(&variant, &attempt, &outcome, true, &audit, None)
                .await
            {
                Ok(()) => version += 1,
                Err(StoreError::Conflict) => continue,
                Err(e) => {
                    tracing::warn!(account_id = %v.account_id, error = %e, "resolving a stuck variant failed");
                    report.errors += 1;
                    soonest(now);
                    continue;
                }
            }
            report.resolved.push(ResolvedVariant {
                variant: variant.clone(),
                platform: v.platform,
                status: what_status(give_up),
                attempts: v.attempts,
                correlation_id: post.correlation_id.clone(),
            });
            if give_up {
                report.dead_lettered += 1;
            } else if self.requeue(post, v).await {
                report.requeued += 1;
                // Keep watching: if the requeued attempt dies too, look again.
                soonest(now + self.config.lease);
            } else {
                // The variant is `unknown` now; look again soon to send its message.
                report.errors += 1;
                soonest(now);
            }
            tracing::warn!(account_id = %v.account_id, attempts = v.attempts, what, "stuck variant resolved");
        }
        if let Err(e) = self
            .store
            .reschedule_inflight(
                &crate::ports::PostRef {
                    tenant_id: post.tenant_id.clone(),
                    post_id: post.id.clone(),
                },
                next_check,
                version,
            )
            .await
        {
            tracing::warn!(error = %e, "rescheduling the in-flight check failed");
        }
    }

    /// Hands the variant back to the publish queue; false when the send failed.
    async fn requeue(&self, post: &Post, v: &crate::model::Variant) -> bool {
        let message = message_for(post, v);
        match self.queue.send(std::slice::from_ref(&message)).await {
            Ok(results) if results.iter().all(Result::is_ok) => true,
            _ => {
                tracing::warn!(account_id = %v.account_id, "re-enqueueing a stuck variant failed");
                false
            }
        }
    }
}

/// The variant's publish message, as the dispatcher sent it.
fn message_for(post: &Post, v: &crate::model::Variant) -> PublishMessage {
    PublishMessage {
        tenant_id: post.tenant_id.clone(),
        post_id: post.id.clone(),
        account_id: v.account_id.clone(),
        platform: v.platform,
        correlation_id: post.correlation_id.clone(),
        failures: 0,
        continues_upload: false,
    }
}

fn what_status(give_up: bool) -> &'static str {
    if give_up { "dead_lettered" } else { "unknown" }
}
