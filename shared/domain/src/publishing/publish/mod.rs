//! The publisher: one queue message in, at most one platform post out.
//!
//! 1. **Claim** in one atomic write that also checks the tenant's pause, counts the account's
//!    rate window and asks the account's circuit breaker. A duplicate delivery loses the claim
//!    and publishes nothing; a pause, a full window or an open circuit *defers* the message
//!    (a fresh delayed copy), which never counts toward the dead-letter queue.
//! 2. **Load** the claimed post and the account (its token).
//! 3. **Publish**, retrying transient failures in place with exponential backoff and full
//!    jitter while the invocation has time. An ambiguous failure (sent, no answer) is never
//!    retried blindly: the account's posts are looked up first and a match is adopted.
//! 4. **Record** the outcome with a write valid only for this attempt (a success also closes
//!    the account's breaker in it), then count a failure against the breaker.
//!
//! Only real failures count toward the DLQ: `message.failures` (earlier copies) plus this
//! copy's receive count. Permanent and auth errors end `failed` with the platform's reason.

use crate::alerts::Alerter;
use crate::audit::ChainHead;
use crate::clock::{Clock, Entropy};
use crate::model::{AccountStatus, Platform, VariantError};
use crate::ports::{
    AppLimiter, BreakerGate, Loaded, MediaObjects, PublishMessage, PublishStore, VariantOutcome,
};
use crate::publishing::gates::{BreakerPolicy, RateLimits};
use crate::publishing::platform::{PlatformClient, PlatformError, PublishedPost};
use crate::secrets::token_refresh::{Freshness, TokenRefresh};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

mod attempt;
mod claim;
mod finish;
#[cfg(test)]
mod tests;

/// Exponential backoff with full jitter: attempt `n` waits a uniform time in
/// `[0, min(cap, base * factor^(n-1))]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub factor: u32,
    pub cap: Duration,
}

impl Backoff {
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = self
            .factor
            .max(1)
            .saturating_pow(attempt.saturating_sub(1).min(30));
        self.base.saturating_mul(exp).min(self.cap)
    }

    pub fn delay(&self, attempt: u32, entropy: &dyn Entropy) -> Duration {
        self.ceiling(attempt).mul_f64(entropy.fraction())
    }
}

#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// The queue's redrive `maxReceiveCount`: real failed deliveries before the DLQ.
    pub max_receive_count: u32,
    /// Platform calls within one delivery, spaced by `retry`.
    pub max_attempts: u32,
    /// Between calls within one delivery (base 500 ms, factor 2, cap 60 s).
    pub retry: Backoff,
    /// Between deliveries after a delivery's attempts are used up (SQS visibility; seconds).
    pub redelivery: Backoff,
    /// No call starts unless it can finish (the platform timeout) before the deadline.
    pub platform_timeout: Duration,
    pub limits: RateLimits,
    pub breaker: BreakerPolicy,
    /// How often a paused variant checks whether its pause was lifted.
    pub pause_recheck: Duration,
    /// How far back a lookup searches for a post whose answer was lost.
    pub lookup_window: time::Duration,
    /// Wait before looking a post up, so the platform has indexed it.
    pub lookup_delay: Duration,
    /// How long a claim holds a variant before the reconciler may resolve it: longer than
    /// the function's timeout.
    pub claim_lease: time::Duration,
    /// The time one invocation has to publish (its timeout less the margin kept for recording
    /// the outcome). Media whose uploads cannot fit in it fail at once with a reason, rather
    /// than waiting delivery after delivery for time that never comes. `None`: no limit.
    pub invocation_budget: Option<Duration>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            max_receive_count: 5,
            max_attempts: 6,
            retry: Backoff {
                base: Duration::from_millis(500),
                factor: 2,
                cap: Duration::from_secs(60),
            },
            redelivery: Backoff {
                base: Duration::from_secs(30),
                factor: 2,
                cap: Duration::from_secs(900),
            },
            platform_timeout: Duration::from_secs(10),
            limits: RateLimits::default(),
            breaker: BreakerPolicy::default(),
            pause_recheck: Duration::from_secs(60),
            lookup_window: time::Duration::hours(24),
            lookup_delay: Duration::from_secs(2),
            claim_lease: time::Duration::minutes(2),
            invocation_budget: None,
        }
    }
}

