//! Reading a published post's engagement: X `GET /2/tweets?ids=&tweet.fields=public_metrics`,
//! Facebook `GET /{post-id}?fields=likes.summary(true),comments.summary(true),shares`,
//! LinkedIn `GET /rest/socialActions/{urn}` (likes and comments; LinkedIn has no share or
//! impression count there), Mastodon `GET /api/v1/statuses/{id}`, Bluesky
//! `app.bsky.feed.getPosts`, Instagram `GET /{media-id}?fields=like_count,comments_count`.
//! Failures are classified like a publish's.

use super::*;
use herald_domain::analytics::{Engagement, EngagementClient};

fn count(v: &Value) -> Option<u64> {
    v.as_u64()
}

#[async_trait]
impl EngagementClient for HttpPlatforms {
    async fn engagement(
        &self,
        platform: Platform,
        _external_id: &str,
        access_token: &SecretString,
        platform_post_id: &str,
    ) -> Result<Engagement, PlatformError> {
        let request = match platform {
            Platform::X => self.http.get(self.endpoints.x_url("/2/tweets")).query(&[
                ("ids", platform_post_id),
                ("tweet.fields", "public_metrics"),
            ]),
            Platform::Facebook => self
                .http
                .get(self.endpoints.facebook_url(&format!("/{platform_post_id}")))
                .query(&[(
                    "fields",
                    "likes.summary(true),comments.summary(true),shares",
                )]),
            Platform::Linkedin => self
                .http
                .get(self.endpoints.linkedin_url(&format!(
                    "/rest/socialActions/{}",
                    urlencode_path(platform_post_id)
                )))
                .header("LinkedIn-Version", LINKEDIN_VERSION)
                .header("X-Restli-Protocol-Version", "2.0.0"),
            Platform::Bluesky => self
                .http
                .get(self.endpoints.bluesky_url("/xrpc/app.bsky.feed.getPosts"))
                .query(&[("uris", platform_post_id)]),
            Platform::Instagram => self
                .http
                .get(
                    self.endpoints
                        .instagram_url(&format!("/{}", urlencode_path(platform_post_id))),
                )
                .query(&[("fields", "like_count,comments_count")]),
            Platform::Mastodon => self.http.get(self.endpoints.mastodon_url(&format!(
                "/api/v1/statuses/{}",
                urlencode_path(platform_post_id)
            ))),
        };
        let response = request
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        const WHAT: &str = " to the engagement read";
        if !status.is_success() {
            return Err(match platform {
                Platform::X => x_error(status, &headers, &body, WHAT),
                Platform::Facebook => facebook_error(status, &headers, &body, WHAT),
                Platform::Linkedin => linkedin_error(status, &headers, &body, WHAT),
                Platform::Mastodon => mastodon::mastodon_error(status, &headers, &body, WHAT),
                Platform::Bluesky => bluesky::bluesky_error(status, &headers, &body, WHAT),
                Platform::Instagram => instagram_error(status, &headers, &body, WHAT),
            });
        }
        match platform {
            Platform::X => {
                let tweet = body["data"]
                    .as_array()
                    .and_then(|d| d.iter().find(|t| t["id"] == platform_post_id))
                    .ok_or_else(|| PlatformError::Permanent {
                        message: format!("X does not know tweet {platform_post_id} (deleted?)"),
                        code: Some("not_found".into()),
                    })?;
                let m = &tweet["public_metrics"];
                Ok(Engagement {
                    likes: count(&m["like_count"]),
                    comments: count(&m["reply_count"]),
                    shares: count(&m["retweet_count"])
                        .map(|r| r + count(&m["quote_count"]).unwrap_or(0)),
                    impressions: count(&m["impression_count"]),
                })
            }
            Platform::Facebook => Ok(Engagement {
                likes: count(&body["likes"]["summary"]["total_count"]),
                comments: count(&body["comments"]["summary"]["total_count"]),
                // Graph leaves `shares` out when nobody shared.
                shares: Some(count(&body["shares"]["count"]).unwrap_or(0)),
                impressions: None,
            }),
            Platform::Linkedin => Ok(Engagement {
                likes: count(&body["likesSummary"]["totalLikes"]),
                comments: count(&body["commentsSummary"]["aggregatedTotalComments"]),
                shares: None,
                impressions: None,
            }),
            // Likes, replies, reposts and quotes; Bluesky counts no impressions.
            Platform::Bluesky => {
                let post = body["posts"]
                    .as_array()
                    .and_then(|p| p.iter().find(|p| p["uri"] == platform_post_id))
                    .ok_or_else(|| PlatformError::Permanent {
                        message: format!(
                            "Bluesky does not know post {platform_post_id} (deleted?)"
                        ),
                        code: Some("not_found".into()),
                    })?;
                Ok(Engagement {
                    likes: count(&post["likeCount"]),
                    comments: count(&post["replyCount"]),
                    shares: count(&post["repostCount"])
                        .map(|r| r + count(&post["quoteCount"]).unwrap_or(0)),
                    impressions: None,
                })
            }
            // Likes and comments; impressions are an insights metric, not a media field.
            Platform::Instagram => Ok(Engagement {
                likes: count(&body["like_count"]),
                comments: count(&body["comments_count"]),
                shares: None,
                impressions: None,
            }),
            // Favourites, replies and boosts; Mastodon counts no impressions.
            Platform::Mastodon => Ok(Engagement {
                likes: count(&body["favourites_count"]),
                comments: count(&body["replies_count"]),
                shares: count(&body["reblogs_count"]),
                impressions: None,
            }),
        }
    }
}

/// A URN as one path segment (`urn:li:share:1` → `urn%3Ali%3Ashare%3A1`).
pub(crate) fn urlencode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
