//! One stream job: lease, page from the checkpoint until done, throttled or the deadline,
//! store each page with its checkpoint, release.

use super::validation::validate;
use super::*;
use crate::clock::Clock;
use crate::model::AccountStatus;
use crate::ports::AccountStore;
use std::sync::Arc;
use time::Duration;

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Items asked for per page (X `max_results`, Facebook `limit`, LinkedIn `count`).
    pub page_size: u32,
    /// How long a run's lease holds off other workers: longer than the function's timeout.
    pub lease: Duration,
    /// A finished stream is due again after this.
    pub interval: Duration,
    /// A failed run (platform error) is tried again after this.
    pub retry_after_failure: Duration,
    /// The wait when a platform throttles without saying for how long.
    pub default_throttle: Duration,
    /// Meta's usage headers: at or above this percent the stream stops until the window resets.
    pub usage_threshold_percent: u32,
    /// Everything is fetched and validated, nothing is written (`DRY_RUN`).
    pub dry_run: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            page_size: 50,
            lease: Duration::seconds(60),
            interval: Duration::minutes(5),
            retry_after_failure: Duration::minutes(1),
            default_throttle: Duration::minutes(15),
            usage_threshold_percent: 90,
            dry_run: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every page up to the newest stored: the checkpoint is the newest item.
    Done,
    /// Stopped before the invocation's deadline; the checkpoint is where it stopped.
    Deadline,
    /// The platform's budget is spent: deferred until then.
    Throttled {
        #[serde(with = "time::serde::rfc3339")]
        until: OffsetDateTime,
    },
    /// Another worker holds the stream.
    Leased,
    /// A rate limit deferred the stream and its reset has not come.
    Deferred,
    /// The account is gone or needs reconnecting.
    AccountUnavailable,
    /// The platform or the store failed; the checkpoint is intact.
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub stream: StreamKey,
    pub dry_run: bool,
    pub outcome: RunOutcome,
    pub pages: u32,
    pub counters: Counters,
    /// Dry run: what would have been written.
    pub would_store: Vec<String>,
    pub would_review: Vec<String>,
    /// Where the stream's checkpoint is (or, in a dry run, would be) after the run.
    pub position: Position,
}

#[derive(Clone)]
pub struct StreamRunner {
    pub store: Arc<dyn IngestStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub source: Arc<dyn TimelineSource>,
    pub clock: Arc<dyn Clock>,
    pub config: IngestConfig,
}

crate::debug_fields!(StreamRunner, config);

