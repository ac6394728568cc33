//! The campaign operations: create (every input checked, one error listing every problem),
//! estimate, enqueue (once: snapshot, reserve all or nothing, batches), cancel and settle.

use super::plan::SmsQueue;
use super::quiet::QuietHours;
use super::template::Template;
use super::{
    Audience, Campaign, CampaignStatus, CampaignStore, MAX_LIST, MAX_NAME, MAX_TEXT, Progress,
};
use crate::clock::Clock;
use crate::contacts::ContactStore;
use crate::error::StoreError;
use crate::ids::{ApiKeyId, CampaignId, ContactId, TenantId};
use crate::ports::Page;
use crate::publishing::posts::FieldError;
use crate::wallet::{Applied, Credits, LedgerKey, WalletError, Wallets};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("campaign not found")]
    NotFound,
    /// The campaign is not in a state that allows this.
    #[error("the campaign is {0}")]
    State(&'static str),
    /// Another tenant sends as this sender id (replies to it are that tenant's).
    #[error("the sender {0:?} is another tenant's")]
    SenderTaken(String),
    #[error("no contact of the audience can be texted")]
    NoRecipients,
    #[error("insufficient credits: {needed} needed, {available} available, {shortfall} short")]
    Insufficient {
        needed: Credits,
        available: Credits,
        shortfall: Credits,
    },
    #[error("the campaign kept changing; try again")]
    Contended,
    /// The tenant requires approval and nobody has approved it.
    #[error(
        "the campaign needs approval first: POST /v1/campaigns/{{id}}/approve with an approver's key"
    )]
    NeedsApproval,
    /// Four eyes: approved with the key that created it.
    #[error("this tenant forbids approving a campaign with the key that created it")]
    SelfApproval,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WalletError> for CampaignError {
    fn from(e: WalletError) -> Self {
        match e {
            WalletError::Store(e) => Self::Store(e),
            WalletError::Insufficient {
                needed,
                balance,
                shortfall,
            } => Self::Insufficient {
                needed,
                available: balance,
                shortfall,
            },
            other => Self::Store(StoreError::Invalid(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct NewCampaign {
    pub name: String,
    pub text: String,
    pub fallbacks: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub contacts: Vec<ContactId>,
    pub sender: String,
    /// The key creating it (kept for four-eyes approval).
    pub created_by: Option<ApiKeyId>,
    pub quiet_hours: Option<NewQuietHours>,
}

/// Quiet hours as asked for: `HH:MM` times and the zone of numbers whose own is not known.
#[derive(Debug, Clone, Default)]
pub struct NewQuietHours {
    pub start: String,
    pub end: String,
    pub time_zone: String,
}

/// What enqueueing would do now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Estimate {
    pub recipients: u64,
    /// Contacts of the audience that would not be texted, by reason.
    pub skipped: BTreeMap<String, u64>,
    pub segments: u64,
    /// Recipients by encoding (`gsm7`, `ucs2`).
    pub encodings: BTreeMap<String, u64>,
    pub credits: Credits,
    /// The wallet's spendable balance now.
    pub available: Credits,
    /// What is missing to enqueue (0 when the balance covers it).
    pub shortfall: Credits,
}

#[derive(Clone)]
pub struct CampaignService {
    pub store: Arc<dyn CampaignStore>,
    pub contacts: Arc<dyn ContactStore>,
    pub wallets: Arc<Wallets>,
    pub queue: Arc<dyn SmsQueue>,
    pub clock: Arc<dyn Clock>,
    /// How much of an enqueue is done before the answer (the rest goes on in a job).
    pub limits: super::EnqueueLimits,
}

crate::debug_fields!(CampaignService);

fn valid_sender(sender: &str) -> bool {
    let alphanumeric = (1..=11).contains(&sender.len())
        && sender
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b' ')
        && sender.bytes().any(|b| b.is_ascii_alphabetic());
    let number = sender.len() > 8
        && sender.len() <= 16
        && sender.starts_with('+')
        && sender[1..].bytes().all(|b| b.is_ascii_digit());
    alphanumeric || number
}

/// What a valid `NewCampaign` gives.
struct Checked {
    audience: Audience,
    quiet_hours: Option<QuietHours>,
}

fn check(new: &NewCampaign) -> Result<Checked, CampaignError> {
    let mut problems = Vec::new();
    if new.name.trim().is_empty() || new.name.chars().count() > MAX_NAME {
        problems.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters, not only spaces"),
        ));
    }
    let template = match Template::parse(&new.text) {
        Ok(t) => Some(t),
        Err(m) => {
            problems.push(FieldError::new("text", m));
            None
        }
    };
    if new.text.trim().is_empty() || new.text.chars().count() > MAX_TEXT {
        problems.push(FieldError::new(
            "text",
            format!("must be 1 to {MAX_TEXT} characters"),
        ));
    }
    for (field, value) in &new.fallbacks {
        if !template
            .as_ref()
            .is_some_and(|t| t.fields().contains(field.as_str()))
        {
            problems.push(FieldError::new(
                format!("fallbacks.{field}"),
                "is not a field of the text",
            ));
        }
        if value.trim().is_empty() || value.chars().count() > 500 {
            problems.push(FieldError::new(
                format!("fallbacks.{field}"),
                "must be 1 to 500 characters",
            ));
        }
    }
    let audience = match (new.tags.is_empty(), new.contacts.is_empty()) {
        (false, true) => Some(Audience::Tags(crate::contacts::check_tags(
            &new.tags,
            &mut problems,
        ))),
        (true, false) if new.contacts.len() <= MAX_LIST => {
            let unique: BTreeSet<_> = new.contacts.iter().collect();
            Some(Audience::Contacts(unique.into_iter().cloned().collect()))
        }
        (true, false) => {
            problems.push(FieldError::new(
                "audience.contacts",
                format!("at most {MAX_LIST} contacts; use tags for more"),
            ));
            None
        }
        _ => {
            problems.push(FieldError::new(
                "audience",
                "give exactly one of `tags` or `contacts`",
            ));
            None
        }
    };
    if !valid_sender(&new.sender) {
        problems.push(FieldError::new(
            "sender",
            "is 1 to 11 letters, digits or spaces with at least one letter, or an E.164 number",
        ));
    }
    let quiet_hours = match &new.quiet_hours {
        None => None,
        Some(q) => QuietHours::parse(&q.start, &q.end, &q.time_zone)
            .map_err(|p| problems.extend(p))
            .ok(),
    };
    match (template, audience) {
        (Some(_), Some(audience)) if problems.is_empty() => Ok(Checked {
            audience,
            quiet_hours,
        }),
        _ => Err(CampaignError::Invalid(problems)),
    }
}

/// The campaign's text as a template (checked when the campaign was created).
pub(super) fn parse(campaign: &Campaign) -> Result<Template, CampaignError> {
    Template::parse(&campaign.text)
        .map_err(|m| CampaignError::Invalid(vec![FieldError::new("text", m)]))
}

impl CampaignService {
    pub async fn create(
        &self,
        tenant: &TenantId,
        new: NewCampaign,
    ) -> Result<Campaign, CampaignError> {
        let Checked {
            audience,
            quiet_hours,
        } = check(&new)?;
        if !self.store.claim_sender(tenant, &new.sender).await? {
            return Err(CampaignError::SenderTaken(new.sender));
        }
        let now = self.clock.now();
        let campaign = Campaign {
            id: CampaignId::generate(),
            tenant_id: tenant.clone(),
            name: new.name,
            text: new.text,
            fallbacks: new.fallbacks,
            audience,
            sender: new.sender,
            status: CampaignStatus::Draft,
            progress: Progress::default(),
            enqueue: Default::default(),
            problem: None,
            created_by: new.created_by,
            approval: None,
            quiet_hours,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_campaign(&campaign).await?;
        Ok(campaign)
    }

    pub async fn get(&self, tenant: &TenantId, id: &CampaignId) -> Result<Campaign, CampaignError> {
        self.store
            .get_campaign(tenant, id)
            .await?
            .ok_or(CampaignError::NotFound)
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Campaign>, CampaignError> {
        Ok(self.store.list_campaigns(tenant, cursor, limit).await?)
    }

    pub async fn estimate(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
    ) -> Result<Estimate, CampaignError> {
        let campaign = self.get(tenant, id).await?;
        let contacts = self.whole_audience(&campaign).await?;
        let plan = super::plan::plan(&campaign, &parse(&campaign)?, contacts)?;
        let segments: u64 = plan.planned.iter().map(|p| u64::from(p.segments)).sum();
        let available = self.wallets.store.wallet(tenant).await?.balance;
        let credits = segments as Credits;
        Ok(Estimate {
            recipients: plan.planned.len() as u64,
            skipped: plan.skipped,
            segments,
            encodings: plan.encodings,
            credits,
            available,
            shortfall: (credits - available.max(0)).max(0),
        })
    }

    /// Cancels a campaign that has not finished: no recipient is claimed after this, and
    /// what the reservation still holds goes back to the balance.
    /// Approves a draft for sending; `forbid_self` (the tenant's four eyes) refuses the key
    /// that created it. Approving an approved campaign changes nothing.
    pub async fn approve(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
        by: &ApiKeyId,
        forbid_self: bool,
    ) -> Result<Campaign, CampaignError> {
        for _ in 0..5 {
            let mut campaign = self.get(tenant, id).await?;
            if campaign.approval.is_some() {
                return Ok(campaign);
            }
            if campaign.status != CampaignStatus::Draft {
                return Err(CampaignError::State(campaign.status.as_str()));
            }
            if forbid_self && campaign.created_by.as_ref() == Some(by) {
                return Err(CampaignError::SelfApproval);
            }
            let expected = campaign.version;
            campaign.approval = Some(super::CampaignApproval {
                by: by.clone(),
                at: self.clock.now(),
            });
            campaign.version += 1;
            campaign.updated_at = self.clock.now();
            match self.store.replace_campaign(&campaign, expected).await {
                Ok(()) => return Ok(campaign),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CampaignError::Contended)
    }

    pub async fn cancel(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
    ) -> Result<Campaign, CampaignError> {
        let campaign = self.get(tenant, id).await?;
        match campaign.status {
            CampaignStatus::Completed => return Err(CampaignError::State("completed")),
            CampaignStatus::Cancelled => return Ok(campaign),
            _ => {}
        }
        let campaign = self.transition(campaign, CampaignStatus::Cancelled).await?;
        self.settle(&campaign).await?;
        // An enqueue under way stops at its next step; its snapshot goes now.
        self.store.delete_snapshots(tenant, id).await?;
        self.store.unmark_live(tenant, id).await?;
        self.get(tenant, id).await
    }

    /// Gives back what the campaign's reservation still holds (see [`settle`]).
    pub async fn settle(&self, campaign: &Campaign) -> Result<Credits, CampaignError> {
        settle(self.store.as_ref(), &self.wallets, campaign).await
    }

    /// Moves the campaign to `to`, retrying over concurrent changes of its own fields.
    pub(super) async fn transition(
        &self,
        mut campaign: Campaign,
        to: CampaignStatus,
    ) -> Result<Campaign, CampaignError> {
        let expected = campaign.version;
        campaign.status = to;
        campaign.version += 1;
        campaign.updated_at = self.clock.now();
        match self.store.replace_campaign(&campaign, expected).await {
            Ok(()) => Ok(campaign),
            Err(StoreError::Conflict) => Err(CampaignError::Contended),
            Err(e) => Err(e.into()),
        }
    }
}

/// Settles a campaign that completed or was cancelled, once: debits from its reservation the
/// credits its recipients used (the `credits_used` counter each finish added to; key
/// `debit:<reservation>:settle`), then gives back what the reservation still holds (key
/// `release:<reservation>:settle`); what was given back. Each step is keyed, so a rerun after
/// a crash changes nothing twice. A send still in flight when a campaign is cancelled, and
/// finished after this, shows in `credits_used` but is not charged (never sent twice); used
/// credits beyond the reservation are counted in `herald_sms_uncharged_total`.
/// The ledger keys' suffix of a campaign's settlement.
const SETTLE: &str = "settle";

pub(crate) async fn settle(
    store: &dyn CampaignStore,
    wallets: &Wallets,
    campaign: &Campaign,
) -> Result<Credits, CampaignError> {
    let reservation = campaign.reservation();
    let tenant = &campaign.tenant_id;
    let debited = LedgerKey::debit(&reservation, SETTLE);
    if wallets.store.entry(tenant, &debited).await?.is_none() {
        // Its counters now, after the status change that stopped further claims.
        let used = store
            .get_campaign(tenant, &campaign.id)
            .await?
            .map_or(0, |c| c.progress.credits_used);
        let held = wallets.store.reservation(tenant, &reservation).await?;
        if used > held {
            metrics::counter!("herald_sms_uncharged_total").increment((used - held) as u64);
            tracing::warn!(campaign = %campaign.id, used, held, "credits used beyond the reservation: uncharged");
        }
        let debit = used.min(held);
        if debit > 0 {
            wallets.debit(tenant, &reservation, SETTLE, debit).await?;
        }
    }
    let held = wallets.store.reservation(tenant, &reservation).await?;
    if held <= 0 {
        return Ok(0);
    }
    let released = match wallets.release(tenant, &reservation, SETTLE, held).await? {
        Applied::New(entry) => entry.change.credits(),
        Applied::Replay(_) => return Ok(0),
    };
    store
        .add_progress(
            tenant,
            &campaign.id,
            &Progress {
                credits_released: released,
                ..Progress::default()
            },
        )
        .await?;
    Ok(released)
}

/// Marks a sending campaign whose every recipient is done `completed`, and settles it.
/// `true` when this call completed it.
pub(super) async fn complete_if_done(
    store: &dyn CampaignStore,
    wallets: &Wallets,
    now: time::OffsetDateTime,
    tenant: &TenantId,
    id: &CampaignId,
) -> Result<bool, CampaignError> {
    let Some(mut campaign) = store.get_campaign(tenant, id).await? else {
        return Ok(false);
    };
    if campaign.status != CampaignStatus::Sending || !campaign.progress.done() {
        return Ok(false);
    }
    let expected = campaign.version;
    campaign.status = CampaignStatus::Completed;
    campaign.version += 1;
    campaign.updated_at = now;
    match store.replace_campaign(&campaign, expected).await {
        Ok(()) => {}
        // Someone else moved it (another batch completed it, or it was cancelled).
        Err(StoreError::Conflict) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    settle(store, wallets, &campaign).await?;
    store.unmark_live(tenant, id).await?;
    Ok(true)
}
