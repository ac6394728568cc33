//! The health probes' reads of the main table: the platforms' app blocks (pattern 56) and
//! the account census over the `poll` index (pattern 57).

use super::items::*;
use super::store::DynamoStore;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::health::{AccountCensus, AppBlocks, Census};
use herald_domain::ids::Platform;
use herald_domain::model::AccountStatus;
use time::OffsetDateTime;

#[async_trait]
impl AppBlocks for DynamoStore {
    async fn app_block(&self, platform: Platform) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self
            .get(app_block_key(platform))
            .await?
            .and_then(|i| Fields(&i).opt_time("until")))
    }
}

/// One Query of the `poll` index, accounts only, projected to their status and token expiry:
/// its cost follows the number of accounts and streams, as the poller's read each minute does.
#[async_trait]
impl AccountCensus for DynamoStore {
    async fn census(
        &self,
        expiring_before: OffsetDateTime,
        overdue_before: OffsetDateTime,
    ) -> Result<Census, StoreError> {
        let items = self
            .query_poll(
                "begins_with(sk, :account)",
                "#status, token_expires_at",
                &[("#status", "status")],
                vec![(":account", s("ACCOUNT#"))],
            )
            .await?;
        let mut census = Census::default();
        for item in &items {
            let f = Fields(item);
            census.accounts += 1;
            if f.opt_str("status").as_deref() == Some(AccountStatus::NeedsReauth.as_str()) {
                census.needs_reauth += 1;
                continue;
            }
            if let Some(expires) = f.opt_time("token_expires_at") {
                census.expiring += u64::from(expires <= expiring_before);
                census.overdue += u64::from(expires <= overdue_before);
            }
        }
        Ok(census)
    }
}
