//! Posting slots: the tenant's weekly times (and accounts' own), which
//! `"schedule": "next_slot"` on `POST /v1/posts` fills, earliest free first.

use crate::audit::{self, Client};
use crate::auth::Principal;
use crate::error::Problem;
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::State;
use herald_domain::ids::AccountId;
use herald_domain::publishing::slots::{PostingSlots, SlotRule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use utoipa::ToSchema;

/// Days and local times, read in the tenant's `time_zone`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotRuleBody {
    /// `mon` to `sun`.
    #[schema(min_items = 1, max_items = 7, example = json!(["mon", "wed", "fri"]))]
    pub days: Vec<String>,
    /// `HH:MM`, 24-hour.
    #[schema(min_items = 1, max_items = 24, example = json!(["09:00", "17:30"]))]
    pub times: Vec<String>,
}

/// The tenant's posting slots: `slots` for every account, `accounts` (by account id) for
/// those with their own.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostingSlotsBody {
    #[serde(default)]
    #[schema(max_items = 20)]
    pub slots: Vec<SlotRuleBody>,
    #[serde(default)]
    pub accounts: BTreeMap<String, Vec<SlotRuleBody>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostingSlotsView {
    pub slots: Vec<SlotRuleBody>,
    pub accounts: BTreeMap<String, Vec<SlotRuleBody>>,
    /// The zone the times are read in (the tenant's; `PATCH /v1/tenant` changes it).
    pub time_zone: String,
}

fn rules(body: Vec<SlotRuleBody>) -> Vec<SlotRule> {
    body.into_iter()
        .map(|r| SlotRule {
            days: r.days,
            times: r.times,
        })
        .collect()
}

fn bodies(rules: &[SlotRule]) -> Vec<SlotRuleBody> {
    rules
        .iter()
        .map(|r| SlotRuleBody {
            days: r.days.clone(),
            times: r.times.clone(),
        })
        .collect()
}

async fn view(state: &AppState, principal: &Principal) -> Result<PostingSlotsView, ApiError> {
    let slots = state
        .posts
        .slots
        .posting_slots(&principal.tenant_id)
        .await?
        .unwrap_or_default();
    let zone = state
        .tenants
        .get_tenant(&principal.tenant_id)
        .await?
        .map(|t| t.settings.zone().to_string())
        .unwrap_or_else(|| "UTC".into());
    Ok(PostingSlotsView {
        slots: bodies(&slots.slots),
        accounts: slots
            .accounts
            .iter()
            .map(|(id, r)| (id.0.clone(), bodies(r)))
            .collect(),
        time_zone: zone,
    })
}

/// The tenant's posting slots (empty lists until set).
#[utoipa::path(get, path = "/v1/posting-slots", tag = "posts",
    responses((status = 200, body = PostingSlotsView), (status = 401, body = Problem)))]
pub async fn get_posting_slots(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<PostingSlotsView>, ApiError> {
    Ok(Json(view(&state, &principal).await?))
}

/// Replace the posting slots (editor). Every problem is one 422; nothing changes then.
#[utoipa::path(put, path = "/v1/posting-slots", tag = "posts", request_body = PostingSlotsBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = PostingSlotsView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_posting_slots(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    client: Client,
    ApiJson(input): ApiJson<PostingSlotsBody>,
) -> Result<Json<PostingSlotsView>, ApiError> {
    principal.require(principal.role.can_write_posts(), "set posting slots")?;
    let slots = PostingSlots {
        slots: rules(input.slots),
        accounts: input
            .accounts
            .into_iter()
            .map(|(id, r)| (AccountId(id), rules(r)))
            .collect(),
    };
    let known: BTreeSet<AccountId> = state
        .accounts
        .list_accounts(&principal.tenant_id)
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect();
    let problems = slots.problems(|id| known.contains(id));
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let before = state
        .posts
        .slots
        .posting_slots(&principal.tenant_id)
        .await?;
    state
        .posts
        .slots
        .put_posting_slots(&principal.tenant_id, &slots)
        .await?;
    audit::record(
        &state,
        &principal,
        &client,
        format!("tenant:{}", principal.tenant_id),
        "posting_slots.changed",
        before.map(|b| serde_json::json!(b)),
        Some(serde_json::json!(slots)),
    )
    .await;
    Ok(Json(view(&state, &principal).await?))
}
