use crate::ApiError;
use crate::AppState;
use crate::auth::bearer;
use crate::dto::{HealthAnswer, HealthCheck};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_domain::health::{Audience, Status};
use herald_domain::tenants::{self, Refused};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The draft's media type for a health answer.
const HEALTH_JSON: &str = "application/health+json";

/// Health in the IETF health-check draft's format. Without a credential (or with a key that
/// is not an admin's): liveness only, `{"status":"pass"}`, and no dependency is asked. With
/// the operator token: one check per dependency with its measurements, the version and the
/// build. With a tenant admin's key: the shared checks' statuses and the tenant's own
/// accounts. `503` when any check fails; `warn` answers `200`.
#[utoipa::path(get, path = "/v1/health", tag = "meta", security((), ("api_key" = [])),
    responses(
        (status = 200, body = HealthAnswer, content_type = "application/health+json", description = "`pass` or `warn`"),
        (status = 503, body = HealthAnswer, content_type = "application/health+json", description = "A check failed"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json", description = "The credential is neither an API key nor the operator token")))]
pub async fn health(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let audience = match bearer(&headers) {
        None => console_audience(&state, &headers).await?,
        Some(credential) => {
            // The operator token counts only from the operator's networks, as on its routes.
            let operator_allowed = crate::auth::from_allowed_network(&state, &headers);
            audience(&state, credential, operator_allowed).await?
        }
    };
    let Some(audience) = audience else {
        return Ok(answer(StatusCode::OK, HealthAnswer::live()));
    };
    let report = state.health.report(&audience).await;
    let mut checks: BTreeMap<String, Vec<HealthCheck>> = BTreeMap::new();
    for check in report.checks {
        checks
            .entry(check.name.clone())
            .or_default()
            .push(HealthCheck::from(check));
    }
    let code = if report.status == Status::Fail {
        let failing: Vec<String> = checks
            .iter()
            .flat_map(|(name, found)| {
                found
                    .iter()
                    .filter(|c| c.status == "fail")
                    .map(move |c| format!("{name} {}", c.component_id))
            })
            .collect();
        tracing::warn!(?failing, "health: failing checks");
        herald_domain::metrics::health_failed();
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok(answer(code, HealthAnswer::detailed(report.status, checks)))
}

/// Who `credential` is: the operator token, an admin's API key (its tenant), or a key that
/// may not see details (`None`: the liveness answer). Anything else is refused, so a monitor
/// set up with a wrong key is told so instead of reading a reassuring `pass`. The operator
/// token is tried first: it needs no table, so the operator still gets every check when the
/// main table is what is down.
async fn audience(
    state: &AppState,
    credential: &str,
    operator_allowed: bool,
) -> Result<Option<Audience>, ApiError> {
    let operator = match &state.operator {
        Some(operator) if operator_allowed => operator.admits(credential).await,
        _ => Ok(false),
    };
    if matches!(operator, Ok(true)) {
        return Ok(Some(Audience::Operator));
    }
    match tenants::authenticate(state.tenants.as_ref(), state.clock.as_ref(), credential).await {
        Ok(key) => Ok(key
            .role
            .is_admin()
            .then_some(Audience::Tenant(key.tenant_id))),
        Err(Refused::Store(e)) => Err(e.into()),
        Err(_) => match operator {
            Err(e) => Err(e.into()),
            Ok(_) => Err(ApiError::unauthorized()),
        },
    }
}

/// Who the console's session cookie speaks for, when the request carries one: the operator,
/// or an admin's key (another role gets the liveness answer, as with a bearer key).
async fn console_audience(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Audience>, ApiError> {
    Ok(
        match crate::auth::caller(state, headers, &axum::http::Method::GET).await? {
            None => None,
            Some(crate::auth::Caller::Operator) => Some(Audience::Operator),
            Some(crate::auth::Caller::Key(key)) => key
                .role
                .is_admin()
                .then_some(Audience::Tenant(key.tenant_id)),
        },
    )
}

fn answer(code: StatusCode, body: HealthAnswer) -> Response {
    let mut response = (code, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(HEALTH_JSON));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
