//! Media a tenant attaches to posts: what a file is (by its content, never by its name or
//! declared type), the limits each platform sets, and the one check that lists every way a
//! post's media breaks them.
//!
//! The flow: `POST /v1/media` records the media and hands out a presigned upload URL, and the
//! client uploads straight to storage. When a post names the media, Herald reads the object's
//! size and first bytes (type by magic bytes, image dimensions from the header), keeps the
//! result on the post as an [`Attachment`] and checks it against every target platform. The
//! publisher reads exactly that version of the object back (by its entity tag) and uploads it
//! to the platform before the post.
//!
//! This module never trusts a declared type or a file name, and never logs a file name (it
//! may be personal data).

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{ApiKeyId, MediaId, TenantId};
use crate::model::Platform;
use crate::ports::{MediaObjects, MediaRecords};
use crate::posts::{Actor, FieldError};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;
use time::{Duration, OffsetDateTime};

/// Sizes in the platforms' documentation are binary megabytes.
pub const MB: u64 = 1024 * 1024;
/// The largest file any platform accepts (a Facebook video): nothing larger may be uploaded.
pub const MAX_MEDIA_BYTES: u64 = 1024 * MB;
/// How much of an object is read to tell its type and an image's dimensions. JPEG puts its
/// frame header after the EXIF and ICC segments, which can run to hundreds of kilobytes.
pub const SNIFF_BYTES: u64 = MB;
/// How long storage keeps an upload (the bucket's lifecycle rule expires it then; a test
/// holds the two equal). A post must be published before its media expire.
pub const MEDIA_RETENTION: Duration = Duration::days(400);
/// The most media one post (or one target's override) may name.
pub const MAX_MEDIA_PER_POST: usize = 20;
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// The types Herald accepts, each recognised by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    Jpeg,
    Png,
    Gif,
    Webp,
    Mp4,
    Mov,
    Pdf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Image,
    Video,
    Document,
}

impl MediaType {
    pub const ALL: [MediaType; 7] = [
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Gif,
        MediaType::Webp,
        MediaType::Mp4,
        MediaType::Mov,
        MediaType::Pdf,
    ];

    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Gif => "image/gif",
            MediaType::Webp => "image/webp",
            MediaType::Mp4 => "video/mp4",
            MediaType::Mov => "video/quicktime",
            MediaType::Pdf => "application/pdf",
        }
    }

    /// A MIME type as a client sends it: case and parameters (`; charset=...`) do not matter.
    pub fn parse(mime: &str) -> Option<Self> {
        let essence = mime.split(';').next().unwrap_or_default().trim();
        Self::ALL
            .into_iter()
            .find(|t| t.mime().eq_ignore_ascii_case(essence))
    }

    pub fn kind(self) -> MediaKind {
        match self {
            MediaType::Jpeg | MediaType::Png | MediaType::Gif | MediaType::Webp => MediaKind::Image,
            MediaType::Mp4 | MediaType::Mov => MediaKind::Video,
            MediaType::Pdf => MediaKind::Document,
        }
    }

    /// The type of a file by its magic bytes; `None` when it is none Herald accepts.
    pub fn sniff(content: &[u8]) -> Option<Self> {
        infer::get(content).and_then(|t| Self::parse(t.mime_type()))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Dimensions {
    pub width: u32,
    pub height: u32,
}

impl Dimensions {
    /// An image's size from its header (JPEG, PNG, GIF, WebP); `None` if it cannot be read
    /// from these bytes.
    pub fn of_image(content: &[u8]) -> Option<Self> {
        let size = imagesize::blob_size(content).ok()?;
        Some(Self {
            width: u32::try_from(size.width).ok()?,
            height: u32::try_from(size.height).ok()?,
        })
    }

    /// At least as wide and as high as `min`.
    pub fn covers(self, min: Dimensions) -> bool {
        self.width >= min.width && self.height >= min.height
    }
}

impl fmt::Display for Dimensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// What Herald found in an uploaded object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub size: u64,
    /// The version of the object inspected: the publisher reads exactly this one back.
    pub etag: String,
    /// By content; `None` when the content is no type Herald accepts.
    pub detected: Option<MediaType>,
    /// Images only, from the header.
    pub dimensions: Option<Dimensions>,
    pub at: OffsetDateTime,
}

impl Inspection {
    /// Inspects an object from its first bytes (at most [`SNIFF_BYTES`]).
    pub fn of(prefix: &[u8], size: u64, etag: String, at: OffsetDateTime) -> Self {
        let detected = MediaType::sniff(prefix);
        let dimensions = detected
            .filter(|t| t.kind() == MediaKind::Image)
            .and_then(|_| Dimensions::of_image(prefix));
        Self {
            size,
            etag,
            detected,
            dimensions,
            at,
        }
    }
}

