//! Settling a publish delivery: once [`PublishService`](crate::publishing::publish::PublishService) has
//! decided a record's [`Disposition`], this decides what happens to the queue message and which
//! outbound event announces the fact. The publisher function and the simulation both call
//! [`settle`]; the queue is reached only through the [`MessageActions`] port and the outbound
//! webhooks only through [`OutcomeEvents`], so no AWS type appears here.
//!
//! | disposition           | the message                                     | kept by SQS? |
//! |-----------------------|-------------------------------------------------|--------------|
//! | `Done`                | -                                               | no (deleted) |
//! | `RetryAfter(d)`       | visible again after d (s, rounded up)           | yes          |
//! |   ... on its last-but-one receive | a fresh copy, delayed d, carries its failures | no |
//! | `Defer { d, copy }`   | `copy` sent, delayed d                          | no           |
//! | `Fail`                | -                                               | yes (as is)  |
//! | `DeadLetter`          | visible at once (SQS's redrive moves it)        | yes          |
//! | `MoveToDeadLetter(r)` | sent to the DLQ with r                          | no           |
//!
//! Why the last-but-one receive is special: SQS's redrive moves a message received
//! `maxReceiveCount` times whatever that last receive did, so a message that keeps its last
//! receive for a planned retry can reach the DLQ without Herald deciding so (an invocation that
//! dies on that receive, or a deferral whose copy cannot be sent, leaves a variant `retrying`
//! with its message dead-lettered). Herald's own count (`PublishMessage::failures`) decides the
//! DLQ instead; SQS's redrive stays the backstop for a copy that can never be settled.
//!
//! A queue call that fails keeps the message (it comes back; nothing is lost). A deferral whose
//! copy cannot be sent on the message's last receive tries again first: keeping it there would
//! let the redrive move it, and a deferral must never reach a DLQ.
//!
//! This module never reads the environment and never fails its caller.

use crate::StoreError;
use crate::clock::Clock;
use crate::outbound::{EventType, OutboundEvent, OutboundEvents};
use crate::ports::PublishMessage;
use crate::publishing::publish::{Delivery, Disposition, Done};
use crate::publishing::reconcile::ReconcileReport;
use async_trait::async_trait;
use std::time::Duration;
use time::OffsetDateTime;

/// What the publisher can do with one message it received (the port of one SQS record).
#[async_trait]
pub trait MessageActions: Send + Sync {
    /// Makes this message visible again after `seconds` (0: at once).
    async fn make_visible_in(&self, seconds: u32) -> Result<(), StoreError>;
    /// Sends `copy` as a fresh message, visible after `delay` (at most SQS's 15 minutes).
    async fn send_delayed(&self, copy: &PublishMessage, delay: Duration) -> Result<(), StoreError>;
    /// Moves `message` to the dead-letter queue, with the reason a person reads there.
    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError>;
}

/// Where the facts a publish or a reconciliation commits are announced (outbound webhooks).
/// Never fails the caller: the fact is committed already.
#[async_trait]
pub trait OutcomeEvents: Send + Sync {
    async fn emit(&self, event: &OutboundEvent, correlation_id: &str);
}

#[async_trait]
impl OutcomeEvents for OutboundEvents {
    async fn emit(&self, event: &OutboundEvent, correlation_id: &str) {
        OutboundEvents::emit(self, event, correlation_id).await;
    }
}

/// What settling needs besides the record: its queue actions, the outbound events (`None`:
/// none are emitted), the clock, and the queue's redrive limit.
#[derive(Clone, Copy)]
pub struct SettlePorts<'a> {
    pub actions: &'a dyn MessageActions,
    pub events: Option<&'a dyn OutcomeEvents>,
    pub clock: &'a dyn Clock,
    /// The queue's redrive `maxReceiveCount`.
    pub max_receive_count: u32,
}

impl std::fmt::Debug for SettlePorts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettlePorts")
            .field("events", &self.events.is_some())
            .field("max_receive_count", &self.max_receive_count)
            .finish_non_exhaustive()
    }
}

