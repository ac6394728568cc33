//! Reconciling campaigns that stopped moving. Every campaign between its enqueue and its
//! settlement is marked live (one item per campaign, across tenants); on each reconciler run,
//! each live campaign is looked at:
//! - `enqueuing` with no step for [`STALE`]: an enqueue job carries it on;
//! - `sending` whose count of finished recipients has not moved for `stuck_after`: its
//!   recipients are read, the counters recomputed from them (what a counter lacks is added),
//!   the batches holding recipients still to send queued again (their ids are deterministic and
//!   every claim conditional, so a batch queued twice sends nothing twice; not for recipients
//!   in their quiet hours, whose batches come back by themselves), and a campaign whose
//!   every recipient is done completed and settled (a paused tenant's campaigns wait for the
//!   lift: their batches are deferred on purpose, and copies queued each pass would pile up);
//! - completed or cancelled (a settlement that crashed): settled, which releases what its
//!   reservation still holds; then unmarked. A draft (a refused enqueue) is unmarked.

use super::plan::{EnqueueJob, STALE};
use super::service::{CampaignError, complete_if_done, settle};
use super::{CampaignService, CampaignStatus, CampaignStore, Progress, RecipientState, SmsBatch};
use crate::ids::{CampaignId, TenantId};
use crate::ports::CrisisStore;
use std::collections::BTreeSet;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// A campaign between enqueue and settlement, and the count of its finished recipients the
/// reconciler last saw (and when it changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCampaign {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub seen_done: u64,
    pub seen_at: OffsetDateTime,
    /// When the count last changed (or the campaign was marked): what the operator's health
    /// check measures standing still by (`seen_at` moves with every repair).
    pub moved_at: OffsetDateTime,
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CampaignRepairs {
    pub examined: usize,
    pub enqueues_resumed: usize,
    pub batches_requeued: usize,
    /// Counter units added from the recipients' states (a counter behind them).
    pub counters_repaired: u64,
    pub completed: usize,
    pub settled: usize,
}

/// The reconciler's campaign part.
#[derive(Clone)]
pub struct CampaignReconciler {
    pub service: CampaignService,
    /// Tenants' pauses: a paused tenant's campaign stands still on purpose (its batches are
    /// deferred by the sender), and is not repaired until the pause is lifted.
    pub crisis: Arc<dyn CrisisStore>,
    /// How long a sending campaign's finished count may stand still before it is repaired.
    pub stuck_after: Duration,
    /// The sender's lease: a recipient claimed longer ago than this is to be sent again.
    pub lease: Duration,
}

crate::debug_fields!(CampaignReconciler);

/// Live campaigns looked at per pass.
pub const LIVE_PER_RUN: usize = 500;

impl CampaignReconciler {
    fn store(&self) -> &dyn CampaignStore {
        self.service.store.as_ref()
    }

    /// One pass over the live campaigns; a campaign whose repair fails is left for the next
    /// pass (and logged), never stopping the others.
    pub async fn run(&self) -> Result<CampaignRepairs, CampaignError> {
        let mut repairs = CampaignRepairs::default();
        for live in self.store().live_campaigns(LIVE_PER_RUN).await? {
            repairs.examined += 1;
            if let Err(e) = self.repair(&live, &mut repairs).await {
                tracing::warn!(
                    tenant_id = %live.tenant_id,
                    campaign_id = %live.campaign_id,
                    error = %e,
                    "repairing a campaign failed; the next run tries again"
                );
            }
        }
        Ok(repairs)
    }

