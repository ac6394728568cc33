//! The webhook receiver over in-process fakes: accepted once, refused without a trace,
//! rotation with grace, refetch after a fresh rotation, and no id kept for an event that was
//! not queued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::clock::{Clock, FakeClock, SystemEntropy};
use herald_domain::inbound::*;
use herald_domain::secrets::{CachePolicy, SecretCache, SecretMeta, SecretStore};
use herald_webhooks::{Rejection, Request, Scheme, standard};
use secrecy::SecretString;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;
use time::macros::datetime;

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// A secret whose current and previous values the test sets.
#[derive(Default)]
struct Secrets {
    current: Mutex<Option<(String, OffsetDateTime)>>,
    previous: Mutex<Option<String>>,
}

impl Secrets {
    fn rotate(&self, value: &str, at: OffsetDateTime) {
        let old = self.current.lock().unwrap().replace((value.into(), at));
        *self.previous.lock().unwrap() = old.map(|(v, _)| v);
    }
}

#[async_trait]
impl SecretStore for Secrets {
    async fn describe(&self, _: &str) -> Result<SecretMeta, StoreError> {
        Err(StoreError::Invalid("not used".into()))
    }
    async fn value(&self, _: &str, _: &str) -> Result<Option<SecretString>, StoreError> {
        Err(StoreError::Invalid("not used".into()))
    }
    async fn staged_value(
        &self,
        _: &str,
        stage: &str,
    ) -> Result<Option<(SecretString, OffsetDateTime)>, StoreError> {
        Ok(match stage {
            "AWSCURRENT" => self
                .current
                .lock()
                .unwrap()
                .clone()
                .map(|(v, at)| (SecretString::from(v), at)),
            _ => self
                .previous
                .lock()
                .unwrap()
                .clone()
                .map(|v| (SecretString::from(v), OffsetDateTime::UNIX_EPOCH)),
        })
    }
    async fn put_pending(&self, _: &str, _: &str, _: &SecretString) -> Result<(), StoreError> {
        Err(StoreError::Invalid("not used".into()))
    }
    async fn move_stage(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
    ) -> Result<(), StoreError> {
        Err(StoreError::Invalid("not used".into()))
    }
}

#[derive(Default)]
struct Inbox(Mutex<HashSet<(String, String)>>);

#[async_trait]
impl WebhookInbox for Inbox {
    async fn first_sighting(
        &self,
        provider: &str,
        id: &str,
        _: OffsetDateTime,
        _: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(self.0.lock().unwrap().insert((provider.into(), id.into())))
    }
    async fn forget(&self, provider: &str, id: &str) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .remove(&(provider.to_owned(), id.to_owned()));
        Ok(())
    }
}

#[derive(Default)]
struct Queue {
    events: Mutex<Vec<InboundEvent>>,
    down: Mutex<bool>,
}

#[async_trait]
impl InboundQueue for Queue {
    async fn enqueue(&self, event: &InboundEvent) -> Result<(), StoreError> {
        if *self.down.lock().unwrap() {
            return Err(StoreError::Unavailable("queue down".into()));
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

struct World {
    receiver: WebhookReceiver,
    secrets: Arc<Secrets>,
    inbox: Arc<Inbox>,
    queue: Arc<Queue>,
    clock: Arc<FakeClock>,
}

fn world() -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-06-01 12:00 UTC)));
    let secrets = Arc::new(Secrets::default());
    secrets.rotate(OLD, clock.now() - time::Duration::days(10));
    let inbox = Arc::new(Inbox::default());
    let queue = Arc::new(Queue::default());
    let provider = |name: &str, scheme| WebhookProvider {
        name: name.into(),
        scheme,
        secret_id: "s".into(),
        verify_token_id: (scheme == Scheme::Meta).then(|| "s".into()),
    };
    let receiver = WebhookReceiver {
        providers: HashMap::from([
            ("demo".into(), provider("demo", Scheme::StandardWebhooks)),
            ("meta".into(), provider("meta", Scheme::Meta)),
            ("x".into(), provider("x", Scheme::X)),
        ]),
        secrets: Arc::new(SecretCache::new(
            secrets.clone(),
            clock.clone(),
            CachePolicy::default(),
        )),
        inbox: inbox.clone(),
        queue: queue.clone(),
        clock: clock.clone(),
        entropy: Arc::new(SystemEntropy),
        config: ReceiverConfig::default(),
    };
    World {
        receiver,
        secrets,
        inbox,
        queue,
        clock,
    }
}