/// The media as recorded when it was created, and what its upload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub tenant_id: TenantId,
    pub id: MediaId,
    /// The object's key in the media bucket.
    pub key: String,
    /// As the client named it: shown back and used as a document's title, never logged.
    pub file_name: String,
    pub declared_type: MediaType,
    pub declared_size: u64,
    pub created_by: ApiKeyId,
    pub created_at: OffsetDateTime,
    /// When the presigned upload URL stops working.
    pub upload_expires_at: OffsetDateTime,
    /// Set once the upload has been seen.
    pub inspection: Option<Inspection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatus {
    /// Waiting for the client's upload.
    PendingUpload,
    /// The upload URL expired and nothing was uploaded: create the media again.
    Expired,
    /// Uploaded and inspected.
    Uploaded,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::PendingUpload => "pending_upload",
            MediaStatus::Expired => "expired",
            MediaStatus::Uploaded => "uploaded",
        }
    }
}

impl MediaRecord {
    /// Where a tenant's media lives in the bucket: under the tenant, never the file name.
    pub fn object_key(tenant: &TenantId, id: &MediaId) -> String {
        format!("media/{tenant}/{id}")
    }

    pub fn status(&self, now: OffsetDateTime) -> MediaStatus {
        match &self.inspection {
            Some(_) => MediaStatus::Uploaded,
            None if now >= self.upload_expires_at => MediaStatus::Expired,
            None => MediaStatus::PendingUpload,
        }
    }

    /// When storage drops the object.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.created_at + MEDIA_RETENTION
    }
}

/// Uploaded media as a post keeps it: enough to check it against a platform and for the
/// publisher to read exactly this object back, without reading the media record again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub media_id: MediaId,
    pub key: String,
    pub etag: String,
    /// By content.
    pub media_type: MediaType,
    pub size: u64,
    pub dimensions: Option<Dimensions>,
    pub file_name: String,
    pub created_at: OffsetDateTime,
}

impl Attachment {
    pub fn expires_at(&self) -> OffsetDateTime {
        self.created_at + MEDIA_RETENTION
    }
}

/// One media id a post names, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No such media for this tenant (another tenant's ids answer the same).
    Unknown(MediaId),
    /// Recorded, but nothing uploaded (yet, or ever: the upload URL expired).
    NotUploaded(MediaId),
    /// Uploaded, but its content is no type Herald accepts.
    Unrecognized {
        media_id: MediaId,
        declared: MediaType,
    },
    Uploaded {
        attachment: Attachment,
        declared: MediaType,
    },
}

impl Resolved {
    pub fn media_id(&self) -> &MediaId {
        match self {
            Resolved::Unknown(id) | Resolved::NotUploaded(id) => id,
            Resolved::Unrecognized { media_id, .. } => media_id,
            Resolved::Uploaded { attachment, .. } => &attachment.media_id,
        }
    }

    /// A post's own attachment (checked when it was attached) is taken as uploaded.
    pub fn attached(attachment: &Attachment) -> Self {
        Resolved::Uploaded {
            declared: attachment.media_type,
            attachment: attachment.clone(),
        }
    }

    pub fn resolve(record: &MediaRecord) -> Self {
        match &record.inspection {
            None => Resolved::NotUploaded(record.id.clone()),
            Some(Inspection { detected: None, .. }) => Resolved::Unrecognized {
                media_id: record.id.clone(),
                declared: record.declared_type,
            },
            Some(
                i @ Inspection {
                    detected: Some(media_type),
                    ..
                },
            ) => Resolved::Uploaded {
                declared: record.declared_type,
                attachment: Attachment {
                    media_id: record.id.clone(),
                    key: record.key.clone(),
                    etag: i.etag.clone(),
                    media_type: *media_type,
                    size: i.size,
                    dimensions: i.dimensions,
                    file_name: record.file_name.clone(),
                    created_at: record.created_at,
                },
            },
        }
    }
}

/// What a platform accepts, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformMediaRules {
    pub platform: Platform,
    /// Each accepted type and the most bytes a file of it may have.
    pub accepts: &'static [(MediaType, u64)],
    /// The smallest width and height an image may have.
    pub min_image: Option<Dimensions>,
    /// The most media of the other types one post may carry.
    pub max_items: usize,
    /// Types that must be a post's only media.
    pub alone: &'static [MediaType],
}

/// X: images (JPEG, PNG, WebP) up to 5 MB, GIFs up to 15 MB, video (MP4, MOV) up to 512 MB;
/// up to four images, or one GIF, or one video.
pub const X_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::X,
    accepts: &[
        (MediaType::Jpeg, 5 * MB),
        (MediaType::Png, 5 * MB),
        (MediaType::Webp, 5 * MB),
        (MediaType::Gif, 15 * MB),
        (MediaType::Mp4, 512 * MB),
        (MediaType::Mov, 512 * MB),
    ],
    min_image: None,
    max_items: 4,
    alone: &[MediaType::Gif, MediaType::Mp4, MediaType::Mov],
};

