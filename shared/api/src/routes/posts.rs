use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::dto::{
    CreatePost, DstInput, EditPost, ListPostsQuery, NewPostStatus, PostList, PostPreview, PostView,
    ReviewInput, ScheduleChoice, ScheduleDraft, StillLiveView, TargetInput, Unpublished,
};
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState, CorrelationId};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::{Extension, Json};
use herald_domain::ids::{AccountId, MediaId, PostId, is_valid_id};
use herald_domain::ports::calendar_position;
use herald_domain::publishing::posts::{
    FieldError, FollowUps, LocalSchedule, NewPost, PostEdit, Target,
};
use herald_domain::zone::Dst;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Statuses `GET /v1/posts?status=` accepts.
const LISTABLE: [&str; 11] = [
    "draft",
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
            options: t.options.map(Into::into).unwrap_or_default(),
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
    let new = new_post(input)?;
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

fn new_post(input: CreatePost) -> Result<NewPost, ApiError> {
    let dst = input.dst.map(|d| match d {
        DstInput::Earlier => Dst::Earlier,
        DstInput::Later => Dst::Later,
    });
    let local = LocalSchedule::from_request(input.scheduled_local.as_deref(), input.time_zone, dst)
        .map_err(ApiError::validation)?;
    Ok(NewPost {
        text: input.text,
        scheduled_at: input.scheduled_at,
        targets: targets(input.targets),
        media: media_ids(input.media),
        follow_ups: FollowUps {
            thread: input.thread,
            first_comment: input.first_comment,
        },
        draft: input.status == NewPostStatus::Draft,
        local,
        next_slot: input.schedule == Some(ScheduleChoice::NextSlot),
        alt_text: alt_text(input.alt_text),
    })
}

fn alt_text(
    input: std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<MediaId, String> {
    input
        .into_iter()
        .map(|(id, text)| (MediaId(id), text))
        .collect()
}

/// Schedule a draft: it is checked again as a new post (accounts, schedule) and then waits for
/// approval where the tenant requires it, else for its time. 409 when the post is not a draft.
#[utoipa::path(post, path = "/v1/posts/{id}/schedule", tag = "posts", params(("id" = String, Path)),
    request_body(content = Option<ScheduleDraft>),
    responses((status = 200, body = PostView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn schedule_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PostView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "write posts")?;
    // The body is optional: none (or `null`) means the draft's own time.
    let input: ScheduleDraft = crate::optional_body(&body)?;
    let id = post_id(&id)?;
    let post = match (input.schedule, input.scheduled_at) {
        (None, at) => state.posts.schedule(&principal.actor(), &id, at).await?,
        (Some(ScheduleChoice::NextSlot), None) => {
            state
                .posts
                .schedule_in_next_slot(&principal.actor(), &id)
                .await?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(vec![FieldError::new(
                "schedule",
                "next_slot takes the place of scheduled_at",
            )]));
        }
    };
    tracing::info!(post_id = %post.id, status = post.status.as_str(), "draft scheduled");
    Ok(Json(PostView::from(&post)))
}

/// What `POST /v1/posts` with this body would send to each target (text as the platform
/// counts it, media, thread or first comment) and every problem it would answer, without
/// creating anything: no post, and no Idempotency-Key is taken (one sent is ignored).
/// Always 200 for a body of the right shape; `valid` says whether the post would be accepted.
#[utoipa::path(post, path = "/v1/posts/preview", tag = "posts", request_body = CreatePost,
    responses((status = 200, body = PostPreview), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn preview_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(input): ApiJson<CreatePost>,
) -> Result<Json<PostPreview>, ApiError> {
    principal.require(principal.role.can_write_posts(), "write posts")?;
    let preview = state
        .posts
        .preview(&principal.actor(), &new_post(input)?)
        .await?;
    Ok(Json(PostPreview::from(&preview)))
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

/// Newest first, optionally filtered by status, with cursor pagination; with `from` and `to`,
/// the calendar: posts scheduled in `[from, to)`, earliest first.
#[utoipa::path(get, path = "/v1/posts", tag = "posts", params(ListPostsQuery),
    responses((status = 200, body = PostList), (status = 400, body = Problem)))]
