//! SMS campaigns: a text with `{{field}}` placeholders sent once to every opted-in contact of
//! an audience. The campaign is estimated (recipients, segments, credits), enqueued once (the
//! audience snapshotted into recipients, the credits reserved all or nothing, batches queued)
//! and sent by the SMS sender, which claims each recipient before its one send.
//!
//! A recipient's claim is conditional on the campaign still sending and the contact still
//! opted in, in the same write: a STOP committed before the claim is never texted, whatever
//! batches were queued before it.

mod enqueue;
#[cfg(test)]
mod enqueue_tests;
#[cfg(test)]
mod keyword_tests;
pub mod keywords;
pub mod memory;
mod plan;
pub mod quiet;
#[cfg(test)]
mod quiet_tests;
pub mod reconcile;
#[cfg(test)]
mod reconcile_tests;
pub mod segments;
pub mod sender;
mod service;
pub mod template;
#[cfg(test)]
mod tests;

pub use plan::{
    EnqueueJob, EnqueueLimits, EnqueueProblem, EnqueueState, Planned, STALE, SmsBatch, SmsQueue,
    SmsWork, SnapshotPart, pack,
};
pub use service::{CampaignError, CampaignService, Estimate, NewCampaign, NewQuietHours};

use crate::error::StoreError;
use crate::ids::{ApiKeyId, CampaignId, ContactId, TenantId};
use crate::ports::Page;
use crate::wallet::Credits;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// Recipients per queued batch (one SQS message, one sender invocation's work).
pub const BATCH_SIZE: usize = 100;
pub const MAX_NAME: usize = 200;
/// Ten GSM-7 segments' worth; a longer campaign is a letter, not a text.
pub const MAX_TEXT: usize = 1530;
pub const MAX_LIST: usize = 10_000;
/// How Herald's client references begin: a receipt carrying one is for a send of Herald's.
pub const CLIENT_REF_PREFIX: &str = "hr_";

/// Who a campaign goes to: contacts with any of the tags, or the listed contacts. Either way
/// only those opted in at enqueue (and still at send) are texted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    Tags(BTreeSet<String>),
    Contacts(Vec<ContactId>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Draft,
    /// Enqueue has begun: the credits may be reserved, batches may be on their way.
    Enqueuing,
    Sending,
    Completed,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Enqueuing => "enqueuing",
            Self::Sending => "sending",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Draft,
            Self::Enqueuing,
            Self::Sending,
            Self::Completed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Sends may still happen.
    pub fn live(self) -> bool {
        matches!(self, Self::Enqueuing | Self::Sending)
    }
}

/// What the sender and the receipts have done so far, kept as counters on the campaign so
/// progress is read without scanning its recipients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub recipients: u64,
    pub batches: u32,
    pub sent: u64,
    pub delivered: u64,
    /// Sent, then reported undeliverable by the provider.
    pub undelivered: u64,
    /// The provider refused the send.
    pub failed: u64,
    /// Not texted: opted out after enqueue, or the campaign was cancelled first.
    pub skipped: u64,
    pub credits_reserved: Credits,
    pub credits_used: Credits,
    pub credits_released: Credits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub tenant_id: TenantId,
    pub name: String,
    pub text: String,
    /// A field's value for recipients who lack it.
    pub fallbacks: BTreeMap<String, String>,
    pub audience: Audience,
    /// Alphanumeric sender id (1-11) or an E.164 number.
    pub sender: String,
    pub status: CampaignStatus,
    pub progress: Progress,
    /// How far an enqueue has come (its snapshot, parts written, batches queued).
    pub enqueue: EnqueueState,
    /// Why the last enqueue put the campaign back to draft.
    pub problem: Option<EnqueueProblem>,
    /// The key that created it (`None` on campaigns created before it was kept).
    pub created_by: Option<ApiKeyId>,
    /// Who let it go out, when the tenant requires approval.
    pub approval: Option<CampaignApproval>,
    /// A daily window of the recipient's local time in which it is not texted.
    pub quiet_hours: Option<quiet::QuietHours>,
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A campaign approved for sending (the tenant's `require_approval`, as for posts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignApproval {
    pub by: ApiKeyId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl Campaign {
    /// The wallet reservation that holds this campaign's credits.
    pub fn reservation(&self) -> String {
        format!("campaign-{}", self.id)
    }
}

/// Where a recipient is: queued at enqueue, claimed by one sender, then sent and, from the
/// provider's receipts, delivered or failed; or skipped without a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecipientState {
    Queued,
    /// Claimed for a send at `at`; a claim older than the lease may be taken over, after
    /// looking the message up at the provider.
    Sending {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    Sent {
        message_id: String,
    },
    Delivered {
        message_id: String,
    },
    Failed {
        reason: String,
    },
    /// Sent, and the provider reported it could not be delivered.
    Undelivered {
        message_id: String,
    },
    Skipped {
        reason: String,
    },
}

impl RecipientState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending { .. } => "sending",
            Self::Sent { .. } => "sent",
            Self::Delivered { .. } => "delivered",
            Self::Failed { .. } => "failed",
            Self::Undelivered { .. } => "undelivered",
            Self::Skipped { .. } => "skipped",
        }
    }
}

