//! What keeps campaigns moving, on the main table: an enqueue's audience snapshot in parts
//! (`SNAP#<snapshot>#<part>` beside the recipients, deleted when the enqueue ends), and the
//! live-campaign markers the reconciler reads across tenants (`LIVECAMPAIGNS` /
//! `<tenant>#<campaign>`, one per campaign between its enqueue and its settlement, with the
//! count of finished recipients the reconciler last saw).

use super::campaigns::json;
use super::items::*;
use super::store::{DynamoStore, values, written};
use crate::errors::store_error;
use herald_domain::StoreError;
use herald_domain::campaigns::SnapshotPart;
use herald_domain::campaigns::reconcile::LiveCampaign;
use herald_domain::ids::{CampaignId, TenantId};
use time::OffsetDateTime;

const LIVE_PK: &str = "LIVECAMPAIGNS";

fn live_key(tenant: &TenantId, campaign: &CampaignId) -> Item {
    key(LIVE_PK.to_owned(), format!("{tenant}#{campaign}"))
}

impl DynamoStore {
    pub(super) async fn put_snapshot_item(
        &self,
        mut item: Item,
        content: &SnapshotPart,
    ) -> Result<(), StoreError> {
        item.insert("type".into(), s("sms_snapshot"));
        item.insert("part".into(), s(json(content)?));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(super) async fn snapshot_item(
        &self,
        key: Item,
    ) -> Result<Option<SnapshotPart>, StoreError> {
        let Some(item) = self.get(key).await? else {
            return Ok(None);
        };
        let part = serde_json::from_str(&Fields(&item).str("part")?)
            .map_err(|_| StoreError::Invalid("snapshot item: bad part".into()))?;
        Ok(Some(part))
    }

    pub(super) async fn delete_snapshot_items(
        &self,
        pk: String,
        prefix: &str,
    ) -> Result<(), StoreError> {
        for item in self.query_prefix(pk, prefix).all().await? {
            self.delete_key(&item).await?;
        }
        Ok(())
    }

    async fn delete_key(&self, item: &Item) -> Result<(), StoreError> {
        let f = Fields(item);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(f.str("pk")?, f.str("sk")?)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(super) async fn mark_live_item(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut item = live_key(tenant, campaign);
        item.insert("type".into(), s("live_campaign"));
        item.insert("tenant_id".into(), s(tenant.as_str()));
        item.insert("campaign_id".into(), s(campaign.as_str()));
        item.insert("seen_done".into(), n(0));
        item.insert("seen_at".into(), time_n(at));
        item.insert("moved_at".into(), time_n(at));
        // Marked already: what the reconciler saw stands.
        written(self.put_new(item).await).map(|_| ())
    }

    pub(super) async fn unmark_live_item(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
    ) -> Result<(), StoreError> {
        self.delete_key(&live_key(tenant, campaign)).await
    }

    pub(super) async fn live_items(&self, limit: usize) -> Result<Vec<LiveCampaign>, StoreError> {
        let mut live = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .set_expression_attribute_values(Some(values(vec![(":pk", s(LIVE_PK))])))
                .limit((limit - live.len()).min(1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let f = Fields(item);
                let seen_at = f.time("seen_at")?;
                live.push(LiveCampaign {
                    tenant_id: TenantId(f.str("tenant_id")?),
                    campaign_id: CampaignId(f.str("campaign_id")?),
                    seen_done: f.u64("seen_done")?,
                    seen_at,
                    // Markers written before it: last seen is the best known.
                    moved_at: f.opt_time("moved_at").unwrap_or(seen_at),
                });
            }
            start = out.last_evaluated_key;
            if start.is_none() || live.len() >= limit {
                return Ok(live);
            }
        }
    }

    pub(super) async fn saw_live_item(
        &self,
        tenant: &TenantId,
        campaign: &CampaignId,
        done: u64,
        at: OffsetDateTime,
        moved: bool,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(live_key(tenant, campaign)))
            .update_expression(if moved {
                "SET seen_done = :d, seen_at = :a, moved_at = :a"
            } else {
                "SET seen_done = :d, seen_at = :a"
            })
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_values(Some(values(vec![
                (":d", n(done)),
                (":a", time_n(at)),
            ])))
            .send()
            .await
            .map_err(store_error);
        // Unmarked meanwhile (it settled): nothing to record.
        written(result).map(|_| ())
    }

    /// Upgrade: marks live every campaign that is enqueuing or sending (written before the
    /// markers existed), so the reconciler looks after it; how many it marked. Marking one
    /// already marked changes nothing.
    pub async fn backfill_live_campaigns(&self) -> Result<usize, StoreError> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "begins_with(pk, :t) AND begins_with(sk, :c) AND #status IN (:e, :s)",
            )
            .projection_expression("tenant_id, campaign_id, updated_at")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values(vec![
                (":t", s("TENANT#")),
                (":c", s("CAMPAIGN#")),
                (":e", s("enqueuing")),
                (":s", s("sending")),
            ])))
            .into_paginator()
            .send();
        let mut marked = 0;
        while let Some(page) = pages.next().await {
            for item in page.map_err(store_error)?.items() {
                let f = Fields(item);
                let (tenant, campaign) = (
                    TenantId(f.str("tenant_id")?),
                    CampaignId(f.str("campaign_id")?),
                );
                self.mark_live_item(&tenant, &campaign, f.time("updated_at")?)
                    .await?;
                marked += 1;
            }
        }
        Ok(marked)
    }
}
