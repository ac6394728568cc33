//! Embeddable dashboards: `POST /v1/embed/tokens` (admin API keys; ten a minute per key)
//! issues a short-lived signed token; the token, not an API key, opens
//! `GET /embed/v1/dashboards/{id}` (an HTML page with server-rendered SVG charts, for an
//! iframe) and `GET /embed/v1/dashboards/{id}/data` (the same numbers as JSON, for scripts).
//!
//! Which page may embed the dashboard: a top-level or iframe navigation sends no `Origin`, so
//! the page checks the `Referer`'s origin (browsers send at least the origin cross-site under
//! the default `strict-origin-when-cross-origin` policy) against the token's list, refuses a
//! request that names neither (a host page with `referrerpolicy="no-referrer"` cannot embed),
//! and refuses when `Sec-Fetch-Dest` says the page is not being framed. A Referer can be forged
//! outside a browser, which is harmless: the token is still required and the data is what it
//! grants anyway. Inside a browser the page also sends `Content-Security-Policy:
//! frame-ancestors <the token's origins>`, so a browser refuses to render it framed by any
//! other page, whatever that page sent. The data endpoint takes the token as
//! `Authorization: Bearer` and checks `Origin` (every cross-origin `fetch` sends it); its CORS
//! answer names only the request's origin, and only once the token allowed it, so a refused
//! request carries no CORS grant and a browser script elsewhere cannot read anything.
//!
//! Every issue and refusal is one log line counted by the template's metric filters
//! (`embed.tokens.issued`, `embed.tokens.refused` with `reason`); tokens never reach a log.

use crate::analytics::AnalyticsState;
use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::error::Problem;
use crate::rate_limit::{Budget, spend};
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_domain::analytics::dashboard::{DashboardData, overview};
use herald_domain::analytics::embed::{
    EmbedClaims, EmbedError, EmbedTokens, Refusal, RequestCounter, TOKEN_POLICY, TokenRequest,
    origin_of_url,
};
use herald_domain::rate_limits::OperationClass;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

/// What the embed routes need beyond [`AppState`]; installed with [`with_embeds`].
#[derive(Clone)]
pub struct EmbedState {
    pub tokens: EmbedTokens,
    pub counter: Arc<dyn RequestCounter>,
}

herald_domain::debug_fields!(EmbedState);

/// The application with embed tokens and dashboards switched on.
pub fn with_embeds(app: Router, embed: EmbedState) -> Router {
    app.layer(Extension(embed))
}

/// The token-authenticated routes (no API key).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/embed/v1/dashboards/{id}", get(page))
        .route(
            "/embed/v1/dashboards/{id}/data",
            get(data).options(preflight),
        )
}

/// The embed token budget's name in the `RateLimit` headers.
const TOKEN_POLICY_NAME: &str = "embed-tokens";

fn not_configured() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        "embedded dashboards are not configured on this deployment",
    )
}

fn refused_metric(reason: &str) {
    tracing::info!(
        metric = "embed.tokens.refused",
        reason,
        "embed token refused"
    );
}

fn refusal_error(r: Refusal) -> ApiError {
    let (status, slug, title) = match r {
        Refusal::Missing => (
            StatusCode::UNAUTHORIZED,
            "embed-token-missing",
            "Embed token missing",
        ),
        Refusal::Malformed => (
            StatusCode::UNAUTHORIZED,
            "embed-token-malformed",
            "Embed token malformed",
        ),
        Refusal::BadSignature => (
            StatusCode::UNAUTHORIZED,
            "embed-token-bad-signature",
            "Embed token signature invalid",
        ),
        Refusal::UnknownKey => (
            StatusCode::UNAUTHORIZED,
            "embed-token-unknown-key",
            "Embed token key unknown",
        ),
        Refusal::RetiredKey => (
            StatusCode::UNAUTHORIZED,
            "embed-token-retired-key",
            "Embed token key retired",
        ),
        Refusal::Expired => (
            StatusCode::UNAUTHORIZED,
            "embed-token-expired",
            "Embed token expired",
        ),
        Refusal::WrongAudience => (
            StatusCode::UNAUTHORIZED,
            "embed-token-wrong-audience",
            "Embed token for another audience",
        ),
        Refusal::WrongIssuer => (
            StatusCode::UNAUTHORIZED,
            "embed-token-wrong-issuer",
            "Embed token from another issuer",
        ),
        Refusal::WrongDashboard => (
            StatusCode::FORBIDDEN,
            "embed-wrong-dashboard",
            "Embed token for another dashboard",
        ),
        Refusal::OriginNotAllowed => (
            StatusCode::FORBIDDEN,
            "embed-origin-not-allowed",
            "Origin not allowed",
        ),
        Refusal::OriginMissing => (
            StatusCode::FORBIDDEN,
            "embed-origin-missing",
            "Origin missing",
        ),
    };
    ApiError::new(status, slug, title, r.to_string())
}

