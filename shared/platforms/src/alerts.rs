//! Alerts to a Slack-compatible incoming webhook.

use async_trait::async_trait;
use secrecy::ExposeSecret;
use std::time::Duration;

/// Alerts to a Slack-compatible incoming webhook (`{"text": ...}`). The URL is a secret (it
/// carries the webhook's token) and is never logged.
#[derive(Debug, Clone)]
pub struct WebhookAlerts {
    http: crate::tls::LazyClient,
    url: secrecy::SecretString,
}

impl WebhookAlerts {
    pub fn new(url: secrecy::SecretString) -> Self {
        let http = crate::tls::LazyClient::new(|builder| builder.timeout(Duration::from_secs(5)));
        Self { http, url }
    }
}

#[async_trait]
impl herald_domain::alerts::AlertSink for WebhookAlerts {
    async fn send(&self, alert: &herald_domain::alerts::Alert) -> Result<(), String> {
        let body = serde_json::json!({
            "text": format!(":rotating_light: *{}*\n{}", alert.title, alert.detail),
            "herald": {"key": alert.key},
        });
        let response = self
            .http
            .post(self.url.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("the alert webhook did not answer: {}", e.without_url()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the alert webhook answered {}",
                response.status().as_u16()
            ))
        }
    }
}

/// The alerter every function uses: the webhook when one is configured, the log otherwise.
pub fn alerter(
    webhook: Option<secrecy::SecretString>,
    ledger: std::sync::Arc<dyn herald_domain::alerts::AlertLedger>,
    clock: std::sync::Arc<dyn herald_domain::clock::Clock>,
) -> herald_domain::alerts::Alerter {
    let sink: std::sync::Arc<dyn herald_domain::alerts::AlertSink> = match webhook {
        Some(url) => std::sync::Arc::new(WebhookAlerts::new(url)),
        None => std::sync::Arc::new(herald_domain::alerts::LogSink),
    };
    herald_domain::alerts::Alerter {
        ledger,
        sink,
        clock,
        config: herald_domain::alerts::AlertConfig::default(),
    }
}
