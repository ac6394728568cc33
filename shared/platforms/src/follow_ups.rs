//! Follow-ups: what a post publishes after itself, answering the platform post before it.
//!
//! | platform | publish | look up after a lost answer |
//! |---|---|---|
//! | X | `POST /2/tweets` with `reply.in_reply_to_tweet_id` | the user's tweets whose `referenced_tweets` has `replied_to` the parent |
//! | Facebook | `POST /{post-id}/comments` (`message`) | `GET /{post-id}/comments`, the Page's own |
//! | LinkedIn | `POST /rest/socialActions/{urn}/comments` (`actor`, `object`, `message.text`) | `GET /rest/socialActions/{urn}/comments`, the organisation's own |
//! | Mastodon | `POST /api/v1/statuses` with `in_reply_to_id` (`mastodon.rs`) | the account's statuses whose `in_reply_to_id` is the parent |
//! | Bluesky | `createRecord` with `reply.root` and `reply.parent` (`bluesky.rs`) | `getRecord` of the step's own record key |
//! | Instagram | `POST /{media-id}/comments` (`message`) | `GET /{media-id}/comments`, the account's own |

use super::*;
use crate::engagement::urlencode_path;

impl HttpPlatforms {
    /// Publishes `account.text` as the answer to `parent`.
    pub(crate) async fn publish_follow_up(
        &self,
        platform: Platform,
        account: Account<'_>,
        parent: &str,
    ) -> Result<PublishedPost, PlatformError> {
        match platform {
            Platform::X => {
                let body = serde_json::json!({
                    "text": account.text,
                    "reply": { "in_reply_to_tweet_id": parent },
                });
                let response = self
                    .http
                    .post(self.endpoints.x_url("/2/tweets"))
                    .bearer_auth(account.token.expose_secret())
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport_error)?;
                Answer::to_post(response).await?.published(
                    "X",
                    |b| b["data"]["id"].as_str(),
                    x_error,
                )
            }
            Platform::Facebook => {
                let url = self
                    .endpoints
                    .facebook_url(&format!("/{}/comments", urlencode_path(parent)));
                self.graph_comment(url, account, "Facebook", facebook_error)
                    .await
            }
            Platform::Instagram => {
                let url = self
                    .endpoints
                    .instagram_url(&format!("/{}/comments", urlencode_path(parent)));
                self.graph_comment(url, account, "Instagram", instagram_error)
                    .await
            }
            Platform::Mastodon => {
                self.publish_mastodon(account, Vec::new(), Some(parent))
                    .await
            }
            Platform::Bluesky => {
                self.publish_bluesky(account, Vec::new(), Some(parent))
                    .await
            }
            Platform::Linkedin => {
                let body = serde_json::json!({
                    "actor": linkedin_author(account.external_id),
                    "object": parent,
                    "message": { "text": account.text },
                });
                let response = self
                    .linkedin(self.http.post(self.linkedin_comments_url(parent)), account)
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport_error)?;
                let answer = Answer::to_post(response).await?;
                // The comment's URN is in `x-restli-id` (or the created entity's `$URN`).
                let header = answer
                    .headers
                    .get("x-restli-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match header {
                    Some(urn) if answer.status.is_success() => Ok(published(&urn, &answer.headers)),
                    _ => answer.published(
                        "LinkedIn",
                        |b| b["$URN"].as_str().or(b["id"].as_str()),
                        linkedin_error,
                    ),
                }
            }
        }
    }

    /// A Graph API comment (Facebook, Instagram): `POST {url}` with the form's `message`.
    async fn graph_comment(
        &self,
        url: String,
        account: Account<'_>,
        platform: &str,
        classify: answer::Classify,
    ) -> Result<PublishedPost, PlatformError> {
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(&[("message", account.text)])
            .send()
            .await
            .map_err(transport_error)?;
        Answer::to_post(response)
            .await?
            .published(platform, |b| b["id"].as_str(), classify)
    }

    fn linkedin_comments_url(&self, parent: &str) -> String {
        self.endpoints.linkedin_url(&format!(
            "/rest/socialActions/{}/comments",
            urlencode_path(parent)
        ))
    }

    /// The answers to `parent` the account left, as (id, text, created).
    pub(crate) async fn recent_answers(
        &self,
        req: &LookupRequest<'_>,
        parent: &str,
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
                    .facebook_url(&format!("/{}/comments", urlencode_path(parent))),
                vec![
                    ("limit", "100".into()),
                    ("order", "reverse_chronological".into()),
                    ("fields", "id,message,created_time,from".into()),
                ],
            ),
            Platform::Linkedin => (
                self.linkedin_comments_url(parent),
                vec![("count", "100".into())],
            ),
            Platform::Instagram => (
                self.endpoints
                    .instagram_url(&format!("/{}/comments", urlencode_path(parent))),
                vec![("fields", "id,text,timestamp,from".into())],
            ),
            Platform::Mastodon => return self.mastodon_statuses(req).await,
            Platform::Bluesky => return self.find_bluesky(req).await,
        };
        let body = self.lookup_listing(req, url, &query).await?;
        let items = match req.platform {
            Platform::Linkedin => &body["elements"],
            _ => &body["data"],
        };
        let items = items.as_array().map(Vec::as_slice).unwrap_or_default();
        let mine = |item: &Value| match req.platform {
            Platform::X => item["referenced_tweets"].as_array().is_some_and(|refs| {
                refs.iter()
                    .any(|r| r["type"] == "replied_to" && r["id"] == parent)
            }),
            Platform::Facebook | Platform::Instagram => item["from"]["id"] == req.external_id,
            Platform::Linkedin => item["actor"] == linkedin_author(req.external_id).as_str(),
            // Read above.
            Platform::Mastodon | Platform::Bluesky => false,
        };
        Ok(items
            .iter()
            .filter(|item| mine(item))
            .filter_map(|item| {
                let (id, text, created) = match req.platform {
                    Platform::X => (
                        item["id"].as_str()?,
                        item["text"].as_str()?,
                        item["created_at"]
                            .as_str()
                            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok()),
                    ),
                    Platform::Facebook => (
                        item["id"].as_str()?,
                        item["message"].as_str()?,
                        item["created_time"]
                            .as_str()
                            .and_then(|t| OffsetDateTime::parse(t, lookup::GRAPH_TIME).ok()),
                    ),
                    Platform::Instagram => (
                        item["id"].as_str()?,
                        item["text"].as_str()?,
                        item["timestamp"]
                            .as_str()
                            .and_then(|t| OffsetDateTime::parse(t, lookup::GRAPH_TIME).ok()),
                    ),
                    Platform::Linkedin => (
                        item["$URN"].as_str().or(item["id"].as_str())?,
                        item["message"]["text"].as_str()?,
                        item["created"]["time"]
                            .as_i64()
                            .map(herald_domain::clock::from_epoch_millis),
                    ),
                    Platform::Mastodon | Platform::Bluesky => return None,
                };
                Some((id.to_owned(), text.to_owned(), created))
            })
            .collect())
    }
}
