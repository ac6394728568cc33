//! The credit wallet: a balance in credits per tenant that spending never takes below zero.
//!
//! Every change is one ledger entry under a tenant-unique key ([`LedgerKey`]), written in the
//! same atomic, conditional write as the wallet it changes ([`WalletStore::apply`]): a replay
//! of the key returns the first entry and changes nothing, so any operation may be retried
//! after a crash. Top-ups come from verified billing events (one per event id), grants from
//! operators (audited), and spending goes reserve → debit / release. A reversal (a refund or
//! dispute of a top-up) is the only change that may take the balance below zero: the negative
//! balance is recorded debt, and no reservation succeeds until it is covered.
//!
//! The invariant, exact after any crash: `balance + reserved = top-ups + grants - debits -
//! reversals` ([`Totals`]).

pub mod low_balance;
#[cfg(test)]
mod low_balance_tests;
#[cfg(feature = "memory")]
pub mod memory;
mod service;
#[cfg(test)]
mod tests;

pub use service::{Payment, PriceTable, WalletError, Wallets};

use crate::error::StoreError;
use crate::ids::TenantId;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Credits: whole units, signed so that debt can be recorded.
pub type Credits = i64;

/// A tenant-unique ledger key: `topup:<event id>`, `reverse:<event id>`, `grant:<key>`,
/// `reserve:<reservation>`, `debit:<reservation>:<key>`, `release:<reservation>:<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerKey(pub String);

impl LedgerKey {
    pub fn top_up(event_id: &str) -> Self {
        Self(format!("topup:{event_id}"))
    }
    pub fn reversal(event_id: &str) -> Self {
        Self(format!("reverse:{event_id}"))
    }
    pub fn grant(key: &str) -> Self {
        Self(format!("grant:{key}"))
    }
    pub fn reserve(reservation: &str) -> Self {
        Self(format!("reserve:{reservation}"))
    }
    pub fn debit(reservation: &str, key: &str) -> Self {
        Self(format!("debit:{reservation}:{key}"))
    }
    pub fn release(reservation: &str, key: &str) -> Self {
        Self(format!("release:{reservation}:{key}"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What one ledger entry does to the wallet, and the condition it is written under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// `balance += credits`, from a verified billing event.
    TopUp {
        event_id: String,
        currency: String,
        amount: i64,
        credits: Credits,
    },
    /// `balance += credits`, by an operator.
    Grant {
        operator: String,
        reason: String,
        credits: Credits,
    },
    /// Only if `balance >= credits`: `balance -= credits`, `reserved += credits`.
    Reserve {
        reservation: String,
        credits: Credits,
    },
    /// Only if the reservation holds `>= credits`: `reserved -= credits` (spent).
    Debit {
        reservation: String,
        credits: Credits,
    },
    /// Only if the reservation holds `>= credits`: `reserved -= credits`, `balance += credits`.
    Release {
        reservation: String,
        credits: Credits,
    },
    /// `balance -= credits`, unconditionally (may go negative: recorded debt).
    Reverse { event_id: String, credits: Credits },
}

impl Change {
    /// `top_up`, `grant`, `reserve`, `debit`, `release` or `reverse`: the ledger's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::TopUp { .. } => "top_up",
            Change::Grant { .. } => "grant",
            Change::Reserve { .. } => "reserve",
            Change::Debit { .. } => "debit",
            Change::Release { .. } => "release",
            Change::Reverse { .. } => "reverse",
        }
    }

    pub fn credits(&self) -> Credits {
        match self {
            Change::TopUp { credits, .. }
            | Change::Grant { credits, .. }
            | Change::Reserve { credits, .. }
            | Change::Debit { credits, .. }
            | Change::Release { credits, .. }
            | Change::Reverse { credits, .. } => *credits,
        }
    }

    /// The reservation a reserve, debit or release works on.
    pub fn reservation(&self) -> Option<&str> {
        match self {
            Change::Reserve { reservation, .. }
            | Change::Debit { reservation, .. }
            | Change::Release { reservation, .. } => Some(reservation),
            _ => None,
        }
    }
}

/// One ledger entry, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub key: LedgerKey,
    pub change: Change,
    /// The wallet right after this entry.
    pub balance: Credits,
    pub reserved: Credits,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A tenant's wallet. A tenant with no wallet item has the default: zero everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// Spendable credits; negative only as recorded debt after a reversal.
    pub balance: Credits,
    /// Credits held by open reservations.
    pub reserved: Credits,
}