/// One delivery of a message, as the queue reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// SQS's `ApproximateReceiveCount` for this copy (1 on the first delivery).
    pub receive_count: u32,
    /// The invocation must be done by then (the Lambda deadline, less a margin).
    pub deadline: OffsetDateTime,
}

/// What to do with the queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Delete it: published, failed for good, or a duplicate.
    Done(Done),
    /// A real failure: leave it and make it visible again after this long (counts toward
    /// the DLQ through SQS's receive count).
    RetryAfter(Duration),
    /// Held back (pause, rate limit, open circuit): send `copy` (a fresh message carrying
    /// this one's real failures) visible after `delay`, then delete this one, so the wait
    /// never counts toward the DLQ.
    Defer {
        delay: Duration,
        copy: PublishMessage,
    },
    /// The store failed before anything was decided: leave it as it is.
    Fail,
    /// Real failures used every delivery and this copy's receive count is at the limit:
    /// make it visible at once so SQS's redrive moves it to the DLQ.
    DeadLetter,
    /// Real failures used every delivery, counting earlier copies: move it to the DLQ now
    /// (SQS's count restarted with the copy, so its redrive would not).
    MoveToDeadLetter(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Published,
    /// Found on the platform after an ambiguous attempt and adopted.
    Adopted,
    Failed,
    Duplicate,
}

#[derive(Clone)]
pub struct PublishService {
    pub store: Arc<dyn PublishStore>,
    pub limiter: Arc<dyn AppLimiter>,
    pub platform: Arc<dyn PlatformClient>,
    /// The media bucket: a variant's media are read from it for each platform call.
    pub media: Arc<dyn MediaObjects>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub alerter: Alerter,
    pub config: PublishConfig,
    /// Refreshes access tokens that expire soon before they are used (`None`: tokens are
    /// used as stored).
    pub tokens: Option<Arc<TokenRefresh>>,
}

crate::debug_fields!(PublishService, config);

/// The claim a delivery holds, carried to the outcome.
struct Attempt<'a> {
    id: &'a str,
    delivery: Delivery,
    /// When the post was due, and the variant's attempts counting this one (for metrics).
    scheduled_at: OffsetDateTime,
    attempts: u32,
    /// The claim took the account's half-open probe.
    probe: bool,
    audit_head: &'a ChainHead,
    /// The variant's step (0: the post; then its follow-ups), and whether others follow it.
    step: u32,
    more: bool,
}

/// The audit action's last word: `publish.published`, `publish.adopted`, ...
fn outcome_name(outcome: &VariantOutcome, attempted: &Attempted) -> &'static str {
    match (outcome, attempted) {
        (_, Attempted::Published(_, Done::Adopted)) => "adopted",
        (VariantOutcome::Published { .. }, _) => "published",
        (VariantOutcome::Failed(_), _) => "failed",
        (VariantOutcome::Retrying(_), _) => "retrying",
        (VariantOutcome::DeadLettered(_), _) => "dead_lettered",
        (VariantOutcome::Unknown(_), _) => "unknown",
    }
}

