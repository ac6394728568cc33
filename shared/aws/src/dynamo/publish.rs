//! The publish path on DynamoDB: the gated claim (one `TransactWriteItems`), the read of the
//! claimed post and its account (one `BatchGetItem`), the outcome (one transaction with its
//! audit record and, for a success, the breaker's reset) and the account's breaker. The rate
//! windows and app budgets are in `limits.rs`, the pause switch's item in `crisis.rs`.
//!
//! The claim transaction holds up to four items, in this order (the cancellation reasons
//! come back in the same order and say which gate held the claim):
//!
//! 1. the post: `Update`, the variant claimable and the post dispatched;
//! 2. the tenant's crisis item: `ConditionCheck`, no active pause covers the platform;
//! 3. the account: `ConditionCheck` (breaker closed, not blocked) or, for the half-open probe,
//!    `Update` taking the probe;
//! 4. the account's rate window: `Update` counting one call, with room left.

use super::DynamoStore;
use super::items::*;
use super::limits::{WINDOW_CONDITION, WINDOW_UPDATE, window_values};
use super::ops::build_error;
use super::store::{names, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, KeysAndAttributes, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use herald_domain::StoreError;
use herald_domain::audit::AuditRecord;
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::model::{AccountStatus, PostStatus, VariantStatus};
use herald_domain::ports::*;
use herald_domain::publishing::gates::{Breaker, BreakerState, WindowSlot};
use std::collections::HashMap;
use time::OffsetDateTime;

impl DynamoStore {
    fn claim_items(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        gate: &ClaimGate,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let post = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&variant.tenant_id),
                post_sk(&variant.post_id),
            )))
            .update_expression(
                "SET variants.#acc.#vst = :publishing, variants.#acc.attempts = variants.#acc.attempts + :counted, \
                 variants.#acc.attempt_id = :attempt, variants.#acc.claimed_at = :now, \
                 version = version + :one, updated_at = :now, inflight_pk = :ipk, inflight_sk = :isk",
            )
            .condition_expression(
                "#status = :dispatched AND variants.#acc.#vst IN (:c0, :c1, :c2, :c3, :c4)",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#status", "status"),
                ("#acc", variant.account_id.as_str()),
                ("#vst", "status"),
            ])))
            .set_expression_attribute_values(Some(values(vec![
                (":publishing", s(VariantStatus::Publishing.as_str())),
                (":dispatched", s(PostStatus::Dispatched.as_str())),
                (":c0", s(VariantStatus::CLAIMABLE[0].as_str())),
                (":c1", s(VariantStatus::CLAIMABLE[1].as_str())),
                (":c2", s(VariantStatus::CLAIMABLE[2].as_str())),
                (":c3", s(VariantStatus::CLAIMABLE[3].as_str())),
                (":c4", s(VariantStatus::CLAIMABLE[4].as_str())),
                (":attempt", s(attempt_id)),
                (":one", n(1)),
                (":counted", n(u32::from(gate.counts_attempt))),
                (":now", time_n(gate.now)),
                (":ipk", s(inflight_pk(due_shard(&variant.post_id)))),
                (
                    ":isk",
                    s(due_sk(gate.lease_until, &variant.tenant_id, &variant.post_id)),
                ),
            ])))
            // A failed claim returns the post: a variant held by another attempt is told
            // apart from a settled one without a read.
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        let crisis = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(&variant.tenant_id), CRISIS_SK)))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at <= :now \
                 OR (all_platforms = :false AND NOT contains(platforms, :platform))",
            )
            .set_expression_attribute_values(Some(values(vec![
                (":now", time_n(gate.now)),
                (":false", AttributeValue::Bool(false)),
                (":platform", s(gate.platform.as_str())),
            ])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build_error)?;
        let account_key = key(
            tenant_pk(&variant.tenant_id),
            account_sk(&variant.account_id),
        );
        let not_blocked = "(attribute_not_exists(blocked_until) OR blocked_until <= :now)";
        let account = match gate.breaker {
            BreakerGate::Closed => TransactWriteItem::builder().condition_check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(account_key))
                    .condition_expression(format!(
                        "(attribute_not_exists(breaker_state) OR breaker_state = :closed) AND {not_blocked}"
                    ))
                    .set_expression_attribute_values(Some(values(vec![
                        (":closed", s(BreakerState::Closed.as_str())),
                        (":now", time_n(gate.now)),
                    ])))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            ),
            BreakerGate::Probe { lease_until } => TransactWriteItem::builder().update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(account_key))
                    .update_expression("SET breaker_state = :half_open, breaker_until = :lease")
                    .condition_expression(format!(
                        "breaker_state IN (:open, :half_open) AND breaker_until <= :now AND {not_blocked}"
                    ))
                    .set_expression_attribute_values(Some(values(vec![
                        (":open", s(BreakerState::Open.as_str())),
                        (":half_open", s(BreakerState::HalfOpen.as_str())),
                        (":lease", time_n(lease_until)),
                        (":now", time_n(gate.now)),
                    ])))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build()
                    .map_err(build_error)?,
            ),
        };
        let mut items = vec![
            TransactWriteItem::builder().update(post).build(),
            TransactWriteItem::builder().condition_check(crisis).build(),
            account.build(),
        ];
        if let Some(slot) = &gate.account_window {
            items.push(
                TransactWriteItem::builder()
                    .update(self.window_update(slot, 1)?)
                    .build(),
            );
        }
        Ok(items)
    }

    /// A success's breaker reset on the account item (see `BreakerReset` for the conditions).
    fn breaker_reset(
        &self,
        variant: &VariantRef,
        reset: BreakerReset,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expr, condition, vals) = match reset {
            BreakerReset::IfClosed => (
                "SET breaker_failures = :zero",
                "attribute_exists(pk) AND (attribute_not_exists(breaker_state) OR breaker_state = :closed)",
                vec![
                    (":zero", n(0)),
                    (":closed", s(BreakerState::Closed.as_str())),
                ],
            ),
            BreakerReset::Probe => (
                "SET breaker_state = :closed, breaker_failures = :zero REMOVE breaker_until",
                "breaker_state = :half_open",
                vec![
                    (":zero", n(0)),
                    (":closed", s(BreakerState::Closed.as_str())),
                    (":half_open", s(BreakerState::HalfOpen.as_str())),
                ],
            ),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&variant.tenant_id),
                account_sk(&variant.account_id),
            )))
            .update_expression(expr)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values(vals)))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// One transaction of `items`, then `last` if given; a cancellation's reason codes come
    /// back in the same order ("None" for an item that was fine).
    async fn transact(
        &self,
        items: &[TransactWriteItem],
        last: Option<&TransactWriteItem>,
    ) -> Result<(), Cancelled> {
        let all: Vec<TransactWriteItem> = items.iter().chain(last).cloned().collect();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(all))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    Err(Cancelled::Reasons(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code().unwrap_or("None").to_owned())
                            .collect(),
                    ))
                }
                _ => Err(Cancelled::Store(store_error(e))),
            },
        }
    }

    /// Counts `n` calls in a window, only if they fit.
    fn window_update(&self, slot: &WindowSlot, count: u32) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(window_key(slot)))
            .update_expression(WINDOW_UPDATE)
            .condition_expression(WINDOW_CONDITION)
            .set_expression_attribute_values(Some(window_values(slot, count)))
            .build()
            .map_err(build_error)
    }
}

