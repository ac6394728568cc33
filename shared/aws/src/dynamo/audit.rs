//! The audit log on DynamoDB. Records live in their own table, to which the template grants
//! functions `PutItem` and reads only (append-only by permission); each chain's head lives in
//! the main table (`TENANT#<t>` / `AUDITHEAD#<entity>`). An append writes the record and
//! moves the head in one transaction, conditional on the head it chained from.
//!
//! | item   | table | pk               | sk                                        |
//! |--------|-------|------------------|-------------------------------------------|
//! | record | audit | `AUDIT#<tenant>` | `REC#<epoch ms, 13>#<entity>#<seq, 10>`   |
//! | head   | main  | `TENANT#<tenant>`| `AUDITHEAD#<entity>`                      |

use super::DynamoStore;
use super::items::*;
use super::store::{names, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use base64::Engine;
use herald_domain::StoreError;
use herald_domain::audit::{AuditEntry, AuditRecord, ChainHead};
use herald_domain::clock::epoch_millis;
use herald_domain::ids::TenantId;
use herald_domain::ports::{AuditFilter, AuditLog, Page};
use std::collections::BTreeMap;

pub fn audit_pk(tenant: &TenantId) -> String {
    format!("AUDIT#{tenant}")
}

fn record_sk(r: &AuditRecord) -> String {
    format!(
        "REC#{:013}#{}#{:010}",
        epoch_millis(r.entry.at).max(0),
        r.entry.entity,
        r.seq
    )
}

fn head_key(tenant: &TenantId, entity: &str) -> Item {
    key(tenant_pk(tenant), format!("AUDITHEAD#{entity}"))
}

pub fn record_to_item(r: &AuditRecord) -> Item {
    let e = &r.entry;
    let mut item = key(audit_pk(&e.tenant_id), record_sk(r));
    item.insert("tenant_id".into(), s(e.tenant_id.as_str()));
    item.insert("entity".into(), s(&e.entity));
    item.insert("action".into(), s(&e.action));
    item.insert("actor".into(), s(&e.actor));
    for (name, value) in [("old", &e.old), ("new", &e.new)] {
        if let Some(v) = value {
            item.insert(name.into(), s(v.to_string()));
        }
    }
    if let Some(ip) = &e.ip {
        item.insert("ip".into(), s(ip));
    }
    if let Some(ua) = &e.user_agent {
        item.insert("user_agent".into(), s(ua));
    }
    item.insert("at".into(), time_n(e.at));
    item.insert("seq".into(), n(r.seq));
    item.insert("prev_hash".into(), s(&r.prev_hash));
    item.insert("hash".into(), s(&r.hash));
    item
}

pub fn record_from_item(item: &Item) -> Result<AuditRecord, StoreError> {
    let f = Fields(item);
    let json = |name: &str| {
        f.opt_str(name)
            .map(|v| serde_json::from_str(&v))
            .transpose()
            .map_err(|_| StoreError::Invalid(format!("audit record has a malformed `{name}`")))
    };
    Ok(AuditRecord {
        entry: AuditEntry {
            tenant_id: TenantId(f.str("tenant_id")?),
            entity: f.str("entity")?,
            action: f.str("action")?,
            actor: f.str("actor")?,
            old: json("old")?,
            new: json("new")?,
            ip: f.opt_str("ip"),
            user_agent: f.opt_str("user_agent"),
            at: f.time("at")?,
        },
        seq: u64::try_from(f.num("seq")?)
            .map_err(|_| StoreError::Invalid("audit record has a malformed `seq`".into()))?,
        prev_hash: f.str("prev_hash")?,
        hash: f.str("hash")?,
    })
}

fn head_from_item(item: &Item) -> Option<ChainHead> {
    let f = Fields(item);
    Some(ChainHead {
        seq: u64::try_from(f.opt_num("seq")?).ok()?,
        hash: f.opt_str("hash")?,
    })
}

impl DynamoStore {
    fn audit_table(&self) -> Result<&str, StoreError> {
        self.audit_table
            .as_deref()
            .ok_or_else(|| StoreError::Invalid("no audit table is configured".into()))
    }

    /// The two writes that append `record`: the record itself (never overwriting) and the
    /// head, only if it still is where the record chained from.
    pub(super) fn audit_items(
        &self,
        record: &AuditRecord,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Invalid(e.to_string());
        let put_record = Put::builder()
            .table_name(self.audit_table()?)
            .set_item(Some(record_to_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build)?;
        let mut head = head_key(&record.entry.tenant_id, &record.entry.entity);
        head.insert("seq".into(), n(record.seq));
        head.insert("hash".into(), s(&record.hash));
        let put_head = Put::builder()
            .table_name(&self.table)
            .set_item(Some(head))
            .condition_expression("attribute_not_exists(pk) OR #seq = :prev")
            .set_expression_attribute_names(Some(names(&[("#seq", "seq")])))
            .set_expression_attribute_values(Some(values(vec![(":prev", n(record.seq - 1))])))
            .build()
            .map_err(build)?;
        Ok([
            TransactWriteItem::builder().put(put_record).build(),
            TransactWriteItem::builder().put(put_head).build(),
        ])
    }

    /// The head key of an entity, for reads batched with others.
    pub(super) fn audit_head_key(tenant: &TenantId, entity: &str) -> Item {
        head_key(tenant, entity)
    }

    pub(super) fn audit_head_from(item: Option<&Item>) -> ChainHead {
        item.and_then(head_from_item).unwrap_or_default()
    }
}

#[async_trait]
impl AuditLog for DynamoStore {
    async fn head(&self, tenant: &TenantId, entity: &str) -> Result<ChainHead, StoreError> {
        let item = self.get_latest(head_key(tenant, entity)).await?;
        Ok(Self::audit_head_from(item.as_ref()))
    }

    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        // Another append to the same chain may win the race: chain again from the new head.
        for _ in 0..5 {
            let head = self.head(&entry.tenant_id, &entry.entity).await?;
            let record = AuditRecord::chain(entry.clone(), &head);
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.audit_items(&record)?.to_vec()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(record),
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        TransactWriteItemsError::TransactionCanceledException(_)
                    ) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let bound = |t: Option<time::OffsetDateTime>, default: &str| {
            t.map_or(default.to_owned(), |t| {
                format!("REC#{:013}", epoch_millis(t).max(0))
            })
        };
        let (low, high) = (bound(filter.from, "REC#"), bound(filter.to, "REC$"));
        let mut start: Option<Item> = match cursor {
            Some(c) => Some(decode_cursor(tenant, c)?),
            None => None,
        };
        let mut items = Vec::new();
        // A filter applies after DynamoDB's limit: read a few pages to fill one.
        for _ in 0..5 {
            let out = self
                .client
                .query()
                .table_name(self.audit_table()?)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .set_expression_attribute_values(Some(values(vec![
                    (":pk", s(audit_pk(tenant))),
                    (":low", s(&low)),
                    (":high", s(&high)),
                ])))
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(100))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let record = record_from_item(item)?;
                if filter.matches(&record) {
                    items.push(record);
                }
            }
            start = out.last_evaluated_key;
            if items.len() >= limit || start.is_none() {
                break;
            }
        }
        items.truncate(limit);
        let cursor = match (items.len() == limit, items.last(), start) {
            (true, Some(last), _) => Some(encode_cursor(&record_sk(last))),
            (false, _, Some(key)) => Fields(&key).opt_str("sk").map(|sk| encode_cursor(&sk)),
            _ => None,
        };
        Ok(Page { items, cursor })
    }

    async fn export(
        &self,
        tenant: &TenantId,
    ) -> Result<(Vec<AuditRecord>, BTreeMap<String, ChainHead>), StoreError> {
        let mut records = Vec::new();
        for item in self
            .query_prefix_in(self.audit_table()?, audit_pk(tenant), "REC#")
            .consistent()
            .all()
            .await?
        {
            records.push(record_from_item(&item)?);
        }
        let mut heads = BTreeMap::new();
        for item in self
            .query_prefix(tenant_pk(tenant), "AUDITHEAD#")
            .consistent()
            .all()
            .await?
        {
            let sk = Fields(&item).str("sk")?;
            if let (Some(entity), Some(head)) =
                (sk.strip_prefix("AUDITHEAD#"), head_from_item(&item))
            {
                heads.insert(entity.to_owned(), head);
            }
        }
        Ok((records, heads))
    }
}

