//! Ingest streams: every stream of the caller's tenant's connected accounts with its
//! checkpoint, schedule and counters, and the per-stream dry-run switch (admin, audited).

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, State};
use herald_domain::ingest::{Candidate, StreamKey, StreamState, set_stream_dry_run};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamCountersView {
    pub processed: u64,
    pub failed: u64,
    pub rate_limited: u64,
    pub skipped: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamView {
    /// `x:<user>`, `fb:<page>`, `fb-insights:<page>`, `li:<organisation>`.
    pub key: String,
    pub account_id: String,
    /// Its jobs fetch and validate but write nothing.
    pub dry_run: bool,
    /// The newest item (insights: the end of the last day) a finished run stored.
    pub since: Option<String>,
    /// A run is part-way through (it resumes from its checkpoint).
    pub in_progress: bool,
    /// A worker holds the stream's lease.
    pub leased: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_due: Option<OffsetDateTime>,
    /// A platform's rate limit stopped the stream until then.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deferred_until: Option<OffsetDateTime>,
    pub counters: StreamCountersView,
}

impl StreamView {
    pub(crate) fn new(c: &Candidate, now: OffsetDateTime) -> Self {
        let fresh;
        let state = match &c.state {
            Some(s) => s,
            None => {
                fresh = StreamState::new(c.tenant_id.clone(), c.account_id.clone(), c.key.clone());
                &fresh
            }
        };
        Self {
            key: c.key.0.clone(),
            account_id: c.account_id.0.clone(),
            dry_run: state.dry_run,
            since: state.position.since.clone(),
            in_progress: state.position.cursor.is_some(),
            leased: state.leased(now),
            next_due: state.next_due,
            deferred_until: state.deferred_until.filter(|u| *u > now),
            counters: StreamCountersView {
                processed: state.counters.processed,
                failed: state.counters.failed,
                rate_limited: state.counters.rate_limited,
                skipped: state.counters.skipped,
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StreamList {
    pub items: Vec<StreamView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStream {
    /// On: the stream's jobs fetch and validate, report what they would write, write nothing.
    pub dry_run: bool,
}

/// The tenant's ingest streams, by key.
#[utoipa::path(get, path = "/v1/streams", tag = "ingestion",
    responses((status = 200, body = StreamList), (status = 401, body = Problem)))]
pub async fn list_streams(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<StreamList>, ApiError> {
    let now = state.clock.now();
    let mut streams = state.ingest.streams(&principal.tenant_id).await?;
    streams.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Json(StreamList {
        items: streams.iter().map(|c| StreamView::new(c, now)).collect(),
    }))
}

/// Turn a stream's dry run on or off (admin; audited). 404 for a stream the tenant has not.
#[utoipa::path(patch, path = "/v1/streams/{key}", tag = "ingestion", request_body = UpdateStream,
    params(("key" = String, Path, description = "e.g. `fb-insights:<page>`")),
    responses((status = 200, body = StreamView), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
pub async fn update_stream(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(key): Path<String>,
    ApiJson(input): ApiJson<UpdateStream>,
) -> Result<Json<StreamView>, ApiError> {
    principal.require(principal.role.is_admin(), "change a stream")?;
    let key = StreamKey(key);
    let (before, after) =
        set_stream_dry_run(&*state.ingest, &principal.tenant_id, &key, input.dry_run)
            .await?
            .ok_or_else(|| ApiError::not_found("stream"))?;
    let view = StreamView::new(&after, state.clock.now());
    tracing::info!(stream = %key, dry_run = input.dry_run, "stream dry run set");
    audit::record(
        &state,
        &principal,
        &client,
        format!("stream:{key}"),
        "stream.dry_run_set",
        Some(serde_json::json!({"dry_run": before.state.is_some_and(|s| s.dry_run)})),
        Some(serde_json::json!({"dry_run": view.dry_run})),
    )
    .await;
    Ok(Json(view))
}
