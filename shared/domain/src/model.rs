//! The records Herald keeps and the states they move through.

/// Defined with the ids (the ground floor); named here too, where it always was.
pub use crate::ids::Platform;
use crate::ids::{AccountId, ApiKeyId, PostId, TenantId};
use crate::media::Attachment;
use crate::publishing::gates::Breaker;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including tenant settings and API keys.
    Admin,
    /// Connects accounts and writes posts.
    Editor,
    /// Reads everything and approves or rejects posts.
    Approver,
    /// Reads only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Role::Admin, Role::Editor, Role::Approver, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn can_write_posts(self) -> bool {
        matches!(self, Role::Admin | Role::Editor)
    }

    pub fn can_approve(self) -> bool {
        matches!(self, Role::Admin | Role::Approver)
    }

    pub fn is_admin(self) -> bool {
        self == Role::Admin
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantSettings {
    /// Posts wait in `pending_approval` until someone allowed to approve says so.
    pub require_approval: bool,
    /// A post may not be approved with the key that created it (four eyes).
    #[serde(default)]
    pub forbid_self_approval: bool,
    /// The IANA zone wall-clock times are read in (a post's `scheduled_local` without its own
    /// `time_zone`); `None`: UTC. Checked against the tz database when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// The answer to HELP or INFO texted to the tenant's SMS sender; `None`: a default naming
    /// the tenant and how to stop ([`TenantSettings::MAX_SMS_HELP_TEXT`] characters at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_help_text: Option<String>,
    /// `wallet.low_balance` is announced when a change takes the balance below this; `None`:
    /// never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_balance_credits: Option<i64>,
}

impl TenantSettings {
    pub const MAX_SMS_HELP_TEXT: usize = 320;

    pub fn zone(&self) -> crate::zone::TimeZoneName {
        self.time_zone
            .as_deref()
            .and_then(|z| crate::zone::TimeZoneName::parse(z).ok())
            .unwrap_or_else(crate::zone::TimeZoneName::utc)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub settings: TenantSettings,
    pub created_at: OffsetDateTime,
    /// Set by the operator: every key of the tenant is refused while it is.
    pub suspended: Option<Suspension>,
}

/// Why and since when a tenant is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspension {
    pub at: OffsetDateTime,
    pub reason: String,
}

/// An API key as stored: only the hash of the secret, never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub role: Role,
    pub name: String,
    pub hash: String,
    pub created_at: OffsetDateTime,
    /// How the key starts and ends (`hrld_1a2b…9f3c`), to recognise it in a list; empty for
    /// keys issued before hints were kept.
    pub hint: String,
    /// After this the key is refused (absent: it does not expire).
    pub expires_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    /// Updated at most once an hour.
    pub last_used_at: Option<OffsetDateTime>,
    /// The key that replaced it, once it was rotated (a key is rotated once).
    pub rotated_to: Option<ApiKeyId>,
}

/// What [`crate::ports::TenantStore::change_api_key`] sets; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyChange {
    pub revoked_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
    /// Marks the key rotated to this one; the change is made only if it was not rotated yet.
    pub rotated_to: Option<ApiKeyId>,
}

/// Whether a key lets its holder in at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Active,
    Expired,
    Revoked,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

impl ApiKey {
    pub fn state(&self, now: OffsetDateTime) -> KeyState {
        if self.revoked_at.is_some_and(|at| at <= now) {
            KeyState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyState::Expired
        } else {
            KeyState::Active
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    Active,
    NeedsReauth,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::NeedsReauth => "needs_reauth",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(AccountStatus::Active),
            "needs_reauth" => Some(AccountStatus::NeedsReauth),
            _ => None,
        }
    }
}

