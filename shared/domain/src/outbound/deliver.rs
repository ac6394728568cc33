//! One delivery attempt of one outbound message, and what follows it: done, a delayed copy
//! for the next attempt, the endpoint disabled (410), or the DLQ once the schedule is used up.

use super::guard::{self, TargetPolicy};
use super::schedule::{AttemptResult, Decision, Schedule, decide};
use super::{AttemptRecord, DeliveryMessage, Disabled, EndpointStore, OutboundQueue, Resolver};
use crate::StoreError;
use crate::audit::AuditEntry;
use crate::clock::{Clock, Entropy};
use crate::ports::AuditLog;
use async_trait::async_trait;
use herald_webhooks::standard::{self, SignedHeaders};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// SQS delays a message at most this long.
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

/// A request to a checked address: the connection must go to `address`, whatever the name
/// resolves to by then.
#[derive(Debug, Clone)]
pub struct PinnedRequest<'a> {
    pub target: &'a guard::Target,
    pub address: SocketAddr,
    pub headers: &'a SignedHeaders,
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// The HTTP client that posts a signed event.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    async fn post(&self, request: PinnedRequest<'_>) -> AttemptResult;
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub schedule: Schedule,
    pub policy: TargetPolicy,
    /// Per attempt (15 s).
    pub timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            schedule: Schedule::default(),
            policy: TargetPolicy::default(),
            timeout: Duration::from_secs(15),
        }
    }
}

pub struct Deliverer {
    pub endpoints: Arc<dyn EndpointStore>,
    pub queue: Arc<dyn OutboundQueue>,
    pub sender: Arc<dyn WebhookSender>,
    pub resolver: Arc<dyn Resolver>,
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub config: DeliveryConfig,
}

crate::debug_fields!(Deliverer, config);

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Not yet due: a delayed copy was sent.
    Waiting,
    /// The endpoint is gone, disabled, or no longer subscribed: dropped.
    Dropped(&'static str),
    Attempted(Decision),
}

impl Deliverer {
    /// Handles one message. An `Err` means nothing durable happened after the attempt (the
    /// copy or the DLQ send failed): the caller keeps the message so SQS redelivers it.
    pub async fn handle(&self, message: &DeliveryMessage) -> Result<Handled, StoreError> {
        let now = self.clock.now();
        if let Some(due) = message.not_before.filter(|d| *d > now) {
            let wait = Duration::try_from(due - now).unwrap_or(Duration::ZERO);
            self.queue.send(message, wait.min(MAX_QUEUE_DELAY)).await?;
            return Ok(Handled::Waiting);
        }
        let Some(endpoint) = self
            .endpoints
            .get_endpoint(&message.tenant_id, &message.endpoint_id)
            .await?
        else {
            return Ok(Handled::Dropped("the endpoint was deleted"));
        };
        if !endpoint.is_enabled() {
            return Ok(Handled::Dropped("the endpoint is disabled"));
        }
        if !endpoint.subscribes(message.event.event_type) {
            return Ok(Handled::Dropped("the endpoint no longer subscribes"));
        }
        let made = message.attempts.saturating_add(1);
        let started = std::time::Instant::now();
        let result = self.attempt(&endpoint, message).await;
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let decision = decide(
            &self.config.schedule,
            made,
            &result,
            self.entropy.fraction(),
        );
        let after_attempt = self.clock.now();
        let (status, error) = match &result {
            AttemptResult::Answered { status, .. } => (Some(*status), None),
            AttemptResult::TimedOut => (None, Some("timed out".to_owned())),
            AttemptResult::Failed(why) => (None, Some(why.clone())),
        };
        let next_attempt_at = match &decision {
            Decision::Retry { after } => Some(after_attempt + *after),
            _ => None,
        };
        tracing::info!(endpoint_id = %endpoint.id, event_id = %message.event.id,
            event_type = %message.event.event_type, attempt = made, status, error = error.as_deref(),
            duration_ms, outcome = decision.outcome(), "outbound attempt");
        crate::metrics::outbound_delivery(decision.outcome());
        let record = AttemptRecord {
            tenant_id: message.tenant_id.clone(),
            endpoint_id: endpoint.id.clone(),
            event_id: message.event.id.clone(),
            event_type: message.event.event_type,
            attempt: made,
            at: after_attempt,
            status,
            duration_ms,
            error: error.clone(),
            outcome: decision.outcome().to_owned(),
            next_attempt_at,
        };
        // The attempt happened whatever its record: a failure to record it must not cause a
        // second delivery.
        if let Err(e) = self.endpoints.record_attempt(&record).await {
            tracing::warn!(error = %e, "the attempt could not be recorded");
        }
        match &decision {
            Decision::Delivered => {}
            Decision::Retry { after } => {
                let next = DeliveryMessage {
                    attempts: made,
                    not_before: Some(after_attempt + *after),
                    ..message.clone()
                };
                self.queue
                    .send(&next, (*after).min(MAX_QUEUE_DELAY))
                    .await?;
            }
            Decision::Disable => self.disable(&endpoint, after_attempt).await?,
            Decision::DeadLetter => {
                let why = match (status, error) {
                    (Some(s), _) => format!("{made} attempts; the last answered {s}"),
                    (None, Some(e)) => format!("{made} attempts; the last: {e}"),
                    (None, None) => format!("{made} attempts"),
                };
                let dead = DeliveryMessage {
                    attempts: made,
                    not_before: None,
                    ..message.clone()
                };
                self.queue.dead_letter(&dead, &why).await?;
            }
        }
        Ok(Handled::Attempted(decision))
    }

