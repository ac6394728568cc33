//! Inbound webhook event ids on DynamoDB: one item per (provider, event id), written only if
//! absent or expired. The table's TTL removes old items eventually; expiry is checked here,
//! in the condition, because TTL deletion may lag by days (and moto never runs it).
//!
//! | item     | pk                   | sk               |
//! |----------|----------------------|------------------|
//! | sighting | `WEBHOOK#<provider>` | `SEEN#<event id>` |

use super::DynamoStore;
use super::items::*;
use super::store::values;
use crate::errors::store_error;
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::inbound::WebhookInbox;
use time::OffsetDateTime;

fn sighting_key(provider: &str, event_id: &str) -> Item {
    key(format!("WEBHOOK#{provider}"), format!("SEEN#{event_id}"))
}

#[async_trait]
impl WebhookInbox for DynamoStore {
    async fn first_sighting(
        &self,
        provider: &str,
        event_id: &str,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = sighting_key(provider, event_id);
        item.insert("seen_at".into(), time_n(now));
        item.insert("expires_at".into(), ttl_n(expires_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .set_expression_attribute_values(Some(values(vec![(":now", ttl_n(now))])))
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn forget(&self, provider: &str, event_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(sighting_key(provider, event_id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