/// Facebook Pages: photos (JPEG, PNG, GIF) up to 4 MB and at least 600x315, video (MP4, MOV)
/// up to 1 GB; up to ten photos, or one video.
pub const FACEBOOK_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::Facebook,
    accepts: &[
        (MediaType::Jpeg, 4 * MB),
        (MediaType::Png, 4 * MB),
        (MediaType::Gif, 4 * MB),
        (MediaType::Mp4, 1024 * MB),
        (MediaType::Mov, 1024 * MB),
    ],
    min_image: Some(Dimensions {
        width: 600,
        height: 315,
    }),
    max_items: 10,
    alone: &[MediaType::Mp4, MediaType::Mov],
};

/// LinkedIn: images (JPEG, PNG, GIF) up to 5 MB and at least 552x368, documents (PDF) up to
/// 5 MB; up to twenty images, or one document.
pub const LINKEDIN_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::Linkedin,
    accepts: &[
        (MediaType::Jpeg, 5 * MB),
        (MediaType::Png, 5 * MB),
        (MediaType::Gif, 5 * MB),
        (MediaType::Pdf, 5 * MB),
    ],
    min_image: Some(Dimensions {
        width: 552,
        height: 368,
    }),
    max_items: 20,
    alone: &[MediaType::Pdf],
};

impl PlatformMediaRules {
    pub fn of(platform: Platform) -> &'static PlatformMediaRules {
        match platform {
            Platform::X => &X_MEDIA,
            Platform::Facebook => &FACEBOOK_MEDIA,
            Platform::Linkedin => &LINKEDIN_MEDIA,
        }
    }

    /// The most bytes a file of `media_type` may have; `None` when it is not accepted at all.
    pub fn max_bytes(&self, media_type: MediaType) -> Option<u64> {
        self.accepts
            .iter()
            .find(|(t, _)| *t == media_type)
            .map(|(_, max)| *max)
    }

    pub fn accepted_types(&self) -> Vec<MediaType> {
        self.accepts.iter().map(|(t, _)| *t).collect()
    }
}

/// The most bytes any platform accepts for `media_type`.
pub fn largest_accepted(media_type: MediaType) -> Option<u64> {
    Platform::ALL
        .iter()
        .filter_map(|p| PlatformMediaRules::of(*p).max_bytes(media_type))
        .max()
}

/// Which rule a media violates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaRule {
    Unknown,
    NotUploaded,
    UnrecognizedContent,
    TypeMismatch,
    TypeNotAccepted,
    TooLarge,
    TooSmall,
    DimensionsUnreadable,
    TooMany,
    NotAlone,
    ExpiresBeforePublish,
}

impl MediaRule {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaRule::Unknown => "unknown_media",
            MediaRule::NotUploaded => "not_uploaded",
            MediaRule::UnrecognizedContent => "unrecognized_content",
            MediaRule::TypeMismatch => "type_mismatch",
            MediaRule::TypeNotAccepted => "type_not_accepted",
            MediaRule::TooLarge => "too_large",
            MediaRule::TooSmall => "too_small",
            MediaRule::DimensionsUnreadable => "dimensions_unreadable",
            MediaRule::TooMany => "too_many",
            MediaRule::NotAlone => "not_alone",
            MediaRule::ExpiresBeforePublish => "expires_before_publish",
        }
    }
}

/// A limit or what was found, as the problem document shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    Bytes(u64),
    Pixels(Dimensions),
    Type(MediaType),
    Types(Vec<MediaType>),
    Count(usize),
    Time(OffsetDateTime),
}

impl Serialize for Measure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Measure::Bytes(n) => s.serialize_u64(*n),
            Measure::Pixels(d) => d.serialize(s),
            Measure::Type(t) => s.serialize_str(t.mime()),
            Measure::Types(ts) => s.collect_seq(ts.iter().map(|t| t.mime())),
            Measure::Count(n) => s.serialize_u64(*n as u64),
            Measure::Time(t) => time::serde::rfc3339::serialize(t, s),
        }
    }
}

/// One way a post's media breaks a rule: which media (none when the rule is about the whole
/// list), on which platform (none when it is wrong everywhere), the limit and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaViolation {
    pub media_id: Option<MediaId>,
    pub platform: Option<Platform>,
    pub rule: MediaRule,
    pub limit: Option<Measure>,
    pub actual: Option<Measure>,
}