/// How one received message was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Published, failed for good, or a duplicate.
    Done,
    /// Held back: a fresh delayed copy carries it on.
    Deferred,
    /// A real failure, retried by SQS: visible again after its delay.
    Retrying,
    /// A real failure on the message's last-but-one receive, retried in a fresh delayed copy
    /// that carries its failures.
    CarriedOver,
    /// Real failures used every delivery: Herald moved it to the DLQ.
    DeadLettered,
    /// Real failures used every delivery on its last receive: left for SQS's redrive.
    Redrive,
    /// The store failed before anything was decided: left as it is.
    Unsettled,
    /// The queue call that carries out a deferral or a move failed: kept, so it comes back.
    ActionFailed,
}

impl Settled {
    /// Whether SQS must keep the message (a `batchItemFailures` entry); otherwise the event
    /// source mapping deletes it.
    pub fn keeps_message(self) -> bool {
        !matches!(
            self,
            Settled::Done | Settled::Deferred | Settled::CarriedOver | Settled::DeadLettered
        )
    }
}

/// Tries of a deferral's copy on the message's last receive, and the pause before each retry.
const LAST_RECEIVE_SENDS: u32 = 3;
const LAST_RECEIVE_PAUSE: Duration = Duration::from_millis(200);

/// Carries out one record's disposition: announces the fact it commits, then acts on the
/// message. Returns how it was settled; [`Settled::keeps_message`] says what SQS must keep.
pub async fn settle(
    ports: SettlePorts<'_>,
    message: &PublishMessage,
    delivery: Delivery,
    disposition: Disposition,
) -> Settled {
    if let (Some(events), Some(event)) = (
        ports.events,
        disposition_event(message, &disposition, ports.clock.now()),
    ) {
        events.emit(&event, &message.correlation_id).await;
    }
    let actions = ports.actions;
    match disposition {
        Disposition::Done(done) => {
            tracing::info!(outcome = ?done, "record done");
            Settled::Done
        }
        Disposition::RetryAfter(delay) if delivery.receive_count + 1 >= ports.max_receive_count => {
            carry_over(actions, message, delivery, delay).await
        }
        Disposition::RetryAfter(delay) => {
            make_visible_in(actions, seconds(delay)).await;
            tracing::info!(retry_in_seconds = seconds(delay), "will retry");
            Settled::Retrying
        }
        Disposition::Defer { delay, copy } => {
            let last = delivery.receive_count >= ports.max_receive_count;
            defer(ports, &copy, delay, last).await
        }
        Disposition::DeadLetter => {
            make_visible_in(actions, 0).await;
            tracing::warn!("deliveries exhausted; SQS moves the message to the DLQ");
            Settled::Redrive
        }
        Disposition::MoveToDeadLetter(reason) => {
            match actions.dead_letter(message, &reason).await {
                Ok(()) => {
                    tracing::warn!("deliveries exhausted; moved to the DLQ");
                    Settled::DeadLettered
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not move the message to the DLQ; keeping it");
                    Settled::ActionFailed
                }
            }
        }
        Disposition::Fail => Settled::Unsettled,
    }
}

/// A real failure on the last-but-one receive: the retry goes out as a fresh copy carrying
/// every receive of this one as a failure, so SQS's count restarts and Herald's decides the
/// DLQ. If the copy cannot be sent, SQS retries this one as usual (one receive is left).
async fn carry_over(
    actions: &dyn MessageActions,
    message: &PublishMessage,
    delivery: Delivery,
    delay: Duration,
) -> Settled {
    let mut copy = message.clone();
    copy.failures = message.failures.saturating_add(delivery.receive_count);
    match actions.send_delayed(&copy, delay).await {
        Ok(()) => {
            tracing::info!(
                retry_in_seconds = seconds(delay),
                failures = copy.failures,
                "will retry in a fresh copy"
            );
            Settled::CarriedOver
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not send the retry's copy; SQS retries this one");
            make_visible_in(actions, seconds(delay)).await;
            Settled::Retrying
        }
    }
}

