//! The shared request counter behind per-key API rate limits (`POST /v1/embed/tokens`):
//! one item per scope and fixed window, `RATE#<scope>` / `WINDOW#<index>`, counted with one
//! conditional UpdateItem so every Lambda instance draws from the same budget.

use super::items::*;
use super::store::{DynamoStore, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use herald_domain::StoreError;
use herald_domain::analytics::embed::RequestCounter;
use time::OffsetDateTime;

#[async_trait]
impl RequestCounter for DynamoStore {
    async fn take(
        &self,
        scope: &str,
        index: i64,
        limit: u32,
        count: u32,
        expires: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        //   window index ─────────┬──────────────┬──────────
        //                  used:  1 2 … limit    │ (a new item: no reset needed)
        //   ADD used `count` only while used + count <= limit; refused, it counts nothing.
        if count == 0 || count > limit {
            return Ok(None);
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                format!("RATE#{scope}"),
                format!("WINDOW#{index}"),
            )))
            .update_expression("ADD used :count SET expires_at = :ttl")
            .condition_expression("attribute_not_exists(used) OR used <= :room")
            .set_expression_attribute_values(Some(values(vec![
                (":count", n(count)),
                (":room", n(limit - count)),
                (":ttl", ttl_n(expires)),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(out) => Ok(Some(
                out.attributes
                    .as_ref()
                    .and_then(|a| Fields(a).opt_num("used"))
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(limit),
            )),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
