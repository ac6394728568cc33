//! A tenant leaving: its data exported for it (`herald tenant export`), then erased
//! (`herald tenant erase`), the audit log kept as the law requires, with personal data removed.
//!
//! What belongs to a tenant is decided here, over items as the [`Tables`] port reads them:
//! its partition (`TENANT#<t>`: tenant, accounts and their sealed tokens, posts, media records,
//! crisis, streams, review items, snapshots, endpoints, dead letters), the items keyed by it
//! (`INGEST#<t>#…`, `WEBHOOKEP#<t>#…`, `RATE#<t>#…`), every item naming it in `tenant_id` (API
//! keys, the platform-post index, due snapshots, operators' dead letters about it), its keys'
//! API rate windows, its idempotency records (`<t>#…`) and its media objects
//! (`media/<t>/…`). Kept: the audit records (`AUDIT#<t>`) and their chain heads
//! (`TENANT#<t>`/`AUDITHEAD#…`), redacted ([`redact`]).

pub mod erase;
pub mod export;
pub mod redact;

use crate::StoreError;
use crate::audit::AuditRecord;
use crate::backup::Item;
use crate::ids::TenantId;
use async_trait::async_trait;

pub use erase::{ErasePlan, ErasedTenant, erase};
pub use export::{ExportedTenant, export};

/// Writes a redacted chain over the old one.
#[async_trait]
pub trait AuditRewrite: Send + Sync {
    /// Puts `records` (each under its existing key: same time, entity and sequence number)
    /// and moves the chain's head to the last of them.
    async fn replace_chain(
        &self,
        tenant: &TenantId,
        entity: &str,
        records: &[AuditRecord],
    ) -> Result<(), StoreError>;
}

/// The media bucket, by prefix.
#[async_trait]
pub trait MediaPurge: Send + Sync {
    /// Deletes every object under `prefix`; answers how many there were.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError>;
}

/// Where a tenant's media objects live.
pub fn media_prefix(tenant: &TenantId) -> String {
    format!("media/{tenant}/")
}

/// An attribute's string value (`{"S": …}`).
pub fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)?.get("S")?.as_str()
}

/// Whether a main-table item is the tenant's, to erase. Its chain heads and its tenant item
/// are not (the heads stay with the log; the tenant item goes last, see [`erase`]).
pub fn erasable(tenant: &TenantId, item: &Item) -> bool {
    let (pk, sk) = (
        text(item, "pk").unwrap_or(""),
        text(item, "sk").unwrap_or(""),
    );
    if pk == format!("TENANT#{tenant}") {
        return !sk.starts_with("AUDITHEAD#") && sk != "TENANT";
    }
    let keyed = ["INGEST#", "WEBHOOKEP#", "RATE#"]
        .iter()
        .any(|p| pk.starts_with(&format!("{p}{tenant}#")));
    keyed || text(item, "tenant_id") == Some(tenant.as_str())
}

/// The key id of an API rate window (`RATE#apikey#<key id>#<class>`).
pub fn rate_window_key_id(item: &Item) -> Option<&str> {
    text(item, "pk")?
        .strip_prefix("RATE#apikey#")?
        .split('#')
        .next()
}

/// Only the key attributes of an item, to delete it by.
pub fn key_of(item: &Item) -> Item {
    item.iter()
        .filter(|(name, _)| *name == "pk" || *name == "sk")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}
