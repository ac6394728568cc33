//! The publisher function: one SQS batch in, handled by the domain's `PublishService`
//! (platform budgets reserved once per batch, records concurrently); each record's
//! disposition is settled by the domain's `settle` (its queue action and outbound event) and,
//! where SQS must keep it, becomes a `batchItemFailures` entry. Configuration and wiring only.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
pub use herald_aws::lambda::deadline_of;
use herald_aws::lambda::{batch_response, parse_record};
use herald_aws::outbound::SqsOutboundQueue;
use herald_aws::s3::S3Media;
use herald_aws::sqs::SqsPublishQueue;
use herald_domain::clock::{SystemClock, SystemEntropy};
use herald_domain::model::Platform;
use herald_domain::outbound::OutboundEvents;
use herald_domain::ports::PublishMessage;
use herald_domain::publishing::gates::Window;
use herald_domain::publishing::publish::{Delivery, Disposition, PublishConfig, PublishService};
use herald_domain::publishing::settle::{OutcomeEvents, SettlePorts};
use herald_domain::secrets::token_refresh::{RefreshConfig, TokenRefresh};
use herald_platforms::{Endpoints, HttpPlatforms};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    pub dead_letter_queue_url: String,
    pub publish: PublishConfig,
    pub endpoints: Endpoints,
    /// Records of one batch handled at once.
    pub concurrency: usize,
    /// Time kept back from the Lambda deadline for recording outcomes.
    pub deadline_margin: Duration,
    /// The function's timeout (template `Timeout`), used when the runtime gives no deadline.
    pub function_timeout: Duration,
    /// `HERALD_ALERT_WEBHOOK_SECRET`: the secret holding a Slack-compatible webhook for
    /// alerts (none, or an empty URL in it: alerts are logged).
    pub alert_webhook_secret: Option<String>,
    /// Where the variants' media are.
    pub media_bucket: String,
    /// The outbound webhook queue (none: no outbound events are emitted).
    pub outbound_queue_url: Option<String>,
    /// How long a tenant's endpoints are cached between fan-outs.
    pub outbound_cache: time::Duration,
    /// Access tokens expiring within the margin are refreshed before use.
    pub refresh: RefreshConfig,
    /// `HERALD_OAUTH_CLIENTS_SECRET`: the secret holding the app's OAuth clients that token
    /// refreshes authenticate with (none: refreshes carry no client authentication).
    pub oauth_clients_secret: Option<String>,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let dead_letter_queue_url = env.url("HERALD_PUBLISH_DLQ_URL");
        let d = PublishConfig::default();
        let mut publish = PublishConfig {
            max_receive_count: env.parsed("HERALD_PUBLISH_MAX_RECEIVE_COUNT", d.max_receive_count),
            max_attempts: env.parsed("HERALD_PUBLISH_MAX_ATTEMPTS", d.max_attempts),
            platform_timeout: Duration::from_secs(env.parsed(
                "HERALD_PLATFORM_TIMEOUT_SECONDS",
                d.platform_timeout.as_secs(),
            )),
            pause_recheck: Duration::from_secs(
                env.parsed("HERALD_PAUSE_RECHECK_SECONDS", d.pause_recheck.as_secs()),
            ),
            ..d.clone()
        };
        publish.retry.base = Duration::from_millis(
            env.parsed("HERALD_RETRY_BASE_MS", d.retry.base.as_millis() as u64),
        );
        publish.retry.cap = Duration::from_millis(
            env.parsed("HERALD_RETRY_CAP_MS", d.retry.cap.as_millis() as u64),
        );
        publish.redelivery.base = Duration::from_secs(env.parsed(
            "HERALD_REDELIVERY_BASE_SECONDS",
            d.redelivery.base.as_secs(),
        ));
        publish.redelivery.cap = Duration::from_secs(
            env.parsed("HERALD_REDELIVERY_CAP_SECONDS", d.redelivery.cap.as_secs()),
        );
        publish.breaker.failure_threshold =
            env.parsed("HERALD_BREAKER_FAILURES", d.breaker.failure_threshold);
        publish.breaker.reset_after =
            env.seconds("HERALD_BREAKER_RESET_SECONDS", d.breaker.reset_after);
        publish.claim_lease = env.seconds("HERALD_CLAIM_LEASE_SECONDS", d.claim_lease);
        publish.lookup_delay = Duration::from_millis(
            env.parsed("HERALD_LOOKUP_DELAY_MS", d.lookup_delay.as_millis() as u64),
        );
        for platform in Platform::ALL {
            let name = platform.as_str().to_uppercase();
            for (scope, limits) in [
                ("ACCOUNT", &mut publish.limits.per_account),
                ("APP", &mut publish.limits.per_app),
            ] {
                let var = format!("HERALD_RATE_LIMIT_{name}_{scope}");
                if let Some(window) = env.parsed::<WindowSpec>(&var, WindowSpec(None)).0 {
                    limits.insert(platform, window);
                }
            }
        }
        let endpoints = Endpoints::read(|name| env.url(name));
        let concurrency = env.parsed("HERALD_PUBLISH_CONCURRENCY", 10);
        let deadline_margin = Duration::from_millis(env.parsed("HERALD_DEADLINE_MARGIN_MS", 2_000));
        let function_timeout =
            Duration::from_secs(env.parsed("HERALD_FUNCTION_TIMEOUT_SECONDS", 30));
        let alert_webhook_secret = env.optional("HERALD_ALERT_WEBHOOK_SECRET");
        let media_bucket = env.required("HERALD_MEDIA_BUCKET");
        let outbound_queue_url = env.optional("HERALD_OUTBOUND_QUEUE_URL");
        let outbound_cache = env.seconds(
            "HERALD_OUTBOUND_ENDPOINT_CACHE_SECONDS",
            time::Duration::seconds(10),
        );
        publish.invocation_budget = Some(function_timeout.saturating_sub(deadline_margin));
        let r = RefreshConfig::default();
        let refresh = RefreshConfig {
            margin: env.seconds("HERALD_TOKEN_REFRESH_MARGIN_SECONDS", r.margin),
            ..r
        };
        let oauth_clients_secret = env.optional("HERALD_OAUTH_CLIENTS_SECRET");
        env.finish()?;
        Ok(Self {
            common,
            dead_letter_queue_url,
            publish,
            endpoints,
            concurrency,
            deadline_margin,
            function_timeout,
            alert_webhook_secret,
            media_bucket,
            outbound_queue_url,
            outbound_cache,
            refresh,
            oauth_clients_secret,
        })
    }
}

