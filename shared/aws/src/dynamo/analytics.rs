//! Engagement snapshots in the main table (see `docs/data-model.md`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | snapshot due | `SNAPDUE#<0..3>` (the post's `due` shard) | `<due, epoch ms, 13>#<tenant>#<post>#<account>` |
//! | snapshot | `TENANT#<tenant>` | `SNAPSHOT#<published, epoch ms, 13>#<post>#<account>#<milestone>` |
//!
//! Due entries are read per shard by time (`sk < "<now>$"`), no index needed; snapshots are
//! read per tenant by the time their variant was published.

use super::items::*;
use super::ops::build_error;
use super::store::{DynamoStore, values};
use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use herald_domain::StoreError;
use herald_domain::analytics::{Engagement, Milestone, Snapshot, SnapshotDue, SnapshotStore};
use herald_domain::clock::epoch_millis;
use herald_domain::ids::{AccountId, PostId, TenantId};
use herald_domain::model::Platform;
use time::OffsetDateTime;

fn due_key(entry: &SnapshotDue) -> Item {
    key(
        format!("SNAPDUE#{}", due_shard(&entry.post_id)),
        format!(
            "{:013}#{}#{}#{}",
            epoch_millis(entry.due_at).max(0),
            entry.tenant_id,
            entry.post_id,
            entry.account_id
        ),
    )
}

/// The entry the publisher writes with a published outcome: due at once, no milestone yet.
pub fn first_due_item(
    tenant: &TenantId,
    post: &PostId,
    account: &AccountId,
    platform_post_id: &str,
    published_at: OffsetDateTime,
) -> Item {
    due_item(&SnapshotDue {
        tenant_id: tenant.clone(),
        post_id: post.clone(),
        account_id: account.clone(),
        platform_post_id: platform_post_id.to_owned(),
        published_at,
        milestone: None,
        due_at: published_at,
    })
}

fn due_item(entry: &SnapshotDue) -> Item {
    let mut item = due_key(entry);
    item.insert("tenant_id".into(), s(entry.tenant_id.as_str()));
    item.insert("post_id".into(), s(entry.post_id.as_str()));
    item.insert("account_id".into(), s(entry.account_id.as_str()));
    item.insert("platform_post_id".into(), s(&entry.platform_post_id));
    item.insert("published_at".into(), time_n(entry.published_at));
    item.insert("due_at".into(), time_n(entry.due_at));
    if let Some(m) = entry.milestone {
        item.insert("milestone".into(), s(m.as_str()));
    }
    item
}

fn due_from_item(item: &Item) -> Result<SnapshotDue, StoreError> {
    let f = Fields(item);
    Ok(SnapshotDue {
        tenant_id: TenantId(f.str("tenant_id")?),
        post_id: PostId(f.str("post_id")?),
        account_id: AccountId(f.str("account_id")?),
        platform_post_id: f.str("platform_post_id")?,
        published_at: f.time("published_at")?,
        milestone: f.opt_str("milestone").and_then(|m| Milestone::parse(&m)),
        due_at: f.time("due_at")?,
    })
}

fn snapshot_sk_prefix(t: OffsetDateTime) -> String {
    format!("SNAPSHOT#{:013}", epoch_millis(t).max(0))
}

fn snapshot_item(snap: &Snapshot) -> Item {
    let mut item = key(
        tenant_pk(&snap.tenant_id),
        format!(
            "{}#{}#{}#{}",
            snapshot_sk_prefix(snap.published_at),
            snap.post_id,
            snap.account_id,
            snap.milestone.as_str()
        ),
    );
    item.insert("post_id".into(), s(snap.post_id.as_str()));
    item.insert("account_id".into(), s(snap.account_id.as_str()));
    item.insert("platform".into(), s(snap.platform.as_str()));
    item.insert("platform_post_id".into(), s(&snap.platform_post_id));
    item.insert("published_at".into(), time_n(snap.published_at));
    item.insert("milestone".into(), s(snap.milestone.as_str()));
    item.insert("taken_at".into(), time_n(snap.taken_at));
    let e = snap.engagement;
    for (name, v) in [
        ("likes", e.likes),
        ("comments", e.comments),
        ("shares", e.shares),
        ("impressions", e.impressions),
    ] {
        if let Some(v) = v {
            item.insert(name.into(), n(v));
        }
    }
    item
}

