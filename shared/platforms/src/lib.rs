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
//! media store, never held whole. Videos on X and Facebook go up in chunks instead, each kept
//! as the step's progress, so one that does not fit an invocation continues in the next
//! (`resumable.rs`).
//!
//! A follow-up (a thread's reply on X, a first comment on Facebook and LinkedIn) answers the
//! post before it (`follow_ups.rs`), and is looked up among that post's answers.
//!
//! Tokens go in headers only and never into a log line or an error message. Every answer's
//! rate-limit headers are read into a [`RateSignal`], so Herald slows down before a 429, and
//! `find_post` looks a post up by its exact text after an answer was lost.

mod alerts;
mod answer;
pub mod authorize;
mod bluesky;
mod engagement;
mod errors;
mod live;
pub mod oauth;
pub mod outbound;
mod resumable;
pub mod sms;
#[cfg(test)]
mod tests;

pub use alerts::{WebhookAlerts, alerter};
use answer::Answer;
pub use errors::rate_signal;
use errors::*;
use linkedin::{LINKEDIN_VERSION, linkedin_author};

use async_trait::async_trait;
use herald_domain::media::{Attachment, MediaKind, MediaType};
use herald_domain::model::Platform;
use herald_domain::publishing::options::TargetOptions;
use herald_domain::publishing::platform::{
    LookupRequest, MediaBody, MediaUpload, PlatformClient, PlatformError, PublishRequest,
    PublishedPost, StepProgress, UPLOAD_CHUNK_BYTES, upload_allowance,
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
    /// The one Mastodon instance Herald's Mastodon accounts are on.
    pub mastodon: String,
    /// The Bluesky PDS (or entryway) Herald's Bluesky accounts sign in to.
    pub bluesky: String,
    /// Instagram's Graph API with its version (`https://graph.instagram.com/v21.0`).
    pub instagram: String,
}

impl Endpoints {
    /// `path` (from its leading `/`) on X's API.
    fn x_url(&self, path: &str) -> String {
        join(&self.x, path)
    }

    /// `path` on Facebook's Graph API (its base carries the version).
    fn facebook_url(&self, path: &str) -> String {
        join(&self.facebook, path)
    }

    /// `path` on LinkedIn's API.
    fn linkedin_url(&self, path: &str) -> String {
        join(&self.linkedin, path)
    }

    /// `path` on the Mastodon instance.
    fn mastodon_url(&self, path: &str) -> String {
        join(&self.mastodon, path)
    }

    /// `path` on the Bluesky PDS.
    fn bluesky_url(&self, path: &str) -> String {
        join(&self.bluesky, path)
    }

    /// `path` on Instagram's Graph API.
    fn instagram_url(&self, path: &str) -> String {
        join(&self.instagram, path)
    }

    /// The base URLs from `HERALD_X_API_URL`, `HERALD_FACEBOOK_API_URL`,
    /// `HERALD_LINKEDIN_API_URL`, `HERALD_MASTODON_API_URL`, `HERALD_BLUESKY_API_URL` and
    /// `HERALD_INSTAGRAM_API_URL`, each read by `url` (the function's configuration reader,
    /// which checks and reports them).
    pub fn read(mut url: impl FnMut(&str) -> String) -> Self {
        Self {
            x: url("HERALD_X_API_URL"),
            facebook: url("HERALD_FACEBOOK_API_URL"),
            linkedin: url("HERALD_LINKEDIN_API_URL"),
            mastodon: url("HERALD_MASTODON_API_URL"),
            bluesky: url("HERALD_BLUESKY_API_URL"),
            instagram: url("HERALD_INSTAGRAM_API_URL"),
        }
    }
}

/// A base URL (with or without its trailing `/`) and a path from its leading `/`.
fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

mod facebook;
mod follow_ups;
mod instagram;
mod linkedin;
mod lookup;
mod mastodon;
mod owners;
mod timelines;
mod tls;
mod x;

#[derive(Debug, Clone)]
pub struct HttpPlatforms {
    http: tls::LazyClient,
    endpoints: Endpoints,
    timeout: Duration,
    /// Client credentials for refreshing tokens (`oauth`).
    oauth: oauth::OAuthClientSource,
    /// The platforms' consent pages, for connect links (`authorize`).
    consent_pages: authorize::ConsentPages,
}

