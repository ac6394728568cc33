//! A post's text as each platform counts it, and the rules each platform sets on it.
//!
//! - X: twitter-text v3's weighted length (`x`, with its URL finder in `x_urls`), at most 280,
//!   and none of the code points twitter-text refuses (U+FFFE, U+FEFF, U+FFFF).
//! - LinkedIn: the Posts API's `commentary`, at most 3,000 characters.
//! - Facebook: a Page post's `message`, at most 63,206 characters.
//! - Bluesky: an `app.bsky.feed.post` record's `text`, at most 300 grapheme clusters and 3,000
//!   bytes of UTF-8 (its lexicon's two limits); a reply in a thread is a post too.
//! - Instagram: a caption, at most 2,200 characters, 30 hashtags and 20 @ tags (`instagram`,
//!   the three limits Meta's reference gives); a first comment the same.
//! - Mastodon: a status, at most 500 as Mastodon counts (`mastodon`: grapheme clusters, URLs
//!   23, remote mentions without their domain); a reply in a thread is a status too.
//!
//! Neither LinkedIn nor Meta says what a "character" is. Herald counts UTF-16 code units for
//! both: that is what their web composers count (JavaScript string length) and it is never
//! fewer than code points, so a text accepted here fits under either reading.
//!
//! Mentions and hashtags: only Instagram documents a count limit Herald can cite; no other
//! platform's are enforced. This module never rewrites text and does no I/O.

mod instagram;
mod mastodon;
mod x;
mod x_urls;
pub use x_urls::extract_urls;

pub use x::parse_tweet;
pub use x::{INVALID_CHARACTERS, MAX_WEIGHTED_LENGTH as X_MAX_WEIGHTED_LENGTH, ParsedTweet};

use crate::ids::Platform;

pub use instagram::{
    MAX_HASHTAGS as INSTAGRAM_MAX_HASHTAGS, MAX_LENGTH as INSTAGRAM_MAX_LENGTH,
    MAX_MENTIONS as INSTAGRAM_MAX_MENTIONS,
};
pub use mastodon::{MAX_LENGTH as MASTODON_MAX_LENGTH, local_mentions};

/// Bluesky's post lexicon: `maxGraphemes` 300, `maxLength` 3,000 (bytes of UTF-8).
pub const BLUESKY_MAX_GRAPHEMES: usize = 300;
pub const BLUESKY_MAX_BYTES: usize = 3_000;

pub const LINKEDIN_MAX_LENGTH: usize = 3_000;
pub const FACEBOOK_MAX_LENGTH: usize = 63_206;
/// A comment's `message.text` on LinkedIn's Comments API.
pub const LINKEDIN_COMMENT_MAX_LENGTH: usize = 1_250;
/// A Page comment's `message` on the Graph API.
pub const FACEBOOK_COMMENT_MAX_LENGTH: usize = 8_000;

/// Which text rule a post breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextRule {
    /// X: the twitter-text weighted length is over the limit.
    WeightedLength,
    /// LinkedIn, Facebook: more UTF-16 code units than the limit; Mastodon: more than its
    /// count allows.
    Length,
    /// X: a code point X refuses anywhere in a post.
    InvalidCharacter,
    /// Bluesky: more bytes of UTF-8 than its lexicon allows.
    Bytes,
    /// Instagram: more hashtags than a caption may carry.
    Hashtags,
    /// Instagram: more `@` tags than a caption may carry.
    Mentions,
}

impl TextRule {
    pub fn as_str(self) -> &'static str {
        match self {
            TextRule::WeightedLength => "weighted_length",
            TextRule::Length => "length",
            TextRule::InvalidCharacter => "invalid_character",
            TextRule::Bytes => "bytes",
            TextRule::Hashtags => "hashtags",
            TextRule::Mentions => "mentions",
        }
    }
}

/// One text rule broken on one platform, with the limit and what was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextViolation {
    pub platform: Platform,
    pub rule: TextRule,
    /// The most the platform allows (absent for `InvalidCharacter`).
    pub limit: Option<usize>,
    /// What the text measures, in the limit's unit; for `InvalidCharacter`, the UTF-16 index
    /// of the first refused code point.
    pub actual: Option<usize>,
}

impl TextViolation {
    pub fn message(&self) -> String {
        let (platform, limit, actual) = (
            self.platform,
            self.limit.unwrap_or_default(),
            self.actual.unwrap_or_default(),
        );
        match self.rule {
            TextRule::WeightedLength => format!(
                "is {actual} weighted characters; {platform} allows {limit} (URLs count 23, \
                 emoji 2, CJK and most non-Latin characters 2)"
            ),
            TextRule::Length if platform == Platform::Bluesky => {
                format!("is {actual} characters (grapheme clusters); Bluesky allows {limit}")
            }
            TextRule::Bytes => format!("is {actual} bytes of UTF-8; {platform} allows {limit}"),
            TextRule::Hashtags => format!("has {actual} hashtags; {platform} allows {limit}"),
            TextRule::Mentions => {
                format!("tags {actual} accounts with @; {platform} allows {limit}")
            }
            TextRule::Length if platform == Platform::Mastodon => format!(
                "is {actual} characters as Mastodon counts them; Mastodon allows {limit} \
                 (URLs count 23, a remote mention without its domain)"
            ),
            TextRule::Length => {
                format!("is {actual} characters (UTF-16 code units); {platform} allows {limit}")
            }
            TextRule::InvalidCharacter => format!(
                "has a character {platform} refuses (U+FFFE, U+FEFF or U+FFFF) at index {actual}"
            ),
        }
    }
}

