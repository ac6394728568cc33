//! Operator routes, authenticated by the bootstrap operator token (Secrets Manager's
//! `admin-token` secret) instead of a tenant's API key: creating tenants over HTTP.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{CreateTenant, CreatedApiKey, CreatedTenant, SuspendTenant, TenantView};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_domain::ids::{ApiKeyId, TenantId};
use herald_domain::model::Role;
use herald_domain::publishing::posts::FieldError;
use secrecy::ExposeSecret;
use std::sync::Arc;

/// The scope operator requests' idempotency keys live in: no tenant id is ever `operator`
/// (tenant ids are generated as `ten_...`).
pub const OPERATOR_SCOPE: &str = "operator";

/// Admits requests that carry the operator token as `Authorization: Bearer <token>`.
pub async fn layer(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(operator) = state.operator.clone() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            "operator routes are not enabled on this deployment",
        )
        .into_response();
    };
    if !crate::auth::from_allowed_network(&state, request.headers()) {
        return ApiError::forbidden("the operator's routes may not be called from this address")
            .into_response();
    }
    match crate::auth::bearer(request.headers()) {
        Some(token) => match operator.admits(token).await {
            Ok(true) => {}
            Ok(false) => return ApiError::unauthorized().into_response(),
            Err(e) => {
                tracing::error!(error = %e, "reading the operator token failed");
                return ApiError::from(e).into_response();
            }
        },
        // No token: the operator's console session, if the request carries one.
        None => match crate::auth::caller(&state, request.headers(), request.method()).await {
            Ok(Some(crate::auth::Caller::Operator)) => {}
            Ok(Some(crate::auth::Caller::Key(_))) => {
                return ApiError::forbidden("only the operator may call the operator's routes")
                    .into_response();
            }
            Ok(None) => return ApiError::unauthorized().into_response(),
            Err(e) => return e.into_response(),
        },
    }
    request.extensions_mut().insert(Principal {
        tenant_id: TenantId(OPERATOR_SCOPE.into()),
        key_id: ApiKeyId("operator-token".into()),
        role: Role::Admin,
    });
    next.run(request).await
}

/// Create a tenant with its first admin key (operator token). The key is in this response
/// only.
#[utoipa::path(post, path = "/v1/tenants", tag = "operator", request_body = CreateTenant,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = CreatedTenant), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create_tenant(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::validation(vec![FieldError::new(
            "name",
            "must be 1 to 100 characters",
        )]));
    }
    let (tenant, key, secret) = herald_domain::tenants::create_tenant(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        name,
        input.require_approval,
    )
    .await?;
    // Recorded in the new tenant's own log, naming the operator token as the actor.
    let actor = Principal {
        tenant_id: tenant.id.clone(),
        ..principal
    };
    audit::record(
        &state,
        &actor,
        &client,
        format!("tenant:{}", tenant.id),
        "tenant.created",
        None,
        Some(serde_json::json!({"name": tenant.name, "require_approval": input.require_approval})),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            id: tenant.id.0,
            name: tenant.name,
            api_key: CreatedApiKey {
                id: key.id.0,
                key: secret.expose_secret().to_owned(),
                role: key.role.as_str().into(),
                name: key.name,
                expires_at: key.expires_at,
            },
        }),
    ))
}

/// Suspend a tenant (operator token): every one of its keys is refused with a 403 naming the
/// reason, from the next request on, until it is resumed. Audited in the tenant's log.
#[utoipa::path(post, path = "/v1/tenants/{id}/suspend", tag = "operator", params(("id" = String, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = SuspendTenant,
    responses((status = 200, body = TenantView), (status = 401, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn suspend_tenant(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<SuspendTenant>,
) -> Result<Json<TenantView>, ApiError> {
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::validation(vec![FieldError::new(
            "reason",
            "must be 1 to 200 characters",
        )]));
    }
    suspension(&state, principal, &client, TenantId(id), Some(reason)).await
}

/// Resume a suspended tenant (operator token): its keys work again. Audited.
#[utoipa::path(post, path = "/v1/tenants/{id}/resume", tag = "operator", params(("id" = String, Path),
    ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TenantView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn resume_tenant(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    suspension(&state, principal, &client, TenantId(id), None).await
}

async fn suspension(
    state: &AppState,
    principal: Principal,
    client: &Client,
    tenant: TenantId,
    reason: Option<&str>,
) -> Result<Json<TenantView>, ApiError> {
    let found = herald_domain::tenants::set_suspension(
        state.tenants.as_ref(),
        state.clock.as_ref(),
        &tenant,
        reason,
    )
    .await?;
    if !found {
        return Err(ApiError::not_found("tenant"));
    }
    let actor = Principal {
        tenant_id: tenant.clone(),
        ..principal
    };
    audit::record(
        state,
        &actor,
        client,
        format!("tenant:{tenant}"),
        if reason.is_some() {
            "tenant.suspended"
        } else {
            "tenant.resumed"
        },
        None,
        Some(serde_json::json!({"reason": reason})),
    )
    .await;
    let tenant = state
        .tenants
        .get_tenant(&tenant)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(Json(TenantView::from(&tenant)))
}
