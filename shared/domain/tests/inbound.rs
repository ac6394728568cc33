//! The webhook receiver over in-process fakes: accepted once, refused without a trace,
//! rotation with grace, refetch after a fresh rotation, and no id kept for an event that was
//! not queued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::clock::{Clock, FakeClock, SystemEntropy};
use herald_domain::inbound::*;
use herald_domain::rate_limits::{MemoryCounter, RequestPolicy};
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
        counter: Arc::new(MemoryCounter::default()),
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
            .outcome
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
    // Queued before its id is recorded, a replay is queued again: the processor keeps each
    // (provider, event id) once.
    let queued = w.queued();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].event_id, queued[1].event_id);
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
    let unsigned = w
        .receiver
        .receive("demo", &Request::new(&[], b"{}"))
        .await
        .outcome;
    assert!(matches!(unsigned, Received::Refused(_)), "{unsigned:?}");
    assert_eq!(
        w.receiver
            .receive("nobody", &Request::new(&[], b"{}"))
            .await
            .outcome,
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

fn event(scheme: Scheme, body: &str) -> InboundEvent {
    InboundEvent {
        provider: "p".into(),
        scheme,
        event_id: "e".into(),
        received_at: datetime!(2026-06-01 12:00 UTC),
        correlation_id: "c".into(),
        body: body.into(),
    }
}

#[test]
fn platform_events_name_the_posts_they_remove() {
    use herald_domain::model::{Account, Platform};
    let meta = event(
        Scheme::Meta,
        r#"{"object":"page","entry":[{"id":"123","time":1,"changes":[{"field":"feed","value":{"item":"status","verb":"remove","post_id":"123_456"}}]}]}"#,
    );
    let (kind, removals) = read_event(&meta);
    assert_eq!(kind, "meta.feed.remove");
    assert_eq!(
        removals,
        [Removal {
            account_id: Account::id_for(Platform::Facebook, "123"),
            platform_post_id: "123_456".into()
        }]
    );
    let x = event(
        Scheme::X,
        r#"{"for_user_id":"42","tweet_delete_events":[{"status":{"id":"1001","user_id":"42"},"timestamp_ms":"1"}]}"#,
    );
    let (kind, removals) = read_event(&x);
    assert_eq!(kind, "x.tweet_delete_events");
    assert_eq!(removals[0].account_id, Account::id_for(Platform::X, "42"));
    assert_eq!(removals[0].platform_post_id, "1001");
    let billing = event(Scheme::Stripe, r#"{"id":"evt_1","type":"invoice.paid"}"#);
    assert_eq!(read_event(&billing), ("invoice.paid".into(), vec![]));
    for garbage in [
        "",
        "[]",
        "{",
        r#"{"entry":"nope"}"#,
        r#"{"for_user_id":{}}"#,
    ] {
        for scheme in [Scheme::Meta, Scheme::X, Scheme::Sms] {
            let (_, removals) = read_event(&event(scheme, garbage));
            assert!(removals.is_empty(), "{scheme:?} {garbage}");
        }
    }
}

/// The processor's store: removals by (account, post id), kept events, and a failure to
/// inject once.
#[derive(Default)]
struct Applied {
    published: Mutex<HashSet<(String, String)>>,
    removed: Mutex<Vec<(String, String)>>,
    kept: Mutex<HashSet<(String, String)>>,
    fail_keep_once: Mutex<bool>,
}

#[async_trait]
impl InboundStore for Applied {
    async fn mark_removed(&self, r: &Removal, _: OffsetDateTime) -> Result<bool, StoreError> {
        let key = (r.account_id.0.clone(), r.platform_post_id.clone());
        if !self.published.lock().unwrap().contains(&key) {
            return Ok(false);
        }
        let mut removed = self.removed.lock().unwrap();
        if removed.contains(&key) {
            return Ok(false);
        }
        removed.push(key);
        Ok(true)
    }
    async fn keep_event(&self, e: &InboundEvent, _: &str, _: usize) -> Result<bool, StoreError> {
        let mut fail = self.fail_keep_once.lock().unwrap();
        if *fail {
            *fail = false;
            return Err(StoreError::Unavailable("throttled".into()));
        }
        Ok(self
            .kept
            .lock()
            .unwrap()
            .insert((e.provider.clone(), e.event_id.clone())))
    }
}

#[tokio::test]
async fn a_redelivered_event_applies_nothing_twice_even_after_failing_midway() {
    use herald_domain::model::{Account, Platform};
    let store = Arc::new(Applied::default());
    let account = Account::id_for(Platform::X, "42");
    store
        .published
        .lock()
        .unwrap()
        .insert((account.0.clone(), "1001".into()));
    let processor = WebhookProcessor {
        store: store.clone(),
        clock: Arc::new(FakeClock::new(datetime!(2026-06-01 12:00 UTC))),
        billing: None,
        campaigns: None,
        keywords: None,
        events: None,
    };
    let deletion = event(
        Scheme::X,
        r#"{"for_user_id":"42","tweet_delete_events":[{"status":{"id":"1001"}},{"status":{"id":"999"}}]}"#,
    );
    // The removal lands, then keeping the event fails: the message is redelivered.
    *store.fail_keep_once.lock().unwrap() = true;
    assert!(processor.process(&deletion).await.is_err());
    let again = processor.process(&deletion).await.unwrap();
    assert_eq!(
        (again.removed, again.duplicate),
        (0, false),
        "already removed"
    );
    let third = processor.process(&deletion).await.unwrap();
    assert!(third.duplicate);
    assert_eq!(
        store.removed.lock().unwrap().len(),
        1,
        "one post removed, once"
    );
}

#[tokio::test]
async fn a_provider_past_its_budget_is_throttled_and_forgeries_do_not_spend_it() {
    let mut w = world();
    w.receiver.config.rate = RequestPolicy {
        limit: 2,
        window: time::Duration::minutes(1),
    };
    // Forged requests are refused before they are counted.
    for _ in 0..5 {
        let forged = w.send("forged", "{}", NEW).await;
        assert_eq!(forged, Received::Refused(Rejection::BadSignature));
    }
    for id in ["a", "b"] {
        assert!(matches!(
            w.send(id, "{}", OLD).await,
            Received::Accepted { .. }
        ));
    }
    assert_eq!(w.send("c", "{}", OLD).await, Received::Throttled);
    assert_eq!(w.queued().len(), 2, "the throttled event was not queued");
    // The decision rides along for the headers; a new window admits again.
    let signed = standard::sign("d", w.clock.now(), b"{}", &[SecretString::from(OLD)]).unwrap();
    let headers: Vec<(&str, &[u8])> = signed
        .pairs()
        .iter()
        .map(|(k, v)| (*k, v.as_bytes()))
        .collect();
    let receipt = w
        .receiver
        .receive("demo", &Request::new(&headers, b"{}"))
        .await;
    let rate = receipt.rate.unwrap();
    assert!(
        !rate.allowed && rate.remaining == 0 && rate.limit == 2,
        "{rate:?}"
    );
    w.clock.advance(time::Duration::minutes(1));
    assert!(matches!(
        w.send("e", "{}", OLD).await,
        Received::Accepted { .. }
    ));
}

/// A delivery receipt that overtakes the sender's record of its send fails (the queue brings
/// it back); once the send is recorded it applies, once; a receipt for a message Herald did
/// not send is kept and changes nothing.
#[tokio::test]
async fn a_receipt_ahead_of_its_send_comes_back_and_then_applies_once() {
    use herald_domain::campaigns::memory::MemoryCampaigns;
    use herald_domain::campaigns::{
        Audience, Campaign, CampaignStatus, CampaignStore, Progress, Recipient, RecipientState,
        SendOutcome,
    };
    use herald_domain::contacts::memory::MemoryContacts;
    use herald_domain::contacts::{Consent, Contact, ContactStore};
    use herald_domain::ids::{CampaignId, ContactId, TenantId};
    let at = datetime!(2026-06-01 12:00 UTC);
    let tenant = TenantId("ten_a".into());
    let contacts = Arc::new(MemoryContacts::default());
    let contact = Contact {
        id: ContactId("con_1".into()),
        tenant_id: tenant.clone(),
        phone: "+14155552671".into(),
        name: None,
        tags: Default::default(),
        fields: Default::default(),
        consent: Consent::OptedIn {
            at,
            source: "web_form".into(),
        },
        version: 1,
        created_at: at,
        updated_at: at,
    };
    contacts.insert_contact(&contact).await.unwrap();
    let campaigns = Arc::new(MemoryCampaigns::new(contacts));
    let campaign = Campaign {
        id: CampaignId("cmp_1".into()),
        tenant_id: tenant.clone(),
        name: "c".into(),
        text: "hi".into(),
        fallbacks: Default::default(),
        audience: Audience::Contacts(vec![contact.id.clone()]),
        sender: "HERALD".into(),
        status: CampaignStatus::Sending,
        progress: Progress::default(),
        enqueue: Default::default(),
        problem: None,
        created_by: None,
        approval: None,
        quiet_hours: None,
        version: 1,
        created_at: at,
        updated_at: at,
    };
    campaigns.insert_campaign(&campaign).await.unwrap();
    let recipient = Recipient {
        tenant_id: tenant.clone(),
        campaign_id: campaign.id.clone(),
        contact_id: contact.id.clone(),
        phone: contact.phone.clone(),
        text: "hi".into(),
        segments: 1,
        batch: 0,
        state: RecipientState::Queued,
    };
    campaigns
        .put_recipients(std::slice::from_ref(&recipient))
        .await
        .unwrap();
    campaigns.claim(&recipient, at, at).await.unwrap();
    let announced = Arc::new(Announced::default());
    let processor = WebhookProcessor {
        store: Arc::new(Applied::default()),
        clock: Arc::new(FakeClock::new(at)),
        billing: None,
        campaigns: Some(campaigns.clone()),
        keywords: None,
        events: Some(announced.clone()),
    };
    let receipt = event(
        Scheme::Sms,
        &format!(
            r#"{{"id":"dlr_1","type":"receipt","message_id":"sm_1","client_ref":"{}","status":"delivered"}}"#,
            recipient.client_ref()
        ),
    );
    assert!(
        processor.process(&receipt).await.is_err(),
        "ahead of its send"
    );
    campaigns
        .finish(
            &recipient,
            &SendOutcome::Sent {
                message_id: "sm_1".into(),
            },
        )
        .await
        .unwrap();
    assert!(processor.process(&receipt).await.unwrap().receipt);
    let again = processor.process(&receipt).await.unwrap();
    assert!(!again.receipt && again.duplicate);
    let foreign = event(
        Scheme::Sms,
        r#"{"id":"dlr_9","type":"receipt","message_id":"sm_9","client_ref":"theirs","status":"delivered"}"#,
    );
    assert!(!processor.process(&foreign).await.unwrap().receipt);
    // A receipt for a keyword's reply (its own reference prefix) is no campaign send's.
    let reply = event(
        Scheme::Sms,
        r#"{"id":"dlr_8","type":"receipt","message_id":"sm_8","client_ref":"hk_0011223344556677","status":"delivered"}"#,
    );
    assert!(!processor.process(&reply).await.unwrap().receipt);
    let c = campaigns
        .get_campaign(&tenant, &campaign.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.progress.sent, c.progress.delivered), (1, 1));
    // Announced once: the duplicate and the foreign receipts changed nothing.
    let events = announced.0.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type.as_str(), "sms.delivered");
    assert_eq!(events[0].tenant_id, tenant);
    assert_eq!(events[0].data["contact_id"], "con_1");
    assert_eq!(events[0].data["message_id"], "sm_1");
}

/// The facts the processor announces.
#[derive(Default)]
struct Announced(Mutex<Vec<herald_domain::outbound::OutboundEvent>>);

#[async_trait]
impl herald_domain::publishing::settle::OutcomeEvents for Announced {
    async fn emit(&self, event: &herald_domain::outbound::OutboundEvent, _: &str) {
        self.0.lock().unwrap().push(event.clone());
    }
}
