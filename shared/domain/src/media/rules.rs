//! What each platform accepts, and the one check that lists every way a post's media breaks it.

use super::*;
use crate::ids::MediaId;
use crate::model::Platform;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

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
    /// The fewest media a post must carry (Instagram posts nothing without an image or a
    /// video).
    pub min_items: usize,
    /// Types that must be a post's only media.
    pub alone: &'static [MediaType],
    /// The platform fetches each file itself from a short-lived link (Instagram), so the
    /// publisher uploads nothing and its time limit does not bound the file's size.
    pub fetched: bool,
    /// Videos go up in chunks whose progress is kept (X's chunked upload, Facebook's
    /// resumable upload), continuing in the next invocation where one runs out: the
    /// publisher's time limit bounds one chunk, not the file.
    pub resumable_video: bool,
    /// The longest alt text an image may have there, in characters (X 1,000, Mastodon 1,500,
    /// Bluesky 2,000 (Bluesky's app), LinkedIn 4,086; Facebook and Instagram document none:
    /// Herald takes 1,000).
    pub alt_text_chars: usize,
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
    min_items: 0,
    alone: &[MediaType::Gif, MediaType::Mp4, MediaType::Mov],
    fetched: false,
    resumable_video: true,
    alt_text_chars: 1000,
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
    min_items: 0,
    alone: &[MediaType::Mp4, MediaType::Mov],
    fetched: false,
    resumable_video: true,
    alt_text_chars: 1000,
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
    min_items: 0,
    alone: &[MediaType::Pdf],
    fetched: false,
    resumable_video: false,
    alt_text_chars: 4086,
};

/// Mastodon (its defaults): images (JPEG, PNG, WebP) up to 16 MB, GIFs up to 16 MB (turned
/// into a silent video), video (MP4, MOV) up to 99 MB; up to four images, or one GIF, or one
/// video.
pub const MASTODON_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::Mastodon,
    accepts: &[
        (MediaType::Jpeg, 16 * MB),
        (MediaType::Png, 16 * MB),
        (MediaType::Webp, 16 * MB),
        (MediaType::Gif, 16 * MB),
        (MediaType::Mp4, 99 * MB),
        (MediaType::Mov, 99 * MB),
    ],
    min_image: None,
    max_items: 4,
    min_items: 0,
    alone: &[MediaType::Gif, MediaType::Mp4, MediaType::Mov],
    fetched: false,
    resumable_video: false,
    alt_text_chars: 1500,
};

/// Bluesky (`app.bsky.embed.images`): images (JPEG, PNG, WebP) up to 1,000,000 bytes (the
/// lexicon's limit, not a MB); up to four. Its video embed is not supported by Herald yet.
pub const BLUESKY_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::Bluesky,
    accepts: &[
        (MediaType::Jpeg, 1_000_000),
        (MediaType::Png, 1_000_000),
        (MediaType::Webp, 1_000_000),
    ],
    min_image: None,
    max_items: 4,
    min_items: 0,
    alone: &[],
    fetched: false,
    resumable_video: false,
    alt_text_chars: 2000,
};

/// Instagram (the Content Publishing API): JPEG images up to 8 MB, video (MP4, MOV, published
/// as a Reel alone or as a carousel item) up to 300 MB; one to ten (a carousel). Instagram
/// fetches each file itself from a short-lived link, so no upload runs in the publisher.
pub const INSTAGRAM_MEDIA: PlatformMediaRules = PlatformMediaRules {
    platform: Platform::Instagram,
    accepts: &[
        (MediaType::Jpeg, 8 * MB),
        (MediaType::Mp4, 300 * MB),
        (MediaType::Mov, 300 * MB),
    ],
    min_image: None,
    max_items: 10,
    min_items: 1,
    alone: &[],
    fetched: true,
    resumable_video: false,
    alt_text_chars: 1000,
};

impl PlatformMediaRules {
    pub fn of(platform: Platform) -> &'static PlatformMediaRules {
        match platform {
            Platform::X => &X_MEDIA,
            Platform::Facebook => &FACEBOOK_MEDIA,
            Platform::Linkedin => &LINKEDIN_MEDIA,
            Platform::Mastodon => &MASTODON_MEDIA,
            Platform::Bluesky => &BLUESKY_MEDIA,
            Platform::Instagram => &INSTAGRAM_MEDIA,
        }
    }

    /// The most bytes a file of `media_type` may have; `None` when it is not accepted at all.
    pub fn max_bytes(&self, media_type: MediaType) -> Option<u64> {
        self.accepts
            .iter()
            .find(|(t, _)| *t == media_type)
            .map(|(_, max)| *max)
    }

    /// How a file of `media_type` reaches this platform.
    pub fn carriage(&self, media_type: MediaType) -> Carriage {
        if self.fetched {
            Carriage::Fetched
        } else if self.resumable_video && media_type.kind() == super::MediaKind::Video {
            Carriage::Chunked
        } else {
            Carriage::Uploaded
        }
    }

    pub fn accepted_types(&self) -> Vec<MediaType> {
        self.accepts.iter().map(|(t, _)| *t).collect()
    }
}

/// How a media file reaches a platform, which decides how much of the publisher's time it
/// takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carriage {
    /// Uploaded whole in one invocation.
    Uploaded,
    /// Uploaded a chunk at a time, continuing across invocations from its kept progress.
    Chunked,
    /// Fetched by the platform itself from a signed link.
    Fetched,
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
    /// The platform publishes nothing without media, and the post has none.
    Required,
    NotAlone,
    ExpiresBeforePublish,
    /// Creating the media would take the tenant past its quota of objects.
    QuotaObjects,
    /// ... or of bytes.
    QuotaBytes,
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
            MediaRule::Required => "media_required",
            MediaRule::NotAlone => "not_alone",
            MediaRule::ExpiresBeforePublish => "expires_before_publish",
            MediaRule::QuotaObjects => "quota_objects",
            MediaRule::QuotaBytes => "quota_bytes",
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
            (MediaRule::Required, Some(Measure::Count(min)), _) => format!(
                "is empty; a {on}post needs at least {min} image or video"
            ),
            (MediaRule::NotAlone, _, Some(Measure::Type(t))) => {
                format!("is {t}, which must be the only media of a {on}post")
            }
            (MediaRule::ExpiresBeforePublish, Some(Measure::Time(at)), _) => format!(
                "is kept until {}, before the post is scheduled; upload it again",
                at.date()
            ),
            (MediaRule::QuotaObjects, Some(Measure::Count(max)), _) => format!(
                "the tenant already holds {max} media, its quota; media are deleted {} days after creation",
                MEDIA_RETENTION.whole_days()
            ),
            (MediaRule::QuotaBytes, Some(Measure::Bytes(max)), Some(Measure::Bytes(total))) => {
                format!(
                    "would take the tenant's media to {total} bytes; its quota is {max} bytes ({})",
                    human(*max)
                )
            }
            (rule, _, _) => rule.as_str().replace('_', " "),
        }
    }
}

pub(super) fn mimes(types: &[MediaType]) -> String {
    types
        .iter()
        .map(|t| t.mime())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn human(bytes: u64) -> String {
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
    if media.len() < rules.min_items {
        push(
            None,
            None,
            Some(platform),
            MediaRule::Required,
            Some(Measure::Count(rules.min_items)),
            Some(Measure::Count(media.len())),
        );
    }
    found
}
