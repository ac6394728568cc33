//! The webhook processor function: applies each queued inbound event once (see
//! `herald_domain::inbound::WebhookProcessor`), reporting the records SQS must keep. It
//! answers SMS keywords (STOP, START, HELP) through the SMS provider.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use herald_aws::Clients;
use herald_aws::config::{AnnounceConfig, ConfigError, Env, SecretsConfig};
use herald_aws::dynamo::DynamoStore;
use herald_aws::lambda::{batch_response, parse_record};
use herald_domain::campaigns::keywords::Keywords;
use herald_domain::clock::{Clock, SystemClock};
use herald_domain::contacts::ContactService;
use herald_domain::inbound::billing::Billing;
use herald_domain::inbound::{InboundEvent, WebhookProcessor};
use herald_domain::wallet::{PriceTable, Wallets};
use herald_platforms::sms::HttpSms;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one call to the SMS provider (a keyword's reply) may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    /// Where contacts' consent changes by keyword are audited (`HERALD_AUDIT_TABLE`).
    pub audit_table: String,
    /// The SMS provider's API base URL, for keyword replies (`HERALD_SMS_API_URL`).
    pub sms_api_url: String,
    /// The SMS provider's API key (`HERALD_SMS_API_KEY_SECRET_ID`).
    pub sms_api_key_secret: String,
    pub secrets: SecretsConfig,
    /// Where `sms.delivered` and `sms.failed` go.
    pub announce: AnnounceConfig,
    /// Paid amounts to credits (`HERALD_CREDIT_PRICES`, `{"usd": {"1000": 100}}`); empty:
    /// billing events are kept but credit nothing.
    pub prices: PriceTable,
}

impl Config {
    pub fn from_env(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Env::read(vars, |env| {
            let prices = match env.optional("HERALD_CREDIT_PRICES") {
                None => PriceTable::default(),
                Some(raw) => PriceTable::parse(&raw).unwrap_or_else(|e| {
                    env.problem(format!("HERALD_CREDIT_PRICES: {e}"));
                    PriceTable::default()
                }),
            };
            Self {
                table: env.required("HERALD_TABLE"),
                audit_table: env.required("HERALD_AUDIT_TABLE"),
                sms_api_url: env.url("HERALD_SMS_API_URL"),
                sms_api_key_secret: env.required("HERALD_SMS_API_KEY_SECRET_ID"),
                secrets: SecretsConfig::read(env),
                announce: AnnounceConfig::read(env),
                prices,
            }
        })
    }
}

pub fn processor(config: &Config, clients: &Clients) -> WebhookProcessor {
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
    let keywords = Keywords {
        senders: store.clone(),
        contacts: ContactService {
            store: store.clone(),
            audit: store.clone(),
            clock: clock.clone(),
        },
        tenants: store.clone(),
        provider: Some(Arc::new(HttpSms::new(
            &config.sms_api_url,
            secrets,
            &config.sms_api_key_secret,
            PROVIDER_TIMEOUT,
        ))),
        clock: clock.clone(),
    };
    WebhookProcessor {
        store: store.clone(),
        clock: clock.clone(),
        billing: Some(Billing {
            wallets: Wallets {
                store: store.clone(),
                // Top-ups and reversals are their own record (the ledger); only grants,
                // which this function never makes, are audited.
                audit: store.clone(),
                clock: clock.clone(),
                prices: config.prices.clone(),
                // A reversal may take the balance under the tenant's threshold.
                low_balance: events.clone().map(|events| {
                    Arc::new(herald_domain::wallet::low_balance::LowBalanceAlerts {
                        tenants: store.clone(),
                        events,
                    })
                }),
            },
            tenants: store.clone(),
        }),
        campaigns: Some(store),
        keywords: Some(keywords),
        events,
    }
}

/// One record at a time. The queue promises no order; each event's effect is idempotent and
/// independent of the others (a removal is a removal whenever it lands).
pub async fn handle(processor: &WebhookProcessor, event: SqsEvent) -> SqsBatchResponse {
    let mut keep = Vec::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let Ok(inbound) = parse_record::<InboundEvent>(&record) else {
            // Never valid: left for the DLQ, where an operator can look at it.
            tracing::error!(message_id = %id, "malformed webhook message");
            keep.push(id);
            continue;
        };
        let span = tracing::info_span!(
            "webhook",
            correlation_id = %inbound.correlation_id,
            provider = %inbound.provider,
            event_id = %inbound.event_id,
        );
        match processor.process(&inbound).instrument(span.clone()).await {
            Ok(done) => span.in_scope(|| {
                tracing::info!(
                    kind = %done.kind,
                    removed = done.removed,
                    credited = done.credited,
                    receipt = done.receipt,
                    consent_changed = done.consent_changed,
                    duplicate = done.duplicate,
                    "webhook applied"
                );
            }),
            Err(e) => {
                span.in_scope(|| tracing::warn!(error = %e, "applying the webhook failed"));
                keep.push(id);
            }
        }
    }
    batch_response(keep)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sample_events_parse() {
        let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_slice(
            include_bytes!("../../../events/webhook-processor/warmup.json"),
        )
        .unwrap();
        assert!(event.records.is_empty());
        let event: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_slice(
            include_bytes!("../../../events/webhook-processor/x-delete.json"),
        )
        .unwrap();
        let body = event.records[0].body.as_deref().unwrap();
        let inbound: herald_domain::inbound::InboundEvent = serde_json::from_str(body).unwrap();
        assert_eq!(inbound.provider, "x");
    }
}
