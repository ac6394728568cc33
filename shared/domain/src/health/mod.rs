//! Health: one check per dependency, in the terms of the IETF health-check draft
//! (draft-inadarei-api-health-check): a check is a measurement of one component with a
//! status of `pass`, `warn` or `fail`, and the answer's status is the worst of its checks.
//!
//! Every [`Probe`] runs at once and each is bounded in time: a dependency that does not
//! answer turns its own check `fail`; it never turns the health answer into an error.
//!
//! Who sees what: the deployment's operator sees every check with its measurements. A tenant's
//! admin sees the shared checks' statuses only (a queue's depth or a table's latency is the
//! deployment's business, not a tenant's) and the checks of its own accounts in full.

mod probes;

#[cfg(feature = "memory")]
pub mod memory;

pub use probes::{
    AccountChecks, AppBlockProbe, CAMPAIGN_STANDING, CampaignProbe, CensusProbe, DeadLetterProbe,
    HeartbeatProbe, Schedule,
};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{Platform, TenantId};
use crate::ports::{AccountStore, HeartbeatStore};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Every scheduled function and how often its schedule runs it (`template.yaml`): each
/// leaves a [`Heartbeat`] after every run, and the health check reads them.
pub const SCHEDULED: [Schedule; 4] = [
    Schedule {
        function: crate::publishing::dispatch::HEARTBEAT,
        every: time::Duration::minutes(1),
    },
    Schedule {
        function: crate::ingest::poller::HEARTBEAT,
        every: time::Duration::minutes(1),
    },
    Schedule {
        function: crate::analytics::HEARTBEAT,
        every: time::Duration::minutes(1),
    },
    Schedule {
        function: crate::publishing::reconcile::HEARTBEAT,
        every: time::Duration::minutes(1),
    },
];

/// Records a scheduled function's finished run, with its report as the summary. A failed
/// write is logged, not raised: the run itself succeeded, and the next one beats again.
#[derive(Clone)]
pub struct Heartbeat {
    pub store: Arc<dyn HeartbeatStore>,
    pub clock: Arc<dyn Clock>,
    pub function: &'static str,
}

crate::debug_fields!(Heartbeat, function);

impl Heartbeat {
    pub async fn record(&self, report: &impl serde::Serialize) {
        let summary = serde_json::to_string(report).unwrap_or_default();
        if let Err(e) = self
            .store
            .beat(self.function, self.clock.now(), &summary)
            .await
        {
            tracing::warn!(function = self.function, error = %e, "recording the heartbeat failed");
        }
    }
}

/// A check's verdict. Ordered from best to worst, so the worst of several is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// A measured value, as the draft's `observedValue`.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Count(u64),
    Millis(u64),
    Seconds(i64),
    Time(OffsetDateTime),
}

/// One measurement of one component (an entry of the draft's `checks` object, under `name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `<component>:<measurement>`, the key the draft groups checks under.
    pub name: String,
    /// Which instance of the component (a table, a queue, a function).
    pub component_id: String,
    /// `datastore`, `queue`, `component` or `system`.
    pub component_type: &'static str,
    pub observed: Option<Observed>,
    pub status: Status,
    pub time: OffsetDateTime,
    /// Why the status is not `pass`, in words an operator can act on.
    pub output: Option<String>,
}

impl Check {
    pub fn new(
        name: impl Into<String>,
        component_id: impl Into<String>,
        component_type: &'static str,
        time: OffsetDateTime,
    ) -> Self {
        Self {
            name: name.into(),
            component_id: component_id.into(),
            component_type,
            observed: None,
            status: Status::Pass,
            time,
            output: None,
        }
    }

    pub fn observed(mut self, value: Observed) -> Self {
        self.observed = Some(value);
        self
    }

    /// Sets the status; `output` says why when it is not `pass`.
    pub fn status(mut self, status: Status, output: impl Into<String>) -> Self {
        self.status = status;
        if status != Status::Pass {
            self.output = Some(output.into());
        }
        self
    }

    /// The check failed: the dependency could not be asked.
    pub fn failed(self, why: impl std::fmt::Display) -> Self {
        self.status(Status::Fail, why.to_string())
    }
}

/// What one dependency's check is called, for the `fail` a probe that does not answer in
/// time is reported as.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub component_id: String,
    pub component_type: &'static str,
}