impl StreamRunner {
    /// Runs `job` until done, throttled, failed, or `deadline` (which the caller has already
    /// shortened by the time it needs to answer).
    pub async fn run(&self, job: &IngestJob, deadline: OffsetDateTime) -> RunReport {
        let dry_run = job.dry_run || self.config.dry_run;
        let mut report = RunReport {
            stream: job.stream.clone(),
            dry_run,
            outcome: RunOutcome::Done,
            pages: 0,
            counters: Counters::default(),
            would_store: Vec::new(),
            would_review: Vec::new(),
            position: Position::default(),
        };
        let account = match self
            .accounts
            .get_account(&job.tenant_id, &job.account_id)
            .await
        {
            Ok(Some(a))
                if a.status == AccountStatus::Active
                    && StreamKey::all_for(a.platform, &a.external_id).contains(&job.stream) =>
            {
                a
            }
            Ok(_) => {
                return self
                    .skip(job, report, RunOutcome::AccountUnavailable, dry_run)
                    .await;
            }
            Err(e) => {
                report.outcome = RunOutcome::Failed {
                    reason: format!("reading the account failed: {e}"),
                };
                return report;
            }
        };
        // The account has this stream (checked above), so the key parses.
        let kind = job
            .stream
            .parse()
            .map_or(StreamKind::Posts, |(_, kind, _)| kind);
        let now = self.clock.now();
        if dry_run {
            // Reads only: no lease, no counters, nothing written.
            match self.store.stream(&job.tenant_id, &job.stream).await {
                Ok(state) => {
                    report.position = state.map(|s| s.position).unwrap_or_default();
                }
                Err(e) => {
                    report.outcome = RunOutcome::Failed {
                        reason: format!("reading the stream failed: {e}"),
                    };
                    return report;
                }
            }
            self.pages(&account, kind, job, None, deadline, &mut report)
                .await;
            return report;
        }
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let state = match self
            .store
            .take_lease(
                &job.tenant_id,
                &job.account_id,
                &job.stream,
                &owner,
                now,
                now + self.config.lease,
            )
            .await
        {
            Ok(Some(state)) => state,
            Ok(None) => return self.skip(job, report, RunOutcome::Leased, dry_run).await,
            Err(e) => {
                report.outcome = RunOutcome::Failed {
                    reason: format!("taking the lease failed: {e}"),
                };
                return report;
            }
        };
        if state.deferred_until.is_some_and(|u| u > now) {
            report.counters.skipped += 1;
            report.outcome = RunOutcome::Deferred;
            let finish = Finish {
                next_due: state.deferred_until.unwrap_or(now),
                deferred_until: state.deferred_until,
                counters: report.counters,
            };
            self.release(job, &owner, &finish).await;
            return report;
        }
        if state.dry_run {
            // An operator switched the stream to dry run after this job was sent: give the
            // lease back untouched and read only.
            let finish = Finish {
                next_due: state.next_due.unwrap_or(now),
                deferred_until: state.deferred_until,
                counters: Counters::default(),
            };
            self.release(job, &owner, &finish).await;
            report.dry_run = true;
            report.position = state.position.clone();
            self.pages(&account, kind, job, None, deadline, &mut report)
                .await;
            return report;
        }
        report.position = state.position.clone();
        let lease_lost = self
            .pages(&account, kind, job, Some(&owner), deadline, &mut report)
            .await;
        if lease_lost {
            // Someone else holds the stream now: its lease is not ours to release.
            return report;
        }
        let now = self.clock.now();
        let (next_due, deferred_until) = match &report.outcome {
            RunOutcome::Done => (now + self.config.interval, None),
            RunOutcome::Throttled { until } => (*until, Some(*until)),
            RunOutcome::Deadline => (now, None),
            _ => (now + self.config.retry_after_failure, None),
        };
        let finish = Finish {
            next_due,
            deferred_until,
            counters: Counters {
                // Page counters were written with their pages.
                processed: 0,
                failed: u64::from(matches!(report.outcome, RunOutcome::Failed { .. })),
                rate_limited: report.counters.rate_limited,
                skipped: 0,
            },
        };
        self.release(job, &owner, &finish).await;
        report
    }

    async fn release(&self, job: &IngestJob, owner: &str, finish: &Finish) {
        if let Err(e) = self
            .store
            .finish(&job.tenant_id, &job.stream, owner, finish)
            .await
        {
            // The lease runs out by itself; the checkpoint is already consistent.
            tracing::warn!(stream = %job.stream, error = %e, "releasing the stream's lease failed");
        }
    }

    async fn skip(
        &self,
        job: &IngestJob,
        mut report: RunReport,
        outcome: RunOutcome,
        dry_run: bool,
    ) -> RunReport {
        report.counters.skipped += 1;
        report.outcome = outcome;
        if !dry_run && let Err(e) = self.store.count_skip(&job.tenant_id, &job.stream).await {
            tracing::warn!(stream = %job.stream, error = %e, "counting a skipped job failed");
        }
        report
    }

