//! An in-memory [`CampaignStore`] with the DynamoDB adapter's conditions; it reads consent
//! from a contact store, as the adapter's claim checks the contact item.

use super::reconcile::LiveCampaign;
use super::{
    Campaign, CampaignStore, Claim, Progress, Receipt, ReceiptApplied, Recipient, RecipientState,
    SendOutcome, SnapshotPart,
};
use crate::contacts::ContactStore;
use crate::error::StoreError;
use crate::ids::{CampaignId, ContactId, TenantId};
use crate::ports::Page;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

type RecipientKey = (TenantId, CampaignId, u32, ContactId);

#[derive(Debug, Default)]
struct State {
    campaigns: BTreeMap<(TenantId, CampaignId), Campaign>,
    recipients: BTreeMap<RecipientKey, Recipient>,
    /// message id -> the recipient sent as it.
    messages: HashMap<String, RecipientKey>,
    /// Sender id (upper case) -> the tenant that claimed it.
    senders: HashMap<String, TenantId>,
    /// (tenant, campaign, snapshot, part) -> the part.
    snapshots: BTreeMap<(TenantId, CampaignId, String, u32), SnapshotPart>,
    /// Live campaigns: the count of finished recipients the reconciler saw, and when.
    /// Seen done, seen at, moved at.
    live: BTreeMap<(TenantId, CampaignId), (u64, OffsetDateTime, OffsetDateTime)>,
}

pub struct MemoryCampaigns {
    state: Mutex<State>,
    contacts: Arc<dyn ContactStore>,
}

impl std::fmt::Debug for MemoryCampaigns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCampaigns").finish_non_exhaustive()
    }
}

fn key(r: &Recipient) -> RecipientKey {
    (
        r.tenant_id.clone(),
        r.campaign_id.clone(),
        r.batch,
        r.contact_id.clone(),
    )
}

fn add(p: &mut Progress, d: &Progress) {
    p.sent += d.sent;
    p.delivered += d.delivered;
    p.undelivered += d.undelivered;
    p.failed += d.failed;
    p.skipped += d.skipped;
    p.credits_used += d.credits_used;
    p.credits_released += d.credits_released;
}

impl MemoryCampaigns {
    pub fn new(contacts: Arc<dyn ContactStore>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            contacts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Overwrites a recipient's state without its counters, for tests: counters behind
    /// their recipients (which the DynamoDB adapter's transactions never leave).
    pub fn force_state(&self, r: &Recipient, state: RecipientState) {
        if let Some(stored) = self.lock().recipients.get_mut(&key(r)) {
            stored.state = state;
        }
    }

    /// Whether the campaign is marked live, for tests.
    pub fn is_live(&self, tenant: &TenantId, campaign: &CampaignId) -> bool {
        let key = (tenant.clone(), campaign.clone());
        self.lock().live.contains_key(&key)
    }

    /// Snapshot parts stored, for tests.
    pub fn snapshot_parts(&self) -> usize {
        self.lock().snapshots.len()
    }

    /// Every recipient of the campaign, for tests.
    pub fn recipients(&self, tenant: &TenantId, campaign: &CampaignId) -> Vec<Recipient> {
        self.lock()
            .recipients
            .values()
            .filter(|r| &r.tenant_id == tenant && &r.campaign_id == campaign)
            .cloned()
            .collect()
    }

    fn count(s: &mut State, r: &Recipient, delta: Progress) {
        if let Some(c) = s
            .campaigns
            .get_mut(&(r.tenant_id.clone(), r.campaign_id.clone()))
        {
            add(&mut c.progress, &delta);
        }
    }
}

#[async_trait]
impl CampaignStore for MemoryCampaigns {
    async fn insert_campaign(&self, campaign: &Campaign) -> Result<(), StoreError> {
        let mut s = self.lock();
        let k = (campaign.tenant_id.clone(), campaign.id.clone());
        if s.campaigns.contains_key(&k) {
            return Err(StoreError::Conflict);
        }
        s.campaigns.insert(k, campaign.clone());
        Ok(())
    }

