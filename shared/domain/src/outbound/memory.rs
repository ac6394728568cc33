//! In-memory endpoints, queue and resolver, for unit tests and the API's in-process tests.

use super::*;

#[derive(Debug, Default)]
pub struct MemoryEndpoints {
    endpoints: Mutex<Vec<Endpoint>>,
    attempts: Mutex<Vec<AttemptRecord>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl EndpointStore for MemoryEndpoints {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let mut all = lock(&self.endpoints);
        if all
            .iter()
            .any(|e| e.id == endpoint.id && e.tenant_id == endpoint.tenant_id)
        {
            return Err(StoreError::Conflict);
        }
        all.push(endpoint.clone());
        Ok(())
    }

    async fn replace_endpoint(
        &self,
        endpoint: &Endpoint,
        expected: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut all = lock(&self.endpoints);
        match all.iter_mut().find(|e| {
            e.id == endpoint.id && e.tenant_id == endpoint.tenant_id && e.updated_at == expected
        }) {
            Some(e) => {
                *e = endpoint.clone();
                Ok(())
            }
            None => Err(StoreError::Conflict),
        }
    }

    async fn get_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        Ok(lock(&self.endpoints)
            .iter()
            .find(|e| &e.id == id && &e.tenant_id == tenant)
            .cloned())
    }

    async fn list_endpoints(&self, tenant: &TenantId) -> Result<Vec<Endpoint>, StoreError> {
        Ok(lock(&self.endpoints)
            .iter()
            .filter(|e| &e.tenant_id == tenant)
            .cloned()
            .collect())
    }

    async fn delete_endpoint(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        let mut all = lock(&self.endpoints);
        let at = all
            .iter()
            .position(|e| &e.id == id && &e.tenant_id == tenant);
        Ok(at.map(|i| all.remove(i)))
    }

    async fn record_attempt(&self, attempt: &AttemptRecord) -> Result<(), StoreError> {
        lock(&self.attempts).push(attempt.clone());
        Ok(())
    }

    async fn list_attempts(
        &self,
        tenant: &TenantId,
        id: &EndpointId,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        Ok(lock(&self.attempts)
            .iter()
            .rev()
            .filter(|a| &a.tenant_id == tenant && &a.endpoint_id == id)
            .take(limit)
            .cloned()
            .collect())
    }
}

/// Sent messages with their delays, and dead letters with their reasons.
#[derive(Debug, Default)]
pub struct MemoryOutboundQueue {
    pub sent: Mutex<Vec<(DeliveryMessage, Duration)>>,
    pub dead: Mutex<Vec<(DeliveryMessage, String)>>,
    /// When set, every send fails with it.
    pub fail: Mutex<Option<StoreError>>,
}

#[async_trait]
impl OutboundQueue for MemoryOutboundQueue {
    async fn send(&self, message: &DeliveryMessage, delay: Duration) -> Result<(), StoreError> {
        if let Some(e) = lock(&self.fail).clone() {
            return Err(e);
        }
        lock(&self.sent).push((message.clone(), delay));
        Ok(())
    }

    async fn dead_letter(&self, message: &DeliveryMessage, reason: &str) -> Result<(), StoreError> {
        if let Some(e) = lock(&self.fail).clone() {
            return Err(e);
        }
        lock(&self.dead).push((message.clone(), reason.to_owned()));
        Ok(())
    }
}

/// Resolves every name to the addresses given.
#[derive(Debug, Clone, Default)]
pub struct FixedResolver(pub Vec<IpAddr>);

#[async_trait]
impl Resolver for FixedResolver {
    async fn resolve(&self, _host: &str, _port: u16) -> Result<Vec<IpAddr>, String> {
        if self.0.is_empty() {
            Err("no such host".into())
        } else {
            Ok(self.0.clone())
        }
    }
}

/// Every event announced, in order: stands in for the fan-out where a test asserts what was
/// announced.
#[derive(Debug, Default)]
pub struct RecordedEvents(Mutex<Vec<OutboundEvent>>);

impl RecordedEvents {
    pub fn all(&self) -> Vec<OutboundEvent> {
        lock(&self.0).clone()
    }

    /// The data of every event of this type.
    pub fn of(&self, event_type: EventType) -> Vec<serde_json::Value> {
        lock(&self.0)
            .iter()
            .filter(|e| e.event_type == event_type)
            .map(|e| e.data.clone())
            .collect()
    }
}

#[async_trait]
impl crate::publishing::settle::OutcomeEvents for RecordedEvents {
    async fn emit(&self, event: &OutboundEvent, _correlation_id: &str) {
        lock(&self.0).push(event.clone());
    }
}
