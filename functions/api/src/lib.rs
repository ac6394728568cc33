//! The HTTP API function: configuration and wiring. The application is `herald_api::router`.

use herald_api::state::{Ports, Settings};
use herald_aws::Clients;
use herald_aws::config::{CommonConfig, ConfigError, Env};
use herald_aws::dead_letters::{DeadLetterQueue, SqsDeadLetters};
use herald_aws::dynamo::{DynamoIdempotency, DynamoStore};
use herald_aws::health::{BucketProbe, QueueProbe, SecretProbe, TableProbe};
use herald_aws::s3::S3Media;
use herald_domain::analytics::embed::EmbedTokens;
use herald_domain::campaigns::EnqueueLimits;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::health::Probe;
use herald_domain::idempotency::Idempotency;
use herald_domain::media::{
    DEFAULT_QUOTA_BYTES, DEFAULT_QUOTA_OBJECTS, DEFAULT_UPLOAD_URL_TTL, MediaQuota,
};
use herald_domain::outbound::guard::TargetPolicy;
use herald_domain::rate_limits::{ApiRateLimits, RequestPolicy};
use herald_domain::secrets::SecretCache;
use herald_domain::secrets::operator::OperatorToken;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// The publish queue's DLQ, for the dead-letter endpoints.
    pub publish_dlq_url: String,
    /// The SMS queue: enqueued campaigns' batches, for the SMS sender (`HERALD_SMS_QUEUE_URL`).
    pub sms_queue_url: String,
    /// How much of a campaign's enqueue the API does before answering; the rest goes on in a
    /// job (`HERALD_SMS_SYNC_AUDIENCE`: audiences of more contacts than this, default 5000).
    pub enqueue_limits: EnqueueLimits,
    /// How long an in-flight idempotency key blocks retries: the function's timeout.
    pub in_progress_ttl_seconds: i64,
    /// Where clients upload media.
    pub media_bucket: String,
    /// How long a presigned media upload URL works (default 15 minutes).
    pub upload_url_ttl: std::time::Duration,
    /// The most media one tenant may hold (`HERALD_MEDIA_QUOTA_BYTES`,
    /// `HERALD_MEDIA_QUOTA_OBJECTS`; default 5 GiB and 10,000).
    pub media_quota: MediaQuota,
    /// Outbound webhooks: private and loopback targets (and plain http) allowed; the local
    /// stack only.
    pub outbound_allow_private: bool,
    /// The outbound queue and its DLQ, for the dead-letter endpoints (none: not listed).
    pub outbound_queues: Option<(String, String)>,
    /// The bootstrap operator token's secret (`HERALD_ADMIN_TOKEN_SECRET_ID`); without it
    /// `POST /v1/tenants` is off.
    pub admin_token_secret_id: Option<String>,
    /// The secret whose versions sign embed tokens (`EmbedSigningKeySecret`).
    pub embed_secret_id: String,
    /// How long the previous embed key keeps verifying after a rotation: longer than the
    /// longest token (1 h) plus the secret cache's life, so no token issued with the old key
    /// is refused before it expires (default 2 h).
    pub embed_key_grace: time::Duration,
    /// What `GET /v1/health` looks at beyond the common configuration.
    pub health: HealthConfig,
    /// Requests a minute per key and class (`HERALD_RATE_LIMIT_<CLASS>_PER_MINUTE`).
    pub rate_limits: ApiRateLimits,
    /// Where the operator's routes may be called from (`HERALD_OPERATOR_ALLOWED_CIDRS`,
    /// comma-separated; empty: anywhere).
    pub operator_networks: Vec<ipnet::IpNet>,
    /// Browser origins allowed to call `/v1` (`HERALD_CORS_ORIGINS`, comma-separated
    /// `https://host[:port]`; empty: none).
    pub cors_origins: Vec<axum::http::HeaderValue>,
    /// The platforms' API base URLs, for asking who a token belongs to at connect time.
    pub platforms: herald_platforms::Endpoints,
    /// Connect links (OAuth).
    pub connect: ConnectConfig,
}

