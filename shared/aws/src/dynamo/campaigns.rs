//! Campaigns on the main table. The campaign is `CAMPAIGN#<id>` in the tenant's partition,
//! with its progress as counters (`ADD`ed by the sender and the receipts, never rewritten);
//! its recipients have a partition of their own, `SMS#<tenant>#<campaign>`, sorted
//! `R#<batch:05>#<contact>` so a batch is one Query; a sent message's id points back to its
//! recipient from `SMSMSG#<message id>` (receipts name only the provider's id). A sender id
//! belongs to the first tenant to use it (`SMSSENDER#<id>`): replies to it are that tenant's.
//!
//! A claim is one transaction: the recipient's state, the campaign still live, the contact
//! still opted in. Which condition failed decides between busy, done, stopped and opted out.

use super::items::*;
use super::ops::build_error;
use super::store::{DynamoStore, names, values};
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem, Update};
use herald_domain::StoreError;
use herald_domain::campaigns::reconcile::LiveCampaign;
use herald_domain::campaigns::{
    Audience, Campaign, CampaignStatus, CampaignStore, Claim, EnqueueState, Progress, Receipt,
    ReceiptApplied, Recipient, RecipientState, SendOutcome, SnapshotPart,
};
use herald_domain::ids::{CampaignId, ContactId, TenantId};
use herald_domain::ports::Page;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

type Values = HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;

const COUNTERS: [&str; 7] = [
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "skipped",
    "credits_used",
    "credits_released",
];

fn campaign_key(tenant: &TenantId, id: &CampaignId) -> Item {
    key(tenant_pk(tenant), format!("CAMPAIGN#{id}"))
}

pub(super) fn recipients_pk(tenant: &TenantId, campaign: &CampaignId) -> String {
    format!("SMS#{tenant}#{campaign}")
}

fn batch_prefix(batch: u32) -> String {
    format!("R#{batch:05}#")
}

fn recipient_key(r: &Recipient) -> Item {
    key(
        recipients_pk(&r.tenant_id, &r.campaign_id),
        format!("{}{}", batch_prefix(r.batch), r.contact_id),
    )
}

/// An enqueue's audience snapshot, in parts, beside the recipients it becomes.
fn snapshot_key(tenant: &TenantId, campaign: &CampaignId, snapshot: &str, part: u32) -> Item {
    key(
        recipients_pk(tenant, campaign),
        format!("{SNAPSHOT_PREFIX}{snapshot}#{part:05}"),
    )
}

const SNAPSHOT_PREFIX: &str = "SNAP#";

fn message_key(message_id: &str) -> Item {
    key(format!("SMSMSG#{message_id}"), "SMSMSG")
}

