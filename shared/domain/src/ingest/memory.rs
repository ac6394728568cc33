//! In-memory ingestion ports with the DynamoDB adapter's conditions, and a scripted
//! X-like timeline (ids ascending with time, `since_id` and `pagination_token` paging).

use super::*;
use crate::memory::CallCounter;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Inner {
    accounts: Vec<(TenantId, AccountId, StreamKey)>,
    streams: BTreeMap<(TenantId, StreamKey), StreamState>,
    items: BTreeMap<(TenantId, StreamKey), BTreeMap<String, IngestedItem>>,
    reviews: BTreeMap<(TenantId, String), ReviewItem>,
    /// Item writes per (stream, platform id): more than one means a page was stored again.
    writes: HashMap<(StreamKey, String), usize>,
}

#[derive(Debug, Default)]
pub struct MemoryIngestStore {
    inner: Mutex<Inner>,
    pub calls: CallCounter,
}

impl MemoryIngestStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connected account the poller should make a stream of.
    pub fn register(&self, tenant: &TenantId, account: &AccountId, key: &StreamKey) {
        self.lock()
            .accounts
            .push((tenant.clone(), account.clone(), key.clone()));
    }

    /// How many times each item was written (a re-delivery writes again, harmlessly).
    pub fn writes(&self) -> HashMap<(StreamKey, String), usize> {
        self.lock().writes.clone()
    }

    /// Everything, for before/after comparisons.
    pub fn snapshot(&self) -> String {
        format!("{:?}", self.lock().streams)
            + &format!("{:?}", self.lock().items)
            + &format!("{:?}", self.lock().reviews)
    }
}

#[async_trait]
impl IngestStore for MemoryIngestStore {
    async fn candidates(&self) -> Result<Vec<Candidate>, StoreError> {
        self.calls.record("candidates");
        let g = self.lock();
        Ok(g.accounts
            .iter()
            .map(|(t, a, k)| Candidate {
                tenant_id: t.clone(),
                account_id: a.clone(),
                key: k.clone(),
                state: g.streams.get(&(t.clone(), k.clone())).cloned(),
            })
            .collect())
    }

    async fn streams(&self, tenant: &TenantId) -> Result<Vec<Candidate>, StoreError> {
        self.calls.record("streams");
        Ok(self
            .candidates()
            .await?
            .into_iter()
            .filter(|c| &c.tenant_id == tenant)
            .collect())
    }

    async fn set_dry_run(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        dry_run: bool,
    ) -> Result<StreamState, StoreError> {
        self.calls.record("set_dry_run");
        let mut g = self.lock();
        let state = g
            .streams
            .entry((tenant.clone(), key.clone()))
            .or_insert_with(|| StreamState::new(tenant.clone(), account.clone(), key.clone()));
        state.dry_run = dry_run;
        Ok(state.clone())
    }

