//! `herald tenant erase`: the tenant suspended (nothing publishes from then on), its audit log
//! checked, then everything of it deleted (keys first), its media objects removed, its log
//! redacted and re-anchored ([`super::redact`]), its tenant item last, and the erasure audited
//! in its log and in the operators'. A run that stopped before the redaction can be run again
//! (the tenant item goes last; what is gone already is not found again). One that stopped
//! during it leaves a chain that no longer verifies: the operators' log has no erasure record
//! then, and `herald audit verify` names the chain.

use super::export::Operator;
use super::{AuditRewrite, MediaPurge, erasable, key_of, media_prefix, rate_window_key_id, text};
use crate::audit::verify;
use crate::backup::{BATCH, BackupError, Item, TableRef};
use crate::dead_letters::DeadLetterRecords;
use crate::ids::TenantId;
use serde::Serialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub struct ErasePlan<'a> {
    pub operator: Operator<'a>,
    pub idempotency: &'a TableRef,
    pub rewrite: &'a dyn AuditRewrite,
    pub media: &'a dyn MediaPurge,
    /// Dead letters go through their port: each removal lowers the waiting count with it.
    pub dead_letters: &'a dyn DeadLetterRecords,
}

impl std::fmt::Debug for ErasePlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErasePlan")
            .field("operator", &self.operator)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErasedTenant {
    pub tenant_id: String,
    /// Items deleted, by table role.
    pub items: BTreeMap<String, u64>,
    pub media_objects: u64,
    pub audit_records_redacted: u64,
}

/// Erases `tenant`; `confirm` must repeat its id.
pub async fn erase(
    plan: &ErasePlan<'_>,
    tenant: &TenantId,
    confirm: &str,
) -> Result<ErasedTenant, BackupError> {
    let op = &plan.operator;
    if confirm != tenant.as_str() {
        return Err(BackupError::Refused(format!(
            "--confirm must repeat the tenant id ({tenant}); nothing was erased"
        )));
    }
    op.existing(tenant).await?;
    crate::tenants::set_suspension(op.tenants, op.clock, tenant, Some("erasing")).await?;
    let (records, heads) = op.audit.export(tenant).await?;
    let findings = verify(&records, &heads);
    if !findings.is_empty() {
        return Err(BackupError::Refused(format!(
            "the audit log of {tenant} does not verify ({} findings; `herald audit verify --tenant {tenant}`): it is redacted only once it does; the tenant is suspended, nothing was erased",
            findings.len()
        )));
    }
    let (letters, main): (Vec<Item>, Vec<Item>) = doomed_main_items(plan, tenant)
        .await?
        .into_iter()
        .partition(|i| text(i, "sk").is_some_and(|sk| sk.starts_with(DEAD_LETTER)));
    let discarded = discard_dead_letters(plan, &letters).await?;
    let idem = doomed_idempotency_items(plan, tenant).await?;
    let mut items = BTreeMap::new();
    items.insert(
        "main".to_owned(),
        discarded + delete_all(plan, &op.main.name, &main).await?,
    );
    items.insert(
        "idempotency".to_owned(),
        delete_all(plan, &plan.idempotency.name, &idem).await?,
    );
    let media_objects = plan.media.delete_prefix(&media_prefix(tenant)).await?;
    let redacted = redact_log(plan, tenant, &records).await?;
    let tenant_item = key_of(
        &serde_json::from_value(json!({
            "pk": {"S": format!("TENANT#{tenant}")}, "sk": {"S": "TENANT"}
        }))
        .map_err(|e| BackupError::Refused(e.to_string()))?,
    );
    op.tables
        .delete_batch(&op.main.name, &[tenant_item])
        .await?;
    *items.entry("main".into()).or_default() += 1;
    let previous_heads: BTreeMap<_, _> = heads
        .iter()
        .map(|(e, h)| (e.clone(), json!({"seq": h.seq, "hash": h.hash})))
        .collect();
    op.audit_both(
        tenant,
        "tenant.erased",
        json!({"items": items, "media_objects": media_objects, "audit_records_redacted": redacted, "previous_heads": previous_heads}),
    )
    .await?;
    Ok(ErasedTenant {
        tenant_id: tenant.to_string(),
        items,
        media_objects,
        audit_records_redacted: redacted,
    })
}