impl MediaViolation {
    /// The sentence a person reads.
    pub fn message(&self) -> String {
        let on = self.platform.map_or_else(String::new, |p| format!("{p} "));
        match (self.rule, &self.limit, &self.actual) {
            (MediaRule::Unknown, _, _) => "is not a media id of this tenant".into(),
            (MediaRule::NotUploaded, _, _) => {
                "has not been uploaded (upload it to the URL POST /v1/media returned, or create the media again if that URL expired)".into()
            }
            (MediaRule::UnrecognizedContent, Some(Measure::Types(ts)), _) => format!(
                "its content is none of the accepted types ({})",
                mimes(ts)
            ),
            (MediaRule::TypeMismatch, Some(Measure::Type(declared)), Some(Measure::Type(found))) => {
                format!("was declared {declared} but its content is {found}")
            }
            (MediaRule::TypeNotAccepted, Some(Measure::Types(ts)), Some(Measure::Type(t))) => {
                format!("is {t}; {on}accepts {}", mimes(ts))
            }
            (MediaRule::TooLarge, Some(Measure::Bytes(max)), Some(Measure::Bytes(size))) => {
                format!("is {size} bytes; {on}accepts at most {max} bytes ({})", human(*max))
            }
            (MediaRule::TooSmall, Some(Measure::Pixels(min)), Some(Measure::Pixels(found))) => {
                format!("is {found} pixels; {on}needs images of at least {min}")
            }
            (MediaRule::DimensionsUnreadable, Some(Measure::Pixels(min)), _) => format!(
                "its dimensions cannot be read from the file; {on}needs images of at least {min}"
            ),
            (MediaRule::TooMany, Some(Measure::Count(max)), Some(Measure::Count(n))) => {
                format!("names {n} media; {on}accepts at most {max} in one post")
            }
            (MediaRule::NotAlone, _, Some(Measure::Type(t))) => {
                format!("is {t}, which must be the only media of a {on}post")
            }
            (MediaRule::ExpiresBeforePublish, Some(Measure::Time(at)), _) => format!(
                "is kept until {}, before the post is scheduled; upload it again",
                at.date()
            ),
            (rule, _, _) => rule.as_str().replace('_', " "),
        }
    }
}

fn mimes(types: &[MediaType]) -> String {
    types
        .iter()
        .map(|t| t.mime())
        .collect::<Vec<_>>()
        .join(", ")
}

fn human(bytes: u64) -> String {
    if bytes.is_multiple_of(MB) {
        if bytes >= 1024 * MB && bytes.is_multiple_of(1024 * MB) {
            format!("{} GB", bytes / (1024 * MB))
        } else {
            format!("{} MB", bytes / MB)
        }
    } else {
        format!("{bytes} bytes")
    }
}

/// Checks the media one post variant carries against its platform and lists every violation:
/// per media (unknown, not uploaded, content that is no accepted type or not the declared
/// one, a type the platform refuses, too large, too small, expiring before the post goes
/// out) and for the list (too many, a type that must stand alone). Each violation comes with
/// the media's position in `media`, or `None` when it concerns the whole list.
pub fn check_media(
    media: &[Resolved],
    platform: Platform,
    scheduled_at: OffsetDateTime,
) -> Vec<(Option<usize>, MediaViolation)> {
    let rules = PlatformMediaRules::of(platform);
    let mut found = Vec::new();
    let mut push = |i: Option<usize>,
                    media_id: Option<&MediaId>,
                    platform: Option<Platform>,
                    rule: MediaRule,
                    limit: Option<Measure>,
                    actual: Option<Measure>| {
        found.push((
            i,
            MediaViolation {
                media_id: media_id.cloned(),
                platform,
                rule,
                limit,
                actual,
            },
        ));
    };
    let mut usable: Vec<(usize, &Attachment)> = Vec::new();
    for (i, item) in media.iter().enumerate() {
        let id = item.media_id();
        match item {
            Resolved::Unknown(_) => push(Some(i), Some(id), None, MediaRule::Unknown, None, None),
            Resolved::NotUploaded(_) => {
                push(Some(i), Some(id), None, MediaRule::NotUploaded, None, None)
            }
            Resolved::Unrecognized { .. } => push(
                Some(i),
                Some(id),
                None,
                MediaRule::UnrecognizedContent,
                Some(Measure::Types(MediaType::ALL.to_vec())),
                None,
            ),
            Resolved::Uploaded {
                attachment,
                declared,
            } => {
                let t = attachment.media_type;
                if *declared != t {
                    push(
                        Some(i),
                        Some(id),
                        None,
                        MediaRule::TypeMismatch,
                        Some(Measure::Type(*declared)),
                        Some(Measure::Type(t)),
                    );
                }
                if attachment.expires_at() <= scheduled_at {
                    push(
                        Some(i),
                        Some(id),
                        None,
                        MediaRule::ExpiresBeforePublish,
                        Some(Measure::Time(attachment.expires_at())),
                        Some(Measure::Time(scheduled_at)),
                    );
                }
                let Some(max) = rules.max_bytes(t) else {
                    push(
                        Some(i),
                        Some(id),
                        Some(platform),
                        MediaRule::TypeNotAccepted,
                        Some(Measure::Types(rules.accepted_types())),
                        Some(Measure::Type(t)),
                    );
                    continue;
                };
                if attachment.size > max {
                    push(
                        Some(i),
                        Some(id),
                        Some(platform),
                        MediaRule::TooLarge,
                        Some(Measure::Bytes(max)),
                        Some(Measure::Bytes(attachment.size)),
                    );
                }
                if let (Some(min), MediaKind::Image) = (rules.min_image, t.kind()) {
                    match attachment.dimensions {
                        Some(d) if d.covers(min) => {}
                        Some(d) => push(
                            Some(i),
                            Some(id),
                            Some(platform),
                            MediaRule::TooSmall,
                            Some(Measure::Pixels(min)),
                            Some(Measure::Pixels(d)),
                        ),
                        None => push(
                            Some(i),
                            Some(id),
                            Some(platform),
                            MediaRule::DimensionsUnreadable,
                            Some(Measure::Pixels(min)),
                            None,
                        ),
                    }
                }
                usable.push((i, attachment));
            }
        }
    }
    if media.len() > 1 {
        for (i, a) in &usable {
            if rules.alone.contains(&a.media_type) {
                push(
                    Some(*i),
                    Some(&a.media_id),
                    Some(platform),
                    MediaRule::NotAlone,
                    Some(Measure::Count(1)),
                    Some(Measure::Type(a.media_type)),
                );
            }
        }
    }
    if media.len() > rules.max_items {
        push(
            None,
            None,
            Some(platform),
            MediaRule::TooMany,
            Some(Measure::Count(rules.max_items)),
            Some(Measure::Count(media.len())),
        );
    }
    found
}