/// `<limit>/<seconds>`, e.g. `100/900`: a rate window from the environment.
#[derive(Debug, Clone, Copy)]
struct WindowSpec(Option<Window>);

impl std::str::FromStr for WindowSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (limit, seconds) = s.split_once('/').ok_or("expected <limit>/<seconds>")?;
        let limit: u32 = limit.trim().parse().map_err(|_| "bad limit")?;
        let seconds: i64 = seconds.trim().parse().map_err(|_| "bad seconds")?;
        if seconds <= 0 {
            return Err("the period must be positive".into());
        }
        Ok(Self(Some(Window {
            limit,
            period: time::Duration::seconds(seconds),
        })))
    }
}

#[derive(Debug, Clone)]
pub struct Publisher {
    pub service: PublishService,
    pub queue: SqsPublishQueue,
    pub concurrency: usize,
    pub deadline_margin: Duration,
    /// Outbound webhook events for outcomes recorded here.
    pub outbound: Option<Arc<OutboundEvents>>,
}

pub fn publisher(config: &Config, clients: &Clients) -> Publisher {
    let clock = Arc::new(SystemClock);
    let secrets = config.common.secrets.cache(clients, clock.clone());
    let store = Arc::new(config.common.store_with(clients, secrets.clone()));
    let mut platforms =
        HttpPlatforms::new(config.endpoints.clone(), config.publish.platform_timeout);
    if let Some(secret) = &config.oauth_clients_secret {
        platforms = platforms.with_oauth_secret(secrets.clone(), secret);
    }
    let platform = Arc::new(platforms);
    let queue = SqsPublishQueue::new(clients.sqs.clone(), &config.common.publish_queue_url)
        .with_dead_letter_queue(&config.dead_letter_queue_url);
    let outbound = config.outbound_queue_url.as_ref().map(|url| {
        Arc::new(OutboundEvents::new(
            store.clone(),
            Arc::new(SqsOutboundQueue::new(clients.sqs.clone(), url)),
            clock.clone(),
            config.outbound_cache,
        ))
    });
    let webhook = config.alert_webhook_secret.clone().map(|id| (secrets, id));
    let alerter = herald_platforms::alerter(webhook, store.clone(), clock.clone());
    let entropy = Arc::new(SystemEntropy);
    let tokens = TokenRefresh {
        leases: store.clone(),
        accounts: store.clone(),
        reauth: store.clone(),
        audit: store.clone(),
        refresher: platform.clone(),
        alerter: alerter.clone(),
        clock: clock.clone(),
        entropy: entropy.clone(),
        config: config.refresh,
    };
    Publisher {
        service: PublishService {
            store: store.clone(),
            limiter: store,
            alerter,
            platform,
            media: Arc::new(S3Media::new(clients.s3.clone(), &config.media_bucket)),
            clock,
            entropy,
            config: config.publish.clone(),
            tokens: Some(Arc::new(tokens)),
        },
        queue,
        concurrency: config.concurrency,
        deadline_margin: config.deadline_margin,
        outbound,
    }
}