    /// Checks the target (resolving it now), signs and posts.
    async fn attempt(
        &self,
        endpoint: &super::Endpoint,
        message: &DeliveryMessage,
    ) -> AttemptResult {
        let policy = self.config.policy;
        let target = match guard::check_url(&endpoint.url, policy) {
            Ok(t) => t,
            Err(why) => return AttemptResult::Failed(format!("refused target: {why}")),
        };
        let addresses: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => match self.resolver.resolve(&target.host, target.port).await {
                Ok(a) => a,
                Err(_) => return AttemptResult::Failed("the host does not resolve".into()),
            },
        };
        let ip = match guard::check_addresses(&addresses, policy) {
            Ok(ip) => ip,
            Err(why) => return AttemptResult::Failed(format!("refused target: {why}")),
        };
        let body = message.event.body();
        let now = self.clock.now();
        let headers = match standard::sign(
            &message.event.id,
            now,
            &body,
            &endpoint.signing_secrets(now),
        ) {
            Ok(h) => h,
            Err(e) => return AttemptResult::Failed(format!("could not sign: {e}")),
        };
        self.sender
            .post(PinnedRequest {
                target: &target,
                address: SocketAddr::new(ip, target.port),
                headers: &headers,
                body: &body,
                timeout: self.config.timeout,
            })
            .await
    }

    /// 410 Gone: the endpoint is disabled (audited) and later messages for it are dropped.
    async fn disable(
        &self,
        endpoint: &super::Endpoint,
        now: time::OffsetDateTime,
    ) -> Result<(), StoreError> {
        let reason = "the endpoint answered 410 Gone".to_owned();
        let disabled = super::Endpoint {
            disabled: Some(Disabled {
                reason: reason.clone(),
                at: now,
            }),
            updated_at: now,
            ..endpoint.clone()
        };
        match self
            .endpoints
            .replace_endpoint(&disabled, endpoint.updated_at)
            .await
        {
            Ok(()) => {}
            // Changed meanwhile (rotated, deleted, disabled by another attempt): the next
            // 410 decides again; nothing to audit now.
            Err(StoreError::Conflict) => return Ok(()),
            Err(e) => return Err(e),
        }
        tracing::warn!(endpoint_id = %endpoint.id, "outbound endpoint disabled after 410");
        let entry = AuditEntry {
            tenant_id: endpoint.tenant_id.clone(),
            entity: format!("webhook_endpoint:{}", endpoint.id),
            action: "webhook_endpoint.disabled".into(),
            actor: "system:deliverer".into(),
            old: Some(serde_json::json!({"enabled": true})),
            new: Some(serde_json::json!({"enabled": false, "reason": reason})),
            ip: None,
            user_agent: None,
            at: now,
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "the audit record could not be written");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::{FixedResolver, MemoryEndpoints, MemoryOutboundQueue};
    use super::super::{Endpoint, EndpointId, EventType, OutboundEvent};
    use super::*;
    use crate::clock::FakeClock;
    use crate::ids::TenantId;
    use crate::memory::MemoryStore;
    use secrecy::SecretString;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct NoJitter;
    impl Entropy for NoJitter {
        fn fraction(&self) -> f64 {
            0.0
        }
        fn token(&self) -> String {
            "t".into()
        }
    }

    /// Answers from a script; records what it was sent.
    #[derive(Debug, Default)]
    struct ScriptedSender {
        answers: Mutex<Vec<AttemptResult>>,
        seen: Mutex<Vec<(SocketAddr, SignedHeaders, Vec<u8>)>>,
    }

    #[async_trait]
    impl WebhookSender for ScriptedSender {
        async fn post(&self, r: PinnedRequest<'_>) -> AttemptResult {
            self.seen
                .lock()
                .unwrap()
                .push((r.address, r.headers.clone(), r.body.to_vec()));
            let mut answers = self.answers.lock().unwrap();
            if answers.is_empty() {
                AttemptResult::Answered {
                    status: 200,
                    retry_after: None,
                }
            } else {
                answers.remove(0)
            }
        }
    }

    struct World {
        deliverer: Deliverer,
        endpoints: Arc<MemoryEndpoints>,
        queue: Arc<MemoryOutboundQueue>,
        sender: Arc<ScriptedSender>,
        audit: Arc<MemoryStore>,
        clock: Arc<FakeClock>,
        message: DeliveryMessage,
        secret: SecretString,
    }

    async fn world(resolves_to: &str, answers: Vec<AttemptResult>) -> World {
        let clock = Arc::new(FakeClock::new(
            time::macros::datetime!(2026-11-01 12:00 UTC),
        ));
        let endpoints = Arc::new(MemoryEndpoints::default());
        let queue = Arc::new(MemoryOutboundQueue::default());
        let sender = Arc::new(ScriptedSender {
            answers: Mutex::new(answers),
            ..Default::default()
        });
        let audit = Arc::new(MemoryStore::new());
        let tenant = TenantId::from("ten_1");
        let secret = standard::generate_secret().unwrap();
        let endpoint = Endpoint {
            id: EndpointId::from_str("we_1"),
            tenant_id: tenant.clone(),
            url: "https://hooks.example.com/in".into(),
            event_types: vec![EventType::PostPublished],
            disabled: None,
            secret: secret.clone(),
            previous_secret: None,
            created_at: clock.now(),
            updated_at: clock.now(),
        };
        endpoints.create_endpoint(&endpoint).await.unwrap();
        let event = OutboundEvent::new(
            EventType::PostPublished,
            tenant.clone(),
            &["post_1", "acc_1"],
            clock.now(),
            serde_json::json!({"post_id": "post_1"}),
        );
        let message = DeliveryMessage {
            tenant_id: tenant,
            endpoint_id: endpoint.id.clone(),
            event,
            attempts: 0,
            not_before: None,
            correlation_id: "c".into(),
        };
        let deliverer = Deliverer {
            endpoints: endpoints.clone(),
            queue: queue.clone(),
            sender: sender.clone(),
            resolver: Arc::new(FixedResolver(vec![resolves_to.parse().unwrap()])),
            audit: audit.clone(),
            clock: clock.clone(),
            entropy: Arc::new(NoJitter),
            config: DeliveryConfig {
                schedule: "0,5,300".parse().unwrap(),
                ..DeliveryConfig::default()
            },
        };
        World {
            deliverer,
            endpoints,
            queue,
            sender,
            audit,
            clock,
            message,
            secret,
        }
    }

    impl EndpointId {
        fn from_str(s: &str) -> Self {
            Self(s.to_owned())
        }
    }

    fn status(s: u16) -> AttemptResult {
        AttemptResult::Answered {
            status: s,
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn a_delivery_is_signed_pinned_and_recorded() {
        let w = world("93.184.215.14", vec![]).await;
        let handled = w.deliverer.handle(&w.message).await.unwrap();
        assert_eq!(handled, Handled::Attempted(Decision::Delivered));
        let (address, headers, body) = w.sender.seen.lock().unwrap()[0].clone();
        assert_eq!(address.to_string(), "93.184.215.14:443");
        assert_eq!(headers.id, w.message.event.id);
        let pairs: Vec<(&str, &[u8])> = headers
            .pairs()
            .iter()
            .map(|(n, v)| (*n, v.as_bytes()))
            .collect();
        let request = herald_webhooks::Request::new(&pairs, &body);
        standard::verify(&request, std::slice::from_ref(&w.secret), w.clock.now()).unwrap();
        let attempts = w
            .endpoints
            .list_attempts(&w.message.tenant_id, &w.message.endpoint_id, 10)
            .await
            .unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            (attempts[0].status, attempts[0].outcome.as_str()),
            (Some(200), "delivered")
        );
        assert!(w.queue.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failure_sends_a_delayed_copy_then_the_dlq() {
        let w = world("93.184.215.14", vec![status(500), status(503), status(500)]).await;
        let first = w.deliverer.handle(&w.message).await.unwrap();
        assert_eq!(
            first,
            Handled::Attempted(Decision::Retry {
                after: Duration::from_secs(5)
            })
        );
        let (copy, delay) = w.queue.sent.lock().unwrap()[0].clone();
        assert_eq!((copy.attempts, delay), (1, Duration::from_secs(5)));
        assert_eq!(copy.event.id, w.message.event.id, "the id stays for dedupe");
        // Early: it waits again without an attempt.
        assert_eq!(w.deliverer.handle(&copy).await.unwrap(), Handled::Waiting);
        w.clock.advance(time::Duration::seconds(5));
        w.deliverer.handle(&copy).await.unwrap();
        let (third, delay) = w.queue.sent.lock().unwrap().last().cloned().unwrap();
        assert_eq!((third.attempts, delay), (2, Duration::from_secs(300)));
        w.clock.advance(time::Duration::seconds(300));
        assert_eq!(
            w.deliverer.handle(&third).await.unwrap(),
            Handled::Attempted(Decision::DeadLetter)
        );
        let dead = w.queue.dead.lock().unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].1.contains("3 attempts; the last answered 500"),
            "{}",
            dead[0].1
        );
        assert_eq!(w.sender.seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_long_wait_is_a_chain_of_delays() {
        let w = world("93.184.215.14", vec![]).await;
        let mut later = w.message.clone();
        later.not_before = Some(w.clock.now() + time::Duration::hours(2));
        assert_eq!(w.deliverer.handle(&later).await.unwrap(), Handled::Waiting);
        assert_eq!(w.queue.sent.lock().unwrap()[0].1, MAX_QUEUE_DELAY);
        assert!(w.sender.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn gone_disables_the_endpoint_and_later_messages_are_dropped() {
        let w = world("93.184.215.14", vec![status(410)]).await;
        assert_eq!(
            w.deliverer.handle(&w.message).await.unwrap(),
            Handled::Attempted(Decision::Disable)
        );
        let e = w
            .endpoints
            .get_endpoint(&w.message.tenant_id, &w.message.endpoint_id)
            .await
            .unwrap()
            .unwrap();
        assert!(!e.is_enabled());
        let records = w
            .audit
            .list(&w.message.tenant_id, &Default::default(), None, 10)
            .await
            .unwrap();
        assert_eq!(records.items[0].entry.action, "webhook_endpoint.disabled");
        assert_eq!(
            w.deliverer.handle(&w.message).await.unwrap(),
            Handled::Dropped("the endpoint is disabled")
        );
        assert_eq!(w.sender.seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_private_answer_is_refused_before_connecting() {
        for ip in ["10.0.0.1", "127.0.0.1", "169.254.169.254", "::1"] {
            let w = world(ip, vec![]).await;
            let handled = w.deliverer.handle(&w.message).await.unwrap();
            assert!(matches!(
                handled,
                Handled::Attempted(Decision::Retry { .. })
            ));
            assert!(w.sender.seen.lock().unwrap().is_empty(), "{ip} was called");
            let attempts = w
                .endpoints
                .list_attempts(&w.message.tenant_id, &w.message.endpoint_id, 10)
                .await
                .unwrap();
            assert!(
                attempts[0]
                    .error
                    .as_deref()
                    .unwrap()
                    .starts_with("refused target"),
                "{attempts:?}"
            );
        }
    }

    #[tokio::test]
    async fn both_secrets_sign_during_a_rotation() {
        let w = world("93.184.215.14", vec![]).await;
        let old = w
            .endpoints
            .get_endpoint(&w.message.tenant_id, &w.message.endpoint_id)
            .await
            .unwrap()
            .unwrap();
        let new_secret = standard::generate_secret().unwrap();
        let rotated = old.rotated(new_secret.clone(), w.clock.now(), Duration::from_secs(3600));
        w.endpoints
            .replace_endpoint(&rotated, old.updated_at)
            .await
            .unwrap();
        w.deliverer.handle(&w.message).await.unwrap();
        let signature = w.sender.seen.lock().unwrap()[0].1.signature.clone();
        assert_eq!(signature.split(' ').count(), 2, "{signature}");
        // After the overlap only the new one signs.
        w.clock.advance(time::Duration::hours(2));
        w.deliverer.handle(&w.message).await.unwrap();
        let signature = w.sender.seen.lock().unwrap()[1].1.signature.clone();
        assert_eq!(signature.split(' ').count(), 1, "{signature}");
    }

    #[tokio::test]
    async fn a_failed_copy_keeps_the_message() {
        let w = world("93.184.215.14", vec![status(500)]).await;
        *w.queue.fail.lock().unwrap() = Some(StoreError::Unavailable("sqs down".into()));
        assert!(w.deliverer.handle(&w.message).await.is_err());
    }
}
