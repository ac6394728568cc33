//! `herald tenant export`: what a tenant takes with it: its posts, its accounts without any
//! token, its audit log, as JSON lines in a new directory (files readable by the owner only)
//! with a manifest of counts and SHA-256 checksums. Audited in the tenant's and the operators'
//! logs.

use super::text;
use crate::StoreError;
use crate::audit::AuditEntry;
use crate::backup::files::{LineWriter, fresh_dir, write_private};
use crate::backup::{BackupError, Item, TableRef, Tables};
use crate::clock::Clock;
use crate::ids::TenantId;
use crate::ports::{AuditLog, TenantStore};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The attributes of an account that leave with it: never a token, a lease or an index key.
const ACCOUNT_FIELDS: &[&str] = &[
    "platform",
    "external_id",
    "display_name",
    "status",
    "created_at",
    "updated_at",
    "token_expires_at",
];
/// A post's internal bookkeeping, left out.
const POST_INTERNALS: &[&str] = &[
    "pk",
    "sk",
    "due_pk",
    "due_sk",
    "inflight_pk",
    "inflight_sk",
    "dispatch_token",
    "dispatch_lease",
    "dispatch_sent",
];

/// The operator's actions go to their log under this tenant id as well as to the tenant's.
pub const OPERATORS: &str = "operators";

/// Who acts (for the audit records) and with what.
pub struct Operator<'a> {
    pub tables: &'a dyn Tables,
    /// The main table.
    pub main: &'a TableRef,
    pub tenants: &'a dyn TenantStore,
    pub audit: &'a dyn AuditLog,
    pub clock: &'a dyn Clock,
    /// `cli:<user>`.
    pub actor: String,
    pub user_agent: Option<String>,
}

impl std::fmt::Debug for Operator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl Operator<'_> {
    /// One record in the tenant's log and the same in the operators'.
    pub async fn audit_both(
        &self,
        tenant: &TenantId,
        action: &str,
        new: Value,
    ) -> Result<(), StoreError> {
        for log in [tenant.clone(), TenantId(OPERATORS.into())] {
            let entry = AuditEntry {
                tenant_id: log,
                entity: format!("tenant:{tenant}"),
                action: action.into(),
                actor: self.actor.clone(),
                old: None,
                new: Some(new.clone()),
                ip: None,
                user_agent: self.user_agent.clone(),
                at: self.clock.now(),
            };
            self.audit.append(entry).await?;
        }
        Ok(())
    }

    /// Fails unless the tenant exists.
    pub async fn existing(&self, tenant: &TenantId) -> Result<(), BackupError> {
        match self.tenants.get_tenant(tenant).await? {
            Some(_) => Ok(()),
            None => Err(BackupError::Refused(format!("there is no tenant {tenant}"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportedTenant {
    pub tenant_id: String,
    /// Items by file: `posts.jsonl`, `accounts.jsonl`, `audit.jsonl`.
    pub files: BTreeMap<String, FileSummary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    pub items: u64,
    pub sha256: String,
}

pub async fn export(
    op: &Operator<'_>,
    tenant: &TenantId,
    dir: &Path,
) -> Result<ExportedTenant, BackupError> {
    op.existing(tenant).await?;
    fresh_dir(dir)?;
    let (mut posts, mut accounts) = (
        LineWriter::create(dir.join("posts.jsonl"))?,
        LineWriter::create(dir.join("accounts.jsonl"))?,
    );
    let partition = format!("TENANT#{tenant}");
    let mut start = None;
    loop {
        let page = op.tables.scan_page(&op.main.name, start).await?;
        for item in page
            .items
            .iter()
            .filter(|i| text(i, "pk") == Some(&partition))
        {
            let sk = text(item, "sk").unwrap_or_default();
            if let Some(id) = sk.strip_prefix("POST#") {
                posts.line(&plain_item(id, item, |n| !POST_INTERNALS.contains(&n)).to_string())?;
            } else if let Some(id) = sk.strip_prefix("ACCOUNT#") {
                accounts
                    .line(&plain_item(id, item, |n| ACCOUNT_FIELDS.contains(&n)).to_string())?;
            }
        }
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    let mut audit = LineWriter::create(dir.join("audit.jsonl"))?;
    let (mut records, _) = op.audit.export(tenant).await?;
    records.sort_by(|a, b| {
        (a.entry.at, &a.entry.entity, a.seq).cmp(&(b.entry.at, &b.entry.entity, b.seq))
    });
    for r in &records {
        audit.line(&serde_json::to_string(r).map_err(|e| BackupError::Refused(e.to_string()))?)?;
    }
    let mut files = BTreeMap::new();
    for (name, writer) in [
        ("posts.jsonl", posts),
        ("accounts.jsonl", accounts),
        ("audit.jsonl", audit),
    ] {
        let (items, sha256) = writer.finish()?;
        files.insert(name.to_owned(), FileSummary { items, sha256 });
    }
    let summary = ExportedTenant {
        tenant_id: tenant.to_string(),
        files,
    };
    let manifest =
        serde_json::to_string_pretty(&summary).map_err(|e| BackupError::Refused(e.to_string()))?;
    write_private(&dir.join("manifest.json"), &manifest)?;
    let counts: BTreeMap<_, _> = summary
        .files
        .iter()
        .map(|(n, f)| (n.clone(), f.items))
        .collect();
    op.audit_both(tenant, "tenant.exported", json!({ "files": counts }))
        .await?;
    Ok(summary)
}

/// An item as plain JSON (`{"S": "x"}` → `"x"`, numbers as numbers), its id first, only the
/// attributes `keep` lets through.
fn plain_item(id: &str, item: &Item, keep: impl Fn(&str) -> bool) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), Value::String(id.into()));
    for (name, value) in item.iter().filter(|(n, _)| keep(n)) {
        out.insert(name.clone(), plain(value));
    }
    Value::Object(out)
}

fn plain(typed: &Value) -> Value {
    let Some((tag, inner)) = typed.as_object().and_then(|o| o.iter().next()) else {
        return Value::Null;
    };
    let number = |v: &Value| {
        v.as_str()
            .and_then(|n| {
                n.parse::<i64>()
                    .ok()
                    .map(Value::from)
                    .or_else(|| n.parse::<f64>().ok().map(Value::from))
            })
            .unwrap_or_else(|| v.clone())
    };
    match tag.as_str() {
        "N" => number(inner),
        "NULL" => Value::Null,
        "NS" => Value::Array(inner.as_array().into_iter().flatten().map(number).collect()),
        "L" => Value::Array(inner.as_array().into_iter().flatten().map(plain).collect()),
        "M" => Value::Object(
            inner
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), plain(v)))
                .collect(),
        ),
        _ => inner.clone(),
    }
}
