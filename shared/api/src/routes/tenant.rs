use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{CreateApiKey, CreatedApiKey, TenantSettingsInput, TenantView};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_domain::model::{Role, TenantSettings};
use herald_domain::publishing::posts::FieldError;
use secrecy::ExposeSecret;
use std::sync::Arc;

/// The caller's tenant and its settings.
#[utoipa::path(get, path = "/v1/tenant", tag = "tenant", responses((status = 200, body = TenantView), (status = 401, body = Problem)))]
pub async fn get_tenant(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<TenantView>, ApiError> {
    tenant_view(&state, &principal).await
}

async fn tenant_view(
    state: &AppState,
    principal: &Principal,
) -> Result<Json<TenantView>, ApiError> {
    let tenant = state
        .tenants
        .get_tenant(&principal.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(TenantView::from(&tenant)))
}

/// Change settings (admin).
#[utoipa::path(patch, path = "/v1/tenant", tag = "tenant", request_body = TenantSettingsInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TenantView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn update_tenant(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(input): ApiJson<TenantSettingsInput>,
) -> Result<Json<TenantView>, ApiError> {
    principal.require(principal.role.is_admin(), "change tenant settings")?;
    let settings = TenantSettings {
        require_approval: input.require_approval,
    };
    state
        .tenants
        .update_settings(&principal.tenant_id, &settings)
        .await?;
    tenant_view(&state, &principal).await
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
    if input.name.trim().is_empty() || input.name.len() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let Some(role) = role.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let (key, secret) = herald_domain::tenants::issue_api_key(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        &principal.tenant_id,
        role,
        &input.name,
    )
    .await?;
    audit::record(
        &state,
        &principal,
        &client,
        format!("api_key:{}", key.id),
        "api_key.issued",
        None,
        Some(serde_json::json!({"role": role.as_str(), "name": key.name})),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id: key.id.0,
            key: secret.expose_secret().to_owned(),
            role: role.as_str().into(),
            name: key.name,
        }),
    ))
}