/// Every rule `text` breaks on `platform`.
pub fn check_text(platform: Platform, text: &str) -> Vec<TextViolation> {
    match platform {
        Platform::X => check_x(text),
        Platform::Linkedin => check_length(platform, text, LINKEDIN_MAX_LENGTH),
        Platform::Facebook => check_length(platform, text, FACEBOOK_MAX_LENGTH),
        Platform::Mastodon => check_mastodon(text),
        Platform::Bluesky => check_bluesky(text),
        Platform::Instagram => check_instagram(text),
    }
}

/// Every rule a first comment breaks on `platform`: X has none (a thread answers there), so
/// its rules are a post's.
pub fn check_comment(platform: Platform, text: &str) -> Vec<TextViolation> {
    match platform {
        Platform::X => check_x(text),
        Platform::Linkedin => check_length(platform, text, LINKEDIN_COMMENT_MAX_LENGTH),
        Platform::Facebook => check_length(platform, text, FACEBOOK_COMMENT_MAX_LENGTH),
        Platform::Mastodon => check_mastodon(text),
        Platform::Bluesky => check_bluesky(text),
        Platform::Instagram => check_instagram(text),
    }
}

/// The most a post's text may measure on `platform` ([`measure`]'s unit).
pub fn limit(platform: Platform) -> usize {
    match platform {
        Platform::X => X_MAX_WEIGHTED_LENGTH,
        Platform::Linkedin => LINKEDIN_MAX_LENGTH,
        Platform::Facebook => FACEBOOK_MAX_LENGTH,
        Platform::Mastodon => MASTODON_MAX_LENGTH,
        Platform::Bluesky => BLUESKY_MAX_GRAPHEMES,
        Platform::Instagram => INSTAGRAM_MAX_LENGTH,
    }
}

/// How long `text` is on `platform`, in the unit its limit is in.
pub fn measure(platform: Platform, text: &str) -> usize {
    match platform {
        Platform::X => parse_tweet(text).weighted_length,
        Platform::Linkedin | Platform::Facebook | Platform::Instagram => utf16_length(text),
        Platform::Mastodon => mastodon::length(text),
        Platform::Bluesky => graphemes(text),
    }
}

pub fn utf16_length(text: &str) -> usize {
    text.encode_utf16().count()
}

fn check_x(text: &str) -> Vec<TextViolation> {
    let mut found = Vec::new();
    let weighted = parse_tweet(text).weighted_length;
    if weighted > X_MAX_WEIGHTED_LENGTH {
        found.push(TextViolation {
            platform: Platform::X,
            rule: TextRule::WeightedLength,
            limit: Some(X_MAX_WEIGHTED_LENGTH),
            actual: Some(weighted),
        });
    }
    if let Some(at) = text.find(INVALID_CHARACTERS) {
        found.push(TextViolation {
            platform: Platform::X,
            rule: TextRule::InvalidCharacter,
            limit: None,
            actual: Some(utf16_length(&text[..at])),
        });
    }
    found
}

fn check_mastodon(text: &str) -> Vec<TextViolation> {
    over_limit(
        Platform::Mastodon,
        mastodon::length(text),
        MASTODON_MAX_LENGTH,
    )
}

fn check_bluesky(text: &str) -> Vec<TextViolation> {
    let mut found = over_limit(Platform::Bluesky, graphemes(text), BLUESKY_MAX_GRAPHEMES);
    if text.len() > BLUESKY_MAX_BYTES {
        found.push(TextViolation {
            platform: Platform::Bluesky,
            rule: TextRule::Bytes,
            limit: Some(BLUESKY_MAX_BYTES),
            actual: Some(text.len()),
        });
    }
    found
}

fn check_instagram(text: &str) -> Vec<TextViolation> {
    let platform = Platform::Instagram;
    let mut found = check_length(platform, text, INSTAGRAM_MAX_LENGTH);
    for (rule, limit, actual) in [
        (
            TextRule::Hashtags,
            INSTAGRAM_MAX_HASHTAGS,
            instagram::hashtags(text),
        ),
        (
            TextRule::Mentions,
            INSTAGRAM_MAX_MENTIONS,
            instagram::mentions(text),
        ),
    ] {
        if actual > limit {
            found.push(TextViolation {
                platform,
                rule,
                limit: Some(limit),
                actual: Some(actual),
            });
        }
    }
    found
}

fn graphemes(text: &str) -> usize {
    use unicode_segmentation::UnicodeSegmentation;
    text.graphemes(true).count()
}

fn check_length(platform: Platform, text: &str, limit: usize) -> Vec<TextViolation> {
    over_limit(platform, utf16_length(text), limit)
}

fn over_limit(platform: Platform, actual: usize, limit: usize) -> Vec<TextViolation> {
    if actual <= limit {
        return Vec::new();
    }
    vec![TextViolation {
        platform,
        rule: TextRule::Length,
        limit: Some(limit),
        actual: Some(actual),
    }]
}

#[cfg(test)]
mod tests;
