//! The data behind an embeddable dashboard: what a tenant's posts did, counted from its own
//! posts. It reads through the post store only, and is shaped for charts (ordered series of
//! label and value), never for a particular page.

use crate::StoreError;
use crate::analytics::{self, GroupBy, SnapshotStore};
use crate::ids::TenantId;
use crate::model::{Platform, Post, VariantStatus};
use crate::ports::PostStore;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// Posts read for one dashboard, newest first: a bound on the work one embed request does.
pub const MAX_POSTS: usize = 1000;
const PAGE: usize = 100;
/// The published-per-day series covers this many days, today included.
pub const DAYS: i64 = 14;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    pub label: String,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Series {
    pub id: &'static str,
    pub title: &'static str,
    pub points: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DashboardData {
    pub tenant_id: String,
    pub dashboard: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Posts read (at most [`MAX_POSTS`], newest first).
    pub posts: u64,
    /// Variants published on a platform (and not removed there since).
    pub published: u64,
    pub series: Vec<Series>,
}

/// The "overview" dashboard of a tenant at `now`; with the snapshot store, also the
/// engagement of the variants published in the last 30 days (each at its latest snapshot).
pub async fn overview(
    posts: &dyn PostStore,
    snapshots: Option<&dyn SnapshotStore>,
    tenant: &TenantId,
    now: OffsetDateTime,
) -> Result<DashboardData, StoreError> {
    let mut all: Vec<Post> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = posts
            .list_posts(tenant, cursor.as_deref(), PAGE.min(MAX_POSTS - all.len()))
            .await?;
        all.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() || all.len() >= MAX_POSTS {
            break;
        }
    }
    let mut data = summarize(tenant, &all, now);
    if let Some(store) = snapshots {
        let taken = store
            .snapshots(tenant, now - Duration::days(30), now + Duration::seconds(1))
            .await?;
        let totals = analytics::summarize(&taken, GroupBy::Platform);
        data.series.push(Series {
            id: "engagement_by_platform",
            title: "Engagement by platform (likes, comments, shares; last 30 days)",
            points: Platform::ALL
                .iter()
                .map(|p| Point {
                    label: p.as_str().to_owned(),
                    value: totals
                        .iter()
                        .find(|t| t.key == p.as_str())
                        .map_or(0, |t| t.likes + t.comments + t.shares),
                })
                .collect(),
        });
    }
    Ok(data)
}

fn summarize(tenant: &TenantId, posts: &[Post], now: OffsetDateTime) -> DashboardData {
    let statuses = [
        VariantStatus::Published,
        VariantStatus::Pending,
        VariantStatus::Failed,
    ];
    let mut by_platform = [0u64; 3];
    let mut by_status = [0u64; 3];
    let today = now.date();
    let mut by_day = vec![0u64; DAYS as usize];
    let mut published = 0;
    for post in posts {
        for v in post.variants.values() {
            if let Some(i) = statuses.iter().position(|s| *s == v.status) {
                by_status[i] += 1;
            }
            if v.status != VariantStatus::Published || v.removed_at.is_some() {
                continue;
            }
            published += 1;
            if let Some(i) = Platform::ALL.iter().position(|p| *p == v.platform) {
                by_platform[i] += 1;
            }
            if let Some(at) = v.published_at {
                let age = (today - at.date()).whole_days();
                if (0..DAYS).contains(&age) {
                    by_day[(DAYS - 1 - age) as usize] += 1;
                }
            }
        }
    }
    let points = |labels: Vec<String>, values: &[u64]| {
        labels
            .into_iter()
            .zip(values)
            .map(|(label, value)| Point {
                label,
                value: *value,
            })
            .collect()
    };
    let day_labels = (0..DAYS)
        .map(|i| {
            let d = today - Duration::days(DAYS - 1 - i);
            format!("{:02}-{:02}", u8::from(d.month()), d.day())
        })
        .collect();
    DashboardData {
        tenant_id: tenant.0.clone(),
        dashboard: "overview".into(),
        generated_at: now,
        posts: posts.len() as u64,
        published,
        series: vec![
            Series {
                id: "published_by_platform",
                title: "Published posts by platform",
                points: points(
                    Platform::ALL
                        .iter()
                        .map(|p| p.as_str().to_owned())
                        .collect(),
                    &by_platform,
                ),
            },
            Series {
                id: "variants_by_status",
                title: "Variants by outcome",
                points: points(
                    statuses.iter().map(|s| s.as_str().to_owned()).collect(),
                    &by_status,
                ),
            },
            Series {
                id: "published_by_day",
                title: "Published per day (last 14 days)",
                points: points(day_labels, &by_day),
            },
        ],
    }
}