/// What every call of one publish needs; the media travel apart, since their uploads consume
/// them.
#[derive(Debug, Clone, Copy)]
struct Account<'a> {
    external_id: &'a str,
    token: &'a SecretString,
    text: &'a str,
    /// The variant's step, the same in every attempt (Mastodon's `Idempotency-Key`), and
    /// when the post was due (with the key, Bluesky's record key).
    idempotency_key: &'a str,
    due_at: OffsetDateTime,
    /// What this step kept between attempts (Instagram's container, a resumable upload's
    /// checkpoint).
    progress: &'a dyn StepProgress,
    /// When a resumable upload stops starting chunks.
    uploads_until: OffsetDateTime,
    options: &'a TargetOptions,
}

/// For calls made for no variant (a lookup).
static NO_OPTIONS: TargetOptions = TargetOptions {
    linkedin: None,
    facebook: None,
    x: None,
};

/// "X answered 400: ..." for a post, "X answered 400 to the media upload: ..." for an upload.
const POST: &str = "";
const UPLOAD: &str = " to the media upload";

impl HttpPlatforms {
    /// `timeout` bounds a whole request; past it the outcome is ambiguous. An upload gets
    /// longer, by its size (`upload_allowance`).
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Self {
        let http = tls::LazyClient::new(move |builder| {
            builder
                .timeout(timeout)
                .connect_timeout(Duration::from_secs(3).min(timeout))
        });
        Self {
            http,
            endpoints,
            timeout,
            oauth: oauth::OAuthClientSource::Fixed(oauth::OAuthClients::default()),
            consent_pages: authorize::ConsentPages::default(),
        }
    }

    /// The OAuth clients token refreshes authenticate with.
    /// The consent pages at other addresses (the fake platforms').
    pub fn with_consent_pages(mut self, pages: authorize::ConsentPages) -> Self {
        self.consent_pages = pages;
        self
    }

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
}

/// A media file as a multipart part, streamed with its length.
fn media_part(upload: MediaUpload<'_>) -> Result<Part, PlatformError> {
    let a = upload.attachment;
    let content = upload.into_content()?;
    Part::stream_with_length(reqwest::Body::wrap_stream(content.chunks), content.size)
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
            reply_to,
            idempotency_key,
            due_at,
            progress,
            uploads_until,
            options,
            ..
        } = request;
        let account = Account {
            external_id,
            token: access_token,
            text,
            idempotency_key,
            due_at,
            progress,
            uploads_until,
            options,
        };
        if let Some(parent) = reply_to {
            return self.publish_follow_up(platform, account, parent).await;
        }
        match platform {
            Platform::X => self.publish_x(account, media).await,
            Platform::Facebook => self.publish_facebook(account, media).await,
            Platform::Linkedin => self.publish_linkedin(account, media).await,
            Platform::Mastodon => self.publish_mastodon(account, media, None).await,
            Platform::Bluesky => self.publish_bluesky(account, media, None).await,
            Platform::Instagram => self.publish_instagram(account, media).await,
        }
    }

    async fn delete_post(
        &self,
        request: herald_domain::publishing::platform::DeleteRequest<'_>,
    ) -> Result<(), PlatformError> {
        self.delete(request).await
    }

    async fn edit_post(
        &self,
        request: herald_domain::publishing::platform::EditRequest<'_>,
    ) -> Result<(), PlatformError> {
        self.edit(request).await
    }

    /// Searches the account's latest 100 posts (for a follow-up: its answers to the parent)
    /// for the exact text, created since `since` (one without a readable time still matches on
    /// its text).
    async fn find_post(
        &self,
        request: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        let posts = match request.reply_to {
            Some(parent) => self.recent_answers(&request, parent).await?,
            None => self.recent_posts(&request).await?,
        };
        Ok(posts
            .into_iter()
            .find(|(_, text, created)| {
                same_text(request.platform, text, request.text)
                    && created.is_none_or(|c| c >= request.since)
            })
            .map(|(id, _, _)| PublishedPost::new(id)))
    }
}

/// Whether a post read back is the text Herald sent. Mastodon gives statuses back as HTML
/// (`mastodon::status_text`), which keeps words but not every blank line, and shows a remote
/// mention without its domain: there, runs of white space compare as one space, and mentions
/// as their local part.
fn same_text(platform: Platform, read: &str, sent: &str) -> bool {
    use herald_domain::publishing::text::local_mentions;
    match platform {
        Platform::Mastodon => {
            let (read, sent) = (local_mentions(read), local_mentions(sent));
            read.split_whitespace().eq(sent.split_whitespace())
        }
        _ => read == sent,
    }
}

fn published(id: &str, headers: &HeaderMap) -> PublishedPost {
    PublishedPost {
        platform_post_id: id.to_owned(),
        signal: rate_signal(headers),
    }
}
