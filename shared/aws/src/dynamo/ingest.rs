//! Ingestion in the main table (`docs/data-model.md`, patterns 30-37):
//!
//! | item        | pk                          | sk                   |
//! |-------------|-----------------------------|----------------------|
//! | stream      | `TENANT#<tenant>`           | `STREAM#<key>`       |
//! | stored item | `INGEST#<tenant>#<key>`     | `ITEM#<platform id>` |
//! | review item | `TENANT#<tenant>`           | `REVIEW#<review id>` |
//!
//! A page is one TransactWriteItems: its items and review items (plain puts keyed by
//! platform id, so a page stored again changes nothing) and the checkpoint, conditional on
//! the lease. Pages over 99 items put the overflow first (idempotent), never the checkpoint.

use super::items::*;
use super::ops::AllItems;
use super::store::{DynamoStore, names, values, written};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use herald_domain::StoreError;
use herald_domain::ids::{AccountId, TenantId};
use herald_domain::ingest::*;
use herald_domain::model::Platform;
use std::collections::HashMap;
use time::OffsetDateTime;

pub(super) fn stream_sk(key: &StreamKey) -> String {
    format!("STREAM#{key}")
}

fn items_pk(tenant: &TenantId, key: &StreamKey) -> String {
    format!("INGEST#{tenant}#{key}")
}

fn review_sk(id: &str) -> String {
    format!("REVIEW#{id}")
}

fn item_to_av(tenant: &TenantId, key: &StreamKey, item: &IngestedItem) -> Item {
    let mut av = super::items::key(items_pk(tenant, key), format!("ITEM#{}", item.platform_id));
    av.insert("platform_id".into(), s(&item.platform_id));
    av.insert("text".into(), s(&item.text));
    av.insert("created_at".into(), time_n(item.created_at));
    if let Some(i) = &item.insight {
        av.insert("metric".into(), s(&i.metric));
        av.insert("period".into(), s(&i.period));
        av.insert("value".into(), n(i.value));
    }
    av
}

fn item_from_av(item: &Item) -> Result<IngestedItem, StoreError> {
    let f = Fields(item);
    let insight = match f.opt_str("metric") {
        Some(metric) => Some(Insight {
            metric,
            period: f.str("period")?,
            value: f.u64("value")?,
        }),
        None => None,
    };
    Ok(IngestedItem {
        platform_id: f.str("platform_id")?,
        text: f.str("text")?,
        created_at: f.time("created_at")?,
        insight,
    })
}

fn review_to_av(r: &ReviewItem) -> Item {
    let mut av = super::items::key(tenant_pk(&r.tenant_id), review_sk(&r.id));
    av.insert("review_id".into(), s(&r.id));
    av.insert("account_id".into(), s(r.account_id.as_str()));
    av.insert("stream".into(), s(r.stream.as_str()));
    if let Some(id) = &r.platform_id {
        av.insert("platform_id".into(), s(id));
    }
    av.insert("reason".into(), s(&r.reason));
    av.insert("raw".into(), s(&r.raw));
    av.insert("received_at".into(), time_n(r.received_at));
    av
}

fn review_from_av(item: &Item) -> Result<ReviewItem, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    Ok(ReviewItem {
        id: f.str("review_id")?,
        tenant_id: TenantId(
            pk.strip_prefix("TENANT#")
                .ok_or_else(|| StoreError::Invalid("malformed review key".into()))?
                .to_owned(),
        ),
        account_id: AccountId(f.str("account_id")?),
        stream: StreamKey(f.str("stream")?),
        platform_id: f.opt_str("platform_id"),
        reason: f.str("reason")?,
        raw: f.str("raw")?,
        received_at: f.time("received_at")?,
    })
}

