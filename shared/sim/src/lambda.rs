//! The pipeline's functions as Lambda runs them (publisher, dispatcher, reconciler): each
//! invocation has its template timeout and a fate (it may crash or stall), and whatever it
//! did not finish when it dies simply did not happen.
//!
//! The publisher runs as `functions/publisher` does: one SQS batch into
//! `PublishService::handle_batch`, then each record's disposition through the domain's
//! `settle` (the same function the Lambda calls), with this record's port on the SQS model.
//! If the invocation crashes or times out, the mapping sees a failed invocation: nothing is
//! deleted.

use crate::faults::Invocation;
use crate::ledger::Stats;
use crate::queue::{Handling, QueueClient, Received};
use crate::vclock::SimClock;
use crate::world::World;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::ports::PublishMessage;
use herald_domain::publishing::dispatch::{DispatchConfig, Dispatcher};
use herald_domain::publishing::publish::{Delivery, Disposition, PublishService};
use herald_domain::publishing::reconcile::{ReconcileConfig, Reconciler};
use herald_domain::publishing::settle::{MessageActions, SettlePorts, Settled};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use time::OffsetDateTime;

/// The template's function timeout.
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(30);
/// The event source mapping's `BatchSize`.
pub const BATCH_SIZE: usize = 10;
/// Records of one batch handled at once (`HERALD_PUBLISH_CONCURRENCY`).
pub const CONCURRENCY: usize = 10;

#[derive(Debug)]
pub enum Ended<T> {
    Returned(T),
    Crashed,
    TimedOut,
}

/// Runs `work` as the body of `inv`: it ends when the work does, when the invocation dies, or
/// when the clock reaches `kill_at` (Lambda's timeout), whichever comes first.
pub async fn until_killed<T>(
    clock: &SimClock,
    inv: &Invocation,
    kill_at: OffsetDateTime,
    work: impl Future<Output = T>,
) -> Ended<T> {
    let mut work = pin!(work);
    let mut kill = pin!(clock.sleep_until(kill_at));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = work.as_mut().poll(cx) {
            return Poll::Ready(Ended::Returned(v));
        }
        if inv.crashed() {
            return Poll::Ready(Ended::Crashed);
        }
        if kill.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ended::TimedOut);
        }
        Poll::Pending
    })
    .await
}

/// One publisher invocation for one batch.
pub async fn publisher(world: &World, batch: Vec<Received>) {
    let inv = world.invocation(batch.len());
    let clock = &world.clock;
    let start = clock.time();
    let kill_at = start + LAMBDA_TIMEOUT;
    let deadline = kill_at - world.config.deadline_margin;
    let mut records: Vec<(PublishMessage, Delivery)> = Vec::with_capacity(batch.len());
    let mut handled: Vec<Option<(Handling, bool)>> = vec![None; batch.len()];
    let mut index = Vec::with_capacity(batch.len());
    for (i, r) in batch.iter().enumerate() {
        match serde_json::from_str::<PublishMessage>(&r.body) {
            Ok(message) => {
                records.push((
                    message,
                    Delivery {
                        receive_count: r.receive_count,
                        deadline,
                    },
                ));
                index.push(i);
            }
            // Never valid: left for the DLQ, where an operator can look at it.
            Err(_) => handled[i] = Some((Handling::Failed, false)),
        }
    }
    let service = world.publish_service(&inv);
    let queue = world.queue_client.for_invocation(&inv);
    let work =
        async {
            let dispositions = service.handle_batch(&records, CONCURRENCY).await;
            // Settled concurrently, as the function does.
            let settled = index.iter().zip(&records).zip(dispositions).map(
                |((i, (message, delivery)), d)| {
                    let r = &batch[*i];
                    let (queue, inv, service) = (&queue, &inv, &service);
                    async move {
                        world
                            .ledger
                            .variant_event(clock.time(), &message.variant(), || {
                                format!("m{} inv{}: {}", r.id, inv.id, describe(&d))
                            });
                        (
                            *i,
                            settle(world, service, queue, r, (message, *delivery), d).await,
                        )
                    }
                },
            );
            futures::future::join_all(settled).await
        };
    match until_killed(clock, &inv, kill_at, work).await {
        Ended::Returned(out) => {
            for (i, h) in out {
                handled[i] = Some(h);
            }
            for (r, h) in batch.iter().zip(handled) {
                let (handling, delete) = h.unwrap_or((Handling::Failed, false));
                world.queue.note(r.id, handling);
                if delete {
                    // The mapping's DeleteMessageBatch; a failure leaves the message to come back.
                    let _ = world.queue_client.delete(r.id, r.receipt).await;
                }
            }
        }
        Ended::Crashed => {
            Stats::bump(&world.stats.crashes);
            note_all(world, &batch, &inv, Handling::Crashed);
        }
        Ended::TimedOut => {
            Stats::bump(&world.stats.timeouts);
            note_all(world, &batch, &inv, Handling::TimedOut);
        }
    }
}

fn note_all(world: &World, batch: &[Received], inv: &Invocation, handling: Handling) {
    let now = world.clock.time();
    for r in batch {
        world.queue.note(r.id, handling);
        if world.ledger.tracing()
            && let Ok(m) = serde_json::from_str::<PublishMessage>(&r.body)
        {
            world.ledger.message_event(now, &m, || {
                format!("m{} inv{}: invocation {handling:?}", r.id, inv.id)
            });
        }
    }
}

