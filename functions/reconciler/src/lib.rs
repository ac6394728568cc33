//! The reconciler function: on its schedule, resolves variants a publisher claimed but never
//! settled (see `herald_domain::publishing::reconcile`) and leaves a heartbeat for the health check; then
//! re-seals tokens after a key rotation and refreshes access tokens about to expire.

mod dead_letters;

pub use dead_letters::{DRAIN_PER_RUN, PublishDepths, drain, drain_dead_letters};

use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::dynamo::DynamoStore;
use herald_aws::outbound::SqsOutboundQueue;
use herald_aws::sqs::{SqsPublishQueue, SqsSmsQueue};
use herald_domain::campaigns::reconcile::{CampaignReconciler, CampaignRepairs};
use herald_domain::campaigns::{CampaignService, EnqueueLimits};
use herald_domain::clock::{Clock, SystemClock, SystemEntropy};
use herald_domain::outbound::OutboundEvents;
use herald_domain::publishing::reconcile::{ReconcileConfig, Reconciler};
use herald_domain::secrets::SecretCache;
use herald_domain::secrets::token_crypto::TokenSweep;
use herald_domain::secrets::token_refresh::{ExpiringTokens, RefreshConfig, TokenRefresh};
use herald_domain::wallet::{PriceTable, Wallets};
use herald_platforms::{Endpoints, HttpPlatforms};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub reconcile: ReconcileConfig,
    pub publish_dlq_url: String,
    /// `HERALD_ALERT_WEBHOOK_SECRET`: the secret holding the alert webhook's URL.
    pub alert_webhook_secret: Option<String>,
    /// The outbound webhook queue (none: no outbound events are emitted) and its DLQ.
    pub outbound_queue_url: Option<String>,
    pub outbound_dlq_url: Option<String>,
    /// The inbound webhook queue and its DLQ, drained into dead-letter records.
    pub webhook_queues: (String, String),
    /// The platforms' token endpoints.
    pub endpoints: Endpoints,
    pub platform_timeout: std::time::Duration,
    /// `HERALD_OAUTH_CLIENTS_SECRET`: the app's OAuth clients refreshes authenticate with.
    pub oauth_clients_secret: Option<String>,
    /// `HERALD_TOKEN_REFRESH_AHEAD_SECONDS`: tokens expiring within this are refreshed ahead
    /// of use (default 30 minutes; 0: not at all).
    pub refresh_ahead: time::Duration,
    /// `HERALD_SMS_QUEUE_URL`: where stuck campaigns' batches and enqueue jobs go again.
    pub sms_queue_url: String,
    /// `HERALD_SMS_STUCK_SECONDS`: how long a sending campaign's finished count may stand
    /// still before it is repaired (default 600, at least 60).
    pub sms_stuck_after: time::Duration,
    /// `HERALD_SMS_LEASE_SECONDS`: the SMS sender's lease (default 60).
    pub sms_lease: time::Duration,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let d = ReconcileConfig::default();
        let reconcile = ReconcileConfig {
            lease: env.seconds("HERALD_CLAIM_LEASE_SECONDS", d.lease),
            batch: env.parsed("HERALD_RECONCILE_BATCH", d.batch),
            max_attempts: env.parsed("HERALD_RECONCILE_MAX_ATTEMPTS", d.max_attempts),
        };
        let publish_dlq_url = env.url("HERALD_PUBLISH_DLQ_URL");
        let alert_webhook_secret = env.optional("HERALD_ALERT_WEBHOOK_SECRET");
        let outbound_queue_url = env.optional("HERALD_OUTBOUND_QUEUE_URL");
        let outbound_dlq_url = env.optional("HERALD_OUTBOUND_DLQ_URL");
        let webhook_queues = (
            env.url("HERALD_WEBHOOK_QUEUE_URL"),
            env.url("HERALD_WEBHOOK_DLQ_URL"),
        );
        let endpoints = Endpoints::read(|name| env.url(name));
        let platform_timeout =
            std::time::Duration::from_secs(env.parsed("HERALD_PLATFORM_TIMEOUT_SECONDS", 10));
        let oauth_clients_secret = env.optional("HERALD_OAUTH_CLIENTS_SECRET");
        let refresh_ahead = env.seconds(
            "HERALD_TOKEN_REFRESH_AHEAD_SECONDS",
            time::Duration::minutes(30),
        );
        let sms_queue_url = env.url("HERALD_SMS_QUEUE_URL");
        let sms_stuck_after = env.seconds("HERALD_SMS_STUCK_SECONDS", time::Duration::minutes(10));
        let sms_lease = env.seconds("HERALD_SMS_LEASE_SECONDS", time::Duration::seconds(60));
        if sms_stuck_after < time::Duration::seconds(5) || sms_stuck_after < sms_lease {
            env.problem("HERALD_SMS_STUCK_SECONDS must be at least 5 and the SMS lease");
        }
        env.finish()?;
        Ok(Self {
            sms_queue_url,
            sms_stuck_after,
            sms_lease,
            common,
            reconcile,
            publish_dlq_url,
            alert_webhook_secret,
            outbound_queue_url,
            outbound_dlq_url,
            webhook_queues,
            endpoints,
            platform_timeout,
            oauth_clients_secret,
            refresh_ahead,
        })
    }
}