/// What connect links need: where the platforms send the browser back, X's consent page, and
/// the app's OAuth clients.
#[derive(Debug, Clone)]
pub struct ConnectConfig {
    /// `HERALD_PUBLIC_URL`: the API's public base URL (empty: `https://` and the request's
    /// `Host`, which API Gateway sets).
    pub public_url: Option<String>,
    /// `HERALD_X_AUTHORIZE_URL`, `HERALD_FACEBOOK_AUTHORIZE_URL`, `HERALD_LINKEDIN_AUTHORIZE_URL`
    /// (default the platforms' own).
    pub consent_pages: herald_platforms::authorize::ConsentPages,
    /// `HERALD_OAUTH_CLIENTS_SECRET`: the app's OAuth clients (without it, no link connects).
    pub oauth_clients_secret: Option<String>,
}

impl ConnectConfig {
    fn read(env: &mut Env<'_>) -> Self {
        let web = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        let public_url = env.optional("HERALD_PUBLIC_URL").filter(|u| !u.is_empty());
        if public_url.as_deref().is_some_and(|u| !web(u)) {
            env.problem("HERALD_PUBLIC_URL must be an http(s) URL");
        }
        let defaults = herald_platforms::authorize::ConsentPages::default();
        let mut page = |name: &str, default: String| {
            let url = env
                .optional(name)
                .filter(|u| !u.is_empty())
                .unwrap_or(default);
            if !web(&url) {
                env.problem(format!("{name} must be an http(s) URL"));
            }
            url
        };
        let consent_pages = herald_platforms::authorize::ConsentPages {
            x: page("HERALD_X_AUTHORIZE_URL", defaults.x),
            facebook: page("HERALD_FACEBOOK_AUTHORIZE_URL", defaults.facebook),
            linkedin: page("HERALD_LINKEDIN_AUTHORIZE_URL", defaults.linkedin),
        };
        Self {
            public_url,
            consent_pages,
            oauth_clients_secret: env.optional("HERALD_OAUTH_CLIENTS_SECRET"),
        }
    }
}

/// How long connecting an account waits for the platform to say who its token is.
const IDENTITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(8);

/// The health check's reach and limits.
#[derive(Debug, Clone)]
pub struct HealthConfig {
    /// The ingest and webhook queues with their DLQs, and the SMS queue's DLQ (the publish,
    /// outbound and SMS queues are read from their own settings).
    pub ingest_queues: (String, String),
    pub webhook_queues: (String, String),
    pub sms_dlq: String,
    /// How long one check may take (`HERALD_HEALTH_TIMEOUT_MS`, default 2000).
    pub timeout: std::time::Duration,
    /// A queue's oldest message older than these is a `warn`, a `fail`
    /// (`HERALD_HEALTH_QUEUE_AGE_WARN_SECONDS`, default 300; `..._FAIL_SECONDS`, 1800).
    pub age_warn: time::Duration,
    pub age_fail: time::Duration,
}