    async fn repair(
        &self,
        live: &LiveCampaign,
        repairs: &mut CampaignRepairs,
    ) -> Result<(), CampaignError> {
        let (tenant, id) = (&live.tenant_id, &live.campaign_id);
        let now = self.service.clock.now();
        let Some(campaign) = self.store().get_campaign(tenant, id).await? else {
            return Ok(self.store().unmark_live(tenant, id).await?);
        };
        match campaign.status {
            // The API marks a campaign live just before it leaves `draft`: only a marker that
            // has stood for STALE is one left behind.
            CampaignStatus::Draft if now - live.seen_at > STALE => {
                self.store().unmark_live(tenant, id).await?
            }
            CampaignStatus::Draft => {}
            CampaignStatus::Completed | CampaignStatus::Cancelled => {
                if settle(self.store(), &self.service.wallets, &campaign).await? > 0 {
                    repairs.settled += 1;
                }
                self.store().unmark_live(tenant, id).await?;
            }
            CampaignStatus::Enqueuing if now - campaign.updated_at > STALE => {
                let job = EnqueueJob {
                    tenant_id: tenant.clone(),
                    campaign_id: id.clone(),
                    correlation_id: format!("reconciler-{id}"),
                    enqueue: 0,
                };
                self.service.queue.send_job(&job).await?;
                repairs.enqueues_resumed += 1;
            }
            CampaignStatus::Enqueuing => {}
            CampaignStatus::Sending => {
                let p = &campaign.progress;
                let done = p.sent + p.failed + p.skipped;
                let paused = self
                    .crisis
                    .get_crisis(tenant)
                    .await?
                    .is_some_and(|c| c.is_active(now) && c.platforms.is_empty());
                // Paused: standing still is counted from the lift.
                let moved = done != live.seen_done;
                if moved || paused {
                    self.store().saw_live(tenant, id, done, now, moved).await?;
                } else if now - live.seen_at > self.stuck_after {
                    self.unstick(&campaign, now, repairs).await?;
                    self.store().saw_live(tenant, id, done, now, false).await?;
                }
            }
        }
        Ok(())
    }

    /// Recomputes a stuck campaign's counters from its recipients, queues the batches that
    /// still hold recipients to send, and completes it when none does.
    async fn unstick(
        &self,
        campaign: &super::Campaign,
        now: OffsetDateTime,
        repairs: &mut CampaignRepairs,
    ) -> Result<(), CampaignError> {
        let (tenant, id) = (&campaign.tenant_id, &campaign.id);
        let recipients = self.store().all_recipients(tenant, id).await?;
        let mut counted = Progress::default();
        let mut pending = BTreeSet::new();
        // Recipients in their quiet hours: their batches come back by themselves at the
        // window's end, so copies queued now would only defer again, and pile up.
        let mut quiet = 0usize;
        let in_quiet_hours = |r: &super::Recipient| {
            campaign
                .quiet_hours
                .as_ref()
                .is_some_and(|q| q.wait(&r.phone, now).is_some())
        };
        for r in &recipients {
            counted.tally(r);
            let to_send = match &r.state {
                RecipientState::Queued => true,
                RecipientState::Sending { at } => now - *at > self.lease,
                _ => false,
            };
            match to_send {
                true if in_quiet_hours(r) => quiet += 1,
                true => {
                    pending.insert(r.batch);
                }
                false => {}
            }
        }
        let p = &campaign.progress;
        let behind = Progress {
            sent: counted.sent.saturating_sub(p.sent),
            delivered: counted.delivered.saturating_sub(p.delivered),
            undelivered: counted.undelivered.saturating_sub(p.undelivered),
            failed: counted.failed.saturating_sub(p.failed),
            skipped: counted.skipped.saturating_sub(p.skipped),
            credits_used: (counted.credits_used - p.credits_used).max(0),
            ..Progress::default()
        };
        let added = behind.sent + behind.delivered + behind.undelivered + behind.failed;
        let added = added + behind.skipped;
        if added > 0 {
            tracing::warn!(campaign_id = %id, ?behind, "campaign counters behind its recipients");
            self.store().add_progress(tenant, id, &behind).await?;
            repairs.counters_repaired += added;
        }
        if pending.is_empty() && quiet > 0 {
            return Ok(());
        }
        if pending.is_empty() {
            let completed =
                complete_if_done(self.store(), &self.service.wallets, now, tenant, id).await?;
            repairs.completed += usize::from(completed);
            return Ok(());
        }
        let batches: Vec<SmsBatch> = pending
            .into_iter()
            .map(|batch| SmsBatch {
                tenant_id: tenant.clone(),
                campaign_id: id.clone(),
                batch,
                correlation_id: format!("reconciler-{id}"),
            })
            .collect();
        for chunk in batches.chunks(10) {
            self.service.queue.send_batches(chunk).await?;
        }
        repairs.batches_requeued += batches.len();
        Ok(())
    }
}
