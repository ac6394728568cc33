//! The port to the social platforms. Clients classify every failure into a
//! [`PlatformError`] so the publisher decides on retries without knowing any platform.

use crate::media::{Attachment, MediaContent};
use crate::model::{FailureKind, Platform};
use crate::ports::MediaObjects;
use async_trait::async_trait;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The slowest transfer an upload is allowed before it counts as stuck: a request's time
/// limit grows by one second for every this many bytes it carries.
pub const UPLOAD_BYTES_PER_SECOND: u64 = 5 * 1024 * 1024;

/// How long uploading `size` bytes may take: the platform call's own limit plus the transfer
/// at [`UPLOAD_BYTES_PER_SECOND`]. The publisher only starts an attempt with that much time
/// left, and the platform clients give each upload that long.
pub fn upload_allowance(platform_timeout: Duration, size: u64) -> Duration {
    platform_timeout + Duration::from_secs(size.div_ceil(UPLOAD_BYTES_PER_SECOND))
}

/// The most one chunk of a resumable upload ([`MediaBody::Chunks`]) carries: X takes at most
/// 5 MB per `APPEND`; Facebook names the range it wants next, sent in pieces of at most this.
pub const UPLOAD_CHUNK_BYTES: u64 = 4 * 1024 * 1024;

/// The code of a failure of Herald's own storage during a platform call (reading the media,
/// keeping the step's progress): not the platform's, so it never counts against the account's
/// breaker.
pub const HERALD_STORE_CODE: &str = "herald_store";

#[derive(Debug)]
pub struct PublishRequest<'a> {
    pub platform: Platform,
    pub external_id: &'a str,
    pub access_token: &'a SecretString,
    pub text: &'a str,
    pub correlation_id: &'a str,
    /// Uploaded to the platform first, in this order; the post then refers to them. Each
    /// attempt gets fresh streams, so a retry uploads again (an upload is not a post).
    pub media: Vec<MediaUpload<'a>>,
    /// A follow-up: the platform post this one answers. On X a reply in the thread; on
    /// Facebook, LinkedIn and Instagram a comment on the post.
    pub reply_to: Option<&'a str>,
    /// The same for every attempt at this step of this variant, in any invocation: a platform
    /// that takes one (Mastodon's `Idempotency-Key`) answers a repeat with what the first
    /// created, and one whose clients name their records (Bluesky's record key) names it from
    /// this and `due_at`.
    pub idempotency_key: &'a str,
    /// The step's nominal time, stable across attempts like the key: when the post was due,
    /// plus a millisecond per step (so a thread's parts sort in order).
    pub due_at: time::OffsetDateTime,
    /// What the client kept of this step between attempts and invocations.
    pub progress: &'a dyn StepProgress,
    /// A resumable upload ([`MediaBody::Chunks`]) starts no chunk it could not finish by
    /// then: it keeps its progress and answers [`PlatformError::UploadContinues`], and the
    /// next invocation carries on, leaving this one the time to record that.
    pub uploads_until: time::OffsetDateTime,
    /// What the variant asks of its platform (a follow-up carries none of them).
    pub options: &'a crate::publishing::options::TargetOptions,
}

/// One media file to go with a post: what it is, and its bytes or a link to them.
#[derive(Debug)]
pub struct MediaUpload<'a> {
    pub attachment: &'a Attachment,
    pub body: MediaBody,
}

/// How a media file reaches the platform. Its `Debug` never shows a link (it reads the
/// tenant's media while it lasts).
pub enum MediaBody {
    /// Its bytes, streamed from the media store: the client uploads them.
    Bytes(MediaContent),
    /// A short-lived link to the stored file, for a platform that fetches media itself
    /// ([`PlatformMediaRules::fetched`](crate::media::PlatformMediaRules)): Instagram.
    Link(String),
    /// The stored file, read a chunk at a time, for an upload that continues across
    /// invocations ([`Carriage::Chunked`](crate::media::Carriage)): X's and Facebook's videos.
    Chunks(ChunkSource),
}