fn embed_error(e: EmbedError) -> Response {
    match e {
        EmbedError::Refused(r) => {
            refused_metric(r.label());
            let mut response = refusal_error(r).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            // The refusal itself must not be framed anywhere either.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            );
            response
        }
        EmbedError::Store(s) => ApiError::from(s).into_response(),
    }
}

/// `POST /v1/embed/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEmbedToken {
    /// The dashboard to open: `overview`.
    #[schema(pattern = "^overview$")]
    pub dashboard: String,
    /// Origins (`https://host[:port]`) whose pages may embed it, each once.
    #[schema(min_items = 1, max_items = 10, inline, value_type = Vec<Origin>)]
    pub origins: Vec<String>,
    /// The token's life in seconds (default 60).
    #[serde(default)]
    #[schema(minimum = 10, maximum = 3600)]
    pub ttl_seconds: Option<i64>,
}

/// `Debug` shows no token.
#[derive(Serialize, ToSchema)]
pub struct EmbedTokenView {
    /// The signed token (HS256 JWT). Hand it to the embedding page; it is shown once.
    pub token: String,
    pub token_type: String,
    /// The signing key's id (the JWT header's `kid`).
    pub kid: String,
    pub dashboard: String,
    pub origins: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub expires_in: i64,
    /// Path of the embeddable page: add the token as `?token=`.
    pub page_path: String,
    /// Path of the JSON data: send the token as `Authorization: Bearer`.
    pub data_path: String,
}

herald_domain::debug_fields!(EmbedTokenView, token_type, kid, dashboard, origins);

/// What an admitted embed read knows: the tenant's name (the page shows it) and the token's
/// budget (`None`: the limiter could not count; admitted).
struct Admitted {
    tenant_name: Option<String>,
    budget: Option<Budget>,
}

/// What every embed read goes through once its token verified: the tenant must not be
/// suspended, and the token's read budget must have room.
async fn admit_read(state: &AppState, claims: &EmbedClaims) -> Result<Admitted, Response> {
    let tenant_name = match state.tenants.get_tenant(&claims.tenant_id()).await {
        Ok(Some(tenant)) if tenant.suspended.is_some() => {
            refused_metric("tenant_suspended");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "tenant-suspended",
                "Tenant suspended",
                "this dashboard's tenant is suspended",
            )
            .into_response());
        }
        Ok(tenant) => tenant.map(|t| t.name),
        Err(e) => return Err(ApiError::from(e).into_response()),
    };
    let policy = state.rate_limits.embed_read;
    let scope = format!("embedtoken#{}", claims.jti);
    let name = OperationClass::EmbedRead.as_str();
    let Some(budget) = spend(
        state.counter.as_ref(),
        policy,
        name,
        &scope,
        state.clock.now(),
    )
    .await
    else {
        return Ok(Admitted {
            tenant_name,
            budget: None,
        });
    };
    if !budget.decision.allowed {
        refused_metric("rate_limited");
        return Err(budget.refusal(format!(
            "this embed token may read {} times a minute; retry in {} s",
            policy.limit, budget.decision.reset_seconds
        )));
    }
    Ok(Admitted {
        tenant_name,
        budget: Some(budget),
    })
}

