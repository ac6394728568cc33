//! Herald's HTTP API v1. `router` builds the whole application over the domain's ports, so the
//! same router runs behind `lambda_http` in production and under `oneshot` in tests.
//!
//! Layers, outermost first: correlation id and request log → authentication (API key →
//! tenant and role) → idempotency keys (mutating methods) → the route.

pub mod analytics;
pub mod audit;
pub mod auth;
pub mod console;
mod cursor;
pub mod dto;
pub mod embed;
mod embed_page;
pub mod error;
pub mod idempotency;
#[cfg(feature = "memory")]
pub mod memory;
pub mod openapi;
pub mod rate_limit;
mod reference;
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
    /// The tenants' credit wallets (`routes::wallet`).
    pub wallets: Arc<dyn herald_domain::wallet::WalletStore>,
    /// The tenants' SMS contacts (`routes::contacts`).
    pub contacts: herald_domain::contacts::ContactService,
    /// Bulk imports of contacts (`routes::imports`).
    pub imports: herald_domain::imports::ImportService,
    /// The tenants' SMS campaigns (`routes::campaigns`).
    pub campaigns: herald_domain::campaigns::CampaignService,
    pub accounts: Arc<dyn AccountStore>,
    pub crises: Arc<dyn CrisisStore>,
    /// Connect links and the OAuth flow behind them (`routes::connect`).
    pub connect: herald_domain::connect::ConnectService,
    /// The API's public base URL (`state::Settings::public_url`).
    pub public_url: Option<String>,
    /// The console's sessions (`console`).
    pub sessions: Arc<dyn herald_domain::console::SessionStore>,
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
    /// Operator resets: circuits, app blocks, streams.
    pub resets: herald_domain::resets::ResetService,
    /// `GET /v1/health`.
    pub health: herald_domain::health::HealthService,
    /// The shared request counter and the budgets it enforces (`rate_limit`).
    pub counter: Arc<dyn herald_domain::rate_limits::RequestCounter>,
    /// Who a token belongs to, asked when an account is connected.
    pub owners: Arc<dyn herald_domain::publishing::platform::TokenOwners>,
    /// Takes published posts down from their platforms.
    pub live: herald_domain::publishing::live::LivePosts,
    pub rate_limits: herald_domain::rate_limits::ApiRateLimits,
    /// Where the operator's routes may be called from (empty: anywhere).
    pub operator_networks: Vec<ipnet::IpNet>,
    /// Browser origins allowed to call `/v1` (empty: none).
    pub cors_origins: Vec<HeaderValue>,
}

herald_domain::debug_fields!(AppState);

/// Request bodies above this are refused before they are read.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The state is shared behind one `Arc`: axum clones it into every route's every method and
/// middleware as the router is built (cloned field by field, that was a quarter of the API
/// function's router build, per perf).
pub fn router(state: AppState) -> Router {
    let cors = cors(&state.cors_origins);
    let state = Arc::new(state);
    // Outermost first: who is asking, then their budget, then the idempotency key (the last
    // two on matched routes only: an undeclared method is a 405, whatever its headers).
    let authenticated = routes::authenticated()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::layer,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), auth::layer));
    let operator = routes::operator()
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::layer,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            routes::operator::layer,
        ));
    // CORS outside authentication: a browser's preflight carries no key.
    let (authenticated, operator) = match cors {
        Some(cors) => (authenticated.layer(cors.clone()), operator.layer(cors)),
        None => (authenticated, operator),
    };
    Router::new()
        .merge(routes::public())
        .route("/v1/openapi.json", axum::routing::get(openapi::document))
        .merge(reference::routes())
        .merge(operator)
        .merge(embed::routes())
        .merge(console::routes())
        .merge(authenticated)
        .route_layer(middleware::from_fn(tag_route))
        .fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                "no such route",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_impossible_paths))
        .layer(middleware::from_fn(correlate))
        .with_state(state)
}

/// CORS for `/v1` when origins are configured: those origins (exactly), the methods and
/// headers the API takes, and the headers a client reads back. Credentials are bearer keys,
/// never cookies, so none are allowed.
fn cors(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                idempotency::IDEMPOTENCY_KEY,
                CORRELATION_HEADER,
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                idempotency::REPLAYED,
                CORRELATION_HEADER,
                rate_limit::RATELIMIT,
                rate_limit::RATELIMIT_POLICY,
            ])
            .max_age(std::time::Duration::from_secs(600))
    })
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
    let api = request.uri().path().starts_with("/v1/");
    let span = tracing::info_span!(
        "request",
        correlation_id = %id,
        %method,
        tenant_id = tracing::field::Empty
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = next.run(request).await;
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let route = response
            .extensions()
            .get::<Route>()
            .map_or("unmatched", |r| r.0.as_str());
        tracing::info!(
            route,
            status,
            elapsed_ms = elapsed.as_millis() as u64,
            "handled"
        );
        herald_domain::metrics::api_request(route, method.as_str(), status, elapsed);
        if let Ok(v) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(CORRELATION_HEADER, v);
        }
        if api {
            harden(response.headers_mut());
        }
        response
    }
    .instrument(span)
    .await
}

/// The longest path segment any route matches: ids are at most 64 characters, stream keys
/// (`fb-insights:<page id>`) a little more.
pub const MAX_PATH_SEGMENT: usize = 160;

/// A path no resource can have answers 404 before any handler or store sees it: a segment
/// that is too long, or holds (after percent-decoding) anything but letters, digits and
/// `_-:.~`. Ids never contain `#`, the store's key separator, nor control characters.
async fn refuse_impossible_paths(request: Request, next: Next) -> Response {
    let possible = request.uri().path().split('/').all(|raw| {
        let decoded = percent_encoding::percent_decode_str(raw).collect::<Vec<u8>>();
        decoded.len() <= MAX_PATH_SEGMENT
            && decoded
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"_-:.~".contains(b))
    });
    if possible {
        next.run(request).await
    } else {
        axum::response::IntoResponse::into_response(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "no resource has this path",
        ))
    }
}

/// The headers every `/v1` answer carries: answers hold keys and secrets, so nothing caches
/// them; nothing sniffs a JSON body into HTML; nothing frames them; browsers keep to HTTPS.
/// A handler's own `Cache-Control` and `Content-Security-Policy` are kept (the reference page
/// and its files: `reference`).
fn harden(headers: &mut axum::http::HeaderMap) {
    use axum::http::header;
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The route a request matched (`/v1/posts/{id}`, never the raw path), carried out on its
/// response: the outer layer that logs and counts requests runs before routing.
#[derive(Debug, Clone)]
struct Route(axum::extract::MatchedPath);

async fn tag_route(matched: axum::extract::MatchedPath, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Route(matched));
    response
}

/// `Json` whose rejections are problem documents, and which takes a JSON object only (serde
/// would also build a struct from an array of its fields, which no schema here allows).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::unprocessable("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::unprocessable(format!("invalid body: {e}")))
    }
}

/// `Query` whose rejections are problem documents (`400`).
#[derive(Debug, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// An optional JSON body: none, only whitespace, or `null` is `T::default()`; anything else
/// must be a `T` (`422` saying what does not match).
pub(crate) fn optional_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    match value {
        serde_json::Value::Null => Ok(T::default()),
        serde_json::Value::Object(_) => serde_json::from_value(value)
            .map_err(|e| ApiError::unprocessable(format!("invalid body: {e}"))),
        _ => Err(ApiError::unprocessable("the body must be a JSON object")),
    }
}
