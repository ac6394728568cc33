//! The poller: on its schedule, one ingest job per due stream.

use super::*;
use crate::clock::Clock;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PollConfig {
    /// `INGEST_ENABLED`: when false, nothing is sent.
    pub enabled: bool,
    /// `DRY_RUN`: every job is a dry run.
    pub dry_run: bool,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dry_run: false,
        }
    }
}

/// The name this function's heartbeat is stored under.
pub const HEARTBEAT: &str = "poller";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    pub enabled: bool,
    pub streams: usize,
    pub sent: usize,
    pub send_failures: usize,
    pub leased: usize,
    /// Throttled by a platform until a reset still to come.
    pub deferred: usize,
    pub not_due: usize,
    pub dry_run_jobs: usize,
    /// Every stream's counters added up.
    pub totals: Counters,
}

#[derive(Clone)]
pub struct Poller {
    pub store: Arc<dyn IngestStore>,
    pub queue: Arc<dyn IngestQueue>,
    pub clock: Arc<dyn Clock>,
    pub config: PollConfig,
}

crate::debug_fields!(Poller, config);

impl Poller {
    pub async fn run_once(&self) -> Result<PollReport, StoreError> {
        let mut report = PollReport {
            enabled: self.config.enabled,
            ..Default::default()
        };
        if !self.config.enabled {
            return Ok(report);
        }
        let now = self.clock.now();
        let correlation_id = format!("poll-{}", uuid::Uuid::new_v4().simple());
        let candidates = self.store.candidates().await?;
        report.streams = candidates.len();
        let mut jobs = Vec::new();
        for c in candidates {
            let mut dry_run = self.config.dry_run;
            if let Some(state) = &c.state {
                report.totals += state.counters;
                if state.leased(now) {
                    report.leased += 1;
                    continue;
                }
                if state.deferred_until.is_some_and(|u| u > now) {
                    report.deferred += 1;
                    continue;
                }
                if state.next_due.is_some_and(|d| d > now) {
                    report.not_due += 1;
                    continue;
                }
                dry_run |= state.dry_run;
            }
            report.dry_run_jobs += usize::from(dry_run);
            jobs.push(IngestJob {
                tenant_id: c.tenant_id,
                account_id: c.account_id,
                stream: c.key,
                dry_run,
                correlation_id: Some(correlation_id.clone()),
            });
        }
        if jobs.is_empty() {
            return Ok(report);
        }
        tracing::info!(correlation_id, jobs = jobs.len(), "sending ingest jobs");
        match self.queue.send(&jobs).await {
            Ok(results) => {
                for (job, r) in jobs.iter().zip(results) {
                    match r {
                        Ok(()) => report.sent += 1,
                        Err(e) => {
                            report.send_failures += 1;
                            tracing::warn!(stream = %job.stream, error = %e, "an ingest job was not sent; the next run sends it");
                        }
                    }
                }
            }
            Err(e) => {
                report.send_failures += jobs.len();
                tracing::warn!(error = %e, "sending ingest jobs failed; the next run sends them");
            }
        }
        Ok(report)
    }
}