/// A presigned upload: the client sends the bytes with exactly this method and these headers
/// before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: OffsetDateTime,
}

/// An object's size and version as storage reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub etag: String,
}

/// An object's bytes as a stream, so a 1 GB video never has to fit in memory.
pub struct MediaContent {
    pub size: u64,
    pub chunks: futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>,
}

impl fmt::Debug for MediaContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaContent")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl MediaContent {
    /// Content already in memory, in one chunk.
    pub fn from_bytes(bytes: impl Into<bytes::Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            size: bytes.len() as u64,
            chunks: Box::pin(futures::stream::once(async move { Ok(bytes) })),
        }
    }

    /// Reads the whole stream (tests and small files only).
    pub async fn collect(self) -> Result<Vec<u8>, StoreError> {
        use futures::StreamExt;
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        let mut chunks = self.chunks;
        while let Some(chunk) = chunks.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// What `POST /v1/media` asks for.
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub content_type: String,
    pub file_name: String,
    pub size: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("media not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creating media and finding out what was uploaded.
#[derive(Clone)]
pub struct MediaService {
    pub records: Arc<dyn MediaRecords>,
    pub objects: Arc<dyn MediaObjects>,
    pub clock: Arc<dyn Clock>,
    /// How long an upload URL works (default 15 minutes).
    pub upload_url_ttl: std::time::Duration,
}

impl fmt::Debug for MediaService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaService")
            .field("upload_url_ttl", &self.upload_url_ttl)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_UPLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl MediaService {
    /// Records new media and presigns its upload. Nothing is stored when the request is
    /// invalid; every problem is listed.
    pub async fn create(
        &self,
        actor: &Actor,
        new: NewMedia,
    ) -> Result<(MediaRecord, PresignedUpload), MediaError> {
        let mut errors = Vec::new();
        let declared = MediaType::parse(&new.content_type);
        match declared {
            None => errors.push(FieldError::new(
                "content_type",
                format!("must be one of {}", mimes(&MediaType::ALL)),
            )),
            Some(t) => {
                let largest = largest_accepted(t).unwrap_or(0);
                if new.size > largest {
                    errors.push(FieldError::new(
                        "size",
                        format!(
                            "is {} bytes; no platform accepts {t} larger than {largest} bytes ({})",
                            new.size,
                            human(largest)
                        ),
                    ));
                }
            }
        }
        if new.size == 0 {
            errors.push(FieldError::new("size", "must be at least 1 byte"));
        }
        let name = new.file_name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_FILE_NAME_CHARS
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            errors.push(FieldError::new(
                "file_name",
                format!(
                    "must be 1 to {MAX_FILE_NAME_CHARS} characters, without a path or control characters"
                ),
            ));
        }
        let Some(declared) = declared.filter(|_| errors.is_empty()) else {
            return Err(MediaError::Invalid(errors));
        };
        let now = self.clock.now();
        let id = MediaId::generate();
        let key = MediaRecord::object_key(&actor.tenant_id, &id);
        let upload = self
            .objects
            .presign_upload(&key, declared, new.size, self.upload_url_ttl, now)
            .await?;
        let record = MediaRecord {
            tenant_id: actor.tenant_id.clone(),
            id,
            key,
            file_name: name.to_owned(),
            declared_type: declared,
            declared_size: new.size,
            created_by: actor.key_id.clone(),
            created_at: now,
            upload_expires_at: upload.expires_at,
            inspection: None,
        };
        self.records.insert_media(&record).await?;
        Ok((record, upload))
    }

    /// The media as it stands now: an upload since the last look is inspected and recorded.
    pub async fn get(&self, tenant: &TenantId, id: &MediaId) -> Result<MediaRecord, MediaError> {
        let records = self
            .records
            .get_media(tenant, std::slice::from_ref(id))
            .await?;
        let record = records.into_iter().next().ok_or(MediaError::NotFound)?;
        Ok(self.refresh(record).await?)
    }

    /// Every id, as found now (one read of the records, then one look at each object, all at
    /// once). Unknown ids, and ids of another tenant, come back `Unknown`.
    pub async fn resolve(
        &self,
        tenant: &TenantId,
        ids: &[MediaId],
    ) -> Result<BTreeMap<MediaId, Resolved>, StoreError> {
        let mut out: BTreeMap<MediaId, Resolved> = ids
            .iter()
            .map(|id| (id.clone(), Resolved::Unknown(id.clone())))
            .collect();
        // Ids that cannot be ours are not looked up.
        let wanted: Vec<MediaId> = out
            .keys()
            .filter(|id| crate::ids::is_valid_id(id.as_str()))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(out);
        }
        let records = self.records.get_media(tenant, &wanted).await?;
        let refreshed =
            futures::future::try_join_all(records.into_iter().map(|r| self.refresh(r))).await?;
        for record in refreshed {
            out.insert(record.id.clone(), Resolved::resolve(&record));
        }
        Ok(out)
    }

    /// Looks at the object: gone or never uploaded, unchanged since its inspection, or new
    /// (then its first bytes are read and the inspection recorded).
    async fn refresh(&self, mut record: MediaRecord) -> Result<MediaRecord, StoreError> {
        let Some(object) = self.objects.head(&record.key).await? else {
            record.inspection = None;
            return Ok(record);
        };
        if record
            .inspection
            .as_ref()
            .is_some_and(|i| i.etag == object.etag && i.size == object.size)
        {
            return Ok(record);
        }
        let len = object.size.min(SNIFF_BYTES);
        let prefix = match self
            .objects
            .read_prefix(&record.key, &object.etag, len)
            .await
        {
            Ok(Some(prefix)) => prefix,
            // Replaced or removed between the two reads: report it as not uploaded for now.
            Ok(None) | Err(StoreError::Conflict) => {
                record.inspection = None;
                return Ok(record);
            }
            Err(e) => return Err(e),
        };
        let inspection = Inspection::of(&prefix, object.size, object.etag, self.clock.now());
        self.records
            .record_inspection(&record.tenant_id, &record.id, &inspection)
            .await?;
        tracing::info!(
            media_id = %record.id,
            size = inspection.size,
            detected = inspection.detected.map_or("unrecognized", MediaType::mime),
            "media inspected"
        );
        record.inspection = Some(inspection);
        Ok(record)
    }
}

