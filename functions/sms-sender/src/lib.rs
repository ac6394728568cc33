//! The SMS sender function: one queued campaign batch per SQS record (see
//! `herald_domain::campaigns::sender`), an enqueue job carrying on a campaign's enqueue that
//! did not fit the API's answer (see `herald_domain::campaigns::CampaignService::work`), or a
//! contact or post import's job (see `herald_domain::imports`). A batch with recipients left for later (the provider
//! throttled, an answer was unclear, the tenant paused) is sent again as a fresh delayed copy
//! and the original acknowledged, so deferrals never count toward the DLQ; only failures
//! (the store unreachable, a malformed record) leave the record for SQS to redeliver.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_aws::Clients;
use herald_aws::config::{AnnounceConfig, ConfigError, Env, SecretsConfig};
use herald_aws::dynamo::DynamoStore;
use herald_aws::lambda::{batch_response, parse_record};
use herald_aws::queue::JsonQueue;
use herald_aws::s3::S3Media;
use herald_aws::sqs::SqsSmsQueue;
use herald_domain::campaigns::sender::{BatchReport, SmsSender};
use herald_domain::campaigns::{CampaignService, EnqueueJob, EnqueueLimits, SmsBatch, SmsWork};
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::contacts::ContactService;
use herald_domain::imports::{ImportJob, ImportService};
use herald_domain::media::MediaService;
use herald_domain::publishing::posts::PostService;
use herald_domain::wallet::low_balance::LowBalanceAlerts;
use herald_domain::wallet::{PriceTable, Wallets};
use herald_platforms::sms::HttpSms;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A paused tenant's batch comes back after SQS's longest delay.
const PAUSED_DELAY: Duration = Duration::from_secs(900);
/// How long one import job works before handing on (the function's timeout is 30 s).
const IMPORT_BUDGET: Duration = Duration::from_secs(20);
/// How long one call to the provider may take before its outcome is unclear.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    /// The SMS queue itself, for deferred copies (`HERALD_SMS_QUEUE_URL`).
    pub queue_url: String,
    /// The provider's API base URL (`HERALD_SMS_API_URL`).
    pub api_url: String,
    /// The provider's API key (`HERALD_SMS_API_KEY_SECRET_ID`).
    pub api_key_secret: String,
    /// The provider's messages per second across every sender (`HERALD_SMS_MESSAGES_PER_SECOND`,
    /// default 50).
    pub messages_per_second: u32,
    /// How long a claimed recipient is left alone before another delivery resumes it
    /// (`HERALD_SMS_LEASE_SECONDS`, default 60, at least 10: longer than a provider call).
    pub lease: time::Duration,
    /// Where imported contacts are audited (`HERALD_AUDIT_TABLE`).
    pub audit_table: String,
    /// The bucket imported files (and the media imported posts name) are uploaded to
    /// (`HERALD_MEDIA_BUCKET`).
    pub media_bucket: String,
    pub secrets: SecretsConfig,
    /// Where `campaign.completed` and `sms.failed` go.
    pub announce: AnnounceConfig,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Env::read(vars, |env| {
            let messages_per_second = env.parsed("HERALD_SMS_MESSAGES_PER_SECOND", 50);
            if !(1..=10_000).contains(&messages_per_second) {
                env.problem("HERALD_SMS_MESSAGES_PER_SECOND must be 1 to 10000");
            }
            let lease = env.seconds("HERALD_SMS_LEASE_SECONDS", time::Duration::seconds(60));
            if lease < time::Duration::seconds(10) || lease > time::Duration::minutes(15) {
                env.problem("HERALD_SMS_LEASE_SECONDS must be 10 to 900");
            }
            Self {
                table: env.required("HERALD_TABLE"),
                queue_url: env.url("HERALD_SMS_QUEUE_URL"),
                api_url: env.url("HERALD_SMS_API_URL"),
                api_key_secret: env.required("HERALD_SMS_API_KEY_SECRET_ID"),
                messages_per_second,
                lease,
                audit_table: env.required("HERALD_AUDIT_TABLE"),
                media_bucket: env.required("HERALD_MEDIA_BUCKET"),
                secrets: SecretsConfig::read(env),
                announce: AnnounceConfig::read(env),
            }
        })
    }
}

/// The sender, the campaigns (for enqueue jobs), the imports and the queue deferred copies go
/// back to.
#[derive(Debug)]
pub struct Sender {
    pub sender: SmsSender,
    pub campaigns: CampaignService,
    pub imports: ImportService,
    pub queue: JsonQueue,
    pub lease: Duration,
}

