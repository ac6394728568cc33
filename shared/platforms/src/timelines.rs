//! Timeline reads for ingestion ([`TimelineSource`]): X user timeline (`since_id`,
//! `pagination_token`, `max_results`), Facebook Page posts and Instagram media (`after`
//! cursors), LinkedIn organisation posts (`start`/`count`). Every answer's budget headers come back with the
//! page, so the runner stops before the platform says 429.
//!
//! Facebook, Instagram and LinkedIn have no `since_id`: a run pages from the newest post and stops at
//! the newest one a previous run stored (`Position::since`).
//!
//! Facebook Page insights (`GET /{page}/insights`, daily `page_impressions` and
//! `page_post_engagements`) page forward in time instead: windows of whole days from the
//! checkpoint (a Unix time; a new stream starts four weeks back; each run reads the last
//! three days again, which Meta revises) up to the last complete day, one item per metric
//! and day.

use super::{
    HttpPlatforms, LINKEDIN_VERSION, facebook_error, instagram_error, linkedin_author,
    linkedin_error, rate_signal, x_error,
};
use async_trait::async_trait;
use herald_domain::ingest::{Page, Position, RawItem, StreamKind, TimelineSource};
use herald_domain::model::{Account, Platform};
use herald_domain::publishing::platform::PlatformError;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use time::{OffsetDateTime, Time};

const WHAT: &str = " to the timeline read";

/// The Page insights an insights stream reads, daily.
const INSIGHT_METRICS: &str = "page_impressions,page_post_engagements";
/// Where a new insights stream starts.
const INSIGHTS_BACKFILL: time::Duration = time::Duration::days(28);
/// Days per insights request (Graph allows up to 93 between `since` and `until`).
const INSIGHTS_WINDOW: time::Duration = time::Duration::days(7);
/// Meta publishes daily values late and revises them for a few days: each run reads these
/// last days again (items are keyed by metric and day, so a revised value overwrites its item).
const INSIGHTS_REVISION: time::Duration = time::Duration::days(3);

fn read_failed(e: &reqwest::Error) -> PlatformError {
    PlatformError::Transient {
        message: if e.is_timeout() {
            "the platform did not answer the timeline read in time".into()
        } else {
            "reading the timeline from the platform failed".into()
        },
        code: None,
        retry_after: None,
    }
}

/// How a platform's refusal reads as a [`PlatformError`] (`x_error`, `facebook_error`, ...).
type Classify = fn(reqwest::StatusCode, &reqwest::header::HeaderMap, &Value, &str) -> PlatformError;

