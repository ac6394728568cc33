//! The router in-process (`oneshot`) over the in-memory ports.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use herald_api::{AppState, router};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::idempotency::{Idempotency, IdempotencyKey};
use herald_domain::memory::{MemoryMedia, MemoryStore};
use herald_domain::ports::HeartbeatStore;
use herald_domain::tenants::create_tenant;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    app: Router,
    store: Arc<MemoryStore>,
    /// The media bucket: `put` stands in for a client's upload to the presigned URL.
    media: Arc<MemoryMedia>,
    dead_letters: Arc<herald_domain::memory::MemoryDeadLetters>,
    /// The service over the same queues and records: tests drain with it.
    drain: herald_domain::dead_letters::DeadLetterService,
    idempotency: Idempotency,
    /// The platforms' consent pages (`consent` signs in as a user).
    authorization: Arc<herald_domain::connect::memory::MemoryAuthorization>,
    /// Ingestion's streams: `register` stands in for a connected account's stream.
    ingest: Arc<herald_domain::ingest::memory::MemoryIngestStore>,
    wallets: Arc<herald_domain::wallet::memory::MemoryWallets>,
    /// The batches enqueued campaigns queued for the SMS sender.
    sms_queue: Arc<herald_domain::campaigns::memory::MemorySmsQueue>,
    /// The jobs started imports queued, and the service that works them (the SMS sender's).
    import_queue: Arc<herald_domain::imports::memory::MemoryImportQueue>,
    imports: herald_domain::imports::ImportService,
    /// The events the API announced itself (`wallet.low_balance`).
    announced: Arc<herald_domain::outbound::memory::RecordedEvents>,
}

/// An answer's status, headers and body (JSON, or the text as a string, or null when empty).
type Answer = (StatusCode, axum::http::HeaderMap, Value);

struct Tenant {
    id: String,
    key: String,
    /// The admin key's id (what idempotency records are owned by).
    key_id: String,
}

impl Api {
    fn new() -> Self {
        Self::over(AppState::in_memory())
    }

    /// The router over `m` (a test may change its state first, e.g. set an operator token).
    fn over(m: herald_api::memory::MemoryApp) -> Self {
        Self {
            imports: m.state.imports.clone(),
            app: router(m.state),
            store: m.store,
            media: m.media,
            dead_letters: m.dead_letters,
            drain: m.dead_letter_service,
            idempotency: m.idempotency,
            authorization: m.authorization,
            ingest: m.ingest,
            wallets: m.wallets,
            sms_queue: m.sms_queue,
            import_queue: m.import_queue,
            announced: m.announced,
        }
    }

    async fn tenant(&self, require_approval: bool) -> Tenant {
        let (t, key, secret) =
            create_tenant(self.store.as_ref(), &SystemClock, "t", require_approval)
                .await
                .unwrap();
        Tenant {
            id: t.id.0,
            key: secret.expose_secret().to_owned(),
            key_id: key.id.0,
        }
    }

    /// `GET path` with `key`.
    async fn get(&self, path: &str, key: &str) -> Answer {
        self.call("GET", path, Some(key), None, None).await
    }

    /// `POST path` with `key` and a JSON body, no idempotency key.
    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("POST", path, Some(key), None, Some(body)).await
    }

    /// `POST path` with `key` and no body (an action: approve, requeue, rotate).
    async fn act(&self, path: &str, key: &str) -> Answer {
        self.call("POST", path, Some(key), None, None).await
    }

    async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.call("PATCH", path, Some(key), None, Some(body)).await
    }

    async fn delete(&self, path: &str, key: &str) -> Answer {
        self.call("DELETE", path, Some(key), None, None).await
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idem: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        if let Some(i) = idem {
            req = req.header("idempotency-key", i);
        }
        let body = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, headers, v)
    }

    async fn connect(&self, t: &Tenant, platform: &str, external: &str) -> String {
        let (s, _, v) = self
            .post("/v1/accounts", &t.key, json!({"platform": platform, "external_id": external, "access_token": "secret-token-123"}))
            .await;
        assert!(s.is_success(), "{s} {v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn create_post(
        &self,
        t: &Tenant,
        key: &str,
        account: &str,
        text: &str,
    ) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.call(
            "POST",
            "/v1/posts",
            Some(&t.key),
            Some(key),
            Some(json!({"text": text, "targets": [{"account_id": account}]})),
        )
        .await
    }
}

fn assert_problem(headers: &axum::http::HeaderMap, body: &Value, status: StatusCode) {
    assert_eq!(
        headers["content-type"], "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(
        body["type"].as_str().unwrap().starts_with("/problems/"),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

mod access;
mod api_keys;
mod calendar;
mod campaigns;
mod connect;
mod console;
mod contacts;
mod contract;
mod drafts;
mod fuzz;
mod imports;
mod media;
mod operations;
mod posts;
mod preview;
mod rate_limits;
mod reference;
mod resets;
mod slots;
mod threads;
mod wallet;
mod webhook_endpoints;
mod zones;
