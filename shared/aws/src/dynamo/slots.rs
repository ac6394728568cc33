//! Posting slots on the main table: the tenant's rules (`TENANT#<t>`/`SLOTS`, one JSON
//! document) and one item per held slot (`TENANT#<t>`/`SLOT#<account>#<epoch ms, 13>`, the
//! holding post, expiring a day after the slot).

use super::items::*;
use super::store::{DynamoStore, values};
use crate::errors::store_error;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::ids::{AccountId, PostId, TenantId};
use herald_domain::ports::SlotStore;
use herald_domain::publishing::slots::PostingSlots;
use time::OffsetDateTime;

fn slot_sk(account: &AccountId, at: OffsetDateTime) -> String {
    format!("SLOT#{account}#{:013}", epoch_millis(at).max(0))
}

#[async_trait]
impl SlotStore for DynamoStore {
    async fn posting_slots(&self, tenant: &TenantId) -> Result<Option<PostingSlots>, StoreError> {
        let Some(item) = self.get_latest(key(tenant_pk(tenant), "SLOTS")).await? else {
            return Ok(None);
        };
        let raw = Fields(&item).str("schedule")?;
        serde_json::from_str(&raw)
            .map(Some)
            .map_err(|e| StoreError::Invalid(format!("stored posting slots: {e}")))
    }

    async fn put_posting_slots(
        &self,
        tenant: &TenantId,
        slots: &PostingSlots,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(slots)
            .map_err(|e| StoreError::Invalid(format!("posting slots: {e}")))?;
        let mut item = key(tenant_pk(tenant), "SLOTS");
        item.insert("type".into(), s("posting_slots"));
        item.insert("schedule".into(), s(json));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn hold_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
        replacing: Option<&PostId>,
    ) -> Result<Option<PostId>, StoreError> {
        let slot = key(tenant_pk(tenant), slot_sk(account, at));
        let mut item = slot.clone();
        item.insert("type".into(), s("slot_hold"));
        item.insert("post_id".into(), s(post.as_str()));
        item.insert(
            "expires_at".into(),
            n((at + time::Duration::days(1)).unix_timestamp()),
        );
        let (condition, holder) = match replacing {
            Some(old) => ("post_id = :holder", old),
            None => ("attribute_not_exists(pk) OR post_id = :holder", post),
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values(vec![(":holder", s(holder.as_str()))])))
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(_) => Ok(None),
            Err(StoreError::Conflict) => {
                let now = self.get_latest(slot).await?;
                // Released between the write and the read: nobody holds it, but this call
                // did not take it either; the caller moves on to the next slot.
                Ok(Some(match now {
                    Some(item) => PostId(Fields(&item).str("post_id")?),
                    None => holder.clone(),
                }))
            }
            Err(e) => Err(e),
        }
    }

    async fn release_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), slot_sk(account, at))))
            .condition_expression("post_id = :me")
            .set_expression_attribute_values(Some(values(vec![(":me", s(post.as_str()))])))
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