impl HealthConfig {
    fn read(env: &mut Env<'_>) -> Self {
        let timeout_ms: u64 = env.parsed("HERALD_HEALTH_TIMEOUT_MS", 2000);
        if !(100..=10_000).contains(&timeout_ms) {
            env.problem("HERALD_HEALTH_TIMEOUT_MS must be 100 to 10000");
        }
        let age_warn = env.seconds(
            "HERALD_HEALTH_QUEUE_AGE_WARN_SECONDS",
            time::Duration::minutes(5),
        );
        let age_fail = env.seconds(
            "HERALD_HEALTH_QUEUE_AGE_FAIL_SECONDS",
            time::Duration::minutes(30),
        );
        if age_warn <= time::Duration::ZERO || age_fail <= age_warn {
            env.problem("HERALD_HEALTH_QUEUE_AGE_WARN_SECONDS must be positive and below HERALD_HEALTH_QUEUE_AGE_FAIL_SECONDS");
        }
        Self {
            ingest_queues: (
                env.url("HERALD_INGEST_QUEUE_URL"),
                env.url("HERALD_INGEST_DLQ_URL"),
            ),
            webhook_queues: (
                env.url("HERALD_WEBHOOK_QUEUE_URL"),
                env.url("HERALD_WEBHOOK_DLQ_URL"),
            ),
            sms_dlq: env.url("HERALD_SMS_DLQ_URL"),
            timeout: std::time::Duration::from_millis(timeout_ms),
            age_warn,
            age_fail,
        }
    }
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let common = CommonConfig::read(&mut env);
        let publish_dlq_url = env.url("HERALD_PUBLISH_DLQ_URL");
        let sms_queue_url = env.url("HERALD_SMS_QUEUE_URL");
        let sms_sync_audience: usize = env.parsed("HERALD_SMS_SYNC_AUDIENCE", 5_000);
        if !(1..=100_000).contains(&sms_sync_audience) {
            env.problem("HERALD_SMS_SYNC_AUDIENCE must be 1 to 100000");
        }
        let in_progress_ttl_seconds = env.parsed("HERALD_IDEMPOTENCY_IN_PROGRESS_SECONDS", 30);
        let media_bucket = env.required("HERALD_MEDIA_BUCKET");
        let upload_url_seconds: u64 = env.parsed(
            "HERALD_MEDIA_UPLOAD_URL_SECONDS",
            DEFAULT_UPLOAD_URL_TTL.as_secs(),
        );
        // SigV4 presigned URLs work at most seven days; a short life keeps a leaked URL harmless.
        if !(60..=3600).contains(&upload_url_seconds) {
            env.problem("HERALD_MEDIA_UPLOAD_URL_SECONDS must be 60 to 3600");
        }
        let media_quota = MediaQuota {
            max_bytes: env.parsed("HERALD_MEDIA_QUOTA_BYTES", DEFAULT_QUOTA_BYTES),
            max_objects: env.parsed("HERALD_MEDIA_QUOTA_OBJECTS", DEFAULT_QUOTA_OBJECTS),
        };
        if media_quota.max_bytes == 0 || media_quota.max_objects == 0 {
            env.problem(
                "HERALD_MEDIA_QUOTA_BYTES and HERALD_MEDIA_QUOTA_OBJECTS must be at least 1",
            );
        }
        let outbound_allow_private = env.parsed("HERALD_OUTBOUND_ALLOW_PRIVATE", false);
        let outbound_queues = env
            .optional("HERALD_OUTBOUND_QUEUE_URL")
            .zip(env.optional("HERALD_OUTBOUND_DLQ_URL"));
        let admin_token_secret_id = env.optional("HERALD_ADMIN_TOKEN_SECRET_ID");
        let embed_secret_id = env.required("HERALD_EMBED_SIGNING_SECRET_ID");
        let grace_seconds: i64 = env.parsed("HERALD_EMBED_KEY_GRACE_SECONDS", 7200);
        let min_grace = herald_domain::analytics::embed::MAX_TTL_SECONDS + 300;
        if grace_seconds < min_grace {
            env.problem(format!(
                "HERALD_EMBED_KEY_GRACE_SECONDS must be at least {min_grace} (the longest token plus the secret cache)"
            ));
        }
        let health = HealthConfig::read(&mut env);
        let rate_limits = rate_limits(&mut env);
        let operator_networks = list(&mut env, "HERALD_OPERATOR_ALLOWED_CIDRS", |cidr| {
            cidr.parse::<ipnet::IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .ok()
        });
        let cors_origins = list(&mut env, "HERALD_CORS_ORIGINS", origin);
        let platforms = herald_platforms::Endpoints::read(|name| env.url(name));
        let connect = ConnectConfig::read(&mut env);
        env.finish()?;
        Ok(Self {
            connect,
            platforms,
            operator_networks,
            cors_origins,
            rate_limits,
            health,
            embed_secret_id,
            embed_key_grace: time::Duration::seconds(grace_seconds),
            common,
            outbound_allow_private,
            outbound_queues,
            publish_dlq_url,
            sms_queue_url,
            enqueue_limits: EnqueueLimits {
                audience: Some(sms_sync_audience),
                ..EnqueueLimits::API
            },
            in_progress_ttl_seconds,
            media_bucket,
            upload_url_ttl: std::time::Duration::from_secs(upload_url_seconds),
            media_quota,
            admin_token_secret_id,
        })
    }
}

