//! The probes over the domain's own ports: scheduled functions' heartbeats, the platforms'
//! app blocks, and accounts that need someone (every tenant's, or one tenant's).

use super::{AccountCensus, AppBlocks, Check, Observed, Probe, Status, Target};
use crate::ids::{Platform, TenantId};
use crate::model::AccountStatus;
use crate::ports::{AccountStore, HeartbeatStore};
use crate::publishing::gates::BreakerState;
use async_trait::async_trait;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// A token the refresh should already have renewed: it refreshes 30 minutes ahead, so one
/// due within 15 minutes means refreshing is failing.
const OVERDUE: Duration = Duration::minutes(15);
/// How far ahead expiring tokens are counted (a figure to watch, not a fault).
const EXPIRING: Duration = Duration::hours(24);

/// A scheduled function and how often it runs.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub function: &'static str,
    pub every: Duration,
}

/// Each scheduled function's last run: `pass` within three periods, `warn` within ten (a
/// run or two failed), `fail` beyond (the schedule stopped); `warn` when it never ran (a
/// deployment's first minutes).
pub struct HeartbeatProbe {
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub schedules: Vec<Schedule>,
}

crate::debug_fields!(HeartbeatProbe, schedules);

#[async_trait]
impl Probe for HeartbeatProbe {
    fn target(&self) -> Target {
        Target::new("heartbeat:age", "scheduled functions", "component")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let beats = self.schedules.iter().map(|s| async move {
            let check = Check::new("heartbeat:age", s.function, "component", now);
            match self.heartbeats.last_beat(s.function).await {
                Err(e) => check.failed(format!("reading the heartbeat failed: {e}")),
                Ok(None) => check.status(Status::Warn, "has not run yet"),
                Ok(Some((at, _))) => {
                    let age = now - at;
                    let check = check.observed(Observed::Seconds(age.whole_seconds()));
                    if age <= s.every * 3 {
                        check
                    } else {
                        let status = if age <= s.every * 10 {
                            Status::Warn
                        } else {
                            Status::Fail
                        };
                        check.status(
                            status,
                            format!(
                                "last ran {} s ago (runs every {} s)",
                                age.whole_seconds(),
                                s.every.whole_seconds()
                            ),
                        )
                    }
                }
            }
        });
        futures::future::join_all(beats).await
    }
}

/// The platforms' app-wide blocks: `warn` while a platform has told Herald to stop calling it.
pub struct AppBlockProbe {
    pub blocks: Arc<dyn AppBlocks>,
}

crate::debug_fields!(AppBlockProbe);

#[async_trait]
impl Probe for AppBlockProbe {
    fn target(&self) -> Target {
        Target::new("platform:appBlock", "platforms", "system")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let blocks = Platform::ALL.map(|platform| async move {
            let check = Check::new("platform:appBlock", platform.as_str(), "system", now);
            match self.blocks.app_block(platform).await {
                Err(e) => check.failed(format!("reading the block failed: {e}")),
                Ok(Some(until)) if until > now => check
                    .observed(Observed::Time(until))
                    .status(Status::Warn, "the platform allows no more calls until then"),
                Ok(_) => check,
            }
        });
        futures::future::join_all(blocks).await
    }
}

/// Every tenant's accounts, counted (the operator's view).
pub struct CensusProbe {
    pub census: Arc<dyn AccountCensus>,
}

crate::debug_fields!(CensusProbe);

#[async_trait]
impl Probe for CensusProbe {
    fn target(&self) -> Target {
        Target::new("accounts:needsReauth", "all tenants", "system")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        match self.census.census(now + EXPIRING, now + OVERDUE).await {
            Err(e) => vec![
                self.target()
                    .check(now)
                    .failed(format!("counting accounts failed: {e}")),
            ],
            Ok(c) => {
                let mut checks =
                    account_checks("all tenants", now, c.needs_reauth, c.expiring, c.overdue);
                checks.push(
                    Check::new("accounts:total", "all tenants", "system", now)
                        .observed(Observed::Count(c.accounts)),
                );
                checks
            }
        }
    }
}

/// One tenant's accounts: the ones to reconnect, tokens about to expire, and open circuits.
pub struct AccountChecks {
    pub accounts: Arc<dyn AccountStore>,
    pub tenant: TenantId,
}

crate::debug_fields!(AccountChecks, tenant);

