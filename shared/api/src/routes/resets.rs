//! Operator resets: a tenant's admin closes one of its accounts' circuits or sends one of its
//! waiting streams again now; the operator lifts a platform app's block (deployment-wide).
//! Each is one conditional write in the domain (`herald_domain::resets`), audited there.
//! Nothing to reset is a 409 `nothing-to-reset` naming the state found; a trip, block or run
//! that committed meanwhile is a 409 `conflict` and nothing is written.

use super::dead_letters::operator;
use super::streams::StreamView;
use crate::audit::Client;
use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_domain::ids::{AccountId, Platform};
use herald_domain::ingest::StreamKey;
use herald_domain::publishing::gates::Breaker;
use herald_domain::resets::ResetError;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitView {
    /// `closed`, `open` or `half_open` (a probe is out).
    pub state: String,
    pub consecutive_failures: u32,
    /// Open: when a probe may go; half-open: when the probe's hold ends.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    /// The platform said the account has no calls left until then.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub blocked_until: Option<OffsetDateTime>,
}

impl From<&Breaker> for CircuitView {
    fn from(b: &Breaker) -> Self {
        Self {
            state: b.state.as_str().into(),
            consecutive_failures: b.consecutive_failures,
            until: b.until,
            blocked_until: b.blocked_until,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CircuitReset {
    pub account_id: String,
    /// The circuit as the reset found it.
    pub previous: CircuitView,
    /// The circuit now: closed, no failures, no block.
    pub circuit: CircuitView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppBlockCleared {
    /// `x`, `facebook`, `linkedin`, `mastodon`, `bluesky` or `instagram`.
    pub platform: String,
    /// When the lifted block would have ended.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub previous_until: OffsetDateTime,
}

fn refusal(e: ResetError, what: &str) -> ApiError {
    match e {
        ResetError::NotFound => ApiError::not_found(what),
        ResetError::NothingToReset(detail) => ApiError::new(
            StatusCode::CONFLICT,
            "nothing-to-reset",
            "Nothing to reset",
            detail,
        ),
        ResetError::Changed => ApiError::conflict(format!("the {what} {}", ResetError::Changed)),
        ResetError::Store(e) => e.into(),
    }
}

/// Close an account's circuit and lift the platform's block on it (admin; audited as
/// `account.circuit_reset`). 409 when it is closed and unblocked, or when a publish tripped it
/// again meanwhile.
#[utoipa::path(post, path = "/v1/accounts/{id}/reset-circuit", tag = "accounts",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CircuitReset), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Nothing to reset (`nothing-to-reset`, naming the state), or it changed meanwhile (`conflict`)"),
        (status = 503, body = Problem)))]
pub async fn reset_circuit(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<CircuitReset>, ApiError> {
    principal.require(principal.role.is_admin(), "reset a circuit")?;
    let reset = state
        .resets
        .reset_circuit(
            &principal.tenant_id,
            &AccountId(id),
            &operator(&principal, &client),
        )
        .await
        .map_err(|e| refusal(e, "account"))?;
    tracing::info!(account = %reset.account_id, "circuit reset");
    Ok(Json(CircuitReset {
        account_id: reset.account_id.0,
        previous: CircuitView::from(&reset.before),
        circuit: CircuitView::from(&reset.after),
    }))
}

/// Make a waiting stream (deferred by a rate limit, or not due yet) due now: the poller sends
/// it on its next run (admin; audited as `stream.retried`). 409 while a run holds it, when it
/// is already due, or when a run moved it meanwhile.
#[utoipa::path(post, path = "/v1/streams/{key}/retry", tag = "ingestion",
    params(("key" = String, Path, description = "e.g. `x:<user>`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = StreamView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Nothing to retry (`nothing-to-reset`, naming the state), or it changed meanwhile (`conflict`)"),
        (status = 503, body = Problem)))]
pub async fn retry_stream(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(key): Path<String>,
) -> Result<Json<StreamView>, ApiError> {
    principal.require(principal.role.is_admin(), "retry a stream")?;
    let retried = state
        .resets
        .retry_stream(
            &principal.tenant_id,
            &StreamKey(key),
            &operator(&principal, &client),
        )
        .await
        .map_err(|e| refusal(e, "stream"))?;
    tracing::info!(stream = %retried.after.key, "stream retried");
    Ok(Json(StreamView::new(&retried.after, state.clock.now())))
}

/// Lift a platform app's block (operator token; audited in the operators' log as
/// `app_block.cleared`): publishing to the platform resumes at once. 409 when the app is not
/// blocked, or a later block was recorded meanwhile.
#[utoipa::path(delete, path = "/v1/app-blocks/{platform}", tag = "operator",
    params(("platform" = String, Path, description = "`x`, `facebook`, `linkedin`, `mastodon`, `bluesky` or `instagram`"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = AppBlockCleared), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Not blocked (`nothing-to-reset`), or blocked again meanwhile (`conflict`)"),
        (status = 503, body = Problem)))]
pub async fn clear_app_block(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(platform): Path<String>,
) -> Result<Json<AppBlockCleared>, ApiError> {
    let platform = Platform::parse(&platform).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Not found",
            format!("no such platform: {}", Platform::NAMES),
        )
    })?;
    let lifted = state
        .resets
        .lift_app_block(platform, &operator(&principal, &client))
        .await
        .map_err(|e| refusal(e, "app block"))?;
    tracing::info!(%platform, "app block cleared");
    Ok(Json(AppBlockCleared {
        platform: platform.as_str().into(),
        previous_until: lifted.until,
    }))
}
