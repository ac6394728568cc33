//! Herald's HTTP API v1. `router` builds the whole application over the domain's ports, so the
//! same router runs behind `lambda_http` in production and under `oneshot` in tests.
//!
//! Layers, outermost first: correlation id and request log → authentication (API key →
//! tenant and role) → idempotency keys (mutating methods) → the route.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod dto;
pub mod embed;
mod embed_page;
pub mod error;
pub mod idempotency;
#[cfg(feature = "memory")]
pub mod memory;
pub mod openapi;
mod routes;
pub mod state;
pub mod webhooks;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use herald_domain::clock::Clock;
use herald_domain::idempotency::Idempotency;
use herald_domain::ports::{AccountStore, AuditLog, CrisisStore, HeartbeatStore, TenantStore};
use herald_domain::publishing::posts::PostService;
use std::sync::Arc;
use tracing::Instrument;

pub use error::ApiError;

/// Everything the handlers share, built once per cold start.
#[derive(Clone)]
pub struct AppState {
    pub tenants: Arc<dyn TenantStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub crises: Arc<dyn CrisisStore>,
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub audit: Arc<dyn AuditLog>,
    pub dead_letters: herald_domain::dead_letters::DeadLetterService,
    pub posts: PostService,
    pub idempotency: Idempotency,
    pub clock: Arc<dyn Clock>,
    /// Outbound webhook endpoints.
    pub webhook_endpoints: herald_domain::outbound::EndpointRegistry,
    /// The bootstrap operator token, for `POST /v1/tenants`; `None` turns those routes off.
    pub operator: Option<Arc<herald_domain::secrets::operator::OperatorToken>>,
    /// Ingestion's review items (`GET /v1/review-items`).
    pub ingest: Arc<dyn herald_domain::ingest::IngestStore>,
    /// `GET /v1/health`.
    pub health: herald_domain::health::HealthService,
}

herald_domain::debug_fields!(AppState);

/// Request bodies above this are refused before they are read.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The state is shared behind one `Arc`: axum clones it into every route's every method and
/// middleware as the router is built (cloned field by field, that was a quarter of the API
/// function's router build, per perf).
pub fn router(state: AppState) -> Router {
    let state = Arc::new(state);
    let authenticated = routes::authenticated()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth::layer));
    let operator = routes::operator()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            routes::operator::layer,
        ));
    Router::new()
        .merge(routes::public())
        .route("/v1/openapi.json", axum::routing::get(openapi::document))
        .merge(operator)
        .merge(embed::routes())
        .merge(authenticated)
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "no such route",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(correlate))
        .with_state(state)
}

pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");

/// The correlation id of one request: the caller's `X-Correlation-Id` if it is sane,
/// otherwise a new one. It is stored on the post and travels through the queues.
#[derive(Debug, Clone)]
pub struct CorrelationId(pub String);

async fn correlate(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    request.extensions_mut().insert(CorrelationId(id.clone()));
    let method = request.method().clone();
    let path = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || request.uri().path().to_owned(),
            |p| p.as_str().to_owned(),
        );
    let span = tracing::info_span!(
        "request",
        correlation_id = %id,
        %method,
        path = %path,
        tenant_id = tracing::field::Empty
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(request).await;
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "handled"
        );
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(CORRELATION_HEADER, v);
        }
        response
    }
    .instrument(span)
    .await
}

/// `Json` whose rejections are problem documents.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);