/// A sender id's claim: one item per id across tenants (case-insensitive).
fn sender_key(sender: &str) -> Item {
    key(format!("SMSSENDER#{}", sender.to_uppercase()), "SMSSENDER")
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

fn own_fields(
    c: &Campaign,
) -> Result<Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>, StoreError> {
    Ok(vec![
        ("name", s(&c.name)),
        ("text", s(&c.text)),
        ("fallbacks", s(json(&c.fallbacks)?)),
        ("audience", s(json(&c.audience)?)),
        ("sender", s(&c.sender)),
        ("status", s(c.status.as_str())),
        ("recipients", n(c.progress.recipients)),
        ("batches", n(c.progress.batches)),
        ("credits_reserved", n(c.progress.credits_reserved)),
        ("enqueue", s(json(&c.enqueue)?)),
        ("problem", s(json(&c.problem)?)),
        ("created_by", s(json(&c.created_by)?)),
        ("approval", s(json(&c.approval)?)),
        ("quiet_hours", s(json(&c.quiet_hours)?)),
        ("version", n(c.version)),
        ("updated_at", time_n(c.updated_at)),
    ])
}

fn campaign_from_item(item: &Item) -> Result<Campaign, StoreError> {
    let f = Fields(item);
    let parse = |field: &str| -> Result<String, StoreError> { f.str(field) };
    let bad = |field: &str| StoreError::Invalid(format!("campaign item: bad {field}"));
    let counter = |field: &str| f.opt_num(field).unwrap_or(0);
    Ok(Campaign {
        id: CampaignId(f.str("campaign_id")?),
        tenant_id: TenantId(f.str("tenant_id")?),
        name: parse("name")?,
        text: parse("text")?,
        fallbacks: serde_json::from_str::<BTreeMap<String, String>>(&parse("fallbacks")?)
            .map_err(|_| bad("fallbacks"))?,
        audience: serde_json::from_str::<Audience>(&parse("audience")?)
            .map_err(|_| bad("audience"))?,
        sender: parse("sender")?,
        status: CampaignStatus::parse(&parse("status")?).ok_or_else(|| bad("status"))?,
        progress: Progress {
            recipients: counter("recipients") as u64,
            batches: counter("batches") as u32,
            sent: counter("sent") as u64,
            delivered: counter("delivered") as u64,
            undelivered: counter("undelivered") as u64,
            failed: counter("failed") as u64,
            skipped: counter("skipped") as u64,
            credits_reserved: counter("credits_reserved"),
            credits_used: counter("credits_used"),
            credits_released: counter("credits_released"),
        },
        // Campaigns written before enqueue jobs have neither: nothing was under way.
        enqueue: match f.opt_str("enqueue") {
            Some(v) => serde_json::from_str(&v).map_err(|_| bad("enqueue"))?,
            None => EnqueueState::default(),
        },
        problem: match f.opt_str("problem") {
            Some(v) => serde_json::from_str(&v).map_err(|_| bad("problem"))?,
            None => None,
        },
        // Campaigns written before approvals have neither: creator unknown, not approved.
        created_by: match f.opt_str("created_by") {
            Some(v) => serde_json::from_str(&v).map_err(|_| bad("created_by"))?,
            None => None,
        },
        approval: match f.opt_str("approval") {
            Some(v) => serde_json::from_str(&v).map_err(|_| bad("approval"))?,
            None => None,
        },
        // Campaigns written before quiet hours have none.
        quiet_hours: match f.opt_str("quiet_hours") {
            Some(v) => serde_json::from_str(&v).map_err(|_| bad("quiet_hours"))?,
            None => None,
        },
        version: f.u64("version")?,
        created_at: f.time("created_at")?,
        updated_at: f.time("updated_at")?,
    })
}

fn recipient_to_item(r: &Recipient) -> Item {
    let mut item = recipient_key(r);
    item.insert("type".into(), s("sms_recipient"));
    item.insert("tenant_id".into(), s(r.tenant_id.as_str()));
    item.insert("campaign_id".into(), s(r.campaign_id.as_str()));
    item.insert("contact_id".into(), s(r.contact_id.as_str()));
    item.insert("phone".into(), s(&r.phone));
    item.insert("text".into(), s(&r.text));
    item.insert("segments".into(), n(r.segments));
    item.insert("batch".into(), n(r.batch));
    item.insert("state".into(), s(r.state.name()));
    item
}

fn recipient_from_item(item: &Item) -> Result<Recipient, StoreError> {
    let f = Fields(item);
    let state = match f.str("state")?.as_str() {
        "queued" => RecipientState::Queued,
        "sending" => RecipientState::Sending {
            at: f.time("claimed_at")?,
        },
        "sent" => RecipientState::Sent {
            message_id: f.str("message_id")?,
        },
        "delivered" => RecipientState::Delivered {
            message_id: f.str("message_id")?,
        },
        "failed" => RecipientState::Failed {
            reason: f.str("reason")?,
        },
        "undelivered" => RecipientState::Undelivered {
            message_id: f.str("message_id")?,
        },
        "skipped" => RecipientState::Skipped {
            reason: f.str("reason")?,
        },
        other => return Err(StoreError::Invalid(format!("recipient state {other:?}"))),
    };
    Ok(Recipient {
        tenant_id: TenantId(f.str("tenant_id")?),
        campaign_id: CampaignId(f.str("campaign_id")?),
        contact_id: ContactId(f.str("contact_id")?),
        phone: f.str("phone")?,
        text: f.str("text")?,
        segments: f.num("segments")? as u32,
        batch: f.num("batch")? as u32,
        state,
    })
}

impl DynamoStore {
    fn tx_update(
        &self,
        key: Item,
        update: &str,
        condition: Option<&str>,
        names: Option<HashMap<String, String>>,
        vals: Values,
    ) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(update)
                    .set_condition_expression(condition.map(str::to_owned))
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values((!vals.is_empty()).then_some(vals))
                    .build()
                    .map_err(build_error)?,
            )
            .build())
    }

    /// `ADD`s one counter of the campaign by `by`, in a transaction.
    fn tx_count(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        adds: &[(&str, i64)],
    ) -> Result<TransactWriteItem, StoreError> {
        let (expression, field_names, vals) = adds_expression(adds);
        self.tx_update(
            campaign_key(tenant, campaign),
            &expression,
            Some("attribute_exists(pk)"),
            Some(field_names),
            vals,
        )
    }

    /// Runs the transaction; `Ok(None)` when it committed, else which of its items' conditions
    /// failed.
    async fn transact_reasons(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<bool>>, StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c)
                    if c.cancellation_reasons()
                        .iter()
                        .any(|r| r.code() == Some("ConditionalCheckFailed")) =>
                {
                    Ok(Some(
                        c.cancellation_reasons()
                            .iter()
                            .map(|r| r.code() == Some("ConditionalCheckFailed"))
                            .collect(),
                    ))
                }
                _ => Err(StoreError::Unavailable(
                    "a campaign transaction was cancelled".into(),
                )),
            },
            Err(e) => Err(crate::errors::store_error(e)),
        }
    }

    /// Marks a claimable recipient skipped and counts it, once.
    async fn skip(&self, r: &Recipient, reason: &str) -> Result<(), StoreError> {
        let (condition, mut vals) = claimable(r);
        vals.insert(":skipped".into(), s("skipped"));
        vals.insert(":reason".into(), s(reason));
        let items = vec![
            self.tx_update(
                recipient_key(r),
                "SET #st = :skipped, reason = :reason",
                Some(&condition),
                Some(names(&[("#st", "state")])),
                vals,
            )?,
            self.tx_count(&r.tenant_id, &r.campaign_id, &[("skipped", 1)])?,
        ];
        self.transact_reasons(items).await.map(|_| ())
    }
}

