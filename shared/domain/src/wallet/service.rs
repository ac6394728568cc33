//! The wallet's operations: validate, write one ledger entry, audit grants.

use super::{Applied, ApplyError, Change, Credits, LedgerKey, WalletStore};
use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::dead_letters::{OPERATORS, Operator};
use crate::error::StoreError;
use crate::ids::TenantId;
use crate::ports::AuditLog;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// Bad input: nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// A reservation asked more than the balance (or the wallet is in debt).
    #[error("insufficient credits: {needed} needed, {balance} available, {shortfall} short")]
    Insufficient {
        needed: Credits,
        balance: Credits,
        shortfall: Credits,
    },
    /// A debit or release asked more than the reservation holds.
    #[error("the reservation holds {remaining} credits, {needed} asked")]
    ReservationShort { needed: Credits, remaining: Credits },
    /// A reversal for a top-up that has not been applied (yet): the caller holds it.
    #[error("no top-up for billing event {0}")]
    TopUpNotFound(String),
    /// No price maps the paid amount to credits.
    #[error("no price for {amount} {currency}")]
    NoPrice { currency: String, amount: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ApplyError> for WalletError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Insufficient { needed, balance } => WalletError::Insufficient {
                needed,
                balance,
                shortfall: needed - balance,
            },
            ApplyError::ReservationShort { needed, remaining } => {
                WalletError::ReservationShort { needed, remaining }
            }
            ApplyError::Store(e) => WalletError::Store(e),
        }
    }
}

/// Paid amounts (minor units, per lower-case currency) to credits, from configuration:
/// `{"usd": {"1000": 1000, "5000": 5500}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceTable(HashMap<(String, i64), Credits>);

impl PriceTable {
    /// Parses the configured JSON, failing on anything but positive amounts and credits.
    pub fn parse(json: &str) -> Result<Self, String> {
        let raw: HashMap<String, HashMap<String, Credits>> =
            serde_json::from_str(json).map_err(|e| format!("the price table is not valid: {e}"))?;
        let mut table = HashMap::new();
        for (currency, prices) in raw {
            for (amount, credits) in prices {
                let amount: i64 = amount
                    .parse()
                    .map_err(|_| format!("price amount {amount:?} ({currency}) is not a number"))?;
                if amount <= 0 || credits <= 0 {
                    return Err(format!(
                        "price {amount} {currency} → {credits} credits: both must be positive"
                    ));
                }
                table.insert((currency.to_lowercase(), amount), credits);
            }
        }
        Ok(Self(table))
    }

    pub fn credits(&self, currency: &str, amount: i64) -> Option<Credits> {
        self.0.get(&(currency.to_lowercase(), amount)).copied()
    }
}

/// A verified billing event that paid for credits, naming its tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub event_id: String,
    pub currency: String,
    /// Minor units (cents).
    pub amount: i64,
}

pub struct Wallets {
    pub store: Arc<dyn WalletStore>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub prices: PriceTable,
    /// Announces `wallet.low_balance`; `None`: not announced (a function without outbound
    /// events, or one that never lowers a balance).
    pub low_balance: Option<Arc<super::low_balance::LowBalanceAlerts>>,
}

impl std::fmt::Debug for Wallets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallets")
            .field("prices", &self.prices)
            .finish_non_exhaustive()
    }
}

impl Wallets {
    /// Tops up from a payment, once per event id; an unpriced amount changes nothing.
    pub async fn top_up(
        &self,
        tenant: &TenantId,
        payment: &Payment,
    ) -> Result<Applied, WalletError> {
        let credits = self
            .prices
            .credits(&payment.currency, payment.amount)
            .ok_or_else(|| WalletError::NoPrice {
                currency: payment.currency.clone(),
                amount: payment.amount,
            })?;
        let change = Change::TopUp {
            event_id: payment.event_id.clone(),
            currency: payment.currency.to_lowercase(),
            amount: payment.amount,
            credits,
        };
        self.apply(tenant, LedgerKey::top_up(&payment.event_id), change)
            .await
    }

