//! In-memory implementations of every port, with the same conditions as the DynamoDB
//! adapter. They back the API's in-process tests, the unit tests and the benchmarks; the
//! contract they share with DynamoDB is checked against both.
//!
//! `MemoryStore` is one store behind every port, as the DynamoDB adapter is one table: its state
//! and the cross-cutting ports (tenants, accounts, audit, idempotency, alerts, dead letters) are
//! here; the publishing ports are in `publishing/memory.rs`, the media ones in `media/memory.rs`.

use crate::audit::{AuditEntry, AuditRecord, ChainHead};
use crate::dead_letters::{
    DeadLetter, DeadLetterQuery, DeadLetterQueues, DeadLetterRecords, Drained,
};
use crate::error::StoreError;
use crate::idempotency::{IdempotencyPersistence, IdempotencyRecord, PutRejected, holds_key};
use crate::ids::{AccountId, ApiKeyId, MediaId, PostId, TenantId};
use crate::media::MediaRecord;
use crate::model::{Account, ApiKey, KeyChange, Post, Suspension, Tenant, TenantSettings};
use crate::ports::*;
use crate::publishing::gates::Crisis;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use time::OffsetDateTime;

// Each feature's fakes live in its folder; named here too, where they always were.
pub use crate::media::memory::*;
pub use crate::publishing::memory::*;

