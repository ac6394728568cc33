//! Audit records of API actions and `GET /v1/audit`. Each record names the caller's key, the
//! client's address (the right-most `X-Forwarded-For` entry, the one API Gateway appends) and
//! user agent.

use crate::auth::{Principal, client_ip};
use crate::dto::{AuditList, AuditQuery, AuditView};
use crate::error::Problem;
use crate::{ApiError, ApiQuery, AppState};
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use herald_domain::audit::AuditEntry;
use herald_domain::ports::AuditFilter;
use serde_json::Value;
use std::sync::Arc;

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(256).collect::<String>())
        };
        Ok(Self {
            ip: client_ip(&parts.headers).map(|ip| ip.chars().take(256).collect()),
            user_agent: header("user-agent"),
        })
    }
}

/// Appends an audit record for an action that has happened. A failure is logged loudly but
/// does not undo the action.
pub async fn record(
    state: &AppState,
    principal: &Principal,
    client: &Client,
    entity: String,
    action: &str,
    old: Option<Value>,
    new: Option<Value>,
) {
    let entry = AuditEntry {
        tenant_id: principal.tenant_id.clone(),
        entity,
        action: action.to_owned(),
        actor: principal.actor_name(),
        old,
        new,
        ip: client.ip.clone(),
        user_agent: client.user_agent.clone(),
        at: state.clock.now(),
    };
    if let Err(e) = state.audit.append(entry).await {
        tracing::error!(error = %e, action, "the audit record could not be written");
    }
}

/// The tenant's audit log, newest first (admin).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list_audit(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    principal.require(principal.role.is_admin(), "read the audit log")?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 200"));
    }
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from > to
    {
        return Err(ApiError::bad_request("from must not be after to"));
    }
    for (name, value) in [
        ("entity", &q.entity),
        ("actor", &q.actor),
        ("action", &q.action),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.is_empty() || v.len() > 200)
        {
            return Err(ApiError::bad_request(format!(
                "{name} must be 1 to 200 characters"
            )));
        }
    }
    if let Some(c) = &q.cursor {
        crate::cursor::decode(c, |sk| sk.starts_with("REC#"))?;
    }
    let filter = AuditFilter {
        entity: q.entity,
        actor: q.actor,
        action: q.action,
        from: q.from,
        to: q.to,
    };
    let page = state
        .audit
        .list(&principal.tenant_id, &filter, q.cursor.as_deref(), limit)
        .await?;
    Ok(Json(AuditList {
        items: page.items.iter().map(AuditView::from).collect(),
        next_cursor: page.cursor,
    }))
}

/// What `GET /v1/audit/verify` found.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditVerdict {
    /// Whether every chain holds.
    pub ok: bool,
    pub records: usize,
    pub chains: usize,
    pub findings: Vec<AuditFinding>,
}

/// One thing wrong with a chain.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditFinding {
    pub entity: String,
    pub seq: Option<u64>,
    pub problem: String,
}

/// Checks every chain of the tenant's audit log (admin): each record's hash, the links, the
/// sequence without gaps, and each chain ending at its head; as `herald audit verify` does.
/// Reads the whole log: an expensive read.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerdict), (status = 403, body = Problem)))]
pub async fn verify_audit(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Json<AuditVerdict>, ApiError> {
    principal.require(principal.role.is_admin(), "verify the audit log")?;
    let (records, heads) = state.audit.export(&principal.tenant_id).await?;
    let findings = herald_domain::audit::verify(&records, &heads);
    Ok(Json(AuditVerdict {
        ok: findings.is_empty(),
        records: records.len(),
        chains: heads.len(),
        findings: findings
            .into_iter()
            .map(|f| AuditFinding {
                entity: f.entity,
                seq: f.seq,
                problem: f.problem,
            })
            .collect(),
    }))
}
