//! `wallet.low_balance`: announced when a change takes a tenant's balance from at or above
//! its `low_balance_credits` to below it (a reservation, or a reversal of a top-up). Once per
//! crossing: a wallet that stays low is not announced again until a top-up or a release has
//! lifted it back and another change takes it under. The event's id is the ledger entry's,
//! so a replayed change (its idempotency key seen before) announces nothing new.
//!
//! Announced by whichever function made the change (the API and the SMS sender reserve, the
//! webhook processor reverses), after the change committed; like every outbound event, a
//! crash between the two loses the announcement, never the change.

use super::{Applied, Change, LedgerEntry};
use crate::ids::TenantId;
use crate::outbound::{EventType, OutboundEvent};
use crate::ports::TenantStore;
use crate::publishing::settle::OutcomeEvents;
use std::sync::Arc;

pub struct LowBalanceAlerts {
    /// Where each tenant's threshold is read.
    pub tenants: Arc<dyn TenantStore>,
    pub events: Arc<dyn OutcomeEvents>,
}

impl std::fmt::Debug for LowBalanceAlerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LowBalanceAlerts").finish_non_exhaustive()
    }
}

/// The balance before `entry`, when its change lowered the balance.
fn lowered_from(entry: &LedgerEntry) -> Option<i64> {
    match &entry.change {
        Change::Reserve { credits, .. } | Change::Reverse { credits, .. } => {
            Some(entry.balance + credits)
        }
        _ => None,
    }
}

impl LowBalanceAlerts {
    /// After `applied` committed for `tenant`: announces a crossing of its threshold.
    pub async fn after(&self, tenant: &TenantId, applied: &Applied) {
        let Applied::New(entry) = applied else {
            return;
        };
        let Some(before) = lowered_from(entry) else {
            return;
        };
        let threshold = match self.tenants.get_tenant(tenant).await {
            Ok(t) => t.and_then(|t| t.settings.low_balance_credits),
            Err(e) => {
                tracing::warn!(error = %e, "the tenant's low-balance threshold could not be read");
                return;
            }
        };
        let Some(threshold) = threshold else {
            return;
        };
        if !(before >= threshold && entry.balance < threshold) {
            return;
        }
        let event = OutboundEvent::new(
            EventType::WalletLowBalance,
            tenant.clone(),
            &[entry.key.as_str()],
            entry.at,
            serde_json::json!({
                "balance": entry.balance,
                "reserved": entry.reserved,
                "threshold": threshold,
                "change": entry.key.as_str(),
            }),
        );
        self.events
            .emit(&event, &format!("wallet-{}", entry.key.as_str()))
            .await;
    }
}
