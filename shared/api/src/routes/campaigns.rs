//! SMS campaigns: editors create, enqueue and cancel; any key reads and estimates. Progress
//! comes from the campaign's counters, never from its recipients.

use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use herald_domain::campaigns::quiet::format_clock;
use herald_domain::campaigns::{
    Audience, Campaign, CampaignStatus, EnqueueProblem, Estimate, NewCampaign, NewQuietHours,
};
use herald_domain::ids::{CampaignId, ContactId, is_valid_id};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

/// Who is texted: contacts with any of `tags`, or the listed `contacts` (exactly one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceBody {
    #[serde(default)]
    #[schema(max_items = 50)]
    pub tags: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub contacts: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaign {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The text, with `{{field}}` placeholders: `name`, `first_name` or a contact's own field.
    #[schema(
        min_length = 1,
        max_length = 1530,
        example = "Hi {{first_name}}, 20% off today"
    )]
    pub text: String,
    /// A placeholder's value for contacts without one; without it, they are skipped.
    #[serde(default)]
    pub fallbacks: BTreeMap<String, String>,
    pub audience: AudienceBody,
    /// 1 to 11 letters, digits or spaces (at least one letter), or an E.164 number. The first
    /// tenant to send as a sender id keeps it (any case): replies to it (STOP, HELP) are its.
    #[schema(min_length = 1, max_length = 16, example = "HERALD")]
    pub sender: String,
    /// A daily window of each recipient's local time in which it is not texted (it is sent
    /// when the window ends).
    #[serde(default)]
    pub quiet_hours: Option<QuietHoursBody>,
}

/// Quiet hours: `start` (inside) to `end` (not), 24-hour `HH:MM`; a window past midnight
/// (`21:00` to `08:00`) wraps. A recipient's time is its number's zone's (libphonenumber's
/// time-zone data) where that is one time, else `time_zone`'s.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursBody {
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "21:00")]
    pub start: String,
    #[schema(pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "08:00")]
    pub end: String,
    /// IANA zone for numbers whose own zone is not known (several zones, such as `+1 800`);
    /// default: the tenant's time zone.
    #[schema(example = "America/New_York")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuietHoursView {
    pub start: String,
    pub end: String,
    pub time_zone: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AudienceView {
    pub tags: Option<Vec<String>>,
    pub contacts: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    pub recipients: u64,
    pub batches: u32,
    pub sent: u64,
    pub delivered: u64,
    /// Sent, then reported undeliverable by the provider.
    pub undelivered: u64,
    /// Refused by the provider when sent.
    pub failed: u64,
    /// Not texted: opted out after enqueue, or the campaign stopped first.
    pub skipped: u64,
    pub credits_reserved: i64,
    pub credits_used: i64,
    pub credits_released: i64,
    /// Batches queued so far (while `enqueuing`, a large audience's enqueue goes on in the
    /// background; `batches` is its total once the audience is snapshotted).
    pub batches_queued: u32,
}

/// Why the last enqueue put the campaign back to `draft`: `no_recipients`, or
/// `insufficient_credits` with what was `needed`, `available` and the `shortfall`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueueProblemView {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<i64>,
}