/// Sends one timeline read with the account's token; its headers and JSON body when the
/// platform accepted it, its refusal through `classify` when not.
pub(crate) async fn read(
    request: reqwest::RequestBuilder,
    account: &Account,
    classify: Classify,
) -> Result<(reqwest::header::HeaderMap, Value), PlatformError> {
    let response = request
        .bearer_auth(account.access_token.expose_secret())
        .send()
        .await
        .map_err(|e| read_failed(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(|e| read_failed(&e))?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(classify(status, &headers, &body, WHAT));
    }
    Ok((headers, body))
}

pub(crate) fn raw_items(list: &Value) -> Result<Vec<RawItem>, PlatformError> {
    match list {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => Ok(items
            .iter()
            .map(|raw| RawItem {
                platform_id: raw["id"].as_str().map(str::to_owned),
                raw: raw.clone(),
            })
            .collect()),
        _ => Err(PlatformError::Transient {
            message: "the platform's timeline answer has no list of items".into(),
            code: None,
            retry_after: None,
        }),
    }
}

/// Keeps the items newer than `since` (newest first): the page ends there, and so does the run.
pub(crate) fn until_since(items: Vec<RawItem>, since: Option<&str>) -> (Vec<RawItem>, bool) {
    let Some(since) = since else {
        return (items, false);
    };
    match items
        .iter()
        .position(|i| i.platform_id.as_deref() == Some(since))
    {
        Some(at) => (items.into_iter().take(at).collect(), true),
        None => (items, false),
    }
}

impl HttpPlatforms {
    async fn x_timeline(
        &self,
        account: &Account,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let url = self
            .endpoints
            .x_url(&format!("/2/users/{}/tweets", account.external_id));
        let mut query = vec![
            ("max_results", page_size.clamp(5, 100).to_string()),
            ("tweet.fields", "created_at".to_owned()),
        ];
        if let Some(since) = &position.since {
            query.push(("since_id", since.clone()));
        }
        if let Some(cursor) = &position.cursor {
            query.push(("pagination_token", cursor.clone()));
        }
        let (headers, body) = read(self.http.get(url).query(&query), account, x_error).await?;
        Ok(Page {
            items: raw_items(&body["data"])?,
            next: body["meta"]["next_token"].as_str().map(str::to_owned),
            newest: body["meta"]["newest_id"].as_str().map(str::to_owned),
            rate: rate_signal(&headers),
        })
    }

    /// A Graph API listing (a Facebook Page's posts, an Instagram account's media): newest
    /// first, paged by `after` cursors, stopping at the newest item a previous run stored.
    async fn graph_timeline(
        &self,
        account: &Account,
        position: &Position,
        page_size: u32,
        (url, fields): (String, &str),
        classify: crate::answer::Classify,
    ) -> Result<Page, PlatformError> {
        let mut query = vec![
            ("limit", page_size.clamp(1, 100).to_string()),
            ("fields", fields.to_owned()),
        ];
        if let Some(cursor) = &position.cursor {
            query.push(("after", cursor.clone()));
        }
        let (headers, body) = read(self.http.get(url).query(&query), account, classify).await?;
        let all = raw_items(&body["data"])?;
        let newest = all.first().and_then(|i| i.platform_id.clone());
        let (items, reached) = until_since(all, position.since.as_deref());
        let next = if reached || body["paging"]["next"].is_null() {
            None
        } else {
            body["paging"]["cursors"]["after"]
                .as_str()
                .map(str::to_owned)
        };
        Ok(Page {
            items,
            next,
            newest,
            rate: rate_signal(&headers),
        })
    }

    async fn linkedin_timeline(
        &self,
        account: &Account,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let url = self.endpoints.linkedin_url("/rest/posts");
        let start: u64 = position
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let count = u64::from(page_size.clamp(1, 100));
        let (headers, body) = read(
            self.http
                .get(url)
                .header("LinkedIn-Version", LINKEDIN_VERSION)
                .header("X-Restli-Protocol-Version", "2.0.0")
                .query(&[
                    ("q", "author".to_owned()),
                    ("author", linkedin_author(&account.external_id)),
                    ("start", start.to_string()),
                    ("count", count.to_string()),
                ]),
            account,
            linkedin_error,
        )
        .await?;
        let all = raw_items(&body["elements"])?;
        let newest = all.first().and_then(|i| i.platform_id.clone());
        let fetched = all.len() as u64;
        let (items, reached) = until_since(all, position.since.as_deref());
        let total = body["paging"]["total"].as_u64();
        let more = total.map_or(fetched == count, |t| start + fetched < t);
        Ok(Page {
            items,
            next: (more && !reached && fetched > 0).then(|| (start + fetched).to_string()),
            newest,
            rate: rate_signal(&headers),
        })
    }

    async fn facebook_insights(
        &self,
        account: &Account,
        position: &Position,
    ) -> Result<Page, PlatformError> {
        let window = insights_window(position, OffsetDateTime::now_utc());
        let Some((since, until, last)) = window else {
            // Up to date: nothing to ask for until another day is complete.
            return Ok(Page {
                items: Vec::new(),
                next: None,
                newest: None,
                rate: Default::default(),
            });
        };
        let url = self
            .endpoints
            .facebook_url(&format!("/{}/insights", account.external_id));
        let (headers, body) = read(
            self.http.get(url).query(&[
                ("metric", INSIGHT_METRICS.to_owned()),
                ("period", "day".to_owned()),
                ("since", since.to_string()),
                ("until", until.to_string()),
            ]),
            account,
            facebook_error,
        )
        .await?;
        let end = until.to_string();
        Ok(Page {
            items: insight_items(&body["data"])?,
            // Mid-run the window's end is the cursor; the last window's becomes `since`.
            next: (!last).then(|| end.clone()),
            newest: last.then_some(end),
            rate: rate_signal(&headers),
        })
    }
}

/// The next insights window `(since, until, last)` in Unix seconds: mid-run from the cursor,
/// otherwise from [`INSIGHTS_REVISION`] before the checkpoint, to at most [`INSIGHTS_WINDOW`]
/// later, never past the last complete (UTC) day; `None` when there is nothing to ask for.
fn insights_window(position: &Position, now: OffsetDateTime) -> Option<(i64, i64, bool)> {
    let complete = now.replace_time(Time::MIDNIGHT).unix_timestamp();
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<i64>().ok());
    let since = match (parse(&position.cursor), parse(&position.since)) {
        (Some(cursor), _) => cursor,
        (None, Some(since)) => since - INSIGHTS_REVISION.whole_seconds(),
        (None, None) => complete - INSIGHTS_BACKFILL.whole_seconds(),
    };
    let until = (since + INSIGHTS_WINDOW.whole_seconds()).min(complete);
    (since < until).then_some((since, until, until == complete))
}

/// Graph's `[{name, period, values: [{value, end_time}]}]` flattened to one item per metric
/// and period end, keyed `<metric>/<period>/<end_time>`; a value whose key parts are missing
/// keeps no id (validation says why).
fn insight_items(data: &Value) -> Result<Vec<RawItem>, PlatformError> {
    let mut items = Vec::new();
    for metric in raw_items(data)? {
        let m = &metric.raw;
        let Some(values) = m["values"].as_array() else {
            items.push(RawItem {
                platform_id: None,
                raw: metric.raw.clone(),
            });
            continue;
        };
        for v in values {
            // Only what Graph sent: a missing field stays missing for the review item.
            let raw: serde_json::Map<String, Value> = [
                ("name", &m["name"]),
                ("period", &m["period"]),
                ("value", &v["value"]),
                ("end_time", &v["end_time"]),
            ]
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(k, value)| (k.to_owned(), value.clone()))
            .collect();
            let mut raw = Value::Object(raw);
            let platform_id = match (
                m["name"].as_str(),
                m["period"].as_str(),
                v["end_time"].as_str(),
            ) {
                (Some(name), Some(period), Some(end)) => Some(format!("{name}/{period}/{end}")),
                _ => None,
            };
            if let Some(id) = &platform_id {
                raw["id"] = json!(id);
            }
            items.push(RawItem { platform_id, raw });
        }
    }
    Ok(items)
}