    /// An operator's grant, once per `key`, audited in the tenant's and the operators' logs.
    pub async fn grant(
        &self,
        tenant: &TenantId,
        by: &Operator,
        key: &str,
        credits: Credits,
        reason: &str,
    ) -> Result<Applied, WalletError> {
        positive(credits)?;
        if key.trim().is_empty() || key.len() > 128 {
            return Err(WalletError::Invalid(
                "the grant needs an idempotency key (1-128 characters)".into(),
            ));
        }
        if reason.trim().is_empty() || reason.len() > 500 {
            return Err(WalletError::Invalid(
                "the grant needs a reason (1-500 characters)".into(),
            ));
        }
        let change = Change::Grant {
            operator: by.actor.clone(),
            reason: reason.to_string(),
            credits,
        };
        let applied = self.apply(tenant, LedgerKey::grant(key), change).await?;
        if let Applied::New(entry) = &applied {
            let new =
                json!({"key": key, "credits": credits, "reason": reason, "balance": entry.balance});
            for log in [tenant.clone(), TenantId::from(OPERATORS)] {
                let record = AuditEntry {
                    tenant_id: log,
                    entity: format!("wallet:{tenant}"),
                    action: "wallet.granted".into(),
                    actor: by.actor.clone(),
                    old: None,
                    new: Some(new.clone()),
                    ip: by.ip.clone(),
                    user_agent: by.user_agent.clone(),
                    at: entry.at,
                };
                if let Err(e) = self.audit.append(record).await {
                    tracing::error!(error = %e, "the audit record of a wallet grant could not be written");
                }
            }
        }
        Ok(applied)
    }

    /// Holds `credits` for `reservation`, all or nothing.
    pub async fn reserve(
        &self,
        tenant: &TenantId,
        reservation: &str,
        credits: Credits,
    ) -> Result<Applied, WalletError> {
        positive(credits)?;
        named(reservation)?;
        let change = Change::Reserve {
            reservation: reservation.into(),
            credits,
        };
        self.apply(tenant, LedgerKey::reserve(reservation), change)
            .await
    }

    /// Spends `credits` from the reservation, never more than it holds.
    pub async fn debit(
        &self,
        tenant: &TenantId,
        reservation: &str,
        key: &str,
        credits: Credits,
    ) -> Result<Applied, WalletError> {
        let change = Change::Debit {
            reservation: reservation.into(),
            credits,
        };
        self.take_from_reservation(tenant, key, change).await
    }

    /// Gives `credits` of the reservation back to the balance.
    pub async fn release(
        &self,
        tenant: &TenantId,
        reservation: &str,
        key: &str,
        credits: Credits,
    ) -> Result<Applied, WalletError> {
        let change = Change::Release {
            reservation: reservation.into(),
            credits,
        };
        self.take_from_reservation(tenant, key, change).await
    }

    /// A debit or a release (`change`) of its reservation, under `key`.
    async fn take_from_reservation(
        &self,
        tenant: &TenantId,
        key: &str,
        change: Change,
    ) -> Result<Applied, WalletError> {
        positive(change.credits())?;
        let reservation = change.reservation().unwrap_or_default();
        named(reservation)?;
        named(key)?;
        let ledger_key = match change {
            Change::Debit { .. } => LedgerKey::debit(reservation, key),
            _ => LedgerKey::release(reservation, key),
        };
        self.apply(tenant, ledger_key, change).await
    }

    /// Reverses a top-up (refund, dispute) by its billing event id, once. The balance may go
    /// negative (recorded debt). [`WalletError::TopUpNotFound`] when the top-up has not been
    /// applied: the caller holds the reversal and applies it when the top-up arrives.
    pub async fn reverse(&self, tenant: &TenantId, event_id: &str) -> Result<Applied, WalletError> {
        let top_up = self
            .store
            .entry(tenant, &LedgerKey::top_up(event_id))
            .await?;
        let Some(top_up) = top_up else {
            return Err(WalletError::TopUpNotFound(event_id.into()));
        };
        let change = Change::Reverse {
            event_id: event_id.into(),
            credits: top_up.change.credits(),
        };
        self.apply(tenant, LedgerKey::reversal(event_id), change)
            .await
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        key: LedgerKey,
        change: Change,
    ) -> Result<Applied, WalletError> {
        let applied = self
            .store
            .apply(tenant, &key, &change, self.clock.now())
            .await?;
        if let Applied::New(e) = &applied {
            crate::metrics::wallet_credits(e.change.kind(), e.change.credits());
            tracing::info!(
                key = e.key.as_str(),
                balance = e.balance,
                reserved = e.reserved,
                "wallet changed"
            );
        }
        if let Some(alerts) = &self.low_balance {
            alerts.after(tenant, &applied).await;
        }
        Ok(applied)
    }
}

fn positive(credits: Credits) -> Result<(), WalletError> {
    if credits <= 0 || credits > 1_000_000_000 {
        return Err(WalletError::Invalid(format!(
            "credits must be between 1 and 1000000000, not {credits}"
        )));
    }
    Ok(())
}

fn named(id: &str) -> Result<(), WalletError> {
    if id.is_empty() || id.len() > 128 || id.contains(':') {
        return Err(WalletError::Invalid(format!(
            "{id:?}: an id is 1-128 characters without ':'"
        )));
    }
    Ok(())
}
