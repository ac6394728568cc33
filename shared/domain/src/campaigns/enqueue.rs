//! Enqueueing a campaign, once, at any size: the audience is snapshotted (stored in parts, so
//! every later step and every rerun works from the same recipients), the snapshot's credits
//! are reserved all or nothing, then its recipients are written and their batches queued part
//! by part, with the parts done recorded on the campaign after each.
//!
//! The API begins the work and does what fits its budget (a small audience is enqueued before
//! it answers, and a shortfall is its 402); what does not fit goes on as an [`EnqueueJob`] on the
//! SMS queue, which the SMS sender carries on within its own budget, handing the rest to a
//! fresh job. Every step is idempotent, so a redelivered or duplicated job changes nothing twice.

use super::service::{CampaignError, CampaignService, complete_if_done, settle};
use super::template::Template;
use super::{BATCH_SIZE, Campaign, CampaignStatus, Recipient, RecipientState, segments};
use crate::contacts::Contact;
use crate::error::StoreError;
use crate::ids::{CampaignId, ContactId, TenantId};
use crate::publishing::posts::FieldError;
use crate::wallet::{Credits, WalletError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long an enqueue may go without a step before a new request carries it on itself
/// (every step of a job takes far less; a crashed request's work would wait for no one).
pub const STALE: time::Duration = time::Duration::minutes(2);

/// A snapshot part's size bound (a DynamoDB item holds 400 KB).
const PART_BYTES: usize = 300_000;

/// Carry on enqueueing a campaign: what the API hands the SMS sender when the work does not
/// fit its answer, and what a sender hands on when its own budget runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueJob {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub correlation_id: String,
    /// How many jobs came before this one for the same campaign (a hand-on adds one).
    pub enqueue: u32,
}

/// What the SMS queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SmsWork {
    Batch(super::SmsBatch),
    Enqueue(EnqueueJob),
}

/// One contact of a snapshot: who, and the values its text is rendered with (fallbacks
/// applied), priced. Short field names: a snapshot of 100,000 is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    #[serde(rename = "c")]
    pub contact_id: ContactId,
    #[serde(rename = "p")]
    pub phone: String,
    #[serde(rename = "v", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, String>,
    #[serde(rename = "s")]
    pub segments: u32,
}

/// A stored part of a snapshot: its contacts, the first of them at position `first` of the
/// whole (which decides each one's batch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPart {
    pub first: u64,
    pub entries: Vec<Planned>,
}

/// How far an enqueue has come; kept on the campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueState {
    /// The snapshot enqueued (its parts are stored under this id, so the parts of two tries
    /// never mix); empty until one is taken.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub snapshot: String,
    #[serde(default)]
    pub parts: u32,
    /// What the snapshot's texts cost.
    #[serde(default)]
    pub credits: Credits,
    /// Parts whose recipients are written.
    #[serde(default)]
    pub parts_written: u32,
    #[serde(default)]
    pub batches_queued: u32,
}

/// Why the last enqueue put the campaign back to draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EnqueueProblem {
    NoRecipients,
    InsufficientCredits {
        needed: Credits,
        available: Credits,
        shortfall: Credits,
    },
}

/// How much of an enqueue one call does before handing the rest to a job.
#[derive(Debug, Clone, Copy)]
pub struct EnqueueLimits {
    /// Contacts read to snapshot the audience, and the snapshot held to the time budget too;
    /// `None`: the snapshot is taken whatever it takes (a job's, which nobody waits for).
    pub audience: Option<usize>,
    /// Time spent, checked between snapshot parts (and contact pages, see `audience`).
    pub budget: time::Duration,
}

impl EnqueueLimits {
    /// The API's: small audiences are enqueued before the answer (5 s at most).
    pub const API: Self = Self {
        audience: Some(5_000),
        budget: time::Duration::seconds(3),
    };
    /// The SMS sender's (its timeout is 30 s): any audience, writes 20 s at a time.
    pub const WORKER: Self = Self {
        audience: None,
        budget: time::Duration::seconds(20),
    };
}

/// Where one call left an enqueue.
enum Step {
    /// Sending (or stopped by a cancel): nothing left to do.
    Done(Campaign),
    /// More to do: a job carries on.
    Later(Campaign),
}

/// The value of each of the template's fields for the contact: its own, else the fallback.
fn resolve(
    template: &Template,
    contact: &Contact,
    fallbacks: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for field in template.fields() {
        let own = super::service::value(contact, field).filter(|v| !v.trim().is_empty());
        let v = own
            .or_else(|| fallbacks.get(field).map(String::as_str))
            .ok_or_else(|| field.to_owned())?;
        values.insert(field.to_owned(), v.to_owned());
    }
    Ok(values)
}

