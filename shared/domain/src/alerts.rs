//! Alerts to operators (a Slack-compatible webhook): a circuit opening, a token going
//! invalid, five or more failed publishes in an hour for a tenant, the publish queue deeper
//! than 100, a dead-letter queue not empty. At most one alert per condition per window: a
//! conditional write in a shared ledger decides which instance sends it, so a storm of
//! failures is one message, not a flood. Alerts never fail the work that raised them.

use crate::StoreError;
use crate::clock::Clock;
use crate::publishing::gates::Window;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// The condition, e.g. `circuit_open:<tenant>:<account>`; one alert per key per window.
    pub key: String,
    pub title: String,
    /// What happened and what to look at; ids only, never tokens or personal data.
    pub detail: String,
}

/// Decides, across instances, whether an alert was already sent in this window.
#[async_trait]
pub trait AlertLedger: Send + Sync {
    /// True for the first caller in the window `index` of `key`.
    async fn first(
        &self,
        key: &str,
        index: i64,
        expires: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// Counts one event of `key` in a window and returns the count so far.
    async fn count(
        &self,
        key: &str,
        index: i64,
        expires: time::OffsetDateTime,
    ) -> Result<u32, StoreError>;
}

/// Where alerts go.
#[async_trait]
pub trait AlertSink: Send + Sync {
    async fn send(&self, alert: &Alert) -> Result<(), String>;
}

/// Thresholds of the conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertConfig {
    /// One alert per condition per this long.
    pub window: Duration,
    /// Failed publishes of one tenant within `window` that raise an alert.
    pub failed_publishes: u32,
    /// Messages waiting in the publish queue that raise an alert.
    pub queue_depth: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            window: Duration::hours(1),
            failed_publishes: 5,
            queue_depth: 100,
        }
    }
}

#[derive(Clone)]
pub struct Alerter {
    pub ledger: Arc<dyn AlertLedger>,
    pub sink: Arc<dyn AlertSink>,
    pub clock: Arc<dyn Clock>,
    pub config: AlertConfig,
}

crate::debug_fields!(Alerter, config);

impl Alerter {
    fn window(&self) -> Window {
        Window {
            limit: 1,
            period: self.config.window,
        }
    }

    /// Sends `alert` unless its condition already alerted in this window. Returns whether it
    /// was sent.
    pub async fn raise(&self, alert: Alert) -> bool {
        let slot = self.window().slot(alert.key.as_str(), self.clock.now());
        match self
            .ledger
            .first(&alert.key, slot.index, slot.ends_at + self.config.window)
            .await
        {
            Ok(true) => {}
            Ok(false) => return false,
            Err(e) => {
                // Better a duplicate alert than a missed one.
                tracing::warn!(error = %e, key = %alert.key, "the alert ledger failed; sending anyway");
            }
        }
        match self.sink.send(&alert).await {
            Ok(()) => {
                tracing::warn!(key = %alert.key, title = %alert.title, "alert sent");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, key = %alert.key, "the alert could not be sent");
                false
            }
        }
    }

    /// Counts a failed publish of `tenant`; at the threshold, alerts (once per window).
    pub async fn failed_publish(&self, tenant: &str, reason: &str) {
        let key = format!("failed_publishes:{tenant}");
        let slot = self.window().slot(key.as_str(), self.clock.now());
        let count = match self
            .ledger
            .count(
                &format!("count:{key}"),
                slot.index,
                slot.ends_at + self.config.window,
            )
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "counting a failed publish failed");
                return;
            }
        };
        if count >= self.config.failed_publishes {
            self.raise(Alert {
                key,
                title: format!("{count} failed publishes within the hour"),
                detail: format!("tenant {tenant}; the latest: {reason}"),
            })
            .await;
        }
    }

    /// Checks the queues' depths (the reconciler's run).
    pub async fn queues(&self, publish_waiting: u64, dead_letters: u64) {
        if publish_waiting > self.config.queue_depth {
            self.raise(Alert {
                key: "queue_depth:publish".into(),
                title: format!("{publish_waiting} messages wait in the publish queue"),
                detail: "publishing is falling behind: check the publisher's errors and throttles"
                    .into(),
            })
            .await;
        }
        if dead_letters > 0 {
            self.raise(Alert {
                key: "dead_letters:publish".into(),
                title: format!("{dead_letters} messages in the publish dead-letter queue"),
                detail: "see docs/runbooks.md#publish-dlq; GET /v1/dead-letters or herald dead-letters list"
                    .into(),
            })
            .await;
        }
    }
}

/// A sink that only logs, when no webhook is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogSink;

#[async_trait]
impl AlertSink for LogSink {
    async fn send(&self, alert: &Alert) -> Result<(), String> {
        tracing::warn!(key = %alert.key, title = %alert.title, detail = %alert.detail, "alert (no webhook configured)");
        Ok(())
    }
}
