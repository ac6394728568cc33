//! What a file is, by its content: type by magic bytes, dimensions from the image header.

use serde::Serialize;
use std::fmt;
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
