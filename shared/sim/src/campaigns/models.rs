//! The campaign simulation's models of what surrounds the sender: a store that fails before
//! or after its writes, and a provider that throttles, refuses and loses answers.

use crate::rng::{Rng, SharedRng};
use async_trait::async_trait;
use herald_domain::StoreError;
use herald_domain::campaigns::memory::MemoryCampaigns;
use herald_domain::campaigns::reconcile::LiveCampaign;
use herald_domain::campaigns::sender::{OutboundSms, SmsError, SmsProvider};
use herald_domain::campaigns::{
    Campaign, CampaignStore, Claim, Progress, Receipt, ReceiptApplied, Recipient, SendOutcome,
    SnapshotPart,
};
use herald_domain::clock::{Clock, FakeClock};
use herald_domain::ids::{CampaignId, TenantId};
use herald_domain::ports::Page;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// A store whose claims and outcomes fail now and then, before or after their write.
pub(super) struct FaultyStore {
    pub(super) inner: Arc<MemoryCampaigns>,
    pub(super) rng: Arc<SharedRng>,
    pub(super) rate: f64,
    pub(super) crashes: AtomicUsize,
}

impl FaultyStore {
    /// `Some(true)`: fail after the write; `Some(false)`: before it.
    fn fault(&self) -> Option<bool> {
        let fault = self
            .rng
            .with(|r| r.chance(self.rate).then(|| r.chance(0.5)));
        if fault.is_some() {
            self.crashes.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }
}

impl FaultyStore {
    /// Runs `write`, or not, and answers with a crash now and then (before or after it).
    async fn faulty<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match self.fault() {
            Some(false) => Err(crashed()),
            Some(true) => {
                write.await?;
                Err(crashed())
            }
            None => write.await,
        }
    }
}

pub(super) fn crashed() -> StoreError {
    StoreError::Unavailable("simulated crash".into())
}

#[async_trait]
impl CampaignStore for FaultyStore {
    async fn insert_campaign(&self, c: &Campaign) -> Result<(), StoreError> {
        self.inner.insert_campaign(c).await
    }
    async fn get_campaign(
        &self,
        t: &TenantId,
        id: &CampaignId,
    ) -> Result<Option<Campaign>, StoreError> {
        self.inner.get_campaign(t, id).await
    }
    async fn list_campaigns(
        &self,
        t: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Campaign>, StoreError> {
        self.inner.list_campaigns(t, cursor, limit).await
    }
    async fn replace_campaign(&self, c: &Campaign, expected: u64) -> Result<(), StoreError> {
        self.inner.replace_campaign(c, expected).await
    }
    async fn put_snapshot_part(
        &self,
        t: &TenantId,
        c: &CampaignId,
        snapshot: &str,
        part: u32,
        content: &SnapshotPart,
    ) -> Result<(), StoreError> {
        self.faulty(self.inner.put_snapshot_part(t, c, snapshot, part, content))
            .await
    }
    async fn snapshot_part(
        &self,
        t: &TenantId,
        c: &CampaignId,
        snapshot: &str,
        part: u32,
    ) -> Result<Option<SnapshotPart>, StoreError> {
        self.inner.snapshot_part(t, c, snapshot, part).await
    }
    async fn delete_snapshots(&self, t: &TenantId, c: &CampaignId) -> Result<(), StoreError> {
        self.inner.delete_snapshots(t, c).await
    }
    async fn mark_live(
        &self,
        t: &TenantId,
        c: &CampaignId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.inner.mark_live(t, c, at).await
    }
    async fn unmark_live(&self, t: &TenantId, c: &CampaignId) -> Result<(), StoreError> {
        self.inner.unmark_live(t, c).await
    }
    async fn live_campaigns(&self, limit: usize) -> Result<Vec<LiveCampaign>, StoreError> {
        self.inner.live_campaigns(limit).await
    }
    async fn saw_live(
        &self,
        t: &TenantId,
        c: &CampaignId,
        done: u64,
        at: OffsetDateTime,
        moved: bool,
    ) -> Result<(), StoreError> {
        self.inner.saw_live(t, c, done, at, moved).await
    }
    async fn all_recipients(
        &self,
        t: &TenantId,
        c: &CampaignId,
    ) -> Result<Vec<Recipient>, StoreError> {
        self.inner.all_recipients(t, c).await
    }
    async fn put_recipients(&self, r: &[Recipient]) -> Result<(), StoreError> {
        self.faulty(self.inner.put_recipients(r)).await
    }
    async fn batch(
        &self,
        t: &TenantId,
        c: &CampaignId,
        b: u32,
    ) -> Result<Vec<Recipient>, StoreError> {
        self.inner.batch(t, c, b).await
    }
    async fn claim(
        &self,
        r: &Recipient,
        now: OffsetDateTime,
        lease_before: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        self.faulty(self.inner.claim(r, now, lease_before)).await
    }
    async fn finish(&self, r: &Recipient, outcome: &SendOutcome) -> Result<bool, StoreError> {
        self.faulty(self.inner.finish(r, outcome)).await
    }
    async fn apply_receipt(&self, id: &str, r: Receipt) -> Result<ReceiptApplied, StoreError> {
        self.inner.apply_receipt(id, r).await
    }
    async fn claim_sender(&self, t: &TenantId, sender: &str) -> Result<bool, StoreError> {
        self.inner.claim_sender(t, sender).await
    }
    async fn sender_owner(&self, sender: &str) -> Result<Option<TenantId>, StoreError> {
        self.inner.sender_owner(sender).await
    }
    async fn add_progress(
        &self,
        t: &TenantId,
        c: &CampaignId,
        d: &Progress,
    ) -> Result<(), StoreError> {
        self.inner.add_progress(t, c, d).await
    }
}

/// One message the provider took.
#[derive(Debug, Clone)]
pub(super) struct Taken {
    pub(super) id: String,
    pub(super) to: String,
    pub(super) client_ref: String,
    pub(super) at: OffsetDateTime,
}

/// A provider that throttles, refuses `refused` numbers, and loses answers.
pub(super) struct Provider {
    pub(super) taken: Mutex<Vec<Taken>>,
    pub(super) refused: Mutex<BTreeSet<String>>,
    pub(super) rng: Arc<SharedRng>,
    pub(super) clock: Arc<FakeClock>,
    pub(super) faults: bool,
    pub(super) lost_answers: AtomicUsize,
}

#[async_trait]
impl SmsProvider for Provider {
    async fn send(&self, sms: &OutboundSms) -> Result<String, SmsError> {
        let roll = self.rng.with(Rng::fraction);
        if self.faults && roll < 0.05 {
            return Err(SmsError::Throttled { retry_after: None });
        }
        let refused = self
            .refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&sms.to);
        if refused {
            return Err(SmsError::Permanent("unknown subscriber".into()));
        }
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        let id = format!("sm_{}", taken.len() + 1);
        taken.push(Taken {
            id: id.clone(),
            to: sms.to.clone(),
            client_ref: sms.client_ref.clone(),
            at: self.clock.now(),
        });
        if self.faults && roll > 0.95 {
            self.lost_answers.fetch_add(1, Ordering::Relaxed);
            return Err(SmsError::Ambiguous("the answer was lost".into()));
        }
        Ok(id)
    }

    async fn lookup(&self, client_ref: &str) -> Result<Option<String>, SmsError> {
        if self.faults && self.rng.chance(0.05) {
            return Err(SmsError::Ambiguous("lookup timed out".into()));
        }
        Ok(self
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|t| t.client_ref == client_ref)
            .map(|t| t.id.clone()))
    }
}