/// Counts calls per operation, the way the AWS adapters count SDK calls.
#[derive(Debug, Default)]
pub struct CallCounter(Mutex<BTreeMap<&'static str, usize>>);

impl CallCounter {
    pub fn record(&self, op: &'static str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(op)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<&'static str, usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn total(&self) -> usize {
        self.snapshot().values().sum()
    }

    pub fn reset(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) tenants: HashMap<TenantId, Tenant>,
    pub(crate) keys: HashMap<String, ApiKey>,
    pub(crate) accounts: BTreeMap<(TenantId, AccountId), Account>,
    pub(crate) posts: BTreeMap<(TenantId, PostId), Post>,
    pub(crate) idempotency: HashMap<String, IdempotencyRecord>,
    pub(crate) crises: HashMap<TenantId, Crisis>,
    /// Rate-window counters by (scope, window index).
    pub(crate) windows: HashMap<(String, i64), u32>,
    pub(crate) app_blocks: HashMap<String, OffsetDateTime>,
    /// Posts a publisher claimed from, by when to check on them.
    pub(crate) inflight: BTreeMap<PostRef, OffsetDateTime>,
    pub(crate) heartbeats: HashMap<String, (OffsetDateTime, String)>,
    pub(crate) audit: Vec<AuditRecord>,
    pub(crate) audit_heads: BTreeMap<(TenantId, String), ChainHead>,
    pub(crate) alert_windows: HashMap<(String, i64), u32>,
    pub(crate) media: BTreeMap<(TenantId, MediaId), MediaRecord>,
    pub(crate) media_usage: BTreeMap<TenantId, crate::media::MediaUsage>,
    pub(crate) console_sessions: HashMap<String, crate::console::Session>,
    pub(crate) connect_links: HashMap<String, crate::connect::ConnectLink>,
    pub(crate) authorizations: HashMap<String, crate::connect::PendingAuthorization>,
    pub(crate) choices: HashMap<String, crate::connect::PendingChoice>,
    pub(crate) posting_slots: HashMap<TenantId, crate::publishing::slots::PostingSlots>,
    /// Slot holds by (tenant, account, epoch ms): the post holding it.
    pub(crate) slot_holds: HashMap<(TenantId, AccountId, i64), PostId>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    pub(crate) state: Mutex<State>,
    pub calls: CallCounter,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn with<R>(&self, op: &'static str, f: impl FnOnce(&mut State) -> R) -> R {
        self.calls.record(op);
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every post, for assertions.
    pub fn all_posts(&self) -> Vec<Post> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .posts
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.with("create_tenant", |s| {
            if s.tenants.contains_key(&tenant.id) {
                return Err(StoreError::Conflict);
            }
            s.tenants.insert(tenant.id.clone(), tenant.clone());
            Ok(())
        })
    }

    async fn get_tenant(&self, id: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.with("get_tenant", |s| Ok(s.tenants.get(id).cloned()))
    }

    async fn update_settings(
        &self,
        id: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        self.with("update_settings", |s| match s.tenants.get_mut(id) {
            Some(t) => {
                t.settings = settings.clone();
                Ok(())
            }
            None => Err(StoreError::Conflict),
        })
    }

    async fn put_api_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.with("put_api_key", |s| {
            if s.keys.contains_key(&key.hash) {
                return Err(StoreError::Conflict);
            }
            s.keys.insert(key.hash.clone(), key.clone());
            Ok(())
        })
    }

    async fn find_api_key(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.with("find_api_key", |s| Ok(s.keys.get(hash).cloned()))
    }

    async fn list_api_keys(&self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.with("list_api_keys", |s| {
            let mut keys: Vec<ApiKey> = s
                .keys
                .values()
                .filter(|k| &k.tenant_id == tenant)
                .cloned()
                .collect();
            keys.sort_by(|a, b| b.id.cmp(&a.id));
            Ok(keys)
        })
    }

    async fn change_api_key(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        change: &KeyChange,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.with("change_api_key", |s| {
            let Some(key) = s
                .keys
                .values_mut()
                .find(|k| &k.tenant_id == tenant && &k.id == id)
            else {
                return Ok(None);
            };
            if change.rotated_to.is_some() && key.rotated_to.is_some() {
                return Ok(None);
            }
            if let Some(next) = &change.rotated_to {
                key.rotated_to = Some(next.clone());
            }
            if let Some(at) = change.revoked_at {
                key.revoked_at = Some(at);
            }
            if let Some(at) = change.expires_at {
                key.expires_at = Some(at);
            }
            Ok(Some(key.clone()))
        })
    }

    async fn touch_api_key(
        &self,
        hash: &str,
        at: OffsetDateTime,
        since: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.with("touch_api_key", |s| {
            if let Some(key) = s.keys.get_mut(hash)
                && key.last_used_at.is_none_or(|t| t < since)
            {
                key.last_used_at = Some(at);
            }
            Ok(())
        })
    }

    async fn set_suspension(
        &self,
        tenant: &TenantId,
        suspension: Option<&Suspension>,
    ) -> Result<bool, StoreError> {
        self.with("set_suspension", |s| {
            Ok(s.tenants
                .get_mut(tenant)
                .map(|t| t.suspended = suspension.cloned())
                .is_some())
        })
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn upsert_account(&self, account: &Account) -> Result<bool, StoreError> {
        self.with("upsert_account", |s| {
            let key = (account.tenant_id.clone(), account.id.clone());
            let mut stored = account.clone();
            let created = match s.accounts.get(&key) {
                Some(old) => {
                    // Reconnecting refreshes the token, never the breaker's memory.
                    stored.created_at = old.created_at;
                    stored.breaker = old.breaker.clone();
                    // Reconnecting without a refresh token keeps the stored one.
                    if stored.refresh_token.is_none() {
                        stored.refresh_token = old.refresh_token.clone();
                    }
                    false
                }
                None => true,
            };
            s.accounts.insert(key, stored);
            Ok(created)
        })
    }

    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        self.with("get_account", |s| {
            Ok(s.accounts.get(&(tenant.clone(), id.clone())).cloned())
        })
    }

    async fn delete_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        self.with("delete_account", |s| {
            Ok(s.accounts.remove(&(tenant.clone(), id.clone())))
        })
    }

    async fn list_accounts(&self, tenant: &TenantId) -> Result<Vec<Account>, StoreError> {
        self.with("list_accounts", |s| {
            Ok(s.accounts
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|(_, a)| a.clone())
                .collect())
        })
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn head(&self, tenant: &TenantId, entity: &str) -> Result<ChainHead, StoreError> {
        self.with("audit_head", |s| {
            Ok(s.audit_heads
                .get(&(tenant.clone(), entity.to_owned()))
                .cloned()
                .unwrap_or_default())
        })
    }

    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StoreError> {
        self.with("audit_append", |s| {
            let key = (entry.tenant_id.clone(), entry.entity.clone());
            let head = s.audit_heads.get(&key).cloned().unwrap_or_default();
            let record = AuditRecord::chain(entry, &head);
            s.audit_heads.insert(key, record.head());
            s.audit.push(record.clone());
            Ok(record)
        })
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &AuditFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<AuditRecord>, StoreError> {
        self.with("audit_list", |s| {
            let skip: usize = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
            let matching: Vec<AuditRecord> = s
                .audit
                .iter()
                .rev()
                .filter(|r| r.entry.tenant_id == *tenant && filter.matches(r))
                .cloned()
                .collect();
            let items: Vec<AuditRecord> = matching.iter().skip(skip).take(limit).cloned().collect();
            let cursor =
                (skip + items.len() < matching.len()).then(|| (skip + items.len()).to_string());
            Ok(Page { items, cursor })
        })
    }

    async fn export(
        &self,
        tenant: &TenantId,
    ) -> Result<(Vec<AuditRecord>, BTreeMap<String, ChainHead>), StoreError> {
        self.with("audit_export", |s| {
            let records = s
                .audit
                .iter()
                .filter(|r| r.entry.tenant_id == *tenant)
                .cloned()
                .collect();
            let heads = s
                .audit_heads
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|((_, e), h)| (e.clone(), h.clone()))
                .collect();
            Ok((records, heads))
        })
    }
}