/// What the audit record says the outcome was (no text, no token: ids, status, error).
pub fn outcome_json(outcome: &VariantOutcome, delivery: Delivery) -> serde_json::Value {
    let error = |e: &VariantError| serde_json::json!({"kind": e.kind.as_str(), "message": e.message, "platform_code": e.platform_code});
    let mut v = match outcome {
        VariantOutcome::Published {
            platform_post_id,
            step: 0,
            ..
        } => serde_json::json!({"status": "published", "platform_post_id": platform_post_id}),
        VariantOutcome::Published {
            platform_post_id,
            step,
            ..
        } => {
            serde_json::json!({"status": "published", "step": step, "platform_post_id": platform_post_id})
        }
        VariantOutcome::Failed(e) => serde_json::json!({"status": "failed", "error": error(e)}),
        VariantOutcome::Retrying(e) => serde_json::json!({"status": "retrying", "error": error(e)}),
        VariantOutcome::DeadLettered(e) => {
            serde_json::json!({"status": "dead_lettered", "error": error(e)})
        }
        VariantOutcome::Unknown(e) => serde_json::json!({"status": "unknown", "error": error(e)}),
    };
    v["receive_count"] = delivery.receive_count.into();
    v
}

/// How one delivery's attempts ended, before it is recorded.
enum Attempted {
    Published(PublishedPost, Done),
    Failed(PlatformError),
    /// Ran out of attempts, time or (after an open circuit) patience; `lookup` when the last
    /// failure may have created the post.
    GaveUp {
        error: PlatformError,
        lookup: bool,
    },
    RateLimited(PlatformError, Duration),
    /// Held back before any platform call (another instance is refreshing the account's
    /// token): a deferral, which neither counts toward the DLQ nor touches the breaker.
    /// `lookup`: the variant still has to be looked up first (kept for the next attempt).
    Deferred(PlatformError, Duration, bool),
    /// A resumable upload moved on and kept its progress, and goes on in a fresh delivery at
    /// once: no failure counted, its earlier ones forgiven (bounded by the file's size, since
    /// each such delivery must move it on). `lookup` as for `Deferred`.
    Continues(PlatformError, bool),
}

