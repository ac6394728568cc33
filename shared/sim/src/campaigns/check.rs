//! What a campaign seed checks at its end (the invariants listed in the parent module).

use super::models::Taken;
use super::{CampaignReport, World};
use herald_domain::campaigns::{
    Campaign, CampaignStatus, CampaignStore, Progress, Recipient, RecipientState,
};
use herald_domain::wallet::{Totals, WalletStore};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

impl World {
    pub(super) async fn check(
        &self,
        campaign: &Campaign,
        snapshot: &[Recipient],
        stops: &BTreeMap<String, OffsetDateTime>,
        refused: &BTreeSet<String>,
        report: &mut CampaignReport,
    ) {
        let taken = self
            .provider
            .taken
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let ours: Vec<&Taken> = taken
            .iter()
            .filter(|t| t.client_ref.starts_with("hr_"))
            .collect();
        report.texted = ours.len();
        let mut per_number: BTreeMap<&str, usize> = BTreeMap::new();
        report.quiet_hours = campaign.quiet_hours.is_some();
        for t in &ours {
            *per_number.entry(&t.to).or_default() += 1;
            if let Some(quiet) = &campaign.quiet_hours
                && quiet.wait(&t.to, t.at).is_some()
            {
                report
                    .findings
                    .push(format!("inside quiet hours: {} at {}", t.to, t.at));
            }
            if let Some(stop) = stops.get(&t.to)
                && t.at > *stop
            {
                report
                    .findings
                    .push(format!("texted after its STOP committed: {}", t.to));
            }
        }
        for (number, count) in &per_number {
            if *count > 1 {
                report
                    .findings
                    .push(format!("texted {count} times: {number}"));
            }
        }
        let now_recipients = self.recipients(campaign, campaign_batches(snapshot)).await;
        let mut counted = Progress::default();
        for r in &now_recipients {
            if let RecipientState::Queued | RecipientState::Sending { .. } = &r.state {
                report
                    .findings
                    .push(format!("never ended: {} ({:?})", r.contact_id, r.state));
            }
            counted.tally(r);
            let texted = per_number.contains_key(r.phone.as_str());
            let stopped = stops.contains_key(&r.phone);
            let ended_texted_or_failed = texted || matches!(r.state, RecipientState::Failed { .. });
            if !report.cancelled && !stopped && !refused.contains(&r.phone) && !texted {
                report.findings.push(format!(
                    "opted in throughout, never texted: {}",
                    r.contact_id
                ));
            }
            if !report.cancelled && !stopped && !ended_texted_or_failed {
                report.findings.push(format!(
                    "neither texted nor failed with a reason: {}",
                    r.contact_id
                ));
            }
        }
        let Some(c) = self
            .campaigns
            .get_campaign(&self.tenant, &campaign.id)
            .await
            .ok()
            .flatten()
        else {
            report.findings.push("the campaign is gone".into());
            return;
        };
        if !matches!(
            c.status,
            CampaignStatus::Completed | CampaignStatus::Cancelled
        ) {
            report
                .findings
                .push(format!("the campaign ended {}", c.status.as_str()));
        }
        let p = &c.progress;
        if (p.sent, p.failed, p.skipped) != (counted.sent, counted.failed, counted.skipped)
            || p.delivered + p.undelivered != counted.delivered + counted.undelivered
        {
            report.findings.push(format!(
                "counters {:?} differ from the recipients {:?}",
                (p.sent, p.failed, p.skipped, p.delivered + p.undelivered),
                (
                    counted.sent,
                    counted.failed,
                    counted.skipped,
                    counted.delivered + counted.undelivered
                )
            ));
        }
        let wallet = self.wallets.wallet(&self.tenant).await.unwrap_or_default();
        let totals = Totals::of(&self.wallets.entries(&self.tenant));
        if wallet.balance + wallet.reserved != totals.expected() {
            report.findings.push(format!(
                "wallet {} + {} reserved != ledger {}",
                wallet.balance,
                wallet.reserved,
                totals.expected()
            ));
        }
        if wallet.balance < 0 {
            report
                .findings
                .push(format!("negative balance {}", wallet.balance));
        }
        if wallet.reserved != 0 {
            report
                .findings
                .push(format!("reservation left open: {}", wallet.reserved));
        }
        if !report.cancelled && totals.debits != p.credits_used {
            report.findings.push(format!(
                "debited {} for {} credits used",
                totals.debits, p.credits_used
            ));
        }
    }
}

fn campaign_batches(snapshot: &[Recipient]) -> u32 {
    snapshot.iter().map(|r| r.batch + 1).max().unwrap_or(0)
}
