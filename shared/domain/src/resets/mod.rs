//! Operator resets: closing an account's circuit, lifting a platform app's block, and sending
//! a waiting ingest stream again now. Each reads the state, refuses when there is nothing to
//! reset ([`ResetError::NothingToReset`], naming the state found), then writes back only if the
//! state is still exactly what it read: one conditional write, so a reset never undoes a trip,
//! a block or a run that committed after the read ([`ResetError::Changed`] instead). Every
//! reset is audited with who did it and the state it replaced.
//!
//! Who may ask is the caller's business: a tenant's admin resets its own accounts' circuits
//! and streams (the stores only look inside the tenant's partition, so another tenant's id is
//! simply not found); app blocks are deployment-wide, so only the operator lifts them, and
//! they are audited in the operators' log ([`crate::dead_letters::OPERATORS`]).

#[cfg(feature = "memory")]
pub mod memory;

use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::dead_letters::{OPERATORS, Operator};
use crate::error::StoreError;
use crate::health::AppBlocks;
use crate::ids::{AccountId, Platform, TenantId};
use crate::ingest::{Candidate, IngestStore, StreamKey, StreamState};
use crate::ports::AuditLog;
use crate::publishing::gates::{Breaker, BreakerState};
use async_trait::async_trait;
use serde_json::{Value, json};
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An account's circuit, read and closed.
#[async_trait]
pub trait CircuitResets: Send + Sync {
    /// The account's breaker (strongly consistent); `None` when the tenant has no such account.
    async fn breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Option<Breaker>, StoreError>;
    /// Closes the circuit (no failures counted) and lifts the platform's block on the account,
    /// only if its breaker is still `seen`: false when it changed or the account is gone.
    async fn close_circuit(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        seen: &Breaker,
    ) -> Result<bool, StoreError>;
}