pub fn sender(config: &Config, clients: &Clients) -> Sender {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets = config.secrets.cache(clients, clock.clone());
    let store = Arc::new(
        DynamoStore::new(clients.dynamodb.clone(), &config.table)
            .with_audit_table(&config.audit_table)
            .with_token_vault(config.announce.token_vault(secrets.clone())),
    );
    let events = config
        .announce
        .events(clients, store.clone(), clock.clone())
        .map(|e| e as Arc<dyn herald_domain::publishing::settle::OutcomeEvents>);
    let wallets = Arc::new(Wallets {
        store: store.clone(),
        audit: store.clone(),
        clock: clock.clone(),
        prices: PriceTable::default(),
        // A large audience's reservation is made here.
        low_balance: events.clone().map(|events| {
            Arc::new(LowBalanceAlerts {
                tenants: store.clone(),
                events,
            })
        }),
    });
    let queue = Arc::new(SqsSmsQueue::new(clients.sqs.clone(), &config.queue_url));
    let objects = Arc::new(S3Media::new(clients.s3.clone(), &config.media_bucket));
    Sender {
        campaigns: CampaignService {
            store: store.clone(),
            contacts: store.clone(),
            wallets: wallets.clone(),
            queue: queue.clone(),
            clock: clock.clone(),
            limits: EnqueueLimits::WORKER,
        },
        imports: ImportService {
            store: store.clone(),
            objects: objects.clone(),
            contacts: ContactService {
                store: store.clone(),
                audit: store.clone(),
                clock: clock.clone(),
            },
            // Imported posts are checked and created as the API creates them.
            posts: PostService {
                posts: store.clone(),
                accounts: store.clone(),
                tenants: store.clone(),
                slots: store.clone(),
                media: MediaService {
                    records: store.clone(),
                    objects,
                    clock: clock.clone(),
                    upload_url_ttl: herald_domain::media::DEFAULT_UPLOAD_URL_TTL,
                    quota: Default::default(),
                },
                clock: clock.clone(),
            },
            tenants: store.clone(),
            queue,
            clock: clock.clone(),
            upload_url_ttl: herald_domain::media::DEFAULT_UPLOAD_URL_TTL,
            budget: IMPORT_BUDGET,
        },
        sender: SmsSender {
            store: store.clone(),
            wallets,
            provider: Arc::new(HttpSms::new(
                &config.api_url,
                secrets,
                &config.api_key_secret,
                PROVIDER_TIMEOUT,
            )),
            crisis: store.clone(),
            limiter: store,
            messages_per_second: config.messages_per_second,
            clock,
            lease: config.lease,
            events,
        },
        queue: JsonQueue::new(clients.sqs.clone(), &config.queue_url, "sms"),
        lease: config.lease.unsigned_abs(),
    }
}

/// When a batch with recipients left over comes back ([`BatchReport::comes_back_in`]), with
/// SQS's longest delay as the longest wait.
fn deferral(report: &BatchReport, lease: Duration) -> Option<Duration> {
    let as_time = |d: Duration| time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
    report
        .comes_back_in(as_time(lease), as_time(PAUSED_DELAY))
        .map(|wait| wait.unsigned_abs())
}

pub async fn handle(s: &Sender, event: SqsEvent) -> SqsBatchResponse {
    let mut keep = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let worked = match parse_record::<SmsWork>(&record) {
            Ok(SmsWork::Batch(batch)) => send(s, &batch).await,
            Ok(SmsWork::Enqueue(job)) => enqueue(s, &job).await,
            Ok(SmsWork::Import(job)) => import(s, &job).await,
            Err(_) => {
                tracing::error!(message_id = %id, "malformed SMS queue message");
                false
            }
        };
        if !worked {
            keep.push(id);
        }
    }
    batch_response(keep)
}

/// Carries an enqueue on; `false` when the job must come back.
async fn enqueue(s: &Sender, job: &EnqueueJob) -> bool {
    let span = tracing::info_span!(
        "sms_enqueue",
        correlation_id = %job.correlation_id,
        tenant_id = %job.tenant_id,
        campaign_id = %job.campaign_id,
        job = job.enqueue,
    );
    run_job(
        span,
        s.campaigns.work(job),
        Some("enqueue worked"),
        "enqueueing failed",
    )
    .await
}

/// Works an import on; `false` when the job must come back.
async fn import(s: &Sender, job: &ImportJob) -> bool {
    let span = tracing::info_span!(
        "contact_import",
        correlation_id = %job.correlation_id,
        tenant_id = %job.tenant_id,
        import_id = %job.import_id,
        round = job.round,
    );
    run_job(span, s.imports.work(job), None, "importing failed").await
}

/// Runs a job's work in its span, saying `done` (when given) or `failed` with the error;
/// `false` when the job must come back.
async fn run_job<E: std::fmt::Display>(
    span: tracing::Span,
    work: impl std::future::Future<Output = Result<(), E>>,
    done: Option<&str>,
    failed: &str,
) -> bool {
    match work.instrument(span.clone()).await {
        Ok(()) => {
            if let Some(done) = done {
                span.in_scope(|| tracing::info!("{done}"));
            }
            true
        }
        Err(e) => {
            span.in_scope(|| tracing::warn!(error = %e, "{failed}"));
            false
        }
    }
}

