//! Timeline reads for ingestion ([`TimelineSource`]): X user timeline (`since_id`,
//! `pagination_token`, `max_results`), Facebook Page posts (`after` cursors), LinkedIn
//! organisation posts (`start`/`count`). Every answer's budget headers come back with the
//! page, so the runner stops before the platform says 429.
//!
//! Facebook and LinkedIn have no `since_id`: a run pages from the newest post and stops at
//! the newest one a previous run stored (`Position::since`).

use super::{
    HttpPlatforms, LINKEDIN_VERSION, facebook_error, linkedin_author, linkedin_error, rate_signal,
    x_error,
};
use async_trait::async_trait;
use herald_domain::ingest::{Page, Position, RawItem, TimelineSource};
use herald_domain::model::{Account, Platform};
use herald_domain::platform::PlatformError;
use reqwest::Response;
use secrecy::ExposeSecret;
use serde_json::Value;

const WHAT: &str = " to the timeline read";

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

async fn answer(
    response: Response,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Value), PlatformError> {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(|e| read_failed(&e))?;
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, headers, body))
}

fn raw_items(list: &Value) -> Result<Vec<RawItem>, PlatformError> {
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
fn until_since(items: Vec<RawItem>, since: Option<&str>) -> (Vec<RawItem>, bool) {
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
        let url = format!(
            "{}/2/users/{}/tweets",
            self.endpoints.x.trim_end_matches('/'),
            account.external_id
        );
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
        let response = self
            .http
            .get(url)
            .bearer_auth(account.access_token.expose_secret())
            .query(&query)
            .send()
            .await
            .map_err(|e| read_failed(&e))?;
        let (status, headers, body) = answer(response).await?;
        if !status.is_success() {
            return Err(x_error(status, &headers, &body, WHAT));
        }
        Ok(Page {
            items: raw_items(&body["data"])?,
            next: body["meta"]["next_token"].as_str().map(str::to_owned),
            newest: body["meta"]["newest_id"].as_str().map(str::to_owned),
            rate: rate_signal(&headers),
        })
    }

    async fn facebook_timeline(
        &self,
        account: &Account,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        let url = format!(
            "{}/{}/posts",
            self.endpoints.facebook.trim_end_matches('/'),
            account.external_id
        );
        let mut query = vec![
            ("limit", page_size.clamp(1, 100).to_string()),
            ("fields", "id,message,created_time".to_owned()),
        ];
        if let Some(cursor) = &position.cursor {
            query.push(("after", cursor.clone()));
        }
        let response = self
            .http
            .get(url)
            .bearer_auth(account.access_token.expose_secret())
            .query(&query)
            .send()
            .await
            .map_err(|e| read_failed(&e))?;
        let (status, headers, body) = answer(response).await?;
        if !status.is_success() {
            return Err(facebook_error(status, &headers, &body, WHAT));
        }
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
        let url = format!(
            "{}/rest/posts",
            self.endpoints.linkedin.trim_end_matches('/')
        );
        let start: u64 = position
            .cursor
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let count = u64::from(page_size.clamp(1, 100));
        let response = self
            .http
            .get(url)
            .bearer_auth(account.access_token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .query(&[
                ("q", "author".to_owned()),
                ("author", linkedin_author(&account.external_id)),
                ("start", start.to_string()),
                ("count", count.to_string()),
            ])
            .send()
            .await
            .map_err(|e| read_failed(&e))?;
        let (status, headers, body) = answer(response).await?;
        if !status.is_success() {
            return Err(linkedin_error(status, &headers, &body, WHAT));
        }
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
}

#[async_trait]
impl TimelineSource for HttpPlatforms {
    async fn fetch(
        &self,
        account: &Account,
        position: &Position,
        page_size: u32,
    ) -> Result<Page, PlatformError> {
        match account.platform {
            Platform::X => self.x_timeline(account, position, page_size).await,
            Platform::Facebook => self.facebook_timeline(account, position, page_size).await,
            Platform::Linkedin => self.linkedin_timeline(account, position, page_size).await,
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
}