/// Why a transaction did not commit.
enum Cancelled {
    /// Cancelled: each item's reason code, in order.
    Reasons(Vec<String>),
    Store(StoreError),
}

impl Cancelled {
    /// Only the last item failed, with `code`; the rest were fine.
    fn only_last_failed_with(&self, code: &str) -> bool {
        match self {
            Cancelled::Reasons(codes) => codes
                .split_last()
                .is_some_and(|(last, rest)| last == code && rest.iter().all(|c| c == "None")),
            Cancelled::Store(_) => false,
        }
    }
}

/// Which gate held a cancelled claim, from the transaction's cancellation reasons.
fn claim_rejection(
    err: SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>,
    variant: &VariantRef,
    gate: &ClaimGate,
) -> ClaimRejected {
    let reasons = match &err {
        SdkError::ServiceError(e) => match e.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => {
                c.cancellation_reasons().to_vec()
            }
            _ => return ClaimRejected::Store(store_error(err)),
        },
        _ => return ClaimRejected::Store(store_error(err)),
    };
    let failed = |i: usize| {
        reasons
            .get(i)
            .and_then(|r| r.code())
            .is_some_and(|c| c == "ConditionalCheckFailed")
    };
    let old = |i: usize| reasons.get(i).and_then(|r| r.item()).cloned();
    if failed(0) {
        let held = old(0)
            .and_then(|item| post_from_item(&item).ok())
            .and_then(|post| post.variants.get(&variant.account_id).cloned())
            .filter(|v| v.status == VariantStatus::Publishing);
        return match held {
            Some(v) => ClaimRejected::Held {
                until: v.claimed_at.unwrap_or(gate.now) + (gate.lease_until - gate.now),
            },
            None => ClaimRejected::NotClaimable,
        };
    }
    if failed(1) {
        let until = old(1)
            .and_then(|item| crisis_from_item(&item).ok())
            .map_or(gate.now + time::Duration::minutes(1), |c| c.expires_at);
        return ClaimRejected::Paused { until };
    }
    if failed(2) {
        let breaker = old(2)
            .map(|item| breaker_from_item(&item))
            .transpose()
            .unwrap_or_default()
            .unwrap_or_default();
        return ClaimRejected::Breaker(breaker);
    }
    if failed(3) {
        let until = gate
            .account_window
            .as_ref()
            .map_or(gate.now, |slot| slot.ends_at);
        return ClaimRejected::RateLimited { until };
    }
    if reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
    {
        return ClaimRejected::Contended;
    }
    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
    ClaimRejected::Store(StoreError::Unavailable(format!(
        "the claim was cancelled: {}",
        codes.join(", ")
    )))
}

