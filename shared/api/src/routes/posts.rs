use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{
    CreatePost, EditPost, ListPostsQuery, PostList, PostView, ReviewInput, TargetInput,
};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState, CorrelationId};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::{Extension, Json};
use herald_domain::ids::{AccountId, MediaId, PostId, is_valid_id};
use herald_domain::publishing::posts::{NewPost, PostEdit, Target};
use std::sync::Arc;

/// Statuses `GET /v1/posts?status=` accepts.
const LISTABLE: [&str; 10] = [
    "pending_approval",
    "scheduled",
    "rejected",
    "cancelled",
    "publishing",
    "published",
    "partially_published",
    "failed",
    "needs_attention",
    "dispatched",
];
/// Store pages read at most per list request when filtering; the cursor continues.
const MAX_PAGES_PER_LIST: usize = 5;

fn post_id(raw: &str) -> Result<PostId, ApiError> {
    if is_valid_id(raw) {
        Ok(PostId(raw.to_owned()))
    } else {
        Err(ApiError::not_found("post"))
    }
}

fn targets(input: Vec<TargetInput>) -> Vec<Target> {
    input
        .into_iter()
        .map(|t| Target {
            account_id: AccountId(t.account_id),
            text: t.text,
            media: t.media.map(media_ids),
        })
        .collect()
}

fn media_ids(ids: Vec<String>) -> Vec<MediaId> {
    ids.into_iter().map(MediaId).collect()
}

/// Schedule a post to one or more accounts, with media uploaded through `POST /v1/media`.
/// Every problem (schedule, targets, each target's text as its platform counts it: X's
/// twitter-text weighted length up to 280, LinkedIn 3,000 and Facebook 63,206 UTF-16 code
/// units; and each media against each target's platform: type by content, size, dimensions,
/// count) comes back in one 422, each naming its field, platform, rule, limit and `actual`.
/// `Idempotency-Key` is required.
#[utoipa::path(post, path = "/v1/posts", tag = "posts", request_body = CreatePost,
    params(("Idempotency-Key" = String, Header, description = "Required: a retry with the same key and body replays the first answer")),
    responses((status = 201, body = PostView), (status = 400, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Extension(correlation): Extension<CorrelationId>,
    ApiJson(input): ApiJson<CreatePost>,
) -> Result<(StatusCode, HeaderMap, Json<PostView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "write posts")?;
    let new = NewPost {
        text: input.text,
        scheduled_at: input.scheduled_at,
        targets: targets(input.targets),
        media: media_ids(input.media),
    };
    let post = state
        .posts
        .create(&principal.actor(), new, correlation.0)
        .await?;
    tracing::info!(post_id = %post.id, status = post.status.as_str(), targets = post.variants.len(), "post created");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/posts/{}", post.id)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(PostView::from(&post))))
}

/// One post with every variant's status, attempts, platform post id and last error.
#[utoipa::path(get, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path)),
    responses((status = 200, body = PostView), (status = 404, body = Problem)))]
pub async fn get_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<PostView>, ApiError> {
    let post = state
        .posts
        .get(&principal.tenant_id, &post_id(&id)?)
        .await?;
    Ok(Json(PostView::from(&post)))
}

/// Newest first, optionally filtered by status, with cursor pagination.
#[utoipa::path(get, path = "/v1/posts", tag = "posts", params(ListPostsQuery),
    responses((status = 200, body = PostList), (status = 400, body = Problem)))]
pub async fn list_posts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ListPostsQuery>, QueryRejection>,
) -> Result<Json<PostList>, ApiError> {
    let Query(q) = query?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 100"));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !LISTABLE.contains(s)) {
        return Err(ApiError::bad_request(format!(
            "status {s:?} is not one of {}",
            LISTABLE.join(", ")
        )));
    }
    let mut cursor = match &q.cursor {
        None => None,
        Some(c) => Some(crate::cursor::decode(c, is_valid_id)?),
    };
    let matches = |status: &str| {
        q.status.as_deref().is_none_or(|want| {
            want == status
                || (want == "dispatched"
                    && !["pending_approval", "scheduled", "rejected", "cancelled"]
                        .contains(&status))
        })
    };
    let mut items = Vec::new();
    let mut next = None;
    'pages: for _ in 0..MAX_PAGES_PER_LIST {
        let page = state
            .posts
            .posts
            .list_posts(&principal.tenant_id, cursor.as_deref(), limit)
            .await?;
        for post in &page.items {
            if matches(post.display_status()) {
                items.push(PostView::from(post));
                if items.len() == limit {
                    next = Some(post.id.0.clone());
                    break 'pages;
                }
            }
        }
        match page.cursor {
            Some(c) => {
                next = Some(c.clone());
                cursor = Some(c);
            }
            None => {
                next = None;
                break;
            }
        }
    }
    Ok(Json(PostList {
        items,
        next_cursor: next.as_deref().map(crate::cursor::encode),
    }))
}

/// Edit a post no publisher has taken yet. An edit that commits before the claim is what
/// gets published. The edited post meets the same rules as a new one (one 422 lists them).
#[utoipa::path(patch, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = EditPost,
    responses((status = 200, body = PostView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn edit_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EditPost>,
) -> Result<Json<PostView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "write posts")?;
    let id = post_id(&id)?;
    let edit = PostEdit {
        text: input.text,
        scheduled_at: input.scheduled_at,
        targets: input.targets.map(targets),
        media: input.media.map(media_ids),
    };
    let post = state.posts.edit(&principal.actor(), &id, edit).await?;
    tracing::info!(post_id = %post.id, "post edited");
    Ok(Json(PostView::from(&post)))
}

/// Cancel a post no publisher has taken yet. A cancel that commits first is never published.
#[utoipa::path(delete, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = PostView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<PostView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "cancel posts")?;
    let post = state
        .posts
        .cancel(&principal.actor(), &post_id(&id)?)
        .await?;
    tracing::info!(post_id = %post.id, "post cancelled");
    Ok(Json(PostView::from(&post)))
}

/// Approve a post waiting for approval (admin or approver).
#[utoipa::path(post, path = "/v1/posts/{id}/approve", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content = Option<ReviewInput>),
    responses((status = 200, body = PostView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PostView>, ApiError> {
    review(state, principal, client, id, body, true).await
}

/// Reject a post waiting for approval (admin or approver).
#[utoipa::path(post, path = "/v1/posts/{id}/reject", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content = Option<ReviewInput>),
    responses((status = 200, body = PostView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn reject_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PostView>, ApiError> {
    review(state, principal, client, id, body, false).await
}

async fn review(
    state: Arc<AppState>,
    principal: Principal,
    client: Client,
    id: String,
    body: axum::body::Bytes,
    approve: bool,
) -> Result<Json<PostView>, ApiError> {
    principal.require(principal.role.can_approve(), "approve or reject posts")?;
    let id = post_id(&id)?;
    // The body is optional: none (or `null`) means no note.
    let input: ReviewInput = crate::optional_body(&body)?;
    let post = state
        .posts
        .review(&principal.actor(), &id, approve, input.note.clone())
        .await?;
    tracing::info!(post_id = %post.id, approve, "post reviewed");
    audit::record(
        &state,
        &principal,
        &client,
        format!("post:{}", post.id),
        if approve {
            "post.approved"
        } else {
            "post.rejected"
        },
        Some(serde_json::json!({"status": "pending_approval"})),
        Some(serde_json::json!({"status": post.status.as_str(), "note": input.note})),
    )
    .await;
    Ok(Json(PostView::from(&post)))
}