/// The audience rendered: who is texted (with what values, at what price), who is skipped
/// why, and the texts' encodings.
pub(super) struct Plan {
    pub planned: Vec<Planned>,
    pub skipped: BTreeMap<String, u64>,
    pub encodings: BTreeMap<String, u64>,
}

pub(super) fn plan(campaign: &Campaign, contacts: Vec<Contact>) -> Result<Plan, CampaignError> {
    let template = parse(campaign)?;
    let mut plan = Plan {
        planned: Vec::new(),
        skipped: BTreeMap::new(),
        encodings: BTreeMap::new(),
    };
    for contact in contacts {
        if !contact.consent.may_text() {
            let reason = format!("consent {}", contact.consent.status());
            *plan.skipped.entry(reason).or_default() += 1;
            continue;
        }
        let values = match resolve(&template, &contact, &campaign.fallbacks) {
            Ok(values) => values,
            Err(field) => {
                let reason = format!("no value for {{{{{field}}}}}");
                *plan.skipped.entry(reason).or_default() += 1;
                continue;
            }
        };
        let count = segments::count(&render(&template, &values)?);
        let encoding = match count.encoding {
            segments::Encoding::Gsm7 => "gsm7",
            segments::Encoding::Ucs2 => "ucs2",
        };
        *plan.encodings.entry(encoding.to_owned()).or_default() += 1;
        plan.planned.push(Planned {
            contact_id: contact.id,
            phone: contact.phone,
            values,
            segments: count.count as u32,
        });
    }
    Ok(plan)
}

fn parse(campaign: &Campaign) -> Result<Template, CampaignError> {
    Template::parse(&campaign.text)
        .map_err(|m| CampaignError::Invalid(vec![FieldError::new("text", m)]))
}

/// Splits a snapshot into parts of at most [`PART_BYTES`] each.
pub fn pack(entries: Vec<Planned>) -> Vec<SnapshotPart> {
    let mut parts: Vec<SnapshotPart> = Vec::new();
    let mut bytes = 0;
    for (position, entry) in entries.into_iter().enumerate() {
        let size = serde_json::to_string(&entry).map_or(0, |s| s.len()) + 1;
        match parts.last_mut() {
            Some(part) if bytes + size <= PART_BYTES => part.entries.push(entry),
            _ => {
                bytes = 0;
                parts.push(SnapshotPart {
                    first: position as u64,
                    entries: vec![entry],
                });
            }
        }
        bytes += size;
    }
    parts
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
    ) -> Result<Campaign, CampaignError> {
        let mut campaign = self.get(tenant, id).await?;
        match campaign.status {
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
        let planned = plan(&campaign, contacts)?.planned;
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
        let queued: Vec<super::SmsBatch> = (state.batches_queued..complete)
            .map(|batch| super::SmsBatch {
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

fn render(template: &Template, values: &BTreeMap<String, String>) -> Result<String, StoreError> {
    template
        .render(|f| values.get(f).map(String::as_str), &BTreeMap::new())
        .map_err(|field| StoreError::Invalid(format!("a snapshot lacks {{{{{field}}}}}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(i: usize, value: &str) -> Planned {
        Planned {
            contact_id: ContactId(format!("ct_{i:026}")),
            phone: format!("+1555{i:07}"),
            values: BTreeMap::from([("first_name".to_owned(), value.to_owned())]),
            segments: 1,
        }
    }

    #[test]
    fn parts_stay_under_an_items_size_and_keep_every_position() {
        let entries: Vec<_> = (0..10_000).map(|i| planned(i, &"é".repeat(40))).collect();
        let parts = pack(entries.clone());
        assert!(parts.len() > 1);
        let mut position = 0;
        for part in &parts {
            assert_eq!(part.first, position);
            assert!(serde_json::to_string(part).unwrap().len() < 350_000);
            position += part.entries.len() as u64;
        }
        let flat: Vec<_> = parts.into_iter().flat_map(|p| p.entries).collect();
        assert_eq!(flat, entries);
        assert!(pack(Vec::new()).is_empty());
    }

    #[test]
    fn the_queue_tells_batches_from_jobs() {
        let job = SmsWork::Enqueue(EnqueueJob {
            tenant_id: TenantId("tn_1".into()),
            campaign_id: CampaignId("cp_1".into()),
            correlation_id: "c".into(),
            enqueue: 2,
        });
        let batch = SmsWork::Batch(super::super::SmsBatch {
            tenant_id: TenantId("tn_1".into()),
            campaign_id: CampaignId("cp_1".into()),
            batch: 3,
            correlation_id: "c".into(),
        });
        for work in [job, batch] {
            let text = serde_json::to_string(&work).unwrap();
            assert_eq!(serde_json::from_str::<SmsWork>(&text).unwrap(), work);
        }
    }
}
