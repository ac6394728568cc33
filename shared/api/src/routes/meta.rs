use crate::AppState;
use crate::dto::{Health, HeartbeatView};
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// A reconciler heartbeat older than this marks the deployment `degraded`.
const STALE_AFTER: time::Duration = time::Duration::minutes(5);

/// Liveness of the API and of the reconciler (its last run). `degraded` when the reconciler
/// has not run for five minutes; the store being unreachable is `degraded` too.
#[utoipa::path(get, path = "/v1/health", tag = "meta", security(()), responses((status = 200, body = Health)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Health> {
    let now = state.clock.now();
    let beat = state
        .heartbeats
        .last_beat(herald_domain::publishing::reconcile::HEARTBEAT)
        .await;
    let reconciler = match &beat {
        Ok(Some((at, _))) => Some(HeartbeatView {
            last_run_at: *at,
            seconds_ago: (now - *at).whole_seconds(),
            stale: now - *at > STALE_AFTER,
        }),
        _ => None,
    };
    let healthy = reconciler.as_ref().is_some_and(|r| !r.stale);
    if let Err(e) = &beat {
        tracing::warn!(error = %e, "reading the reconciler's heartbeat failed");
    }
    Json(Health {
        status: if healthy { "ok" } else { "degraded" }.into(),
        reconciler,
    })
}
