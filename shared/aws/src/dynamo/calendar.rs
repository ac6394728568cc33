//! The calendar: a tenant's posts by scheduled time, through the `calendar` index
//! (`calendar_pk` = `CALENDAR#<tenant>`, `calendar_sk` = the post's
//! [`calendar_position`]), and the backfill that gives posts written before the index their
//! place in it.

use super::items::*;
use super::store::{DynamoStore, values, written};
use crate::errors::store_error;
use herald_domain::StoreError;
use herald_domain::clock::epoch_millis;
use herald_domain::ids::{PostId, TenantId};
use herald_domain::model::Post;
use herald_domain::ports::{Page, calendar_position};
use time::OffsetDateTime;

pub const CALENDAR_INDEX: &str = "calendar";

/// The lowest calendar position at `at`: every post scheduled at or after `at` sorts at or
/// above it, every post before it below ('#' precedes every digit). Clamped to 13 digits
/// (1970 to 2286) so that it compares as positions do; posts are scheduled at most a year
/// ahead.
fn bound(at: OffsetDateTime) -> String {
    format!("{:013}#", epoch_millis(at).clamp(0, 9_999_999_999_999))
}

impl DynamoStore {
    /// Pattern 83: one Query of the `calendar` index, `BETWEEN` the two bounds (the upper one
    /// is below every post at `to`, so the range is half-open).
    pub(super) async fn calendar_page(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError> {
        let start = cursor
            .map(|position| start_key(tenant, position))
            .transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CALENDAR_INDEX)
            .key_condition_expression("calendar_pk = :p AND calendar_sk BETWEEN :lo AND :hi")
            .set_expression_attribute_values(Some(values(vec![
                (":p", s(calendar_pk(tenant))),
                (":lo", s(bound(from))),
                (":hi", s(bound(to))),
            ])))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let cursor = out
            .last_evaluated_key()
            .and_then(|k| k.get("calendar_sk"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(post_from_item)
                .collect::<Result<_, _>>()?,
            cursor,
        })
    }

    /// Pattern 84: gives posts written before the `calendar` index their place in it (once,
    /// after upgrading; running it again changes nothing). Reads a page of the scan at a time,
    /// so memory stays flat however many posts there are. Returns how many were changed.
    pub async fn backfill_calendar_index(&self) -> Result<usize, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "begins_with(pk, :t) AND begins_with(sk, :p) AND attribute_not_exists(calendar_pk)",
            )
            .projection_expression("pk, sk, scheduled_at")
            .set_expression_attribute_values(Some(values(vec![
                (":t", s("TENANT#")),
                (":p", s("POST#")),
            ])))
            .into_paginator()
            .send();
        let mut changed = 0;
        while let Some(page) = pages.next().await {
            for item in page.map_err(store_error)?.items() {
                changed += usize::from(self.place_in_calendar(item).await?);
            }
        }
        Ok(changed)
    }

    /// Sets one scanned post's calendar keys, unless a write since the scan already did (a
    /// post written by this release carries them, and its schedule may have moved).
    async fn place_in_calendar(&self, item: &Item) -> Result<bool, StoreError> {
        let f = Fields(item);
        let (pk, sk) = (f.str("pk")?, f.str("sk")?);
        let (Some(tenant), Some(post)) = (pk.strip_prefix("TENANT#"), sk.strip_prefix("POST#"))
        else {
            return Err(StoreError::Invalid(format!("malformed post key {pk}/{sk}")));
        };
        let position = calendar_position(f.time("scheduled_at")?, &PostId(post.to_owned()));
        let pk_value = calendar_pk(&TenantId(tenant.to_owned()));
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET calendar_pk = :cp, calendar_sk = :cs")
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(calendar_pk)")
                .set_expression_attribute_values(Some(values(vec![
                    (":cp", s(pk_value)),
                    (":cs", s(position)),
                ])))
                .send()
                .await
                .map_err(store_error),
        )
    }
}

/// The index position a cursor names, as the `ExclusiveStartKey` a query of the index needs
/// (the table's key and the index's). The cursor came back through the API, which only lets a
/// well-formed position through; the tenant is always the caller's, so a position copied from
/// another tenant's list still reads only the caller's calendar.
fn start_key(tenant: &TenantId, position: &str) -> Result<Item, StoreError> {
    let post = position
        .split_once('#')
        .map(|(_, post)| post)
        .filter(|post| !post.is_empty())
        .ok_or_else(|| StoreError::Invalid(format!("malformed calendar cursor {position:?}")))?;
    let mut start = key(tenant_pk(tenant), post_sk(&PostId(post.to_owned())));
    start.insert("calendar_pk".into(), s(calendar_pk(tenant)));
    start.insert("calendar_sk".into(), s(position));
    Ok(start)
}