pub(super) fn state_from_av(item: &Item) -> Result<StreamState, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    let sk = f.str("sk")?;
    let bad = || StoreError::Invalid("malformed stream key".into());
    let count = |name: &str| {
        f.opt_num(name)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    };
    Ok(StreamState {
        tenant_id: TenantId(pk.strip_prefix("TENANT#").ok_or_else(bad)?.to_owned()),
        account_id: AccountId(f.str("account_id")?),
        key: StreamKey(sk.strip_prefix("STREAM#").ok_or_else(bad)?.to_owned()),
        position: Position {
            since: f.opt_str("since"),
            cursor: f.opt_str("cursor"),
            run_newest: f.opt_str("run_newest"),
        },
        lease_owner: f.opt_str("lease_owner"),
        lease_until: f.opt_time("lease_until"),
        deferred_until: f.opt_time("deferred_until"),
        next_due: f.opt_time("next_due"),
        dry_run: f.bool("dry_run"),
        counters: Counters {
            processed: count("processed"),
            failed: count("failed"),
            rate_limited: count("rate_limited"),
            skipped: count("skipped"),
        },
    })
}

fn counter_values(c: &Counters) -> Vec<(&'static str, AttributeValue)> {
    vec![
        (":cp", n(c.processed)),
        (":cf", n(c.failed)),
        (":cr", n(c.rate_limited)),
        (":cs", n(c.skipped)),
    ]
}

/// What the poller and the stream listing read of accounts and streams (never a token),
/// through the `poll` index ([`POLL_INDEX`]), which projects these attributes.
const SCANNED: &[&str] = &[
    "pk",
    "sk",
    "platform",
    "external_id",
    "status",
    "account_id",
    "since",
    "cursor",
    "run_newest",
    "lease_owner",
    "lease_until",
    "deferred_until",
    "next_due",
    "dry_run",
    "processed",
    "failed",
    "rate_limited",
    "skipped",
];

/// The projection of [`SCANNED`], every attribute by a placeholder (several are reserved
/// words).
fn projection() -> (HashMap<String, String>, String) {
    let names = SCANNED
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("#p{i}"), (*a).to_owned()))
        .collect();
    let list: Vec<String> = (0..SCANNED.len()).map(|i| format!("#p{i}")).collect();
    (names, list.join(", "))
}

/// Pairs each active account's streams with their states.
fn join_streams(items: &[Item]) -> Result<Vec<Candidate>, StoreError> {
    let mut accounts: Vec<(TenantId, AccountId, StreamKey)> = Vec::new();
    let mut states: HashMap<(String, String), StreamState> = HashMap::new();
    for item in items {
        let f = Fields(item);
        let (pk, sk) = (f.str("pk")?, f.str("sk")?);
        if let Some(account) = sk.strip_prefix("ACCOUNT#") {
            let (Some(tenant), Some(platform)) = (
                pk.strip_prefix("TENANT#"),
                f.opt_str("platform").as_deref().and_then(Platform::parse),
            ) else {
                continue;
            };
            if f.opt_str("status").as_deref() != Some("active") {
                continue;
            }
            for key in StreamKey::all_for(platform, &f.str("external_id")?) {
                accounts.push((
                    TenantId(tenant.to_owned()),
                    AccountId(account.to_owned()),
                    key,
                ));
            }
        } else if sk.starts_with("STREAM#") {
            let state = state_from_av(item)?;
            states.insert((pk, state.key.0.clone()), state);
        }
    }
    Ok(accounts
        .into_iter()
        .map(|(tenant_id, account_id, key)| Candidate {
            state: states.remove(&(tenant_pk(&tenant_id), key.0.clone())),
            tenant_id,
            account_id,
            key,
        })
        .collect())
}

const ADD_COUNTERS: &str =
    "ADD #c_processed :cp, #c_failed :cf, #c_rate_limited :cr, #c_skipped :cs";

