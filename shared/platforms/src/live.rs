//! Published posts on their platforms: deleting one (or a reply, or a comment), where "not
//! found" is success (the post is gone, whoever deleted it), and editing a post's text where the
//! platform lets apps: Facebook `POST /{post-id}` (`message`), LinkedIn `POST /rest/posts/{urn}`
//! (`X-RestLi-Method: PARTIAL_UPDATE`, `{"patch": {"$set": {"commentary"}}}`), Mastodon
//! `PUT /api/v1/statuses/{id}` (`status`).
//!
//! | platform | call |
//! |---|---|
//! | X | `DELETE /2/tweets/{id}` |
//! | Facebook | `DELETE /{post-id}` (a missing object: code 100, subcode 33) |
//! | LinkedIn | `DELETE /rest/posts/{urn}` (a comment: `DELETE /rest/socialActions/{post}/comments/{id}`) |
//! | Mastodon | `DELETE /api/v1/statuses/{id}` |
//! | Bluesky | `com.atproto.repo.deleteRecord` (`repo`, `collection`, `rkey` of the `at://` URI) |
//!
//! Instagram's API deletes nothing (the trait's default refuses).

use super::*;
use crate::engagement::urlencode_path;
use herald_domain::publishing::platform::{DeleteRequest, EditRequest};

/// Facebook's "object does not exist" subcode.
const NO_SUCH_OBJECT: i64 = 33;

impl HttpPlatforms {
    pub(crate) async fn delete(&self, r: DeleteRequest<'_>) -> Result<(), PlatformError> {
        let token = r.access_token.expose_secret();
        let id = r.platform_post_id;
        let (request, classify): (reqwest::RequestBuilder, answer::Classify) = match r.platform {
            Platform::X => (
                self.http
                    .delete(
                        self.endpoints
                            .x_url(&format!("/2/tweets/{}", urlencode_path(id))),
                    )
                    .bearer_auth(token),
                x_error,
            ),
            Platform::Facebook => (
                self.http
                    .delete(
                        self.endpoints
                            .facebook_url(&format!("/{}", urlencode_path(id))),
                    )
                    .bearer_auth(token),
                facebook_error,
            ),
            Platform::Linkedin => (
                self.http
                    .delete(self.endpoints.linkedin_url(&linkedin_path(id)))
                    .bearer_auth(token)
                    .header("LinkedIn-Version", LINKEDIN_VERSION)
                    .header("X-Restli-Protocol-Version", "2.0.0"),
                linkedin_error,
            ),
            Platform::Mastodon => (
                self.http
                    .delete(
                        self.endpoints
                            .mastodon_url(&format!("/api/v1/statuses/{}", urlencode_path(id))),
                    )
                    .bearer_auth(token),
                mastodon::mastodon_error,
            ),
            Platform::Bluesky => {
                let rkey = id.rsplit('/').next().unwrap_or_default();
                let body = serde_json::json!({
                    "repo": r.external_id, "collection": "app.bsky.feed.post", "rkey": rkey,
                });
                (
                    self.http
                        .post(
                            self.endpoints
                                .bluesky_url("/xrpc/com.atproto.repo.deleteRecord"),
                        )
                        .bearer_auth(token)
                        .json(&body),
                    bluesky::bluesky_error,
                )
            }
            Platform::Instagram => {
                return Err(PlatformError::Permanent {
                    message: "Instagram does not let apps delete posts".into(),
                    code: None,
                });
            }
        };
        let response = request.send().await.map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        let gone = answer.status == StatusCode::NOT_FOUND
            || (r.platform == Platform::Facebook
                && answer.body["error"]["error_subcode"].as_i64() == Some(NO_SUCH_OBJECT));
        if gone {
            return Ok(());
        }
        if answer.status.is_success() {
            return Ok(());
        }
        Err(classify(
            answer.status,
            &answer.headers,
            &answer.body,
            DELETE,
        ))
    }
}

impl HttpPlatforms {
    pub(crate) async fn edit(&self, r: EditRequest<'_>) -> Result<(), PlatformError> {
        let token = r.access_token.expose_secret();
        let id = urlencode_path(r.platform_post_id);
        let (request, classify): (reqwest::RequestBuilder, answer::Classify) = match r.platform {
            Platform::Facebook => (
                self.http
                    .post(self.endpoints.facebook_url(&format!("/{id}")))
                    .bearer_auth(token)
                    .form(&[("message", r.text)]),
                facebook_error,
            ),
            Platform::Linkedin => (
                self.http
                    .post(self.endpoints.linkedin_url(&format!("/rest/posts/{id}")))
                    .bearer_auth(token)
                    .header("LinkedIn-Version", LINKEDIN_VERSION)
                    .header("X-Restli-Protocol-Version", "2.0.0")
                    .header("X-RestLi-Method", "PARTIAL_UPDATE")
                    .json(&serde_json::json!({"patch": {"$set": {"commentary": r.text}}})),
                linkedin_error,
            ),
            Platform::Mastodon => (
                self.http
                    .put(
                        self.endpoints
                            .mastodon_url(&format!("/api/v1/statuses/{id}")),
                    )
                    .bearer_auth(token)
                    .json(&serde_json::json!({"status": r.text})),
                mastodon::mastodon_error,
            ),
            other => {
                return Err(PlatformError::Permanent {
                    message: format!("{} does not let apps edit posts", other.title()),
                    code: None,
                });
            }
        };
        let response = request.send().await.map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        if answer.status.is_success() {
            return Ok(());
        }
        Err(classify(answer.status, &answer.headers, &answer.body, EDIT))
    }
}

/// " to the edit", for "Facebook answered 400 to the edit: ...".
const EDIT: &str = " to the edit";

/// " to the delete", for "X answered 403 to the delete: ...".
const DELETE: &str = " to the delete";

/// A post's or a comment's path: a comment URN is `urn:li:comment:(<post urn>,<id>)`.
fn linkedin_path(urn: &str) -> String {
    match urn
        .strip_prefix("urn:li:comment:(")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|inner| inner.rsplit_once(','))
    {
        Some((post, comment)) => format!(
            "/rest/socialActions/{}/comments/{}",
            urlencode_path(post),
            urlencode_path(comment)
        ),
        None => format!("/rest/posts/{}", urlencode_path(urn)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linkedin_comment_is_deleted_under_its_post() {
        assert_eq!(
            linkedin_path("urn:li:share:7"),
            "/rest/posts/urn%3Ali%3Ashare%3A7"
        );
        assert_eq!(
            linkedin_path("urn:li:comment:(urn:li:share:7,99)"),
            "/rest/socialActions/urn%3Ali%3Ashare%3A7/comments/99"
        );
    }
}