#[async_trait]
impl Probe for AccountChecks {
    fn target(&self) -> Target {
        Target::new("accounts:needsReauth", self.tenant.as_str(), "system")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let tenant = self.tenant.as_str();
        let accounts = match self.accounts.list_accounts(&self.tenant).await {
            Ok(accounts) => accounts,
            Err(e) => {
                return vec![
                    self.target()
                        .check(now)
                        .failed(format!("listing accounts failed: {e}")),
                ];
            }
        };
        let count = |f: &dyn Fn(&crate::model::Account) -> bool| {
            accounts.iter().filter(|a| f(a)).count() as u64
        };
        let active = |a: &crate::model::Account| a.status == AccountStatus::Active;
        let expires_before = |a: &crate::model::Account, t: OffsetDateTime| {
            active(a) && a.token_expires_at.is_some_and(|e| e <= t)
        };
        let mut checks = account_checks(
            tenant,
            now,
            count(&|a| a.status == AccountStatus::NeedsReauth),
            count(&|a| expires_before(a, now + EXPIRING)),
            count(&|a| expires_before(a, now + OVERDUE)),
        );
        let open = count(&|a| a.breaker.state != BreakerState::Closed);
        let circuits = Check::new("accounts:openCircuits", tenant, "system", now)
            .observed(Observed::Count(open));
        checks.push(if open == 0 {
            circuits
        } else {
            circuits.status(
                Status::Warn,
                "publishing to these accounts is paused after repeated failures; it resumes when a probe succeeds",
            )
        });
        checks
    }
}

fn account_checks(
    who: &str,
    now: OffsetDateTime,
    needs_reauth: u64,
    expiring: u64,
    overdue: u64,
) -> Vec<Check> {
    let reauth = Check::new("accounts:needsReauth", who, "system", now)
        .observed(Observed::Count(needs_reauth));
    let tokens = Check::new("tokens:expiringWithin24h", who, "system", now)
        .observed(Observed::Count(expiring));
    vec![
        if needs_reauth == 0 {
            reauth
        } else {
            reauth.status(
                Status::Warn,
                "these accounts must be connected again before they can publish",
            )
        },
        if overdue == 0 {
            tokens
        } else {
            tokens.status(
                Status::Warn,
                format!("{overdue} token(s) expire within 15 minutes and were not refreshed"),
            )
        },
    ]
}

/// Dead letters waiting in their records, per source queue: `warn` while any wait.
pub struct DeadLetterProbe {
    pub records: Arc<dyn crate::dead_letters::DeadLetterRecords>,
    /// The sources always shown, even with none waiting.
    pub sources: Vec<String>,
}

crate::debug_fields!(DeadLetterProbe, sources);

#[async_trait]
impl Probe for DeadLetterProbe {
    fn target(&self) -> Target {
        Target::new("deadLetters:pending", "dead letters", "datastore")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let pending = match self.records.pending().await {
            Ok(p) => p,
            Err(e) => return vec![self.target().check(now).failed(e)],
        };
        let mut sources = self.sources.clone();
        sources.extend(
            pending
                .keys()
                .filter(|k| !self.sources.contains(k))
                .cloned(),
        );
        sources
            .into_iter()
            .map(|source| {
                let n = pending.get(&source).copied().unwrap_or(0);
                let check = Check::new("deadLetters:pending", source, "queue", now)
                    .observed(Observed::Count(n));
                if n == 0 {
                    check
                } else {
                    check.status(
                        Status::Warn,
                        format!("{n} dead letter(s) wait: inspect, requeue or delete them"),
                    )
                }
            })
            .collect()
    }
}

/// How long a live campaign may go without a recipient finishing before its check warns:
/// three reconciler repairs (each after ten minutes standing still) should have moved it.
pub const CAMPAIGN_STANDING: Duration = Duration::minutes(30);

/// Every tenant's campaigns between enqueue and settlement (the operator's view): how many,
/// and the ones nothing has moved for [`CAMPAIGN_STANDING`].
pub struct CampaignProbe {
    pub campaigns: Arc<dyn crate::campaigns::CampaignStore>,
}

crate::debug_fields!(CampaignProbe);

#[async_trait]
impl Probe for CampaignProbe {
    fn target(&self) -> Target {
        Target::new("sms:liveCampaigns", "all tenants", "system")
    }

    async fn check(&self, now: OffsetDateTime) -> Vec<Check> {
        let live = match self
            .campaigns
            .live_campaigns(crate::campaigns::reconcile::LIVE_PER_RUN)
            .await
        {
            Ok(live) => live,
            Err(e) => {
                return vec![
                    self.target()
                        .check(now)
                        .failed(format!("reading the live campaigns failed: {e}")),
                ];
            }
        };
        let standing = live
            .iter()
            .filter(|c| now - c.moved_at > CAMPAIGN_STANDING)
            .count() as u64;
        let mut still = Check::new("sms:standingCampaigns", "all tenants", "system", now)
            .observed(Observed::Count(standing));
        if standing > 0 {
            still = still.status(
                Status::Warn,
                format!(
                    "{standing} campaign(s) with no recipient finishing for {} minutes: stuck \
                     (see the stuck-campaign runbook), paused, or waiting out quiet hours",
                    CAMPAIGN_STANDING.whole_minutes()
                ),
            );
        }
        vec![
            Check::new("sms:liveCampaigns", "all tenants", "system", now)
                .observed(Observed::Count(live.len() as u64)),
            still,
        ]
    }
}