/// `SET`s and `REMOVE`s for the checkpoint's three optional parts.
fn position_update(
    p: &Position,
) -> (
    Vec<String>,
    Vec<String>,
    Vec<(&'static str, AttributeValue)>,
) {
    let (mut set, mut remove, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    for (name, placeholder, value) in [
        ("since", ":since", &p.since),
        ("cursor", ":cursor", &p.cursor),
        ("run_newest", ":rnew", &p.run_newest),
    ] {
        match value {
            Some(v) => {
                set.push(format!("#{name} = {placeholder}"));
                vals.push((placeholder, s(v)));
            }
            None => remove.push(format!("#{name}")),
        }
    }
    (set, remove, vals)
}

fn expression(set: &[String], remove: &[String], add: Option<&str>) -> String {
    let mut e = String::new();
    if !set.is_empty() {
        e += &format!("SET {} ", set.join(", "));
    }
    if !remove.is_empty() {
        e += &format!("REMOVE {} ", remove.join(", "));
    }
    if let Some(add) = add {
        e += add;
    }
    e
}

impl DynamoStore {
    async fn ingest_transact(&self, actions: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c))
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Err(StoreError::Conflict)
                }
                Some(TransactWriteItemsError::TransactionCanceledException(_)) => Err(
                    StoreError::Unavailable("the page's transaction was cancelled".into()),
                ),
                _ => Err(store_error(e)),
            },
        }
    }

    fn ingest_put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| StoreError::Invalid(e.to_string()))?,
            )
            .build())
    }
}

impl DynamoStore {
    /// Gives account and stream items written before the `poll` index their `poll_pk`
    /// (`herald streams reindex`, once after upgrading); answers how many it changed. A
    /// Scan: an operator's one-off, never on a schedule.
    pub async fn backfill_poll_index(&self) -> Result<usize, StoreError> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "(begins_with(sk, :a) OR begins_with(sk, :s)) AND attribute_not_exists(poll_pk)",
            )
            .projection_expression("pk, sk")
            .set_expression_attribute_values(Some(values(vec![
                (":a", s("ACCOUNT#")),
                (":s", s("STREAM#")),
            ])))
            .all_items()
            .await?;
        let mut changed = 0;
        for item in &items {
            let f = Fields(item);
            let done = written(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(super::items::key(f.str("pk")?, f.str("sk")?)))
                    .update_expression("SET poll_pk = :poll")
                    // Not one deleted since the scan read it.
                    .condition_expression("attribute_exists(pk)")
                    .set_expression_attribute_values(Some(values(vec![(
                        ":poll",
                        s(POLL_PARTITION),
                    )])))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(store_error),
            )?;
            changed += usize::from(done);
        }
        Ok(changed)
    }
}

#[async_trait]
impl IngestStore for DynamoStore {
    async fn candidates(&self) -> Result<Vec<Candidate>, StoreError> {
        let (names, projection) = projection();
        let items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(POLL_INDEX)
            .key_condition_expression("#poll = :poll")
            // Never the account's token (the index does not hold it either).
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_names("#poll", "poll_pk")
            .expression_attribute_values(":poll", s(POLL_PARTITION))
            .all_items()
            .await?;
        join_streams(&items)
    }