impl From<&EnqueueProblem> for EnqueueProblemView {
    fn from(p: &EnqueueProblem) -> Self {
        match p {
            EnqueueProblem::NoRecipients => Self {
                kind: "no_recipients".into(),
                needed: None,
                available: None,
                shortfall: None,
            },
            EnqueueProblem::InsufficientCredits {
                needed,
                available,
                shortfall,
            } => Self {
                kind: "insufficient_credits".into(),
                needed: Some(*needed),
                available: Some(*available),
                shortfall: Some(*shortfall),
            },
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignApprovalView {
    /// The approving key's id.
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    pub text: String,
    pub fallbacks: BTreeMap<String, String>,
    pub audience: AudienceView,
    pub sender: String,
    /// `draft`, `enqueuing`, `sending`, `completed` or `cancelled`.
    pub status: String,
    pub progress: ProgressView,
    /// Why the last enqueue put the campaign back to draft (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<EnqueueProblemView>,
    /// Who approved it and when (absent until approved; needed before the enqueue where the
    /// tenant requires approval).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<CampaignApprovalView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHoursView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Campaign> for CampaignView {
    fn from(c: &Campaign) -> Self {
        let p = &c.progress;
        let (tags, contacts) = match &c.audience {
            Audience::Tags(t) => (Some(t.iter().cloned().collect()), None),
            Audience::Contacts(ids) => (None, Some(ids.iter().map(|i| i.0.clone()).collect())),
        };
        Self {
            id: c.id.0.clone(),
            name: c.name.clone(),
            text: c.text.clone(),
            fallbacks: c.fallbacks.clone(),
            audience: AudienceView { tags, contacts },
            sender: c.sender.clone(),
            status: c.status.as_str().into(),
            progress: ProgressView {
                recipients: p.recipients,
                batches: p.batches,
                sent: p.sent,
                delivered: p.delivered,
                undelivered: p.undelivered,
                failed: p.failed,
                skipped: p.skipped,
                credits_reserved: p.credits_reserved,
                credits_used: p.credits_used,
                credits_released: p.credits_released,
                batches_queued: c.enqueue.batches_queued.max(match c.status {
                    CampaignStatus::Draft | CampaignStatus::Enqueuing => 0,
                    _ => p.batches,
                }),
            },
            problem: c.problem.as_ref().map(EnqueueProblemView::from),
            approval: c.approval.as_ref().map(|a| CampaignApprovalView {
                by: a.by.0.clone(),
                at: a.at,
            }),
            quiet_hours: c.quiet_hours.as_ref().map(|q| QuietHoursView {
                start: format_clock(q.start),
                end: format_clock(q.end),
                time_zone: q.time_zone.to_string(),
            }),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignList {
    pub items: Vec<CampaignView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// What enqueueing would take now.
#[derive(Debug, Serialize, ToSchema)]
pub struct EstimateView {
    /// Contacts that would be texted.
    pub recipients: u64,
    /// Contacts of the audience that would not be, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// SMS segments in all (GSM-7: 160 or 153 per part; UCS-2: 70 or 67).
    pub segments: u64,
    /// Recipients by encoding: `gsm7`, `ucs2`.
    pub encodings: BTreeMap<String, u64>,
    /// One per segment.
    pub credits: i64,
    pub available: i64,
    pub shortfall: i64,
}

impl From<Estimate> for EstimateView {
    fn from(e: Estimate) -> Self {
        Self {
            recipients: e.recipients,
            skipped: e.skipped,
            segments: e.segments,
            encodings: e.encodings,
            credits: e.credits,
            available: e.available,
            shortfall: e.shortfall,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CampaignsQuery {
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<usize>,
}

fn campaign_id(raw: &str) -> Result<CampaignId, ApiError> {
    if is_valid_id(raw) {
        Ok(CampaignId(raw.to_owned()))
    } else {
        Err(ApiError::not_found("campaign"))
    }
}

/// Create a draft campaign (editor).
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CreateCampaign,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = CampaignView), (status = 403, body = Problem),
        (status = 409, description = "Another tenant sends as this sender id", body = Problem),
        (status = 422, body = Problem)))]
pub async fn create_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiJson(input): ApiJson<CreateCampaign>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "write campaigns")?;
    let new = NewCampaign {
        name: input.name,
        text: input.text,
        fallbacks: input.fallbacks,
        tags: input.audience.tags,
        contacts: input.audience.contacts.into_iter().map(ContactId).collect(),
        sender: input.sender,
        created_by: Some(principal.key_id.clone()),
        quiet_hours: match input.quiet_hours {
            None => None,
            Some(q) => Some(NewQuietHours {
                time_zone: match q.time_zone {
                    Some(zone) => zone,
                    None => settings(&state, &principal).await?.zone().to_string(),
                },
                start: q.start,
                end: q.end,
            }),
        },
    };
    let campaign = state.campaigns.create(&principal.tenant_id, new).await?;
    Ok((StatusCode::CREATED, Json(CampaignView::from(&campaign))))
}

/// The tenant's campaigns, newest first.
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", params(CampaignsQuery),
    responses((status = 200, body = CampaignList), (status = 400, body = Problem)))]
pub async fn list_campaigns(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<CampaignsQuery>, QueryRejection>,
) -> Result<Json<CampaignList>, ApiError> {
    let Query(q) = query?;
    let (limit, cursor) =
        crate::cursor::page_params(q.limit, 50, q.cursor.as_deref(), is_valid_id)?;
    let page = state
        .campaigns
        .list(&principal.tenant_id, cursor.as_deref(), limit)
        .await?;
    Ok(Json(CampaignList {
        items: page.items.iter().map(CampaignView::from).collect(),
        next_cursor: page.cursor.as_deref().map(crate::cursor::encode),
    }))
}

/// One campaign, with its progress (counts by status, credits used and released).
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem)))]
pub async fn get_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    let campaign = state
        .campaigns
        .get(&principal.tenant_id, &campaign_id(&id)?)
        .await?;
    Ok(Json(CampaignView::from(&campaign)))
}

