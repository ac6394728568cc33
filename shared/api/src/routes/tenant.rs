use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{TenantSettingsInput, TenantView};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::State;
use herald_domain::model::TenantSettings;
use herald_domain::publishing::posts::FieldError;
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
    client: Client,
    ApiJson(input): ApiJson<TenantSettingsInput>,
) -> Result<Json<TenantView>, ApiError> {
    principal.require(principal.role.is_admin(), "change tenant settings")?;
    let before = state
        .tenants
        .get_tenant(&principal.tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?
        .settings;
    let time_zone = match &input.time_zone {
        None => before.time_zone.clone(),
        Some(name) => Some(
            herald_domain::zone::TimeZoneName::parse(name)
                .map_err(|e| {
                    ApiError::validation(vec![FieldError::new("time_zone", e.to_string())])
                })?
                .to_string(),
        ),
    };
    let sms_help_text = match input.sms_help_text.as_deref().map(str::trim) {
        None => before.sms_help_text.clone(),
        Some("") => None,
        Some(text) if text.chars().count() > TenantSettings::MAX_SMS_HELP_TEXT => {
            return Err(ApiError::validation(vec![FieldError::new(
                "sms_help_text",
                format!(
                    "must be at most {} characters",
                    TenantSettings::MAX_SMS_HELP_TEXT
                ),
            )]));
        }
        Some(text) => Some(text.to_owned()),
    };
    let low_balance_credits = match input.low_balance_credits {
        None => before.low_balance_credits,
        Some(0) => None,
        Some(credits) if (1..=1_000_000_000).contains(&credits) => Some(credits),
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "low_balance_credits",
                "must be 1 to 1000000000 credits, or 0 for no announcements",
            )]));
        }
    };
    let settings = TenantSettings {
        require_approval: input.require_approval.unwrap_or(before.require_approval),
        forbid_self_approval: input
            .forbid_self_approval
            .unwrap_or(before.forbid_self_approval),
        time_zone,
        sms_help_text,
        low_balance_credits,
    };
    state
        .tenants
        .update_settings(&principal.tenant_id, &settings)
        .await?;
    audit::record(
        &state,
        &principal,
        &client,
        format!("tenant:{}", principal.tenant_id),
        "tenant.settings_changed",
        Some(serde_json::json!(before)),
        Some(serde_json::json!(settings)),
    )
    .await;
    tenant_view(&state, &principal).await
}