/// Sends one batch; `false` when the record must come back.
async fn send(s: &Sender, batch: &SmsBatch) -> bool {
    let span = tracing::info_span!(
        "sms_batch",
        correlation_id = %batch.correlation_id,
        tenant_id = %batch.tenant_id,
        campaign_id = %batch.campaign_id,
        batch = batch.batch,
    );
    let report = match s.sender.send_batch(batch).instrument(span.clone()).await {
        Ok(report) => report,
        Err(e) => {
            span.in_scope(|| tracing::warn!(error = %e, "sending the batch failed"));
            return false;
        }
    };
    metrics::counter!("herald_sms_sent_total").increment(u64::from(report.sent));
    metrics::counter!("herald_sms_failed_total").increment(u64::from(report.failed));
    metrics::counter!("herald_sms_skipped_total").increment(u64::from(report.skipped));
    metrics::counter!("herald_sms_quiet_held_total").increment(u64::from(report.quiet));
    span.in_scope(|| {
        tracing::info!(
            sent = report.sent,
            failed = report.failed,
            skipped = report.skipped,
            pending = report.pending,
            quiet = report.quiet,
            paused = report.paused,
            completed = report.completed,
            "batch worked"
        );
    });
    if let Some(delay) = deferral(&report, s.lease)
        && let Err(e) = s
            .queue
            .send_delayed(batch, &batch.correlation_id, delay)
            .await
    {
        span.in_scope(|| tracing::warn!(error = %e, "deferring the batch failed"));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_the_configuration_is_listed() {
        let err = Config::from_env(&HashMap::from([
            ("HERALD_SMS_MESSAGES_PER_SECOND".to_owned(), "0".to_owned()),
            ("HERALD_SMS_LEASE_SECONDS".to_owned(), "5".to_owned()),
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_SMS_QUEUE_URL",
            "HERALD_SMS_API_URL",
            "HERALD_SMS_API_KEY_SECRET_ID",
            "HERALD_MEDIA_BUCKET",
            "HERALD_AUDIT_TABLE",
            "HERALD_TOKEN_KEY_SECRET",
            "HERALD_SMS_MESSAGES_PER_SECOND must be 1 to 10000",
            "HERALD_SMS_LEASE_SECONDS must be 10 to 900",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }

    #[test]
    fn deferrals_wait_for_the_provider_the_lease_or_the_pause() {
        let lease = Duration::from_secs(60);
        let report = |pending, retry_after, paused| BatchReport {
            pending,
            retry_after,
            paused,
            ..BatchReport::default()
        };
        assert_eq!(deferral(&report(0, None, false), lease), None);
        assert_eq!(
            deferral(&report(3, Some(time::Duration::seconds(5)), false), lease),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            deferral(&report(3, Some(time::Duration::ZERO), false), lease),
            Some(Duration::from_secs(1))
        );
        assert_eq!(deferral(&report(1, None, false), lease), Some(lease));
        assert_eq!(deferral(&report(0, None, true), lease), Some(PAUSED_DELAY));
    }

    #[test]
    fn a_batch_held_by_quiet_hours_comes_back_when_the_window_ends_or_sooner() {
        let lease = Duration::from_secs(60);
        let quiet = |pending, quiet, minutes, retry_after| BatchReport {
            pending,
            quiet,
            quiet_for: Some(time::Duration::minutes(minutes)),
            retry_after,
            ..BatchReport::default()
        };
        // Only quiet recipients left: at the window's end, at most SQS's longest delay.
        assert_eq!(
            deferral(&quiet(4, 4, 3, None), lease),
            Some(Duration::from_secs(180))
        );
        assert_eq!(deferral(&quiet(4, 4, 600, None), lease), Some(PAUSED_DELAY));
        // Others wait on their lease or the provider: whichever comes first.
        assert_eq!(deferral(&quiet(5, 4, 3, None), lease), Some(lease));
        let throttled = Some(time::Duration::seconds(2));
        assert_eq!(
            deferral(&quiet(5, 4, 3, throttled), lease),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/sms-sender/batch.json"))
                .unwrap();
        let work: SmsWork =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert!(matches!(work, SmsWork::Batch(SmsBatch { batch: 0, .. })));
        let event: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/sms-sender/enqueue.json"))
                .unwrap();
        let work: SmsWork =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert!(matches!(
            work,
            SmsWork::Enqueue(EnqueueJob { enqueue: 0, .. })
        ));
        let event: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/sms-sender/import.json"))
                .unwrap();
        let work: SmsWork =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert!(matches!(work, SmsWork::Import(ImportJob { round: 0, .. })));
    }
}