/// What enqueueing would take now: recipients, segments, credits and any shortfall.
/// Creates nothing.
#[utoipa::path(post, path = "/v1/campaigns/{id}/estimate", tag = "campaigns", params(("id" = String, Path)),
    responses((status = 200, body = EstimateView), (status = 404, body = Problem)))]
pub async fn estimate_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<EstimateView>, ApiError> {
    let estimate = state
        .campaigns
        .estimate(&principal.tenant_id, &campaign_id(&id)?)
        .await?;
    Ok(Json(estimate.into()))
}

/// Send a draft (editor), once: its audience is snapshotted, its credits reserved all or
/// nothing (`402` names the shortfall, and nothing is reserved), its batches queued. An
/// audience too large to enqueue within the answer (more than 5,000 contacts by default) is
/// answered `enqueuing` at once and enqueued in the background: follow it on
/// `GET /v1/campaigns/{id}`, where a shortfall found then puts the campaign back to `draft`
/// with its `problem`.
#[utoipa::path(post, path = "/v1/campaigns/{id}/enqueue", tag = "campaigns",
    params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 202, body = CampaignView), (status = 402, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn enqueue_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    axum::Extension(correlation): axum::Extension<crate::CorrelationId>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CampaignView>), ApiError> {
    principal.require(principal.role.can_write_posts(), "send campaigns")?;
    let settings = settings(&state, &principal).await?;
    let campaign = state
        .campaigns
        .enqueue(
            &principal.tenant_id,
            &campaign_id(&id)?,
            &correlation.0,
            settings.require_approval,
        )
        .await?;
    Ok((StatusCode::ACCEPTED, Json(CampaignView::from(&campaign))))
}

/// The tenant's settings (approval applies to campaigns as to posts).
async fn settings(
    state: &AppState,
    principal: &Principal,
) -> Result<herald_domain::model::TenantSettings, ApiError> {
    Ok(state
        .tenants
        .get_tenant(&principal.tenant_id)
        .await?
        .map(|t| t.settings)
        .unwrap_or_default())
}

/// Approve a draft for sending (approver or admin). Where the tenant requires approval, a
/// campaign is enqueued only once approved; where it forbids self-approval, not with the key
/// that created it (`403`). Approving again changes nothing.
#[utoipa::path(post, path = "/v1/campaigns/{id}/approve", tag = "campaigns",
    params(("id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn approve_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    principal.require(principal.role.can_approve(), "approve campaigns")?;
    let settings = settings(&state, &principal).await?;
    let campaign = state
        .campaigns
        .approve(
            &principal.tenant_id,
            &campaign_id(&id)?,
            &principal.key_id,
            settings.forbid_self_approval,
        )
        .await?;
    Ok(Json(CampaignView::from(&campaign)))
}

/// Cancel a campaign (editor): nobody is texted after this, and the credits not spent go
/// back to the balance.
#[utoipa::path(post, path = "/v1/campaigns/{id}/cancel", tag = "campaigns",
    params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CampaignView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_campaign(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<CampaignView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "cancel campaigns")?;
    let campaign = state
        .campaigns
        .cancel(&principal.tenant_id, &campaign_id(&id)?)
        .await?;
    Ok(Json(CampaignView::from(&campaign)))
}