    async fn streams(&self, tenant: &TenantId) -> Result<Vec<Candidate>, StoreError> {
        let (names, projection) = projection();
        let mut items = Vec::new();
        for prefix in ["ACCOUNT#", "STREAM#"] {
            let found = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .projection_expression(projection.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values(vec![
                    (":pk", s(tenant_pk(tenant))),
                    (":prefix", s(prefix)),
                ])))
                .consistent_read(true)
                .all_items()
                .await?;
            items.extend(found);
        }
        join_streams(&items)
    }

    async fn set_dry_run(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        dry_run: bool,
    ) -> Result<StreamState, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::items::key(tenant_pk(tenant), stream_sk(key))))
            .update_expression(
                "SET account_id = if_not_exists(account_id, :a), dry_run = :d, poll_pk = :poll",
            )
            .set_expression_attribute_values(Some(values(vec![
                (":a", s(account.as_str())),
                (":d", AttributeValue::Bool(dry_run)),
                (":poll", s(POLL_PARTITION)),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error)?;
        state_from_av(out.attributes().unwrap_or(&HashMap::new()))
    }

    async fn stream(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Option<StreamState>, StoreError> {
        let item = self
            .get_latest(super::items::key(tenant_pk(tenant), stream_sk(key)))
            .await?;
        item.as_ref().map(state_from_av).transpose()
    }

    async fn take_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::items::key(tenant_pk(tenant), stream_sk(key))))
            .update_expression(
                "SET account_id = :a, lease_owner = :o, lease_until = :u, poll_pk = :poll",
            )
            .condition_expression("attribute_not_exists(lease_owner) OR lease_until <= :now")
            .set_expression_attribute_values(Some(values(vec![
                (":poll", s(POLL_PARTITION)),
                (":a", s(account.as_str())),
                (":o", s(owner)),
                (":u", time_n(until)),
                (":now", time_n(now)),
            ])))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(store_error);
        match result {
            Ok(out) => out.attributes().map(state_from_av).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn store_page(&self, page: PageWrite<'_>) -> Result<(), StoreError> {
        let mut puts = Vec::new();
        for item in page.items {
            puts.push(self.ingest_put(item_to_av(page.tenant_id, page.key, item))?);
        }
        for r in page.reviews {
            puts.push(self.ingest_put(review_to_av(r))?);
        }
        // The overflow first: idempotent puts, no checkpoint.
        while puts.len() > 99 {
            let rest = puts.split_off(100);
            self.ingest_transact(std::mem::replace(&mut puts, rest))
                .await?;
        }
        let (set, remove, mut vals) = position_update(page.position);
        vals.extend(counter_values(&page.counters));
        vals.push((":o", s(page.owner)));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(super::items::key(
                tenant_pk(page.tenant_id),
                stream_sk(page.key),
            )))
            .update_expression(expression(&set, &remove, Some(ADD_COUNTERS)))
            .condition_expression("lease_owner = :o")
            .set_expression_attribute_names(Some(names(&[
                ("#since", "since"),
                ("#cursor", "cursor"),
                ("#run_newest", "run_newest"),
                ("#c_processed", "processed"),
                ("#c_failed", "failed"),
                ("#c_rate_limited", "rate_limited"),
                ("#c_skipped", "skipped"),
            ])))
            .set_expression_attribute_values(Some(values(vals)))
            .build()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        puts.push(TransactWriteItem::builder().update(update).build());
        self.ingest_transact(puts).await
    }

    async fn finish(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
        owner: &str,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        let mut set = vec!["next_due = :due".to_owned()];
        let mut remove = vec!["lease_owner".to_owned(), "lease_until".to_owned()];
        let mut vals = counter_values(&finish.counters);
        vals.push((":o", s(owner)));
        vals.push((":due", time_n(finish.next_due)));
        match finish.deferred_until {
            Some(until) => {
                set.push("deferred_until = :def".into());
                vals.push((":def", time_n(until)));
            }
            None => remove.push("deferred_until".into()),
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(super::items::key(tenant_pk(tenant), stream_sk(key))))
            .update_expression(expression(&set, &remove, Some(ADD_COUNTERS)))
            .condition_expression("lease_owner = :o")
            .set_expression_attribute_names(Some(names(&[
                ("#c_processed", "processed"),
                ("#c_failed", "failed"),
                ("#c_rate_limited", "rate_limited"),
                ("#c_skipped", "skipped"),
            ])))
            .set_expression_attribute_values(Some(values(vals)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn count_skip(&self, tenant: &TenantId, key: &StreamKey) -> Result<(), StoreError> {
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(super::items::key(tenant_pk(tenant), stream_sk(key))))
                .update_expression("ADD #c_skipped :one")
                .condition_expression("attribute_exists(pk)")
                .set_expression_attribute_names(Some(names(&[("#c_skipped", "skipped")])))
                .set_expression_attribute_values(Some(values(vec![(":one", n(1))])))
                .send()
                .await
                .map_err(store_error),
        )
        .map(|_| ())
    }

    async fn items(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Vec<IngestedItem>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .set_expression_attribute_values(Some(values(vec![(
                    ":p",
                    s(items_pk(tenant, key)),
                )])))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                found.push(item_from_av(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => return Ok(found),
            }
        }
    }

    async fn review_items(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<ReviewItem>, Option<String>), StoreError> {
        let page = self
            .query_prefix(tenant_pk(tenant), "REVIEW#")
            .page(cursor, limit)
            .await?;
        let items = page
            .items
            .iter()
            .map(review_from_av)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((items, page.cursor))
    }
}
