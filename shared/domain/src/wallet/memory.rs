//! An in-memory [`WalletStore`], with a crash switch: the next write commits and then fails,
//! as a function dying between its write and its answer.

use super::{Applied, ApplyError, Change, Credits, LedgerEntry, LedgerKey, Wallet, WalletStore};
use crate::error::StoreError;
use crate::ids::TenantId;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use time::OffsetDateTime;

#[derive(Debug, Default)]
struct Account {
    wallet: Wallet,
    reservations: HashMap<String, Credits>,
    /// Oldest first.
    ledger: Vec<LedgerEntry>,
}

#[derive(Debug, Default)]
pub struct MemoryWallets {
    accounts: Mutex<HashMap<TenantId, Account>>,
    crash: AtomicBool,
}

impl MemoryWallets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `apply` (if it writes) commits, then reports the store unavailable.
    pub fn crash_next_write(&self) {
        self.crash.store(true, Ordering::SeqCst);
    }

    /// Every entry of the tenant, oldest first.
    pub fn entries(&self, tenant: &TenantId) -> Vec<LedgerEntry> {
        self.lock()
            .get(tenant)
            .map(|a| a.ledger.clone())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Account>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl WalletStore for MemoryWallets {
    async fn wallet(&self, tenant: &TenantId) -> Result<Wallet, StoreError> {
        Ok(self
            .lock()
            .get(tenant)
            .map(|a| a.wallet)
            .unwrap_or_default())
    }

    async fn reservation(
        &self,
        tenant: &TenantId,
        reservation: &str,
    ) -> Result<Credits, StoreError> {
        Ok(self
            .lock()
            .get(tenant)
            .and_then(|a| a.reservations.get(reservation).copied())
            .unwrap_or(0))
    }

    async fn entry(
        &self,
        tenant: &TenantId,
        key: &LedgerKey,
    ) -> Result<Option<LedgerEntry>, StoreError> {
        Ok(self
            .lock()
            .get(tenant)
            .and_then(|a| a.ledger.iter().find(|e| &e.key == key).cloned()))
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        key: &LedgerKey,
        change: &Change,
        at: OffsetDateTime,
    ) -> Result<Applied, ApplyError> {
        let crash = self.crash.swap(false, Ordering::SeqCst);
        let mut accounts = self.lock();
        let account = accounts.entry(tenant.clone()).or_default();
        if let Some(first) = account.ledger.iter().find(|e| &e.key == key) {
            return Ok(Applied::Replay(first.clone()));
        }
        let reservation = change.reservation();
        let held = reservation
            .and_then(|r| account.reservations.get(r).copied())
            .unwrap_or(0);
        let (wallet, hold) = account.wallet.after(held, change)?;
        if let (Some(r), Some(left)) = (reservation, hold) {
            account.reservations.insert(r.to_owned(), left);
        }
        account.wallet = wallet;
        let entry = LedgerEntry {
            key: key.clone(),
            change: change.clone(),
            balance: wallet.balance,
            reserved: wallet.reserved,
            at,
        };
        account.ledger.push(entry.clone());
        if crash {
            return Err(StoreError::Unavailable("crashed after the write".into()).into());
        }
        Ok(Applied::New(entry))
    }

    async fn ledger(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<LedgerEntry>, Option<String>), StoreError> {
        let accounts = self.lock();
        let Some(account) = accounts.get(tenant) else {
            return Ok((Vec::new(), None));
        };
        // The cursor is the count of newer entries already returned.
        let skip = match cursor {
            None => 0,
            Some(c) => c
                .parse::<usize>()
                .map_err(|_| StoreError::Invalid("bad cursor".into()))?,
        };
        let page: Vec<_> = account
            .ledger
            .iter()
            .rev()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect();
        let next =
            (skip + page.len() < account.ledger.len()).then(|| (skip + page.len()).to_string());
        Ok((page, next))
    }
}
