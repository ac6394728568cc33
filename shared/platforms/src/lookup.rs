//! Finding a post an ambiguous failure may have created: the account's recent posts, read
//! from each platform's listing.

use super::*;

impl HttpPlatforms {
    /// The account's recent posts as (id, text, created) from the platform's listing.
    pub(crate) async fn recent_posts(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let (url, query): (String, Vec<(&str, String)>) = match req.platform {
            Platform::X => (
                self.endpoints
                    .x_url(&format!("/2/users/{}/tweets", req.external_id)),
                vec![
                    ("max_results", "100".into()),
                    ("tweet.fields", "created_at,referenced_tweets".into()),
                ],
            ),
            Platform::Facebook => (
                self.endpoints
                    .facebook_url(&format!("/{}/feed", req.external_id)),
                vec![
                    ("limit", "100".into()),
                    ("fields", "id,message,created_time".into()),
                ],
            ),
            Platform::Linkedin => (
                self.endpoints.linkedin_url("/rest/posts"),
                vec![
                    ("q", "author".into()),
                    ("author", linkedin_author(req.external_id)),
                    ("count", "100".into()),
                ],
            ),
            Platform::Mastodon => return self.mastodon_statuses(req).await,
            Platform::Bluesky => return self.find_bluesky(req).await,
            Platform::Instagram => return self.find_instagram(req).await,
        };
        let body = self.lookup_listing(req, url, &query).await?;
        let rfc3339 = |v: &Value| {
            v.as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        };
        // A reply is a follow-up, never the post itself.
        let replies = |p: &Value| {
            p["referenced_tweets"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["type"] == "replied_to"))
        };
        let entries = |list: &Value,
                       id: &str,
                       text: &str,
                       created: &dyn Fn(&Value) -> Option<OffsetDateTime>| {
            list.as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter(|p| !replies(p))
                        .filter_map(|p| {
                            Some((
                                p[id].as_str()?.to_owned(),
                                p[text].as_str()?.to_owned(),
                                created(p),
                            ))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        Ok(match req.platform {
            Platform::X => entries(&body["data"], "id", "text", &|p| rfc3339(&p["created_at"])),
            Platform::Facebook => entries(&body["data"], "id", "message", &|p| {
                p["created_time"]
                    .as_str()
                    .and_then(|t| OffsetDateTime::parse(t, GRAPH_TIME).ok())
            }),
            Platform::Linkedin => entries(&body["elements"], "id", "commentary", &|p| {
                p["createdAt"]
                    .as_i64()
                    .map(herald_domain::clock::from_epoch_millis)
            }),
            // Read above.
            Platform::Mastodon | Platform::Bluesky | Platform::Instagram => Vec::new(),
        })
    }

    /// One listing read for a lookup; a failure is classified (the post stays unknown).
    pub(crate) async fn lookup_listing(
        &self,
        req: &LookupRequest<'_>,
        url: String,
        query: &[(&str, String)],
    ) -> Result<Value, PlatformError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(req.access_token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .query(query)
            .send()
            .await
            .map_err(lookup_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.map_err(|_| lookup_failed())?;
        if !status.is_success() {
            let message = format!(
                "{} answered {} to the lookup",
                req.platform.title(),
                status.as_u16()
            );
            return Err(match status {
                StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
                    message,
                    code: None,
                    // Retry-After, else when the window resets (X's epoch, Mastodon's ISO
                    // 8601 time, Bluesky's epoch).
                    retry_after: retry_after(&headers)
                        .or_else(|| rate_signal(&headers).reset_after),
                },
                StatusCode::UNAUTHORIZED => PlatformError::Auth {
                    message,
                    code: None,
                },
                _ => PlatformError::Transient {
                    message,
                    code: None,
                    retry_after: retry_after(&headers),
                },
            });
        }
        Ok(body)
    }
}

/// The Graph API's `2025-01-31T12:00:00+0000`.
pub(crate) const GRAPH_TIME: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
);