fn snapshot_from_item(tenant: &TenantId, item: &Item) -> Result<Snapshot, StoreError> {
    let f = Fields(item);
    let count = |name: &str| f.opt_num(name).and_then(|v| u64::try_from(v).ok());
    Ok(Snapshot {
        tenant_id: tenant.clone(),
        post_id: PostId(f.str("post_id")?),
        account_id: AccountId(f.str("account_id")?),
        platform: Platform::parse(&f.str("platform")?)
            .ok_or_else(|| StoreError::Invalid("a snapshot names an unknown platform".into()))?,
        platform_post_id: f.str("platform_post_id")?,
        published_at: f.time("published_at")?,
        milestone: Milestone::parse(&f.str("milestone")?)
            .ok_or_else(|| StoreError::Invalid("a snapshot names an unknown milestone".into()))?,
        taken_at: f.time("taken_at")?,
        engagement: Engagement {
            likes: count("likes"),
            comments: count("comments"),
            shares: count("shares"),
            impressions: count("impressions"),
        },
    })
}

impl DynamoStore {
    fn delete_due(&self, entry: &SnapshotDue) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(due_key(entry)))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(build_error)?,
            )
            .build())
    }
}

#[async_trait]
impl SnapshotStore for DynamoStore {
    async fn due_snapshots(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SnapshotDue>, StoreError> {
        let upper = format!("{:013}$", epoch_millis(now).max(0));
        let mut found: Vec<(String, SnapshotDue)> = Vec::new();
        for shard in 0..DUE_SHARDS {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk < :upper")
                .set_expression_attribute_values(Some(values(vec![
                    (":pk", s(format!("SNAPDUE#{shard}"))),
                    (":upper", s(&upper)),
                ])))
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let sk = Fields(item).str("sk")?;
                found.push((sk, due_from_item(item)?));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().take(limit).map(|(_, e)| e).collect())
    }

    async fn move_due(
        &self,
        entry: &SnapshotDue,
        next: Option<&SnapshotDue>,
    ) -> Result<(), StoreError> {
        let mut items = vec![self.delete_due(entry)?];
        if let Some(next) = next {
            items.push(self.tx_put(due_item(next), None, None)?);
        }
        if self.transact_conditional(items).await? {
            Ok(())
        } else {
            Err(StoreError::Conflict)
        }
    }

    async fn record_snapshot(
        &self,
        snapshot: &Snapshot,
        entry: &SnapshotDue,
        next: Option<&SnapshotDue>,
    ) -> Result<bool, StoreError> {
        //   a snapshot is written once per (variant, milestone): attribute_not_exists;
        //   the due entry it came from must still be there, and gives way to the next.
        let mut items = vec![
            self.tx_put(
                snapshot_item(snapshot),
                Some("attribute_not_exists(pk)"),
                None,
            )?,
            self.delete_due(entry)?,
        ];
        if let Some(next) = next {
            items.push(self.tx_put(due_item(next), None, None)?);
        }
        self.transact_conditional(items).await
    }

    async fn snapshots(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Snapshot>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .set_expression_attribute_values(Some(values(vec![
                    (":pk", s(tenant_pk(tenant))),
                    (":from", s(snapshot_sk_prefix(from))),
                    (":to", s(snapshot_sk_prefix(to))),
                ])))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in page.items() {
                out.push(snapshot_from_item(tenant, item)?);
            }
            match page.last_evaluated_key {
                Some(k) if out.len() < 50_000 => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}
