//! `herald api-key`: a tenant's keys, issued, listed, revoked and rotated, each action audited.

use crate::{ApiKeyCommand, audit_cli};
use herald_aws::dynamo::DynamoStore;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::ids::{ApiKeyId, TenantId};
use herald_domain::model::{ApiKey, Role};
use herald_domain::ports::TenantStore;
use herald_domain::tenants;
use secrecy::ExposeSecret;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn key_line(k: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "key_id": k.id.as_str(),
        "name": k.name,
        "role": k.role.as_str(),
        "hint": k.hint,
        "status": k.state(SystemClock.now()).as_str(),
        "created_at": k.created_at.format(&Rfc3339).ok(),
        "expires_at": k.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        "revoked_at": k.revoked_at.and_then(|t| t.format(&Rfc3339).ok()),
        "last_used_at": k.last_used_at.and_then(|t| t.format(&Rfc3339).ok()),
    })
}

pub async fn api_keys(
    store: &DynamoStore,
    command: ApiKeyCommand,
) -> Result<Vec<serde_json::Value>, String> {
    let e = |e: herald_domain::StoreError| e.to_string();
    match command {
        ApiKeyCommand::Create {
            tenant,
            role,
            name,
            expires_at,
        } => {
            let role = Role::parse(&role).unwrap_or(Role::Viewer);
            let expires_at = expires_at
                .map(|t| OffsetDateTime::parse(&t, &Rfc3339))
                .transpose()
                .map_err(|_| "--expires-at must be an RFC 3339 time".to_owned())?;
            let tenant = TenantId(tenant);
            let (key, secret) =
                tenants::issue_api_key(store, &SystemClock, &tenant, role, &name, expires_at)
                    .await
                    .map_err(e)?;
            audit_cli(
                store,
                &tenant,
                format!("api_key:{}", key.id),
                "api_key.issued",
                serde_json::json!({"role": role.as_str(), "name": key.name}),
            )
            .await?;
            Ok(vec![serde_json::json!({
                "key_id": key.id.as_str(),
                "api_key": secret.expose_secret(),
                "role": key.role.as_str(),
            })])
        }
        ApiKeyCommand::List { tenant } => Ok(store
            .list_api_keys(&TenantId(tenant))
            .await
            .map_err(e)?
            .iter()
            .map(key_line)
            .collect()),
        ApiKeyCommand::Revoke { tenant, key_id } => {
            let tenant = TenantId(tenant);
            let id = ApiKeyId(key_id);
            let key = tenants::revoke_api_key(store, &SystemClock, &tenant, &id)
                .await
                .map_err(e)?
                .ok_or_else(|| format!("tenant {tenant} has no key {id}"))?;
            audit_cli(
                store,
                &tenant,
                format!("api_key:{id}"),
                "api_key.revoked",
                serde_json::json!({"revoked_at": key.revoked_at.and_then(|t| t.format(&Rfc3339).ok())}),
            )
            .await?;
            Ok(vec![key_line(&key)])
        }
        ApiKeyCommand::Rotate {
            tenant,
            key_id,
            overlap_seconds,
        } => {
            if !(0..=tenants::MAX_ROTATION_OVERLAP.whole_seconds()).contains(&overlap_seconds) {
                return Err("--overlap-seconds must be 0 to 604800".into());
            }
            let tenant = TenantId(tenant);
            let id = ApiKeyId(key_id);
            let rotated = tenants::rotate_api_key(
                store,
                &SystemClock,
                &tenant,
                &id,
                time::Duration::seconds(overlap_seconds),
            )
            .await
            .map_err(|e| e.to_string())?;
            audit_cli(
                store,
                &tenant,
                format!("api_key:{id}"),
                "api_key.rotated",
                serde_json::json!({"replaced_by": rotated.new.id.as_str()}),
            )
            .await?;
            Ok(vec![serde_json::json!({
                "key_id": rotated.new.id.as_str(),
                "api_key": rotated.secret.expose_secret(),
                "role": rotated.new.role.as_str(),
                "previous": key_line(&rotated.old),
            })])
        }
        ApiKeyCommand::Reindex => store
            .backfill_keys_index()
            .await
            .map(|n| vec![serde_json::json!({ "reindexed": n })])
            .map_err(e),
    }
}