#[async_trait]
impl TimelineSource for HttpPlatforms {
    async fn fetch(
        &self,
        account: &Account,
        kind: StreamKind,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        match (account.platform, kind) {
            (Platform::Facebook, StreamKind::Insights) => {
                self.facebook_insights(account, position).await
            }
            (_, StreamKind::Insights) => Err(PlatformError::Permanent {
                message: format!("{} has no insights stream", account.platform),
                code: None,
            }),
            (Platform::X, StreamKind::Posts) => self.x_timeline(account, position, page_size).await,
            (Platform::Facebook, StreamKind::Posts) => {
                let url = self
                    .endpoints
                    .facebook_url(&format!("/{}/posts", account.external_id));
                let listing = (url, "id,message,created_time");
                self.graph_timeline(account, position, page_size, listing, facebook_error)
                    .await
            }
            (Platform::Instagram, StreamKind::Posts) => {
                let url = self
                    .endpoints
                    .instagram_url(&format!("/{}/media", account.external_id));
                let listing = (url, "id,caption,timestamp");
                self.graph_timeline(account, position, page_size, listing, instagram_error)
                    .await
            }
            (Platform::Linkedin, StreamKind::Posts) => {
                self.linkedin_timeline(account, position, page_size).await
            }
            (Platform::Bluesky, StreamKind::Posts) => {
                self.bluesky_timeline(account, position, page_size).await
            }
            (Platform::Mastodon, StreamKind::Posts) => {
                self.mastodon_timeline(account, position, page_size).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_stops_at_the_newest_item_already_stored() {
        let items = raw_items(&json!([{"id": "3"}, {"id": "2"}, {"id": "1"}])).unwrap();
        let (kept, reached) = until_since(items.clone(), Some("2"));
        assert!(reached);
        assert_eq!(kept.len(), 1);
        let (kept, reached) = until_since(items, Some("9"));
        assert!(!reached);
        assert_eq!(kept.len(), 3);
        assert!(raw_items(&json!({"oops": 1})).is_err());
        assert!(raw_items(&Value::Null).unwrap().is_empty());
    }

    #[test]
    fn insights_windows_step_a_week_at_a_time_up_to_the_last_complete_day() {
        let now = time::macros::datetime!(2026-11-24 15:30 UTC);
        let midnight = time::macros::datetime!(2026-11-24 00:00 UTC).unix_timestamp();
        let day = 86_400;
        // A new stream starts four weeks back.
        let (since, until, last) = insights_window(&Position::default(), now).unwrap();
        assert_eq!(
            (since, until, last),
            (midnight - 28 * day, midnight - 21 * day, false)
        );
        // Mid-run the cursor wins over `since`.
        let mid = Position {
            since: Some((midnight - 28 * day).to_string()),
            cursor: Some((midnight - 3 * day).to_string()),
            run_newest: None,
        };
        assert_eq!(
            insights_window(&mid, now),
            Some((midnight - 3 * day, midnight, true))
        );
        // Up to date: the last three days again (Meta revises them), nothing newer.
        let done = Position {
            since: Some(midnight.to_string()),
            ..Default::default()
        };
        assert_eq!(
            insights_window(&done, now),
            Some((midnight - 3 * day, midnight, true))
        );
        // A checkpoint from the future (a clock gone wrong) asks for nothing.
        let ahead = Position {
            since: Some((midnight + 5 * day).to_string()),
            ..Default::default()
        };
        assert_eq!(insights_window(&ahead, now), None);
    }

    #[test]
    fn insights_are_flattened_to_one_keyed_item_per_metric_and_day() {
        let data = json!([
            {"name": "page_impressions", "period": "day", "id": "p/insights/page_impressions/day",
             "values": [{"value": 5, "end_time": "2026-11-20T00:00:00+0000"},
                        {"value": 6}]},
            {"name": "page_post_engagements", "period": "day", "values": "oops"},
        ]);
        let items = insight_items(&data).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[0].platform_id.as_deref(),
            Some("page_impressions/day/2026-11-20T00:00:00+0000")
        );
        assert_eq!(items[0].raw["value"], json!(5));
        assert_eq!(
            items[0].raw["id"],
            json!(items[0].platform_id.as_deref().unwrap())
        );
        assert_eq!(items[1].platform_id, None, "no end_time, no key");
        assert!(items[1].raw.get("end_time").is_none(), "{}", items[1].raw);
        assert_eq!(items[2].platform_id, None, "values that are not a list");
    }
}