/// One contact's text in one campaign, rendered and priced at enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub contact_id: ContactId,
    pub phone: String,
    pub text: String,
    pub segments: u32,
    pub batch: u32,
    pub state: RecipientState,
}

impl Recipient {
    /// What Herald sends the provider as the client reference, to look a lost answer up by:
    /// short and the same on every try.
    pub fn client_ref(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{}:{}", self.campaign_id, self.contact_id));
        format!("{CLIENT_REF_PREFIX}{}", hex::encode(&digest[..16]))
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Claimed for its first send.
    Fresh,
    /// Claimed again after an earlier claim's lease ran out: the earlier send may have
    /// happened, so look it up before sending.
    Resumed,
    /// Another sender holds it (its lease has not run out).
    Busy,
    /// Sent, delivered, failed or skipped already.
    Done,
    /// The contact is no longer opted in (or was erased): marked skipped.
    OptedOut,
    /// The campaign is not sending (cancelled or completed): marked skipped.
    Stopped,
}

/// How a claimed recipient ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Sent { message_id: String },
    Failed { reason: String },
}

/// A delivery receipt's verdict on a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receipt {
    Delivered,
    Undelivered,
}

/// What a delivery receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptApplied {
    /// The recipient moved on: its campaign and contact.
    Applied(TenantId, CampaignId, ContactId),
    /// The recipient had already taken a verdict (a duplicate or a late receipt).
    Unchanged,
    /// No send is recorded under this message id: not Herald's, or a receipt that overtook
    /// the sender's record of its send.
    Unknown,
}

impl Progress {
    /// Counts a recipient as its state says (one that has not ended counts nowhere): what
    /// the counters would hold if every ending had reached them.
    pub fn tally(&mut self, r: &Recipient) {
        match &r.state {
            RecipientState::Queued | RecipientState::Sending { .. } => return,
            RecipientState::Sent { .. } => {}
            RecipientState::Delivered { .. } => self.delivered += 1,
            RecipientState::Undelivered { .. } => self.undelivered += 1,
            RecipientState::Failed { .. } => {
                self.failed += 1;
                return;
            }
            RecipientState::Skipped { .. } => {
                self.skipped += 1;
                return;
            }
        }
        self.sent += 1;
        self.credits_used += Credits::from(r.segments);
    }

    /// Every recipient has been sent, refused or skipped.
    pub fn done(&self) -> bool {
        self.sent + self.failed + self.skipped >= self.recipients
    }
}