/// Handles one batch; `deadline` is the invocation's (from the Lambda context).
pub async fn handle(
    publisher: &Publisher,
    event: SqsEvent,
    deadline: OffsetDateTime,
) -> SqsBatchResponse {
    let remaining_ms = (deadline - publisher.service.clock.now()).whole_milliseconds();
    tracing::info!(
        records = event.records.len(),
        remaining_ms,
        "batch received"
    );
    let deadline = deadline - publisher.deadline_margin;
    let mut keep: Vec<String> = Vec::new();
    let mut parsed: Vec<(SqsMessage, PublishMessage, Delivery)> = Vec::new();
    for record in event.records {
        match parse_record::<PublishMessage>(&record) {
            Ok(message) => {
                let receive_count = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                parsed.push((
                    record,
                    message,
                    Delivery {
                        receive_count,
                        deadline,
                    },
                ));
            }
            Err(id) => {
                // Never valid: leave it for the DLQ, where an operator can look at it.
                tracing::error!(message_id = %id, "malformed publish message");
                keep.push(id);
            }
        }
    }
    let records: Vec<(PublishMessage, Delivery)> =
        parsed.iter().map(|(_, m, d)| (m.clone(), *d)).collect();
    let dispositions = publisher
        .service
        .handle_batch(&records, publisher.concurrency)
        .await;
    let settled = futures::future::join_all(parsed.iter().zip(dispositions).map(
        |((record, message, delivery), disposition)| {
            let span = tracing::info_span!(
                "publish",
                correlation_id = %message.correlation_id,
                message_id = record.message_id.as_deref().unwrap_or_default(),
                post_id = %message.post_id,
                account_id = %message.account_id,
                receive_count = delivery.receive_count,
            );
            settle(publisher, record, message, *delivery, disposition).instrument(span)
        },
    ))
    .await;
    keep.extend(settled.into_iter().flatten());
    batch_response(keep)
}

/// Carries out one disposition through the domain's `settle`; returns the message id when SQS
/// must keep the record.
async fn settle(
    publisher: &Publisher,
    record: &SqsMessage,
    message: &PublishMessage,
    delivery: Delivery,
    disposition: Disposition,
) -> Option<String> {
    let actions = publisher
        .queue
        .received(record.receipt_handle.as_deref().unwrap_or_default());
    let ports = SettlePorts {
        actions: &actions,
        events: publisher
            .outbound
            .as_deref()
            .map(|o| o as &dyn OutcomeEvents),
        clock: &*publisher.service.clock,
        max_receive_count: publisher.service.config.max_receive_count,
    };
    let settled =
        herald_domain::publishing::settle::settle(ports, message, delivery, disposition).await;
    settled
        .keeps_message()
        .then(|| record.message_id.clone().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_events_parse() {
        let event: SqsEvent = serde_json::from_slice(include_bytes!(
            "../../../events/publisher/publish-message.json"
        ))
        .unwrap();
        let message: PublishMessage =
            serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(message.account_id.as_str(), "acc_5a1f0c3a1b27c3d8e9f0a1b2");
        let empty: SqsEvent =
            serde_json::from_slice(include_bytes!("../../../events/publisher/warmup.json"))
                .unwrap();
        assert!(empty.records.is_empty());
    }

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([
            ("HERALD_RETRY_BASE_MS".to_owned(), "soon".to_owned()),
            ("HERALD_RATE_LIMIT_X_ACCOUNT".to_owned(), "100".to_owned()),
        ]))
        .unwrap_err();
        let text = err.to_string();
        for name in [
            "HERALD_TABLE",
            "HERALD_PUBLISH_QUEUE_URL",
            "HERALD_PUBLISH_DLQ_URL",
            "HERALD_X_API_URL",
            "HERALD_MEDIA_BUCKET",
            "HERALD_RETRY_BASE_MS",
            "HERALD_RATE_LIMIT_X_ACCOUNT",
        ] {
            assert!(text.contains(name), "{name} not in {text}");
        }
    }

    #[test]
    fn rate_windows_come_from_the_environment() {
        let mut vars: HashMap<String, String> = [
            ("HERALD_TABLE", "t"),
            ("HERALD_IDEMPOTENCY_TABLE", "i"),
            ("HERALD_AUDIT_TABLE", "a"),
            ("HERALD_PUBLISH_QUEUE_URL", "http://q"),
            ("HERALD_TOKEN_KEY_SECRET", "token-key"),
            ("HERALD_PUBLISH_DLQ_URL", "http://dlq"),
            ("HERALD_X_API_URL", "http://x"),
            ("HERALD_FACEBOOK_API_URL", "http://f"),
            ("HERALD_LINKEDIN_API_URL", "http://l"),
            ("HERALD_MASTODON_API_URL", "http://m"),
            ("HERALD_BLUESKY_API_URL", "http://b"),
            ("HERALD_INSTAGRAM_API_URL", "http://i"),
            ("HERALD_MEDIA_BUCKET", "media"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.insert("HERALD_RATE_LIMIT_FACEBOOK_ACCOUNT".into(), "3/60".into());
        let config = Config::from_env(&vars).unwrap();
        assert_eq!(
            config.publish.limits.per_account[&Platform::Facebook],
            Window {
                limit: 3,
                period: time::Duration::minutes(1)
            }
        );
        assert_eq!(config.publish.limits.per_account[&Platform::X].limit, 100);
    }
}