impl World {
    async fn send(&self, id: &str, body: &str, secret: &str) -> Received {
        let signed = standard::sign(
            id,
            self.clock.now(),
            body.as_bytes(),
            &[SecretString::from(secret)],
        )
        .unwrap();
        let headers: Vec<(&str, &[u8])> = signed
            .pairs()
            .iter()
            .map(|(k, v)| (*k, v.as_bytes()))
            .collect();
        self.receiver
            .receive("demo", &Request::new(&headers, body.as_bytes()))
            .await
    }

    fn queued(&self) -> Vec<InboundEvent> {
        self.queue.events.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn an_event_is_accepted_once_and_queued_with_its_exact_body() {
    let w = world();
    let body = r#"{"type":"invoice.paid", "amount": 12}"#;
    assert_eq!(
        w.send("msg_1", body, OLD).await,
        Received::Accepted {
            event_id: "msg_1".into(),
            old_secret: false
        }
    );
    assert_eq!(w.send("msg_1", body, OLD).await, Received::Replayed);
    let queued = w.queued();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].body, body);
    assert_eq!(
        (queued[0].provider.as_str(), queued[0].event_id.as_str()),
        ("demo", "msg_1")
    );
}

#[tokio::test]
async fn forged_requests_leave_no_trace() {
    let w = world();
    assert_eq!(
        w.send("msg_1", "{}", NEW).await,
        Received::Refused(Rejection::BadSignature)
    );
    let unsigned = w.receiver.receive("demo", &Request::new(&[], b"{}")).await;
    assert!(matches!(unsigned, Received::Refused(_)), "{unsigned:?}");
    assert_eq!(
        w.receiver
            .receive("nobody", &Request::new(&[], b"{}"))
            .await,
        Received::UnknownProvider
    );
    assert!(w.queued().is_empty());
    assert!(w.inbox.0.lock().unwrap().is_empty(), "no id was recorded");
    // The genuine event with the same id is still taken.
    assert!(matches!(
        w.send("msg_1", "{}", OLD).await,
        Received::Accepted { .. }
    ));
}

#[tokio::test]
async fn a_fresh_rotation_is_picked_up_at_once_and_the_old_secret_lasts_its_grace() {
    let w = world();
    assert!(matches!(
        w.send("a", "{}", OLD).await,
        Received::Accepted { .. }
    ));
    // Rotated after the ring was cached: the new secret verifies without waiting out the TTL.
    w.secrets.rotate(NEW, w.clock.now());
    w.clock.advance(time::Duration::seconds(11));
    assert!(matches!(
        w.send("b", "{}", NEW).await,
        Received::Accepted {
            old_secret: false,
            ..
        }
    ));
    assert_eq!(
        w.send("c", "{}", OLD).await,
        Received::Accepted {
            event_id: "c".into(),
            old_secret: true
        },
        "senders still on the old secret, within the grace period"
    );
    w.clock.advance(time::Duration::hours(24));
    assert_eq!(
        w.send("d", "{}", OLD).await,
        Received::Refused(Rejection::BadSignature),
        "after the grace period"
    );
    assert!(matches!(
        w.send("e", "{}", NEW).await,
        Received::Accepted { .. }
    ));
}

#[tokio::test]
async fn an_event_that_could_not_be_queued_is_taken_on_the_senders_retry() {
    let w = world();
    *w.queue.down.lock().unwrap() = true;
    assert_eq!(w.send("m", "{}", OLD).await, Received::Unavailable);
    *w.queue.down.lock().unwrap() = false;
    assert!(matches!(
        w.send("m", "{}", OLD).await,
        Received::Accepted { .. }
    ));
    assert_eq!(w.queued().len(), 1);
}

#[tokio::test]
async fn handshakes_answer_only_with_the_secret() {
    let w = world();
    let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        w.receiver
            .challenge(
                "meta",
                &query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", OLD),
                    ("hub.challenge", "1158201444")
                ])
            )
            .await,
        Challenge::Answer {
            body: "1158201444".into(),
            json: false
        }
    );
    assert!(matches!(
        w.receiver
            .challenge(
                "meta",
                &query(&[
                    ("hub.mode", "subscribe"),
                    ("hub.verify_token", "guess"),
                    ("hub.challenge", "1")
                ])
            )
            .await,
        Challenge::Refused(_)
    ));
    let Challenge::Answer { body, json: true } = w
        .receiver
        .challenge("x", &query(&[("crc_token", "abc")]))
        .await
    else {
        panic!("X answers its CRC")
    };
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        token["response_token"]
            .as_str()
            .unwrap()
            .starts_with("sha256=")
    );
    assert_eq!(
        w.receiver.challenge("demo", &HashMap::new()).await,
        Challenge::NotFound
    );
}