/// A stored file read by ranges, each only if the file is still the version checked when the
/// post was written.
#[derive(Clone)]
pub struct ChunkSource {
    objects: Arc<dyn MediaObjects>,
    key: String,
    etag: String,
    media_id: String,
}

crate::debug_fields!(ChunkSource, key);

impl ChunkSource {
    pub fn new(objects: Arc<dyn MediaObjects>, attachment: &Attachment) -> Self {
        Self {
            objects,
            key: attachment.key.clone(),
            etag: attachment.etag.clone(),
            media_id: attachment.media_id.to_string(),
        }
    }

    /// The file's version: a kept upload of another version is not resumed.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// `len` bytes from `from` (fewer at the end of the file). A replaced or removed file
    /// fails the upload for good; a storage outage is transient.
    pub async fn read(&self, from: u64, len: u64) -> Result<bytes::Bytes, PlatformError> {
        let gone = |what: &str| PlatformError::Permanent {
            message: format!(
                "media {} {what} while it was being uploaded; attach new media and post again",
                self.media_id
            ),
            code: None,
        };
        match self
            .objects
            .read_range(&self.key, &self.etag, from, len)
            .await
        {
            Ok(Some(bytes)) => Ok(bytes::Bytes::from(bytes)),
            Ok(None) => Err(gone("was removed from storage")),
            Err(crate::StoreError::Conflict) => Err(gone("was replaced")),
            Err(e) => Err(PlatformError::Transient {
                message: format!("reading media {} failed: {e}", self.media_id),
                code: Some(HERALD_STORE_CODE.into()),
                retry_after: None,
            }),
        }
    }
}

impl std::fmt::Debug for MediaBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaBody::Bytes(content) => f.debug_tuple("Bytes").field(content).finish(),
            MediaBody::Link(_) => f.write_str("Link(<signed>)"),
            MediaBody::Chunks(source) => f.debug_tuple("Chunks").field(source).finish(),
        }
    }
}

impl MediaUpload<'_> {
    /// The bytes to upload; a link where bytes are needed is Herald's mistake, said as such.
    pub fn into_content(self) -> Result<MediaContent, PlatformError> {
        match self.body {
            MediaBody::Bytes(content) => Ok(content),
            MediaBody::Link(_) | MediaBody::Chunks(_) => Err(PlatformError::Permanent {
                message: format!(
                    "media {} came as a link or in chunks to a platform that takes it whole",
                    self.attachment.media_id
                ),
                code: None,
            }),
        }
    }
}

/// What a platform client keeps between attempts at one step, across invocations: Instagram's
/// media container, created once and then published (a container publishes at most once, so
/// publishing the kept one again cannot make a second post, and a lost answer is looked up
/// through it).
#[async_trait]
pub trait StepProgress: Send + Sync + std::fmt::Debug {
    /// What the step kept last, if anything.
    fn kept(&self) -> Option<String>;
    /// Keeps `value` for the step, replacing what was kept. An error means it may not have
    /// been kept: nothing may be published on the strength of it.
    async fn keep(&self, value: &str) -> Result<(), PlatformError>;
}

/// Progress kept in memory only: for one-off calls (tests, tools) that make no second attempt
/// in another invocation.
#[derive(Debug, Default)]
pub struct KeptInMemory(std::sync::Mutex<Option<String>>);

impl KeptInMemory {
    pub fn with(value: impl Into<String>) -> Self {
        Self(std::sync::Mutex::new(Some(value.into())))
    }
}