/// A platform app's block (`AppLimiter::block_app`), read and lifted.
#[async_trait]
pub trait AppBlockResets: AppBlocks {
    /// Lifts the block, only if it still ends at `seen` (a later block stays): false otherwise.
    async fn lift_app_block(
        &self,
        platform: Platform,
        seen: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// A stream made due now.
#[async_trait]
pub trait StreamRetries: IngestStore {
    /// Makes the stream due at `now` and lifts its deferral, only if no live run holds its
    /// lease and its schedule (`next_due`, `deferred_until`) is still `seen`'s: the stream as
    /// written, or `None` when it changed.
    async fn retry_stream(
        &self,
        seen: &StreamState,
        now: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetError {
    /// The tenant has no such account or stream (or the platform is unknown).
    NotFound,
    /// Nothing is tripped, blocked or waiting: says what was found.
    NothingToReset(String),
    /// The state moved between the read and the write (a new trip, block or run): nothing
    /// was written; read it again.
    Changed,
    Store(StoreError),
}

impl From<StoreError> for ResetError {
    fn from(e: StoreError) -> Self {
        ResetError::Store(e)
    }
}

impl std::fmt::Display for ResetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResetError::NotFound => f.write_str("not found"),
            ResetError::NothingToReset(what) => f.write_str(what),
            ResetError::Changed => f.write_str(
                "it changed while it was being reset (a newer trip, block or run); nothing was written",
            ),
            ResetError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// A circuit before and after its reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitReset {
    pub account_id: AccountId,
    pub before: Breaker,
    pub after: Breaker,
}

/// A lifted app block: it would have held every call to the platform until `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppBlockLifted {
    pub platform: Platform,
    pub until: OffsetDateTime,
}

/// A stream before and after its retry.
#[derive(Debug, Clone)]
pub struct StreamRetried {
    pub before: Candidate,
    pub after: Candidate,
}

#[derive(Clone)]
pub struct ResetService {
    pub circuits: Arc<dyn CircuitResets>,
    pub app_blocks: Arc<dyn AppBlockResets>,
    pub streams: Arc<dyn StreamRetries>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(ResetService);

impl ResetService {
    /// Closes a tripped circuit (open, half-open, or blocked by the platform until later).
    pub async fn reset_circuit(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        by: &Operator,
    ) -> Result<CircuitReset, ResetError> {
        let now = self.clock.now();
        let before = self
            .circuits
            .breaker(tenant, account)
            .await?
            .ok_or(ResetError::NotFound)?;
        let blocked = before.blocked_until.filter(|u| *u > now);
        if before.state == BreakerState::Closed && blocked.is_none() {
            return Err(ResetError::NothingToReset(format!(
                "the account's circuit is closed ({} failures in a row) and the platform does not block it",
                before.consecutive_failures
            )));
        }
        if !self
            .circuits
            .close_circuit(tenant, account, &before)
            .await?
        {
            return Err(ResetError::Changed);
        }
        let reset = CircuitReset {
            account_id: account.clone(),
            before,
            after: Breaker::default(),
        };
        let entry = Audit {
            tenant: tenant.clone(),
            entity: format!("account:{account}"),
            action: "account.circuit_reset",
            old: breaker_json(&reset.before),
            new: breaker_json(&reset.after),
        };
        self.record(entry, by, now).await;
        Ok(reset)
    }

    /// Lifts a platform app's block that still holds.
    pub async fn lift_app_block(
        &self,
        platform: Platform,
        by: &Operator,
    ) -> Result<AppBlockLifted, ResetError> {
        let now = self.clock.now();
        let until = match self.app_blocks.app_block(platform).await? {
            Some(until) if until > now => until,
            Some(until) => {
                return Err(ResetError::NothingToReset(format!(
                    "the {platform} app is not blocked (its last block ended at {})",
                    rfc3339(until)
                )));
            }
            None => {
                return Err(ResetError::NothingToReset(format!(
                    "the {platform} app is not blocked"
                )));
            }
        };
        if !self.app_blocks.lift_app_block(platform, until).await? {
            return Err(ResetError::Changed);
        }
        let entry = Audit {
            tenant: TenantId(OPERATORS.into()),
            entity: format!("app_block:{platform}"),
            action: "app_block.cleared",
            old: json!({"until": rfc3339(until)}),
            new: json!({"until": null}),
        };
        self.record(entry, by, now).await;
        Ok(AppBlockLifted { platform, until })
    }

    /// Makes a stream that waits (deferred by a rate limit, or not due yet) due now: the
    /// poller sends it on its next run. A stream a live run holds, or one already due, is left.
    pub async fn retry_stream(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
        by: &Operator,
    ) -> Result<StreamRetried, ResetError> {
        let now = self.clock.now();
        let before = self
            .streams
            .streams(tenant)
            .await?
            .into_iter()
            .find(|c| &c.key == key)
            .ok_or(ResetError::NotFound)?;
        let state = waiting(before.state.as_ref(), now)?;
        let after = self
            .streams
            .retry_stream(state, now)
            .await?
            .ok_or(ResetError::Changed)?;
        let entry = Audit {
            tenant: tenant.clone(),
            entity: format!("stream:{key}"),
            action: "stream.retried",
            old: schedule_json(state),
            new: schedule_json(&after),
        };
        self.record(entry, by, now).await;
        let after = Candidate {
            state: Some(after),
            ..before.clone()
        };
        Ok(StreamRetried { before, after })
    }

    /// Appends the audit record of a reset that has happened. A failure is logged loudly but
    /// does not undo the reset.
    async fn record(&self, a: Audit, by: &Operator, at: OffsetDateTime) {
        let entry = AuditEntry {
            tenant_id: a.tenant,
            entity: a.entity,
            action: a.action.into(),
            actor: by.actor.clone(),
            old: Some(a.old),
            new: Some(a.new),
            ip: by.ip.clone(),
            user_agent: by.user_agent.clone(),
            at,
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, action = a.action, "the audit record could not be written");
        }
    }
}

struct Audit {
    tenant: TenantId,
    entity: String,
    action: &'static str,
    old: Value,
    new: Value,
}

/// The stream's state when a retry would change something: it waits, and no live run holds it.
fn waiting(state: Option<&StreamState>, now: OffsetDateTime) -> Result<&StreamState, ResetError> {
    let Some(state) = state else {
        return Err(ResetError::NothingToReset(
            "the stream has not run yet and is due: the poller sends it within a minute".into(),
        ));
    };
    if state.leased(now) {
        return Err(ResetError::NothingToReset(format!(
            "a run holds the stream until {}",
            state.lease_until.map(rfc3339).unwrap_or_default()
        )));
    }
    if state.deferred_until.is_some_and(|u| u > now) || state.next_due.is_some_and(|d| d > now) {
        return Ok(state);
    }
    Err(ResetError::NothingToReset(
        "the stream is due: the poller sends it within a minute".into(),
    ))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A breaker as the audit log keeps it.
pub fn breaker_json(b: &Breaker) -> Value {
    json!({
        "state": b.state.as_str(),
        "consecutive_failures": b.consecutive_failures,
        "until": b.until.map(rfc3339),
        "blocked_until": b.blocked_until.map(rfc3339),
    })
}

fn schedule_json(s: &StreamState) -> Value {
    json!({
        "next_due": s.next_due.map(rfc3339),
        "deferred_until": s.deferred_until.map(rfc3339),
    })
}
