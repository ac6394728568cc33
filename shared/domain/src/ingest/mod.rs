//! Ingestion: reading connected accounts' timelines (X user timeline, Facebook Page posts,
//! LinkedIn organisation posts) and Facebook Page insights into Herald, one *stream* per
//! account and kind ([`StreamKey`]).
//!
//! - [`poller`]: on its schedule, one job per due stream to the ingest queue (a slow stream
//!   never starves the others); streams that are leased, deferred by a rate limit or not yet
//!   due are skipped.
//! - [`runner`]: one job: take the stream's lease, page from its checkpoint, validate, store
//!   each page's items and advance the checkpoint together, stop when done, throttled, or
//!   before the invocation's deadline, release the lease.
//! - [`validation`]: every item against its platform's schema; an invalid one becomes a
//!   review item with the reason, never dropped, never stopping the stream.
//!
//! The checkpoint ([`Position`]) advances only with the items it covers, and items are
//! keyed by platform id, so a crash anywhere resumes without a gap and writes no duplicate.

pub mod poller;
pub mod runner;
pub mod validation;

#[cfg(feature = "memory")]
pub mod memory;

use crate::StoreError;
use crate::ids::{AccountId, TenantId};
use crate::model::{Account, Platform};
use crate::publishing::platform::{PlatformError, RateSignal};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// What a stream reads from its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// The account's posts (X user timeline, Facebook Page posts, LinkedIn organisation posts).
    Posts,
    /// A Facebook Page's daily insights (impressions, engagements), one item per metric and day.
    Insights,
}

/// `x:<user>`, `fb:<page>`, `fb-insights:<page>`, `li:<organisation>`, `md:<account>`, `bs:<did>`, `ig:<user>`: the streams of a
/// connected account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamKey(pub String);

const PREFIXES: [(Platform, StreamKind, &str); 7] = [
    (Platform::X, StreamKind::Posts, "x"),
    (Platform::Facebook, StreamKind::Posts, "fb"),
    (Platform::Facebook, StreamKind::Insights, "fb-insights"),
    (Platform::Linkedin, StreamKind::Posts, "li"),
    (Platform::Mastodon, StreamKind::Posts, "md"),
    (Platform::Bluesky, StreamKind::Posts, "bs"),
    (Platform::Instagram, StreamKind::Posts, "ig"),
];

impl StreamKey {
    /// The account's posts stream (every platform has one).
    pub fn for_account(platform: Platform, external_id: &str) -> Self {
        Self::of(platform, StreamKind::Posts, external_id)
            .unwrap_or_else(|| unreachable!("every platform has a posts stream"))
    }

    /// The stream of this kind, when the platform has one.
    pub fn of(platform: Platform, kind: StreamKind, external_id: &str) -> Option<Self> {
        PREFIXES
            .iter()
            .find(|(p, k, _)| *p == platform && *k == kind)
            .map(|(_, _, prefix)| Self(format!("{prefix}:{external_id}")))
    }

    /// Every stream of a connected account.
    pub fn all_for(platform: Platform, external_id: &str) -> Vec<Self> {
        PREFIXES
            .iter()
            .filter(|(p, _, _)| *p == platform)
            .map(|(_, _, prefix)| Self(format!("{prefix}:{external_id}")))
            .collect()
    }

