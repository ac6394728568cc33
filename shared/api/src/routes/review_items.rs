//! Review items: timeline items ingestion could not accept, each with the reason, for a
//! person to look at (the caller's tenant only).

use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use herald_domain::ingest::ReviewItem;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListReviewItemsQuery {
    /// From a previous page's `next_cursor`.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItemView {
    /// `<stream>#<platform id>` (or `#sha256:<hex>` when the item had no id).
    pub id: String,
    /// `x:<user>`, `fb:<page>`, `li:<organisation>`.
    pub stream: String,
    pub account_id: String,
    pub platform_id: Option<String>,
    /// Why the item was not accepted.
    pub reason: String,
    /// The item as the platform sent it (JSON text).
    pub raw: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: time::OffsetDateTime,
}

impl From<&ReviewItem> for ReviewItemView {
    fn from(r: &ReviewItem) -> Self {
        Self {
            id: r.id.clone(),
            stream: r.stream.0.clone(),
            account_id: r.account_id.0.clone(),
            platform_id: r.platform_id.clone(),
            reason: r.reason.clone(),
            raw: r.raw.clone(),
            received_at: r.received_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewItemList {
    pub items: Vec<ReviewItemView>,
    pub next_cursor: Option<String>,
}

/// Review items of the caller's tenant, by id, with cursor pagination.
#[utoipa::path(get, path = "/v1/review-items", tag = "ingestion", params(ListReviewItemsQuery),
    responses((status = 200, body = ReviewItemList), (status = 400, body = Problem)))]
pub async fn list_review_items(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ListReviewItemsQuery>, QueryRejection>,
) -> Result<Json<ReviewItemList>, ApiError> {
    let Query(q) = query?;
    let (limit, cursor) =
        crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), |id| id.contains('#'))?;
    let (items, next) = state
        .ingest
        .review_items(&principal.tenant_id, limit, cursor.as_deref())
        .await?;
    Ok(Json(ReviewItemList {
        items: items.iter().map(ReviewItemView::from).collect(),
        next_cursor: next.as_deref().map(crate::cursor::encode),
    }))
}
