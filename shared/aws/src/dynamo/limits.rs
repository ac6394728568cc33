//! Rate windows (the per-account windows the claim counts) and the platform apps' shared
//! budgets: reserved per batch, blocked when a platform says the app is near its limit.

use super::DynamoStore;
use super::items::*;
use super::store::{names, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use herald_domain::StoreError;
use herald_domain::model::Platform;
use herald_domain::ports::*;
use herald_domain::publishing::gates::WindowSlot;
use std::collections::HashMap;
use time::OffsetDateTime;

/// The per-account and per-app rate windows' counters, as the claim and the app budget count
/// them.
/// How long a window's counter is kept after its window ends (TTL; never relied on).
pub(super) const WINDOW_KEEP: time::Duration = time::Duration::days(2);

pub(super) const WINDOW_UPDATE: &str = "ADD used :n SET expires_at = :ttl";
pub(super) const WINDOW_CONDITION: &str = "attribute_not_exists(used) OR used <= :room";

pub(super) fn window_values(slot: &WindowSlot, count: u32) -> HashMap<String, AttributeValue> {
    values(vec![
        (":n", n(count)),
        (":room", n(i64::from(slot.limit) - i64::from(count))),
        (":ttl", ttl_n(slot.ends_at + WINDOW_KEEP)),
    ])
}

#[async_trait]
impl AppLimiter for DynamoStore {
    async fn reserve(
        &self,
        slot: &WindowSlot,
        wanted: u32,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        let blocked = self
            .get(app_block_key_for(slot))
            .await?
            .and_then(|i| Fields(&i).opt_time("until"))
            .filter(|until| *until > now);
        if let Some(until) = blocked {
            return Ok(Reservation {
                granted: 0,
                retry_at: Some(until),
            });
        }
        // Try the whole request; if it does not fit, take what is left (the failed write
        // returns the counter, so this costs no read).
        let mut ask = wanted;
        for _ in 0..3 {
            if ask == 0 {
                break;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(window_key(slot)))
                .update_expression(WINDOW_UPDATE)
                .condition_expression(WINDOW_CONDITION)
                .set_expression_attribute_values(Some(window_values(slot, ask)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => {
                    return Ok(Reservation {
                        granted: ask,
                        retry_at: (ask < wanted).then_some(slot.ends_at),
                    });
                }
                Err(SdkError::ServiceError(e))
                    if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
                {
                    let used = match e.err() {
                        UpdateItemError::ConditionalCheckFailedException(c) => c.item(),
                        _ => None,
                    }
                    .and_then(|i| Fields(i).opt_num("used"))
                    .unwrap_or(i64::from(slot.limit));
                    ask = u32::try_from(i64::from(slot.limit) - used)
                        .unwrap_or(0)
                        .min(wanted);
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(Reservation {
            granted: 0,
            retry_at: Some(slot.ends_at),
        })
    }

    async fn block_app(&self, platform: Platform, until: OffsetDateTime) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(app_block_key(platform)))
            .update_expression("SET #until = :until, expires_at = :ttl")
            .condition_expression("attribute_not_exists(#until) OR #until < :until")
            .set_expression_attribute_names(Some(names(&[("#until", "until")])))
            .set_expression_attribute_values(Some(values(vec![
                (":until", time_n(until)),
                (":ttl", ttl_n(until + WINDOW_KEEP)),
            ])))
            .send()
            .await
            .map_err(store_error);
        match result {
            // A longer block is already there.
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The app-block item for a window's scope (`app#<platform>`).
fn app_block_key_for(slot: &WindowSlot) -> Item {
    key(format!("RATE#{}", slot.scope), "BLOCK")
}