/// A connected platform account. The token is a [`SecretString`]: it has no `Debug` output
/// and cannot be serialized by accident.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub tenant_id: TenantId,
    pub platform: Platform,
    pub external_id: String,
    pub display_name: Option<String>,
    pub access_token: SecretString,
    /// The OAuth refresh token, when the platform issued one. Connecting the account again
    /// without one keeps the stored one (see `AccountStore::upsert_account`).
    pub refresh_token: Option<SecretString>,
    /// When the access token stops working (`None`: it does not expire, e.g. a Facebook
    /// Page token).
    pub token_expires_at: Option<OffsetDateTime>,
    pub status: AccountStatus,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The account's circuit breaker and the platform's "stop until" signal. Connecting the
    /// account again never resets it: only the platform's answers do.
    pub breaker: Breaker,
}

impl Account {
    /// One account per (platform, external id) and tenant: connecting it again refreshes it.
    pub fn id_for(platform: Platform, external_id: &str) -> AccountId {
        let digest = crate::secrets::secret::sha256_hex(&[
            platform.as_str().as_bytes(),
            external_id.as_bytes(),
        ]);
        AccountId(format!("acc_{}", &digest[..24]))
    }
}

/// A post's lifecycle as the API drives it. What happens per platform is in [`VariantStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostStatus {
    /// Kept, never dispatched, until it is scheduled (`POST /v1/posts/{id}/schedule`).
    Draft,
    PendingApproval,
    Scheduled,
    /// Handed to the publish queue; the variants carry the outcome.
    Dispatched,
    Rejected,
    Cancelled,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::PendingApproval => "pending_approval",
            PostStatus::Scheduled => "scheduled",
            PostStatus::Dispatched => "dispatched",
            PostStatus::Rejected => "rejected",
            PostStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            PostStatus::Draft,
            PostStatus::PendingApproval,
            PostStatus::Scheduled,
            PostStatus::Dispatched,
            PostStatus::Rejected,
            PostStatus::Cancelled,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    /// Not yet taken by a publisher.
    Pending,
    /// A publisher holds it and may be talking to the platform.
    Publishing,
    Published,
    /// A transient failure; the message will be delivered again.
    Retrying,
    /// Transient failures used every delivery; the message is in the DLQ and can be requeued.
    DeadLettered,
    /// The platform refused it for good; `last_error` says why.
    Failed,
    /// The request may or may not have reached the platform; it must be looked up, never
    /// blindly retried.
    Unknown,
    Cancelled,
    /// The post is live and its next step (a thread part or the first comment, `step`) waits
    /// for a publisher.
    Continuing,
}

