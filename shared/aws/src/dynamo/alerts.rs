//! The alert ledger: the first time an alert was raised in its window, and how many times.

use super::DynamoStore;
use super::items::*;
use super::store::{values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use herald_domain::StoreError;
use time::OffsetDateTime;

/// The alert ledger: `ALERT#<key>` / `WINDOW#<index>` items, kept two windows (TTL).
#[async_trait]
impl herald_domain::alerts::AlertLedger for DynamoStore {
    async fn first(
        &self,
        key_name: &str,
        index: i64,
        expires: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = key(format!("ALERT#{key_name}"), format!("WINDOW#{index}"));
        item.insert("expires_at".into(), ttl_n(expires));
        written(self.put_new(item).await)
    }

    async fn count(
        &self,
        key_name: &str,
        index: i64,
        expires: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("ALERT#{key_name}"),
                format!("WINDOW#{index}"),
            )))
            .update_expression("ADD events :one SET expires_at = :ttl")
            .set_expression_attribute_values(Some(values(vec![
                (":one", n(1)),
                (":ttl", ttl_n(expires)),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| Fields(a).opt_num("events"))
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0))
    }
}
