//! The in-memory store's resets, with the DynamoDB adapter's conditions (the stream's is with
//! the in-memory ingest store, in `ingest::memory`).

use super::{AppBlockResets, CircuitResets};
use crate::error::StoreError;
use crate::ids::{AccountId, Platform, TenantId};
use crate::memory::MemoryStore;
use crate::publishing::gates::Breaker;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
impl CircuitResets for MemoryStore {
    async fn breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Option<Breaker>, StoreError> {
        self.with("breaker", |s| {
            Ok(s.accounts
                .get(&(tenant.clone(), account.clone()))
                .map(|a| a.breaker.clone()))
        })
    }

    async fn close_circuit(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        seen: &Breaker,
    ) -> Result<bool, StoreError> {
        self.with("close_circuit", |s| {
            match s.accounts.get_mut(&(tenant.clone(), account.clone())) {
                Some(a) if &a.breaker == seen => {
                    a.breaker = Breaker::default();
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }
}

#[async_trait]
impl AppBlockResets for MemoryStore {
    async fn lift_app_block(
        &self,
        platform: Platform,
        seen: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.with("lift_app_block", |s| {
            let scope = format!("app#{platform}");
            if s.app_blocks.get(&scope) != Some(&seen) {
                return Ok(false);
            }
            s.app_blocks.remove(&scope);
            Ok(true)
        })
    }
}
