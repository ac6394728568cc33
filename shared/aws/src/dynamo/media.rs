//! Media records in the main table, beside the tenant's posts (`TENANT#<tenant>` /
//! `MEDIA#<id>`): created by the API, read in one `BatchGetItem` when a post names them, and
//! updated with what the upload turned out to be.

use super::DynamoStore;
use super::items::*;
use super::ops::{AllItems, build_error};
use super::store::values;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use herald_domain::StoreError;
use herald_domain::ids::{MediaId, TenantId};
use herald_domain::media::{Inspection, MediaRecord, MediaUsage, Tally};
use herald_domain::ports::MediaRecords;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// BatchGetItem's most keys per call.
const BATCH_GET_MAX: usize = 100;

#[async_trait]
impl MediaRecords for DynamoStore {
    async fn media_usage(&self, tenant: &TenantId) -> Result<MediaUsage, StoreError> {
        match self.get_latest(usage_key(tenant)).await? {
            Some(item) => usage_from_item(&item),
            None => Ok(MediaUsage::default()),
        }
    }

    async fn insert_media(
        &self,
        media: &MediaRecord,
        usage: &MediaUsage,
    ) -> Result<(), StoreError> {
        let record = Put::builder()
            .table_name(&self.table)
            .set_item(Some(media_to_item(media)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let counted = self.usage_put(&media.tenant_id, usage)?;
        let written = self
            .transact_conditional(vec![
                TransactWriteItem::builder().put(record).build(),
                TransactWriteItem::builder().put(counted).build(),
            ])
            .await?;
        if written {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn get_media(
        &self,
        tenant: &TenantId,
        ids: &[MediaId],
    ) -> Result<Vec<MediaRecord>, StoreError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_GET_MAX) {
            let mut wanted = KeysAndAttributes::builder().consistent_read(true);
            for id in chunk {
                wanted = wanted.keys(key(tenant_pk(tenant), media_sk(id)));
            }
            let wanted = wanted
                .build()
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let mut pending = HashMap::from([(self.table.clone(), wanted)]);
            // BatchGetItem may leave keys unprocessed under load: ask again for those.
            for attempt in 0.. {
                let out = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(pending))
                    .send()
                    .await
                    .map_err(store_error)?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    records.push(media_from_item(&item)?);
                }
                pending = out.unprocessed_keys.unwrap_or_default();
                if pending.values().all(|k| k.keys().is_empty()) {
                    break;
                }
                if attempt == 4 {
                    return Err(StoreError::Unavailable(
                        "media records stayed unprocessed".into(),
                    ));
                }
            }
        }
        Ok(records)
    }

    async fn record_inspection(
        &self,
        tenant: &TenantId,
        id: &MediaId,
        inspection: &Inspection,
    ) -> Result<(), StoreError> {
        let values = inspection_values(inspection);
        let mut set: Vec<String> = values.keys().map(|k| format!("#{k} = :{k}")).collect();
        set.sort();
        // An image inspected earlier may have been replaced by something without dimensions.
        let remove: Vec<&str> = ["width", "height"]
            .into_iter()
            .filter(|k| !values.contains_key(*k))
            .collect();
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), media_sk(id))))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(
                values
                    .keys()
                    .map(|k| (format!("#{k}"), k.clone()))
                    .collect(),
            ))
            .set_expression_attribute_values(Some(
                values
                    .into_iter()
                    .map(|(k, v)| (format!(":{k}"), v))
                    .collect(),
            ))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

impl DynamoStore {
    /// Replaces the tenant's usage item with `usage`, if it is still at the version before.
    fn usage_put(&self, tenant: &TenantId, usage: &MediaUsage) -> Result<Put, StoreError> {
        let mut item = usage_key(tenant);
        item.insert("tenant_id".into(), s(tenant.0.clone()));
        item.insert("version".into(), n(usage.version));
        item.insert(
            "months".into(),
            AttributeValue::M(
                usage
                    .months
                    .iter()
                    .map(|(month, t)| {
                        let tally = HashMap::from([
                            ("objects".to_owned(), n(t.objects)),
                            ("bytes".to_owned(), n(t.bytes)),
                        ]);
                        (month.clone(), AttributeValue::M(tally))
                    })
                    .collect(),
            ),
        );
        let previous = usage.version.saturating_sub(1);
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        let put = if previous == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(previous))
        };
        put.build().map_err(build_error)
    }

    /// Counts every media record of every tenant again and writes each tenant's usage (the
    /// upgrade for deployments with media from before the quota; safe to run again, and
    /// alongside media being created: a tenant whose usage changed meanwhile is counted
    /// again). Returns how many tenants' usage it wrote.
    pub async fn recount_media_usage(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(sk, :m) AND #t = :media")
            .projection_expression("pk, created_at, declared_size")
            .expression_attribute_names("#t", "type")
            .set_expression_attribute_values(Some(values(vec![
                (":m", s("MEDIA#")),
                (":media", s("media")),
            ])))
            .all_items()
            .await?;
        let mut counted: BTreeMap<TenantId, MediaUsage> = BTreeMap::new();
        for item in &items {
            let f = Fields(item);
            let at = f.time("created_at")?;
            let size = f.u64("declared_size")?;
            let pk = f.str("pk")?;
            let tenant = pk
                .strip_prefix("TENANT#")
                .ok_or_else(|| StoreError::Invalid(format!("media item under {pk}")))?;
            counted
                .entry(TenantId(tenant.to_owned()))
                .or_default()
                .count(at, size);
        }
        let mut written = 0;
        for (tenant, fresh) in counted {
            for attempt in 0.. {
                let held = self.media_usage(&tenant).await?;
                // Records created since the scan are in the held usage, not in the count.
                let mut next = fresh.clone();
                next.version = held.version + 1;
                for (month, tally) in held.live(now) {
                    let mine = next.months.entry(month.clone()).or_default();
                    mine.objects = mine.objects.max(tally.objects);
                    mine.bytes = mine.bytes.max(tally.bytes);
                }
                let put = self.usage_put(&tenant, &next)?;
                if self
                    .transact_conditional(vec![TransactWriteItem::builder().put(put).build()])
                    .await?
                {
                    written += 1;
                    break;
                }
                if attempt == 4 {
                    return Err(StoreError::Unavailable(format!(
                        "tenant {tenant}'s media usage kept changing"
                    )));
                }
            }
        }
        Ok(written)
    }
}

fn usage_key(tenant: &TenantId) -> Item {
    key(tenant_pk(tenant), "MEDIAUSAGE")
}

fn usage_from_item(item: &Item) -> Result<MediaUsage, StoreError> {
    let f = Fields(item);
    let mut months = BTreeMap::new();
    if let Some(AttributeValue::M(map)) = item.get("months") {
        for (month, tally) in map {
            let AttributeValue::M(tally) = tally else {
                return Err(StoreError::Invalid(format!("media usage month {month}")));
            };
            let t = Fields(tally);
            months.insert(
                month.clone(),
                Tally {
                    objects: t.u64("objects")?,
                    bytes: t.u64("bytes")?,
                },
            );
        }
    }
    Ok(MediaUsage {
        months,
        version: f.u64("version")?,
    })
}