#[async_trait]
impl StepProgress for KeptInMemory {
    fn kept(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn keep(&self, value: &str) -> Result<(), PlatformError> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(value.to_owned());
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPost {
    pub platform_post_id: String,
    /// What the platform said about the account's and the app's remaining budget.
    pub signal: RateSignal,
}

impl PublishedPost {
    pub fn new(platform_post_id: impl Into<String>) -> Self {
        Self {
            platform_post_id: platform_post_id.into(),
            signal: RateSignal::default(),
        }
    }
}

/// Rate-limit headers, read on every answer so Herald slows down before a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateSignal {
    /// Calls left for this account in the platform's window (`x-rate-limit-remaining`).
    pub remaining: Option<u32>,
    /// When that window resets (`x-rate-limit-reset`), as a wait from now.
    pub reset_after: Option<Duration>,
    /// The largest share (percent) of the app's budget used (Meta `X-App-Usage`,
    /// `X-Business-Use-Case-Usage`).
    pub app_usage_percent: Option<u32>,
}

/// Finding a post Herald may have created when an answer was lost.
#[derive(Debug)]
pub struct LookupRequest<'a> {
    pub platform: Platform,
    pub external_id: &'a str,
    pub access_token: &'a SecretString,
    /// The exact text that was sent: the post's fingerprint on the platform.
    pub text: &'a str,
    /// Only posts created at or after this time match.
    pub since: time::OffsetDateTime,
    /// A follow-up is looked for among the answers to this post (X: replies to it; Facebook,
    /// LinkedIn: its comments); `None`: among the account's own posts, never its answers.
    pub reply_to: Option<&'a str>,
    /// The step's key and due time, as its publish sent them (Bluesky: the record's name).
    pub idempotency_key: &'a str,
    pub due_at: time::OffsetDateTime,
    /// What the step's publish kept (Instagram: the container it published).
    pub progress: &'a dyn StepProgress,
}

/// A post's new text, and the account it is on.
#[derive(Debug, Clone, Copy)]
pub struct EditRequest<'a> {
    pub platform: Platform,
    pub external_id: &'a str,
    pub access_token: &'a SecretString,
    pub platform_post_id: &'a str,
    pub text: &'a str,
}

/// Whether the platform lets apps edit a published post's text (Facebook, LinkedIn and
/// Mastodon do; X's edits are not open to apps, Bluesky has none, Instagram's API edits no
/// caption).
pub fn edits_text(platform: Platform) -> bool {
    matches!(
        platform,
        Platform::Facebook | Platform::Linkedin | Platform::Mastodon
    )
}