impl Wallet {
    /// What a reversal left owing, zero when the balance is not negative.
    pub fn debt(&self) -> Credits {
        (-self.balance).max(0)
    }

    /// The wallet after `change`, and what its reservation then holds (`held`: what it holds
    /// before); `Err` when the change's condition does not hold. Every store applies changes
    /// through this, so the rules are written once.
    pub fn after(
        self,
        held: Credits,
        change: &Change,
    ) -> Result<(Wallet, Option<Credits>), ApplyError> {
        let c = change.credits();
        let mut w = self;
        let hold = match change {
            Change::TopUp { .. } | Change::Grant { .. } => {
                w.balance += c;
                None
            }
            Change::Reverse { .. } => {
                w.balance -= c;
                None
            }
            Change::Reserve { .. } => {
                if w.balance < c {
                    return Err(ApplyError::Insufficient {
                        needed: c,
                        balance: w.balance,
                    });
                }
                w.balance -= c;
                w.reserved += c;
                Some(held + c)
            }
            Change::Debit { .. } | Change::Release { .. } => {
                if held < c {
                    return Err(ApplyError::ReservationShort {
                        needed: c,
                        remaining: held,
                    });
                }
                w.reserved -= c;
                if matches!(change, Change::Release { .. }) {
                    w.balance += c;
                }
                Some(held - c)
            }
        };
        Ok((w, hold))
    }
}

/// Whether `apply` wrote the entry now or found it already written under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    New(LedgerEntry),
    Replay(LedgerEntry),
}

impl Applied {
    pub fn entry(&self) -> &LedgerEntry {
        match self {
            Applied::New(e) | Applied::Replay(e) => e,
        }
    }
    pub fn into_entry(self) -> LedgerEntry {
        match self {
            Applied::New(e) | Applied::Replay(e) => e,
        }
    }
}

/// Why the store refused a change (nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A reservation wanted more than the balance (which may be negative: debt).
    #[error("insufficient credits: {needed} needed, balance {balance}")]
    Insufficient { needed: Credits, balance: Credits },
    /// A debit or release wanted more than the reservation still holds.
    #[error("the reservation holds {remaining} credits, {needed} asked")]
    ReservationShort { needed: Credits, remaining: Credits },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The wallet's storage: one atomic write per change.
#[async_trait]
pub trait WalletStore: Send + Sync {
    /// The wallet (strongly consistent); the default when the tenant has none yet.
    async fn wallet(&self, tenant: &TenantId) -> Result<Wallet, StoreError>;
    /// What an open reservation still holds (0 when unknown or used up).
    async fn reservation(
        &self,
        tenant: &TenantId,
        reservation: &str,
    ) -> Result<Credits, StoreError>;
    /// The entry under the key, if written.
    async fn entry(
        &self,
        tenant: &TenantId,
        key: &LedgerKey,
    ) -> Result<Option<LedgerEntry>, StoreError>;
    /// Writes the entry and changes the wallet in one atomic write, under the change's
    /// condition and the key's absence. A key already written returns its first entry
    /// ([`Applied::Replay`]) whatever `change` now says.
    async fn apply(
        &self,
        tenant: &TenantId,
        key: &LedgerKey,
        change: &Change,
        at: OffsetDateTime,
    ) -> Result<Applied, ApplyError>;
    /// Newest first, `limit` entries after the opaque `cursor`; the next page's cursor.
    async fn ledger(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LedgerEntry>, Option<String>), StoreError>;
}

/// The ledger summed by kind: `balance + reserved` must equal [`Totals::expected`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub top_ups: Credits,
    pub grants: Credits,
    pub debits: Credits,
    pub reversals: Credits,
}

impl Totals {
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a LedgerEntry>) -> Self {
        let mut t = Totals::default();
        for e in entries {
            match &e.change {
                Change::TopUp { credits, .. } => t.top_ups += credits,
                Change::Grant { credits, .. } => t.grants += credits,
                Change::Debit { credits, .. } => t.debits += credits,
                Change::Reverse { credits, .. } => t.reversals += credits,
                Change::Reserve { .. } | Change::Release { .. } => {}
            }
        }
        t
    }

    pub fn expected(&self) -> Credits {
        self.top_ups + self.grants - self.debits - self.reversals
    }
}