/// Issue an embed token (admin keys only; 10 a minute per key).
#[utoipa::path(post, path = "/v1/embed/tokens", tag = "embed", request_body = CreateEmbedToken,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = EmbedTokenView, description = "Issued; `RateLimit-Policy` and `RateLimit` say the key's budget"),
        (status = 403, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem, description = "Over 10 a minute for this key; see `Retry-After`")))]
pub async fn create_token(
    State(state): State<Arc<AppState>>,
    embed: Option<Extension<EmbedState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CreateEmbedToken>,
) -> Result<Response, ApiError> {
    let Some(Extension(embed)) = embed else {
        return Err(not_configured());
    };
    if !principal.role.is_admin() {
        refused_metric("not_admin");
        return Err(ApiError::forbidden(format!(
            "only admin keys may issue embed tokens; this key is {}",
            principal.role.as_str()
        )));
    }
    let scope = format!("apikey#{}#embed-tokens", principal.key_id);
    let budget = spend(
        embed.counter.as_ref(),
        TOKEN_POLICY,
        TOKEN_POLICY_NAME,
        &scope,
        state.clock.now(),
    )
    .await;
    if let Some(b) = budget.filter(|b| !b.decision.allowed) {
        refused_metric("rate_limited");
        return Ok(b.refusal(format!(
            "this key may issue {} embed tokens a minute; retry in {} s",
            TOKEN_POLICY.limit, b.decision.reset_seconds
        )));
    }
    let stamp = |response: &mut Response| {
        if let Some(b) = &budget {
            b.stamp(response);
        }
    };
    let request = TokenRequest {
        dashboard: input.dashboard,
        origins: input.origins,
        ttl_seconds: input.ttl_seconds,
    };
    let valid = match request.validate() {
        Ok(v) => v,
        Err(errors) => {
            let mut response = ApiError::validation(errors).into_response();
            stamp(&mut response);
            return Ok(response);
        }
    };
    let issued = embed.tokens.issue(&principal.tenant_id, &valid).await?;
    audit::record(
        &state,
        &principal,
        &client,
        format!("embed_token:{}", issued.claims.jti),
        "embed_token.issued",
        None,
        Some(serde_json::json!({
            "dashboard": issued.claims.dashboard,
            "origins": issued.claims.origins,
            "kid": issued.kid,
            "expires_at": issued.claims.exp,
        })),
    )
    .await;
    tracing::info!(
        metric = "embed.tokens.issued",
        dashboard = %issued.claims.dashboard,
        kid = %issued.kid,
        "embed token issued"
    );
    let view = EmbedTokenView {
        expires_in: issued.claims.exp - issued.claims.iat,
        page_path: format!("/embed/v1/dashboards/{}", issued.claims.dashboard),
        data_path: format!("/embed/v1/dashboards/{}/data", issued.claims.dashboard),
        token: issued.token,
        token_type: "Bearer".into(),
        kid: issued.kid,
        dashboard: issued.claims.dashboard,
        origins: issued.claims.origins,
        expires_at: issued.expires_at,
    };
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    stamp(&mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 4096)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn dashboard_data(
    state: &AppState,
    analytics: Option<&AnalyticsState>,
    claims: &EmbedClaims,
) -> Result<DashboardData, ApiError> {
    Ok(overview(
        state.posts.posts.as_ref(),
        analytics.map(|a| a.0.as_ref()),
        &claims.tenant_id(),
        state.clock.now(),
    )
    .await?)
}

/// The dashboard's numbers as JSON (token as `Authorization: Bearer`; CORS for the token's
/// origins).
#[utoipa::path(get, path = "/embed/v1/dashboards/{id}/data", tag = "embed",
    params(("id" = String, Path, description = "The dashboard (`overview`)")),
    responses((status = 200, description = "The dashboard's series; `RateLimit-Policy` and `RateLimit` say the token's budget"), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem, description = "Over the token's reads a minute; see `Retry-After`")),
    security(()))]