    async fn stream(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Option<StreamState>, StoreError> {
        self.calls.record("stream");
        Ok(self
            .lock()
            .streams
            .get(&(tenant.clone(), key.clone()))
            .cloned())
    }

    async fn take_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError> {
        self.calls.record("take_lease");
        let mut g = self.lock();
        let state = g
            .streams
            .entry((tenant.clone(), key.clone()))
            .or_insert_with(|| StreamState::new(tenant.clone(), account.clone(), key.clone()));
        if state.leased(now) {
            return Ok(None);
        }
        state.lease_owner = Some(owner.to_owned());
        state.lease_until = Some(until);
        Ok(Some(state.clone()))
    }

    async fn store_page(&self, page: PageWrite<'_>) -> Result<(), StoreError> {
        self.calls.record("store_page");
        let mut g = self.lock();
        let skey = (page.tenant_id.clone(), page.key.clone());
        if g.streams.get(&skey).and_then(|s| s.lease_owner.as_deref()) != Some(page.owner) {
            return Err(StoreError::Conflict);
        }
        for item in page.items {
            *g.writes
                .entry((page.key.clone(), item.platform_id.clone()))
                .or_default() += 1;
            g.items
                .entry(skey.clone())
                .or_default()
                .insert(item.platform_id.clone(), item.clone());
        }
        for r in page.reviews {
            g.reviews
                .insert((page.tenant_id.clone(), r.id.clone()), r.clone());
        }
        let state = g.streams.get_mut(&skey).ok_or(StoreError::Conflict)?;
        state.position = page.position.clone();
        state.counters += page.counters;
        Ok(())
    }

    async fn finish(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
        owner: &str,
        finish: &Finish,
    ) -> Result<(), StoreError> {
        self.calls.record("finish");
        let mut g = self.lock();
        let state = g
            .streams
            .get_mut(&(tenant.clone(), key.clone()))
            .filter(|s| s.lease_owner.as_deref() == Some(owner))
            .ok_or(StoreError::Conflict)?;
        state.lease_owner = None;
        state.lease_until = None;
        state.next_due = Some(finish.next_due);
        state.deferred_until = finish.deferred_until;
        state.counters += finish.counters;
        Ok(())
    }

    async fn count_skip(&self, tenant: &TenantId, key: &StreamKey) -> Result<(), StoreError> {
        self.calls.record("count_skip");
        if let Some(s) = self.lock().streams.get_mut(&(tenant.clone(), key.clone())) {
            s.counters.skipped += 1;
        }
        Ok(())
    }

    async fn items(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Vec<IngestedItem>, StoreError> {
        self.calls.record("items");
        Ok(self
            .lock()
            .items
            .get(&(tenant.clone(), key.clone()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn review_items(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<ReviewItem>, Option<String>), StoreError> {
        self.calls.record("review_items");
        let g = self.lock();
        let mut page: Vec<ReviewItem> = g
            .reviews
            .iter()
            .filter(|((t, id), _)| t == tenant && cursor.is_none_or(|c| id.as_str() > c))
            .map(|(_, r)| r.clone())
            .take(limit + 1)
            .collect();
        let next = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|r| r.id.clone())
        } else {
            None
        };
        Ok((page, next))
    }
}

/// The DynamoDB adapter's condition: no live lease, the schedule as `seen` had it.
#[async_trait]
impl crate::resets::StreamRetries for MemoryIngestStore {
    async fn retry_stream(
        &self,
        seen: &StreamState,
        now: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError> {
        self.calls.record("retry_stream");
        let mut g = self.lock();
        let Some(state) = g
            .streams
            .get_mut(&(seen.tenant_id.clone(), seen.key.clone()))
        else {
            return Ok(None);
        };
        let unchanged = state.next_due == seen.next_due
            && state.deferred_until == seen.deferred_until
            && !state.leased(now);
        if !unchanged {
            return Ok(None);
        }
        state.next_due = Some(now);
        state.deferred_until = None;
        Ok(Some(state.clone()))
    }
}

/// Collects sent jobs.
#[derive(Debug, Default)]
pub struct MemoryIngestQueue {
    pub sent: Mutex<Vec<IngestJob>>,
}

#[async_trait]
impl IngestQueue for MemoryIngestQueue {
    async fn send(&self, jobs: &[IngestJob]) -> Result<Vec<Result<(), String>>, StoreError> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(jobs.iter().cloned());
        Ok(jobs.iter().map(|_| Ok(())).collect())
    }
}

/// An X-like user timeline in memory: items with numeric ids (newer = larger), served
/// newest first with `since_id`/`pagination_token` semantics and the 3,200 newest only.
#[derive(Debug, Default)]
pub struct ScriptedTimeline {
    items: Mutex<Vec<(u64, serde_json::Value)>>,
    /// Fetches that answer 429 (by the number of the fetch, from 0), with the wait.
    throttle: Mutex<BTreeMap<usize, std::time::Duration>>,
    fetches: std::sync::atomic::AtomicUsize,
}

impl ScriptedTimeline {
    /// Appends an item (ids must grow).
    pub fn push(&self, id: u64, raw: serde_json::Value) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, raw));
    }

    pub fn throttle_fetch(&self, n: usize, wait: std::time::Duration) {
        self.throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, wait);
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl TimelineSource for ScriptedTimeline {
    async fn fetch(
        &self,
        _account: &Account,
        _kind: StreamKind,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let n = self
            .fetches
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(wait) = self
            .throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&n)
        {
            return Err(PlatformError::RateLimited {
                message: "429".into(),
                code: Some("88".into()),
                retry_after: Some(*wait),
            });
        }
        let parse = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<u64>().ok());
        let (since, cursor) = (parse(&position.since), parse(&position.cursor));
        let items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let newest_first: Vec<&(u64, serde_json::Value)> = items.iter().rev().take(3_200).collect();
        let mut eligible = newest_first
            .into_iter()
            .filter(|(id, _)| since.is_none_or(|s| *id > s) && cursor.is_none_or(|c| *id <= c));
        let page: Vec<&(u64, serde_json::Value)> =
            eligible.by_ref().take(page_size as usize).collect();
        let next = eligible.next().map(|(id, _)| id.to_string());
        Ok(Page {
            newest: page.first().map(|(id, _)| id.to_string()),
            items: page
                .into_iter()
                .map(|(id, raw)| RawItem {
                    platform_id: Some(id.to_string()),
                    raw: raw.clone(),
                })
                .collect(),
            next,
            rate: Default::default(),
        })
    }
}
