//! Tenants and their API keys.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{ApiKeyId, TenantId};
use crate::model::{ApiKey, KeyChange, KeyState, Role, Suspension, Tenant, TenantSettings};
use crate::ports::TenantStore;
use crate::secrets::secret::{api_key_hash, random_hex};
use secrecy::SecretString;
use time::{Duration, OffsetDateTime};

/// Prefix of every key Herald issues, so a leaked key is recognisable (secret scanners).
pub const KEY_PREFIX: &str = "hrld_";

/// How long a used key's `last_used_at` is left alone: one write an hour per key at most.
pub const LAST_USED_GRANULARITY: Duration = Duration::hours(1);
/// The longest overlap a rotation leaves the old key (7 days), and the default (24 hours).
pub const MAX_ROTATION_OVERLAP: Duration = Duration::days(7);
pub const DEFAULT_ROTATION_OVERLAP: Duration = Duration::hours(24);
/// How far ahead a key's expiry may be set.
pub const MAX_KEY_LIFETIME: Duration = Duration::days(730);

/// `hrld_1a2b…9f3c`: enough to tell keys apart in a list, far too little to guess one.
fn hint(secret: &str) -> String {
    let head: String = secret.chars().take(KEY_PREFIX.len() + 4).collect();
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail}")
}

/// Creates a key for `tenant`; the secret is returned once and only its hash is stored.
pub async fn issue_api_key(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    role: Role,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> Result<(ApiKey, SecretString), StoreError> {
    let secret = format!("{KEY_PREFIX}{}", random_hex(32));
    let key = ApiKey {
        id: ApiKeyId::generate(),
        tenant_id: tenant.clone(),
        role,
        name: name.to_owned(),
        hash: api_key_hash(&secret),
        created_at: clock.now(),
        hint: hint(&secret),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
    };
    store.put_api_key(&key).await?;
    Ok((key, SecretString::from(secret)))
}

/// Why a presented key does not let its holder in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the API key is not valid")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
    #[error("the API key has expired")]
    Expired,
    #[error("the tenant is suspended: {0}")]
    Suspended(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The key behind a presented secret, if it lets its holder in now: known, not revoked, not
/// expired, its tenant not suspended. Two reads (the key by its hash, the tenant), and at
/// most once an hour a conditional write of `last_used_at`. Nothing is cached, so a
/// revocation or a suspension holds from the next request on, on every instance.
pub async fn authenticate(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    secret: &str,
) -> Result<ApiKey, Refused> {
    authenticate_hash(store, clock, &api_key_hash(secret)).await
}

/// [`authenticate`] for a key known by its hash: a console session holds the hash of the key
/// it was opened with, never the key, and checks it again on every request.
pub async fn authenticate_hash(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    hash: &str,
) -> Result<ApiKey, Refused> {
    let key = store.find_api_key(hash).await?.ok_or(Refused::Unknown)?;
    let now = clock.now();
    match key.state(now) {
        KeyState::Active => {}
        KeyState::Revoked => return Err(Refused::Revoked),
        KeyState::Expired => return Err(Refused::Expired),
    }
    let tenant = store
        .get_tenant(&key.tenant_id)
        .await?
        .ok_or(Refused::Unknown)?;
    if let Some(s) = tenant.suspended {
        return Err(Refused::Suspended(s.reason));
    }
    let since = now - LAST_USED_GRANULARITY;
    if key.last_used_at.is_none_or(|t| t < since)
        && let Err(e) = store.touch_api_key(hash, now, since).await
    {
        tracing::warn!(error = %e, "could not record a key's last use");
    }
    Ok(key)
}

/// Revokes the tenant's key `id` (refused from the next request on); `None`: no such key.
/// Revoking a revoked key keeps its first revocation time.
pub async fn revoke_api_key(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    let Some(key) = find_key(store, tenant, id).await? else {
        return Ok(None);
    };
    if key.revoked_at.is_some() {
        return Ok(Some(key));
    }
    let change = KeyChange {
        revoked_at: Some(clock.now()),
        ..KeyChange::default()
    };
    store.change_api_key(tenant, id, &change).await
}

async fn find_key(
    store: &dyn TenantStore,
    tenant: &TenantId,
    id: &ApiKeyId,
) -> Result<Option<ApiKey>, StoreError> {
    Ok(store
        .list_api_keys(tenant)
        .await?
        .into_iter()
        .find(|k| &k.id == id))
}

/// What a rotation made: the new key (its secret shown once) and the old one, which now
/// expires at the end of the overlap.
#[derive(Debug)]
pub struct Rotated {
    pub new: ApiKey,
    pub secret: SecretString,
    pub old: ApiKey,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotateError {
    #[error("no such key")]
    NotFound,
    #[error("the key is {0} and cannot be rotated")]
    NotActive(&'static str),
    #[error("the key was already rotated to {0}; rotate that one")]
    AlreadyRotated(ApiKeyId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rotates the tenant's key `id`: a new key with the same name, role and expiry, and the old
/// one valid for `overlap` more (or until its own expiry, if sooner).
pub async fn rotate_api_key(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    id: &ApiKeyId,
    overlap: Duration,
) -> Result<Rotated, RotateError> {
    let listed = find_key(store, tenant, id)
        .await?
        .ok_or(RotateError::NotFound)?;
    // The index may lag a revocation: judge the key as its own item says, read consistently.
    let old = store
        .find_api_key(&listed.hash)
        .await?
        .filter(|k| &k.tenant_id == tenant)
        .ok_or(RotateError::NotFound)?;
    let now = clock.now();
    match old.state(now) {
        KeyState::Active => {}
        other => return Err(RotateError::NotActive(other.as_str())),
    }
    if let Some(successor) = old.rotated_to {
        return Err(RotateError::AlreadyRotated(successor));
    }
    let (new, secret) =
        issue_api_key(store, clock, tenant, old.role, &old.name, old.expires_at).await?;
    let ends = old
        .expires_at
        .map_or(now + overlap, |at| at.min(now + overlap));
    let change = KeyChange {
        expires_at: Some(ends),
        rotated_to: Some(new.id.clone()),
        ..KeyChange::default()
    };
    if let Some(old) = store.change_api_key(tenant, id, &change).await? {
        return Ok(Rotated { new, secret, old });
    }
    // Another rotation of the same key won the race (or the key is gone): the key issued here
    // never reaches anyone; it is revoked at once.
    let revoke = KeyChange {
        revoked_at: Some(now),
        ..KeyChange::default()
    };
    store.change_api_key(tenant, &new.id, &revoke).await?;
    match store.find_api_key(&listed.hash).await? {
        Some(k) if &k.tenant_id == tenant => Err(k
            .rotated_to
            .map_or(RotateError::NotFound, RotateError::AlreadyRotated)),
        _ => Err(RotateError::NotFound),
    }
}

/// Suspends (`reason`) or resumes (`None`) a tenant; false when there is no such tenant.
pub async fn set_suspension(
    store: &dyn TenantStore,
    clock: &dyn Clock,
    tenant: &TenantId,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let suspension = reason.map(|r| Suspension {
        at: clock.now(),
        reason: r.to_owned(),
    });
    store.set_suspension(tenant, suspension.as_ref()).await
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
        settings: TenantSettings {
            require_approval,
            ..TenantSettings::default()
        },
        created_at: clock.now(),
        suspended: None,
    };
    store.create_tenant(&tenant).await?;
    let (key, secret) = issue_api_key(
        store,
        clock,
        &tenant.id,
        Role::Admin,
        "bootstrap admin",
        None,
    )
    .await?;
    Ok((tenant, key, secret))
}