/// What the function does with one record's disposition: the domain's `settle`, through this
/// record's queue port. Returns how the receive ended and whether the mapping deletes the
/// message.
async fn settle(
    world: &World,
    service: &PublishService,
    queue: &QueueClient,
    r: &Received,
    (message, delivery): (&PublishMessage, Delivery),
    d: Disposition,
) -> (Handling, bool) {
    count(&world.stats, &d);
    // A copy sent for a deferral replaces a held-back receive; one sent for a retry (on the
    // last-but-one receive) replaces a real failure.
    let copy_replaces = match d {
        Disposition::Defer { .. } => Handling::Deferred,
        _ => Handling::Failed,
    };
    let actions = SimRecord {
        queue,
        r,
        copy_replaces,
    };
    let ports = SettlePorts {
        actions: &actions,
        events: None,
        clock: &*service.clock,
        max_receive_count: service.config.max_receive_count,
    };
    let settled = herald_domain::publishing::settle::settle(ports, message, delivery, d).await;
    let handling = match settled {
        Settled::Done => Handling::Done,
        Settled::Deferred => Handling::Deferred,
        Settled::Retrying | Settled::CarriedOver | Settled::DeadLettered | Settled::Redrive => {
            Handling::Failed
        }
        Settled::Unsettled => Handling::StoreFailed,
        Settled::ActionFailed => Handling::ActionFailed,
    };
    (handling, !settled.keeps_message())
}

/// The counters a disposition bumps.
fn count(stats: &Stats, d: &Disposition) {
    Stats::bump(match d {
        Disposition::Done(_) => &stats.done,
        Disposition::RetryAfter(_) => &stats.retries,
        Disposition::Defer { .. } => &stats.deferrals,
        Disposition::Fail => &stats.store_failures,
        Disposition::DeadLetter => &stats.dead_letter_visibility,
        Disposition::MoveToDeadLetter(_) => &stats.moved_to_dlq,
    });
}

/// One received record's queue port: the SQS model's calls with this receipt, and the
/// lineage (for the invariants only) that a copy or a DLQ entry inherits from it.
struct SimRecord<'a> {
    queue: &'a QueueClient,
    r: &'a Received,
    copy_replaces: Handling,
}

#[async_trait]
impl MessageActions for SimRecord<'_> {
    async fn make_visible_in(&self, seconds: u32) -> Result<(), StoreError> {
        self.queue
            .change_visibility(self.r.id, self.r.receipt, seconds)
            .await
    }

    async fn send_delayed(&self, copy: &PublishMessage, delay: Duration) -> Result<(), StoreError> {
        self.queue
            .send_delayed_from(self.r.id, copy, delay, self.copy_replaces)
            .await
    }

    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        self.queue
            .dead_letter_from(self.r.id, message, reason, Handling::Failed)
            .await
    }
}

fn describe(d: &Disposition) -> String {
    match d {
        Disposition::Done(done) => format!("done ({done:?})"),
        Disposition::RetryAfter(delay) => format!("retry after {:.1}s", delay.as_secs_f64()),
        Disposition::Defer { delay, copy } => format!(
            "defer {:.1}s (copy carries {} failures)",
            delay.as_secs_f64(),
            copy.failures
        ),
        Disposition::Fail => "fail (keep as is)".into(),
        Disposition::DeadLetter => "dead letter (visible now, for the redrive)".into(),
        Disposition::MoveToDeadLetter(reason) => format!("move to the DLQ: {reason}"),
    }
}

/// One scheduled dispatcher invocation.
pub async fn dispatcher(world: &World) {
    Stats::bump(&world.stats.dispatch_runs);
    // A run claims, sends and confirms a few posts; aim crashes at that.
    let inv = world.invocation(3);
    let store = Arc::new(world.store.for_invocation(&inv));
    let dispatcher = Dispatcher {
        store: store.clone(),
        crises: store,
        queue: Arc::new(world.queue_client.for_invocation(&inv)),
        clock: world.clock.clone(),
        config: DispatchConfig::default(),
    };
    let kill_at = world.clock.time() + LAMBDA_TIMEOUT;
    match until_killed(&world.clock, &inv, kill_at, dispatcher.run_once()).await {
        Ended::Returned(_) => {}
        Ended::Crashed => {
            Stats::bump(&world.stats.crashes);
            world.ledger.world_event(world.clock.time(), || {
                format!("dispatcher inv{} crashed", inv.id)
            });
        }
        Ended::TimedOut => {
            Stats::bump(&world.stats.timeouts);
            world.ledger.world_event(world.clock.time(), || {
                format!("dispatcher inv{} timed out", inv.id)
            });
        }
    }
}

/// The reconciler's timeout in the template.
pub const RECONCILER_TIMEOUT: Duration = Duration::from_secs(55);

/// One scheduled reconciler invocation (`functions/reconciler`).
pub async fn reconciler(world: &World) {
    Stats::bump(&world.stats.reconciler_runs);
    let inv = world.invocation(2);
    let store = Arc::new(world.store.for_invocation(&inv));
    let reconciler = Reconciler {
        store: store.clone(),
        posts: store.clone(),
        outcomes: store.clone(),
        queue: Arc::new(world.queue_client.for_invocation(&inv)),
        heartbeats: store.clone(),
        audit: store,
        queues: Arc::new(world.queue_client.for_invocation(&inv)),
        alerter: world.alerter(),
        clock: world.clock.clone(),
        config: ReconcileConfig::default(),
    };
    let kill_at = world.clock.time() + RECONCILER_TIMEOUT;
    match until_killed(&world.clock, &inv, kill_at, reconciler.run_once()).await {
        Ended::Returned(_) => {}
        Ended::Crashed => {
            Stats::bump(&world.stats.crashes);
            world.ledger.world_event(world.clock.time(), || {
                format!("reconciler inv{} crashed", inv.id)
            });
        }
        Ended::TimedOut => {
            Stats::bump(&world.stats.timeouts);
            world.ledger.world_event(world.clock.time(), || {
                format!("reconciler inv{} timed out", inv.id)
            });
        }
    }
}
