//! Engagement snapshots and their summary. Every published variant is snapshotted at three
//! milestones after it was published (1 h, 24 h, 7 days by default): the platform's counts
//! (likes, comments, shares, impressions where the platform gives them) are fetched with the
//! account's token and kept as an immutable record, once per variant and milestone.
//!
//! The schedule is a sparse set of "snapshot due" entries. The publisher writes one with each
//! published outcome (in the outcome's transaction), due at once and naming no milestone yet;
//! the snapshot step gives it the first milestone's time, and each snapshot taken moves it to
//! the next milestone in the same transaction that stores the snapshot, until the last one
//! removes it. Nothing here reads the environment or talks to AWS.
//!
//! The folder also holds `dashboard` (the data behind an embeddable dashboard) and `embed`
//! (the signed tokens that open it to a tenant's site).

pub mod dashboard;
pub mod embed;

use crate::StoreError;
use crate::clock::Clock;
use crate::ids::{AccountId, PostId, TenantId};
use crate::model::{AccountStatus, Platform};
use crate::ports::AccountStore;
use crate::publishing::platform::PlatformError;
use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Milestone {
    Hour,
    Day,
    Week,
}

impl Milestone {
    pub const ALL: [Milestone; 3] = [Milestone::Hour, Milestone::Day, Milestone::Week];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "24h",
            Self::Week => "7d",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    fn index(self) -> usize {
        match self {
            Self::Hour => 0,
            Self::Day => 1,
            Self::Week => 2,
        }
    }

    pub fn next(self) -> Option<Self> {
        Self::ALL.get(self.index() + 1).copied()
    }
}

/// How long after publishing each milestone falls (configurable so a local stack can run
/// them in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MilestoneOffsets(pub [Duration; 3]);

impl Default for MilestoneOffsets {
    fn default() -> Self {
        Self([Duration::hours(1), Duration::hours(24), Duration::days(7)])
    }
}

impl MilestoneOffsets {
    pub fn due_at(&self, published_at: OffsetDateTime, m: Milestone) -> OffsetDateTime {
        published_at + self.0[m.index()]
    }
}

/// A platform's engagement counts for one post; `None` where the platform does not give one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Engagement {
    pub likes: Option<u64>,
    pub comments: Option<u64>,
    pub shares: Option<u64>,
    pub impressions: Option<u64>,
}

/// One published variant's place in the snapshot schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotDue {
    pub tenant_id: TenantId,
    pub post_id: PostId,
    pub account_id: AccountId,
    pub platform_post_id: String,
    pub published_at: OffsetDateTime,
    /// `None`: just published, no milestone given yet.
    pub milestone: Option<Milestone>,
    pub due_at: OffsetDateTime,
}

/// An immutable record of a variant's engagement at a milestone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub tenant_id: TenantId,
    pub post_id: PostId,
    pub account_id: AccountId,
    pub platform: Platform,
    pub platform_post_id: String,
    pub published_at: OffsetDateTime,
    pub milestone: Milestone,
    pub taken_at: OffsetDateTime,
    pub engagement: Engagement,
}

