//! The publish queue and its DLQ, with SQS's semantics as moto implements them:
//!
//! - a receive hides each message for the visibility timeout and bumps its receive count;
//! - the redrive policy moves a message to the DLQ when a receive finds its count already at
//!   `maxReceiveCount` (received five times: moved on the sixth receive attempt);
//! - a delayed send is a fresh message (count 0), invisible until the delay is over;
//! - a delete or visibility change needs the latest receipt handle; an older one deletes
//!   nothing (SQS: "the message might not be deleted") and cannot change visibility.
//!
//! At-least-once delivery is injected here (duplicates): an in-flight message handed out
//! again seconds later, a message enqueued twice by one send, a delete that does not stick.
//!
//! Besides the body each message keeps, for the invariants only, its *lineage*: how every
//! receive of it and of the copies it was deferred from ended. Nothing in the system under
//! test can see it.

use crate::Env;
use crate::faults::{Invocation, Rates};
use crate::ledger::{Ledger, Stats};
use crate::rng::SharedRng;
use crate::vclock::SimClock;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::ports::{PublishMessage, PublishQueue, QueueStats};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;
use time::OffsetDateTime;

/// The template's `VisibilityTimeout`: six times the publisher's timeout.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(180);
/// The template's `PublishMaxReceiveCount`.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// SQS's longest `DelaySeconds`.
const MAX_DELAY_SECONDS: u64 = 900;

/// How one receive of a message ended, as the Lambda model saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Done,
    /// Held back (pause, rate limit, open circuit): a fresh copy was sent and this one deleted.
    Deferred,
    /// A real publish failure (`RetryAfter`, `DeadLetter`, `MoveToDeadLetter`).
    Failed,
    /// The store failed before anything was decided (`Fail`).
    StoreFailed,
    /// The function could not carry out its decision (a delayed send or DLQ move failed).
    ActionFailed,
    Crashed,
    TimedOut,
}

impl Handling {
    /// Deferrals must never count toward the DLQ.
    pub fn is_deferral(self) -> bool {
        self == Handling::Deferred
    }
}

#[derive(Debug, Clone)]
struct Message {
    body: String,
    /// Parsed once at send, for tracing and the invariants.
    message: PublishMessage,
    receive_count: u32,
    visible_at: OffsetDateTime,
    receipt: u64,
    lineage: Vec<Handling>,
}

/// One delivered message, as an SQS record carries it.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: u64,
    pub receipt: u64,
    /// `ApproximateReceiveCount`, this receive included.
    pub receive_count: u32,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqVia {
    /// SQS's redrive policy.
    Redrive,
    /// Herald moved it, with this reason.
    Herald(String),
}

#[derive(Debug, Clone)]
pub struct DlqEntry {
    pub message: PublishMessage,
    pub via: DlqVia,
    pub lineage: Vec<Handling>,
    pub at: OffsetDateTime,
}

#[derive(Debug, Default)]
struct QueueState {
    next_id: u64,
    next_receipt: u64,
    messages: BTreeMap<u64, Message>,
    /// Every message by (visible at, in ns since the epoch; id): the visible ones are a prefix.
    by_visible: BTreeSet<(i128, u64)>,
    dlq: Vec<DlqEntry>,
    /// Bumped whenever a message may have become visible sooner than a poller thought.
    generation: u64,
    waiters: Vec<Waker>,
}

#[derive(Debug)]
pub struct SqsModel {
    clock: Arc<SimClock>,
    ledger: Arc<Ledger>,
    stats: Arc<Stats>,
    rng: SharedRng,
    rates: Rates,
    duplicates: bool,
    state: Mutex<QueueState>,
}