    /// The platform, the stream's kind and the account's external id, when the key is well
    /// formed.
    pub fn parse(&self) -> Option<(Platform, StreamKind, &str)> {
        let (prefix, id) = self.0.split_once(':')?;
        let (platform, kind, _) = PREFIXES.iter().find(|(_, _, p)| *p == prefix)?;
        (!id.is_empty()).then_some((*platform, *kind, id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One ingest queue message: run this stream once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestJob {
    pub tenant_id: TenantId,
    pub account_id: AccountId,
    pub stream: StreamKey,
    /// Fetch and validate, report what would be written, write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// The poll run that sent the job (`poll-<uuid>`), on every log line of its run; absent
    /// on a job an operator invoked by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// Where a stream's next page starts: the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The newest item of the last finished run: a run asks only for newer ones (X
    /// `since_id`; Facebook and LinkedIn stop paging when they reach it).
    pub since: Option<String>,
    /// Mid-run: the page to continue with (X `pagination_token`, Facebook's `after`
    /// cursor, LinkedIn's `start`, an insights window's start).
    pub cursor: Option<String>,
    /// Mid-run: the newest item this run saw; it becomes `since` when the run finishes.
    pub run_newest: Option<String>,
}

impl Position {
    /// The checkpoint once `page` is stored.
    pub fn after(&self, page: &Page) -> Position {
        let run_newest = self.run_newest.clone().or_else(|| page.newest.clone());
        match &page.next {
            Some(next) => Position {
                since: self.since.clone(),
                cursor: Some(next.clone()),
                run_newest,
            },
            None => Position {
                since: run_newest.or_else(|| self.since.clone()),
                cursor: None,
                run_newest: None,
            },
        }
    }
}

/// Counted per stream (on its state) and per run; the poller adds them up for all streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Valid items stored (in a dry run: that would be stored).
    pub processed: u64,
    /// Items quarantined as review items, and pages that could not be fetched or stored.
    pub failed: u64,
    /// Runs stopped by the platform's rate limit.
    pub rate_limited: u64,
    /// Jobs that found their stream leased, deferred, disabled or gone.
    pub skipped: u64,
}

impl std::ops::AddAssign for Counters {
    fn add_assign(&mut self, o: Self) {
        self.processed += o.processed;
        self.failed += o.failed;
        self.rate_limited += o.rate_limited;
        self.skipped += o.skipped;
    }
}

/// What is kept per stream (`TENANT#t`/`STREAM#<key>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    pub tenant_id: TenantId,
    pub account_id: AccountId,
    pub key: StreamKey,
    pub position: Position,
    pub lease_owner: Option<String>,
    pub lease_until: Option<OffsetDateTime>,
    /// The platform's rate limit stopped the stream until then.
    pub deferred_until: Option<OffsetDateTime>,
    /// When the poller next sends it a job.
    pub next_due: Option<OffsetDateTime>,
    /// An operator's per-stream dry run: its jobs write nothing.
    pub dry_run: bool,
    pub counters: Counters,
}

impl StreamState {
    pub fn new(tenant_id: TenantId, account_id: AccountId, key: StreamKey) -> Self {
        Self {
            tenant_id,
            account_id,
            key,
            position: Position::default(),
            lease_owner: None,
            lease_until: None,
            deferred_until: None,
            next_due: None,
            dry_run: false,
            counters: Counters::default(),
        }
    }

    pub fn leased(&self, now: OffsetDateTime) -> bool {
        self.lease_owner.is_some() && self.lease_until.is_some_and(|u| u > now)
    }
}

/// One item as the platform sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawItem {
    /// The platform's id, when the item has a readable one.
    pub platform_id: Option<String>,
    pub raw: serde_json::Value,
}

/// One page of a timeline, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<RawItem>,
    /// The next (older) page; `None`: the run is complete.
    pub next: Option<String>,
    /// The newest item of the page (X `meta.newest_id`), kept from a run's first page.
    pub newest: Option<String>,
    /// The platform's budget headers on this answer.
    pub rate: RateSignal,
}

/// A stored item, keyed by (stream, platform id): writing it again changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestedItem {
    pub platform_id: String,
    /// A post's text; empty for an insight.
    pub text: String,
    /// A post's creation; an insight's end of period.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// An insights stream's measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insight: Option<Insight>,
}

/// One metric's value over one period (Facebook Page insights: `page_impressions`, `day`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insight {
    pub metric: String,
    pub period: String,
    pub value: u64,
}

/// An item that failed validation, kept for a person to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// `<stream>#<platform id>`, or `<stream>#sha256:<hex of the raw item>` without an id.
    pub id: String,
    pub tenant_id: TenantId,
    pub account_id: AccountId,
    pub stream: StreamKey,
    pub platform_id: Option<String>,
    pub reason: String,
    /// The item as received (JSON text).
    pub raw: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// A connected account the poller may make a stream of, with the stream's state if any.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub tenant_id: TenantId,
    pub account_id: AccountId,
    pub key: StreamKey,
    pub state: Option<StreamState>,
}

/// How a leased run ends, written with the lease's release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub next_due: OffsetDateTime,
    pub deferred_until: Option<OffsetDateTime>,
    pub counters: Counters,
}

/// One stored page: the items, the review items and the checkpoint that covers them.
#[derive(Debug, Clone, PartialEq)]
pub struct PageWrite<'a> {
    pub tenant_id: &'a TenantId,
    pub key: &'a StreamKey,
    pub owner: &'a str,
    pub items: &'a [IngestedItem],
    pub reviews: &'a [ReviewItem],
    pub position: &'a Position,
    pub counters: Counters,
}

