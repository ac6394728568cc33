//! Tenants and their API keys.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKey, Role, Tenant, TenantSettings};
use crate::ports::TenantStore;
use crate::secrets::secret::{api_key_hash, random_hex};
use secrecy::SecretString;

/// Prefix of every key Herald issues, so a leaked key is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "hrld_";

/// Creates a key for `tenant`; the secret is returned once and only its hash is stored.
pub async fn issue_api_key(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    role: Role,
    name: &str,
) -> Result<(ApiKey, SecretString), StoreError> {
    let secret = format!("{KEY_PREFIX}{}", random_hex(32));
    let key = ApiKey {
        id: ApiKeyId::generate(),
        tenant_id: tenant.clone(),
        role,
        name: name.to_owned(),
        hash: api_key_hash(&secret),
        created_at: clock.now(),
    };
    store.put_api_key(&key).await?;
    Ok((key, SecretString::from(secret)))
}

/// Creates a tenant with one admin key.
pub async fn create_tenant(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    name: &str,
    require_approval: bool,
) -> Result<(Tenant, ApiKey, SecretString), StoreError> {
    let tenant = Tenant {
        id: TenantId::generate(),
        name: name.to_owned(),
        settings: TenantSettings { require_approval },
        created_at: clock.now(),
    };
    store.create_tenant(&tenant).await?;
    let (key, secret) =
        issue_api_key(store, clock, &tenant.id, Role::Admin, "bootstrap admin").await?;
    Ok((tenant, key, secret))
}
