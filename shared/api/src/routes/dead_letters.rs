//! Dead letters of the caller's tenant (admin): list a page at a time, inspect, requeue (one,
//! some or all matching), delete. They are records under the tenant (the reconciler drains the
//! DLQs into them every minute), so reading one tenant's touches no other's. Every action is
//! audited.

use crate::audit::Client;
use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, ApiQuery, AppState};
use axum::Json;
use axum::extract::{Path, State};
use herald_domain::dead_letters::{self, Operator};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// The oldest dead letter a filter may name: a year (records are kept until someone acts).
pub const MAX_AGE_SECONDS: i64 = 366 * 24 * 3600;
/// A page's default size.
const DEFAULT_PAGE: usize = 50;

/// The cut-off `older_than_seconds` names, refused outside 0 to 366 days.
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
            "older_than_seconds must be 0 to {MAX_AGE_SECONDS} (366 days)"
        ))),
    }
}

pub(crate) fn operator(principal: &Principal, client: &Client) -> Operator {
    Operator {
        actor: principal.actor_name(),
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
    }
}

/// A dead letter's id as this API gives them out: `<13 digits>-<message id>` (SQS message ids
/// are UUIDs: letters, digits and dashes).
fn valid_id(id: &str) -> bool {
    let Some((millis, message)) = id.split_once('-') else {
        return false;
    };
    millis.len() == 13
        && millis.bytes().all(|b| b.is_ascii_digit())
        && (1..=128).contains(&message.len())
        && message
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Dead letters, oldest first, a page at a time; filter by source queue, type and age.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead-letters", params(DeadLetterQuery),
    responses((status = 200, body = DeadLetterList), (status = 400, body = Problem), (status = 403, body = Problem)))]
pub async fn list_dead_letters(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<DeadLetterQuery>,
) -> Result<Json<DeadLetterList>, ApiError> {
    principal.require(principal.role.is_admin(), "see dead letters")?;
    for (name, value, max) in [("source", &q.source, 64), ("type", &q.r#type, 128)] {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > max)
        {
            return Err(ApiError::bad_request(format!(
                "{name} must be 1 to {max} characters"
            )));
        }
    }
    let query = dead_letters::DeadLetterQuery {
        source: q.source,
        kind: q.r#type,
        older_than: older_than(&state, q.older_than_seconds, ApiError::bad_request)?,
    };
    let limit = match q.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=dead_letters::MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {}",
                dead_letters::MAX_PAGE
            )));
        }
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| crate::cursor::decode(c, valid_id))
        .transpose()?;
    let page = state
        .dead_letters
        .list(&principal.tenant_id, &query, cursor.as_deref(), limit)
        .await?;
    Ok(Json(DeadLetterList {
        items: page.items.iter().map(DeadLetterView::from).collect(),
        next_cursor: page.cursor.as_deref().map(crate::cursor::encode),
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
    if !valid_id(&id) {
        return Err(ApiError::not_found("dead letter"));
    }
    let letter = state
        .dead_letters
        .get(&principal.tenant_id, &id)
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
    if !valid_id(&id) {
        return Err(ApiError::not_found("dead letter"));
    }
    let done = state
        .dead_letters
        .requeue_ids(&principal.tenant_id, &[id], &operator(&principal, &client))
        .await?;
    if done.is_empty() {
        return Err(ApiError::not_found("dead letter"));
    }
    Ok(Json(RequeueResult::new(&done, false)))
}

/// Send back several dead letters: those listed in `ids`, or every one matching the filter
/// (at most 500 a call: `more` says to call again).
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
    let by = operator(&principal, &client);
    if let Some(ids) = &input.ids {
        if ids.is_empty() || ids.len() > 100 || !ids.iter().all(|id| valid_id(id)) {
            return Err(ApiError::unprocessable(
                "ids must list 1 to 100 dead letter ids",
            ));
        }
        let done = state
            .dead_letters
            .requeue_ids(&principal.tenant_id, ids, &by)
            .await?;
        return Ok(Json(RequeueResult::new(&done, false)));
    }
    let query = dead_letters::DeadLetterQuery {
        source: input.source,
        kind: input.r#type,
        older_than: older_than(&state, input.older_than_seconds, ApiError::unprocessable)?,
    };
    let done = state
        .dead_letters
        .requeue_matching(&principal.tenant_id, &query, &by)
        .await?;
    Ok(Json(RequeueResult::new(&done.letters, done.more)))
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
    if !valid_id(&id) {
        return Err(ApiError::not_found("dead letter"));
    }
    let letter = state
        .dead_letters
        .delete(&principal.tenant_id, &id, &operator(&principal, &client))
        .await?
        .ok_or_else(|| ApiError::not_found("dead letter"))?;
    Ok(Json(DeadLetterView::from(&letter)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// The queue it came from, e.g. `publish`.
    #[param(min_length = 1, max_length = 64)]
    pub source: Option<String>,
    /// The message type, e.g. `publish` or `unreadable`.
    #[param(min_length = 1, max_length = 128)]
    pub r#type: Option<String>,
    /// Only messages older than this many seconds.
    #[param(minimum = 0, maximum = 31622400)]
    pub older_than_seconds: Option<i64>,
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub id: String,
    pub source: String,
    pub r#type: String,
    /// The message as it was sent (JSON for publish messages).
    pub payload: serde_json::Value,
    /// Why Herald moved it to the DLQ, when Herald did.
    pub reason: Option<String>,
    pub receive_count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
}

impl From<&herald_domain::dead_letters::DeadLetter> for DeadLetterView {
    fn from(d: &herald_domain::dead_letters::DeadLetter) -> Self {
        Self {
            id: d.id.clone(),
            source: d.source.clone(),
            r#type: d.kind.clone(),
            payload: serde_json::from_str(&d.body)
                .unwrap_or_else(|_| serde_json::Value::String(d.body.clone())),
            reason: d.reason.clone(),
            receive_count: d.receive_count,
            sent_at: d.sent_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetterView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequeueInput {
    /// Requeue exactly these; otherwise every dead letter matching the filter.
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Option<Vec<String>>,
    #[schema(min_length = 1, max_length = 64)]
    pub source: Option<String>,
    #[schema(min_length = 1, max_length = 128)]
    pub r#type: Option<String>,
    #[schema(minimum = 0, maximum = 31622400)]
    pub older_than_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequeueResult {
    pub requeued: usize,
    pub ids: Vec<String>,
    /// Matching dead letters remain (a call requeues at most 500): call again.
    pub more: bool,
}

impl RequeueResult {
    pub fn new(done: &[herald_domain::dead_letters::DeadLetter], more: bool) -> Self {
        Self {
            requeued: done.len(),
            ids: done.iter().map(|d| d.id.clone()).collect(),
            more,
        }
    }
}