/// What the reconciler's parts share: one secret cache (the token vault and the OAuth
/// clients read through it), one store.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<DynamoStore>,
    pub secrets: Arc<SecretCache>,
}

herald_domain::debug_fields!(Shared);

pub fn shared(config: &Config, clients: &Clients) -> Shared {
    let secrets = config.common.secrets.cache(clients, Arc::new(SystemClock));
    Shared {
        store: Arc::new(config.common.store_with(clients, secrets.clone())),
        secrets,
    }
}

/// The token sweep the reconciler runs after each pass: re-seals platform tokens still under
/// the previous token-encryption key (one GetItem per run while nothing rotated).
pub fn token_sweep(shared: &Shared) -> Arc<dyn TokenSweep> {
    shared.store.clone()
}

/// Other instances may seal under the key before the current one for as long as they cache
/// the key ring: the sweep is done only after that (the cache's TTL, with a margin).
pub const SWEEP_SETTLE: time::Duration = time::Duration::minutes(6);

/// One sweep pass; failures are logged, never fail the reconciler's run.
pub async fn sweep_tokens(sweep: &dyn TokenSweep) {
    match sweep
        .sweep_tokens(time::OffsetDateTime::now_utc(), SWEEP_SETTLE)
        .await
    {
        Ok(report) if report.examined > 0 => {
            tracing::info!(?report, "re-sealed platform tokens under the current key");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the token sweep failed; the next run tries again"),
    }
}

pub fn reconciler(config: &Config, clients: &Clients, shared: &Shared) -> Reconciler {
    let store = shared.store.clone();
    let clock = Arc::new(SystemClock);
    let queue = Arc::new(
        SqsPublishQueue::new(clients.sqs.clone(), &config.common.publish_queue_url)
            .with_dead_letter_queue(&config.publish_dlq_url),
    );
    let alerter =
        herald_platforms::alerter(alert_webhook(config, shared), store.clone(), clock.clone());
    Reconciler {
        store: store.clone(),
        posts: store.clone(),
        outcomes: store.clone(),
        queue: queue.clone(),
        heartbeats: store.clone(),
        audit: store.clone(),
        queues: Arc::new(PublishDepths {
            queue,
            records: store,
        }),
        alerter,
        clock,
        config: config.reconcile.clone(),
    }
}

/// The campaign part: stuck enqueues carried on, stuck campaigns repaired, crashed
/// settlements finished (see `herald_domain::campaigns::reconcile`).
pub fn campaigns(config: &Config, clients: &Clients, shared: &Shared) -> CampaignReconciler {
    let store = shared.store.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    CampaignReconciler {
        service: CampaignService {
            store: store.clone(),
            contacts: store.clone(),
            wallets: Arc::new(Wallets {
                store: store.clone(),
                audit: store.clone(),
                clock: clock.clone(),
                prices: PriceTable::default(),
                low_balance: None,
            }),
            queue: Arc::new(SqsSmsQueue::new(clients.sqs.clone(), &config.sms_queue_url)),
            clock,
            limits: EnqueueLimits::WORKER,
        },
        crisis: store,
        stuck_after: config.sms_stuck_after,
        lease: config.sms_lease,
    }
}

/// One campaign pass; failures are logged, never fail the reconciler's run.
pub async fn repair_campaigns(campaigns: &CampaignReconciler) {
    match campaigns.run().await {
        // Looking is not news: only a pass that repaired something is logged.
        Ok(repairs)
            if repairs
                != (CampaignRepairs {
                    examined: repairs.examined,
                    ..Default::default()
                }) =>
        {
            tracing::info!(?repairs, "looked after live campaigns");
            metrics::counter!("herald_sms_batches_requeued_total")
                .increment(repairs.batches_requeued as u64);
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the campaign pass failed; the next run tries again"),
    }
}

/// The alert webhook's secret, read through the function's secret cache.
fn alert_webhook(config: &Config, shared: &Shared) -> Option<(Arc<SecretCache>, String)> {
    config
        .alert_webhook_secret
        .clone()
        .map(|id| (shared.secrets.clone(), id))
}

/// The refresh service and where it finds the accounts to refresh.
pub type RefreshAhead = (TokenRefresh, Arc<dyn ExpiringTokens>);

/// Refreshing access tokens ahead of use: the publisher's refresh (one refresher per account,
/// `invalid_grant` marks the account for reconnection), with the reconciler's longer margin.
/// `None` when `HERALD_TOKEN_REFRESH_AHEAD_SECONDS` is 0.
pub fn token_refresh(config: &Config, shared: &Shared) -> Option<RefreshAhead> {
    if config.refresh_ahead <= time::Duration::ZERO {
        return None;
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = shared.store.clone();
    let mut platforms = HttpPlatforms::new(config.endpoints.clone(), config.platform_timeout);
    if let Some(secret) = &config.oauth_clients_secret {
        platforms = platforms.with_oauth_secret(shared.secrets.clone(), secret);
    }
    let alerter =
        herald_platforms::alerter(alert_webhook(config, shared), store.clone(), clock.clone());
    let refresh = TokenRefresh {
        leases: store.clone(),
        accounts: store.clone(),
        reauth: store.clone(),
        audit: store.clone(),
        refresher: Arc::new(platforms),
        alerter,
        clock,
        entropy: Arc::new(SystemEntropy),
        config: RefreshConfig {
            margin: config.refresh_ahead,
            ..RefreshConfig::default()
        },
    };
    Some((refresh, store))
}

/// One refresh-ahead pass; failures are logged, never fail the reconciler's run.
pub async fn refresh_ahead(refresh: &TokenRefresh, expiring: &dyn ExpiringTokens) {
    match refresh.refresh_ahead(expiring).await {
        Ok(report) if report.due > 0 => {
            tracing::info!(?report, "refreshed access tokens about to expire");
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(error = %e, "refreshing tokens ahead failed; the next run tries again")
        }
    }
}

/// The outbound webhook fan-out, when the queue is configured. No cache: the reconciler runs
/// once a minute.
pub fn outbound(config: &Config, clients: &Clients, shared: &Shared) -> Option<OutboundEvents> {
    config.outbound_queue_url.as_ref().map(|url| {
        OutboundEvents::new(
            shared.store.clone(),
            Arc::new(SqsOutboundQueue::new(clients.sqs.clone(), url)),
            Arc::new(SystemClock),
            time::Duration::ZERO,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([(
            "HERALD_CLAIM_LEASE_SECONDS".to_owned(),
            "long".to_owned(),
        )]))
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_CLAIM_LEASE_SECONDS",
            "HERALD_SMS_QUEUE_URL",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }
}
