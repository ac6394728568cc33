//! The webhook receiver's handler on moto: the real router, secrets from Secrets Manager, the
//! event id's conditional write in DynamoDB and the hand-over to SQS.

use aws_sdk_secretsmanager::types::Tag;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use herald_aws::Clients;
use herald_domain::secrets::KIND_TAG;
use herald_fn_webhooks::{Config, receiver};
use herald_tests::{bootstrap, moto, sdk_config};
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
        let endpoint = moto().endpoint.clone();
        let vars = bootstrap(&endpoint);
        let clients = Clients::from_sdk_config(&sdk_config(&endpoint).await);
        let name = format!("herald-test-demo-{}", uuid::Uuid::new_v4().simple());
        let secret = standard::generate_secret().unwrap();
        let arn = clients
            .secrets
            .create_secret()
            .name(&name)
            .secret_string(secrecy::ExposeSecret::expose_secret(&secret))
            .tags(
                Tag::builder()
                    .key(KIND_TAG)
                    .value("webhook-signing")
                    .build(),
            )
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_owned();
        let queue_url = clients
            .sqs
            .create_queue()
            .queue_name(format!(
                "herald-test-webhooks-{}",
                uuid::Uuid::new_v4().simple()
            ))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_owned();
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
async fn a_signed_event_is_queued_once_and_forgeries_are_refused_without_a_trace() {
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
    let queued = env.queued().await;
    assert_eq!(queued.len(), 1, "the replay queued nothing: {queued:?}");
    assert_eq!(queued[0]["event_id"], "msg_1");
    assert_eq!(queued[0]["provider"], "demo");
    assert_eq!(queued[0]["body"], body);
}

#[tokio::test]
async fn an_event_id_is_remembered_until_it_expires_even_without_ttl_deletion() {
    use herald_domain::inbound::WebhookInbox;
    let endpoint = moto().endpoint.clone();
    let vars = bootstrap(&endpoint);
    let clients = Clients::from_sdk_config(&sdk_config(&endpoint).await);
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
    // moto never deletes expired items: the condition checks the expiry itself.
    let later = until + time::Duration::seconds(1);
    assert!(
        inbox
            .first_sighting("demo", "e1", later, later + time::Duration::hours(1))
            .await
            .unwrap()
    );
    inbox.forget("demo", "e1").await.unwrap();
    assert!(
        inbox
            .first_sighting("demo", "e1", later, later)
            .await
            .unwrap()
    );
}