impl MemoryStore {
    /// Every audit record, for tests that tamper with the log.
    pub fn tamper_audit(&self, f: impl FnOnce(&mut Vec<AuditRecord>)) {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).audit);
    }
}

#[async_trait]
impl IdempotencyPersistence for MemoryStore {
    async fn put_in_progress(
        &self,
        record: &IdempotencyRecord,
        now: OffsetDateTime,
    ) -> Result<(), PutRejected> {
        self.with("idempotency_put", |s| {
            if let Some(existing) = s.idempotency.get(&record.id).filter(|e| holds_key(e, now)) {
                return Err(PutRejected::Exists(Box::new(existing.clone())));
            }
            s.idempotency.insert(record.id.clone(), record.clone());
            Ok(())
        })
    }

    async fn save_completed(&self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        self.with("idempotency_save", |s| {
            s.idempotency.insert(record.id.clone(), record.clone());
            Ok(())
        })
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.with("idempotency_delete", |s| {
            s.idempotency.remove(id);
            Ok(())
        })
    }
}

/// Dead-letter queues in memory: `dead` holds the letters, `requeued` what went back.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    pub dead: Mutex<Vec<DeadLetter>>,
    pub requeued: Mutex<Vec<DeadLetter>>,
}

#[async_trait]
impl DeadLetterQueues for MemoryDeadLetters {
    fn sources(&self) -> Vec<String> {
        vec!["publish".into(), "webhooks".into(), "outbound".into()]
    }

    async fn receive(&self, source: &str) -> Result<Vec<Drained>, StoreError> {
        let dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        Ok(dead
            .iter()
            .filter(|d| d.source == source)
            .take(10)
            .map(|d| Drained {
                letter: d.clone(),
                handle: d.id.clone(),
            })
            .collect())
    }

    async fn remove(&self, _source: &str, handles: &[String]) -> Result<(), StoreError> {
        let mut dead = self.dead.lock().unwrap_or_else(|p| p.into_inner());
        dead.retain(|d| !handles.contains(&d.id));
        Ok(())
    }

    async fn send_back(&self, letters: &[DeadLetter]) -> Result<Vec<bool>, StoreError> {
        let mut requeued = self.requeued.lock().unwrap_or_else(|p| p.into_inner());
        requeued.extend(letters.iter().cloned());
        Ok(vec![true; letters.len()])
    }
}

/// Dead-letter records in memory, by owner and id (ids sort as the messages were sent).
#[derive(Debug, Default)]
pub struct MemoryDeadLetterRecords(Mutex<BTreeMap<(TenantId, String), DeadLetter>>);

#[async_trait]
impl DeadLetterRecords for MemoryDeadLetterRecords {
    async fn keep(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (letter.owner(), letter.id.clone());
        if kept.contains_key(&key) {
            return Ok(false);
        }
        kept.insert(key, letter.clone());
        Ok(true)
    }

    async fn page(
        &self,
        owner: &TenantId,
        query: &DeadLetterQuery,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<DeadLetter>, StoreError> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut items: Vec<DeadLetter> = kept
            .iter()
            .filter(|((o, id), d)| {
                o == owner && cursor.is_none_or(|c| id.as_str() > c) && query.matches(d)
            })
            .map(|(_, d)| d.clone())
            .take(limit + 1)
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        let cursor = more.then(|| items.last().map(|d| d.id.clone())).flatten();
        Ok(Page { items, cursor })
    }

