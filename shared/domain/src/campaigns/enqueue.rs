//! Enqueueing a campaign, once, at any size: the audience is snapshotted (stored in parts, so
//! every later step and every rerun works from the same recipients), the snapshot's credits
//! are reserved all or nothing, then its recipients are written and their batches queued part
//! by part, with the parts done recorded on the campaign after each.
//!
//! The API begins the work and does what fits its budget (a small audience is enqueued before
//! it answers, and a shortfall is its 402); what does not fit goes on as an [`EnqueueJob`] on the
//! SMS queue, which the SMS sender carries on within its own budget, handing the rest to a
//! fresh job. Every step is idempotent, so a redelivered or duplicated job changes nothing twice.

use super::plan::{
    EnqueueJob, EnqueueLimits, EnqueueProblem, EnqueueState, STALE, SmsBatch, pack, plan, render,
};
use super::service::{CampaignError, CampaignService, complete_if_done, parse, settle};
use super::template::Template;
use super::{BATCH_SIZE, Campaign, CampaignStatus, Recipient, RecipientState};
use crate::contacts::Contact;
use crate::error::StoreError;
use crate::ids::{CampaignId, TenantId};
use crate::wallet::{Credits, WalletError};

/// Where one call left an enqueue.
enum Step {
    /// Sending (or stopped by a cancel): nothing left to do.
    Done(Campaign),
    /// More to do: a job carries on.
    Later(Campaign),
}

impl CampaignService {
    /// Enqueues a draft once (`POST /v1/campaigns/{id}/enqueue`): moves it to `enqueuing` and
    /// does what fits the API's limits; the campaign is `sending` when all of it did, else a
    /// job carries on and the campaign shows `enqueuing` (a shortfall found by the job puts it
    /// back to draft with its `problem`). Enqueueing a campaign `enqueuing` with no step for
    /// [`STALE`] carries on what a crashed run began; one moved lately, sending or done is
    /// answered as it is.
    pub async fn enqueue(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
        correlation_id: &str,
        approval_required: bool,
    ) -> Result<Campaign, CampaignError> {
        let mut campaign = self.get(tenant, id).await?;
        match campaign.status {
            CampaignStatus::Draft if approval_required && campaign.approval.is_none() => {
                return Err(CampaignError::NeedsApproval);
            }
            CampaignStatus::Draft => {
                // Before it can be stuck: the reconciler looks after live campaigns.
                self.store.mark_live(tenant, id, self.clock.now()).await?;
                campaign.problem = None;
                campaign = self.transition(campaign, CampaignStatus::Enqueuing).await?;
            }
            // Under way (a job, or another request, moved it lately): left to it.
            CampaignStatus::Enqueuing if self.clock.now() - campaign.updated_at < STALE => {
                return Ok(campaign);
            }
            CampaignStatus::Enqueuing => {}
            CampaignStatus::Sending | CampaignStatus::Completed => return Ok(campaign),
            CampaignStatus::Cancelled => return Err(CampaignError::State("cancelled")),
        }
        let job = EnqueueJob {
            tenant_id: tenant.clone(),
            campaign_id: id.clone(),
            correlation_id: correlation_id.to_owned(),
            enqueue: 0,
        };
        self.carry_on(campaign, &job, self.limits).await
    }

