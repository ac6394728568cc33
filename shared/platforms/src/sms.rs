//! The SMS provider's HTTP API, as Herald uses it:
//!
//! ```text
//! POST {base}/sms/messages        Authorization: Bearer <key>
//!   {"from": "HERALD", "to": "+14155550100", "body": "...", "client_ref": "hr_..."}
//!   201 {"id": "sm_1", "status": "queued", ...}
//! GET  {base}/sms/messages?client_ref=hr_...
//!   200 {"messages": [{"id": "sm_1", ...}]}
//! ```
//!
//! Classified for the sender: a refused connection or a 429 was not taken (throttled, with
//! `Retry-After`); a 5xx, a timeout or a lost connection may have been (ambiguous: looked up
//! by the client reference before any resend); another 4xx is a permanent refusal. The key
//! goes in a header only; numbers and texts never into a log line or an error.

use crate::tls::LazyClient;
use async_trait::async_trait;
use herald_domain::campaigns::sender::{OutboundSms, SmsError, SmsProvider};
use herald_domain::secrets::SecretCache;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The provider's client; its key is read from its secret (cached, so a rotation is picked up
/// within the cache's life).
#[derive(Clone)]
pub struct HttpSms {
    http: LazyClient,
    base: String,
    secrets: Arc<SecretCache>,
    key_secret: String,
}

impl std::fmt::Debug for HttpSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSms")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpSms {
    pub fn new(
        base: impl Into<String>,
        secrets: Arc<SecretCache>,
        key_secret: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            http: LazyClient::new(move |b| b.timeout(timeout)),
            base: base.into().trim_end_matches('/').to_owned(),
            secrets,
            key_secret: key_secret.into(),
        }
    }

    /// The API key; a secret that cannot be read sends nothing (throttled: try later).
    async fn key(&self) -> Result<SecretString, SmsError> {
        match self.secrets.get(&self.key_secret).await {
            Ok(ring) => Ok(ring.current.clone()),
            Err(e) => {
                tracing::warn!(error = %e, "reading the SMS provider's key failed");
                Err(SmsError::Throttled { retry_after: None })
            }
        }
    }

    fn transport(e: &reqwest::Error) -> SmsError {
        if e.is_connect() {
            SmsError::Throttled { retry_after: None }
        } else {
            SmsError::Ambiguous(if e.is_timeout() {
                "the provider did not answer in time".into()
            } else {
                "the connection to the provider failed".into()
            })
        }
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<time::Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()
        .map(time::Duration::seconds)
}

/// The provider's own words for a refusal, cut short (it never echoes the number).
fn message(body: &Value) -> String {
    body["message"]
        .as_str()
        .unwrap_or("no message")
        .chars()
        .take(200)
        .collect()
}

#[async_trait]
impl SmsProvider for HttpSms {
    async fn send(&self, sms: &OutboundSms) -> Result<String, SmsError> {
        let key = self.key().await?;
        let response = self
            .http
            .post(format!("{}/sms/messages", self.base))
            .bearer_auth(key.expose_secret())
            .json(&json!({
                "from": sms.from,
                "to": sms.to,
                "body": sms.text,
                "client_ref": sms.client_ref,
            }))
            .send()
            .await
            .map_err(|e| Self::transport(&e))?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            s if s.is_success() => body["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| SmsError::Ambiguous("the provider's answer had no id".into())),
            StatusCode::TOO_MANY_REQUESTS => Err(SmsError::Throttled { retry_after: wait }),
            s if s.is_server_error() => Err(SmsError::Ambiguous(format!(
                "the provider answered {}",
                s.as_u16()
            ))),
            s => Err(SmsError::Permanent(format!(
                "the provider answered {}: {}",
                s.as_u16(),
                message(&body)
            ))),
        }
    }

    async fn lookup(&self, client_ref: &str) -> Result<Option<String>, SmsError> {
        let key = self.key().await?;
        let response = self
            .http
            .get(format!("{}/sms/messages", self.base))
            .bearer_auth(key.expose_secret())
            .query(&[("client_ref", client_ref)])
            .send()
            .await
            .map_err(|e| Self::transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(SmsError::Ambiguous(format!(
                "the provider's lookup answered {}",
                status.as_u16()
            )));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|_| SmsError::Ambiguous("the provider's lookup was not JSON".into()))?;
        Ok(body["messages"]
            .as_array()
            .and_then(|m| m.first())
            .and_then(|m| m["id"].as_str())
            .map(str::to_owned))
    }
}
