//! What an enqueue works with: the audience planned (who is texted with what values, at
//! what price) and stored as snapshot parts, the state and problem it records on the
//! campaign, its limits, and what goes on the SMS queue (batches and enqueue jobs).

use super::template::Template;
use super::{Campaign, segments};
use crate::contacts::Contact;
use crate::error::StoreError;
use crate::ids::{CampaignId, ContactId, TenantId};
use crate::wallet::Credits;
use async_trait::async_trait;
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

/// What the SMS queue carries: the SMS sender's work, and the contact imports that feed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SmsWork {
    Batch(super::SmsBatch),
    Enqueue(EnqueueJob),
    Import(crate::imports::ImportJob),
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

/// One queued batch: what the SMS sender receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsBatch {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub batch: u32,
    pub correlation_id: String,
}

impl SmsBatch {
    /// Deterministic: the same campaign and batch number always make the same id, so a
    /// batch queued twice is recognisably one batch.
    pub fn id(&self) -> String {
        format!("{}-{:05}", self.campaign_id, self.batch)
    }
}

#[async_trait]
pub trait SmsQueue: Send + Sync {
    async fn send_batches(&self, batches: &[SmsBatch]) -> Result<(), StoreError>;
    async fn send_job(&self, job: &EnqueueJob) -> Result<(), StoreError>;
}

/// A contact's value for a placeholder: its own fields first, then `name` and `first_name`.
pub(super) fn value<'a>(contact: &'a Contact, field: &str) -> Option<&'a str> {
    if let Some(v) = contact.fields.get(field) {
        return Some(v);
    }
    match field {
        "name" => contact.name.as_deref(),
        "first_name" => contact.name.as_deref()?.split_whitespace().next(),
        _ => None,
    }
}

/// The value of each of the template's fields for the contact: its own, else the fallback.
fn resolve(
    template: &Template,
    contact: &Contact,
    fallbacks: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut values = BTreeMap::new();
    for field in template.fields() {
        let own = value(contact, field).filter(|v| !v.trim().is_empty());
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

pub(super) fn plan(
    campaign: &Campaign,
    template: &Template,
    contacts: Vec<Contact>,
) -> Result<Plan, StoreError> {
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
        let values = match resolve(template, &contact, &campaign.fallbacks) {
            Ok(values) => values,
            Err(field) => {
                let reason = format!("no value for {{{{{field}}}}}");
                *plan.skipped.entry(reason).or_default() += 1;
                continue;
            }
        };
        let count = segments::count(&render(template, &values)?);
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

pub(super) fn render(
    template: &Template,
    values: &BTreeMap<String, String>,
) -> Result<String, StoreError> {
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
        let batch = SmsWork::Batch(SmsBatch {
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