    /// Works an [`EnqueueJob`] from the SMS queue (the whole audience, writes within this
    /// service's time budget); `Ok` when it needs no redelivery (done, handed on, or its
    /// campaign no longer enqueuing). A shortfall or an empty audience
    /// found here is recorded on the campaign, which goes back to draft.
    pub async fn work(&self, job: &EnqueueJob) -> Result<(), CampaignError> {
        let Some(campaign) = self
            .store
            .get_campaign(&job.tenant_id, &job.campaign_id)
            .await?
        else {
            return Ok(());
        };
        if campaign.status != CampaignStatus::Enqueuing {
            return Ok(());
        }
        let next = EnqueueJob {
            enqueue: job.enqueue + 1,
            ..job.clone()
        };
        let limits = EnqueueLimits {
            audience: None,
            budget: self.limits.budget,
        };
        match self.carry_on(campaign, &next, limits).await {
            Ok(_) | Err(CampaignError::NoRecipients | CampaignError::Insufficient { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn carry_on(
        &self,
        campaign: Campaign,
        job: &EnqueueJob,
        limits: EnqueueLimits,
    ) -> Result<Campaign, CampaignError> {
        match self.advance(campaign, &job.correlation_id, limits).await? {
            Step::Done(campaign) => Ok(campaign),
            Step::Later(campaign) => {
                self.queue.send_job(job).await?;
                Ok(campaign)
            }
        }
    }

    async fn advance(
        &self,
        mut campaign: Campaign,
        correlation_id: &str,
        limits: EnqueueLimits,
    ) -> Result<Step, CampaignError> {
        let until = self.clock.now() + limits.budget;
        if campaign.enqueue.snapshot.is_empty() {
            match self.take_snapshot(campaign, limits.audience, until).await? {
                Step::Done(c) => return Ok(Step::Done(c)),
                Step::Later(c) if c.enqueue.snapshot.is_empty() => return Ok(Step::Later(c)),
                Step::Later(c) => campaign = c,
            }
        }
        if campaign.progress.credits_reserved == 0 {
            campaign = self.reserve(campaign).await?;
        }
        let template = parse(&campaign)?;
        // At least one part per call, so every job moves the enqueue on.
        while campaign.enqueue.parts_written < campaign.enqueue.parts {
            campaign = match self.write_part(campaign, &template, correlation_id).await? {
                Step::Done(c) => return Ok(Step::Done(c)),
                Step::Later(c) => c,
            };
            let more = campaign.enqueue.parts_written < campaign.enqueue.parts;
            if more && self.clock.now() > until {
                return Ok(Step::Later(campaign));
            }
        }
        let (tenant, id) = (campaign.tenant_id.clone(), campaign.id.clone());
        let campaign = match self.transition(campaign, CampaignStatus::Sending).await {
            Ok(c) => c,
            Err(CampaignError::Contended) => return self.reread(&tenant, &id).await,
            Err(e) => return Err(e),
        };
        self.store.delete_snapshots(&tenant, &id).await?;
        // Every batch may have been sent before the campaign was `sending`, when none of
        // them could complete it.
        if complete_if_done(
            self.store.as_ref(),
            &self.wallets,
            self.clock.now(),
            &tenant,
            &id,
        )
        .await?
        {
            return Ok(Step::Done(self.get(&tenant, &id).await?));
        }
        Ok(Step::Done(campaign))
    }

    /// Snapshots the audience and stores it (`Later` with the snapshot recorded), or finds
    /// it larger than `audience` contacts or slower than `until` (`Later` without one).
    async fn take_snapshot(
        &self,
        mut campaign: Campaign,
        audience: Option<usize>,
        until: time::OffsetDateTime,
    ) -> Result<Step, CampaignError> {
        let read = match audience {
            Some(limit) => self.audience(&campaign, limit, until).await?,
            None => Some(self.whole_audience(&campaign).await?),
        };
        let Some(contacts) = read else {
            return Ok(Step::Later(campaign));
        };
        let planned = plan(&campaign, &parse(&campaign)?, contacts)?.planned;
        if planned.is_empty() {
            return self.refuse(campaign, EnqueueProblem::NoRecipients).await;
        }
        let recipients = planned.len() as u64;
        let credits: Credits = planned.iter().map(|p| Credits::from(p.segments)).sum();
        // Random: two runs snapshotting at once store their parts apart.
        let snapshot = uuid::Uuid::now_v7().simple().to_string();
        let parts = pack(planned);
        for (i, part) in parts.iter().enumerate() {
            self.store
                .put_snapshot_part(&campaign.tenant_id, &campaign.id, &snapshot, i as u32, part)
                .await?;
        }
        campaign.enqueue = EnqueueState {
            snapshot,
            parts: parts.len() as u32,
            credits,
            parts_written: 0,
            batches_queued: 0,
        };
        campaign.progress.recipients = recipients;
        campaign.progress.batches = recipients.div_ceil(BATCH_SIZE as u64) as u32;
        self.checkpoint(campaign).await
    }

    /// Reserves the snapshot's credits (once: the reservation is keyed by the campaign); a
    /// shortfall puts the campaign back to draft and reserves nothing.
    async fn reserve(&self, mut campaign: Campaign) -> Result<Campaign, CampaignError> {
        let reserved = match self
            .wallets
            .reserve(
                &campaign.tenant_id,
                &campaign.reservation(),
                campaign.enqueue.credits,
            )
            .await
        {
            Ok(applied) => applied.entry().change.credits(),
            Err(WalletError::Insufficient {
                needed,
                balance,
                shortfall,
            }) => {
                let problem = EnqueueProblem::InsufficientCredits {
                    needed,
                    available: balance,
                    shortfall,
                };
                self.refuse(campaign, problem).await?;
                return Err(CampaignError::Insufficient {
                    needed,
                    available: balance,
                    shortfall,
                });
            }
            Err(e) => return Err(e.into()),
        };
        campaign.progress.credits_reserved = reserved;
        match self.checkpoint(campaign).await? {
            Step::Later(c) => Ok(c),
            // Cancelled meanwhile: what was just reserved goes back.
            Step::Done(c) => {
                settle(self.store.as_ref(), &self.wallets, &c).await?;
                Err(CampaignError::State("cancelled"))
            }
        }
    }

    /// Writes the next part's recipients and queues the batches they complete.
    async fn write_part(
        &self,
        mut campaign: Campaign,
        template: &Template,
        correlation_id: &str,
    ) -> Result<Step, CampaignError> {
        let state = campaign.enqueue.clone();
        let part = self
            .store
            .snapshot_part(
                &campaign.tenant_id,
                &campaign.id,
                &state.snapshot,
                state.parts_written,
            )
            .await?
            .ok_or_else(|| StoreError::Invalid("a snapshot part is missing".into()))?;
        let mut recipients = Vec::with_capacity(part.entries.len());
        for (i, p) in part.entries.into_iter().enumerate() {
            recipients.push(Recipient {
                tenant_id: campaign.tenant_id.clone(),
                campaign_id: campaign.id.clone(),
                text: render(template, &p.values)?,
                contact_id: p.contact_id,
                phone: p.phone,
                segments: p.segments,
                batch: ((part.first + i as u64) / BATCH_SIZE as u64) as u32,
                state: RecipientState::Queued,
            });
        }
        let written = part.first + recipients.len() as u64;
        for chunk in recipients.chunks(BATCH_SIZE) {
            self.store.put_recipients(chunk).await?;
        }
        let complete = if state.parts_written + 1 == state.parts {
            campaign.progress.batches
        } else {
            (written / BATCH_SIZE as u64) as u32
        };
        let queued: Vec<SmsBatch> = (state.batches_queued..complete)
            .map(|batch| SmsBatch {
                tenant_id: campaign.tenant_id.clone(),
                campaign_id: campaign.id.clone(),
                batch,
                correlation_id: correlation_id.to_owned(),
            })
            .collect();
        for chunk in queued.chunks(10) {
            self.queue.send_batches(chunk).await?;
        }
        campaign.enqueue.parts_written += 1;
        campaign.enqueue.batches_queued = complete.max(state.batches_queued);
        self.checkpoint(campaign).await
    }

    /// Records the campaign's enqueue state: `Later` (carry on) while it is still enqueuing,
    /// `Done` when it was cancelled meanwhile (nothing more is written).
    async fn checkpoint(&self, campaign: Campaign) -> Result<Step, CampaignError> {
        let (tenant, id) = (campaign.tenant_id.clone(), campaign.id.clone());
        let expected = campaign.version;
        let mut next = campaign;
        next.version += 1;
        next.updated_at = self.clock.now();
        match self.store.replace_campaign(&next, expected).await {
            Ok(()) => Ok(Step::Later(next)),
            Err(StoreError::Conflict) => self.reread(&tenant, &id).await,
            Err(e) => Err(e.into()),
        }
    }

    /// After a conflicting write: `Done` if the campaign left `enqueuing` (cancelled, or
    /// another run finished), else the contention is reported (the run is retried).
    async fn reread(&self, tenant: &TenantId, id: &CampaignId) -> Result<Step, CampaignError> {
        let current = self.get(tenant, id).await?;
        if current.status == CampaignStatus::Enqueuing {
            return Err(CampaignError::Contended);
        }
        if current.status == CampaignStatus::Cancelled {
            self.store.delete_snapshots(tenant, id).await?;
        }
        Ok(Step::Done(current))
    }

    /// Puts the campaign back to draft with the reason, its snapshot dropped.
    async fn refuse(
        &self,
        mut campaign: Campaign,
        problem: EnqueueProblem,
    ) -> Result<Step, CampaignError> {
        let (tenant, id) = (campaign.tenant_id.clone(), campaign.id.clone());
        let error = match &problem {
            EnqueueProblem::NoRecipients => CampaignError::NoRecipients,
            EnqueueProblem::InsufficientCredits {
                needed,
                available,
                shortfall,
            } => CampaignError::Insufficient {
                needed: *needed,
                available: *available,
                shortfall: *shortfall,
            },
        };
        campaign.problem = Some(problem);
        campaign.enqueue = EnqueueState::default();
        campaign.progress.recipients = 0;
        campaign.progress.batches = 0;
        self.transition(campaign, CampaignStatus::Draft).await?;
        self.store.delete_snapshots(&tenant, &id).await?;
        self.store.unmark_live(&tenant, &id).await?;
        Err(error)
    }

    /// The audience's contacts, each once, oldest first, however long reading them takes.
    pub(super) async fn whole_audience(
        &self,
        campaign: &Campaign,
    ) -> Result<Vec<Contact>, StoreError> {
        let never = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 1000);
        let all = self.audience(campaign, usize::MAX, never).await?;
        Ok(all.unwrap_or_default())
    }

    /// The audience's contacts, each once, oldest first; `None` when reading them would
    /// take more than `limit` contacts or run past `until`.
    pub(super) async fn audience(
        &self,
        campaign: &Campaign,
        limit: usize,
        until: time::OffsetDateTime,
    ) -> Result<Option<Vec<Contact>>, StoreError> {
        let tenant = &campaign.tenant_id;
        let mut found = Vec::new();
        match &campaign.audience {
            super::Audience::Contacts(ids) => {
                if ids.len() > limit {
                    return Ok(None);
                }
                for (i, id) in ids.iter().enumerate() {
                    if i % 100 == 99 && self.clock.now() > until {
                        return Ok(None);
                    }
                    if let Some(c) = self.contacts.get_contact(tenant, id).await? {
                        found.push(c);
                    }
                }
            }
            super::Audience::Tags(tags) => {
                let (mut cursor, mut read) = (None, 0usize);
                loop {
                    let page = self
                        .contacts
                        .list_contacts(tenant, cursor.as_deref(), 1000)
                        .await?;
                    read += page.items.len();
                    if read > limit || (page.cursor.is_some() && self.clock.now() > until) {
                        return Ok(None);
                    }
                    found.extend(
                        page.items
                            .into_iter()
                            .filter(|c| c.tags.iter().any(|t| tags.contains(t))),
                    );
                    match page.cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
            }
        }
        Ok(Some(found))
    }
}
