//! Imports: `POST /v1/imports` records a file to come and answers with a presigned upload URL
//! (the bytes go straight to storage); `POST /v1/imports/{id}/start` pins the uploaded file and
//! queues the job that works it row by row; `GET` shows the progress, and `/issues` every row
//! that created nothing, with why. Editors import; any key reads.

use crate::auth::Principal;
use crate::dto::UploadView;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use herald_domain::ids::{ImportId, is_valid_id};
use herald_domain::imports::{Import, NewImport, RowIssue};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateImport {
    /// What the file holds: `contacts` (CSV with a header row: `phone` required; `region`,
    /// `name`, `tags` separated by `;`, `consent` (`opted_in`/`opted_out`), `consent_source`;
    /// any other column is a custom field of that name) or `posts` (CSV with a header row:
    /// `text` and `accounts` (ids separated by `;`) required; `scheduled_at`,
    /// `scheduled_local`, `time_zone`, `dst`, `schedule` (`next_slot`), `status` (`draft`),
    /// `media` (ids separated by `;`), `first_comment`; or JSON lines, each line a
    /// `POST /v1/posts` body, threads and per-target text included). Each post row is checked
    /// as `POST /v1/posts` checks a post and created as the import's creator.
    #[schema(example = "contacts")]
    pub kind: String,
    /// `csv` (default) or `jsonl` (posts only). The upload is signed for `text/csv` or
    /// `application/x-ndjson`.
    #[schema(example = "csv")]
    pub format: Option<String>,
    /// The file's size in bytes (the upload is signed for exactly this size; at most 20 MiB).
    #[schema(minimum = 1, maximum = 20971520)]
    pub size: u64,
    /// Contacts only: ISO 3166 region of national numbers in rows without a `region` cell.
    #[schema(min_length = 2, max_length = 2)]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportRows {
    /// Rows worked so far (a CSV's header not counted).
    pub read: u64,
    pub created: u64,
    /// Contacts: rows whose number the tenant already had.
    pub duplicates: u64,
    pub invalid: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: String,
    pub kind: String,
    /// `csv` or `jsonl`.
    pub format: String,
    /// `awaiting_upload`, `queued`, `running`, `completed` or `failed`.
    pub status: String,
    pub size: u64,
    pub region: Option<String>,
    pub rows: ImportRows,
    /// Why a failed import failed (rows created before stay).
    pub problem: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Only when created: where to upload the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<UploadView>,
}