#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// Entries due at or before `now`, oldest first.
    async fn due_snapshots(
        &self,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<SnapshotDue>, StoreError>;
    /// Replaces `entry` by `next` (or removes it when `None`), conditional on `entry` still
    /// being there; `Conflict` when another run moved it first.
    async fn move_due(
        &self,
        entry: &SnapshotDue,
        next: Option<&SnapshotDue>,
    ) -> Result<(), StoreError>;
    /// Stores the snapshot (once per variant and milestone) and moves `entry` to `next`, in
    /// one transaction. `false` (nothing written) when the snapshot already exists or the
    /// entry was already moved.
    async fn record_snapshot(
        &self,
        snapshot: &Snapshot,
        entry: &SnapshotDue,
        next: Option<&SnapshotDue>,
    ) -> Result<bool, StoreError>;
    /// A tenant's snapshots of variants published in `[from, to)`.
    async fn snapshots(
        &self,
        tenant: &TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<Snapshot>, StoreError>;
}

/// Reads a published post's engagement from its platform.
#[async_trait]
pub trait EngagementClient: Send + Sync {
    async fn engagement(
        &self,
        platform: Platform,
        external_id: &str,
        access_token: &SecretString,
        platform_post_id: &str,
    ) -> Result<Engagement, PlatformError>;
}

/// The name this function's heartbeat is stored under.
pub const HEARTBEAT: &str = "analytics";

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotRun {
    pub scheduled: u32,
    pub taken: u32,
    pub already_taken: u32,
    /// The platform or the store failed; the entry stays due for the next run.
    pub failed: u32,
    /// The account is gone or needs re-authorization: the variant's schedule ends.
    pub dropped: u32,
}

#[derive(Clone)]
pub struct SnapshotTaker {
    pub store: Arc<dyn SnapshotStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub client: Arc<dyn EngagementClient>,
    pub clock: Arc<dyn Clock>,
    pub offsets: MilestoneOffsets,
    /// Entries handled per run at most.
    pub batch: usize,
}

crate::debug_fields!(SnapshotTaker, offsets);

impl SnapshotTaker {
    fn at(&self, entry: &SnapshotDue, m: Milestone) -> SnapshotDue {
        SnapshotDue {
            milestone: Some(m),
            due_at: self.offsets.due_at(entry.published_at, m),
            ..entry.clone()
        }
    }

    /// Takes every snapshot due now. An entry whose next milestone is also already due is
    /// handled again in the same run, so a late run catches up.
    pub async fn run(&self) -> Result<SnapshotRun, StoreError> {
        let mut out = SnapshotRun::default();
        let mut budget = self.batch;
        // An entry that failed stays due: it is not tried again until the next run.
        let mut seen = std::collections::HashSet::new();
        while budget > 0 {
            let now = self.clock.now();
            let due = self.store.due_snapshots(now, self.batch).await?;
            let fresh: Vec<SnapshotDue> = due
                .into_iter()
                .filter(|e| seen.insert((e.post_id.clone(), e.account_id.clone(), e.milestone)))
                .take(budget)
                .collect();
            if fresh.is_empty() {
                break;
            }
            budget = budget.saturating_sub(fresh.len());
            for entry in fresh {
                self.handle(&entry, &mut out).await;
            }
        }
        Ok(out)
    }

    async fn handle(&self, entry: &SnapshotDue, out: &mut SnapshotRun) {
        let Some(milestone) = entry.milestone else {
            let first = self.at(entry, Milestone::Hour);
            match self.store.move_due(entry, Some(&first)).await {
                Ok(()) => out.scheduled += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "a snapshot could not be scheduled");
                    out.failed += 1;
                }
            }
            return;
        };
        let next = milestone.next().map(|m| self.at(entry, m));
        let account = match self
            .accounts
            .get_account(&entry.tenant_id, &entry.account_id)
            .await
        {
            Ok(Some(a)) if a.status == AccountStatus::Active => a,
            Ok(_) => {
                // Disconnected or needing re-authorization: nothing can be read any more.
                if self.store.move_due(entry, None).await.is_ok() {
                    out.dropped += 1;
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the account of a snapshot could not be read");
                out.failed += 1;
                return;
            }
        };
        let engagement = match self
            .client
            .engagement(
                account.platform,
                &account.external_id,
                &account.access_token,
                &entry.platform_post_id,
            )
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(
                    platform = account.platform.as_str(),
                    post_id = %entry.post_id,
                    error = e.message(),
                    "engagement could not be read; the snapshot stays due"
                );
                out.failed += 1;
                return;
            }
        };
        let snapshot = Snapshot {
            tenant_id: entry.tenant_id.clone(),
            post_id: entry.post_id.clone(),
            account_id: entry.account_id.clone(),
            platform: account.platform,
            platform_post_id: entry.platform_post_id.clone(),
            published_at: entry.published_at,
            milestone,
            taken_at: self.clock.now(),
            engagement,
        };
        match self
            .store
            .record_snapshot(&snapshot, entry, next.as_ref())
            .await
        {
            Ok(true) => out.taken += 1,
            Ok(false) => out.already_taken += 1,
            Err(e) => {
                tracing::warn!(error = %e, "a snapshot could not be stored");
                out.failed += 1;
            }
        }
    }
}

// ---------------------------------------------------------------- the summary

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Post,
    Account,
    Platform,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "post" => Some(Self::Post),
            "account" => Some(Self::Account),
            "platform" => Some(Self::Platform),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// The post, account or platform.
    pub key: String,
    /// Variants counted (each at its latest snapshot).
    pub variants: u64,
    pub likes: u64,
    pub comments: u64,
    pub shares: u64,
    pub impressions: u64,
}