    async fn get_campaign(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
    ) -> Result<Option<Campaign>, StoreError> {
        Ok(self
            .lock()
            .campaigns
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn list_campaigns(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Campaign>, StoreError> {
        let s = self.lock();
        let mut all: Vec<Campaign> = s
            .campaigns
            .values()
            .filter(|c| &c.tenant_id == tenant)
            .filter(|c| cursor.is_none_or(|cur| c.id.as_str() < cur))
            .cloned()
            .collect();
        all.sort_by(|a, b| b.id.cmp(&a.id));
        let more = all.len() > limit;
        all.truncate(limit);
        let cursor = more.then(|| all.last().map(|c| c.id.to_string())).flatten();
        Ok(Page { items: all, cursor })
    }

    async fn replace_campaign(&self, campaign: &Campaign, expected: u64) -> Result<(), StoreError> {
        let mut s = self.lock();
        let stored = s
            .campaigns
            .get_mut(&(campaign.tenant_id.clone(), campaign.id.clone()))
            .ok_or(StoreError::Conflict)?;
        if stored.version != expected {
            return Err(StoreError::Conflict);
        }
        // The counters stay as stored; the enqueue's totals are the campaign's own fields.
        let mut progress = stored.progress.clone();
        progress.recipients = campaign.progress.recipients;
        progress.batches = campaign.progress.batches;
        progress.credits_reserved = campaign.progress.credits_reserved;
        *stored = Campaign {
            progress,
            ..campaign.clone()
        };
        Ok(())
    }

    async fn put_snapshot_part(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        snapshot: &str,
        part: u32,
        content: &SnapshotPart,
    ) -> Result<(), StoreError> {
        let key = (tenant.clone(), campaign.clone(), snapshot.to_owned(), part);
        self.lock().snapshots.insert(key, content.clone());
        Ok(())
    }

    async fn snapshot_part(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        snapshot: &str,
        part: u32,
    ) -> Result<Option<SnapshotPart>, StoreError> {
        let key = (tenant.clone(), campaign.clone(), snapshot.to_owned(), part);
        Ok(self.lock().snapshots.get(&key).cloned())
    }

    async fn delete_snapshots(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError> {
        self.lock()
            .snapshots
            .retain(|(t, c, _, _), _| (t, c) != (tenant, campaign));
        Ok(())
    }

    async fn mark_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let key = (tenant.clone(), campaign.clone());
        self.lock().live.entry(key).or_insert((0, at, at));
        Ok(())
    }

    async fn unmark_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError> {
        self.lock().live.remove(&(tenant.clone(), campaign.clone()));
        Ok(())
    }

    async fn live_campaigns(&self, limit: usize) -> Result<Vec<LiveCampaign>, StoreError> {
        let s = self.lock();
        let live = s
            .live
            .iter()
            .take(limit)
            .map(|((t, c), (done, at, moved_at))| LiveCampaign {
                tenant_id: t.clone(),
                campaign_id: c.clone(),
                seen_done: *done,
                seen_at: *at,
                moved_at: *moved_at,
            });
        Ok(live.collect())
    }

    async fn saw_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        done: u64,
        at: OffsetDateTime,
        moved: bool,
    ) -> Result<(), StoreError> {
        if let Some(seen) = self
            .lock()
            .live
            .get_mut(&(tenant.clone(), campaign.clone()))
        {
            *seen = (done, at, if moved { at } else { seen.2 });
        }
        Ok(())
    }

    async fn all_recipients(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Recipient>, StoreError> {
        Ok(self.recipients(tenant, campaign))
    }

    async fn put_recipients(&self, recipients: &[Recipient]) -> Result<(), StoreError> {
        let mut s = self.lock();
        for r in recipients {
            s.recipients.entry(key(r)).or_insert_with(|| r.clone());
        }
        Ok(())
    }

    async fn batch(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        batch: u32,
    ) -> Result<Vec<Recipient>, StoreError> {
        Ok(self
            .lock()
            .recipients
            .values()
            .filter(|r| &r.tenant_id == tenant && &r.campaign_id == campaign && r.batch == batch)
            .cloned()
            .collect())
    }

    async fn claim(
        &self,
        recipient: &Recipient,
        now: OffsetDateTime,
        lease_before: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let opted_in = self
            .contacts
            .get_contact(&recipient.tenant_id, &recipient.contact_id)
            .await?
            .is_some_and(|c| c.consent.may_text());
        let mut s = self.lock();
        let sending = s
            .campaigns
            .get(&(recipient.tenant_id.clone(), recipient.campaign_id.clone()))
            .is_some_and(|c| c.status.live());
        let k = key(recipient);
        let stored = s.recipients.get(&k).ok_or(StoreError::Conflict)?.clone();
        let claim = match stored.state {
            RecipientState::Queued => Claim::Fresh,
            RecipientState::Sending { at } if at < lease_before => Claim::Resumed,
            RecipientState::Sending { .. } => return Ok(Claim::Busy),
            _ => return Ok(Claim::Done),
        };
        let (next, claim) = match (sending, opted_in) {
            (false, _) => (
                RecipientState::Skipped {
                    reason: "the campaign stopped".into(),
                },
                Claim::Stopped,
            ),
            (true, false) => (
                RecipientState::Skipped {
                    reason: "opted out".into(),
                },
                Claim::OptedOut,
            ),
            (true, true) => (RecipientState::Sending { at: now }, claim),
        };
        let skipped = matches!(next, RecipientState::Skipped { .. });
        if let Some(r) = s.recipients.get_mut(&k) {
            r.state = next;
        }
        if skipped {
            Self::count(
                &mut s,
                recipient,
                Progress {
                    skipped: 1,
                    ..Progress::default()
                },
            );
        }
        Ok(claim)
    }

    async fn finish(
        &self,
        recipient: &Recipient,
        outcome: &SendOutcome,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let k = key(recipient);
        let Some(r) = s.recipients.get_mut(&k) else {
            return Ok(false);
        };
        if !matches!(r.state, RecipientState::Sending { .. }) {
            return Ok(false);
        }
        let delta = match outcome {
            SendOutcome::Sent { message_id } => {
                r.state = RecipientState::Sent {
                    message_id: message_id.clone(),
                };
                let credits = i64::from(r.segments.max(1));
                s.messages.insert(message_id.clone(), k);
                Progress {
                    sent: 1,
                    credits_used: credits,
                    ..Progress::default()
                }
            }
            SendOutcome::Failed { reason } => {
                r.state = RecipientState::Failed {
                    reason: reason.clone(),
                };
                Progress {
                    failed: 1,
                    ..Progress::default()
                }
            }
        };
        Self::count(&mut s, recipient, delta);
        Ok(true)
    }

    async fn apply_receipt(
        &self,
        message_id: &str,
        receipt: Receipt,
    ) -> Result<ReceiptApplied, StoreError> {
        let mut s = self.lock();
        let Some(k) = s.messages.get(message_id).cloned() else {
            return Ok(ReceiptApplied::Unknown);
        };
        let Some(r) = s.recipients.get_mut(&k) else {
            return Ok(ReceiptApplied::Unknown);
        };
        if !matches!(r.state, RecipientState::Sent { .. }) {
            return Ok(ReceiptApplied::Unchanged);
        }
        let message_id = message_id.to_owned();
        let delta = match receipt {
            Receipt::Delivered => {
                r.state = RecipientState::Delivered { message_id };
                Progress {
                    delivered: 1,
                    ..Progress::default()
                }
            }
            Receipt::Undelivered => {
                r.state = RecipientState::Undelivered { message_id };
                Progress {
                    undelivered: 1,
                    ..Progress::default()
                }
            }
        };
        let r = r.clone();
        Self::count(&mut s, &r, delta);
        Ok(ReceiptApplied::Applied(
            r.tenant_id,
            r.campaign_id,
            r.contact_id,
        ))
    }

    async fn claim_sender(&self, tenant: &TenantId, sender: &str) -> Result<bool, StoreError> {
        let mut s = self.lock();
        let holder = s
            .senders
            .entry(sender.to_uppercase())
            .or_insert_with(|| tenant.clone());
        Ok(holder == tenant)
    }

    async fn sender_owner(&self, sender: &str) -> Result<Option<TenantId>, StoreError> {
        Ok(self.lock().senders.get(&sender.to_uppercase()).cloned())
    }

    async fn add_progress(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        delta: &Progress,
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        if let Some(c) = s.campaigns.get_mut(&(tenant.clone(), campaign.clone())) {
            add(&mut c.progress, delta);
        }
        Ok(())
    }
}

/// An in-memory [`SmsQueue`](super::SmsQueue): every batch and job sent, in order.
#[derive(Debug, Default)]
pub struct MemorySmsQueue(Mutex<Vec<super::SmsWork>>);

impl MemorySmsQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<super::SmsWork>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn batches(&self) -> Vec<super::SmsBatch> {
        let work = self.lock();
        let batches = work.iter().filter_map(|w| match w {
            super::SmsWork::Batch(b) => Some(b.clone()),
            super::SmsWork::Enqueue(_) | super::SmsWork::Import(_) => None,
        });
        batches.collect()
    }

    /// The enqueue jobs sent, taken off the queue.
    pub fn take_jobs(&self) -> Vec<super::EnqueueJob> {
        let mut work = self.lock();
        let mut jobs = Vec::new();
        work.retain(|w| match w {
            super::SmsWork::Enqueue(job) => {
                jobs.push(job.clone());
                false
            }
            super::SmsWork::Batch(_) | super::SmsWork::Import(_) => true,
        });
        jobs
    }
}

#[async_trait]
impl super::SmsQueue for MemorySmsQueue {
    async fn send_batches(&self, batches: &[super::SmsBatch]) -> Result<(), StoreError> {
        let work = batches.iter().cloned().map(super::SmsWork::Batch);
        self.lock().extend(work);
        Ok(())
    }

    async fn send_job(&self, job: &super::EnqueueJob) -> Result<(), StoreError> {
        self.lock().push(super::SmsWork::Enqueue(job.clone()));
        Ok(())
    }
}