/// A comma-separated list, every item read by `parse`; each one it refuses is a problem.
fn list<T>(env: &mut Env<'_>, name: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    let raw = env.optional(name).unwrap_or_default();
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match parse(item) {
            Some(v) => out.push(v),
            None => env.problem(format!("{name} holds {item:?}, which is not valid")),
        }
    }
    out
}

/// A browser origin: `https://host[:port]` (or `http://localhost[:port]`), nothing after it.
fn origin(item: &str) -> Option<axum::http::HeaderValue> {
    let rest = item.strip_prefix("https://").or_else(|| {
        item.strip_prefix("http://")
            .filter(|r| r.starts_with("localhost"))
    })?;
    let ok = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    ok.then(|| axum::http::HeaderValue::from_str(item).ok())
        .flatten()
}

/// The budgets per key and class, a minute each: 1 to 1,000,000 (defaults: read 600, write
/// 120, expensive read 30, operator 120).
fn rate_limits(env: &mut Env<'_>) -> ApiRateLimits {
    let defaults = ApiRateLimits::default();
    let mut read = |name: &str, default: RequestPolicy| {
        let variable = format!("HERALD_RATE_LIMIT_{name}_PER_MINUTE");
        let limit: u32 = env.parsed(&variable, default.limit);
        if !(1..=1_000_000).contains(&limit) {
            env.problem(format!("{variable} must be 1 to 1000000"));
        }
        RequestPolicy {
            limit,
            window: time::Duration::minutes(1),
        }
    };
    ApiRateLimits {
        read: read("READ", defaults.read),
        write: read("WRITE", defaults.write),
        expensive_read: read("EXPENSIVE_READ", defaults.expensive_read),
        operator: read("OPERATOR", defaults.operator),
        embed_read: read("EMBED_READ", defaults.embed_read),
    }
}

/// What the API's parts share: one secret cache (the token vault, the operator token and the
/// embed key read through it), one store, one clock.
#[derive(Clone)]
pub struct Shared {
    pub store: Arc<DynamoStore>,
    pub secrets: Arc<SecretCache>,
    pub clock: Arc<dyn Clock>,
}

herald_domain::debug_fields!(Shared);

pub fn shared(config: &Config, clients: &Clients) -> Shared {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets = config.common.secrets.cache(clients, clock.clone());
    Shared {
        store: Arc::new(config.common.store_with(clients, secrets.clone())),
        secrets,
        clock,
    }
}