pub async fn list_posts(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ListPostsQuery>, QueryRejection>,
) -> Result<Json<PostList>, ApiError> {
    let Query(q) = query?;
    let range = calendar_range(q.from.as_deref(), q.to.as_deref())?;
    let valid = match range {
        Some(_) => is_calendar_position,
        None => is_valid_id,
    };
    let (limit, mut cursor) = crate::cursor::page_params(q.limit, 20, q.cursor.as_deref(), valid)?;
    if let Some(s) = q.status.as_deref().filter(|s| !LISTABLE.contains(s)) {
        return Err(ApiError::bad_request(format!(
            "status {s:?} is not one of {}",
            LISTABLE.join(", ")
        )));
    }
    let matches = |status: &str| {
        q.status.as_deref().is_none_or(|want| {
            want == status
                || (want == "dispatched"
                    && ![
                        "draft",
                        "pending_approval",
                        "scheduled",
                        "rejected",
                        "cancelled",
                    ]
                    .contains(&status))
        })
    };
    let store = &state.posts.posts;
    let tenant = &principal.tenant_id;
    let mut items = Vec::new();
    let mut next = None;
    'pages: for _ in 0..MAX_PAGES_PER_LIST {
        let page = match range {
            Some((from, to)) => {
                store
                    .posts_between(tenant, from, to, cursor.as_deref(), limit)
                    .await?
            }
            None => store.list_posts(tenant, cursor.as_deref(), limit).await?,
        };
        for post in &page.items {
            if matches(post.display_status()) {
                items.push(PostView::from(post));
                if items.len() == limit {
                    next = Some(match range {
                        Some(_) => calendar_position(post.scheduled_at, &post.id),
                        None => post.id.0.clone(),
                    });
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

/// `from` and `to` as the calendar's half-open range, or `None` for the plain list.
fn calendar_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Option<(OffsetDateTime, OffsetDateTime)>, ApiError> {
    let instant = |name: &str, raw: &str| {
        OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
            ApiError::bad_request(format!(
                "{name} must be an RFC 3339 instant such as 2026-12-01T00:00:00Z \
                 (a + in an offset is %2B in a query string)"
            ))
        })
    };
    match (from, to) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => {
            let (from, to) = (instant("from", from)?, instant("to", to)?);
            if from >= to {
                return Err(ApiError::bad_request("from must be before to"));
            }
            Ok(Some((from, to)))
        }
        _ => Err(ApiError::bad_request(
            "from and to go together: the calendar needs both ends",
        )),
    }
}

/// A calendar cursor: `<epoch ms, 13 digits>#<post id>`, as [`calendar_position`] writes it.
fn is_calendar_position(raw: &str) -> bool {
    raw.split_once('#').is_some_and(|(ms, id)| {
        ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && is_valid_id(id)
    })
}

/// Edit a post no publisher has taken yet. An edit that commits before the claim is what
/// gets published. The edited post meets the same rules as a new one (one 422 lists them).
///
/// A live post (published on some target, not taken down) can change only its `text`: it is
/// edited on every live target that shares the post's text, where the platform lets apps edit
/// (Facebook, LinkedIn, Mastodon; a target on X, Bluesky or Instagram is a 422 and nothing
/// changes), each audited `post.edited`. `502` when a platform refused: the post's text is
/// unchanged, and asking again edits again.
#[utoipa::path(patch, path = "/v1/posts/{id}", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = EditPost,
    responses((status = 200, body = PostView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem), (status = 502, body = Problem)))]
pub async fn edit_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<EditPost>,
) -> Result<Json<PostView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "write posts")?;
    let id = post_id(&id)?;
    let current = state.posts.get(&principal.actor().tenant_id, &id).await?;
    if current.is_live() {
        return edit_live(&state, &principal, &id, input).await;
    }
    let edit = PostEdit {
        text: input.text,
        scheduled_at: input.scheduled_at,
        targets: input.targets.map(targets),
        media: input.media.map(media_ids),
        follow_ups: (input.thread.is_some() || input.first_comment.is_some()).then(|| FollowUps {
            thread: input.thread.unwrap_or_default(),
            first_comment: input.first_comment,
        }),
        alt_text: input.alt_text.map(alt_text),
    };
    let post = state.posts.edit(&principal.actor(), &id, edit).await?;
    tracing::info!(post_id = %post.id, "post edited");
    Ok(Json(PostView::from(&post)))
}

/// A live post: its text, on every target that shares it, where each platform allows edits.
async fn edit_live(
    state: &AppState,
    principal: &Principal,
    id: &PostId,
    input: EditPost,
) -> Result<Json<PostView>, ApiError> {
    let others = input.scheduled_at.is_some()
        || input.targets.is_some()
        || input.media.is_some()
        || input.thread.is_some()
        || input.first_comment.is_some()
        || input.alt_text.is_some();
    if others {
        return Err(ApiError::conflict(
            "the post is live: only its text can change (where its platforms allow edits)",
        ));
    }
    let Some(text) = input.text else {
        return Err(ApiError::validation(vec![FieldError::new(
            "text",
            "is required to edit a live post",
        )]));
    };
    let edited = state.live.edit(&principal.actor(), id, &text).await?;
    if !edited.not_edited.is_empty() {
        let why: Vec<String> = edited
            .not_edited
            .iter()
            .map(|s| format!("{} ({}): {}", s.account_id, s.platform.as_str(), s.message))
            .collect();
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "platform-refused",
            "A platform refused the edit",
            format!(
                "the post's text is unchanged; edited where the platform took it, ask again to retry the rest: {}",
                why.join("; ")
            ),
        ));
    }
    tracing::info!(post_id = %edited.post.id, "live post edited");
    Ok(Json(PostView::from(&edited.post)))
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

/// Take a published post down (editor): each live target's post is deleted on its platform
/// (its thread parts or first comment first), then marked `removed_at` and audited
/// (`post.removed`) once, however often this is asked. `still_live` names each target the
/// platform would not let go, with why (Instagram deletes nothing through its API; a refused
/// token); asking again retries only those. `409` while the post is still being published, or
/// when it is live nowhere (cancel it instead).
#[utoipa::path(post, path = "/v1/posts/{id}/unpublish", tag = "posts", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = Unpublished), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unpublish_post(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<Unpublished>, ApiError> {
    principal.require(principal.role.can_write_posts(), "take posts down")?;
    let done = state
        .live
        .unpublish(&principal.actor(), &post_id(&id)?)
        .await?;
    tracing::info!(post_id = %done.post.id, still_live = done.still_live.len(), "post taken down");
    Ok(Json(Unpublished {
        still_live: done
            .still_live
            .iter()
            .map(|s| StillLiveView {
                account_id: s.account_id.0.clone(),
                platform: s.platform.as_str().to_owned(),
                message: s.message.clone(),
            })
            .collect(),
        post: PostView::from(&done.post),
    }))
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