impl VariantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantStatus::Pending => "pending",
            VariantStatus::Publishing => "publishing",
            VariantStatus::Published => "published",
            VariantStatus::Retrying => "retrying",
            VariantStatus::DeadLettered => "dead_lettered",
            VariantStatus::Failed => "failed",
            VariantStatus::Unknown => "unknown",
            VariantStatus::Cancelled => "cancelled",
            VariantStatus::Continuing => "continuing",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            VariantStatus::Pending,
            VariantStatus::Publishing,
            VariantStatus::Published,
            VariantStatus::Retrying,
            VariantStatus::DeadLettered,
            VariantStatus::Failed,
            VariantStatus::Unknown,
            VariantStatus::Cancelled,
            VariantStatus::Continuing,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// States from which a publisher may take the variant. An `unknown` one is taken to be
    /// looked up on the platform before anything is sent.
    pub const CLAIMABLE: [VariantStatus; 5] = [
        VariantStatus::Pending,
        VariantStatus::Retrying,
        VariantStatus::DeadLettered,
        VariantStatus::Unknown,
        VariantStatus::Continuing,
    ];

    pub fn is_claimable(self) -> bool {
        Self::CLAIMABLE.contains(&self)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            VariantStatus::Published | VariantStatus::Failed | VariantStatus::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    Transient,
    RateLimited,
    Auth,
    Permanent,
    Ambiguous,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::Auth => "auth",
            FailureKind::Permanent => "permanent",
            FailureKind::Ambiguous => "ambiguous",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            FailureKind::Transient,
            FailureKind::RateLimited,
            FailureKind::Auth,
            FailureKind::Permanent,
            FailureKind::Ambiguous,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// The last thing that went wrong with a variant, phrased so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariantError {
    pub kind: FailureKind,
    pub message: String,
    pub platform_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub account_id: AccountId,
    pub platform: Platform,
    pub text_override: Option<String>,
    pub status: VariantStatus,
    pub attempts: u32,
    /// The id of the publisher attempt holding the variant; outcomes must carry it.
    pub attempt_id: Option<String>,
    pub platform_post_id: Option<String>,
    pub last_error: Option<VariantError>,
    pub published_at: Option<OffsetDateTime>,
    /// The platform may hold this post (an answer was lost): look it up before any retry.
    pub lookup: bool,
    /// When the current (or last) claim took the variant; its lease runs from here.
    pub claimed_at: Option<OffsetDateTime>,
    /// When the platform told Herald (by webhook) that the post was deleted there.
    pub removed_at: Option<OffsetDateTime>,
    /// Media for this account only, instead of the post's (`Some(vec![])`: none).
    pub media_override: Option<Vec<Attachment>>,
    /// The step a publisher works on: 0 is the post itself, then each of the post's
    /// [`follow_ups`](Post::follow_ups) in order (absent in items written before threads: 0).
    pub step: u32,
    /// The platform's ids of the follow-ups published so far, in order (each replies to, or
    /// comments on, the one before it: `platform_post_id` for the first).
    pub follow_up_ids: Vec<String>,
    /// What the platform client kept of the current step's progress between attempts
    /// (`StepProgress`: Instagram's container); cleared when the step is published. Never
    /// shown by the API.
    pub progress: Option<String>,
    /// What this target asks of its platform (LinkedIn's visibility, Facebook's link
    /// preview, X's reply settings); absent in items written before options: none.
    pub options: crate::publishing::options::TargetOptions,
}

impl Variant {
    /// The platform id the current step replies to or comments on: `None` for the post itself.
    pub fn parent_id(&self) -> Option<&str> {
        match self.step {
            0 => None,
            _ => self
                .follow_up_ids
                .last()
                .or(self.platform_post_id.as_ref())
                .map(String::as_str),
        }
    }