pub fn state(config: &Config, clients: &Clients, shared: &Shared) -> herald_api::AppState {
    let store = shared.store.clone();
    let clock = shared.clock.clone();
    let idempotency = Idempotency::new(
        Arc::new(DynamoIdempotency::new(
            clients.dynamodb.clone(),
            &config.common.idempotency_table,
        )),
        config.common.token_vault(shared.secrets.clone()),
        clock.clone(),
        time::Duration::seconds(config.in_progress_ttl_seconds),
    );
    let operator = config.admin_token_secret_id.as_ref().map(|secret_id| {
        Arc::new(OperatorToken {
            secrets: shared.secrets.clone(),
            secret_id: secret_id.clone(),
            grace: config.common.secrets.grace,
            clock: clock.clone(),
        })
    });
    let dead_letters = std::iter::once(DeadLetterQueue {
        source: "publish".into(),
        url: config.publish_dlq_url.clone(),
        source_url: config.common.publish_queue_url.clone(),
    })
    .chain(
        config
            .outbound_queues
            .as_ref()
            .map(|(queue, dlq)| DeadLetterQueue {
                source: "outbound".into(),
                url: dlq.clone(),
                source_url: queue.clone(),
            }),
    )
    .collect();
    // `wallet.low_balance` after an enqueue's reservation, through the outbound queue.
    let events = config.outbound_queues.as_ref().map(|(queue, _)| {
        Arc::new(herald_domain::outbound::OutboundEvents::new(
            store.clone(),
            Arc::new(herald_aws::outbound::SqsOutboundQueue::new(
                clients.sqs.clone(),
                queue,
            )),
            clock.clone(),
            time::Duration::minutes(1),
        )) as Arc<dyn herald_domain::publishing::settle::OutcomeEvents>
    });
    let sms_queue = Arc::new(herald_aws::sqs::SqsSmsQueue::new(
        clients.sqs.clone(),
        &config.sms_queue_url,
    ));
    herald_api::AppState::new(
        Ports {
            store: store.clone(),
            dead_letters: Arc::new(SqsDeadLetters::new(clients.sqs.clone(), dead_letters)),
            dead_letter_records: store.clone(),
            media: Arc::new(S3Media::new(clients.s3.clone(), &config.media_bucket)),
            endpoints: store.clone(),
            wallets: store.clone(),
            contacts: store.clone(),
            campaigns: store.clone(),
            sms_queue: sms_queue.clone(),
            imports: store.clone(),
            import_queue: sms_queue,
            resolver: Arc::new(herald_platforms::outbound::SystemResolver),
            ingest: store,
            idempotency,
            clock,
            counter: shared.store.clone(),
            owners: Arc::new(herald_platforms::HttpPlatforms::new(
                config.platforms.clone(),
                IDENTITY_TIMEOUT,
            )),
            // A take-down deletes on each platform within the request: each call gets as long
            // as an identity check.
            platforms: Arc::new(herald_platforms::HttpPlatforms::new(
                config.platforms.clone(),
                IDENTITY_TIMEOUT,
            )),
            authorization: Arc::new(authorization(config, shared)),
            probes: probes(config, clients),
            events,
        },
        Settings {
            upload_url_ttl: config.upload_url_ttl,
            media_quota: config.media_quota,
            target_policy: TargetPolicy {
                allow_private: config.outbound_allow_private,
            },
            operator,
            health_timeout: config.health.timeout,
            rate_limits: config.rate_limits,
            operator_networks: config.operator_networks.clone(),
            cors_origins: config.cors_origins.clone(),
            public_url: config.connect.public_url.clone(),
            enqueue_limits: config.enqueue_limits,
        },
    )
}

/// The platforms' consent pages and token endpoints, with the app's OAuth clients.
fn authorization(config: &Config, shared: &Shared) -> herald_platforms::HttpPlatforms {
    let platforms =
        herald_platforms::HttpPlatforms::new(config.platforms.clone(), IDENTITY_TIMEOUT)
            .with_consent_pages(config.connect.consent_pages.clone());
    match &config.connect.oauth_clients_secret {
        Some(secret) => platforms.with_oauth_secret(shared.secrets.clone(), secret),
        None => platforms,
    }
}

/// What the health check asks beyond the domain's own ports: every table, every queue with
/// its DLQ, Secrets Manager and the media bucket.
fn probes(config: &Config, clients: &Clients) -> Vec<Arc<dyn Probe>> {
    let c = &config.common;
    let table = |label, table: &String, sort_key| -> Arc<dyn Probe> {
        Arc::new(TableProbe {
            client: clients.dynamodb.clone(),
            table: table.clone(),
            label,
            sort_key,
        })
    };
    let queue = |label, url: &String, dlq: &String| -> Arc<dyn Probe> {
        Arc::new(QueueProbe {
            sqs: clients.sqs.clone(),
            cloudwatch: clients.cloudwatch.clone(),
            label,
            url: url.clone(),
            dead_letter_url: Some(dlq.clone()),
            age_warn: config.health.age_warn,
            age_fail: config.health.age_fail,
        })
    };
    let (ingest, ingest_dlq) = &config.health.ingest_queues;
    let (webhook, webhook_dlq) = &config.health.webhook_queues;
    let mut probes = vec![
        table("main", &c.table, true),
        table("audit", &c.audit_table, true),
        table("idempotency", &c.idempotency_table, false),
        queue("publish", &c.publish_queue_url, &config.publish_dlq_url),
        queue("ingest", ingest, ingest_dlq),
        queue("webhook", webhook, webhook_dlq),
        queue("sms", &config.sms_queue_url, &config.health.sms_dlq),
        Arc::new(SecretProbe {
            client: clients.secrets.clone(),
            secret_id: c.token_key_secret.clone(),
            label: "token-encryption-key",
        }),
        Arc::new(BucketProbe {
            client: clients.s3.clone(),
            bucket: config.media_bucket.clone(),
        }),
    ];
    if let Some((outbound, outbound_dlq)) = &config.outbound_queues {
        probes.push(queue("outbound", outbound, outbound_dlq));
    }
    probes
}