impl PublishService {
    /// A batch: the platform apps' budgets are reserved once per platform, then every record
    /// is handled concurrently. Dispositions come back in the records' order.
    pub async fn handle_batch(
        &self,
        records: &[(PublishMessage, Delivery)],
        concurrency: usize,
    ) -> Vec<Disposition> {
        let now = self.clock.now();
        // A continuation's post took its share of the app's budget when first claimed.
        let mut wanted: BTreeMap<Platform, u32> = BTreeMap::new();
        for (m, _) in records.iter().filter(|(m, _)| !m.continues_upload) {
            *wanted.entry(m.platform).or_default() += 1;
        }
        // Per platform: how many records may go now, and when the rest may come back.
        let mut budget: BTreeMap<Platform, (u32, Option<OffsetDateTime>)> = BTreeMap::new();
        for (platform, n) in wanted {
            let grant = match self.config.limits.app_slot(platform, now) {
                None => (n, None),
                Some(slot) => match self.limiter.reserve(&slot, n, now).await {
                    Ok(r) => (r.granted, r.retry_at.or(Some(slot.ends_at))),
                    Err(e) => {
                        // Without the shared budget we cannot know; hold back briefly.
                        tracing::warn!(error = %e, %platform, "reserving the app's rate budget failed");
                        (0, Some(now + time::Duration::seconds(5)))
                    }
                },
            };
            budget.insert(platform, grant);
        }
        let admitted: Vec<Result<(), OffsetDateTime>> = records
            .iter()
            .map(|(m, _)| {
                if m.continues_upload {
                    return Ok(());
                }
                let (left, retry_at) = budget.entry(m.platform).or_insert((0, Some(now)));
                if *left > 0 {
                    *left -= 1;
                    Ok(())
                } else {
                    Err(retry_at.unwrap_or(now))
                }
            })
            .collect();
        let mut out: Vec<(usize, Disposition)> =
            futures::stream::iter(records.iter().zip(admitted).enumerate())
                .map(|(i, ((message, delivery), admitted))| {
                    // Every line logged for this record carries its correlation id.
                    let span = tracing::info_span!(
                        "publish",
                        correlation_id = %message.correlation_id,
                        post_id = %message.post_id,
                        account_id = %message.account_id,
                        receive_count = delivery.receive_count,
                    );
                    async move {
                        let d = match admitted {
                            Ok(()) => self.handle(message, *delivery).await,
                            Err(at) => {
                                tracing::info!("the platform app's rate budget is spent; deferred");
                                crate::metrics::publish_deferred(message.platform, "app_budget");
                                defer(message, *delivery, self.wait_until(at))
                            }
                        };
                        (i, d)
                    }
                    .instrument(span)
                })
                .buffer_unordered(concurrency.max(1))
                .collect()
                .await;
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, d)| d).collect()
    }

    pub async fn handle(&self, message: &PublishMessage, delivery: Delivery) -> Disposition {
        match self.handle_delivery(message, delivery).await {
            // The store failed on the last delivery SQS allows: rather than let SQS dead-letter
            // a message whose variant was never told, carry the count in a fresh copy.
            Disposition::Fail if delivery.receive_count >= self.config.max_receive_count => {
                let mut copy = message.clone();
                copy.failures = message.failures.saturating_add(delivery.receive_count);
                let delay = self
                    .config
                    .redelivery
                    .delay(copy.failures, &*self.entropy)
                    .max(Duration::from_secs(1));
                crate::metrics::publish_deferred(message.platform, "store_failed");
                Disposition::Defer { delay, copy }
            }
            other => other,
        }
    }

    /// The variant's steps, one claim each: the post, then each follow-up (thread part or first
    /// comment) as soon as the one before it is recorded, while the invocation has time.
    async fn handle_delivery(&self, message: &PublishMessage, delivery: Delivery) -> Disposition {
        let mut message = std::borrow::Cow::Borrowed(message);
        loop {
            let (disposition, next) = self.handle_step(&message, delivery).await;
            if !next {
                return disposition;
            }
            // A continued upload's step is done: the next step's claims count as any do.
            if message.continues_upload {
                message.to_mut().continues_upload = false;
            }
            if !self.has_time(delivery, Duration::ZERO) {
                // The next step is `continuing` (claimable): a fresh message, with its own
                // count of failures (and its own claims counted), takes it.
                let mut copy = message.into_owned();
                copy.failures = 0;
                crate::metrics::publish_deferred(copy.platform, "next_step");
                return Disposition::Defer {
                    delay: Duration::from_secs(1),
                    copy,
                };
            }
        }
    }

    /// One claim, attempt and outcome. `true` with it when the step was published and the
    /// variant has another.
    async fn handle_step(
        &self,
        message: &PublishMessage,
        delivery: Delivery,
    ) -> (Disposition, bool) {
        let variant = message.variant();
        let attempt_id = self.entropy.token();
        let probe = match self.claim(message, &variant, &attempt_id, delivery).await {
            Ok(gate) => matches!(gate, BreakerGate::Probe { .. }),
            Err(held) => return (held, false),
        };
        let Loaded {
            post,
            account,
            audit_head,
        } = match self.store.load_for_publish(&variant).await {
            Ok(loaded) => loaded,
            Err(e) => {
                // Claimed but unread: the variant stays `publishing` under this attempt and
                // the reconciler resolves it past its lease (nothing was sent).
                tracing::warn!(error = %e, "loading the claimed post failed");
                return (Disposition::Fail, false);
            }
        };
        let lookup_first = post
            .variants
            .get(&message.account_id)
            .is_some_and(|v| v.lookup);
        let attempted = match account {
            None => Attempted::Failed(PlatformError::Permanent {
                message: "the account was disconnected; reconnect it and schedule the post again"
                    .into(),
                code: None,
            }),
            // The post may already be live and cannot be looked up without a working token:
            // keep it unknown (retried, then dead-lettered with this reason) rather than
            // `failed`, which would invite scheduling it twice.
            Some(a) if a.status != AccountStatus::Active && lookup_first => Attempted::GaveUp {
                error: PlatformError::Auth {
                    message: "the post may already be live, and the account's token was refused: reconnect the account so Herald can look it up".into(),
                    code: None,
                },
                lookup: true,
            },
            Some(a) if a.status != AccountStatus::Active => {
                Attempted::Failed(PlatformError::Auth {
                    message:
                        "the account's token was refused by the platform; reconnect the account"
                            .into(),
                    code: None,
                })
            }
            Some(account) => match &self.tokens {
                None => {
                    self.attempt(
                        message,
                        &post,
                        &account,
                        lookup_first,
                        delivery,
                        &attempt_id,
                    )
                    .await
                }
                Some(tokens) => match tokens.ensure_fresh(account).await {
                    Freshness::Ready(account) if account.status == AccountStatus::Active => {
                        self.attempt(
                            message,
                            &post,
                            &account,
                            lookup_first,
                            delivery,
                            &attempt_id,
                        )
                        .await
                    }
                    Freshness::Ready(_) => Attempted::Failed(PlatformError::Auth {
                        message: "the account's authorisation was lost while its token was refreshed; reconnect the account".into(),
                        code: None,
                    }),
                    Freshness::InFlight(wait) => Attempted::Deferred(
                        PlatformError::Transient {
                            message: "waiting for the account's token to be refreshed".into(),
                            code: None,
                            retry_after: Some(wait),
                        },
                        wait,
                        lookup_first,
                    ),
                    // The post may be live already: keep it unknown rather than failed.
                    Freshness::Revoked(reason) if lookup_first => Attempted::GaveUp {
                        error: PlatformError::Auth {
                            message: format!(
                                "{reason}; the post may already be live, so Herald looks it up once it is"
                            ),
                            code: Some("invalid_grant".into()),
                        },
                        lookup: true,
                    },
                    Freshness::Revoked(reason) => Attempted::Failed(PlatformError::Auth {
                        message: reason,
                        code: Some("invalid_grant".into()),
                    }),
                    Freshness::Transient(why) => Attempted::GaveUp {
                        error: PlatformError::Transient {
                            message: why,
                            code: None,
                            retry_after: None,
                        },
                        lookup: lookup_first,
                    },
                },
            },
        };
        let claimed = post.variants.get(&message.account_id);
        let step = claimed.map_or(0, |v| v.step);
        let more = (step as usize) < post.follow_ups().len();
        let attempt = Attempt {
            id: &attempt_id,
            delivery,
            scheduled_at: post.scheduled_at,
            attempts: claimed.map_or(1, |v| v.attempts),
            probe,
            audit_head: &audit_head,
            step,
            more,
        };
        let disposition = self.finish(message, &variant, attempt, attempted).await;
        let next = more
            && matches!(
                disposition,
                Disposition::Done(Done::Published | Done::Adopted)
            );
        (disposition, next)
    }

    fn has_time(&self, delivery: Delivery, wait: Duration) -> bool {
        let needed = wait + self.config.platform_timeout;
        self.clock.now() + needed <= delivery.deadline
    }

    fn wait_until(&self, at: OffsetDateTime) -> Duration {
        let wait = at - self.clock.now();
        Duration::try_from(wait)
            .unwrap_or_default()
            .max(Duration::from_secs(1))
    }
}

/// The deferral of a delivery: every earlier receive of this copy was a real failure (a
/// deferral deletes its copy), so the fresh copy carries them over.
fn defer(message: &PublishMessage, delivery: Delivery, delay: Duration) -> Disposition {
    let mut copy = message.clone();
    copy.failures = message
        .failures
        .saturating_add(delivery.receive_count.saturating_sub(1));
    Disposition::Defer { delay, copy }
}

/// The fresh copy that carries a resumable upload on: no failures, and marked so that its
/// claims count neither as another post in the rate windows nor as another attempt.
fn continuation(message: &PublishMessage) -> Disposition {
    let mut copy = message.clone();
    copy.failures = 0;
    copy.continues_upload = true;
    Disposition::Defer {
        delay: Duration::ZERO,
        copy,
    }
}

/// Up to `max_ms` of random spread, so contenders do not come back in step.
fn jitter(entropy: &dyn Entropy, max_ms: u64) -> Duration {
    Duration::from_millis((entropy.fraction() * max_ms as f64) as u64)
}
