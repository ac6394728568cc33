//! Dead letters of the caller's tenant (admin): list, inspect, requeue (one, some or all
//! matching), delete. Every action is audited.

use crate::audit::Client;
use crate::auth::Principal;
use crate::dto::{DeadLetterList, DeadLetterQuery, DeadLetterView, RequeueInput, RequeueResult};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, Query, State};
use herald_domain::dead_letters::{DeadLetterFilter, Operator};
use std::sync::Arc;

fn scope(principal: &Principal) -> DeadLetterFilter {
    DeadLetterFilter {
        tenant_id: Some(principal.tenant_id.clone()),
        ..DeadLetterFilter::default()
    }
}

/// SQS keeps a message at most 14 days: no dead letter is older.
pub const MAX_AGE_SECONDS: i64 = 14 * 24 * 3600;

/// The cut-off `older_than_seconds` names, refused outside 0 to 14 days.
fn older_than(
    state: &AppState,
    seconds: Option<i64>,
    refuse: fn(String) -> ApiError,
) -> Result<Option<time::OffsetDateTime>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(s) if (0..=MAX_AGE_SECONDS).contains(&s) => {
            Ok(state.clock.now().checked_sub(time::Duration::seconds(s)))
        }
        Some(_) => Err(refuse(format!(
            "older_than_seconds must be 0 to {MAX_AGE_SECONDS} (14 days, the longest a dead letter is kept)"
        ))),
    }
}

fn operator(principal: &Principal, client: &Client) -> Operator {
    Operator {
        actor: format!("key:{}", principal.key_id),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    }
}

/// Dead letters, oldest first; filter by source queue, type and age.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead-letters", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterList), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list_dead_letters(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Query(q): Query<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    principal.require(principal.role.is_admin(), "see dead letters")?;
    let filter = DeadLetterFilter {
        source: q.source,
        kind: q.r#type,
        older_than: older_than(&state, q.older_than_seconds, ApiError::bad_request)?,
        ..scope(&principal)
    };
    let mut items = state.dead_letters.list(&filter).await?;
    items.sort_by_key(|d| d.sent_at);
    Ok(Json(DeadLetterList {
        items: items.iter().map(DeadLetterView::from).collect(),
    }))
}

/// One dead letter: its payload, the reason it was moved, its receive count.
#[utoipa::path(get, path = "/v1/dead-letters/{id}", tag = "dead-letters", params(("id" = String, Path)),
    responses((status = 200, body = DeadLetterView), (status = 404, body = Problem)))]
pub async fn get_dead_letter(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    principal.require(principal.role.is_admin(), "see dead letters")?;
    let letter = state
        .dead_letters
        .get(&scope(&principal), &id)
        .await?
        .ok_or_else(|| ApiError::not_found("dead letter"))?;
    Ok(Json(DeadLetterView::from(&letter)))
}

/// Send one dead letter back to its queue.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/requeue", tag = "dead-letters", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = RequeueResult), (status = 404, body = Problem)))]
pub async fn requeue_dead_letter(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<RequeueResult>, ApiError> {
    principal.require(principal.role.is_admin(), "requeue dead letters")?;
    let ids = [id];
    let done = state
        .dead_letters
        .requeue(
            &scope(&principal),
            Some(&ids),
            &operator(&principal, &client),
        )
        .await?;
    if done.is_empty() {
        return Err(ApiError::not_found("dead letter"));
    }
    Ok(Json(RequeueResult::from(&done)))
}

/// Send back several dead letters: those listed in `ids`, or every one matching the filter.
#[utoipa::path(post, path = "/v1/dead-letters/requeue", tag = "dead-letters", request_body = RequeueInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = RequeueResult), (status = 422, body = Problem)))]
pub async fn requeue_dead_letters(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<RequeueInput>,
) -> Result<Json<RequeueResult>, ApiError> {
    principal.require(principal.role.is_admin(), "requeue dead letters")?;
    if input
        .ids
        .as_ref()
        .is_some_and(|ids| ids.is_empty() || ids.len() > 100)
    {
        return Err(ApiError::unprocessable(
            "ids must list 1 to 100 dead letters",
        ));
    }
    let filter = DeadLetterFilter {
        source: input.source,
        kind: input.r#type,
        older_than: older_than(&state, input.older_than_seconds, ApiError::unprocessable)?,
        ..scope(&principal)
    };
    let done = state
        .dead_letters
        .requeue(
            &filter,
            input.ids.as_deref(),
            &operator(&principal, &client),
        )
        .await?;
    Ok(Json(RequeueResult::from(&done)))
}

/// Remove a dead letter for good.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "dead-letters", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = DeadLetterView), (status = 404, body = Problem)))]
pub async fn delete_dead_letter(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
) -> Result<Json<DeadLetterView>, ApiError> {
    principal.require(principal.role.is_admin(), "delete dead letters")?;
    let letter = state
        .dead_letters
        .delete(&scope(&principal), &id, &operator(&principal, &client))
        .await?
        .ok_or_else(|| ApiError::not_found("dead letter"))?;
    Ok(Json(DeadLetterView::from(&letter)))
}
