//! API keys and tenant suspension on the main table. A key is found by its hash (one
//! strongly consistent GetItem, so a revocation holds from the next request) and listed by
//! its tenant through the `keys` index (`keys_pk` = `TENANTKEYS#<tenant>`, `keys_sk` = key id).

use super::items::*;
use super::ops::AllItems;
use super::store::{DynamoStore, values, written};
use crate::errors::store_error;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use herald_domain::StoreError;
use herald_domain::ids::{ApiKeyId, TenantId};
use herald_domain::model::{ApiKey, KeyChange, Role, Suspension};
use time::OffsetDateTime;

/// Where a key's item is: by the hash of its secret.
pub fn api_key_pk(hash: &str) -> String {
    format!("APIKEY#{hash}")
}

/// The `keys` index: a tenant's keys (`keys_pk`), by key id (`keys_sk`, UUIDv7: by age).
pub const KEYS_INDEX: &str = "keys";

pub fn tenant_keys_pk(tenant: &TenantId) -> String {
    format!("TENANTKEYS#{tenant}")
}

fn bad(field: &str) -> StoreError {
    StoreError::Invalid(format!(
        "stored API key has a missing or malformed `{field}`"
    ))
}

pub fn api_key_to_item(k: &ApiKey) -> Item {
    let mut item = key(api_key_pk(&k.hash), "APIKEY");
    item.insert("type".into(), s("api_key"));
    item.insert("key_id".into(), s(k.id.as_str()));
    item.insert("tenant_id".into(), s(k.tenant_id.as_str()));
    item.insert("role".into(), s(k.role.as_str()));
    item.insert("name".into(), s(&k.name));
    item.insert("created_at".into(), time_n(k.created_at));
    item.insert("keys_pk".into(), s(tenant_keys_pk(&k.tenant_id)));
    item.insert("keys_sk".into(), s(k.id.as_str()));
    if !k.hint.is_empty() {
        item.insert("hint".into(), s(&k.hint));
    }
    if let Some(next) = &k.rotated_to {
        item.insert("rotated_to".into(), s(next.as_str()));
    }
    for (name, at) in [
        ("expires_at", k.expires_at),
        ("revoked_at", k.revoked_at),
        ("last_used_at", k.last_used_at),
    ] {
        if let Some(at) = at {
            item.insert(name.into(), time_n(at));
        }
    }
    item
}

pub fn api_key_from_item(item: &Item) -> Result<ApiKey, StoreError> {
    let f = Fields(item);
    let pk = f.str("pk")?;
    Ok(ApiKey {
        id: ApiKeyId(f.str("key_id")?),
        tenant_id: TenantId(f.str("tenant_id")?),
        role: Role::parse(&f.str("role")?).ok_or_else(|| bad("role"))?,
        name: f.str("name")?,
        hash: pk
            .strip_prefix("APIKEY#")
            .ok_or_else(|| bad("pk"))?
            .to_owned(),
        created_at: f.time("created_at")?,
        hint: f.opt_str("hint").unwrap_or_default(),
        expires_at: f.opt_time("expires_at"),
        revoked_at: f.opt_time("revoked_at"),
        last_used_at: f.opt_time("last_used_at"),
        rotated_to: f.opt_str("rotated_to").map(ApiKeyId),
    })
}

impl DynamoStore {
    pub(super) async fn find_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let item = self.get_latest(key(api_key_pk(hash), "APIKEY")).await?;
        item.as_ref().map(api_key_from_item).transpose()
    }

    pub(super) async fn tenant_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.client
            .query()
            .table_name(&self.table)
            .index_name(KEYS_INDEX)
            .key_condition_expression("keys_pk = :t")
            .set_expression_attribute_values(Some(values(vec![(":t", s(tenant_keys_pk(tenant)))])))
            .scan_index_forward(false)
            .all_items()
            .await?
            .iter()
            .map(api_key_from_item)
            .collect()
    }

    /// A new key's item (never over an existing one).
    pub(super) async fn put_key(&self, api_key: &ApiKey) -> Result<(), StoreError> {
        self.put_new(api_key_to_item(api_key)).await
    }

    pub(super) async fn change_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        change: &KeyChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        let Some(found) = self
            .tenant_keys(tenant)
            .await?
            .into_iter()
            .find(|k| &k.id == id)
        else {
            return Ok(None);
        };
        let mut sets = Vec::new();
        let mut vals = vec![(":t", s(tenant.as_str()))];
        if let Some(at) = change.revoked_at {
            sets.push("revoked_at = :r");
            vals.push((":r", time_n(at)));
        }
        if let Some(at) = change.expires_at {
            sets.push("expires_at = :e");
            vals.push((":e", time_n(at)));
        }
        // The index may lag a deletion: the key must still be this tenant's; and a key is
        // rotated once (two rotations at once: one wins, the other changes nothing).
        let mut condition = "tenant_id = :t".to_owned();
        if let Some(next) = &change.rotated_to {
            sets.push("rotated_to = :n");
            vals.push((":n", s(next.as_str())));
            condition.push_str(" AND attribute_not_exists(rotated_to)");
        }
        if sets.is_empty() {
            return Ok(Some(found));
        }
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(api_key_pk(&found.hash), "APIKEY")))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values(vals)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match out.map_err(store_error) {
            Ok(out) => out.attributes.as_ref().map(api_key_from_item).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn touch_key(
        &self,
        hash: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        written(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(api_key_pk(hash), "APIKEY")))
                .update_expression("SET last_used_at = :at")
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :since)",
                )
                .set_expression_attribute_values(Some(values(vec![
                    (":at", time_n(at)),
                    (":since", time_n(since)),
                ])))
                .send()
                .await
                .map_err(store_error),
        )
        .map(|_| ())
    }

    pub(super) async fn suspend(
        &self,
        tenant: &TenantId,
        suspension: Option<&Suspension>,
    ) -> Result<bool, StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(tenant_pk(tenant), "TENANT")))
            .condition_expression("attribute_exists(pk)");
        let request = match suspension {
            Some(sus) => request
                .update_expression("SET suspended_at = :at, suspension_reason = :why")
                .set_expression_attribute_values(Some(values(vec![
                    (":at", time_n(sus.at)),
                    (":why", s(&sus.reason)),
                ]))),
            None => request.update_expression("REMOVE suspended_at, suspension_reason"),
        };
        written(request.send().await.map_err(store_error))
    }

    /// Gives keys written before the `keys` index their place in it (once, after upgrading);
    /// returns how many were changed.
    pub async fn backfill_keys_index(&self) -> Result<usize, StoreError> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("begins_with(pk, :k) AND attribute_not_exists(keys_pk)")
            .projection_expression("pk, sk, tenant_id, key_id")
            .set_expression_attribute_values(Some(values(vec![(":k", s("APIKEY#"))])))
            .all_items()
            .await?;
        let mut changed = 0;
        for item in &items {
            let f = Fields(item);
            let done = written(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key(f.str("pk")?, f.str("sk")?)))
                    .update_expression("SET keys_pk = :kp, keys_sk = :ks")
                    .condition_expression("attribute_exists(pk)")
                    .set_expression_attribute_values(Some(values(vec![
                        (":kp", s(tenant_keys_pk(&TenantId(f.str("tenant_id")?)))),
                        (":ks", AttributeValue::S(f.str("key_id")?)),
                    ])))
                    .send()
                    .await
                    .map_err(store_error),
            )?;
            changed += usize::from(done);
        }
        Ok(changed)
    }
}