/// A deferral: a fresh copy, so the wait does not count toward the DLQ. If it cannot be sent,
/// this one is kept (it then counts, but nothing is lost) unless this was its last receive,
/// where keeping it would let SQS's redrive move it: there the send is tried again first.
async fn defer(
    ports: SettlePorts<'_>,
    copy: &PublishMessage,
    delay: Duration,
    last_receive: bool,
) -> Settled {
    let tries = if last_receive { LAST_RECEIVE_SENDS } else { 1 };
    let mut pause = LAST_RECEIVE_PAUSE;
    for attempt in 1..=tries {
        if attempt > 1 {
            ports.clock.sleep(pause).await;
            pause *= 2;
        }
        match ports.actions.send_delayed(copy, delay).await {
            Ok(()) => {
                tracing::info!(deferred_seconds = seconds(delay), "deferred");
                return Settled::Deferred;
            }
            Err(e) if attempt < tries => {
                tracing::warn!(error = %e, attempt, "could not defer on the last receive; trying again");
            }
            Err(e) if last_receive => {
                tracing::error!(error = %e, "could not defer on the message's last receive; keeping it, and SQS's redrive will move it to the DLQ");
            }
            Err(e) => tracing::warn!(error = %e, "could not defer; keeping the message"),
        }
    }
    make_visible_in(ports.actions, seconds(delay)).await;
    Settled::ActionFailed
}

async fn make_visible_in(actions: &dyn MessageActions, seconds: u32) {
    if let Err(e) = actions.make_visible_in(seconds).await {
        tracing::warn!(error = %e, "could not change the message's visibility; the queue's timeout applies");
    }
}

/// Whole seconds, rounded up (SQS's visibility and delay unit).
pub fn seconds(d: Duration) -> u32 {
    u32::try_from(d.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
}

/// The outbound event for a disposition that records a fact: published (or adopted), failed
/// for good, or dead-lettered. The disposition is decided after the outcome's write, so the
/// fact is committed; a crash between that write and the send loses the event (at most once
/// there). The event id is derived from the fact, so a redelivered copy dedupes at the receiver.
pub fn disposition_event(
    message: &PublishMessage,
    disposition: &Disposition,
    now: OffsetDateTime,
) -> Option<OutboundEvent> {
    let event_type = match disposition {
        Disposition::Done(Done::Published | Done::Adopted) => EventType::PostPublished,
        Disposition::Done(Done::Failed) => EventType::PostFailed,
        Disposition::DeadLetter | Disposition::MoveToDeadLetter(_) => EventType::DeadLetterAdded,
        _ => return None,
    };
    let mut data = serde_json::json!({
        "post_id": message.post_id,
        "account_id": message.account_id,
        "platform": message.platform.as_str(),
    });
    if event_type == EventType::DeadLetterAdded {
        data["source"] = "publish".into();
    }
    Some(OutboundEvent::new(
        event_type,
        message.tenant_id.clone(),
        &[message.post_id.as_str(), message.account_id.as_str()],
        now,
        data,
    ))
}

/// `post.unknown_resolved` for each stuck variant a reconciler run resolved (its outcome is
/// committed by then), and `dead_letter.added` for each it gave up on. The event id names the attempt count, so a variant resolved again after
/// another stuck attempt is a new event.
pub async fn announce_resolved(
    events: &dyn OutcomeEvents,
    report: &ReconcileReport,
    now: OffsetDateTime,
) {
    for r in &report.resolved {
        let event = OutboundEvent::new(
            EventType::PostUnknownResolved,
            r.variant.tenant_id.clone(),
            &[
                r.variant.post_id.as_str(),
                r.variant.account_id.as_str(),
                &r.attempts.to_string(),
            ],
            now,
            serde_json::json!({
                "post_id": r.variant.post_id,
                "account_id": r.variant.account_id,
                "platform": r.platform.as_str(),
                "status": r.status,
                "attempts": r.attempts,
            }),
        );
        events.emit(&event, &r.correlation_id).await;
        // Given up on: its message went to the DLQ, as a publisher's dead-lettering announces.
        if r.status == "dead_lettered" {
            let event = OutboundEvent::new(
                EventType::DeadLetterAdded,
                r.variant.tenant_id.clone(),
                // With the attempts, as above: given up on again after a redrive is news.
                &[
                    r.variant.post_id.as_str(),
                    r.variant.account_id.as_str(),
                    &r.attempts.to_string(),
                ],
                now,
                serde_json::json!({
                    "post_id": r.variant.post_id,
                    "account_id": r.variant.account_id,
                    "platform": r.platform.as_str(),
                    "source": "publish",
                }),
            );
            events.emit(&event, &r.correlation_id).await;
        }
    }
}

#[cfg(test)]
mod tests;
