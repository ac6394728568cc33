//! The webhook receiver's handler on the emulated AWS: the real router, secrets from Secrets Manager, the
//! event id's conditional write in DynamoDB and the hand-over to SQS.

use crate::support::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_aws::Clients;
use herald_fn_webhooks::{Config, receiver};
use herald_tests::{create_queue, create_secret};
use herald_webhooks::standard;
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

struct Env {
    clients: Clients,
    router: axum::Router,
    queue_url: String,
    secret: String,
}

impl Env {
    async fn new() -> Self {
        let Emulator { vars, clients } = Emulator::new().await;
        let secret = standard::generate_secret().unwrap();
        let arn = create_secret(
            &clients.secrets,
            "herald-test-demo-",
            Some("webhook-signing"),
            Some(secrecy::ExposeSecret::expose_secret(&secret)),
        )
        .await;
        let queue_url = create_queue(&clients.sqs, "herald-test-webhooks-").await;
        let config = Config::from_env(&HashMap::from([
            ("HERALD_TABLE".to_owned(), vars["HERALD_TABLE"].clone()),
            ("HERALD_WEBHOOK_QUEUE_URL".to_owned(), queue_url.clone()),
            (
                "HERALD_WEBHOOK_PROVIDERS".to_owned(),
                format!("demo=standard_webhooks:{arn}"),
            ),
        ]))
        .unwrap();
        let router = herald_api::webhooks::router(Arc::new(receiver(&config, &clients)));
        Self {
            clients,
            router,
            queue_url,
            secret: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        }
    }

    async fn post(&self, id: &str, body: &str, secret: &str) -> (StatusCode, String) {
        let signed = standard::sign(
            id,
            time::OffsetDateTime::now_utc(),
            body.as_bytes(),
            &[SecretString::from(secret)],
        )
        .unwrap();
        let mut request = Request::post("/webhooks/demo");
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(content_type, "application/problem+json");
        }
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn queued(&self) -> Vec<serde_json::Value> {
        let out = self
            .clients
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_signed_event_is_taken_and_forgeries_are_refused_without_a_trace() {
    let env = Env::new().await;
    let body = r#"{"type":"invoice.paid","data":{"amount":1200}}"#;
    let wrong = standard::generate_secret().unwrap();
    let wrong = secrecy::ExposeSecret::expose_secret(&wrong).to_owned();
    let (status, refusal) = env.post("msg_1", body, &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !refusal.contains("signature"),
        "a refusal says nothing about why: {refusal}"
    );
    assert!(env.queued().await.is_empty());

    assert_eq!(env.post("msg_1", body, &env.secret).await.0, StatusCode::OK);
    assert_eq!(
        env.post("msg_1", body, &env.secret).await.0,
        StatusCode::OK,
        "a replay is acknowledged"
    );
    // The replay is queued too (before its id was found recorded): the processor keeps each
    // event once.
    let queued = env.queued().await;
    assert_eq!(queued.len(), 2, "{queued:?}");
    assert_eq!(queued[1]["event_id"], "msg_1");
    assert_eq!(queued[0]["event_id"], "msg_1");
    assert_eq!(queued[0]["provider"], "demo");
    assert_eq!(queued[0]["body"], body);

    // Too large for the queue and the kept item: refused before any verification.
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(200 * 1024));
    let (status, _) = env.post("msg_2", &huge, &env.secret).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(env.queued().await.len(), 2);
}

#[tokio::test]
async fn an_event_id_is_remembered_until_it_expires_even_without_ttl_deletion() {
    use herald_domain::inbound::WebhookInbox;
    let Emulator { vars, clients } = Emulator::new().await;
    let inbox =
        herald_aws::dynamo::DynamoStore::new(clients.dynamodb.clone(), &vars["HERALD_TABLE"]);
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::hours(1);
    assert!(
        inbox
            .first_sighting("demo", "e1", now, until)
            .await
            .unwrap()
    );
    assert!(
        !inbox
            .first_sighting("demo", "e1", now, until)
            .await
            .unwrap()
    );
    assert!(
        inbox
            .first_sighting("other", "e1", now, until)
            .await
            .unwrap(),
        "ids are scoped by provider"
    );
    // TTL deletion may lag (it has not run here): the condition checks the expiry itself.
    let later = until + time::Duration::seconds(1);
    assert!(
        inbox
            .first_sighting("demo", "e1", later, later + time::Duration::hours(1))
            .await
            .unwrap()
    );
}
