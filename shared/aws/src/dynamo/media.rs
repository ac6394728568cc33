//! Media records in the main table, beside the tenant's posts (`TENANT#<tenant>` /
//! `MEDIA#<id>`): created by the API, read in one `BatchGetItem` when a post names them, and
//! updated with what the upload turned out to be.

use super::DynamoStore;
use super::items::*;
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use herald_domain::StoreError;
use herald_domain::ids::{MediaId, TenantId};
use herald_domain::media::{Inspection, MediaRecord};
use herald_domain::ports::MediaRecords;
use std::collections::HashMap;

/// BatchGetItem's most keys per call.
const BATCH_GET_MAX: usize = 100;

#[async_trait]
impl MediaRecords for DynamoStore {
    async fn insert_media(&self, media: &MediaRecord) -> Result<(), StoreError> {
        self.put_new(media_to_item(media)).await
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