#[async_trait]
pub trait CampaignStore: Send + Sync {
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<(), StoreError>;
    async fn get_campaign(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
    ) -> Result<Option<Campaign>, StoreError>;
    /// Newest first.
    async fn list_campaigns(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Campaign>, StoreError>;
    /// Writes the campaign's own fields (not its progress counters) if the stored version is
    /// still `expected`; `Conflict` otherwise.
    async fn replace_campaign(&self, campaign: &Campaign, expected: u64) -> Result<(), StoreError>;
    /// Stores part `part` of an enqueue's audience snapshot `snapshot` (a rewrite of the same
    /// part of the same snapshot changes nothing).
    async fn put_snapshot_part(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        snapshot: &str,
        part: u32,
        content: &SnapshotPart,
    ) -> Result<(), StoreError>;
    async fn snapshot_part(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        snapshot: &str,
        part: u32,
    ) -> Result<Option<SnapshotPart>, StoreError>;
    /// Deletes every snapshot part of the campaign's enqueues (the texted numbers go with them).
    async fn delete_snapshots(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError>;
    /// Marks the campaign live (between its enqueue and its settlement) for the reconciler;
    /// marking it again changes nothing.
    async fn mark_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn unmark_live(&self, tenant: &TenantId, campaign: &CampaignId)
    -> Result<(), StoreError>;
    /// Live campaigns of every tenant, at most `limit`.
    async fn live_campaigns(
        &self,
        limit: usize,
    ) -> Result<Vec<reconcile::LiveCampaign>, StoreError>;
    /// Records the count of finished recipients the reconciler saw, and when; `moved`: the
    /// count changed since the last look (`at` is then also the marker's `moved_at`).
    async fn saw_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        done: u64,
        at: OffsetDateTime,
        moved: bool,
    ) -> Result<(), StoreError>;
    /// Every recipient of the campaign, as they are now (for the reconciler, never the
    /// progress a user reads).
    async fn all_recipients(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Recipient>, StoreError>;
    /// Writes recipients that are not written yet (a rerun of an enqueue changes none).
    async fn put_recipients(&self, recipients: &[Recipient]) -> Result<(), StoreError>;
    /// One batch's recipients, as they are now.
    async fn batch(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        batch: u32,
    ) -> Result<Vec<Recipient>, StoreError>;
    /// Claims a queued recipient (or one whose claim is older than `lease_before`) in one
    /// write conditional on the campaign sending and the contact opted in; a recipient it
    /// cannot claim for those reasons is marked skipped (and counted) in the same call.
    async fn claim(
        &self,
        recipient: &Recipient,
        now: OffsetDateTime,
        lease_before: OffsetDateTime,
    ) -> Result<Claim, StoreError>;
    /// Ends a claimed recipient and counts it on the campaign (sent with its segments as
    /// credits used, or failed); `false` when it was not claimed any more (nothing written).
    async fn finish(
        &self,
        recipient: &Recipient,
        outcome: &SendOutcome,
    ) -> Result<bool, StoreError>;
    /// Applies a delivery receipt to the recipient sent as `message_id`: `sent` becomes
    /// `delivered` or `failed` once (a later or repeated receipt changes nothing).
    /// The provider's message ids are its own, across tenants: the receipt finds its
    /// recipient through the id recorded when it was sent.
    async fn apply_receipt(
        &self,
        message_id: &str,
        receipt: Receipt,
    ) -> Result<ReceiptApplied, StoreError>;
    /// Claims a sender id for the tenant (case-insensitively): `true` when it is the
    /// tenant's now (claimed before or just now), `false` when another tenant holds it.
    async fn claim_sender(&self, tenant: &TenantId, sender: &str) -> Result<bool, StoreError>;
    /// The tenant holding a sender id: inbound messages to it (STOP, HELP) are that tenant's.
    async fn sender_owner(&self, sender: &str) -> Result<Option<TenantId>, StoreError>;
    /// Adds to the campaign's counters (credits released, recipients and batches).
    async fn add_progress(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        delta: &Progress,
    ) -> Result<(), StoreError>;
}