fn encode_cursor(sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

fn decode_cursor(tenant: &TenantId, cursor: &str) -> Result<Item, StoreError> {
    let sk = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|sk| sk.starts_with("REC#"))
        .ok_or_else(|| StoreError::Invalid("the cursor is not one this API gave out".into()))?;
    Ok(key(audit_pk(tenant), sk))
}

/// Erasure's redaction: the only write that replaces records, run by the operator's command
/// (the functions' role may not; see the module comment).
#[async_trait]
impl herald_domain::offboarding::AuditRewrite for DynamoStore {
    async fn replace_chain(
        &self,
        tenant: &TenantId,
        entity: &str,
        records: &[AuditRecord],
    ) -> Result<(), StoreError> {
        let table = self.audit_table()?;
        for record in records {
            if record.entry.tenant_id != *tenant || record.entry.entity != entity {
                return Err(StoreError::Invalid(
                    "a replaced chain holds a record of another chain".into(),
                ));
            }
            self.client
                .put_item()
                .table_name(table)
                .set_item(Some(record_to_item(record)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .map_err(store_error)?;
        }
        let Some(last) = records.last() else {
            return Ok(());
        };
        let mut head = head_key(tenant, entity);
        head.insert("seq".into(), n(last.seq));
        head.insert("hash".into(), s(&last.hash));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