/// Sums each variant's latest snapshot by `group`, largest engagement first.
pub fn summarize(snapshots: &[Snapshot], group: GroupBy) -> Vec<Totals> {
    use std::collections::BTreeMap;
    let mut latest: BTreeMap<(&str, &str), &Snapshot> = BTreeMap::new();
    for s in snapshots {
        let k = (s.post_id.as_str(), s.account_id.as_str());
        match latest.get(&k) {
            Some(prev) if prev.milestone >= s.milestone => {}
            _ => {
                latest.insert(k, s);
            }
        }
    }
    let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
    for s in latest.values() {
        let key = match group {
            GroupBy::Post => s.post_id.0.clone(),
            GroupBy::Account => s.account_id.0.clone(),
            GroupBy::Platform => s.platform.as_str().to_owned(),
        };
        let t = groups.entry(key.clone()).or_insert_with(|| Totals {
            key,
            variants: 0,
            likes: 0,
            comments: 0,
            shares: 0,
            impressions: 0,
        });
        let e = s.engagement;
        t.variants += 1;
        t.likes += e.likes.unwrap_or(0);
        t.comments += e.comments.unwrap_or(0);
        t.shares += e.shares.unwrap_or(0);
        t.impressions += e.impressions.unwrap_or(0);
    }
    let mut out: Vec<Totals> = groups.into_values().collect();
    out.sort_by(|a, b| {
        (b.likes + b.comments + b.shares)
            .cmp(&(a.likes + a.comments + a.shares))
            .then_with(|| a.key.cmp(&b.key))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;
    use crate::memory::MemoryStore;
    use crate::model::Account;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    /// The store's rules in memory: snapshots once per (variant, milestone), entries moved
    /// only while they are there.
    #[derive(Default)]
    struct Snapshots {
        due: Mutex<BTreeMap<(OffsetDateTime, String), SnapshotDue>>,
        taken: Mutex<Vec<Snapshot>>,
    }

    fn k(e: &SnapshotDue) -> (OffsetDateTime, String) {
        (e.due_at, format!("{}#{}", e.post_id, e.account_id))
    }

    #[async_trait]
    impl SnapshotStore for Snapshots {
        async fn due_snapshots(
            &self,
            now: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<SnapshotDue>, StoreError> {
            Ok(self
                .due
                .lock()
                .unwrap()
                .values()
                .filter(|e| e.due_at <= now)
                .take(limit)
                .cloned()
                .collect())
        }
        async fn move_due(
            &self,
            entry: &SnapshotDue,
            next: Option<&SnapshotDue>,
        ) -> Result<(), StoreError> {
            let mut due = self.due.lock().unwrap();
            due.remove(&k(entry)).ok_or(StoreError::Conflict)?;
            if let Some(n) = next {
                due.insert(k(n), n.clone());
            }
            Ok(())
        }
        async fn record_snapshot(
            &self,
            snapshot: &Snapshot,
            entry: &SnapshotDue,
            next: Option<&SnapshotDue>,
        ) -> Result<bool, StoreError> {
            let exists = self.taken.lock().unwrap().iter().any(|s| {
                s.post_id == snapshot.post_id
                    && s.account_id == snapshot.account_id
                    && s.milestone == snapshot.milestone
            });
            if exists || self.move_due(entry, next).await.is_err() {
                return Ok(false);
            }
            self.taken.lock().unwrap().push(snapshot.clone());
            Ok(true)
        }
        async fn snapshots(
            &self,
            _: &TenantId,
            _: OffsetDateTime,
            _: OffsetDateTime,
        ) -> Result<Vec<Snapshot>, StoreError> {
            Ok(self.taken.lock().unwrap().clone())
        }
    }

    /// Likes grow by one per read; the next `fail` reads fail.
    #[derive(Default)]
    struct Platform {
        reads: Mutex<u64>,
        fail: Mutex<u32>,
    }

    #[async_trait]
    impl EngagementClient for Platform {
        async fn engagement(
            &self,
            _: crate::model::Platform,
            _: &str,
            _: &SecretString,
            _: &str,
        ) -> Result<Engagement, PlatformError> {
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(PlatformError::Transient {
                    message: "503".into(),
                    code: None,
                    retry_after: None,
                });
            }
            let mut reads = self.reads.lock().unwrap();
            *reads += 1;
            Ok(Engagement {
                likes: Some(*reads),
                comments: Some(1),
                shares: None,
                impressions: None,
            })
        }
    }

    async fn setup() -> (
        Arc<Snapshots>,
        Arc<Platform>,
        Arc<FakeClock>,
        SnapshotTaker,
        Arc<MemoryStore>,
    ) {
        let accounts = Arc::new(MemoryStore::new());
        let account = Account {
            id: AccountId("acc".into()),
            tenant_id: TenantId("t".into()),
            platform: crate::model::Platform::X,
            external_id: "u1".into(),
            display_name: None,
            access_token: SecretString::from("tok"),
            refresh_token: None,
            token_expires_at: None,
            status: AccountStatus::Active,
            created_at: T0,
            updated_at: T0,
            breaker: Default::default(),
        };
        accounts.upsert_account(&account).await.unwrap();
        let store = Arc::new(Snapshots::default());
        let entry = SnapshotDue {
            tenant_id: TenantId("t".into()),
            post_id: PostId("p".into()),
            account_id: AccountId("acc".into()),
            platform_post_id: "1".into(),
            published_at: T0,
            milestone: None,
            due_at: T0,
        };
        store.due.lock().unwrap().insert(k(&entry), entry);
        let platform = Arc::new(Platform::default());
        let clock = Arc::new(FakeClock::new(T0));
        let taker = SnapshotTaker {
            store: store.clone(),
            accounts: accounts.clone(),
            client: platform.clone(),
            clock: clock.clone(),
            offsets: MilestoneOffsets::default(),
            batch: 100,
        };
        (store, platform, clock, taker, accounts)
    }

    #[tokio::test]
    async fn each_milestone_is_taken_once_when_due_and_a_failed_read_stays_due() {
        let (store, platform, clock, taker, _) = setup().await;
        let run = taker.run().await.unwrap();
        assert_eq!(
            (run.scheduled, run.taken),
            (1, 0),
            "scheduled for the first hour"
        );
        clock.advance(Duration::minutes(59));
        assert_eq!(taker.run().await.unwrap().taken, 0, "not yet due");
        clock.advance(Duration::minutes(1));
        *platform.fail.lock().unwrap() = 1;
        assert_eq!(taker.run().await.unwrap().failed, 1);
        let run = taker.run().await.unwrap();
        assert_eq!(run.taken, 1, "taken on the next run");
        assert_eq!(taker.run().await.unwrap().taken, 0, "once");
        // Late by a week: the two remaining milestones in one run.
        clock.advance(Duration::days(8));
        assert_eq!(taker.run().await.unwrap().taken, 2);
        let taken = store.taken.lock().unwrap().clone();
        assert_eq!(
            taken.iter().map(|s| s.milestone).collect::<Vec<_>>(),
            Milestone::ALL
        );
        assert!(store.due.lock().unwrap().is_empty(), "the schedule ended");
        assert_eq!(taken[0].taken_at, T0 + Duration::hours(1));
    }

    #[tokio::test]
    async fn a_disconnected_account_ends_the_schedule() {
        let (store, _, clock, taker, accounts) = setup().await;
        taker.run().await.unwrap();
        accounts
            .delete_account(&TenantId("t".into()), &AccountId("acc".into()))
            .await
            .unwrap();
        clock.advance(Duration::hours(2));
        assert_eq!(taker.run().await.unwrap().dropped, 1);
        assert!(store.due.lock().unwrap().is_empty());
    }

    fn snap(
        post: &str,
        account: &str,
        platform: crate::model::Platform,
        m: Milestone,
        likes: u64,
    ) -> Snapshot {
        Snapshot {
            tenant_id: TenantId("t".into()),
            post_id: PostId(post.into()),
            account_id: AccountId(account.into()),
            platform,
            platform_post_id: "1".into(),
            published_at: T0,
            milestone: m,
            taken_at: T0,
            engagement: Engagement {
                likes: Some(likes),
                comments: None,
                shares: Some(1),
                impressions: None,
            },
        }
    }

    #[test]
    fn the_summary_counts_each_variants_latest_snapshot() {
        use crate::model::Platform::{Facebook, X};
        let all = [
            snap("p1", "a", X, Milestone::Hour, 1),
            snap("p1", "a", X, Milestone::Day, 5),
            snap("p1", "b", Facebook, Milestone::Hour, 2),
            snap("p2", "a", X, Milestone::Week, 10),
        ];
        let by_post = summarize(&all, GroupBy::Post);
        assert_eq!(
            by_post
                .iter()
                .map(|t| (t.key.as_str(), t.variants, t.likes, t.shares))
                .collect::<Vec<_>>(),
            [("p2", 1, 10, 1), ("p1", 2, 7, 2)]
        );
        let by_platform = summarize(&all, GroupBy::Platform);
        assert_eq!(by_platform[0].key, "x");
        assert_eq!(by_platform[0].likes, 15);
        assert_eq!(summarize(&all, GroupBy::Account).len(), 2);
        assert_eq!(GroupBy::parse("tenant"), None);
    }
}
