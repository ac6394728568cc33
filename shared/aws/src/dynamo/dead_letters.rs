//! Dead-letter records in the main table, under their owner (`TENANT#<tenant>` /
//! `DEADLETTER#<id>`, ids ordered by send time), and one count per source queue
//! (`DEADLETTERS` / `COUNT`, an attribute per source) changed in the same transaction as each
//! record, so the health check and the alerts read one item.

use super::DynamoStore;
use super::items::*;
use super::ops::{build_error, sk_cursor};
use super::store::values;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::dead_letters::{DeadLetter, DeadLetterQuery, DeadLetterRecords};
use herald_domain::ids::TenantId;
use herald_domain::ports::Page;
use std::collections::{BTreeMap, HashMap};

const PREFIX: &str = "DEADLETTER#";

fn record_key(owner: &TenantId, id: &str) -> Item {
    key(tenant_pk(owner), format!("{PREFIX}{id}"))
}

fn count_key() -> Item {
    key("DEADLETTERS".into(), "COUNT")
}

fn to_item(d: &DeadLetter) -> Item {
    let mut item = record_key(&d.owner(), &d.id);
    item.insert("type".into(), s("dead_letter"));
    item.insert("owner".into(), s(d.owner().0));
    item.insert("source".into(), s(&d.source));
    item.insert("kind".into(), s(&d.kind));
    item.insert("body".into(), s(&d.body));
    item.insert("receive_count".into(), n(d.receive_count));
    item.insert("sent_at".into(), time_n(d.sent_at));
    if let Some(t) = &d.tenant_id {
        item.insert("tenant_id".into(), s(&t.0));
    }
    if let Some(r) = &d.reason {
        item.insert("reason".into(), s(r));
    }
    item
}

fn from_item(item: &Item) -> Result<DeadLetter, StoreError> {
    let f = Fields(item);
    let sk = f.str("sk")?;
    Ok(DeadLetter {
        id: sk
            .strip_prefix(PREFIX)
            .ok_or_else(|| StoreError::Invalid(format!("dead letter under {sk}")))?
            .to_owned(),
        source: f.str("source")?,
        kind: f.str("kind")?,
        tenant_id: f.opt_str("tenant_id").map(TenantId),
        body: f.str("body")?,
        reason: f.opt_str("reason"),
        receive_count: f.opt_u32("receive_count")?.unwrap_or(0),
        sent_at: f.time("sent_at")?,
    })
}

impl DynamoStore {
    /// The count of `source`'s dead letters raised (or lowered) by `by`.
    fn count_update(&self, source: &str, by: i64) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(count_key()))
            .update_expression("ADD #source :by")
            .expression_attribute_names("#source", source)
            .expression_attribute_values(":by", n(by))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl DeadLetterRecords for DynamoStore {
    async fn keep(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(letter)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        self.transact_conditional(vec![
            TransactWriteItem::builder().put(put).build(),
            self.count_update(&letter.source, 1)?,
        ])
        .await
    }

    async fn page(
        &self,
        owner: &TenantId,
        query: &DeadLetterQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeadLetter>, StoreError> {
        // Sent before `older_than`: ids (and so sort keys) below its millisecond.
        let upper = match query.older_than {
            Some(t) => format!("{PREFIX}{:013}", epoch_millis(t).max(0)),
            None => format!("{PREFIX}~"),
        };
        let mut vals = vec![
            (":pk", s(tenant_pk(owner))),
            (":low", s(PREFIX)),
            (":high", s(upper)),
        ];
        let mut names = HashMap::new();
        let mut filters = Vec::new();
        if let Some(source) = &query.source {
            vals.push((":source", s(source)));
            names.insert("#source".to_owned(), "source".to_owned());
            filters.push("#source = :source");
        }
        if let Some(kind) = &query.kind {
            vals.push((":kind", s(kind)));
            names.insert("#kind".to_owned(), "kind".to_owned());
            filters.push("#kind = :kind");
        }
        let start = cursor.map(|c| record_key(owner, c));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
            .set_filter_expression((!filters.is_empty()).then(|| filters.join(" AND ")))
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(Some(values(vals)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let cursor = sk_cursor(out.last_evaluated_key(), PREFIX);
        let items = out
            .items()
            .iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { items, cursor })
    }

    async fn find(&self, owner: &TenantId, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        self.get_latest(record_key(owner, id))
            .await?
            .map(|item| from_item(&item))
            .transpose()
    }

    async fn discard(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(record_key(&letter.owner(), &letter.id)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(build_error)?;
        self.transact_conditional(vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.count_update(&letter.source, -1)?,
        ])
        .await
    }

    async fn pending(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let Some(item) = self.get_latest(count_key()).await? else {
            return Ok(BTreeMap::new());
        };
        Ok(item
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "pk" | "sk"))
            .filter_map(|(name, v)| match v {
                AttributeValue::N(count) => Some((
                    name.clone(),
                    count.parse::<i64>().ok()?.max(0).unsigned_abs(),
                )),
                _ => None,
            })
            .collect())
    }
}