/// Small, well-formed file headers for tests: each is recognised by its magic bytes, carries
/// its dimensions where it is an image, and is padded to the size asked for.
#[cfg(any(test, feature = "memory"))]
pub mod samples {
    /// A PNG: signature, IHDR (with its CRC), a private ancillary chunk as padding, IEND.
    pub fn png(width: u32, height: u32, size: usize) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        chunk(&mut out, b"IHDR", &ihdr);
        let fixed = out.len() + 12 + 12;
        chunk(&mut out, b"heRa", &vec![0; size.saturating_sub(fixed)]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A GIF89a header with its logical screen size, padded with trailer bytes.
    pub fn gif(width: u16, height: u16, size: usize) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
        out.resize(size.max(out.len() + 1), 0);
        if let Some(last) = out.last_mut() {
            *last = 0x3b;
        }
        out
    }

    /// A baseline JPEG: SOI, a JFIF APP0, a SOF0 with the dimensions, then padding and EOI.
    pub fn jpeg(width: u16, height: u16, size: usize) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        out.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.resize(size.saturating_sub(2).max(out.len()), 0);
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    /// A PDF header and trailer around padding.
    pub fn pdf(size: usize) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let tail = b"\n%%EOF\n";
        out.resize(size.saturating_sub(tail.len()).max(out.len()), b' ');
        out.extend_from_slice(tail);
        out
    }

    /// An MP4 (`ftyp` box, brand isom) padded with a `free` box.
    pub fn mp4(size: usize) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0x18];
        out.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        let pad = size.saturating_sub(out.len() + 8);
        out.extend_from_slice(&u32::try_from(pad + 8).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(b"free");
        out.resize(out.len() + pad, 0);
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    fn attachment(
        id: &str,
        media_type: MediaType,
        size: u64,
        dims: Option<(u32, u32)>,
    ) -> Resolved {
        Resolved::Uploaded {
            declared: media_type,
            attachment: Attachment {
                media_id: MediaId(id.into()),
                key: format!("media/t/{id}"),
                etag: "\"e\"".into(),
                media_type,
                size,
                dimensions: dims.map(|(width, height)| Dimensions { width, height }),
                file_name: "f".into(),
                created_at: NOW,
            },
        }
    }

    fn rules(found: &[(Option<usize>, MediaViolation)]) -> Vec<(Option<usize>, MediaRule)> {
        found.iter().map(|(i, v)| (*i, v.rule)).collect()
    }

    #[test]
    fn types_are_told_by_content_never_by_name() {
        assert_eq!(
            MediaType::sniff(&samples::png(10, 10, 100)),
            Some(MediaType::Png)
        );
        assert_eq!(
            MediaType::sniff(&samples::gif(10, 10, 100)),
            Some(MediaType::Gif)
        );
        assert_eq!(
            MediaType::sniff(&samples::jpeg(10, 10, 100)),
            Some(MediaType::Jpeg)
        );
        assert_eq!(MediaType::sniff(&samples::pdf(100)), Some(MediaType::Pdf));
        assert_eq!(MediaType::sniff(&samples::mp4(100)), Some(MediaType::Mp4));
        assert_eq!(MediaType::sniff(b"just some text, named photo.png"), None);
        assert_eq!(
            MediaType::parse("IMAGE/PNG; charset=binary"),
            Some(MediaType::Png)
        );
        assert_eq!(MediaType::parse("image/svg+xml"), None);
    }

    #[test]
    fn dimensions_come_from_the_header() {
        let d = |b: &[u8]| Dimensions::of_image(b);
        let at = |width, height| Some(Dimensions { width, height });
        assert_eq!(d(&samples::png(600, 315, 2000)), at(600, 315));
        assert_eq!(d(&samples::gif(552, 368, 64)), at(552, 368));
        assert_eq!(d(&samples::jpeg(1200, 630, 4096)), at(1200, 630));
        let inspected = Inspection::of(&samples::pdf(64), 64, "e".into(), NOW);
        assert_eq!(
            (inspected.detected, inspected.dimensions),
            (Some(MediaType::Pdf), None)
        );
    }

    #[test]
    fn a_bad_set_lists_every_violation_with_its_limit() {
        let media = vec![
            attachment("m0", MediaType::Png, 100, Some((100, 100))),
            Resolved::Uploaded {
                declared: MediaType::Png,
                attachment: match attachment("m1", MediaType::Pdf, 10, None) {
                    Resolved::Uploaded { attachment, .. } => attachment,
                    _ => unreachable!("built as uploaded"),
                },
            },
            attachment("m2", MediaType::Jpeg, 4 * MB + 1, Some((1200, 630))),
            Resolved::Unknown(MediaId("m3".into())),
            Resolved::NotUploaded(MediaId("m4".into())),
        ];
        let found = check_media(&media, Platform::Facebook, NOW);
        assert_eq!(
            rules(&found),
            vec![
                (Some(0), MediaRule::TooSmall),
                (Some(1), MediaRule::TypeMismatch),
                (Some(1), MediaRule::TypeNotAccepted),
                (Some(2), MediaRule::TooLarge),
                (Some(3), MediaRule::Unknown),
                (Some(4), MediaRule::NotUploaded),
            ]
        );
        let too_large = &found[3].1;
        assert_eq!(too_large.limit, Some(Measure::Bytes(4 * MB)));
        assert_eq!(too_large.actual, Some(Measure::Bytes(4 * MB + 1)));
        assert_eq!(too_large.platform, Some(Platform::Facebook));
        assert_eq!(
            too_large.message(),
            "is 4194305 bytes; facebook accepts at most 4194304 bytes (4 MB)"
        );
        assert_eq!(
            found[1].1.message(),
            "was declared image/png but its content is application/pdf"
        );
        assert_eq!(
            serde_json::to_value(&found[0].1.limit).unwrap(),
            serde_json::json!({"width": 600, "height": 315})
        );
    }

    #[test]
    fn each_platform_applies_its_own_numbers() {
        let png_5mb = vec![attachment("m", MediaType::Png, 5 * MB, Some((560, 370)))];
        assert_eq!(
            rules(&check_media(&png_5mb, Platform::Facebook, NOW)),
            vec![
                (Some(0), MediaRule::TooLarge),
                (Some(0), MediaRule::TooSmall)
            ]
        );
        assert!(check_media(&png_5mb, Platform::Linkedin, NOW).is_empty());
        assert!(
            check_media(&png_5mb, Platform::X, NOW).is_empty(),
            "X sets no minimum"
        );
        let gif_12mb = vec![attachment("g", MediaType::Gif, 12 * MB, Some((600, 400)))];
        assert!(check_media(&gif_12mb, Platform::X, NOW).is_empty());
        assert_eq!(
            rules(&check_media(&gif_12mb, Platform::Linkedin, NOW)),
            vec![(Some(0), MediaRule::TooLarge)]
        );
        let video = vec![attachment("v", MediaType::Mp4, 600 * MB, None)];
        assert!(check_media(&video, Platform::Facebook, NOW).is_empty());
        assert_eq!(
            rules(&check_media(&video, Platform::X, NOW)),
            vec![(Some(0), MediaRule::TooLarge)]
        );
        assert_eq!(
            rules(&check_media(&video, Platform::Linkedin, NOW)),
            vec![(Some(0), MediaRule::TypeNotAccepted)]
        );
        let pdf = vec![attachment("d", MediaType::Pdf, 5 * MB, None)];
        assert!(check_media(&pdf, Platform::Linkedin, NOW).is_empty());
        assert_eq!(
            rules(&check_media(&pdf, Platform::X, NOW)),
            vec![(Some(0), MediaRule::TypeNotAccepted)]
        );
    }

    #[test]
    fn counts_and_types_that_stand_alone() {
        let images: Vec<_> = (0..5)
            .map(|i| attachment(&format!("i{i}"), MediaType::Jpeg, 1000, Some((800, 800))))
            .collect();
        assert_eq!(
            rules(&check_media(&images, Platform::X, NOW)),
            vec![(None, MediaRule::TooMany)]
        );
        assert!(check_media(&images, Platform::Facebook, NOW).is_empty());
        let mixed = vec![
            attachment("v", MediaType::Mp4, 1000, None),
            attachment("i", MediaType::Jpeg, 1000, Some((800, 800))),
        ];
        assert_eq!(
            rules(&check_media(&mixed, Platform::X, NOW)),
            vec![(Some(0), MediaRule::NotAlone)]
        );
    }

    #[test]
    fn media_must_outlive_the_schedule() {
        let media = vec![attachment("m", MediaType::Png, 10, Some((800, 800)))];
        assert!(check_media(&media, Platform::X, NOW + Duration::days(399)).is_empty());
        assert_eq!(
            rules(&check_media(&media, Platform::X, NOW + MEDIA_RETENTION)),
            vec![(Some(0), MediaRule::ExpiresBeforePublish)]
        );
    }

    #[test]
    fn the_bucket_keeps_uploads_as_long_as_herald_assumes() {
        let template = include_str!("../../../template.yaml");
        let days = MEDIA_RETENTION.whole_days();
        assert!(
            template.contains(&format!("ExpirationInDays: {days}")),
            "template.yaml's media lifecycle rule must expire uploads after {days} days"
        );
    }

    fn any_media() -> impl Strategy<Value = Resolved> {
        (
            0usize..7,
            0u64..(1100 * MB),
            proptest::option::of((0u32..3000, 0u32..3000)),
            0usize..7,
        )
            .prop_map(|(t, size, dims, declared)| {
                let media_type = MediaType::ALL[t];
                match attachment("m", media_type, size, dims) {
                    Resolved::Uploaded { attachment, .. } => Resolved::Uploaded {
                        attachment,
                        declared: MediaType::ALL[declared],
                    },
                    other => other,
                }
            })
    }

    proptest! {
        #[test]
        fn a_file_is_refused_exactly_when_some_rule_says_so(
            media in any_media(),
            p in 0usize..3,
        ) {
            let platform = Platform::ALL[p];
            let rules = PlatformMediaRules::of(platform);
            let Resolved::Uploaded { attachment: a, declared } = &media else { unreachable!() };
            let too_large = rules.max_bytes(a.media_type).is_some_and(|max| a.size > max);
            let refused_type = rules.max_bytes(a.media_type).is_none();
            let too_small = !refused_type
                && a.media_type.kind() == MediaKind::Image
                && rules.min_image.is_some_and(|min| !a.dimensions.is_some_and(|d| d.covers(min)));
            let found = check_media(std::slice::from_ref(&media), platform, NOW);
            let has = |r: MediaRule| found.iter().any(|(_, v)| v.rule == r);
            prop_assert_eq!(has(MediaRule::TooLarge), too_large);
            prop_assert_eq!(has(MediaRule::TypeNotAccepted), refused_type);
            prop_assert_eq!(has(MediaRule::TooSmall) || has(MediaRule::DimensionsUnreadable), too_small);
            prop_assert_eq!(has(MediaRule::TypeMismatch), *declared != a.media_type);
            prop_assert_eq!(
                found.is_empty(),
                !too_large && !refused_type && !too_small && *declared == a.media_type
            );
        }

        #[test]
        fn sniffing_never_panics_and_png_headers_round_trip(
            junk in proptest::collection::vec(any::<u8>(), 0..512),
            w in 1u32..100_000,
            h in 1u32..100_000,
        ) {
            let _ = MediaType::sniff(&junk);
            let _ = Dimensions::of_image(&junk);
            let png = samples::png(w, h, 64);
            prop_assert_eq!(MediaType::sniff(&png), Some(MediaType::Png));
            prop_assert_eq!(Dimensions::of_image(&png), Some(Dimensions { width: w, height: h }));
        }
    }
}