/// `ADD #sent :sent, ...` with its names and values (counter names may be reserved words).
fn adds_expression(adds: &[(&str, i64)]) -> (String, HashMap<String, String>, Values) {
    let expression = adds
        .iter()
        .map(|(field, _)| format!("#{field} :{field}"))
        .collect::<Vec<_>>()
        .join(", ");
    let field_names = adds
        .iter()
        .map(|(field, _)| (format!("#{field}"), (*field).to_owned()))
        .collect();
    let vals = adds
        .iter()
        .map(|(field, by)| (format!(":{field}"), n(*by)))
        .collect();
    (format!("ADD {expression}"), field_names, vals)
}

/// The condition under which `r` (as read) may be claimed: still queued, or still held by
/// the same expired claim.
fn claimable(r: &Recipient) -> (String, Values) {
    match &r.state {
        RecipientState::Sending { at } => (
            "#st = :sending AND claimed_at = :was".into(),
            HashMap::from([
                (":sending".to_owned(), s("sending")),
                (":was".to_owned(), time_n(*at)),
            ]),
        ),
        _ => (
            "#st = :queued".into(),
            HashMap::from([(":queued".to_owned(), s("queued"))]),
        ),
    }
}

#[async_trait]
impl CampaignStore for DynamoStore {
    async fn insert_campaign(&self, c: &Campaign) -> Result<(), StoreError> {
        let mut item = campaign_key(&c.tenant_id, &c.id);
        item.insert("type".into(), s("campaign"));
        item.insert("campaign_id".into(), s(c.id.as_str()));
        item.insert("tenant_id".into(), s(c.tenant_id.as_str()));
        item.insert("created_at".into(), time_n(c.created_at));
        for (field, value) in own_fields(c)? {
            item.insert(field.into(), value);
        }
        for field in COUNTERS {
            item.insert(field.into(), n(0));
        }
        self.put_new(item).await
    }