/// The main table's items of the tenant (keys first), and its keys' rate windows.
async fn doomed_main_items(
    plan: &ErasePlan<'_>,
    tenant: &TenantId,
) -> Result<Vec<Item>, BackupError> {
    let op = &plan.operator;
    let (mut doomed, mut windows, mut key_ids) = (Vec::new(), Vec::new(), BTreeSet::new());
    let mut start = None;
    loop {
        let page = op.tables.scan_page(&op.main.name, start).await?;
        for item in page.items {
            if rate_window_key_id(&item).is_some() {
                windows.push(item);
            } else if erasable(tenant, &item) {
                if text(&item, "pk").is_some_and(|pk| pk.starts_with("APIKEY#")) {
                    key_ids.extend(text(&item, "key_id").map(str::to_owned));
                }
                doomed.push(item);
            }
        }
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    // API keys first: nothing of the tenant answers a key from the first batch on.
    doomed.sort_by_key(|i| !text(i, "pk").is_some_and(|pk| pk.starts_with("APIKEY#")));
    doomed.extend(
        windows
            .into_iter()
            .filter(|w| rate_window_key_id(w).is_some_and(|k| key_ids.contains(k))),
    );
    Ok(doomed.iter().map(key_of).collect())
}

async fn doomed_idempotency_items(
    plan: &ErasePlan<'_>,
    tenant: &TenantId,
) -> Result<Vec<Item>, BackupError> {
    let prefix = format!("{tenant}#");
    let mut doomed = Vec::new();
    let mut start = None;
    loop {
        let page = plan
            .operator
            .tables
            .scan_page(&plan.idempotency.name, start)
            .await?;
        doomed.extend(
            page.items
                .iter()
                .filter(|i| text(i, "pk").is_some_and(|pk| pk.starts_with(&prefix)))
                .map(key_of),
        );
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    Ok(doomed)
}

const DEAD_LETTER: &str = "DEADLETTER#";

/// Each dead letter (the tenant's, and the operators' about it) removed with its count.
async fn discard_dead_letters(plan: &ErasePlan<'_>, keys: &[Item]) -> Result<u64, BackupError> {
    let mut discarded = 0;
    for key in keys {
        let (Some(owner), Some(id)) = (
            text(key, "pk").and_then(|pk| pk.strip_prefix("TENANT#")),
            text(key, "sk").and_then(|sk| sk.strip_prefix(DEAD_LETTER)),
        ) else {
            continue;
        };
        if let Some(letter) = plan.dead_letters.find(&TenantId(owner.into()), id).await?
            && plan.dead_letters.discard(&letter).await?
        {
            discarded += 1;
        }
    }
    Ok(discarded)
}

async fn delete_all(plan: &ErasePlan<'_>, table: &str, keys: &[Item]) -> Result<u64, BackupError> {
    for batch in keys.chunks(BATCH) {
        plan.operator.tables.delete_batch(table, batch).await?;
    }
    Ok(keys.len() as u64)
}

/// Every chain redacted and re-hashed; answers how many records were rewritten.
async fn redact_log(
    plan: &ErasePlan<'_>,
    tenant: &TenantId,
    records: &[crate::audit::AuditRecord],
) -> Result<u64, BackupError> {
    let mut chains: BTreeMap<&str, Vec<crate::audit::AuditRecord>> = BTreeMap::new();
    for r in records {
        chains
            .entry(r.entry.entity.as_str())
            .or_default()
            .push(r.clone());
    }
    for (entity, chain) in &chains {
        let redacted = super::redact::rechain(chain);
        plan.rewrite
            .replace_chain(tenant, entity, &redacted)
            .await?;
    }
    Ok(records.len() as u64)
}