/// The whole application: the API router with embed tokens and dashboards.
pub fn app(config: &Config, clients: &Clients) -> axum::Router {
    let shared = shared(config, clients);
    let embed = herald_api::embed::EmbedState {
        tokens: EmbedTokens {
            secrets: shared.secrets.clone(),
            secret_id: config.embed_secret_id.clone(),
            clock: shared.clock.clone(),
            grace: config.embed_key_grace,
        },
        counter: shared.store.clone(),
    };
    let app =
        herald_api::embed::with_embeds(herald_api::router(state(config, clients, &shared)), embed);
    herald_api::analytics::with_analytics(app, shared.store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_every_problem() {
        let err = Config::from_env(&HashMap::from([
            (
                "HERALD_MEDIA_UPLOAD_URL_SECONDS".to_owned(),
                "86400".to_owned(),
            ),
            ("HERALD_LOG_LEVEL".to_owned(), "trace".to_owned()),
            ("HERALD_MEDIA_QUOTA_OBJECTS".to_owned(), "0".to_owned()),
            ("HERALD_SMS_SYNC_AUDIENCE".to_owned(), "0".to_owned()),
            (
                "HERALD_RATE_LIMIT_WRITE_PER_MINUTE".to_owned(),
                "0".to_owned(),
            ),
            (
                "HERALD_OPERATOR_ALLOWED_CIDRS".to_owned(),
                "10.0.0.0/8, not-a-net".to_owned(),
            ),
            (
                "HERALD_CORS_ORIGINS".to_owned(),
                "https://app.example.com, http://evil.example.com/path".to_owned(),
            ),
        ]))
        .unwrap_err()
        .to_string();
        for name in [
            "HERALD_OPERATOR_ALLOWED_CIDRS holds \"not-a-net\"",
            "HERALD_CORS_ORIGINS holds \"http://evil.example.com/path\"",
            "HERALD_RATE_LIMIT_WRITE_PER_MINUTE must be 1 to 1000000",
            "HERALD_LOG_LEVEL must be one of error, warn, info, debug",
            "HERALD_TABLE",
            "HERALD_PUBLISH_DLQ_URL",
            "HERALD_SMS_QUEUE_URL",
            "HERALD_SMS_SYNC_AUDIENCE must be 1 to 100000",
            "HERALD_MEDIA_BUCKET",
            "HERALD_MEDIA_UPLOAD_URL_SECONDS must be 60 to 3600",
            "HERALD_EMBED_SIGNING_SECRET_ID",
            "HERALD_MEDIA_QUOTA_BYTES and HERALD_MEDIA_QUOTA_OBJECTS must be at least 1",
            "HERALD_X_API_URL",
        ] {
            assert!(err.contains(name), "{name} not in {err}");
        }
    }

    #[test]
    fn sample_events_parse() {
        for bytes in [
            &include_bytes!("../../../events/api/warmup.json")[..],
            include_bytes!("../../../events/api/list-posts.json"),
        ] {
            let request: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
                serde_json::from_slice(bytes).unwrap();
            assert!(request.raw_path.unwrap().starts_with("/v1/"));
        }
    }
}
