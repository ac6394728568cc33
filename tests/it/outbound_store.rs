//! The outbound webhook adapters on the emulated AWS: endpoints and attempts on DynamoDB (keys, the
//! optimistic replace, tenancy, newest-first attempts), the fan-out to SQS, and the DLQ send.

use crate::support::*;
use aws_sdk_dynamodb::types::AttributeValue;
use herald_aws::Clients;
use herald_aws::dynamo::DynamoStore;
use herald_aws::outbound::SqsOutboundQueue;
use herald_domain::StoreError;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::ids::TenantId;
use herald_domain::outbound::{
    AttemptRecord, Disabled, Endpoint, EndpointId, EndpointStore, EventType, OutboundEvent,
    OutboundEvents, OutboundQueue,
};
use herald_domain::secrets::token_crypto::{TokenSweep, key_id};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

struct Env {
    vars: HashMap<String, String>,
    clients: Clients,
    store: Arc<DynamoStore>,
}

impl Env {
    async fn new() -> Self {
        let Emulator { vars, clients } = Emulator::new().await;
        let store = Arc::new(store_on(&clients, &vars, [7; 32]));
        Self {
            vars,
            clients,
            store,
        }
    }

    fn queue(&self) -> SqsOutboundQueue {
        SqsOutboundQueue::new(
            self.clients.sqs.clone(),
            &self.vars["HERALD_QUEUE_URL_OUTBOUND_QUEUE"],
        )
        .with_dead_letter_queue(&self.vars["HERALD_QUEUE_URL_OUTBOUND_DEAD_LETTER_QUEUE"])
    }

    async fn receive(&self, url_var: &str) -> Vec<aws_sdk_sqs::types::Message> {
        self.clients
            .sqs
            .receive_message()
            .queue_url(&self.vars[url_var])
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }
}

