//! Alerts to a Slack-compatible incoming webhook.

use async_trait::async_trait;
use herald_domain::alerts::{Alert, AlertConfig, AlertLedger, AlertSink, Alerter, LogSink};
use herald_domain::clock::Clock;
use herald_domain::secrets::SecretCache;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Alerts to a Slack-compatible incoming webhook (`{"text": ...}`). The URL is a secret (it
/// carries the webhook's token): it lives in Secrets Manager (`AlertWebhookSecret`, a JSON
/// document `{"url": "https://..."}`), is read through the secret cache on each alert (so an
/// operator can change it without a deploy), and is never logged. An empty `url` means no
/// webhook: alerts go to the log.
#[derive(Debug, Clone)]
pub struct WebhookAlerts {
    http: crate::tls::LazyClient,
    cache: Arc<SecretCache>,
    secret: String,
}

impl WebhookAlerts {
    pub fn new(cache: Arc<SecretCache>, secret: impl Into<String>) -> Self {
        let http = crate::tls::LazyClient::new(|builder| builder.timeout(Duration::from_secs(5)));
        Self {
            http,
            cache,
            secret: secret.into(),
        }
    }
}

/// The alert webhook secret's document.
#[derive(Deserialize)]
struct AlertWebhookDocument {
    #[serde(default)]
    url: String,
}

/// The URL an alert webhook secret holds: `None` when it is empty; an error (naming no part
/// of the value) when it is not JSON or not an http(s) URL.
pub fn alert_webhook_url(value: &SecretString) -> Result<Option<SecretString>, String> {
    let document: AlertWebhookDocument = serde_json::from_str(value.expose_secret())
        .map_err(|_| "the alert webhook secret is not a JSON document {\"url\": ...}".to_owned())?;
    let url = document.url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => {
            Ok(Some(SecretString::from(url.to_owned())))
        }
        _ => Err("the alert webhook secret's url is not an http(s) URL".to_owned()),
    }
}

#[async_trait]
impl AlertSink for WebhookAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), String> {
        let ring = self
            .cache
            .get(&self.secret)
            .await
            .map_err(|e| format!("the alert webhook secret could not be read: {e}"))?;
        let Some(url) = alert_webhook_url(&ring.current)? else {
            return LogSink.send(alert).await;
        };
        let body = serde_json::json!({
            "text": format!(":rotating_light: *{}*\n{}", alert.title, alert.detail),
            "herald": {"key": alert.key},
        });
        let response = self
            .http
            .post(url.expose_secret())
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

/// The alerter every function uses: the webhook in `webhook` (a secret read through `cache`)
/// when one is configured, the log otherwise.
pub fn alerter(
    webhook: Option<(Arc<SecretCache>, String)>,
    ledger: Arc<dyn AlertLedger>,
    clock: Arc<dyn Clock>,
) -> Alerter {
    let sink: Arc<dyn AlertSink> = match webhook {
        Some((cache, secret)) => Arc::new(WebhookAlerts::new(cache, secret)),
        None => Arc::new(LogSink),
    };
    Alerter {
        ledger,
        sink,
        clock,
        config: AlertConfig::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_holds_an_http_url_or_nothing() {
        let read = |v: &str| alert_webhook_url(&SecretString::from(v.to_owned()));
        let url = read(r#"{"url": "https://hooks.example.com/T1/B2/abc"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(url.expose_secret(), "https://hooks.example.com/T1/B2/abc");
        assert!(read(r#"{"url": ""}"#).unwrap().is_none());
        assert!(read("{}").unwrap().is_none());
        for bad in [
            "https://hooks.example.com/raw",
            r#"{"url": "ftp://hooks.example.com/x"}"#,
            r#"{"url": "hooks.example.com/secret-token"}"#,
        ] {
            let err = read(bad).unwrap_err();
            assert!(
                !err.contains("secret-token") && !err.contains("raw"),
                "{err}"
            );
        }
    }
}
