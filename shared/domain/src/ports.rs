//! The ports: what the services need from storage and queues, in domain types only.
//! Adapters (DynamoDB, SQS, in-memory) implement them; each contract below is also checked by
//! the shared contract tests (`tests/` runs them against DynamoDB on the emulator).

use crate::audit::{AuditEntry, AuditRecord, ChainHead};
use crate::error::StoreError;
use crate::ids::{AccountId, ApiKeyId, MediaId, PostId, TenantId};
use crate::media::{
    Inspection, MediaContent, MediaRecord, MediaUsage, PresignedUpload, StoredObject,
};
use crate::model::{
    Account, ApiKey, KeyChange, Platform, Post, Suspension, Tenant, TenantSettings, VariantError,
};
use crate::publishing::gates::{Breaker, BreakerPolicy, Crisis, WindowSlot};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Opaque; pass back to continue. `None` when there is nothing more.
    pub cursor: Option<String>,
}

impl<T> Page<T> {
    /// The same page with each item read through `f`; the first error ends it.
    pub fn try_map<U, E>(self, f: impl FnMut(&T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.iter().map(f).collect::<Result<_, _>>()?,
            cursor: self.cursor,
        })
    }
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
    /// The tenant's keys, newest first (one query of the tenant's key index).
    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError>;
    /// Sets what `change` names on the tenant's key `id`; the key as it is after, `None` when
    /// the tenant has no such key.
    async fn change_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        change: &KeyChange,
    ) -> Result<Option<ApiKey>, StoreError>;
    /// Records a use of the key at `at` unless one after `since` is recorded (one conditional
    /// write, which loses quietly to a concurrent one).
    async fn touch_api_key(
        &self,
        hash: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Suspends the tenant (`Some`) or resumes it (`None`); false when there is no such tenant.
    async fn set_suspension(
        &self,
        tenant: &TenantId,
        suspension: Option<&Suspension>,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Inserts or refreshes; returns true when the account is new. Refreshing keeps the
    /// stored refresh token when `account.refresh_token` is `None`, and the breaker always.
    /// Adapters store tokens sealed (`token_crypto`), never in plaintext.
    async fn upsert_account(&self, account: &Account) -> Result<bool, StoreError>;
    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError>;
    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError>;
    /// Removes the account and its token; returns what was removed (`None`: there was none).
    /// Posts still aimed at it fail when a publisher takes them, saying it was disconnected.
    async fn delete_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError>;
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
    /// The calendar: posts scheduled in `[from, to)`, earliest first (ties by id), through an
    /// index, never a scan. The cursor is the [`calendar_position`] of the last post returned.
    async fn posts_between(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Post>, StoreError>;
}

/// Posting slots (`publishing::slots`): the tenant's rules, and holds on one account's slot.
#[async_trait]
pub trait SlotStore: Send + Sync {
    async fn posting_slots(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<crate::model::PostingSlots>, StoreError>;
    async fn put_posting_slots(
        &self,
        tenant: &TenantId,
        slots: &crate::model::PostingSlots,
    ) -> Result<(), StoreError>;
    /// Holds `account`'s slot at `at` for `post` if nobody holds it (or `post` already does;
    /// with `replacing`, only if that post holds it): `None`. Otherwise the post holding it.
    async fn hold_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
        replacing: Option<&PostId>,
    ) -> Result<Option<PostId>, StoreError>;
    /// Lets go of a hold `post` has (nothing if another post holds the slot).
    async fn release_slot(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        post: &PostId,
    ) -> Result<(), StoreError>;
}

/// A post's place in the calendar (`<epoch ms, 13 digits>#<post id>`): it sorts as the
/// calendar does, and a page's cursor is the position of its last post.
pub fn calendar_position(scheduled_at: OffsetDateTime, post: &PostId) -> String {
    let ms = crate::clock::epoch_millis(scheduled_at);
    format!("{:013}#{}", ms.max(0), post.0)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// Step `step` is live with this id (step 0: the post itself, whose id and time the
    /// variant keeps; later steps: a follow-up, appended to `follow_up_ids`). `more`: the
    /// variant goes on `continuing` at the next step, else it is `published`.
    Published {
        platform_post_id: String,
        at: OffsetDateTime,
        step: u32,
        more: bool,
    },
    Failed(VariantError),
    Retrying(VariantError),
    DeadLettered(VariantError),
    Unknown(VariantError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRejected {
    /// The variant is not claimable: a duplicate delivery of a settled variant, or a
    /// cancelled post. Nothing to do.
    NotClaimable,
    /// Another attempt holds the variant (`publishing`) until its lease ends: this delivery
    /// is a duplicate that must not be dropped yet, since the holder may still need it.
    Held {
        until: OffsetDateTime,
    },
    /// The tenant paused publishing to this platform; the pause ends then.
    Paused {
        until: OffsetDateTime,
    },
    /// The account's rate window is full until then.
    RateLimited {
        until: OffsetDateTime,
    },
    /// The account's breaker did not admit the claim; it is as returned.
    Breaker(Breaker),
    /// Another writer touched the same records at the same moment; try again shortly.
    Contended,
    Store(StoreError),
}

/// What a publish claim must respect, enforced in the same atomic write as the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimGate {
    pub platform: Platform,
    pub now: OffsetDateTime,
    /// The account's rate window; the claim counts one call in it (`None`: no limit).
    pub account_window: Option<WindowSlot>,
    pub breaker: BreakerGate,
    /// Until when the claim holds the variant; past it the reconciler looks at the post.
    pub lease_until: OffsetDateTime,
    /// Whether the claim adds one to the variant's attempts (the reconciler gives up after
    /// too many); a resumable upload's continuation does not.
    pub counts_attempt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerGate {
    /// The breaker must be closed and the account not blocked by the platform.
    Closed,
    /// Take the half-open probe (the breaker was seen open past its reset), holding it until then.
    Probe { lease_until: OffsetDateTime },
}

/// What a published outcome does to the account's breaker, in the same atomic write as the
/// outcome, so a success always forgets the failures committed before it (reading the
/// breaker first and resetting it later would miss a failure committed in between).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerReset {
    /// Forget past failures, if the circuit is closed (one opened meanwhile stays open).
    IfClosed,
    /// This attempt held the half-open probe: close the circuit, if it is still half-open.
    Probe,
}

/// How a publish attempt changes the account's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerChange {
    /// One more consecutive failure; opens the circuit at the policy's threshold, or at once
    /// after a failed probe.
    Failure {
        policy: BreakerPolicy,
        now: OffsetDateTime,
    },
    /// The platform said this account has no calls left until then.
    BlockUntil(OffsetDateTime),
}

#[async_trait]
pub trait PublishStore: Send + Sync {
    /// One atomic write: the post is `dispatched`, the variant claimable, the tenant's pause
    /// does not cover `gate.platform`, the account's rate window has room (and counts this
    /// call), and its breaker admits the claim. Bumps the variant's attempts and records
    /// `attempt_id`. On failure, says which gate held it (a claim that is not claimable wins).
    async fn claim_for_publish(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        gate: &ClaimGate,
    ) -> Result<(), ClaimRejected>;
    /// The claimed post, its account (`None` once disconnected) and the head of the variant's
    /// audit chain, in one strongly consistent read.
    async fn load_for_publish(&self, variant: &VariantRef) -> Result<Loaded, StoreError>;
    /// One atomic write, valid only while `attempt_id` still holds the variant: the outcome,
    /// and `audit` appended to the variant's audit chain (it must follow the chain's head).
    /// `lookup` marks that the platform may hold the post: the next attempt looks it up first.
    /// `reset` is applied to the account's breaker in the same write when its condition holds;
    /// when it does not (or the account is gone), the outcome is recorded without it.
    async fn record_outcome(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        outcome: &VariantOutcome,
        lookup: bool,
        audit: &AuditRecord,
        reset: Option<BreakerReset>,
    ) -> Result<(), StoreError>;
    /// Keeps a platform client's progress on the variant's current step (`Variant::progress`),
    /// only while `attempt_id` still holds the variant (`Conflict` otherwise). Publishing the
    /// step clears it.
    async fn keep_progress(
        &self,
        variant: &VariantRef,
        attempt_id: &str,
        value: &str,
    ) -> Result<(), StoreError>;
    /// Applies `change` to the account's breaker and returns it as stored.
    async fn update_breaker(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        change: BreakerChange,
    ) -> Result<Breaker, StoreError>;
    /// The token was refused: the account must be reconnected.
    async fn mark_needs_reauth(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// What a publisher reads after its claim.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub post: Post,
    pub account: Option<Account>,
    /// Where the variant's audit chain (`variant_entity`) stands.
    pub audit_head: ChainHead,
}

/// The audit entity of one post variant: its publish attempts form one chain.
pub fn variant_entity(variant: &VariantRef) -> String {
    format!("variant:{}:{}", variant.post_id, variant.account_id)
}

/// Calls left in a platform app's window for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub granted: u32,
    /// When more may be asked for, if fewer were granted than wanted.
    pub retry_at: Option<OffsetDateTime>,
}

/// Herald's per-app budget on each platform, shared by every instance. Reserved per batch,
/// so a busy platform costs one write per batch rather than one per post.
#[async_trait]
pub trait AppLimiter: Send + Sync {
    /// Takes up to `wanted` calls from `slot` (none while the app is blocked).
    async fn reserve(
        &self,
        slot: &WindowSlot,
        wanted: u32,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError>;
    /// Holds every call to the platform back until then (the platform's usage signal).
    async fn block_app(&self, platform: Platform, until: OffsetDateTime) -> Result<(), StoreError>;
}

#[async_trait]
pub trait CrisisStore: Send + Sync {
    /// The tenant's pause, if one is stored (it may have expired: check `is_active`).
    async fn get_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError>;
    /// Starts or replaces the pause. Once this returns, no publish claim for a paused
    /// platform commits.
    async fn put_crisis(&self, crisis: &Crisis) -> Result<(), StoreError>;
    /// Lifts the pause, returning what it was.
    async fn delete_crisis(&self, tenant: &TenantId) -> Result<Option<Crisis>, StoreError>;
}

/// The message the dispatcher sends and the publisher receives. Keys only: the publisher
/// reads the current content when it claims, so an edit that commits first is what goes out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishMessage {
    pub tenant_id: TenantId,
    pub post_id: PostId,
    pub account_id: AccountId,
    pub platform: Platform,
    pub correlation_id: String,
    /// Failed deliveries of earlier copies of this message. A deferral (rate limit, open
    /// circuit, pause) sends a fresh copy, so SQS's receive count restarts; this carries the
    /// real failures over, so only they count toward the dead-letter queue.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: u32,
    /// A copy carrying a resumable upload on (its step was claimed and counted already): its
    /// claim takes no slot in the rate windows or the app's budget and counts no attempt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continues_upload: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
    /// Sends a fresh copy that becomes visible after `delay` (at most SQS's 15 minutes).
    async fn send_delayed(
        &self,
        message: &PublishMessage,
        delay: std::time::Duration,
    ) -> Result<(), StoreError>;
    /// Moves a copy to the dead-letter queue, with the reason a person reads there.
    async fn dead_letter(&self, message: &PublishMessage, reason: &str) -> Result<(), StoreError>;
}

/// Posts with a variant a publisher claimed, by when the claim's lease ends.
#[async_trait]
pub trait ReconcileStore: Send + Sync {
    /// In-flight posts whose check time is at or before `now`, oldest first, without a scan.
    async fn inflight_posts(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<PostRef>, StoreError>;
    /// Sets the post's next check time, or takes it off the in-flight list (`None`), only if
    /// the post is still at `expected_version` (a claim since then keeps its own entry).
    async fn reschedule_inflight(
        &self,
        post: &PostRef,
        next: Option<OffsetDateTime>,
        expected_version: u64,
    ) -> Result<(), StoreError>;
}

/// Liveness records of scheduled functions, read by the health check.
#[async_trait]
pub trait HeartbeatStore: Send + Sync {
    async fn beat(&self, name: &str, at: OffsetDateTime, summary: &str) -> Result<(), StoreError>;
    /// When `name` last beat, and what it said.
    async fn last_beat(&self, name: &str) -> Result<Option<(OffsetDateTime, String)>, StoreError>;
}

/// Which audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl AuditFilter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        let e = &r.entry;
        self.entity.as_ref().is_none_or(|x| *x == e.entity)
            && self.actor.as_ref().is_none_or(|x| *x == e.actor)
            && self.action.as_ref().is_none_or(|x| *x == e.action)
            && self.from.is_none_or(|t| e.at >= t)
            && self.to.is_none_or(|t| e.at < t)
    }
}

/// The append-only audit log (see `crate::audit`).
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Where an entity's chain stands.
    async fn head(&self, tenant: &TenantId, entity: &str) -> Result<ChainHead, StoreError>;
    /// Appends to the entity's chain: reads its head, then writes the record and the new head
    /// in one atomic write (again, if another append won the race).
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError>;
    /// Newest first.
    async fn list(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError>;
    /// Every record and chain head of a tenant, for `audit::verify`.
    async fn export(
        &self,
        tenant: &TenantId,
    ) -> Result<(Vec<AuditRecord>, BTreeMap<String, ChainHead>), StoreError>;
}

/// How many messages wait in the publish queue and its dead-letter queue.
#[async_trait]
pub trait QueueStats: Send + Sync {
    /// (publish queue: visible and delayed, dead-letter queue: visible).
    async fn depths(&self) -> Result<(u64, u64), StoreError>;
}

/// Media records (in the main table, beside the tenant's posts).
#[async_trait]
pub trait MediaRecords: Send + Sync {
    /// The tenant's media usage (empty, version 0, if it never created media).
    async fn media_usage(&self, tenant: &TenantId) -> Result<MediaUsage, StoreError>;
    /// Inserts the record and replaces the tenant's usage with `usage` in one atomic step.
    /// Fails with `Conflict` if the id exists or the usage is no longer at
    /// `usage.version - 1` (another media was created meanwhile: read it again).
    async fn insert_media(&self, media: &MediaRecord, usage: &MediaUsage)
    -> Result<(), StoreError>;
    /// The tenant's records among `ids` (in no particular order); ids it does not have are
    /// simply absent.
    async fn get_media(
        &self,
        tenant: &TenantId,
        ids: &[MediaId],
    ) -> Result<Vec<MediaRecord>, StoreError>;
    /// Records what the upload turned out to be.
    async fn record_inspection(
        &self,
        tenant: &TenantId,
        id: &MediaId,
        inspection: &Inspection,
    ) -> Result<(), StoreError>;
}

/// The media bucket: clients upload straight to it through presigned URLs; Herald only looks.
#[async_trait]
pub trait MediaObjects: Send + Sync {
    /// A URL that accepts exactly one object of `content_type` and `size` bytes at `key`,
    /// until `now + expires_in`. Signing is local: no call to storage.
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<PresignedUpload, StoreError>;
    /// A URL that reads the object at `key` until `now + expires_in`, for a platform that
    /// fetches media itself. Signing is local: no call to storage.
    async fn presign_download(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<String, StoreError>;
    /// The object's size and version, or `None` when nothing is stored there.
    async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError>;
    /// `len` bytes of the object from byte `from` (fewer at its end), only if it is still
    /// version `etag` (`Conflict` when it changed, `None` when it is gone).
    async fn read_range(
        &self,
        key: &str,
        etag: &str,
        from: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// The whole object as a stream, only if it is still version `etag` (`Conflict` when it
    /// changed, `None` when it is gone).
    async fn open(&self, key: &str, etag: &str) -> Result<Option<MediaContent>, StoreError>;
}
