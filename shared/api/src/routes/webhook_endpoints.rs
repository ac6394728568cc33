//! `/v1/webhook-endpoints`: where a tenant receives Herald's outbound webhooks. The signing
//! secret is returned once, at creation and at rotation, and never by a read or in a log.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, ApiQuery, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::StoreError;
use herald_domain::outbound::{AttemptRecord, Endpoint, EndpointId, EventType};
use herald_domain::publishing::posts::FieldError;
use herald_webhooks::standard::generate_secret;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// At most this many endpoints per tenant: each is one message per event.
pub const MAX_ENDPOINTS: usize = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// An https URL on a public address.
    #[schema(max_length = 2048, pattern = "^https://")]
    pub url: String,
    /// `post.published`, `post.failed`, `post.unknown_resolved`, `dead_letter.added`,
    /// `campaign.completed`, `sms.delivered`, `sms.failed`, `wallet.low_balance`.
    #[schema(min_items = 1, max_items = 8, inline, value_type = Vec<EventTypeName>)]
    pub event_types: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
    /// Until when the previous secret still signs, after a rotation.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Endpoint> for WebhookEndpointView {
    fn from(e: &Endpoint) -> Self {
        Self {
            id: e.id.0.clone(),
            url: e.url.clone(),
            event_types: e
                .event_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            status: if e.is_enabled() {
                "enabled"
            } else {
                "disabled"
            }
            .to_owned(),
            disabled_reason: e.disabled.as_ref().map(|d| d.reason.clone()),
            disabled_at: e.disabled.as_ref().map(|d| d.at),
            previous_secret_expires_at: e.previous_secret.as_ref().map(|p| p.until),
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// An endpoint with its signing secret: only in the answer that made the secret. `Debug`
/// shows no secret.
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointView,
    /// `whsec_...`: verify deliveries with it (Standard Webhooks). Shown once.
    pub secret: String,
}

herald_domain::debug_fields!(WebhookEndpointWithSecret, endpoint);

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub items: Vec<WebhookEndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttemptView {
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// `delivered`, `retrying`, `disabled` or `dead_lettered`.
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

impl From<&AttemptRecord> for DeliveryAttemptView {
    fn from(a: &AttemptRecord) -> Self {
        Self {
            event_id: a.event_id.clone(),
            event_type: a.event_type.as_str().to_owned(),
            attempt: a.attempt,
            at: a.at,
            status: a.status,
            duration_ms: a.duration_ms,
            error: a.error.clone(),
            outcome: a.outcome.clone(),
            next_attempt_at: a.next_attempt_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttemptList {
    pub items: Vec<DeliveryAttemptView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptsQuery {
    /// Newest first.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

fn endpoint_entity(id: &EndpointId) -> String {
    format!("webhook_endpoint:{id}")
}

fn audit_view(e: &Endpoint) -> serde_json::Value {
    serde_json::json!({
        "url": e.url,
        "event_types": e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "enabled": e.is_enabled(),
    })
}

fn new_secret() -> Result<secrecy::SecretString, ApiError> {
    generate_secret().map_err(|e| ApiError::internal(&e))
}

/// Register an endpoint. The answer carries its signing secret, once.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = CreateWebhookEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = WebhookEndpointWithSecret, description = "Registered"),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_webhook_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CreateWebhookEndpoint>,
) -> Result<(StatusCode, Json<WebhookEndpointWithSecret>), ApiError> {
    principal.require(principal.role.is_admin(), "manage webhook endpoints")?;
    let registry = &state.webhook_endpoints;
    let mut errors = Vec::new();
    let mut event_types: Vec<EventType> = Vec::new();
    if input.event_types.is_empty() {
        errors.push(FieldError::new(
            "event_types",
            "must name at least one event type",
        ));
    }
    for (i, name) in input.event_types.iter().enumerate() {
        match EventType::parse(name) {
            Some(t) if !event_types.contains(&t) => event_types.push(t),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("event_types[{i}]"),
                format!(
                    "must be one of {}",
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )),
        }
    }
    if let Err(why) = registry.check_target(&input.url).await {
        errors.push(FieldError::new("url", why.to_string()));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let existing = registry.store.list_endpoints(&principal.tenant_id).await?;
    if existing.len() >= MAX_ENDPOINTS {
        return Err(ApiError::unprocessable(format!(
            "a tenant has at most {MAX_ENDPOINTS} webhook endpoints"
        )));
    }
    let now = state.clock.now();
    let secret = new_secret()?;
    let endpoint = Endpoint {
        id: EndpointId::generate(),
        tenant_id: principal.tenant_id.clone(),
        url: input.url,
        event_types,
        disabled: None,
        secret: secret.clone(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
    };
    registry.store.create_endpoint(&endpoint).await?;
    tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint registered");
    audit::record(
        &state,
        &principal,
        &client,
        endpoint_entity(&endpoint.id),
        "webhook_endpoint.created",
        None,
        Some(audit_view(&endpoint)),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(WebhookEndpointWithSecret {
            endpoint: WebhookEndpointView::from(&endpoint),
            secret: secret.expose_secret().to_owned(),
        }),
    ))
}

/// The tenant's endpoints (admin; no secrets). Admins only: endpoint URLs often carry a
/// receiver's own credential in their query.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, body = WebhookEndpointList), (status = 403, body = Problem)))]
pub async fn list_webhook_endpoints(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<WebhookEndpointList>, ApiError> {
    principal.require(principal.role.is_admin(), "see webhook endpoints")?;
    let list = state
        .webhook_endpoints
        .store
        .list_endpoints(&principal.tenant_id)
        .await?;
    Ok(Json(WebhookEndpointList {
        items: list.iter().map(WebhookEndpointView::from).collect(),
    }))
}

/// The tenant's endpoint `id`, for an admin (endpoints, their URLs and attempts are theirs).
async fn find(state: &AppState, principal: &Principal, id: String) -> Result<Endpoint, ApiError> {
    principal.require(principal.role.is_admin(), "see webhook endpoints")?;
    state
        .webhook_endpoints
        .store
        .get_endpoint(&principal.tenant_id, &EndpointId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// One endpoint (admin; no secret).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = WebhookEndpointView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_webhook_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    let endpoint = find(&state, &principal, id).await?;
    Ok(Json(WebhookEndpointView::from(&endpoint)))
}

/// Remove an endpoint: messages already queued for it are dropped.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WebhookEndpointView, description = "Deleted; the endpoint as it was"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_webhook_endpoint(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointView>, ApiError> {
    principal.require(principal.role.is_admin(), "manage webhook endpoints")?;
    let removed = state
        .webhook_endpoints
        .store
        .delete_endpoint(&principal.tenant_id, &EndpointId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
    tracing::info!(endpoint_id = %removed.id, "webhook endpoint deleted");
    audit::record(
        &state,
        &principal,
        &client,
        endpoint_entity(&removed.id),
        "webhook_endpoint.deleted",
        Some(audit_view(&removed)),
        None,
    )
    .await;
    Ok(Json(WebhookEndpointView::from(&removed)))
}

/// A new signing secret, returned once. The previous one keeps signing alongside it (both
/// signatures are sent) until `previous_secret_expires_at`, so receivers can switch over.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WebhookEndpointWithSecret, description = "Rotated"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn rotate_webhook_endpoint_secret(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<WebhookEndpointWithSecret>, ApiError> {
    principal.require(principal.role.is_admin(), "manage webhook endpoints")?;
    let endpoint = find(&state, &principal, id).await?;
    let now = state.clock.now();
    let secret = new_secret()?;
    let rotated = endpoint.rotated(secret.clone(), now, state.webhook_endpoints.secret_overlap);
    match state
        .webhook_endpoints
        .store
        .replace_endpoint(&rotated, endpoint.updated_at)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict(
                "the endpoint changed meanwhile; try again",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(endpoint_id = %rotated.id, "webhook endpoint secret rotated");
    audit::record(
        &state,
        &principal,
        &client,
        endpoint_entity(&rotated.id),
        "webhook_endpoint.secret_rotated",
        None,
        Some(serde_json::json!({"previous_secret_expires_at": rotated.previous_secret.as_ref().map(|p| p.until.unix_timestamp())})),
    )
    .await;
    Ok(Json(WebhookEndpointWithSecret {
        endpoint: WebhookEndpointView::from(&rotated),
        secret: secret.expose_secret().to_owned(),
    }))
}

/// The endpoint's delivery attempts, newest first (kept 30 days).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path), AttemptsQuery),
    responses((status = 200, body = DeliveryAttemptList), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list_webhook_attempts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<AttemptsQuery>,
) -> Result<Json<DeliveryAttemptList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 100"));
    }
    let endpoint = find(&state, &principal, id).await?;
    let attempts = state
        .webhook_endpoints
        .store
        .list_attempts(&principal.tenant_id, &endpoint.id, limit)
        .await?;
    Ok(Json(DeliveryAttemptList {
        items: attempts.iter().map(DeliveryAttemptView::from).collect(),
    }))
}

/// An outbound event type.
#[derive(Debug, Deserialize, ToSchema)]
pub enum EventTypeName {
    #[serde(rename = "post.published")]
    #[schema(rename = "post.published")]
    PostPublished,
    #[serde(rename = "post.failed")]
    #[schema(rename = "post.failed")]
    PostFailed,
    #[serde(rename = "post.unknown_resolved")]
    #[schema(rename = "post.unknown_resolved")]
    PostUnknownResolved,
    #[serde(rename = "dead_letter.added")]
    #[schema(rename = "dead_letter.added")]
    DeadLetterAdded,
    #[serde(rename = "campaign.completed")]
    #[schema(rename = "campaign.completed")]
    CampaignCompleted,
    #[serde(rename = "sms.delivered")]
    #[schema(rename = "sms.delivered")]
    SmsDelivered,
    #[serde(rename = "sms.failed")]
    #[schema(rename = "sms.failed")]
    SmsFailed,
    #[serde(rename = "wallet.low_balance")]
    #[schema(rename = "wallet.low_balance")]
    WalletLowBalance,
}