fn endpoint(tenant: &str, types: &[EventType]) -> Endpoint {
    let now = SystemClock.now();
    Endpoint {
        id: EndpointId::generate(),
        tenant_id: TenantId::from(tenant),
        url: "https://hooks.example.com/in".into(),
        event_types: types.to_vec(),
        disabled: None,
        secret: herald_webhooks::standard::generate_secret().unwrap(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn endpoints_round_trip_with_optimistic_replace_and_tenancy() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let a = endpoint("ten_a", &[EventType::PostPublished, EventType::PostFailed]);
    let b = endpoint("ten_a", &[EventType::DeadLetterAdded]);
    let other = endpoint("ten_b", &[EventType::PostPublished]);
    for e in [&a, &b, &other] {
        store.create_endpoint(e).await.unwrap();
    }
    assert_eq!(
        store.create_endpoint(&a).await,
        Err(StoreError::Conflict),
        "an id is written once"
    );
    let got = store
        .get_endpoint(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.url, a.url);
    assert_eq!(got.event_types, a.event_types);
    assert_eq!(got.secret.expose_secret(), a.secret.expose_secret());
    assert!(got.is_enabled() && got.previous_secret.is_none());
    assert!(
        store
            .get_endpoint(&other.tenant_id, &a.id)
            .await
            .unwrap()
            .is_none(),
        "another tenant's id is not found"
    );
    let mut listed: Vec<String> = store
        .list_endpoints(&a.tenant_id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id.0)
        .collect();
    listed.sort();
    let mut expected = vec![a.id.0.clone(), b.id.0.clone()];
    expected.sort();
    assert_eq!(listed, expected);

    // Rotation keeps the previous secret with its expiry; a stale replace loses.
    let now = SystemClock.now() + time::Duration::seconds(1);
    let new_secret = herald_webhooks::standard::generate_secret().unwrap();
    let rotated = got.rotated(new_secret.clone(), now, Duration::from_secs(3600));
    store
        .replace_endpoint(&rotated, got.updated_at)
        .await
        .unwrap();
    let disabled = Endpoint {
        disabled: Some(Disabled {
            reason: "gone".into(),
            at: now,
        }),
        updated_at: now + time::Duration::seconds(1),
        ..got.clone()
    };
    assert_eq!(
        store.replace_endpoint(&disabled, got.updated_at).await,
        Err(StoreError::Conflict),
        "written against a version that is no longer there"
    );
    let read = store
        .get_endpoint(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret.expose_secret(), new_secret.expose_secret());
    let previous = read.previous_secret.as_ref().unwrap();
    assert_eq!(previous.secret.expose_secret(), a.secret.expose_secret());
    assert_eq!(read.signing_secrets(now).len(), 2);
    assert_eq!(
        read.signing_secrets(now + time::Duration::hours(2)).len(),
        1
    );
    let disabled = Endpoint {
        updated_at: now + time::Duration::seconds(1),
        disabled: Some(Disabled {
            reason: "gone".into(),
            at: now,
        }),
        ..read.clone()
    };
    store
        .replace_endpoint(&disabled, read.updated_at)
        .await
        .unwrap();
    let read = store
        .get_endpoint(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.disabled.unwrap().reason, "gone");

    let removed = store
        .delete_endpoint(&a.tenant_id, &a.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed.id, a.id);
    assert!(
        store
            .delete_endpoint(&a.tenant_id, &a.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_endpoint(&a.tenant_id, &a.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn attempts_list_newest_first_per_endpoint() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let e = endpoint("ten_a", &[EventType::PostPublished]);
    let start = SystemClock.now();
    for n in 1..=3u32 {
        store
            .record_attempt(&AttemptRecord {
                tenant_id: e.tenant_id.clone(),
                endpoint_id: e.id.clone(),
                event_id: "msg_1".into(),
                event_type: EventType::PostPublished,
                attempt: n,
                at: start + time::Duration::seconds(i64::from(n)),
                status: (n < 3).then_some(500),
                duration_ms: 12,
                error: (n == 3).then(|| "timed out".to_owned()),
                outcome: "retrying".into(),
                next_attempt_at: Some(start + time::Duration::minutes(5)),
            })
            .await
            .unwrap();
    }
    let listed = store.list_attempts(&e.tenant_id, &e.id, 2).await.unwrap();
    let numbers: Vec<u32> = listed.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, [3, 2]);
    assert_eq!(listed[0].status, None);
    assert_eq!(listed[0].error.as_deref(), Some("timed out"));
    assert_eq!(listed[1].status, Some(500));
    assert!(
        store
            .list_attempts(&TenantId::from("ten_b"), &e.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "another tenant sees none"
    );
}

#[tokio::test]
async fn the_fan_out_enqueues_one_message_per_subscribed_enabled_endpoint() {
    let env = Env::new().await;
    let subscribed = endpoint("ten_f", &[EventType::PostPublished]);
    let unsubscribed = endpoint("ten_f", &[EventType::PostFailed]);
    let mut disabled = endpoint("ten_f", &[EventType::PostPublished]);
    disabled.disabled = Some(Disabled {
        reason: "410".into(),
        at: SystemClock.now(),
    });
    for e in [&subscribed, &unsubscribed, &disabled] {
        env.store.create_endpoint(e).await.unwrap();
    }
    let events = OutboundEvents::new(
        env.store.clone(),
        Arc::new(env.queue()),
        Arc::new(SystemClock),
        time::Duration::ZERO,
    );
    let event = OutboundEvent::new(
        EventType::PostPublished,
        TenantId::from("ten_f"),
        &["post_1", "acc_1"],
        SystemClock.now(),
        serde_json::json!({"post_id": "post_1"}),
    );
    let out = events.emit(&event, "corr-1").await;
    assert_eq!((out.enqueued, out.failed), (1, 0));
    let received = env.receive("HERALD_QUEUE_URL_OUTBOUND_QUEUE").await;
    assert_eq!(received.len(), 1);
    let message: herald_domain::outbound::DeliveryMessage =
        serde_json::from_str(received[0].body().unwrap()).unwrap();
    assert_eq!(message.endpoint_id, subscribed.id);
    assert_eq!(message.event, event);
    assert_eq!(message.attempts, 0);

    // A queue that cannot be reached is counted, never raised.
    let broken = OutboundEvents::new(
        env.store.clone(),
        Arc::new(SqsOutboundQueue::new(
            env.clients.sqs.clone(),
            format!("{}-missing", env.vars["HERALD_QUEUE_URL_OUTBOUND_QUEUE"]),
        )),
        Arc::new(SystemClock),
        time::Duration::ZERO,
    );
    let out = broken.emit(&event, "corr-2").await;
    assert_eq!((out.enqueued, out.failed), (0, 1));

    // The DLQ send carries the reason.
    env.queue()
        .dead_letter(&message, "10 attempts; the last answered 500")
        .await
        .unwrap();
    let dead = env
        .receive("HERALD_QUEUE_URL_OUTBOUND_DEAD_LETTER_QUEUE")
        .await;
    assert_eq!(dead.len(), 1);
    let reason = dead[0]
        .message_attributes()
        .unwrap()
        .get("dead_letter_reason")
        .unwrap()
        .string_value()
        .unwrap();
    assert_eq!(reason, "10 attempts; the last answered 500");
}

/// Signing secrets are sealed at rest, bound to their endpoint; one written in plaintext
/// before sealing is still read, and the token sweep seals it, as it moves sealed ones to a
/// new key after a rotation.
#[tokio::test]
async fn signing_secrets_are_sealed_at_rest_and_the_sweep_seals_and_reseals_them() {
    let env = Env::new().await;
    let table = &env.vars["HERALD_TABLE"];
    let raw = |e: &Endpoint| {
        let ddb = env.clients.dynamodb.clone();
        let (pk, sk) = (
            format!("TENANT#{}", e.tenant_id),
            format!("WEBHOOKEP#{}", e.id),
        );
        async move {
            ddb.get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let text = |v: &AttributeValue| v.as_s().unwrap().clone();
    let sealed = endpoint("ten_seal", &[EventType::PostPublished]);
    env.store.create_endpoint(&sealed).await.unwrap();
    let rotated = sealed.rotated(
        herald_webhooks::standard::generate_secret().unwrap(),
        SystemClock.now() + time::Duration::seconds(1),
        Duration::from_secs(3600),
    );
    env.store
        .replace_endpoint(&rotated, sealed.updated_at)
        .await
        .unwrap();
    let item = raw(&rotated).await;
    let under_7 = format!("v1.{}.", key_id(&[7; 32]));
    for field in ["secret", "previous_secret"] {
        let stored = text(&item[field]);
        assert!(stored.starts_with(&under_7), "{field}: {stored}");
        assert!(!stored.contains("whsec_"), "{field} is plaintext");
    }
    // Moved onto another endpoint, a sealed secret does not open.
    let other = endpoint("ten_seal", &[EventType::PostFailed]);
    env.store.create_endpoint(&other).await.unwrap();
    env.clients
        .dynamodb
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("TENANT#ten_seal".into()))
        .key("sk", AttributeValue::S(format!("WEBHOOKEP#{}", other.id)))
        .update_expression("SET secret = :s")
        .expression_attribute_values(":s", item["secret"].clone())
        .send()
        .await
        .unwrap();
    assert!(matches!(
        env.store.get_endpoint(&other.tenant_id, &other.id).await,
        Err(StoreError::Invalid(_))
    ));
    // (Gone again, so the sweep below has nothing unreadable.)
    env.clients
        .dynamodb
        .delete_item()
        .table_name(table)
        .key("pk", AttributeValue::S("TENANT#ten_seal".into()))
        .key("sk", AttributeValue::S(format!("WEBHOOKEP#{}", other.id)))
        .send()
        .await
        .unwrap();

    // A plaintext secret from before sealing.
    let legacy = endpoint("ten_seal", &[EventType::PostPublished]);
    let mut legacy_item = raw(&rotated).await;
    legacy_item.insert(
        "sk".into(),
        AttributeValue::S(format!("WEBHOOKEP#{}", legacy.id)),
    );
    legacy_item.insert(
        "secret".into(),
        AttributeValue::S(legacy.secret.expose_secret().to_owned()),
    );
    legacy_item.remove("previous_secret");
    legacy_item.remove("previous_until");
    env.clients
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(legacy_item))
        .send()
        .await
        .unwrap();
    let read = env
        .store
        .get_endpoint(&legacy.tenant_id, &legacy.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret.expose_secret(), legacy.secret.expose_secret());

    // A pass marked done before endpoints were sealed (no `covers`) does not stop the first
    // pass after upgrading: it seals the plaintext secret under the current key.
    env.clients
        .dynamodb
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S("SWEEP#tokens".into()))
        .item("sk", AttributeValue::S("STATE".into()))
        .item("key_id", AttributeValue::S(key_id(&[7; 32])))
        .send()
        .await
        .unwrap();
    let report = env
        .store
        .sweep_tokens(SystemClock.now(), time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((report.resealed, report.unreadable), (1, 0), "{report:?}");
    assert!(text(&raw(&legacy).await["secret"]).starts_with(&under_7));
    let again = env
        .store
        .sweep_tokens(SystemClock.now(), time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((again.examined, again.done), (0, true), "{again:?}");

    // The key rotates: the sweep moves every secret to the new key.
    let store = DynamoStore::new(env.clients.dynamodb.clone(), table)
        .with_token_vault(vault(&[8; 32], &[&[7; 32]]));
    let report = store
        .sweep_tokens(SystemClock.now(), time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.unreadable, 0, "{report:?}");
    assert!(report.resealed >= 2, "{report:?}");
    let under_8 = format!("v1.{}.", key_id(&[8; 32]));
    let item = raw(&legacy).await;
    assert!(text(&item["secret"]).starts_with(&under_8));
    let item = raw(&rotated).await;
    assert!(text(&item["secret"]).starts_with(&under_8));
    assert!(text(&item["previous_secret"]).starts_with(&under_8));
    // Only the new key is needed now.
    let new_only = DynamoStore::new(env.clients.dynamodb.clone(), table)
        .with_token_vault(vault(&[8; 32], &[]));
    let read = new_only
        .get_endpoint(&rotated.tenant_id, &rotated.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret.expose_secret(), rotated.secret.expose_secret());
    assert_eq!(
        read.previous_secret.unwrap().secret.expose_secret(),
        sealed.secret.expose_secret()
    );
    let read = new_only
        .get_endpoint(&legacy.tenant_id, &legacy.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.secret.expose_secret(), legacy.secret.expose_secret());
}