    async fn find(&self, owner: &TenantId, id: &str) -> Result<Option<DeadLetter>, StoreError> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(kept.get(&(owner.clone(), id.to_owned())).cloned())
    }

    async fn discard(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(kept.remove(&(letter.owner(), letter.id.clone())).is_some())
    }

    async fn pending(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = BTreeMap::new();
        for d in kept.values() {
            *counts.entry(d.source.clone()).or_insert(0) += 1;
        }
        Ok(counts)
    }
}

#[async_trait]
impl crate::alerts::AlertLedger for MemoryStore {
    async fn first(
        &self,
        key: &str,
        index: i64,
        _expires: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.with("alert_first", |s| {
            let seen = s
                .alert_windows
                .entry((format!("sent:{key}"), index))
                .or_default();
            *seen += 1;
            Ok(*seen == 1)
        })
    }

    async fn count(
        &self,
        key: &str,
        index: i64,
        _expires: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        self.with("alert_count", |s| {
            let n = s.alert_windows.entry((key.to_owned(), index)).or_default();
            *n += 1;
            Ok(*n)
        })
    }
}

/// An alert sink that keeps what it was sent.
#[derive(Debug, Default)]
pub struct MemoryAlerts {
    pub sent: Mutex<Vec<crate::alerts::Alert>>,
}

#[async_trait]
impl crate::alerts::AlertSink for MemoryAlerts {
    async fn send(&self, alert: &crate::alerts::Alert) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(alert.clone());
        Ok(())
    }
}

/// An alerter over `store`'s ledger, keeping what it sends.
pub fn alerter(
    store: std::sync::Arc<MemoryStore>,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> (crate::alerts::Alerter, std::sync::Arc<MemoryAlerts>) {
    let sink = std::sync::Arc::new(MemoryAlerts::default());
    (
        crate::alerts::Alerter {
            ledger: store,
            sink: sink.clone(),
            clock,
            config: crate::alerts::AlertConfig::default(),
        },
        sink,
    )
}

#[async_trait]
impl crate::console::SessionStore for MemoryStore {
    async fn put_session(&self, session: &crate::console::Session) -> Result<(), StoreError> {
        self.with("put_session", |s| {
            s.console_sessions
                .insert(session.id.clone(), session.clone());
            Ok(())
        })
    }

    async fn get_session(&self, id: &str) -> Result<Option<crate::console::Session>, StoreError> {
        self.with("get_session", |s| Ok(s.console_sessions.get(id).cloned()))
    }

    async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.with("delete_session", |s| {
            s.console_sessions.remove(id);
            Ok(())
        })
    }
}

#[async_trait]
impl crate::connect::ConnectStore for MemoryStore {
    async fn put_link(&self, link: &crate::connect::ConnectLink) -> Result<(), StoreError> {
        self.with("put_link", |s| {
            s.connect_links.insert(link.id.clone(), link.clone());
            Ok(())
        })
    }

    async fn get_link(&self, id: &str) -> Result<Option<crate::connect::ConnectLink>, StoreError> {
        self.with("get_link", |s| Ok(s.connect_links.get(id).cloned()))
    }

    async fn put_authorization(
        &self,
        pending: &crate::connect::PendingAuthorization,
    ) -> Result<(), StoreError> {
        self.with("put_authorization", |s| {
            s.authorizations.insert(pending.id.clone(), pending.clone());
            Ok(())
        })
    }

    async fn take_authorization(
        &self,
        id: &str,
    ) -> Result<Option<crate::connect::PendingAuthorization>, StoreError> {
        self.with("take_authorization", |s| Ok(s.authorizations.remove(id)))
    }

    async fn put_choice(&self, pending: &crate::connect::PendingChoice) -> Result<(), StoreError> {
        self.with("put_choice", |s| {
            s.choices.insert(pending.id.clone(), pending.clone());
            Ok(())
        })
    }

    async fn take_choice(
        &self,
        id: &str,
    ) -> Result<Option<crate::connect::PendingChoice>, StoreError> {
        self.with("take_choice", |s| Ok(s.choices.remove(id)))
    }
}
