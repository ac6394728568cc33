//! Operator resets on DynamoDB (`docs/data-model.md`, patterns 70-73): each is one
//! conditional write whose condition is the state the reset read, so a trip, block or run
//! that commits between the read and the write is never undone:
//!
//! ```text
//!   operator: read breaker (open, until T1) ........ write "closed" IF until = T1  -> fails
//!   publisher:            probe fails -> open, until T2 ^
//! ```

use super::DynamoStore;
use super::ingest::{state_from_av, stream_sk};
use super::items::*;
use super::store::{names, values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use herald_domain::StoreError;
use herald_domain::ids::{AccountId, Platform, TenantId};
use herald_domain::ingest::StreamState;
use herald_domain::publishing::gates::{Breaker, BreakerState};
use herald_domain::resets::{AppBlockResets, CircuitResets, StreamRetries};
use std::collections::HashMap;
use time::OffsetDateTime;

/// `name = :value`, or that the attribute is absent when there is no value.
fn same(
    name: &str,
    value: Option<AttributeValue>,
    vals: &mut HashMap<String, AttributeValue>,
) -> String {
    match value {
        Some(v) => {
            vals.insert(format!(":{name}"), v);
            format!("{name} = :{name}")
        }
        None => format!("attribute_not_exists({name})"),
    }
}

/// The condition that the account's breaker attributes are still `b`'s (absent state means
/// closed, absent failures none, as `breaker_from_item` reads them).
fn breaker_unchanged(b: &Breaker) -> (String, HashMap<String, AttributeValue>) {
    let mut vals = HashMap::new();
    let state = match b.state {
        BreakerState::Closed => {
            "(attribute_not_exists(breaker_state) OR breaker_state = :closed)".to_owned()
        }
        _ => same("breaker_state", Some(s(b.state.as_str())), &mut vals),
    };
    let failures = match b.consecutive_failures {
        0 => "(attribute_not_exists(breaker_failures) OR breaker_failures = :zero)".to_owned(),
        f => same("breaker_failures", Some(n(f)), &mut vals),
    };
    let until = same("breaker_until", b.until.map(time_n), &mut vals);
    let blocked = same("blocked_until", b.blocked_until.map(time_n), &mut vals);
    vals.insert(":closed".into(), s(BreakerState::Closed.as_str()));
    vals.insert(":zero".into(), n(0));
    (
        format!("attribute_exists(pk) AND {state} AND {failures} AND {until} AND {blocked}"),
        vals,
    )
}

#[async_trait]
impl CircuitResets for DynamoStore {
    async fn breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Option<Breaker>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
            .consistent_read(true)
            // Never the tokens.
            .projection_expression(
                "pk, breaker_state, breaker_failures, breaker_until, blocked_until",
            )
            .send()
            .await
            .map_err(store_error)?;
        out.item.as_ref().map(breaker_from_item).transpose()
    }

    async fn close_circuit(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        seen: &Breaker,
    ) -> Result<bool, StoreError> {
        // `:closed` and `:zero` are the condition's and the update's.
        let (condition, vals) = breaker_unchanged(seen);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
            .update_expression(
                "SET breaker_state = :closed, breaker_failures = :zero \
                 REMOVE breaker_until, blocked_until",
            )
            .condition_expression(condition)
            .set_expression_attribute_values(Some(vals))
            .send()
            .await
            .map_err(store_error);
        written(result)
    }
}

#[async_trait]
impl AppBlockResets for DynamoStore {
    async fn lift_app_block(
        &self,
        platform: Platform,
        seen: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(app_block_key(platform)))
            .condition_expression("#until = :seen")
            .set_expression_attribute_names(Some(names(&[("#until", "until")])))
            .set_expression_attribute_values(Some(values(vec![(":seen", time_n(seen))])))
            .send()
            .await
            .map_err(store_error);
        written(result)
    }
}

#[async_trait]
impl StreamRetries for DynamoStore {
    async fn retry_stream(
        &self,
        seen: &StreamState,
        now: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError> {
        let mut vals = HashMap::from([(":now".to_owned(), time_n(now))]);
        let due = same("next_due", seen.next_due.map(time_n), &mut vals);
        let deferred = same("deferred_until", seen.deferred_until.map(time_n), &mut vals);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(&seen.tenant_id), stream_sk(&seen.key))))
            .update_expression("SET next_due = :now REMOVE deferred_until")
            .condition_expression(format!(
                "attribute_exists(pk) AND (attribute_not_exists(lease_owner) OR lease_until <= :now) \
                 AND {due} AND {deferred}"
            ))
            .set_expression_attribute_values(Some(vals))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(out) => state_from_av(out.attributes().unwrap_or(&HashMap::new())).map(Some),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
