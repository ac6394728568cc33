//! The webhook receiver function: configuration and wiring. The HTTP surface is
//! `herald_api::webhooks`, the logic `herald_domain::inbound`.

use herald_aws::Clients;
use herald_aws::config::{ConfigError, Env, SecretsConfig};
use herald_aws::dynamo::DynamoStore;
use herald_aws::sqs::SqsInboundQueue;
use herald_domain::clock::{SystemClock, SystemEntropy};
use herald_domain::inbound::{ReceiverConfig, WebhookProvider, WebhookReceiver};
use herald_domain::rate_limits::RequestPolicy;
use herald_webhooks::Scheme;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub queue_url: String,
    pub providers: HashMap<String, WebhookProvider>,
    pub receiver: ReceiverConfig,
    pub secrets: SecretsConfig,
}

/// `HERALD_WEBHOOK_PROVIDERS`: comma-separated `name=scheme:secret-id`, with Meta's
/// `:verify-token-secret-id` after its secret, e.g.
/// `demo=standard_webhooks:arn:...:secret:demo,meta=meta:arn:...:app|arn:...:verify`.
/// Secret ARNs contain `:`, so Meta's two ids are separated by `|`.
fn providers(env: &mut Env<'_>, spec: &str) -> HashMap<String, WebhookProvider> {
    let mut out = HashMap::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('=').and_then(|(name, rest)| {
            let (scheme, secrets) = rest.split_once(':')?;
            let scheme: Scheme = scheme.parse().ok()?;
            let (secret, verify) = match secrets.split_once('|') {
                Some((s, v)) => (s, Some(v.to_owned())),
                None => (secrets, None),
            };
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            (valid_name && !secret.is_empty()).then(|| WebhookProvider {
                name: name.to_owned(),
                scheme,
                secret_id: secret.to_owned(),
                verify_token_id: verify,
            })
        });
        match parsed {
            Some(p) if p.scheme == Scheme::Meta && p.verify_token_id.is_none() => env.problem(
                format!("HERALD_WEBHOOK_PROVIDERS: {} (meta) needs `|<verify-token secret>` after its secret", p.name),
            ),
            Some(p) if out.contains_key(&p.name) => {
                env.problem(format!("HERALD_WEBHOOK_PROVIDERS: {} is listed twice", p.name));
            }
            Some(p) => {
                out.insert(p.name.clone(), p);
            }
            None => env.problem(format!(
                "HERALD_WEBHOOK_PROVIDERS: `{}` is not `name=scheme:secret-id` (schemes: standard_webhooks, stripe, meta, x, sms)",
                entry.split(':').next().unwrap_or_default()
            )),
        }
    }
    out
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(vars);
        let table = env.required("HERALD_TABLE");
        let queue_url = env.url("HERALD_WEBHOOK_QUEUE_URL");
        let spec = env.required("HERALD_WEBHOOK_PROVIDERS");
        let providers = providers(&mut env, &spec);
        let d = ReceiverConfig::default();
        let secrets = SecretsConfig::read(&mut env);
        let receiver = ReceiverConfig {
            grace: secrets.grace,
            remember_for: env.seconds("HERALD_WEBHOOK_REMEMBER_SECONDS", d.remember_for),
            rate: RequestPolicy {
                limit: env.parsed("HERALD_WEBHOOK_RATE_LIMIT_PER_MINUTE", d.rate.limit),
                window: time::Duration::minutes(1),
            },
        };
        if !(1..=1_000_000).contains(&receiver.rate.limit) {
            env.problem("HERALD_WEBHOOK_RATE_LIMIT_PER_MINUTE must be 1 to 1000000");
        }
        env.finish()?;
        Ok(Self {
            table,
            queue_url,
            providers,
            receiver,
            secrets,
        })
    }
}

pub fn receiver(config: &Config, clients: &Clients) -> WebhookReceiver {
    let clock = Arc::new(SystemClock);
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), &config.table));
    WebhookReceiver {
        counter: store.clone(),
        providers: config.providers.clone(),
        secrets: config.secrets.cache(clients, clock.clone()),
        inbox: store,
        queue: Arc::new(SqsInboundQueue::new(clients.sqs.clone(), &config.queue_url)),
        clock,
        entropy: Arc::new(SystemEntropy),
        config: config.receiver,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(providers: &str) -> HashMap<String, String> {
        HashMap::from([
            ("HERALD_TABLE".into(), "t".into()),
            ("HERALD_WEBHOOK_QUEUE_URL".into(), "http://q".into()),
            ("HERALD_WEBHOOK_PROVIDERS".into(), providers.into()),
        ])
    }

    #[test]
    fn providers_parse_with_arns_and_every_problem_is_listed() {
        let c = Config::from_env(&vars(
            "demo=standard_webhooks:arn:aws:secretsmanager:us-east-1:1:secret:d,meta=meta:arn:m|arn:v",
        ))
        .unwrap();
        assert_eq!(
            c.providers["demo"].secret_id,
            "arn:aws:secretsmanager:us-east-1:1:secret:d"
        );
        assert_eq!(
            c.providers["meta"].verify_token_id.as_deref(),
            Some("arn:v")
        );
        let err = Config::from_env(&HashMap::from([(
            "HERALD_WEBHOOK_PROVIDERS".to_owned(),
            "Bad Name=x:s,meta=meta:s,demo=carrier-pigeon:s".to_owned(),
        )]))
        .unwrap_err();
        assert_eq!(err.0.len(), 5, "{err}");
    }

    #[test]
    fn sample_events_parse() {
        let request: lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_slice(include_bytes!("../../../events/webhooks/warmup.json")).unwrap();
        assert!(request.raw_path.unwrap().starts_with("/webhooks/"));
    }
}
