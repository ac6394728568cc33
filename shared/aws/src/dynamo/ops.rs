//! The DynamoDB calls every store makes, written once: read one item, write a new one, read
//! a partition's items whose sort key starts with a prefix (every page, or one page with a
//! cursor), and every page of any Query or Scan (`AllItems`).

use super::DynamoStore;
use super::items::{Item, key, s};
use super::store::values;
use crate::errors::store_error;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use herald_domain::StoreError;
use herald_domain::ports::Page;
use std::collections::HashMap;
use std::future::Future;

/// Every item a Query or a Scan matches, page after page.
pub(super) trait AllItems {
    fn all_items(self) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send;
}

/// The two builders' paginators are different types with the same calls, so one body serves
/// both through a macro.
macro_rules! all_items {
    ($($builder:ty),+) => {$(
        impl AllItems for $builder {
            async fn all_items(self) -> Result<Vec<Item>, StoreError> {
                let pages = self.into_paginator().items().send();
                pages
                    .collect::<Result<Vec<_>, _>>()
                    .await
                    .map_err(store_error)
            }
        }
    )+};
}

all_items!(QueryFluentBuilder, ScanFluentBuilder);

/// Rounds of BatchWriteItem for one batch before its unprocessed items count as a failure
/// (with the back-off below, about 25 s of throttling).
const WRITE_ROUNDS: u32 = 10;

/// Sends `requests` (at most 25) to `table` until every one is processed, backing off
/// between rounds.
pub(super) async fn write_all(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), StoreError> {
    for round in 0..WRITE_ROUNDS {
        if requests.is_empty() {
            return Ok(());
        }
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << round.min(9))).await;
        }
        let out = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(store_error)?;
        requests = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
    }
    if requests.is_empty() {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "{} items of {table} were still unprocessed after {WRITE_ROUNDS} rounds",
        requests.len()
    )))
}

impl DynamoStore {
    /// `Ok(false)`: a condition failed (nothing was written).
    pub(super) async fn transact_conditional(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(c)
                        if c.cancellation_reasons().iter().any(|r| r.code() == Some("ConditionalCheckFailed"))
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.code() == Some("TransactionCanceledException") => Err(
                StoreError::Unavailable("a transaction was cancelled".into()),
            ),
            Err(e) => Err(store_error(e)),
        }
    }

    /// A Put of the main table for a transaction, under `condition` and its `values`.
    pub(super) fn tx_put(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Option<HashMap<String, AttributeValue>>,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .put(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_values(values)
                    .build()
                    .map_err(build_error)?,
            )
            .build())
    }

    /// The item at `key` on the main table (an eventually consistent read).
    pub(super) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.get_item(key, false).await
    }

    /// The item at `key` on the main table, with every write acknowledged before the read.
    pub(super) async fn get_latest(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true).await
    }

    /// Every item of the `poll` index (accounts and streams, never a token) that `filter`
    /// keeps, projected to `projection`; `names` and `values` are the expressions' own.
    pub(super) async fn query_poll(
        &self,
        filter: &str,
        projection: &str,
        names: &[(&str, &str)],
        mut values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<Vec<Item>, StoreError> {
        values.push((":poll", s(super::items::POLL_PARTITION)));
        self.client
            .query()
            .table_name(&self.table)
            .index_name(super::items::POLL_INDEX)
            .key_condition_expression("poll_pk = :poll")
            .filter_expression(filter)
            .projection_expression(projection)
            .set_expression_attribute_names((!names.is_empty()).then(|| super::store::names(names)))
            .set_expression_attribute_values(Some(super::store::values(values)))
            .all_items()
            .await
    }

    async fn get_item(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item)
    }

    /// Writes `item` only if no item has its key (`ConditionalCheckFailed` otherwise).
    pub(super) async fn put_new(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    /// The items of partition `pk` whose sort key begins with `prefix`, in sort-key order.
    pub(super) fn query_prefix<'a>(&'a self, pk: String, prefix: &'a str) -> PrefixQuery<'a> {
        self.query_prefix_in(&self.table, pk, prefix)
    }

    /// The same query on another of Herald's tables (the audit table).
    pub(super) fn query_prefix_in<'a>(
        &'a self,
        table: &'a str,
        pk: String,
        prefix: &'a str,
    ) -> PrefixQuery<'a> {
        PrefixQuery {
            store: self,
            table,
            pk,
            prefix,
            backward: false,
            consistent: false,
        }
    }
}

/// A `pk = :pk AND begins_with(sk, :prefix)` query on the main table.
#[derive(Debug)]
pub(super) struct PrefixQuery<'a> {
    store: &'a DynamoStore,
    table: &'a str,
    pk: String,
    prefix: &'a str,
    backward: bool,
    consistent: bool,
}

impl PrefixQuery<'_> {
    /// Highest sort key first.
    pub(super) fn backward(mut self) -> Self {
        self.backward = true;
        self
    }

    /// Strongly consistent reads.
    pub(super) fn consistent(mut self) -> Self {
        self.consistent = true;
        self
    }

    fn query(&self) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.store
            .client
            .query()
            .table_name(self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .set_expression_attribute_values(Some(values(vec![
                (":pk", s(self.pk.clone())),
                (":prefix", s(self.prefix)),
            ])))
            .scan_index_forward(!self.backward)
            .consistent_read(self.consistent)
    }

    /// Every matching item, page after page.
    pub(super) async fn all(self) -> Result<Vec<Item>, StoreError> {
        self.query().all_items().await
    }

    /// Up to `limit` items after `cursor` (what follows the prefix in the last sort key a page
    /// ended on); the page's cursor is `None` when nothing more matches.
    pub(super) async fn page(
        self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Item>, StoreError> {
        let start = cursor.map(|c| key(self.pk.clone(), format!("{}{c}", self.prefix)));
        let out = self
            .query()
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let cursor = sk_cursor(out.last_evaluated_key(), self.prefix);
        Ok(Page {
            items: out.items.unwrap_or_default(),
            cursor,
        })
    }
}

/// Where a page ended, as a cursor: what follows `prefix` in the last sort key it read
/// (`None` when the query read everything).
pub(super) fn sk_cursor(last: Option<&Item>, prefix: &str) -> Option<String> {
    last.and_then(|k| k.get("sk"))
        .and_then(|v| v.as_s().ok())
        .and_then(|sk| sk.strip_prefix(prefix))
        .map(str::to_owned)
}

/// A request the SDK could not build (a missing required field: a bug, not an outage).
pub(super) fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Invalid(format!("building a request: {e}"))
}