impl SqsModel {
    pub fn new(env: &Env, rng: SharedRng, rates: Rates, duplicates: bool) -> Self {
        Self {
            clock: env.clock.clone(),
            ledger: env.ledger.clone(),
            stats: env.stats.clone(),
            rng,
            rates,
            duplicates,
            state: Mutex::new(QueueState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(state: &mut QueueState) {
        state.generation += 1;
        for w in state.waiters.drain(..) {
            w.wake();
        }
    }

    fn set_visible(state: &mut QueueState, id: u64, at: OffsetDateTime) {
        if let Some(m) = state.messages.get_mut(&id) {
            state.by_visible.remove(&(ns(m.visible_at), id));
            m.visible_at = at;
            state.by_visible.insert((ns(at), id));
        }
    }

    fn enqueue(&self, message: &PublishMessage, delay: Duration, lineage: Vec<Handling>) -> u64 {
        let now = self.clock.time();
        let body = serde_json::to_string(message).unwrap_or_default();
        let visible_at = now + delay;
        let id = {
            let mut s = self.lock();
            s.next_id += 1;
            let id = s.next_id;
            s.messages.insert(
                id,
                Message {
                    body,
                    message: message.clone(),
                    receive_count: 0,
                    visible_at,
                    receipt: 0,
                    lineage,
                },
            );
            s.by_visible.insert((ns(visible_at), id));
            Self::notify(&mut s);
            id
        };
        self.ledger.message_event(now, message, || {
            if delay.is_zero() {
                format!("sent m{id}")
            } else {
                format!("sent m{id} delayed {}s", delay.as_secs())
            }
        });
        id
    }

    /// `SendMessage`/`SendMessageBatch` entry; maybe twice (at-least-once on the producer side).
    pub fn send(&self, message: &PublishMessage, delay: Duration, lineage: Vec<Handling>) {
        let twice = self.duplicates && self.rng.chance(self.rates.duplicate_send);
        self.enqueue(message, delay, lineage.clone());
        if twice {
            Stats::bump(&self.stats.duplicate_sends);
            self.enqueue(message, delay, lineage);
        }
    }

    /// `ReceiveMessage`: up to `max` visible messages, oldest first, each hidden for the
    /// visibility timeout. Messages already received `MAX_RECEIVE_COUNT` times go to the DLQ.
    pub fn receive(&self, max: usize) -> Vec<Received> {
        let now = self.clock.time();
        let now_ns = ns(now);
        let mut out = Vec::new();
        let tracing = self.ledger.tracing();
        let mut events: Vec<(PublishMessage, String)> = Vec::new();
        {
            let mut s = self.lock();
            while out.len() < max {
                let Some(&(visible_at, id)) = s.by_visible.first() else {
                    break;
                };
                if visible_at > now_ns {
                    break;
                }
                s.by_visible.remove(&(visible_at, id));
                let Some(mut m) = s.messages.remove(&id) else {
                    continue;
                };
                if m.receive_count >= MAX_RECEIVE_COUNT {
                    Stats::bump(&self.stats.redriven);
                    // Redrives are rare: always named in the trace.
                    events.push((
                        m.message.clone(),
                        format!(
                            "m{id} redriven to the DLQ after {} receives",
                            m.receive_count
                        ),
                    ));
                    s.dlq.push(DlqEntry {
                        message: m.message,
                        via: DlqVia::Redrive,
                        lineage: m.lineage,
                        at: now,
                    });
                    continue;
                }
                m.receive_count += 1;
                s.next_receipt += 1;
                m.receipt = s.next_receipt;
                let again = self.duplicates && self.rng.chance(self.rates.duplicate_delivery);
                let hidden = if again {
                    Stats::bump(&self.stats.duplicate_deliveries);
                    self.rng.millis(0, 5_000)
                } else {
                    VISIBILITY_TIMEOUT
                };
                m.visible_at = now + hidden;
                out.push(Received {
                    id,
                    receipt: m.receipt,
                    receive_count: m.receive_count,
                    body: m.body.clone(),
                });
                if tracing {
                    let again = if again {
                        ", will be delivered again"
                    } else {
                        ""
                    };
                    let text = format!("m{id} received (count {}){again}", m.receive_count);
                    events.push((m.message.clone(), text));
                }
                s.by_visible.insert((ns(m.visible_at), id));
                s.messages.insert(id, m);
                if again {
                    Self::notify(&mut s);
                }
            }
        }
        for (m, text) in events {
            self.ledger.message_event(now, &m, || text);
        }
        out
    }

    /// `DeleteMessage`. A stale receipt deletes nothing; a delete may not stick (duplicates).
    pub fn delete(&self, id: u64, receipt: u64) {
        let now = self.clock.time();
        let mut s = self.lock();
        let Some(m) = s.messages.get(&id) else {
            return;
        };
        let message = self.ledger.tracing().then(|| m.message.clone());
        let trace = |text: &dyn Fn() -> String| {
            if let Some(message) = &message {
                self.ledger.message_event(now, message, text);
            }
        };
        if m.receipt != receipt {
            drop(s);
            trace(&|| format!("m{id} delete with a stale receipt: kept"));
            return;
        }
        if self.duplicates && self.rng.chance(self.rates.resurrection) {
            Stats::bump(&self.stats.resurrections);
            let back = now + self.rng.millis(1_000, 60_000);
            Self::set_visible(&mut s, id, back);
            Self::notify(&mut s);
            drop(s);
            trace(&|| format!("m{id} deleted, but it will come back"));
            return;
        }
        if let Some(m) = s.messages.remove(&id) {
            s.by_visible.remove(&(ns(m.visible_at), id));
        }
        drop(s);
        trace(&|| format!("m{id} deleted"));
    }

    /// `ChangeMessageVisibility`.
    pub fn change_visibility(&self, id: u64, receipt: u64, seconds: u32) -> Result<(), String> {
        let now = self.clock.time();
        let mut s = self.lock();
        let message = match s.messages.get(&id) {
            Some(m) if m.receipt == receipt => self.ledger.tracing().then(|| m.message.clone()),
            _ => return Err("ReceiptHandleIsInvalid".into()),
        };
        Self::set_visible(&mut s, id, now + Duration::from_secs(u64::from(seconds)));
        Self::notify(&mut s);
        drop(s);
        if let Some(m) = message {
            self.ledger
                .message_event(now, &m, || format!("m{id} visible again in {seconds}s"));
        }
        Ok(())
    }

    /// Herald's own move to the DLQ (`PublishQueue::dead_letter`).
    pub fn dead_letter(&self, message: &PublishMessage, reason: &str, lineage: Vec<Handling>) {
        let now = self.clock.time();
        self.lock().dlq.push(DlqEntry {
            message: message.clone(),
            via: DlqVia::Herald(reason.to_owned()),
            lineage,
            at: now,
        });
        self.ledger.variant_event(now, &message.variant(), || {
            format!("moved to the DLQ: {reason}")
        });
    }

    /// Records how a receive of `id` ended (for the invariants only).
    pub fn note(&self, id: u64, handling: Handling) {
        if let Some(m) = self.lock().messages.get_mut(&id) {
            m.lineage.push(handling);
        }
    }

    pub fn lineage(&self, id: u64) -> Vec<Handling> {
        self.lock()
            .messages
            .get(&id)
            .map(|m| m.lineage.clone())
            .unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().messages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.lock().messages.len()
    }

    pub fn dlq(&self) -> Vec<DlqEntry> {
        self.lock().dlq.clone()
    }

    /// Messages still on the queue (visible, in flight or delayed).
    pub fn remaining(&self) -> Vec<PublishMessage> {
        self.lock()
            .messages
            .values()
            .map(|m| m.message.clone())
            .collect()
    }

    /// (visible or delayed on the queue, visible in the DLQ), as `QueueStats` reports them.
    pub fn depths(&self) -> (u64, u64) {
        let now = self.clock.time();
        let s = self.lock();
        let waiting = s
            .messages
            .values()
            .filter(|m| m.visible_at <= now || m.receive_count == 0)
            .count();
        (waiting as u64, s.dlq.len() as u64)
    }

    /// Waits until a message may be visible: the earliest visibility time, or any change
    /// that could make one visible sooner (a send, a visibility change).
    pub async fn wait_for_messages(&self) {
        let (generation, next) = {
            let s = self.lock();
            let next = s
                .by_visible
                .first()
                .and_then(|(_, id)| s.messages.get(id))
                .map(|m| m.visible_at);
            (s.generation, next)
        };
        let mut sleep = next.map(|at| Box::pin(self.clock.sleep_until(at)));
        std::future::poll_fn(|cx| {
            if let Some(sleep) = sleep.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(());
            }
            let mut s = self.lock();
            if s.generation != generation {
                return Poll::Ready(());
            }
            s.waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
}

/// The SQS client as the functions hold it: latency, call failures and the invocation's fate.
#[derive(Debug, Clone)]
pub struct QueueClient {
    pub model: Arc<SqsModel>,
    faults: bool,
    inv: Option<Arc<Invocation>>,
}

impl QueueClient {
    pub fn new(model: Arc<SqsModel>, faults: bool) -> Self {
        Self {
            model,
            faults,
            inv: None,
        }
    }

    pub fn for_invocation(&self, inv: &Arc<Invocation>) -> Self {
        Self {
            inv: Some(inv.clone()),
            ..self.clone()
        }
    }

    async fn call(&self, op: &str) -> Result<(), StoreError> {
        if let Some(inv) = &self.inv {
            inv.call(&self.model.clock).await;
        }
        let d = self.model.rng.millis(4, 20);
        self.model.clock.sleep_for(d).await;
        if self.faults && self.model.rng.chance(self.model.rates.queue_call_failure) {
            Stats::bump(&self.model.stats.queue_failures);
            return Err(StoreError::Unavailable(format!(
                "{op}: ServiceUnavailable (simulated)"
            )));
        }
        Ok(())
    }

    /// A fresh copy (a deferral, or a retry carried over) that inherits the lineage of the
    /// message it replaces; `handling` is how this receive ended.
    pub async fn send_delayed_from(
        &self,
        parent: u64,
        message: &PublishMessage,
        delay: Duration,
        handling: Handling,
    ) -> Result<(), StoreError> {
        self.call("SendMessage").await?;
        let mut lineage = self.model.lineage(parent);
        lineage.push(handling);
        self.model.send(message, sqs_delay(delay), lineage);
        Ok(())
    }

    /// Herald's move to the DLQ; `handling` is how this receive ended (the disposition's
    /// kind), so the DLQ entry's lineage is complete.
    pub async fn dead_letter_from(
        &self,
        parent: u64,
        message: &PublishMessage,
        reason: &str,
        handling: Handling,
    ) -> Result<(), StoreError> {
        self.call("SendMessage (DLQ)").await?;
        let mut lineage = self.model.lineage(parent);
        lineage.push(handling);
        self.model.dead_letter(message, reason, lineage);
        Ok(())
    }

    pub async fn change_visibility(
        &self,
        id: u64,
        receipt: u64,
        seconds: u32,
    ) -> Result<(), StoreError> {
        self.call("ChangeMessageVisibility").await?;
        self.model
            .change_visibility(id, receipt, seconds)
            .map_err(StoreError::Invalid)
    }

    /// The event source mapping's delete of a handled record.
    pub async fn delete(&self, id: u64, receipt: u64) -> Result<(), StoreError> {
        self.call("DeleteMessage").await?;
        self.model.delete(id, receipt);
        Ok(())
    }
}

fn ns(t: OffsetDateTime) -> i128 {
    t.unix_timestamp_nanos()
}

/// Whole seconds, rounded up, at most SQS's 15 minutes (as `SqsPublishQueue` sends them).
fn sqs_delay(delay: Duration) -> Duration {
    Duration::from_secs((delay.as_millis().div_ceil(1000) as u64).min(MAX_DELAY_SECONDS))
}

#[async_trait]
impl QueueStats for QueueClient {
    async fn depths(&self) -> Result<(u64, u64), StoreError> {
        self.call("GetQueueAttributes").await?;
        Ok(self.model.depths())
    }
}

#[async_trait]
impl PublishQueue for QueueClient {
    async fn send(
        &self,
        messages: &[PublishMessage],
    ) -> Result<Vec<Result<(), String>>, StoreError> {
        let mut results = Vec::with_capacity(messages.len());
        // SendMessageBatch takes ten entries per call.
        for chunk in messages.chunks(10) {
            if let Err(e) = self.call("SendMessageBatch").await {
                let now = self.model.clock.time();
                for m in chunk {
                    self.model
                        .ledger
                        .message_event(now, m, || format!("send failed: {e}"));
                }
                results.extend(chunk.iter().map(|_| Err(e.to_string())));
                continue;
            }
            for m in chunk {
                if self.faults && self.model.rng.chance(self.model.rates.queue_entry_failure) {
                    Stats::bump(&self.model.stats.queue_failures);
                    let now = self.model.clock.time();
                    self.model
                        .ledger
                        .message_event(now, m, || "send failed: InternalError (simulated)".into());
                    results.push(Err("InternalError (simulated)".to_owned()));
                } else {
                    self.model.send(m, Duration::ZERO, Vec::new());
                    results.push(Ok(()));
                }
            }
        }
        Ok(results)
    }

    async fn send_delayed(
        &self,
        message: &PublishMessage,
        delay: Duration,
    ) -> Result<(), StoreError> {
        self.call("SendMessage").await?;
        self.model.send(message, sqs_delay(delay), Vec::new());
        Ok(())
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        self.call("SendMessage (DLQ)").await?;
        self.model.dead_letter(message, reason, Vec::new());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use herald_domain::ids::{AccountId, PostId, TenantId};
    use herald_domain::model::Platform;
    use time::macros::datetime;

    fn model() -> (Arc<SimClock>, SqsModel) {
        let clock = Arc::new(SimClock::new(datetime!(2026-01-01 0:00 UTC)));
        let env = Env {
            clock: clock.clone(),
            ledger: Arc::new(Ledger::new(false)),
            stats: Arc::new(Stats::default()),
        };
        let q = SqsModel::new(
            &env,
            SharedRng::new(Rng::stream(1, 1)),
            Rates::default(),
            false,
        );
        (clock, q)
    }

    fn message() -> PublishMessage {
        PublishMessage {
            tenant_id: TenantId("t".into()),
            post_id: PostId("p".into()),
            account_id: AccountId("a".into()),
            platform: Platform::X,
            correlation_id: "c".into(),
            failures: 0,
            continues_upload: false,
        }
    }

    /// Makes every hidden message visible (as if its visibility timeout ran out).
    fn expire(q: &SqsModel, clock: &SimClock) {
        let ids: Vec<u64> = q.lock().messages.keys().copied().collect();
        for id in ids {
            SqsModel::set_visible(&mut q.lock(), id, clock.time());
        }
    }

    #[test]
    fn received_five_times_is_moved_on_the_sixth_receive() {
        let (clock, q) = model();
        q.send(&message(), Duration::ZERO, Vec::new());
        for n in 1..=5 {
            let got = q.receive(10);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].receive_count, n);
            assert!(q.receive(10).is_empty(), "hidden while in flight");
            expire(&q, &clock);
        }
        assert!(q.receive(10).is_empty());
        assert_eq!(q.dlq().len(), 1);
        assert_eq!(q.dlq()[0].via, DlqVia::Redrive);
        assert!(q.is_empty());
    }

    #[test]
    fn stale_receipts_neither_delete_nor_change_visibility() {
        let (clock, q) = model();
        q.send(&message(), Duration::ZERO, Vec::new());
        let first = q.receive(1).remove(0);
        expire(&q, &clock);
        let second = q.receive(1).remove(0);
        assert!(q.change_visibility(first.id, first.receipt, 0).is_err());
        q.delete(first.id, first.receipt);
        assert_eq!(q.len(), 1);
        q.delete(second.id, second.receipt);
        assert!(q.is_empty());
    }

    #[test]
    fn delayed_copies_start_a_fresh_count() {
        let (_clock, q) = model();
        q.send(
            &message(),
            sqs_delay(Duration::from_millis(1500)),
            vec![Handling::Deferred],
        );
        assert!(q.receive(10).is_empty(), "not visible before its delay");
        let s = q.lock();
        let m = s
            .messages
            .values()
            .next()
            .map(|m| (m.receive_count, m.lineage.clone()));
        assert_eq!(m, Some((0, vec![Handling::Deferred])));
    }
}