    /// Pages from `report.position`; returns true when the lease was lost.
    async fn pages(
        &self,
        account: &Account,
        kind: StreamKind,
        job: &IngestJob,
        owner: Option<&str>,
        deadline: OffsetDateTime,
        report: &mut RunReport,
    ) -> bool {
        loop {
            if self.clock.now() >= deadline {
                report.outcome = RunOutcome::Deadline;
                return false;
            }
            let page = match self
                .source
                .fetch(account, kind, &report.position, self.config.page_size)
                .await
            {
                Ok(page) => page,
                Err(PlatformError::RateLimited { retry_after, .. }) => {
                    let wait = retry_after
                        .and_then(|d| Duration::try_from(d).ok())
                        .unwrap_or(self.config.default_throttle);
                    report.counters.rate_limited += 1;
                    report.outcome = RunOutcome::Throttled {
                        until: self.clock.now() + wait,
                    };
                    return false;
                }
                Err(e) => {
                    report.counters.failed += 1;
                    report.outcome = RunOutcome::Failed {
                        reason: e.to_string(),
                    };
                    return false;
                }
            };
            report.pages += 1;
            let now = self.clock.now();
            let mut items = Vec::new();
            let mut reviews = Vec::new();
            for raw in &page.items {
                match validate(account.platform, kind, raw) {
                    Ok(item) => items.push(item),
                    Err(reason) => reviews.push(review_item(job, raw, reason, now)),
                }
            }
            let position = report.position.after(&page);
            let counters = Counters {
                processed: items.len() as u64,
                failed: reviews.len() as u64,
                ..Default::default()
            };
            match owner {
                None => {
                    report
                        .would_store
                        .extend(items.iter().map(|i| i.platform_id.clone()));
                    report
                        .would_review
                        .extend(reviews.iter().map(|r| r.id.clone()));
                }
                Some(owner) => {
                    let write = PageWrite {
                        tenant_id: &job.tenant_id,
                        key: &job.stream,
                        owner,
                        items: &items,
                        reviews: &reviews,
                        position: &position,
                        counters,
                    };
                    match self.store.store_page(write).await {
                        Ok(()) => {}
                        Err(StoreError::Conflict) => {
                            report.outcome = RunOutcome::Failed {
                                reason: "the stream's lease was lost".into(),
                            };
                            return true;
                        }
                        Err(e) => {
                            report.counters.failed += 1;
                            report.outcome = RunOutcome::Failed {
                                reason: format!("storing a page failed: {e}"),
                            };
                            return false;
                        }
                    }
                }
            }
            report.counters += counters;
            report.position = position;
            // Counted per page (the template's IngestItems* metric filters), so a run that dies
            // later still counts what it stored.
            tracing::info!(
                metric = "ingest.page",
                kind = job.stream.as_str().split(':').next().unwrap_or_default(),
                stream = %job.stream,
                processed = items.len(),
                failed = reviews.len(),
                dry_run = owner.is_none(),
                "page"
            );
            if page.next.is_none() {
                report.outcome = RunOutcome::Done;
                return false;
            }
            if let Some(wait) = self.spent(&page.rate) {
                report.counters.rate_limited += 1;
                report.outcome = RunOutcome::Throttled {
                    until: self.clock.now() + wait,
                };
                return false;
            }
        }
    }

    /// The wait when the page's budget headers say the window is spent.
    fn spent(&self, rate: &crate::publishing::platform::RateSignal) -> Option<Duration> {
        let reset = rate
            .reset_after
            .and_then(|d| Duration::try_from(d).ok())
            .unwrap_or(self.config.default_throttle);
        if rate.remaining == Some(0) {
            return Some(reset);
        }
        if rate
            .app_usage_percent
            .is_some_and(|p| p >= self.config.usage_threshold_percent)
        {
            return Some(reset);
        }
        None
    }
}

fn review_item(job: &IngestJob, raw: &RawItem, reason: String, now: OffsetDateTime) -> ReviewItem {
    let text = raw.raw.to_string();
    let suffix = match &raw.platform_id {
        Some(id) => id.clone(),
        None => format!(
            "sha256:{}",
            crate::secrets::secret::sha256_hex(&[text.as_bytes()])
        ),
    };
    ReviewItem {
        id: format!("{}#{suffix}", job.stream),
        tenant_id: job.tenant_id.clone(),
        account_id: job.account_id.clone(),
        stream: job.stream.clone(),
        platform_id: raw.platform_id.clone(),
        reason,
        raw: text,
        received_at: now,
    }
}
