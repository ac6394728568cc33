//! What X's chunked upload and Facebook's resumable upload share: the checkpoint kept after
//! every chunk the platform took (`StepProgress`, so a later invocation carries on from it),
//! and the rule that no chunk starts unless it can finish before the call's `uploads_until`.
//!
//! A killed or timed-out invocation may have sent a chunk after its last checkpoint: the
//! resumed upload sends it again, which both platforms take (X replaces a segment by its
//! index; Facebook answers a stale offset with the one it expects, `facebook.rs`).

use super::*;
use herald_domain::publishing::platform::{ChunkSource, UPLOAD_CHUNK_BYTES};

/// A resumable upload's progress, as JSON in `StepProgress`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Checkpoint {
    /// The stored file's version: a checkpoint of another version is not resumed.
    pub(crate) etag: String,
    /// The platform's name for the upload (X's media id, Facebook's video id).
    pub(crate) id: String,
    /// Facebook's upload session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) session: Option<String>,
    /// Bytes the platform has taken.
    pub(crate) sent: u64,
    /// X: the next `APPEND`'s segment index. Facebook: where its next chunk ends.
    pub(crate) next: u64,
    /// X: `FINALIZE` was answered. Facebook: the `finish` (the post itself) was sent.
    #[serde(default)]
    pub(crate) done: bool,
    /// When the platform forgets the upload (Unix seconds), if it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<i64>,
}

/// An upload the platform may have forgotten by the time its next chunk arrives is started
/// again rather than resumed. (Small beside X's day: a margin near the expiry X names would
/// start the upload over in every invocation.)
const EXPIRY_MARGIN_SECONDS: i64 = 60;

impl Checkpoint {
    pub(crate) fn new(etag: &str, id: String) -> Self {
        Self {
            etag: etag.to_owned(),
            id,
            session: None,
            sent: 0,
            next: 0,
            done: false,
            expires_at: None,
        }
    }

    /// The step's checkpoint for this version of the file, unless it is about to expire.
    pub(crate) fn read(progress: &dyn StepProgress, etag: &str) -> Option<Self> {
        let kept: Self = serde_json::from_str(&progress.kept()?).ok()?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let fresh = kept
            .expires_at
            .is_none_or(|at| at > now + EXPIRY_MARGIN_SECONDS);
        (kept.etag == etag && fresh).then_some(kept)
    }

    pub(crate) async fn keep(&self, progress: &dyn StepProgress) -> Result<(), PlatformError> {
        let value = serde_json::to_string(self).unwrap_or_default();
        progress.keep(&value).await
    }
}

/// One upload in chunks: the file's size, where its bytes come from, and whether this call has
/// moved it on (only then may running out of time continue in another invocation).
pub(crate) struct Chunked<'a> {
    pub(crate) platform: &'static str,
    pub(crate) attachment: &'a Attachment,
    pub(crate) source: &'a ChunkSource,
    pub(crate) until: OffsetDateTime,
    pub(crate) moved: bool,
}

impl<'a> Chunked<'a> {
    /// The chunked body of `upload`, or `None` when it came whole.
    pub(crate) fn of(
        platform: &'static str,
        upload: &'a MediaUpload<'_>,
        until: OffsetDateTime,
    ) -> Option<Self> {
        match &upload.body {
            MediaBody::Chunks(source) => Some(Self {
                platform,
                attachment: upload.attachment,
                source,
                until,
                moved: false,
            }),
            _ => None,
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.attachment.size
    }

    /// The next chunk from `from`, at most `len` bytes (and at most what one call may carry),
    /// or, when it could not be sent in time, the answer that ends this call.
    pub(crate) async fn next_chunk(
        &mut self,
        timeout: Duration,
        from: u64,
        len: u64,
    ) -> Result<bytes::Bytes, PlatformError> {
        let len = len
            .min(UPLOAD_CHUNK_BYTES)
            .min(self.size().saturating_sub(from));
        if len == 0 {
            return Err(PlatformError::Transient {
                message: format!(
                    "{} asked for bytes past the end of media {}; the upload starts again",
                    self.platform, self.attachment.media_id
                ),
                code: None,
                retry_after: None,
            });
        }
        let finish_by = OffsetDateTime::now_utc() + upload_allowance(timeout, len);
        if finish_by > self.until {
            return Err(self.out_of_time(from));
        }
        self.source.read(from, len).await
    }

    /// Time ran out. With progress made this call, the upload continues in the next
    /// invocation; without, the publisher counts the delivery as failed (never against the
    /// account: the platform did nothing wrong).
    pub(crate) fn out_of_time(&self, sent: u64) -> PlatformError {
        let (sent_mb, size_mb) = (sent / MB, self.size().div_ceil(MB));
        let (media, platform) = (&self.attachment.media_id, self.platform);
        let message = if self.moved {
            format!(
                "uploading media {media} to {platform}: {sent_mb} of {size_mb} MB sent; the upload continues in the next invocation"
            )
        } else {
            format!(
                "no time was left in the invocation to upload media {media} to {platform} ({sent_mb} of {size_mb} MB sent)"
            )
        };
        PlatformError::UploadContinues {
            message,
            moved: self.moved,
        }
    }

    /// Whether a call of the platform's time limit can still start.
    pub(crate) fn call_fits(&self, timeout: Duration) -> bool {
        OffsetDateTime::now_utc() + timeout <= self.until
    }
}

const MB: u64 = 1024 * 1024;
