//! Media: `POST /v1/media` records a file to come and answers with a presigned upload URL
//! (the bytes go straight to storage, never through the API); `GET /v1/media/{id}` says what
//! arrived (type by content, size, dimensions). Posts name media by id.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{CreateMedia, MediaView};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use herald_domain::ids::{MediaId, is_valid_id};
use herald_domain::media::NewMedia;
use std::sync::Arc;

/// Create media: answers with its id and where to upload the bytes (`PUT` with exactly the
/// headers given, before `expires_at`). Nothing is stored when the request is invalid.
#[utoipa::path(post, path = "/v1/media", tag = "media", request_body = CreateMedia,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a retry gets the same media and upload URL")),
    responses((status = 201, body = MediaView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_media(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<CreateMedia>,
) -> Result<(StatusCode, HeaderMap, Json<MediaView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "upload media")?;
    let new = NewMedia {
        content_type: input.content_type,
        file_name: input.file_name,
        size: input.size,
    };
    let (media, upload) = state.posts.media.create(&principal.actor(), new).await?;
    // The file name is the tenant's data: it is neither logged nor audited.
    tracing::info!(media_id = %media.id, content_type = media.declared_type.mime(), size = media.declared_size, "media created");
    audit::record(
        &state,
        &principal,
        &client,
        format!("media:{}", media.id),
        "media.created",
        None,
        Some(serde_json::json!({"content_type": media.declared_type.mime(), "size": media.declared_size})),
    )
    .await;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/media/{}", media.id)) {
        headers.insert(header::LOCATION, v);
    }
    let view = MediaView::new(&media, state.clock.now(), Some(&upload));
    Ok((StatusCode::CREATED, headers, Json(view)))
}

/// One media: whether it was uploaded, and what it turned out to be (type by content, size,
/// dimensions).
#[utoipa::path(get, path = "/v1/media/{id}", tag = "media", params(("id" = String, Path)),
    responses((status = 200, body = MediaView), (status = 404, body = Problem)))]
pub async fn get_media(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<MediaView>, ApiError> {
    if !is_valid_id(&id) {
        return Err(ApiError::not_found("media"));
    }
    let media = state
        .posts
        .media
        .get(&principal.tenant_id, &MediaId(id))
        .await?;
    Ok(Json(MediaView::new(&media, state.clock.now(), None)))
}