impl Target {
    pub fn new(
        name: impl Into<String>,
        component_id: impl Into<String>,
        component_type: &'static str,
    ) -> Self {
        Self {
            name: name.into(),
            component_id: component_id.into(),
            component_type,
        }
    }

    /// A `pass` check of this target, measured at `time`.
    pub fn check(self, time: OffsetDateTime) -> Check {
        Check::new(self.name, self.component_id, self.component_type, time)
    }
}

/// One dependency's checks. An adapter implements it for what only it can reach (a table, a
/// queue, a bucket); the domain's probes read its own ports.
#[async_trait]
pub trait Probe: Send + Sync {
    fn target(&self) -> Target;
    /// The checks, measured now. A dependency that answers with an error is a `fail` check,
    /// not an `Err`: a probe always answers.
    async fn check(&self, now: OffsetDateTime) -> Vec<Check>;
}

/// The number of accounts in the whole deployment by what needs an operator's attention,
/// read from an index that holds every account (never a token).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub accounts: u64,
    pub needs_reauth: u64,
    /// Active accounts whose access token expires before the horizon asked for.
    pub expiring: u64,
    /// Of those, the ones due before the overdue mark: the token refresh should have renewed
    /// them already.
    pub overdue: u64,
}

#[async_trait]
pub trait AccountCensus: Send + Sync {
    async fn census(
        &self,
        expiring_before: OffsetDateTime,
        overdue_before: OffsetDateTime,
    ) -> Result<Census, StoreError>;
}

/// The platform-wide "no calls left until" blocks (`AppLimiter::block_app`), read.
#[async_trait]
pub trait AppBlocks: Send + Sync {
    /// The block on `platform` if one was set (it may have ended already).
    async fn app_block(&self, platform: Platform) -> Result<Option<OffsetDateTime>, StoreError>;
}

/// Who asks, which decides what the answer shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// The deployment's operator: every check, with its measurements.
    Operator,
    /// A tenant's admin: the shared checks' statuses and its own accounts' checks.
    Tenant(TenantId),
}

/// The answer: the worst status and every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub status: Status,
    pub checks: Vec<Check>,
}

/// Runs every probe at once, each within `timeout`.
#[derive(Clone)]
pub struct HealthService {
    /// The deployment's dependencies (the adapters' probes and the domain's).
    pub probes: Vec<Arc<dyn Probe>>,
    /// Checks only the operator sees (counts over every tenant).
    pub operator_probes: Vec<Arc<dyn Probe>>,
    /// A tenant's own accounts.
    pub accounts: Arc<dyn AccountStore>,
    pub clock: Arc<dyn Clock>,
    pub timeout: Duration,
}

crate::debug_fields!(HealthService, timeout);

/// How long one probe may take by default: well inside API Gateway's 29 s, short enough for
/// a load balancer's or a monitor's own timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

impl HealthService {
    pub async fn report(&self, audience: &Audience) -> Report {
        let now = self.clock.now();
        let extra = match audience {
            Audience::Operator => self.operator_probes.clone(),
            Audience::Tenant(tenant) => vec![Arc::new(AccountChecks {
                accounts: self.accounts.clone(),
                tenant: tenant.clone(),
            }) as Arc<dyn Probe>],
        };
        let shared = self.probes.len();
        let runs = self
            .probes
            .iter()
            .chain(&extra)
            .map(|probe| self.bounded(probe.as_ref(), now));
        let mut checks = Vec::new();
        for (i, found) in futures::future::join_all(runs)
            .await
            .into_iter()
            .enumerate()
        {
            let is_shared = i < shared;
            checks.extend(found.into_iter().map(|c| match audience {
                Audience::Tenant(_) if is_shared => Check {
                    observed: None,
                    output: None,
                    ..c
                },
                _ => c,
            }));
        }
        Report {
            status: checks
                .iter()
                .map(|c| c.status)
                .max()
                .unwrap_or(Status::Pass),
            checks,
        }
    }

    async fn bounded(&self, probe: &dyn Probe, now: OffsetDateTime) -> Vec<Check> {
        match tokio::time::timeout(self.timeout, probe.check(now)).await {
            Ok(checks) => checks,
            Err(_) => {
                let target = probe.target();
                vec![
                    Check::new(target.name, target.component_id, target.component_type, now)
                        .failed(format!("no answer within {} ms", self.timeout.as_millis())),
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests;
