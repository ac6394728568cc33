//! The in-memory store's answers to the health probes' ports.

use super::{AccountCensus, AppBlocks, Census};
use crate::error::StoreError;
use crate::ids::Platform;
use crate::memory::MemoryStore;
use crate::model::AccountStatus;
use async_trait::async_trait;
use time::OffsetDateTime;

#[async_trait]
impl AccountCensus for MemoryStore {
    async fn census(
        &self,
        expiring_before: OffsetDateTime,
        overdue_before: OffsetDateTime,
    ) -> Result<Census, StoreError> {
        self.with("census", |s| {
            let mut census = Census::default();
            for account in s.accounts.values() {
                census.accounts += 1;
                if account.status == AccountStatus::NeedsReauth {
                    census.needs_reauth += 1;
                    continue;
                }
                if let Some(expires) = account.token_expires_at {
                    census.expiring += u64::from(expires <= expiring_before);
                    census.overdue += u64::from(expires <= overdue_before);
                }
            }
            Ok(census)
        })
    }
}

#[async_trait]
impl AppBlocks for MemoryStore {
    async fn app_block(&self, platform: Platform) -> Result<Option<OffsetDateTime>, StoreError> {
        self.with("app_block", |s| {
            Ok(s.app_blocks.get(&format!("app#{platform}")).copied())
        })
    }
}
