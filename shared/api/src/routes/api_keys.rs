//! A tenant's API keys (admin): issue, list, revoke, rotate. Every change is audited; a
//! secret is in the answer that made it and nowhere else.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{
    ApiKeyList, ApiKeyView, CreateApiKey, CreatedApiKey, RotateApiKey, RotatedApiKey,
};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::ids::ApiKeyId;
use herald_domain::model::{ApiKey, Role};
use herald_domain::publishing::posts::FieldError;
use herald_domain::tenants::{
    self, DEFAULT_ROTATION_OVERLAP, MAX_KEY_LIFETIME, MAX_ROTATION_OVERLAP, RotateError,
};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

fn entity(id: &ApiKeyId) -> String {
    format!("api_key:{id}")
}

fn created(key: &ApiKey, secret: &SecretString) -> CreatedApiKey {
    CreatedApiKey {
        id: key.id.0.clone(),
        key: secret.expose_secret().to_owned(),
        role: key.role.as_str().into(),
        name: key.name.clone(),
        expires_at: key.expires_at,
    }
}

/// Issue an API key for this tenant (admin). The key is in this response only.
#[utoipa::path(post, path = "/v1/api-keys", tag = "tenant", request_body = CreateApiKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = CreatedApiKey), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_api_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CreateApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    principal.require(principal.role.is_admin(), "issue API keys")?;
    let mut errors = Vec::new();
    let role = Role::parse(&input.role);
    if role.is_none() {
        errors.push(FieldError::new(
            "role",
            "must be admin, editor, approver or viewer",
        ));
    }
    if input.name.trim().is_empty() || input.name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let now = state.clock.now();
    if input
        .expires_at
        .is_some_and(|at| at < now + time::Duration::minutes(1) || at > now + MAX_KEY_LIFETIME)
    {
        errors.push(FieldError::new(
            "expires_at",
            "must be at least a minute and at most two years ahead",
        ));
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let (key, secret) = tenants::issue_api_key(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        &principal.tenant_id,
        role,
        input.name.trim(),
        input.expires_at,
    )
    .await?;
    audit::record(
        &state,
        &principal,
        &client,
        entity(&key.id),
        "api_key.issued",
        None,
        Some(serde_json::json!({"role": role.as_str(), "name": key.name, "expires_at": key.expires_at})),
    )
    .await;
    Ok((StatusCode::CREATED, Json(created(&key, &secret))))
}

/// The tenant's keys, newest first (admin): never a secret.
#[utoipa::path(get, path = "/v1/api-keys", tag = "tenant",
    responses((status = 200, body = ApiKeyList), (status = 403, body = Problem)))]
pub async fn list_api_keys(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<ApiKeyList>, ApiError> {
    principal.require(principal.role.is_admin(), "list API keys")?;
    let now = state.clock.now();
    let keys = state.tenants.list_api_keys(&principal.tenant_id).await?;
    Ok(Json(ApiKeyList {
        items: keys.iter().map(|k| ApiKeyView::new(k, now)).collect(),
    }))
}

/// Revoke a key (admin): it is refused from the next request on, on every instance.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "tenant", params(("id" = String, Path)),
    responses((status = 200, body = ApiKeyView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_api_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyView>, ApiError> {
    principal.require(principal.role.is_admin(), "revoke API keys")?;
    let id = ApiKeyId(id);
    let key = tenants::revoke_api_key(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        &principal.tenant_id,
        &id,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("API key"))?;
    audit::record(
        &state,
        &principal,
        &client,
        entity(&id),
        "api_key.revoked",
        None,
        Some(serde_json::json!({"revoked_at": key.revoked_at})),
    )
    .await;
    Ok(Json(ApiKeyView::new(&key, state.clock.now())))
}

/// Rotate a key (admin): a new key with the same name, role and expiry; the old one keeps
/// working for `overlap_seconds` (default a day). The new key is in this response only.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "tenant", params(("id" = String, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = Option<RotateApiKey>,
    responses((status = 201, body = RotatedApiKey), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn rotate_api_key(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<RotatedApiKey>), ApiError> {
    principal.require(principal.role.is_admin(), "rotate API keys")?;
    // The body is optional: none (or `null`) means the defaults.
    let input: RotateApiKey = crate::optional_body(&body)?;
    let overlap = match input.overlap_seconds {
        None => DEFAULT_ROTATION_OVERLAP,
        Some(s) if (0..=MAX_ROTATION_OVERLAP.whole_seconds()).contains(&s) => {
            time::Duration::seconds(s)
        }
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "overlap_seconds",
                "must be 0 to 604800 (7 days)",
            )]));
        }
    };
    let id = ApiKeyId(id);
    let rotated = tenants::rotate_api_key(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        &principal.tenant_id,
        &id,
        overlap,
    )
    .await
    .map_err(|e| match e {
        RotateError::NotFound => ApiError::not_found("API key"),
        RotateError::NotActive(_) | RotateError::AlreadyRotated(_) => {
            ApiError::conflict(e.to_string())
        }
        RotateError::Store(s) => s.into(),
    })?;
    audit::record(
        &state,
        &principal,
        &client,
        entity(&id),
        "api_key.rotated",
        None,
        Some(serde_json::json!({"replaced_by": rotated.new.id, "expires_at": rotated.old.expires_at})),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(RotatedApiKey {
            key: created(&rotated.new, &rotated.secret),
            previous: ApiKeyView::new(&rotated.old, state.clock.now()),
        }),
    ))
}