pub async fn data(
    State(state): State<Arc<AppState>>,
    embed: Option<Extension<EmbedState>>,
    analytics: Option<Extension<AnalyticsState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(Extension(embed)) = embed else {
        return not_configured().into_response();
    };
    let Some(token) = bearer(&headers) else {
        return embed_error(Refusal::Missing.into());
    };
    let origin = header_str(&headers, "origin");
    let claims = match embed.tokens.verify(token, &id, origin).await {
        Ok(c) => c,
        Err(e) => return embed_error(e),
    };
    let admitted = match admit_read(&state, &claims).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let data = match dashboard_data(&state, analytics.as_ref().map(|e| &e.0), &claims).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let mut response = Json(data).into_response();
    if let Some(b) = &admitted.budget {
        b.stamp(&mut response);
    }
    let h = response.headers_mut();
    if let Some(Ok(v)) = origin
        .and_then(herald_domain::analytics::embed::normalize_origin)
        .map(|o| HeaderValue::from_str(&o))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// CORS preflight for the data endpoint. It grants nothing by itself: the real request is
/// answered (and given `Access-Control-Allow-Origin`) only if its token allows its origin.
async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    if let Some(Ok(v)) = header_str(&headers, "origin")
        .and_then(herald_domain::analytics::embed::normalize_origin)
        .map(|o| HeaderValue::from_str(&o))
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    response
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

/// The embedding page's origin: `Origin` when sent, else the `Referer`'s.
fn embedder(headers: &HeaderMap) -> Option<String> {
    header_str(headers, "origin")
        .filter(|o| *o != "null")
        .map(str::to_owned)
        .or_else(|| header_str(headers, "referer").and_then(origin_of_url))
}

/// The embeddable dashboard page (token as `?token=`; framed only by the token's origins).
#[utoipa::path(get, path = "/embed/v1/dashboards/{id}", tag = "embed",
    params(("id" = String, Path, description = "The dashboard (`overview`)"),
        ("token" = String, Query, description = "An embed token")),
    responses((status = 200, description = "An HTML page with the dashboard's charts", content_type = "text/html"),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 429, body = Problem, description = "Over the token's reads a minute; see `Retry-After`")),
    security(()))]
pub async fn page(
    State(state): State<Arc<AppState>>,
    embed: Option<Extension<EmbedState>>,
    analytics: Option<Extension<AnalyticsState>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(Extension(embed)) = embed else {
        return not_configured().into_response();
    };
    let Some(token) = query
        .token
        .as_deref()
        .filter(|t| !t.is_empty() && t.len() <= 4096)
    else {
        return embed_error(Refusal::Missing.into());
    };
    // Fetch metadata: a page that is not being framed (opened directly, fetched by a script)
    // has no embedder to check.
    if let Some(dest) = header_str(&headers, "sec-fetch-dest")
        && !matches!(dest, "iframe" | "frame")
    {
        return embed_error(Refusal::OriginMissing.into());
    }
    let origin = embedder(&headers);
    let claims = match embed.tokens.verify(token, &id, origin.as_deref()).await {
        Ok(c) => c,
        Err(e) => return embed_error(e),
    };
    let admitted = match admit_read(&state, &claims).await {
        Ok(a) => a,
        Err(response) => return response,
    };
    let data = match dashboard_data(&state, analytics.as_ref().map(|e| &e.0), &claims).await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let tenant_name = admitted.tenant_name.unwrap_or_else(|| claims.sub.clone());
    let nonce = herald_domain::secrets::secret::random_hex(16);
    // The embedder's origin is one of the token's (verified above), so postMessage targets it.
    let parent = origin
        .as_deref()
        .and_then(herald_domain::analytics::embed::normalize_origin)
        .unwrap_or_default();
    let html = crate::embed_page::render(&data, &tenant_name, &nonce, &parent);
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors {}",
        claims.origins.join(" ")
    );
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    if let Some(b) = &admitted.budget {
        b.stamp(&mut response);
    }
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The token is in this page's URL: never let it leave in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// An origin a page is served from: `https://host[:port]` (`http://` only for localhost).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = String, pattern = "^(https://[A-Za-z0-9.-]+|http://(localhost|127\\.0\\.0\\.1))(:[0-9]{1,5})?$")]
pub struct Origin(pub String);