#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Every connected account that has a stream, with its state (the poller's view).
    async fn candidates(&self) -> Result<Vec<Candidate>, StoreError>;

    /// A tenant's streams (every stream of its active accounts), with their states if any.
    async fn streams(&self, tenant: &TenantId) -> Result<Vec<Candidate>, StoreError>;

    /// An operator's per-stream dry run: while set, the stream's jobs write nothing. Creates
    /// the stream's state when it has not run yet.
    async fn set_dry_run(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        dry_run: bool,
    ) -> Result<StreamState, StoreError>;

    async fn stream(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Option<StreamState>, StoreError>;

    /// Takes the stream's lease unless another live one holds it (creating the state on
    /// first use); `None`: leased elsewhere.
    async fn take_lease(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        key: &StreamKey,
        owner: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Option<StreamState>, StoreError>;

    /// Stores the page's items and review items (idempotent: keyed by platform id) and
    /// moves the checkpoint, the latter only while `owner` holds the lease
    /// (`StoreError::Conflict` otherwise). Items may be written before the checkpoint, never after.
    async fn store_page(&self, page: PageWrite<'_>) -> Result<(), StoreError>;

    /// Releases the lease (only `owner`'s) and records when the stream is next due.
    async fn finish(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
        owner: &str,
        finish: &Finish,
    ) -> Result<(), StoreError>;

    /// Counts a skipped job on the stream (no lease needed).
    async fn count_skip(&self, tenant: &TenantId, key: &StreamKey) -> Result<(), StoreError>;

    /// The stream's stored items, by platform id.
    async fn items(
        &self,
        tenant: &TenantId,
        key: &StreamKey,
    ) -> Result<Vec<IngestedItem>, StoreError>;

    /// A tenant's review items, by id; `cursor` is the last id of the previous page.
    async fn review_items(
        &self,
        tenant: &TenantId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<ReviewItem>, Option<String>), StoreError>;
}

/// An operator turns a tenant's stream's dry run on or off: the stream as it was and as it
/// is now, or `None` when the tenant has no such stream (the caller audits the change).
pub async fn set_stream_dry_run(
    store: &dyn IngestStore,
    tenant: &TenantId,
    key: &StreamKey,
    dry_run: bool,
) -> Result<Option<(Candidate, Candidate)>, StoreError> {
    let Some(before) = store
        .streams(tenant)
        .await?
        .into_iter()
        .find(|c| &c.key == key)
    else {
        return Ok(None);
    };
    let state = store
        .set_dry_run(tenant, &before.account_id, key, dry_run)
        .await?;
    let after = Candidate {
        state: Some(state),
        ..before.clone()
    };
    Ok(Some((before, after)))
}

/// Reads one page of one of an account's streams from `position`.
#[async_trait]
pub trait TimelineSource: Send + Sync {
    async fn fetch(
        &self,
        account: &Account,
        kind: StreamKind,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError>;
}

/// The ingest queue.
#[async_trait]
pub trait IngestQueue: Send + Sync {
    /// Sends the jobs (batched); one result per job.
    async fn send(&self, jobs: &[IngestJob]) -> Result<Vec<Result<(), String>>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_name_the_platform_and_account() {
        let k = StreamKey::for_account(Platform::Facebook, "123");
        assert_eq!(
            StreamKey::for_account(Platform::Instagram, "1").as_str(),
            "ig:1"
        );
        assert_eq!(k.as_str(), "fb:123");
        assert_eq!(
            k.parse(),
            Some((Platform::Facebook, StreamKind::Posts, "123"))
        );
        let streams = StreamKey::all_for(Platform::Facebook, "123");
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[1].as_str(), "fb-insights:123");
        assert_eq!(
            streams[1].parse(),
            Some((Platform::Facebook, StreamKind::Insights, "123"))
        );
        assert_eq!(StreamKey::all_for(Platform::X, "u").len(), 1);
        assert_eq!(
            StreamKey::of(Platform::Linkedin, StreamKind::Insights, "o"),
            None
        );
        assert_eq!(StreamKey("x:".into()).parse(), None);
        assert_eq!(StreamKey("mastodon:1".into()).parse(), None);
    }

    #[test]
    fn the_checkpoint_becomes_since_when_a_run_completes() {
        let start = Position {
            since: Some("10".into()),
            ..Default::default()
        };
        let page = |next: Option<&str>, newest: Option<&str>| Page {
            items: vec![],
            next: next.map(Into::into),
            newest: newest.map(Into::into),
            rate: RateSignal::default(),
        };
        let mid = start.after(&page(Some("15"), Some("20")));
        assert_eq!(mid.cursor.as_deref(), Some("15"));
        assert_eq!(mid.run_newest.as_deref(), Some("20"));
        assert_eq!(mid.since.as_deref(), Some("10"));
        // A later page's newest is not the run's.
        let mid2 = mid.after(&page(Some("12"), Some("15")));
        assert_eq!(mid2.run_newest.as_deref(), Some("20"));
        let done = mid2.after(&page(None, Some("12")));
        assert_eq!(
            done,
            Position {
                since: Some("20".into()),
                cursor: None,
                run_newest: None
            }
        );
        // An empty run keeps `since`.
        assert_eq!(start.after(&page(None, None)), start);
    }
}
