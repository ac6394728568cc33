//! `GET /v1/analytics`: engagement summarised from the snapshots (each variant at its latest
//! milestone) of variants published in a time range, by post, account or platform.

use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiQuery, AppState};
use axum::Json;
use axum::extract::{Extension, State};
use herald_domain::analytics::{GroupBy, SnapshotStore, Totals, summarize};
use herald_domain::publishing::posts::FieldError;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

/// The snapshot store, installed with [`with_analytics`].
#[derive(Clone)]
pub struct AnalyticsState(pub Arc<dyn SnapshotStore>);

herald_domain::debug_fields!(AnalyticsState);

pub fn with_analytics(app: axum::Router, store: Arc<dyn SnapshotStore>) -> axum::Router {
    app.layer(Extension(AnalyticsState(store)))
}

/// The longest range one request may cover.
pub const MAX_RANGE_DAYS: i64 = 400;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// RFC 3339; variants published at or after it (default: 30 days before `to`).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; variants published before it (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `post` (default), `account` or `platform`.
    #[param(pattern = "^(post|account|platform)$")]
    pub group_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsView {
    /// The post id, account id or platform.
    pub key: String,
    pub variants: u64,
    pub likes: u64,
    pub comments: u64,
    pub shares: u64,
    pub impressions: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsView {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub group_by: String,
    pub items: Vec<TotalsView>,
}

impl From<Totals> for TotalsView {
    fn from(t: Totals) -> Self {
        Self {
            key: t.key,
            variants: t.variants,
            likes: t.likes,
            comments: t.comments,
            shares: t.shares,
            impressions: t.impressions,
        }
    }
}

/// Engagement of the tenant's published variants, from their latest snapshots.
#[utoipa::path(get, path = "/v1/analytics", tag = "analytics", params(AnalyticsQuery),
    responses((status = 200, body = AnalyticsView), (status = 422, body = Problem)))]
pub async fn get_analytics(
    State(state): State<Arc<AppState>>,
    analytics: Option<Extension<AnalyticsState>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Result<Json<AnalyticsView>, ApiError> {
    let Some(Extension(AnalyticsState(store))) = analytics else {
        return Err(ApiError::not_found("analytics"));
    };
    let mut errors = Vec::new();
    let mut parse_time = |field: &str, v: &Option<String>| match v {
        None => None,
        Some(s) => match OffsetDateTime::parse(s, &Rfc3339) {
            Ok(t) => Some(t),
            Err(_) => {
                errors.push(FieldError::new(field, "must be an RFC 3339 time"));
                None
            }
        },
    };
    let to = parse_time("to", &q.to);
    let from = parse_time("from", &q.from);
    let group = q.group_by.as_deref().unwrap_or("post");
    let group_by = GroupBy::parse(group);
    if group_by.is_none() {
        errors.push(FieldError::new(
            "group_by",
            "must be post, account or platform",
        ));
    }
    let to = to.unwrap_or_else(|| state.clock.now());
    let from = from.unwrap_or(to - time::Duration::days(30));
    if from >= to {
        errors.push(FieldError::new("from", "must be before `to`"));
    } else if to - from > time::Duration::days(MAX_RANGE_DAYS) {
        errors.push(FieldError::new(
            "from",
            format!("the range may cover at most {MAX_RANGE_DAYS} days"),
        ));
    }
    let Some(group_by) = group_by.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let snapshots = store.snapshots(&principal.tenant_id, from, to).await?;
    Ok(Json(AnalyticsView {
        from,
        to,
        group_by: group.to_owned(),
        items: summarize(&snapshots, group_by)
            .into_iter()
            .map(TotalsView::from)
            .collect(),
    }))
}
