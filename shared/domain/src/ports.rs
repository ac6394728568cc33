//! The ports: what the services need from storage and queues, in domain types only.
//! Adapters (DynamoDB, SQS, in-memory) implement them; each contract below is also checked by
//! the shared contract tests (`tests/` runs them against DynamoDB on the emulator).

use crate::error::StoreError;
use crate::ids::{AccountId, PostId, TenantId};
use crate::model::{Account, ApiKey, Post, Tenant, TenantSettings, VariantError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass back to continue. `None` when there is nothing more.
    pub cursor: Option<String>,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError>;
    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError>;
    async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts or refreshes; returns true when the account is new.
    async fn upsert_account(&self, account: &Account) -> Result<bool, StoreError>;
    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError>;
    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError>;
}

#[async_trait]
pub trait PostStore: Send + Sync {
    /// Fails with `Conflict` if the id exists.
    async fn insert_post(&self, post: &Post) -> Result<(), StoreError>;
    async fn get_post(&self, tenant: &TenantId, id: &PostId) -> Result<Option<Post>, StoreError>;
    /// Newest first.
    async fn list_posts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError>;
    /// Writes `post` (whose `version` is already the new one) only if the stored version is
    /// still `expected_version`; `Conflict` otherwise.
    async fn replace_post(&self, post: &Post, expected_version: u64) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PostRef {
    pub tenant_id: TenantId,
    pub post_id: PostId,
}

#[async_trait]
pub trait DispatchStore: Send + Sync {
    /// Posts whose due time is at or before `now`, oldest first, without scanning the table.
    async fn due_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError>;
    /// Takes a due post for dispatch in one conditional write: succeeds when it is `scheduled`
    /// and due, or `dispatched` with an unconfirmed dispatch whose lease ran out. Returns the
    /// post as written, or `None` when the condition failed (cancelled, edited, taken).
    async fn claim_for_dispatch(
        &self,
        post: &PostRef,
        now: OffsetDateTime,
        token: &str,
        lease_until: OffsetDateTime,
    ) -> Result<Option<Post>, StoreError>;
    /// Records that every message of dispatch `token` is on the queue, taking the post off the
    /// due index. A `Conflict` means the post moved on (edited, cancelled) and is harmless.
    async fn confirm_dispatch(&self, post: &PostRef, token: &str) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VariantRef {
    pub tenant_id: TenantId,
    pub post_id: PostId,
    pub account_id: AccountId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantOutcome {
    Published {
        platform_post_id: String,
        at: OffsetDateTime,
    },
    Failed(VariantError),
    Retrying(VariantError),
    DeadLettered(VariantError),
    Unknown(VariantError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRejected {
    /// The condition failed: a duplicate delivery, a cancelled or edited post, or another
    /// publisher holding the variant. Nothing to do.
    NotClaimable,
    Store(StoreError),
}

#[async_trait]
pub trait PublishStore: Send + Sync {
    /// One conditional write: the post is `dispatched` and the variant claimable. Bumps the
    /// variant's attempts, records `attempt_id`, and returns the post as written.
    async fn claim_for_publish(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        now: OffsetDateTime,
    ) -> Result<Post, ClaimRejected>;
    /// One conditional write, valid only while `attempt_id` still holds the variant.
    async fn record_outcome(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        outcome: &VariantOutcome,
    ) -> Result<(), StoreError>;
}

/// The message the dispatcher sends and the publisher receives. Keys only: the publisher
/// reads the current content when it claims, so an edit that commits first is what goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishMessage {
    pub tenant_id: TenantId,
    pub post_id: PostId,
    pub account_id: AccountId,
    pub correlation_id: String,
}

impl PublishMessage {
    pub fn variant(&self) -> VariantRef {
        VariantRef {
            tenant_id: self.tenant_id.clone(),
            post_id: self.post_id.clone(),
            account_id: self.account_id.clone(),
        }
    }
}

#[async_trait]
pub trait PublishQueue: Send + Sync {
    /// Sends every message; the result has one entry per message, in order, so a partial
    /// batch failure is never mistaken for success.
    async fn send(
        &self,
        messages: &[PublishMessage],
    ) -> Result<Vec<Result<(), String>>, StoreError>;
}
