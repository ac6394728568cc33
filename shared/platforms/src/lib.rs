//! HTTP clients for the platforms Herald publishes to. Each turns the platform's answer into a
//! [`PublishedPost`] or a classified [`PlatformError`]:
//!
//! | signal | class |
//! |---|---|
//! | connection refused / DNS (nothing sent) | transient |
//! | timeout or connection lost after sending | ambiguous (never blindly retried) |
//! | 429, X code 88, Meta codes 4, 17, 32, 613 | rate limited (Retry-After / reset honoured) |
//! | 401, Meta code 190, LinkedIn INVALID_ACCESS_TOKEN | auth |
//! | 5xx, Meta codes 1, 2 | transient |
//! | other 4xx | permanent, with the platform's message |
//!
//! Media go first, each uploaded the platform's way (X `POST /2/media/upload`, Facebook
//! unpublished photos or a video post, LinkedIn `initializeUpload` then `PUT`), and the post
//! refers to what came back. An upload is not a post: one whose answer was lost is transient
//! and simply sent again; only the post itself can be ambiguous. Bytes are streamed from the
//! media store, never held whole. (X's one-request upload is what X documents for images; its
//! chunked INIT/APPEND/FINALIZE flow, which large videos need there, is not implemented.)
//!
//! Tokens go in headers only and never into a log line or an error message. Every answer's
//! rate-limit headers are read into a [`RateSignal`], so Herald slows down before a 429, and
//! `find_post` looks a post up by its exact text after an answer was lost.

mod alerts;
mod engagement;
mod errors;
pub mod oauth;
pub mod outbound;
#[cfg(test)]
mod tests;

pub use alerts::{WebhookAlerts, alerter};
pub use errors::rate_signal;
use errors::*;

use async_trait::async_trait;
use herald_domain::media::{Attachment, MediaKind, MediaType};
use herald_domain::model::Platform;
use herald_domain::platform::{
    LookupRequest, MediaUpload, PlatformClient, PlatformError, PublishRequest, PublishedPost,
    upload_allowance,
};
use reqwest::header::HeaderMap;
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::Duration;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Base URLs, e.g. `https://api.x.com`, `https://graph.facebook.com/v21.0`,
/// `https://api.linkedin.com`.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub x: String,
    pub facebook: String,
    pub linkedin: String,
}

impl Endpoints {
    /// The three base URLs from `HERALD_X_API_URL`, `HERALD_FACEBOOK_API_URL` and
    /// `HERALD_LINKEDIN_API_URL`, each read by `url` (the function's configuration reader,
    /// which checks and reports them).
    pub fn read(mut url: impl FnMut(&str) -> String) -> Self {
        Self {
            x: url("HERALD_X_API_URL"),
            facebook: url("HERALD_FACEBOOK_API_URL"),
            linkedin: url("HERALD_LINKEDIN_API_URL"),
        }
    }
}

mod timelines;

/// The LinkedIn API version sent as `LinkedIn-Version`.
const LINKEDIN_VERSION: &str = "202501";

#[derive(Debug, Clone)]
pub struct HttpPlatforms {
    http: reqwest::Client,
    endpoints: Endpoints,
    timeout: Duration,
    /// Client credentials for refreshing tokens (`oauth`).
    oauth: oauth::OAuthClientSource,
}

/// What every call of one publish needs; the media travel apart, since their uploads consume
/// them.
#[derive(Debug, Clone, Copy)]
struct Account<'a> {
    external_id: &'a str,
    token: &'a SecretString,
    text: &'a str,
}

/// "X answered 400: ..." for a post, "X answered 400 to the media upload: ..." for an upload.
const POST: &str = "";
const UPLOAD: &str = " to the media upload";

