//! The settle table, row by row, through a recording queue port; and the seed-288 regression:
//! a deferral on a message's last receive never leaves it for SQS's redrive.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use super::*;
use crate::clock::FakeClock;
use crate::ids::{AccountId, PostId, TenantId};
use crate::model::Platform;
use crate::outbound::memory::{MemoryEndpoints, MemoryOutboundQueue};
use crate::outbound::{Endpoint, EndpointId, EndpointStore};
use crate::ports::VariantRef;
use crate::publishing::reconcile::ResolvedVariant;
use std::sync::{Arc, Mutex};
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);
const MAX: u32 = 5;

/// One queue call the settle step made.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Visible(u32),
    Sent { failures: u32, delay: Duration },
    DeadLetter(String),
}

/// A record's queue port that records its calls, fails the first `failing_sends` sends and,
/// with `failing_moves`, every move to the DLQ.
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
    failing_sends: Mutex<u32>,
    failing_moves: bool,
}

impl Recorder {
    fn failing(sends: u32) -> Self {
        Self {
            failing_sends: Mutex::new(sends),
            ..Self::default()
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl MessageActions for Recorder {
    async fn make_visible_in(&self, seconds: u32) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(Call::Visible(seconds));
        Ok(())
    }

    async fn send_delayed(&self, copy: &PublishMessage, delay: Duration) -> Result<(), StoreError> {
        let mut failing = self.failing_sends.lock().unwrap();
        if *failing > 0 {
            *failing -= 1;
            return Err(StoreError::Unavailable("SendMessage: 503".into()));
        }
        self.calls.lock().unwrap().push(Call::Sent {
            failures: copy.failures,
            delay,
        });
        Ok(())
    }

    async fn dead_letter(&self, _: &PublishMessage, reason: &str) -> Result<(), StoreError> {
        if self.failing_moves {
            return Err(StoreError::Unavailable("SendMessage: 503".into()));
        }
        self.calls
            .lock()
            .unwrap()
            .push(Call::DeadLetter(reason.into()));
        Ok(())
    }
}

/// Collects the events emitted.
#[derive(Debug, Default)]
struct Events(Mutex<Vec<(OutboundEvent, String)>>);

#[async_trait]
impl OutcomeEvents for Events {
    async fn emit(&self, event: &OutboundEvent, correlation_id: &str) {
        self.0
            .lock()
            .unwrap()
            .push((event.clone(), correlation_id.into()));
    }
}

fn message(failures: u32) -> PublishMessage {
    PublishMessage {
        tenant_id: TenantId("ten_1".into()),
        post_id: PostId("post_1".into()),
        account_id: AccountId("acc_1".into()),
        platform: Platform::X,
        correlation_id: "c-1".into(),
        failures,
        continues_upload: false,
    }
}

fn delivery(receive_count: u32) -> Delivery {
    Delivery {
        receive_count,
        deadline: T0 + time::Duration::seconds(30),
    }
}

/// Settles `disposition` on receive `receive_count`: how, the queue calls, the events.
async fn run(
    disposition: Disposition,
    receive_count: u32,
    queue: &Recorder,
) -> (Settled, Vec<Call>, Vec<EventType>) {
    let clock = FakeClock::new(T0);
    let events = Events::default();
    let ports = SettlePorts {
        actions: queue,
        events: Some(&events),
        clock: &clock,
        max_receive_count: MAX,
    };
    let settled = settle(ports, &message(0), delivery(receive_count), disposition).await;
    let types = events
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(e, _)| e.event_type)
        .collect();
    (settled, queue.calls(), types)
}

#[tokio::test]
async fn each_disposition_becomes_its_queue_action_and_event() {
    let secs = Duration::from_millis(1500);
    let copy = message(2);
    let cases: Vec<(Disposition, Settled, Vec<Call>, Vec<EventType>)> = vec![
        (
            Disposition::Done(Done::Published),
            Settled::Done,
            vec![],
            vec![EventType::PostPublished],
        ),
        (
            Disposition::Done(Done::Adopted),
            Settled::Done,
            vec![],
            vec![EventType::PostPublished],
        ),
        (
            Disposition::Done(Done::Failed),
            Settled::Done,
            vec![],
            vec![EventType::PostFailed],
        ),
        (
            Disposition::Done(Done::Duplicate),
            Settled::Done,
            vec![],
            vec![],
        ),
        (
            Disposition::RetryAfter(secs),
            Settled::Retrying,
            vec![Call::Visible(2)],
            vec![],
        ),
        (
            Disposition::Defer {
                delay: secs,
                copy: copy.clone(),
            },
            Settled::Deferred,
            vec![Call::Sent {
                failures: 2,
                delay: secs,
            }],
            vec![],
        ),
        (Disposition::Fail, Settled::Unsettled, vec![], vec![]),
        (
            Disposition::DeadLetter,
            Settled::Redrive,
            vec![Call::Visible(0)],
            vec![EventType::DeadLetterAdded],
        ),
        (
            Disposition::MoveToDeadLetter("503 (after 5 failed deliveries)".into()),
            Settled::DeadLettered,
            vec![Call::DeadLetter("503 (after 5 failed deliveries)".into())],
            vec![EventType::DeadLetterAdded],
        ),
    ];
    for (disposition, settled, calls, events) in cases {
        let queue = Recorder::default();
        let what = format!("{disposition:?}");
        assert_eq!(
            run(disposition, 2, &queue).await,
            (settled, calls, events),
            "{what}"
        );
    }
}

#[tokio::test]
async fn sqs_keeps_only_what_comes_back() {
    let kept: Vec<Settled> = [
        Settled::Done,
        Settled::Deferred,
        Settled::Retrying,
        Settled::CarriedOver,
        Settled::DeadLettered,
        Settled::Redrive,
        Settled::Unsettled,
        Settled::ActionFailed,
    ]
    .into_iter()
    .filter(|s| s.keeps_message())
    .collect();
    assert_eq!(
        kept,
        [
            Settled::Retrying,
            Settled::Redrive,
            Settled::Unsettled,
            Settled::ActionFailed
        ]
    );
}

#[tokio::test]
async fn a_failed_send_keeps_the_message_for_its_delay() {
    let delay = Duration::from_secs(30);
    let defer = || Disposition::Defer {
        delay,
        copy: message(1),
    };
    let queue = Recorder::failing(1);
    let (settled, calls, _) = run(defer(), 2, &queue).await;
    assert_eq!(
        (settled, calls),
        (Settled::ActionFailed, vec![Call::Visible(30)])
    );
    let failing_move = Recorder {
        failing_moves: true,
        ..Recorder::default()
    };
    let (settled, calls, events) = run(
        Disposition::MoveToDeadLetter("r".into()),
        MAX - 1,
        &failing_move,
    )
    .await;
    assert_eq!((calls, events), (vec![], vec![EventType::DeadLetterAdded]));
    assert_eq!(settled, Settled::ActionFailed);
}

/// Seed 288: four real failures, then the fifth (last) receive finds the breaker open. Its
/// deferral's copy could not be sent, the message was kept, and SQS's redrive moved it to the
/// DLQ while the variant said `retrying`. On the last receive the send is tried again.
#[tokio::test]
async fn a_deferral_on_the_last_receive_tries_its_copy_again_rather_than_keep_it() {
    let delay = Duration::from_secs(269);
    let defer = || Disposition::Defer {
        delay,
        copy: message(MAX - 1),
    };
    let queue = Recorder::failing(2);
    let (settled, calls, _) = run(defer(), MAX, &queue).await;
    assert_eq!(settled, Settled::Deferred);
    assert_eq!(
        calls,
        vec![Call::Sent {
            failures: MAX - 1,
            delay
        }],
        "no visibility change: the message is deleted, never redriven"
    );
    // Before its last receive, keeping the message is safe: no second try.
    let queue = Recorder::failing(1);
    let (settled, calls, _) = run(defer(), MAX - 1, &queue).await;
    assert_eq!(
        (settled, calls),
        (Settled::ActionFailed, vec![Call::Visible(269)])
    );
}

/// Seed 1873: a planned retry kept the message for its last receive, the invocation died on
/// it, and the redrive moved it with the variant `retrying`. The last-but-one receive's retry
/// goes out as a fresh copy carrying the failures, so Herald's count decides the DLQ.
#[tokio::test]
async fn a_retry_on_the_last_but_one_receive_goes_out_as_a_fresh_copy() {
    let wait = Duration::from_millis(30_300);
    let queue = Recorder::default();
    let (settled, calls, _) = run(Disposition::RetryAfter(wait), MAX - 1, &queue).await;
    assert_eq!(
        (settled, calls),
        (
            Settled::CarriedOver,
            vec![Call::Sent {
                failures: MAX - 1,
                delay: wait
            }]
        )
    );
    assert!(!settled.keeps_message());
    // If the copy cannot be sent, SQS retries this one as before.
    let queue = Recorder::failing(1);
    let (settled, calls, _) = run(Disposition::RetryAfter(wait), MAX - 1, &queue).await;
    assert_eq!(
        (settled, calls),
        (Settled::Retrying, vec![Call::Visible(31)])
    );
}

#[tokio::test]
async fn resolved_variants_are_announced_to_subscribed_endpoints() {
    let now = T0;
    let endpoints = Arc::new(MemoryEndpoints::default());
    let tenant = TenantId::from("ten_1");
    for types in [
        vec![EventType::PostUnknownResolved],
        vec![EventType::PostPublished],
    ] {
        endpoints
            .create_endpoint(&Endpoint {
                id: EndpointId::generate(),
                tenant_id: tenant.clone(),
                url: "https://hooks.example.com/in".into(),
                event_types: types,
                disabled: None,
                secret: secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                previous_secret: None,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
    }
    let queue = Arc::new(MemoryOutboundQueue::default());
    let outbound = OutboundEvents::new(
        endpoints.clone(),
        queue.clone(),
        Arc::new(FakeClock::new(now)),
        time::Duration::ZERO,
    );
    let mut report = ReconcileReport::default();
    report.resolved.push(ResolvedVariant {
        variant: VariantRef {
            tenant_id: tenant.clone(),
            post_id: PostId::from("post_1"),
            account_id: AccountId::from("acc_1"),
        },
        platform: Platform::X,
        status: "unknown",
        attempts: 1,
        correlation_id: "c-1".into(),
    });
    announce_resolved(&outbound, &report, now).await;
    {
        let sent = queue.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "only the subscribed endpoint");
        let event = &sent[0].0.event;
        assert_eq!(event.event_type, EventType::PostUnknownResolved);
        assert_eq!(event.data["status"], "unknown");
        assert_eq!(event.data["post_id"], "post_1");
        assert_eq!(sent[0].0.correlation_id, "c-1");
    }
    // One given up on is dead-lettered: announced as resolved, and as a dead letter to whoever
    // subscribed to those.
    endpoints
        .create_endpoint(&Endpoint {
            id: EndpointId::generate(),
            tenant_id: tenant.clone(),
            url: "https://hooks.example.com/dlq".into(),
            event_types: vec![EventType::DeadLetterAdded],
            disabled: None,
            secret: secrecy::SecretString::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            previous_secret: None,
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    report.resolved[0].status = "dead_lettered";
    report.resolved[0].attempts = 10;
    announce_resolved(&outbound, &report, now).await;
    let sent = queue.sent.lock().unwrap();
    let types: Vec<EventType> = sent[1..].iter().map(|s| s.0.event.event_type).collect();
    assert_eq!(
        types,
        [EventType::PostUnknownResolved, EventType::DeadLetterAdded]
    );
    assert_eq!(sent[1].0.event.data["status"], "dead_lettered");
    assert_eq!(sent[2].0.event.data["source"], "publish");
}