    async fn get_campaign(
        &self,
        tenant: &TenantId,
        id: &CampaignId,
    ) -> Result<Option<Campaign>, StoreError> {
        self.get_latest(campaign_key(tenant, id))
            .await?
            .as_ref()
            .map(campaign_from_item)
            .transpose()
    }

    async fn list_campaigns(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Campaign>, StoreError> {
        self.query_prefix(tenant_pk(tenant), "CAMPAIGN#")
            .backward()
            .page(cursor, limit)
            .await?
            .try_map(campaign_from_item)
    }

    async fn replace_campaign(&self, c: &Campaign, expected: u64) -> Result<(), StoreError> {
        let fields = own_fields(c)?;
        let expression = fields
            .iter()
            .map(|(field, _)| format!("#{field} = :{field}"))
            .collect::<Vec<_>>()
            .join(", ");
        let field_names: HashMap<String, String> = fields
            .iter()
            .map(|(field, _)| (format!("#{field}"), (*field).to_owned()))
            .collect();
        let mut vals: Values = fields
            .into_iter()
            .map(|(field, v)| (format!(":{field}"), v))
            .collect();
        vals.insert(":expected".into(), n(expected));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(&c.tenant_id, &c.id)))
            .update_expression(format!("SET {expression}"))
            .condition_expression("#version = :expected")
            .set_expression_attribute_names(Some(field_names))
            .set_expression_attribute_values(Some(vals))
            .send()
            .await;
        result.map_err(crate::errors::store_error)?;
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
        let key = snapshot_key(tenant, campaign, snapshot, part);
        self.put_snapshot_item(key, content).await
    }

    async fn snapshot_part(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        snapshot: &str,
        part: u32,
    ) -> Result<Option<SnapshotPart>, StoreError> {
        let key = snapshot_key(tenant, campaign, snapshot, part);
        self.snapshot_item(key).await
    }

    async fn delete_snapshots(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError> {
        let pk = recipients_pk(tenant, campaign);
        self.delete_snapshot_items(pk, SNAPSHOT_PREFIX).await
    }

    async fn mark_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.mark_live_item(tenant, campaign, at).await
    }

    async fn unmark_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError> {
        self.unmark_live_item(tenant, campaign).await
    }

    async fn live_campaigns(&self, limit: usize) -> Result<Vec<LiveCampaign>, StoreError> {
        self.live_items(limit).await
    }

    async fn saw_live(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        done: u64,
        at: OffsetDateTime,
        moved: bool,
    ) -> Result<(), StoreError> {
        self.saw_live_item(tenant, campaign, done, at, moved).await
    }

    async fn all_recipients(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<Vec<Recipient>, StoreError> {
        self.query_prefix(recipients_pk(tenant, campaign), "R#")
            .consistent()
            .all()
            .await?
            .iter()
            .map(recipient_from_item)
            .collect()
    }

    async fn put_recipients(&self, recipients: &[Recipient]) -> Result<(), StoreError> {
        for chunk in recipients.chunks(100) {
            let puts = chunk
                .iter()
                .map(|r| self.tx_put(recipient_to_item(r), Some("attribute_not_exists(pk)"), None))
                .collect::<Result<Vec<_>, _>>()?;
            if self.transact_conditional(puts).await? {
                continue;
            }
            // A rerun: some are written (and may have moved on); write only the others.
            for r in chunk {
                let put = self.put_new(recipient_to_item(r)).await;
                match put {
                    Ok(()) | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    async fn batch(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        batch: u32,
    ) -> Result<Vec<Recipient>, StoreError> {
        let prefix = batch_prefix(batch);
        self.query_prefix(recipients_pk(tenant, campaign), &prefix)
            .consistent()
            .all()
            .await?
            .iter()
            .map(recipient_from_item)
            .collect()
    }

    async fn claim(
        &self,
        r: &Recipient,
        now: OffsetDateTime,
        lease_before: OffsetDateTime,
    ) -> Result<Claim, StoreError> {
        let resumed = match r.state {
            RecipientState::Queued => false,
            RecipientState::Sending { at } if at < lease_before => true,
            RecipientState::Sending { .. } => return Ok(Claim::Busy),
            _ => return Ok(Claim::Done),
        };
        let (condition, mut vals) = claimable(r);
        vals.insert(":claiming".into(), s("sending"));
        vals.insert(":now".into(), time_n(now));
        let check = |key: Item, condition: &str, names: HashMap<String, String>, vals: Values| {
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(vals))
                .build()
                .map(|c| TransactWriteItem::builder().condition_check(c).build())
                .map_err(build_error)
        };
        let items = vec![
            self.tx_update(
                recipient_key(r),
                "SET #st = :claiming, claimed_at = :now",
                Some(&condition),
                Some(names(&[("#st", "state")])),
                vals,
            )?,
            check(
                campaign_key(&r.tenant_id, &r.campaign_id),
                "#status IN (:enqueuing, :sending)",
                names(&[("#status", "status")]),
                values(vec![
                    (":enqueuing", s("enqueuing")),
                    (":sending", s("sending")),
                ]),
            )?,
            check(
                key(tenant_pk(&r.tenant_id), format!("CONTACT#{}", r.contact_id)),
                "consent.#cs = :in",
                names(&[("#cs", "status")]),
                values(vec![(":in", s("opted_in"))]),
            )?,
        ];
        let Some(failed) = self.transact_reasons(items).await? else {
            return Ok(if resumed {
                Claim::Resumed
            } else {
                Claim::Fresh
            });
        };
        match failed.as_slice() {
            // The recipient moved on since it was read: read again to say how.
            [true, ..] => {
                let now_item = self.get_latest(recipient_key(r)).await?;
                Ok(
                    match now_item.as_ref().map(recipient_from_item).transpose()? {
                        Some(Recipient {
                            state: RecipientState::Sending { .. },
                            ..
                        }) => Claim::Busy,
                        _ => Claim::Done,
                    },
                )
            }
            [false, true, ..] => {
                self.skip(r, "the campaign stopped").await?;
                Ok(Claim::Stopped)
            }
            _ => {
                self.skip(r, "opted out").await?;
                Ok(Claim::OptedOut)
            }
        }
    }

    async fn finish(&self, r: &Recipient, outcome: &SendOutcome) -> Result<bool, StoreError> {
        let state_names = Some(names(&[("#st", "state")]));
        let mut vals: Values = HashMap::from([(":sending".to_owned(), s("sending"))]);
        let items = match outcome {
            SendOutcome::Sent { message_id } => {
                vals.insert(":sent".into(), s("sent"));
                vals.insert(":m".into(), s(message_id));
                let mut pointer = message_key(message_id);
                pointer.insert("type".into(), s("sms_message"));
                pointer.insert("recipient_pk".into(), recipient_key(r)["pk"].clone());
                pointer.insert("recipient_sk".into(), recipient_key(r)["sk"].clone());
                pointer.insert("tenant_id".into(), s(r.tenant_id.as_str()));
                pointer.insert("campaign_id".into(), s(r.campaign_id.as_str()));
                vec![
                    self.tx_update(
                        recipient_key(r),
                        "SET #st = :sent, message_id = :m",
                        Some("#st = :sending"),
                        state_names,
                        vals,
                    )?,
                    self.tx_count(
                        &r.tenant_id,
                        &r.campaign_id,
                        &[("sent", 1), ("credits_used", i64::from(r.segments.max(1)))],
                    )?,
                    self.tx_put(pointer, None, None)?,
                ]
            }
            SendOutcome::Failed { reason } => {
                vals.insert(":failed".into(), s("failed"));
                vals.insert(":reason".into(), s(reason));
                vec![
                    self.tx_update(
                        recipient_key(r),
                        "SET #st = :failed, reason = :reason",
                        Some("#st = :sending"),
                        state_names,
                        vals,
                    )?,
                    self.tx_count(&r.tenant_id, &r.campaign_id, &[("failed", 1)])?,
                ]
            }
        };
        self.transact_conditional(items).await
    }

    async fn apply_receipt(
        &self,
        message_id: &str,
        receipt: Receipt,
    ) -> Result<ReceiptApplied, StoreError> {
        let Some(pointer) = self.get_latest(message_key(message_id)).await? else {
            return Ok(ReceiptApplied::Unknown);
        };
        let f = Fields(&pointer);
        let tenant = TenantId(f.str("tenant_id")?);
        let campaign = CampaignId(f.str("campaign_id")?);
        let recipient_sk = f.str("recipient_sk")?;
        // `R#<batch>#<contact>`
        let contact = recipient_sk
            .splitn(3, '#')
            .nth(2)
            .map(|c| ContactId(c.to_owned()))
            .ok_or_else(|| StoreError::Invalid(format!("message pointer {recipient_sk}")))?;
        let recipient = key(f.str("recipient_pk")?, recipient_sk);
        let (set, counter, vals) = match receipt {
            Receipt::Delivered => (
                "SET #st = :to",
                "delivered",
                values(vec![(":to", s("delivered")), (":sent", s("sent"))]),
            ),
            Receipt::Undelivered => (
                "SET #st = :to",
                "undelivered",
                values(vec![(":to", s("undelivered")), (":sent", s("sent"))]),
            ),
        };
        let items = vec![
            self.tx_update(
                recipient,
                set,
                Some("#st = :sent"),
                Some(names(&[("#st", "state")])),
                vals,
            )?,
            self.tx_count(&tenant, &campaign, &[(counter, 1)])?,
        ];
        Ok(if self.transact_conditional(items).await? {
            ReceiptApplied::Applied(tenant, campaign, contact)
        } else {
            ReceiptApplied::Unchanged
        })
    }

    async fn claim_sender(&self, tenant: &TenantId, sender: &str) -> Result<bool, StoreError> {
        let mut item = sender_key(sender);
        item.insert("type".into(), s("sms_sender"));
        item.insert("tenant_id".into(), s(tenant.as_str()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR tenant_id = :t")
            .set_expression_attribute_values(Some(values(vec![(":t", s(tenant.as_str()))])))
            .send()
            .await
            .map_err(crate::errors::store_error);
        match put {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn sender_owner(&self, sender: &str) -> Result<Option<TenantId>, StoreError> {
        self.get_latest(sender_key(sender))
            .await?
            .map(|item| Fields(&item).str("tenant_id").map(TenantId))
            .transpose()
    }

    async fn add_progress(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        delta: &Progress,
    ) -> Result<(), StoreError> {
        let adds: Vec<(&str, i64)> = [
            ("sent", delta.sent as i64),
            ("delivered", delta.delivered as i64),
            ("undelivered", delta.undelivered as i64),
            ("failed", delta.failed as i64),
            ("skipped", delta.skipped as i64),
            ("credits_used", delta.credits_used),
            ("credits_released", delta.credits_released),
        ]
        .into_iter()
        .filter(|(_, by)| *by != 0)
        .collect();
        if adds.is_empty() {
            return Ok(());
        }
        let (expression, field_names, vals) = adds_expression(&adds);
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(campaign_key(tenant, campaign)))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(field_names))
            .set_expression_attribute_values(Some(vals))
            .send()
            .await
            .map_err(crate::errors::store_error)?;
        Ok(())
    }
}