impl HttpPlatforms {
    /// `timeout` bounds a whole request; past it the outcome is ambiguous. An upload gets
    /// longer, by its size (`upload_allowance`).
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3).min(timeout))
            .user_agent(concat!("herald/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            endpoints,
            timeout,
            oauth: oauth::OAuthClientSource::Fixed(oauth::OAuthClients::default()),
        })
    }

    /// The OAuth clients token refreshes authenticate with.
    pub fn with_oauth_clients(mut self, clients: oauth::OAuthClients) -> Self {
        self.oauth = oauth::OAuthClientSource::Fixed(clients);
        self
    }

    /// The OAuth clients read from a secret (`OAuthClientsSecret`: `{"x": {"client_id",
    /// "client_secret"}, "linkedin": {...}}`) through the secret cache, so an operator's new
    /// value is used within the cache's TTL.
    pub fn with_oauth_secret(
        mut self,
        cache: std::sync::Arc<herald_domain::secrets::SecretCache>,
        secret: impl Into<String>,
    ) -> Self {
        self.oauth = oauth::OAuthClientSource::Secret {
            cache,
            secret: secret.into(),
        };
        self
    }

    fn upload_timeout(&self, attachment: &Attachment) -> Duration {
        upload_allowance(self.timeout, attachment.size)
    }

    /// X: each file in one `POST /2/media/upload` (multipart `media`, `media_category`), then
    /// the tweet with `media.media_ids`.
    async fn publish_x(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut media_ids = Vec::with_capacity(media.len());
        for upload in media {
            media_ids.push(self.upload_x(account, upload).await?);
        }
        let mut body = serde_json::json!({ "text": account.text });
        if !media_ids.is_empty() {
            body["media"] = serde_json::json!({ "media_ids": media_ids });
        }
        let url = format!("{}/2/tweets", self.endpoints.x.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        if status.is_success() {
            return body["data"]["id"]
                .as_str()
                .map(|id| published(id, &headers))
                .ok_or_else(|| missing_id("X"));
        }
        Err(x_error(status, &headers, &body, POST))
    }

    async fn upload_x(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let a = upload.attachment;
        let category = match (a.media_type, a.media_type.kind()) {
            (MediaType::Gif, _) => "tweet_gif",
            (_, MediaKind::Video) => "tweet_video",
            _ => "tweet_image",
        };
        let form = Form::new()
            .text("media_category", category)
            .part("media", media_part(upload)?);
        let url = format!("{}/2/media/upload", self.endpoints.x.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(self.upload_timeout(a))
            .send()
            .await
            .map_err(upload_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_upload_json(response).await?;
        if status.is_success() {
            return body["data"]["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| upload_without_id("X"));
        }
        Err(x_error(status, &headers, &body, UPLOAD))
    }

    /// Facebook: photos are uploaded unpublished (`POST /{page}/photos`, `published=false`)
    /// and attached to the feed post (`attached_media`); a video is its own post
    /// (`POST /{page}/videos` with the text as its description).
    async fn publish_facebook(
        &self,
        account: Account<'_>,
        mut media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        if media.len() == 1
            && media[0].attachment.media_type.kind() == MediaKind::Video
            && let Some(video) = media.pop()
        {
            return self.publish_facebook_video(account, video).await;
        }
        let mut form: Vec<(String, String)> = vec![("message".into(), account.text.to_owned())];
        for (i, upload) in media.into_iter().enumerate() {
            let id = self.upload_facebook_photo(account, upload).await?;
            form.push((
                format!("attached_media[{i}]"),
                serde_json::json!({ "media_fbid": id }).to_string(),
            ));
        }
        let url = format!(
            "{}/{}/feed",
            self.endpoints.facebook.trim_end_matches('/'),
            account.external_id
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(&form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        if status.is_success() {
            return body["id"]
                .as_str()
                .map(|id| published(id, &headers))
                .ok_or_else(|| missing_id("Facebook"));
        }
        Err(facebook_error(status, &headers, &body, POST))
    }

    async fn upload_facebook_photo(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let timeout = self.upload_timeout(upload.attachment);
        let form = Form::new()
            .text("published", "false")
            .part("source", media_part(upload)?);
        let response = self
            .post_page_form(&account, "photos", form, timeout)
            .await
            .map_err(upload_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_upload_json(response).await?;
        if status.is_success() {
            return body["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| upload_without_id("Facebook"));
        }
        Err(facebook_error(status, &headers, &body, UPLOAD))
    }

    /// A multipart POST to one of the Page's edges (`photos`, `videos`).
    async fn post_page_form(
        &self,
        account: &Account<'_>,
        edge: &str,
        form: Form,
        timeout: Duration,
    ) -> Result<Response, reqwest::Error> {
        let url = format!(
            "{}/{}/{edge}",
            self.endpoints.facebook.trim_end_matches('/'),
            account.external_id
        );
        self.http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(timeout)
            .send()
            .await
    }

    /// The upload is the post here: a lost answer is ambiguous, as for any post.
    async fn publish_facebook_video(
        &self,
        account: Account<'_>,
        video: MediaUpload<'_>,
    ) -> Result<PublishedPost, PlatformError> {
        let timeout = self.upload_timeout(video.attachment);
        let form = Form::new()
            .text("description", account.text.to_owned())
            .part("source", media_part(video)?);
        let response = self
            .post_page_form(&account, "videos", form, timeout)
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await?;
        if status.is_success() {
            return body["id"]
                .as_str()
                .map(|id| published(id, &headers))
                .ok_or_else(|| missing_id("Facebook"));
        }
        Err(facebook_error(status, &headers, &body, POST))
    }

    /// LinkedIn: each file is registered (`POST /rest/images` or `/rest/documents`
    /// `?action=initializeUpload`), its bytes `PUT` to the upload URL LinkedIn returns, and the
    /// post refers to the image or document URN.
    async fn publish_linkedin(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let author = linkedin_author(account.external_id);
        let mut uploaded = Vec::with_capacity(media.len());
        for upload in media {
            let a = upload.attachment;
            let urn = self.upload_linkedin(account, &author, upload).await?;
            uploaded.push((urn, a));
        }
        let mut post = serde_json::json!({
            "author": author,
            "commentary": account.text,
            "visibility": "PUBLIC",
            "distribution": { "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": [] },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false
        });
        match uploaded.as_slice() {
            [] => {}
            [(urn, a)] => {
                let mut media = serde_json::json!({ "id": urn });
                if a.media_type.kind() == MediaKind::Document {
                    media["title"] = a.file_name.clone().into();
                }
                post["content"] = serde_json::json!({ "media": media });
            }
            many => {
                let images: Vec<Value> = many
                    .iter()
                    .map(|(urn, _)| serde_json::json!({ "id": urn }))
                    .collect();
                post["content"] = serde_json::json!({ "multiImage": { "images": images } });
            }
        }
        let url = format!(
            "{}/rest/posts",
            self.endpoints.linkedin.trim_end_matches('/')
        );
        let response = self
            .linkedin(self.http.post(url), account)
            .json(&post)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            // Drain the (empty) body so a dropped connection here counts as ambiguous too.
            response.bytes().await.map_err(transport_error)?;
            return headers
                .get("x-restli-id")
                .and_then(|v| v.to_str().ok())
                .map(|id| published(id, &headers))
                .ok_or_else(|| missing_id("LinkedIn"));
        }
        let body = read_json(response).await?;
        Err(linkedin_error(status, &headers, &body, POST))
    }

    async fn upload_linkedin(
        &self,
        account: Account<'_>,
        author: &str,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let a = upload.attachment;
        let (resource, field) = match a.media_type.kind() {
            MediaKind::Document => ("documents", "document"),
            _ => ("images", "image"),
        };
        let url = format!(
            "{}/rest/{resource}?action=initializeUpload",
            self.endpoints.linkedin.trim_end_matches('/')
        );
        let response = self
            .linkedin(self.http.post(url), account)
            .json(&serde_json::json!({ "initializeUploadRequest": { "owner": author } }))
            .send()
            .await
            .map_err(upload_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_upload_json(response).await?;
        if !status.is_success() {
            return Err(linkedin_error(status, &headers, &body, UPLOAD));
        }
        let (Some(upload_url), Some(urn)) = (
            body["value"]["uploadUrl"].as_str(),
            body["value"][field].as_str(),
        ) else {
            return Err(upload_without_id("LinkedIn"));
        };
        // The upload URL comes from LinkedIn's answer: the token goes only to LinkedIn's own
        // hosts.
        if !same_site(upload_url, &self.endpoints.linkedin) {
            return Err(PlatformError::Permanent {
                message:
                    "LinkedIn returned an upload URL outside its own domain; nothing was sent there"
                        .into(),
                code: None,
            });
        }
        let timeout = self.upload_timeout(a);
        let content = upload.content;
        let response = self
            .http
            .put(upload_url)
            .bearer_auth(account.token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, a.media_type.mime())
            .header(reqwest::header::CONTENT_LENGTH, content.size)
            .body(reqwest::Body::wrap_stream(content.chunks))
            .timeout(timeout)
            .send()
            .await
            .map_err(upload_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_upload_json(response).await?;
        if status.is_success() {
            Ok(urn.to_owned())
        } else {
            Err(linkedin_error(status, &headers, &body, UPLOAD))
        }
    }

    fn linkedin(
        &self,
        request: reqwest::RequestBuilder,
        account: Account<'_>,
    ) -> reqwest::RequestBuilder {
        request
            .bearer_auth(account.token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
    }
}

/// A media file as a multipart part, streamed with its length.
fn media_part(upload: MediaUpload<'_>) -> Result<Part, PlatformError> {
    let a = upload.attachment;
    Part::stream_with_length(
        reqwest::Body::wrap_stream(upload.content.chunks),
        upload.content.size,
    )
    .file_name(a.file_name.clone())
    .mime_str(a.media_type.mime())
    .map_err(|_| PlatformError::Permanent {
        message: format!("media {} has an unusable content type", a.media_id),
        code: None,
    })
}

/// Whether `url` is on the same site as `endpoint`: the same host, or a host under the
/// endpoint's parent domain (`www.linkedin.com` for `api.linkedin.com`), over the same scheme.
fn same_site(url: &str, endpoint: &str) -> bool {
    let (Ok(url), Ok(endpoint)) = (reqwest::Url::parse(url), reqwest::Url::parse(endpoint)) else {
        return false;
    };
    let (Some(host), Some(base)) = (url.host_str(), endpoint.host_str()) else {
        return false;
    };
    if url.scheme() != endpoint.scheme() {
        return false;
    }
    if host == base {
        return true;
    }
    let labels: Vec<&str> = base.split('.').collect();
    if labels.len() < 3 || base.parse::<std::net::IpAddr>().is_ok() {
        return false;
    }
    let parent = labels[1..].join(".");
    host == parent || host.ends_with(&format!(".{parent}"))
}

impl HttpPlatforms {
    /// The account's recent posts as (id, text, created) from the platform's listing.
    async fn recent_posts(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let (url, query): (String, Vec<(&str, String)>) = match req.platform {
            Platform::X => (
                format!(
                    "{}/2/users/{}/tweets",
                    self.endpoints.x.trim_end_matches('/'),
                    req.external_id
                ),
                vec![
                    ("max_results", "100".into()),
                    ("tweet.fields", "created_at".into()),
                ],
            ),
            Platform::Facebook => (
                format!(
                    "{}/{}/feed",
                    self.endpoints.facebook.trim_end_matches('/'),
                    req.external_id
                ),
                vec![
                    ("limit", "100".into()),
                    ("fields", "id,message,created_time".into()),
                ],
            ),
            Platform::Linkedin => (
                format!(
                    "{}/rest/posts",
                    self.endpoints.linkedin.trim_end_matches('/')
                ),
                vec![
                    ("q", "author".into()),
                    ("author", linkedin_author(req.external_id)),
                    ("count", "100".into()),
                ],
            ),
        };
        let response = self
            .http
            .get(url)
            .bearer_auth(req.access_token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
            .query(&query)
            .send()
            .await
            .map_err(lookup_transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_json(response).await.map_err(|_| lookup_failed())?;
        if !status.is_success() {
            let message = format!(
                "{} answered {} to the lookup",
                platform_name(req.platform),
                status.as_u16()
            );
            return Err(match status {
                StatusCode::TOO_MANY_REQUESTS => PlatformError::RateLimited {
                    message,
                    code: None,
                    retry_after: retry_after(&headers).or_else(|| x_rate_limit_reset(&headers)),
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
        let rfc3339 = |v: &Value| {
            v.as_str()
                .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        };
        let entries = |list: &Value,
                       id: &str,
                       text: &str,
                       created: &dyn Fn(&Value) -> Option<OffsetDateTime>| {
            list.as_array()
                .map(|items| {
                    items
                        .iter()
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
        })
    }
}

/// The Graph API's `2025-01-31T12:00:00+0000`.
const GRAPH_TIME: &[time::format_description::BorrowedFormatItem<'_>] = time::macros::format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
);

#[async_trait]
impl PlatformClient for HttpPlatforms {
    /// Uploads the media first, then publishes the post referring to them. An upload creates
    /// nothing anyone sees, so one whose answer was lost is simply transient (the retry
    /// uploads again); only the post itself can be ambiguous.
    async fn publish(&self, request: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        let PublishRequest {
            platform,
            external_id,
            access_token,
            text,
            media,
            ..
        } = request;
        let account = Account {
            external_id,
            token: access_token,
            text,
        };
        match platform {
            Platform::X => self.publish_x(account, media).await,
            Platform::Facebook => self.publish_facebook(account, media).await,
            Platform::Linkedin => self.publish_linkedin(account, media).await,
        }
    }

    /// Searches the account's latest 100 posts for the exact text, created since `since`
    /// (a post without a readable time still matches on its text).
    async fn find_post(
        &self,
        request: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        let posts = self.recent_posts(&request).await?;
        Ok(posts
            .into_iter()
            .find(|(_, text, created)| {
                text == request.text && created.is_none_or(|c| c >= request.since)
            })
            .map(|(id, _, _)| PublishedPost::new(id)))
    }
}

fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::X => "X",
        Platform::Facebook => "Facebook",
        Platform::Linkedin => "LinkedIn",
    }
}

fn linkedin_author(external_id: &str) -> String {
    if external_id.starts_with("urn:") {
        external_id.to_owned()
    } else {
        format!("urn:li:organization:{external_id}")
    }
}

fn published(id: &str, headers: &HeaderMap) -> PublishedPost {
    PublishedPost {
        platform_post_id: id.to_owned(),
        signal: rate_signal(headers),
    }
}