    pub fn new(account_id: AccountId, platform: Platform, text_override: Option<String>) -> Self {
        Self {
            account_id,
            platform,
            text_override,
            status: VariantStatus::Pending,
            attempts: 0,
            attempt_id: None,
            platform_post_id: None,
            last_error: None,
            published_at: None,
            lookup: false,
            claimed_at: None,
            removed_at: None,
            media_override: None,
            step: 0,
            follow_up_ids: Vec::new(),
            progress: None,
            options: Default::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatch {
    pub token: String,
    pub lease_until: OffsetDateTime,
    /// Set once every message of this dispatch is on the queue.
    pub sent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub decision: PostStatus,
    pub by: ApiKeyId,
    pub at: OffsetDateTime,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    pub tenant_id: TenantId,
    pub id: PostId,
    pub text: String,
    pub scheduled_at: OffsetDateTime,
    pub status: PostStatus,
    pub variants: BTreeMap<AccountId, Variant>,
    /// Bumped by every write; the optimistic-concurrency token of edits and cancels.
    pub version: u64,
    pub correlation_id: String,
    pub created_by: ApiKeyId,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub dispatch: Option<Dispatch>,
    pub review: Option<Review>,
    /// Uploaded media, checked against every target when attached; what each variant carries
    /// unless it has its own.
    pub media: Vec<Attachment>,
    /// X, Mastodon and Bluesky only: replies published after the post, each to the one before it.
    pub thread: Vec<String>,
    /// Facebook, LinkedIn and Instagram only: a comment the account leaves on its post once it is live.
    pub first_comment: Option<String>,
    /// The zone a wall-clock schedule was given in (shown back with `scheduled_at` as local
    /// time); `None` for a post scheduled by instant.
    pub time_zone: Option<String>,
}

impl Post {
    /// What each variant publishes after the post itself, in order: the thread's parts, or the
    /// first comment (a post has one or the other, never both).
    pub fn follow_ups(&self) -> Vec<&str> {
        match &self.first_comment {
            Some(comment) if self.thread.is_empty() => vec![comment.as_str()],
            _ => self.thread.iter().map(String::as_str).collect(),
        }
    }

    /// `scheduled_at` as a wall-clock time in the zone it was given in, if it was.
    pub fn scheduled_local(&self) -> Option<time::PrimitiveDateTime> {
        let zone = crate::zone::TimeZoneName::parse(self.time_zone.as_deref()?).ok()?;
        Some(zone.local(self.scheduled_at))
    }

    /// The text of a variant's step: its own (or the post's) text at step 0, then each
    /// follow-up's. `None` past the last step.
    pub fn step_text(&self, account: &AccountId, step: u32) -> Option<&str> {
        match step {
            0 => Some(self.text_for(account)),
            n => self.follow_ups().get(n as usize - 1).copied(),
        }
    }

    /// The media the variant for `account` publishes.
    pub fn media_for(&self, account: &AccountId) -> &[Attachment] {
        self.variants
            .get(account)
            .and_then(|v| v.media_override.as_deref())
            .unwrap_or(&self.media)
    }

    pub fn text_for(&self, account: &AccountId) -> &str {
        self.variants
            .get(account)
            .and_then(|v| v.text_override.as_deref())
            .unwrap_or(&self.text)
    }

    /// When the dispatcher should next look at this post, if ever: the schedule while it
    /// waits, the lease while a dispatch is unconfirmed.
    pub fn due_at(&self) -> Option<OffsetDateTime> {
        match (self.status, &self.dispatch) {
            (PostStatus::Scheduled, _) => Some(self.scheduled_at),
            (PostStatus::Dispatched, Some(d)) if !d.sent => Some(d.lease_until),
            _ => None,
        }
    }

    /// Some target's post is on its platform (published, not taken down).
    pub fn is_live(&self) -> bool {
        self.variants
            .values()
            .any(|v| v.platform_post_id.is_some() && v.removed_at.is_none())
    }

    /// No publisher has touched any variant yet, so the post can still change or be cancelled.
    pub fn untouched(&self) -> bool {
        self.variants
            .values()
            .all(|v| v.status == VariantStatus::Pending && v.attempts == 0)
    }

    /// The status the API shows: the lifecycle until dispatch, then what the variants say.
    pub fn display_status(&self) -> &'static str {
        if self.status != PostStatus::Dispatched {
            return self.status.as_str();
        }
        let all = |s: VariantStatus| self.variants.values().all(|v| v.status == s);
        let any = |s: VariantStatus| self.variants.values().any(|v| v.status == s);
        if all(VariantStatus::Published) {
            "published"
        } else if self.variants.values().all(|v| v.status.is_terminal()) {
            if any(VariantStatus::Published) {
                "partially_published"
            } else {
                "failed"
            }
        } else if any(VariantStatus::DeadLettered) || any(VariantStatus::Unknown) {
            "needs_attention"
        } else {
            "publishing"
        }
    }
}

/// Posting slots (`publishing::slots` reads them and finds the next free one).
/// The days and local times (`HH:MM`, in the tenant's zone) of one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRule {
    pub days: Vec<String>,
    pub times: Vec<String>,
}

/// A tenant's posting slots: `slots` for every account, `accounts` for those with their own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingSlots {
    #[serde(default)]
    pub slots: Vec<SlotRule>,
    #[serde(default)]
    pub accounts: BTreeMap<AccountId, Vec<SlotRule>>,
}