#[async_trait]
impl PublishStore for DynamoStore {
    async fn claim_for_publish(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        gate: &ClaimGate,
    ) -> Result<(), ClaimRejected> {
        let items = self
            .claim_items(variant, attempt_id, gate)
            .map_err(ClaimRejected::Store)?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| claim_rejection(e, variant, gate))
    }

    async fn load_for_publish(&self, variant: &VariantRef) -> Result<Loaded, StoreError> {
        let post_key = key(tenant_pk(&variant.tenant_id), post_sk(&variant.post_id));
        let account_key = key(
            tenant_pk(&variant.tenant_id),
            account_sk(&variant.account_id),
        );
        let head_key = DynamoStore::audit_head_key(&variant.tenant_id, &variant_entity(variant));
        let wanted = KeysAndAttributes::builder()
            .keys(post_key)
            .keys(account_key)
            .keys(head_key)
            .consistent_read(true)
            .build()
            .map_err(build_error)?;
        let mut pending = HashMap::from([(self.table.clone(), wanted)]);
        let mut items: Vec<Item> = Vec::new();
        // BatchGetItem may return some keys unprocessed; ask again for those (rare).
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(store_error)?;
            if let Some(mut found) = out.responses {
                items.extend(found.remove(&self.table).unwrap_or_default());
            }
            pending = out.unprocessed_keys.unwrap_or_default();
            if pending.values().all(|k| k.keys().is_empty()) {
                break;
            }
        }
        // A key still unread is not a missing account (which would fail the variant): the
        // claim stays, and the message is retried.
        if pending.values().any(|k| !k.keys().is_empty()) {
            return Err(StoreError::Unavailable(
                "DynamoDB left keys of the claimed post unprocessed".into(),
            ));
        }
        let sk_of = |item: &Item| item.get("sk").and_then(|v| v.as_s().ok()).cloned();
        let find = |prefix: &str| {
            items
                .iter()
                .find(|i| sk_of(i).is_some_and(|sk| sk.starts_with(prefix)))
        };
        let post = find("POST#")
            .map(post_from_item)
            .transpose()?
            .ok_or_else(|| StoreError::Invalid("the claimed post is gone".into()))?;
        let account = match find("ACCOUNT#") {
            Some(item) => {
                let keys = self.keys_for_items([item]).await?;
                Some(account_from_item(item, &keys)?)
            }
            None => None,
        };
        Ok(Loaded {
            post,
            account,
            audit_head: DynamoStore::audit_head_from(find("AUDITHEAD#")),
        })
    }

    async fn record_outcome(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        outcome: &VariantOutcome,
        lookup: bool,
        audit: &AuditRecord,
        reset: Option<BreakerReset>,
    ) -> Result<(), StoreError> {
        let mut set = vec!["variants.#acc.#vst = :st", "version = version + :one"];
        let mut remove = vec![];
        let mut vals = vec![
            (":publishing", s(VariantStatus::Publishing.as_str())),
            (":attempt", s(attempt_id)),
            (":one", n(1)),
        ];
        let status = match outcome {
            VariantOutcome::Published {
                platform_post_id,
                at,
                step,
                more,
            } => {
                if *step == 0 {
                    set.push("variants.#acc.platform_post_id = :ppid");
                    set.push("variants.#acc.published_at = :at");
                    vals.push((":at", time_n(*at)));
                    vals.push((":ppid", s(platform_post_id)));
                } else {
                    set.push("variants.#acc.follow_up_ids = list_append(if_not_exists(variants.#acc.follow_up_ids, :none), :ppid)");
                    vals.push((":none", AttributeValue::L(vec![])));
                    vals.push((":ppid", AttributeValue::L(vec![s(platform_post_id)])));
                }
                remove.push("variants.#acc.last_error");
                remove.push("variants.#acc.progress");
                if *more {
                    // The next step waits for a publisher, with a count of its own claims.
                    set.push("variants.#acc.step = :next");
                    set.push("variants.#acc.attempts = :zero");
                    vals.push((":next", n(step + 1)));
                    vals.push((":zero", n(0)));
                    VariantStatus::Continuing
                } else {
                    VariantStatus::Published
                }
            }
            VariantOutcome::Failed(e)
            | VariantOutcome::Retrying(e)
            | VariantOutcome::DeadLettered(e)
            | VariantOutcome::Unknown(e) => {
                set.push("variants.#acc.last_error = :err");
                vals.push((":err", error_to_av(e)));
                match outcome {
                    VariantOutcome::Failed(_) => VariantStatus::Failed,
                    VariantOutcome::Retrying(_) => VariantStatus::Retrying,
                    VariantOutcome::DeadLettered(_) => VariantStatus::DeadLettered,
                    _ => VariantStatus::Unknown,
                }
            }
        };
        if lookup {
            set.push("variants.#acc.lookup = :true");
            vals.push((":true", AttributeValue::Bool(true)));
        } else {
            remove.push("variants.#acc.lookup");
        }
        vals.push((":st", s(status.as_str())));
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&variant.tenant_id),
                post_sk(&variant.post_id),
            )))
            .update_expression(expr)
            .condition_expression(
                "variants.#acc.#vst = :publishing AND variants.#acc.attempt_id = :attempt",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#acc", variant.account_id.as_str()),
                ("#vst", "status"),
            ])))
            .set_expression_attribute_values(Some(values(vals)))
            .build()
            .map_err(build_error)?;
        // The outcome and its audit record land together, or neither does; a success's
        // breaker reset joins them unless its condition fails (then without it).
        let [record, head] = self.audit_items(audit)?;
        let mut outcome_items = vec![
            TransactWriteItem::builder().update(update).build(),
            record,
            head,
        ];
        // A published post can be found again from the platform's webhooks.
        if let VariantOutcome::Published {
            platform_post_id,
            step: 0,
            ..
        } = outcome
        {
            let mut index =
                super::inbound::platform_post_key(&variant.account_id, platform_post_id);
            index.insert("tenant_id".into(), s(variant.tenant_id.as_str()));
            index.insert("post_id".into(), s(variant.post_id.as_str()));
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(index))
                .build()
                .map_err(build_error)?;
            outcome_items.push(TransactWriteItem::builder().put(put).build());
        }
        // A published variant's engagement snapshots start here (herald_domain::analytics).
        if let VariantOutcome::Published {
            platform_post_id,
            at,
            step: 0,
            ..
        } = outcome
        {
            let due = super::analytics::first_due_item(
                &variant.tenant_id,
                &variant.post_id,
                &variant.account_id,
                platform_post_id,
                *at,
            );
            let put = aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(due))
                .build()
                .map_err(build_error)?;
            outcome_items.push(TransactWriteItem::builder().put(put).build());
        }
        let reset_item = reset.map(|r| self.breaker_reset(variant, r)).transpose()?;
        let mut result = self.transact(&outcome_items, reset_item.as_ref()).await;
        // Claims on the same account check its item in their own transactions: a conflict on
        // it is worth a few more tries; a failed condition (the circuit opened meanwhile)
        // means the reset does not apply.
        for _ in 0..3 {
            if !matches!(&result, Err(c) if c.only_last_failed_with("TransactionConflict")) {
                break;
            }
            result = self.transact(&outcome_items, reset_item.as_ref()).await;
        }
        if reset_item.is_some()
            && matches!(&result, Err(c) if c.only_last_failed_with("ConditionalCheckFailed")
                || c.only_last_failed_with("TransactionConflict"))
        {
            result = self.transact(&outcome_items, None).await;
        }
        match result {
            Ok(()) => Ok(()),
            // The attempt lost the variant (or the chain moved): the caller's `Conflict`.
            Err(Cancelled::Reasons(codes))
                if codes.iter().any(|c| c == "ConditionalCheckFailed") =>
            {
                Err(StoreError::Conflict)
            }
            Err(Cancelled::Reasons(codes)) => Err(StoreError::Unavailable(format!(
                "the outcome was cancelled: {}",
                codes.join(", ")
            ))),
            Err(Cancelled::Store(e)) => Err(e),
        }
    }

    async fn update_breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        change: BreakerChange,
    ) -> Result<Breaker, StoreError> {
        let account_key = key(tenant_pk(tenant), account_sk(account));
        let exists = "attribute_exists(pk)";
        let (expr, condition, vals) = match change {
            BreakerChange::Failure { .. } => (
                "ADD breaker_failures :one",
                exists.to_owned(),
                vec![(":one", n(1))],
            ),
            // Never shorten a block another instance recorded.
            BreakerChange::BlockUntil(until) => (
                "SET blocked_until = :until",
                format!(
                    "{exists} AND (attribute_not_exists(blocked_until) OR blocked_until < :until)"
                ),
                vec![(":until", time_n(until))],
            ),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(account_key.clone()))
            .update_expression(expr)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values(vals)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error);
        let out = match result {
            Ok(out) => out,
            // The account is gone, or a longer block is already recorded: nothing to change.
            Err(StoreError::Conflict) => return Ok(Breaker::default()),
            Err(e) => return Err(e),
        };
        let mut breaker = out
            .attributes
            .as_ref()
            .map(breaker_from_item)
            .transpose()?
            .unwrap_or_default();
        if let BreakerChange::Failure { policy, now } = change {
            let opens = breaker.state == BreakerState::HalfOpen
                || (breaker.state == BreakerState::Closed
                    && breaker.consecutive_failures >= policy.failure_threshold);
            if opens {
                let until = now + policy.reset_after;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(account_key))
                    .update_expression("SET breaker_state = :open, breaker_until = :until")
                    .condition_expression("attribute_exists(pk)")
                    .set_expression_attribute_values(Some(values(vec![
                        (":open", s(BreakerState::Open.as_str())),
                        (":until", time_n(until)),
                    ])))
                    .send()
                    .await
                    .map_err(store_error)?;
                breaker.state = BreakerState::Open;
                breaker.until = Some(until);
            }
        }
        Ok(breaker)
    }

    /// One conditional update of the variant's `progress` (the post's version moves, so an
    /// edit read before it cannot write it away).
    async fn keep_progress(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        value: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                tenant_pk(&variant.tenant_id),
                post_sk(&variant.post_id),
            )))
            .update_expression("SET variants.#acc.progress = :value, version = version + :one")
            .condition_expression(
                "variants.#acc.#vst = :publishing AND variants.#acc.attempt_id = :attempt",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#acc", variant.account_id.as_str()),
                ("#vst", "status"),
            ])))
            .set_expression_attribute_values(Some(values(vec![
                (":value", s(value)),
                (":one", n(1)),
                (":publishing", s(VariantStatus::Publishing.as_str())),
                (":attempt", s(attempt_id)),
            ])))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn mark_needs_reauth(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), account_sk(account))))
            .update_expression("SET #status = :st, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names(&[("#status", "status")])))
            .set_expression_attribute_values(Some(values(vec![
                (":st", s(AccountStatus::NeedsReauth.as_str())),
                (":now", time_n(now)),
            ])))
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