impl From<&Import> for ImportView {
    fn from(i: &Import) -> Self {
        ImportView {
            id: i.id.0.clone(),
            kind: i.kind.as_str().into(),
            format: i.format.as_str().into(),
            status: i.status.as_str().into(),
            size: i.size,
            region: i.region.clone(),
            rows: ImportRows {
                read: i.counts.rows,
                created: i.counts.created,
                duplicates: i.counts.duplicates,
                invalid: i.counts.invalid,
            },
            problem: i.problem.clone(),
            created_at: i.created_at,
            updated_at: i.updated_at,
            upload: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportList {
    pub items: Vec<ImportView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowProblemView {
    /// The column (`*` for the row as a whole); for JSON lines, the field.
    pub column: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowIssueView {
    /// 1 for the first row after a CSV's header (or a JSON lines file's first object).
    pub row: u64,
    /// The line of the file the row begins on.
    pub line: u64,
    /// `invalid` or `duplicate`.
    pub outcome: String,
    pub problems: Vec<RowProblemView>,
    /// For a duplicate: the contact that has the number.
    pub contact_id: Option<String>,
}

impl From<&RowIssue> for RowIssueView {
    fn from(i: &RowIssue) -> Self {
        RowIssueView {
            row: i.row,
            line: i.line,
            outcome: match i.outcome {
                herald_domain::imports::RowOutcome::Invalid => "invalid".into(),
                herald_domain::imports::RowOutcome::Duplicate => "duplicate".into(),
            },
            problems: i
                .problems
                .iter()
                .map(|p| RowProblemView {
                    column: p.column.clone(),
                    message: p.message.clone(),
                })
                .collect(),
            contact_id: i.contact_id.as_ref().map(|c| c.0.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RowIssueList {
    pub items: Vec<RowIssueView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportsQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

fn import_id(raw: &str) -> Result<ImportId, ApiError> {
    if is_valid_id(raw) {
        Ok(ImportId(raw.to_owned()))
    } else {
        Err(ApiError::not_found("import"))
    }
}

/// Create an import (editor): answers with its id and where to upload the file (`PUT` with
/// exactly the headers given, before `expires_at`); then start it. Nothing is stored when the
/// request is invalid.
#[utoipa::path(post, path = "/v1/imports", tag = "imports", request_body = CreateImport,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a retry gets the same import and upload URL")),
    responses((status = 201, body = ImportView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateImport>,
) -> Result<(StatusCode, Json<ImportView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "import")?;
    let new = NewImport {
        kind: input.kind,
        format: input.format,
        size: input.size,
        region: input.region,
    };
    let (import, upload) = state.imports.create(&principal.actor(), new).await?;
    tracing::info!(import_id = %import.id, kind = import.kind.as_str(), size = import.size, "import created");
    let mut view = ImportView::from(&import);
    view.upload = Some(UploadView::from(&upload));
    Ok((StatusCode::CREATED, Json(view)))
}

/// Start an import once its file is uploaded (editor): `202`, and a job works it. Starting
/// again changes nothing (an import whose job went quiet for two minutes gets a fresh one).
/// `409` when the file has not arrived.
#[utoipa::path(post, path = "/v1/imports/{id}/start", tag = "imports", params(("id" = String, Path)),
    responses((status = 202, body = ImportView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn start_import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    axum::Extension(correlation): axum::Extension<crate::CorrelationId>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ImportView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "import")?;
    let import = state
        .imports
        .start(&principal.tenant_id, &import_id(&id)?, &correlation.0)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ImportView::from(&import))))
}

/// One import and its progress.
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "imports", params(("id" = String, Path)),
    responses((status = 200, body = ImportView), (status = 404, body = Problem)))]
pub async fn get_import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<ImportView>, ApiError> {
    let import = state
        .imports
        .get(&principal.tenant_id, &import_id(&id)?)
        .await?;
    Ok(Json(ImportView::from(&import)))
}

/// The tenant's imports, newest first.
#[utoipa::path(get, path = "/v1/imports", tag = "imports", params(ImportsQuery),
    responses((status = 200, body = ImportList), (status = 400, body = Problem)))]
pub async fn list_imports(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ImportsQuery>, QueryRejection>,
) -> Result<Json<ImportList>, ApiError> {
    let Query(q) = query?;
    let (limit, cursor) =
        crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), is_valid_id)?;
    let page = state
        .imports
        .list(&principal.tenant_id, cursor.as_deref(), limit)
        .await?;
    Ok(Json(ImportList {
        items: page.items.iter().map(ImportView::from).collect(),
        next_cursor: page.cursor.as_deref().map(crate::cursor::encode),
    }))
}

/// The rows of an import that created nothing, in row order, each with why (never the row's
/// content).
#[utoipa::path(get, path = "/v1/imports/{id}/issues", tag = "imports", params(("id" = String, Path), ImportsQuery),
    responses((status = 200, body = RowIssueList), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn import_issues(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
    query: Result<Query<ImportsQuery>, QueryRejection>,
) -> Result<Json<RowIssueList>, ApiError> {
    let Query(q) = query?;
    let (limit, cursor) = crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), |c| {
        c.len() == 10 && c.bytes().all(|b| b.is_ascii_digit())
    })?;
    let page = state
        .imports
        .issues(
            &principal.tenant_id,
            &import_id(&id)?,
            cursor.as_deref(),
            limit,
        )
        .await?;
    Ok(Json(RowIssueList {
        items: page.items.iter().map(RowIssueView::from).collect(),
        next_cursor: page.cursor.as_deref().map(crate::cursor::encode),
    }))
}
