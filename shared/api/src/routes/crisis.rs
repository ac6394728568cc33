//! Crisis mode: a tenant's pause switch (admin). Once `PUT` answers, no publish claim for a
//! paused platform commits; the dispatcher holds fully paused tenants' posts, and lifting the
//! pause releases them.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{CrisisInput, CrisisView};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::State;
use herald_domain::model::Platform;
use herald_domain::publishing::gates::Crisis;
use herald_domain::publishing::posts::FieldError;
use std::sync::Arc;

/// The longest pause one call may set; a longer crisis is extended explicitly.
const MAX_PAUSE: time::Duration = time::Duration::days(30);

/// The tenant's pause, if one is active.
#[utoipa::path(get, path = "/v1/crisis", tag = "crisis",
    responses((status = 200, body = CrisisView), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn get_crisis(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<CrisisView>, ApiError> {
    principal.require(principal.role.is_admin(), "see crisis mode")?;
    let now = state.clock.now();
    let crisis = state
        .crises
        .get_crisis(&principal.tenant_id)
        .await?
        .filter(|c| c.is_active(now));
    Ok(Json(CrisisView::from_crisis(crisis.as_ref())))
}

/// Pause publishing for every platform (no `platforms`) or a list, with a reason, until
/// `expires_at` (default 24 h). Replaces a pause in force.
#[utoipa::path(put, path = "/v1/crisis", tag = "crisis", request_body = CrisisInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CrisisView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn start_crisis(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CrisisInput>,
) -> Result<Json<CrisisView>, ApiError> {
    principal.require(principal.role.is_admin(), "pause publishing")?;
    let now = state.clock.now();
    let mut errors = Vec::new();
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.chars().count() > 500 {
        errors.push(FieldError::new("reason", "must be 1 to 500 characters"));
    }
    let mut platforms = Vec::new();
    for (i, name) in input.platforms.iter().flatten().enumerate() {
        match Platform::parse(name) {
            Some(p) if !platforms.contains(&p) => platforms.push(p),
            Some(_) => errors.push(FieldError::new(
                format!("platforms[{i}]"),
                "is listed twice",
            )),
            None => errors.push(FieldError::new(
                format!("platforms[{i}]"),
                format!("must be {}", Platform::NAMES),
            )),
        }
    }
    let expires_at = input.expires_at.map_or(
        now + Crisis::DEFAULT_LENGTH,
        herald_domain::clock::to_millis,
    );
    if expires_at <= now || expires_at > now + MAX_PAUSE {
        errors.push(FieldError::new(
            "expires_at",
            "must be in the future and at most 30 days away",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    platforms.sort();
    let crisis = Crisis {
        tenant_id: principal.tenant_id.clone(),
        platforms,
        reason,
        started_by: principal.key_id.clone(),
        started_at: now,
        expires_at,
    };
    let before = state.crises.get_crisis(&principal.tenant_id).await?;
    state.crises.put_crisis(&crisis).await?;
    tracing::warn!(platforms = ?crisis.platforms, expires_at = %crisis.expires_at, "crisis mode on");
    let view = CrisisView::from_crisis(Some(&crisis));
    audit::record(
        &state,
        &principal,
        &client,
        "crisis".into(),
        "crisis.started",
        before
            .filter(|c| c.is_active(now))
            .map(|c| serde_json::json!(CrisisView::from_crisis(Some(&c)))),
        Some(serde_json::json!(view)),
    )
    .await;
    Ok(Json(view))
}

/// Lift the pause; paused posts are released. 404 when there is none.
#[utoipa::path(delete, path = "/v1/crisis", tag = "crisis",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CrisisView), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn lift_crisis(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
) -> Result<Json<CrisisView>, ApiError> {
    principal.require(principal.role.is_admin(), "lift a pause")?;
    let now = state.clock.now();
    let lifted = state
        .crises
        .delete_crisis(&principal.tenant_id)
        .await?
        .filter(|c| c.is_active(now))
        .ok_or_else(|| ApiError::not_found("pause"))?;
    tracing::warn!("crisis mode off");
    let mut view = CrisisView::from_crisis(Some(&lifted));
    audit::record(
        &state,
        &principal,
        &client,
        "crisis".into(),
        "crisis.lifted",
        Some(serde_json::json!(view)),
        None,
    )
    .await;
    view.active = false;
    Ok(Json(view))
}