/// One post (or reply, or comment) to delete, and the account it is on.
#[derive(Debug, Clone, Copy)]
pub struct DeleteRequest<'a> {
    pub platform: Platform,
    pub external_id: &'a str,
    pub access_token: &'a SecretString,
    pub platform_post_id: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlatformError {
    /// Worth trying again (5xx, connection refused before sending, 429 without guidance).
    #[error("transient platform error: {message}")]
    Transient {
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The platform asked us to slow down.
    #[error("rate limited by the platform: {message}")]
    RateLimited {
        message: String,
        code: Option<String>,
        retry_after: Option<Duration>,
    },
    /// The token is invalid or revoked: the account must be reconnected.
    #[error("the platform refused the account's token: {message}")]
    Auth {
        message: String,
        code: Option<String>,
    },
    /// The platform refused the content for good (validation, duplicate, policy).
    #[error("the platform refused the post: {message}")]
    Permanent {
        message: String,
        code: Option<String>,
    },
    /// The request was sent but no answer came back: the post may exist.
    #[error("no answer after the request was sent: {message}")]
    Ambiguous { message: String },
    /// A resumable upload went as far as this invocation allows and kept its progress: the
    /// next invocation carries on from there (no post was made). `moved`: this call got more
    /// of the file to the platform (only then may it go on without counting as a failure).
    #[error("{message}")]
    UploadContinues { message: String, moved: bool },
}

impl PlatformError {
    pub fn kind(&self) -> FailureKind {
        match self {
            PlatformError::Transient { .. } | PlatformError::UploadContinues { .. } => {
                FailureKind::Transient
            }
            PlatformError::RateLimited { .. } => FailureKind::RateLimited,
            PlatformError::Auth { .. } => FailureKind::Auth,
            PlatformError::Permanent { .. } => FailureKind::Permanent,
            PlatformError::Ambiguous { .. } => FailureKind::Ambiguous,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            PlatformError::Transient { message, .. }
            | PlatformError::RateLimited { message, .. }
            | PlatformError::Auth { message, .. }
            | PlatformError::Permanent { message, .. }
            | PlatformError::Ambiguous { message }
            | PlatformError::UploadContinues { message, .. } => message,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            PlatformError::Transient { code, .. }
            | PlatformError::RateLimited { code, .. }
            | PlatformError::Auth { code, .. }
            | PlatformError::Permanent { code, .. } => code.as_deref(),
            PlatformError::Ambiguous { .. } | PlatformError::UploadContinues { .. } => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PlatformError::Transient { retry_after, .. }
            | PlatformError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[async_trait]
pub trait PlatformClient: Send + Sync + std::fmt::Debug {
    async fn publish(&self, request: PublishRequest<'_>) -> Result<PublishedPost, PlatformError>;
    /// Deletes one of the account's posts (or replies, or comments); one already gone is
    /// deleted. A platform that lets apps delete nothing refuses permanently.
    async fn delete_post(&self, request: DeleteRequest<'_>) -> Result<(), PlatformError> {
        Err(PlatformError::Permanent {
            message: format!(
                "{} does not let apps delete posts",
                request.platform.title()
            ),
            code: None,
        })
    }
    /// Replaces the text of one of the account's posts. A platform that lets apps edit
    /// nothing refuses permanently.
    async fn edit_post(&self, request: EditRequest<'_>) -> Result<(), PlatformError> {
        Err(PlatformError::Permanent {
            message: format!("{} does not let apps edit posts", request.platform.title()),
            code: None,
        })
    }
    /// The account's post with this text created since `since`, if there is one. Used
    /// before any retry of an ambiguous attempt, never a blind retry.
    async fn find_post(
        &self,
        request: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError>;
}

/// Who a token belongs to, as the platform says (`POST /v1/accounts` asks before it stores a
/// token, so a tenant cannot connect an account that is not the token's).
#[derive(Debug, Clone)]
pub struct Ownership {
    /// Whether the token may act as the account asked for.
    pub owns: bool,
    /// The account the token is (X, Facebook: its own id; LinkedIn: the member; Bluesky: the
    /// DID), for the refusal's message, and the id the account is stored under when the
    /// platform issued tokens.
    pub actual_id: String,
    /// The account's name, when the platform gave it.
    pub name: Option<String>,
    /// Tokens the platform issued for the credential (Bluesky: an app password signs in to a
    /// session), stored instead of it; `None`: the credential is the access token itself.
    pub issued: Option<crate::secrets::token_refresh::RefreshedTokens>,
}

/// Asks a platform who an access token belongs to: X `GET /2/users/me`, Facebook
/// `GET /me` (a Page token is the Page), LinkedIn `GET /v2/userinfo` and, for an
/// organisation, the member's administrator roles (`GET /rest/organizationAcls`).
#[async_trait]
pub trait TokenOwners: Send + Sync + std::fmt::Debug {
    /// `Auth` when the platform refuses the token; `Transient`/`RateLimited` when it could not
    /// be asked.
    async fn ownership(
        &self,
        platform: Platform,
        access_token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError>;
}

/// Believes every token: for in-memory tests that connect accounts with made-up tokens.
#[derive(Debug, Default)]
pub struct TrustingOwners;

#[async_trait]
impl TokenOwners for TrustingOwners {
    async fn ownership(
        &self,
        _platform: Platform,
        _access_token: &SecretString,
        external_id: &str,
    ) -> Result<Ownership, PlatformError> {
        Ok(Ownership {
            owns: true,
            actual_id: external_id.to_owned(),
            name: None,
            issued: None,
        })
    }
}

/// Reaches no platform: for in-memory APIs, which publish nothing (every call is refused as
/// transient, a lookup finds nothing, a delete is refused).
#[derive(Debug, Default)]
pub struct NoPlatforms;

#[async_trait]
impl PlatformClient for NoPlatforms {
    async fn publish(&self, _request: PublishRequest<'_>) -> Result<PublishedPost, PlatformError> {
        Err(PlatformError::Transient {
            message: "no platform is reachable here".into(),
            code: None,
            retry_after: None,
        })
    }

    async fn find_post(
        &self,
        _request: LookupRequest<'_>,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_media_link_is_never_shown_in_debug_output() {
        let link = MediaBody::Link("https://bucket/media/k?X-Amz-Signature=abc123".into());
        assert_eq!(format!("{link:?}"), "Link(<signed>)");
    }
}
