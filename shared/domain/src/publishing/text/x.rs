//! X's weighted length: twitter-text v3's `parseTweet` with discounted emoji, written by hand.
//!
//! No maintained Rust port of twitter-text exists (the crates that do are years stale), so this
//! is the algorithm of the reference implementation, checked case for case against its own
//! conformance file (`tests/twitter_text.rs`). Its configuration is v3's:
//! `maxWeightedTweetLength` 280, `scale` 100, `defaultWeight` 200, `transformedURLLength` 23,
//! `emojiParsingEnabled` true, and weight 100 for code points 0-4351, 8192-8205, 8208-8223
//! and 8242-8247.
//!
//! The text is NFC-normalized, then read left to right: a URL counts 23, an emoji sequence
//! (one grapheme cluster, however many code points) counts 2, any other code point its range's
//! weight. Positions are UTF-16 indices, as twitter-text reports them.

use super::x_urls::extract_urls;
use icu_normalizer::ComposingNormalizerBorrowed;
use icu_properties::CodePointSetData;
use icu_properties::props::{Emoji, EmojiModifier, EmojiPresentation, RegionalIndicator};
use std::ops::Range;
use unicode_segmentation::UnicodeSegmentation;

pub const MAX_WEIGHTED_LENGTH: usize = 280;
const SCALE: usize = 100;
const DEFAULT_WEIGHT: usize = 200;
const TRANSFORMED_URL_LENGTH: usize = 23;
/// Code points (inclusive ranges) that weigh 100 rather than `DEFAULT_WEIGHT`.
const LIGHT_RANGES: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];
const LIGHT_WEIGHT: usize = 100;
/// Code points that make a post invalid wherever they are.
pub const INVALID_CHARACTERS: [char; 3] = ['\u{FFFE}', '\u{FEFF}', '\u{FFFF}'];

/// What twitter-text's `parseTweet` answers. Ranges are inclusive UTF-16 indices into the
/// text as given (before normalization).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTweet {
    pub weighted_length: usize,
    pub valid: bool,
    /// Thousandths of the limit used, rounded down.
    pub permillage: usize,
    pub display_range: (usize, usize),
    /// The part of the text that fits.
    pub valid_range: (usize, usize),
}

/// A URL or an emoji sequence: counted as one unit of a fixed weight.
struct Entity {
    bytes: Range<usize>,
    weight: usize,
}

pub fn parse_tweet(text: &str) -> ParsedTweet {
    let normalized = ComposingNormalizerBorrowed::new_nfc().normalize(text);
    let entities = entities(&normalized);
    let mut next = entities.iter().peekable();
    let (mut weighted, mut utf16, mut valid, mut valid_end) = (0, 0, true, 0);
    let mut pos = 0;
    while let Some(c) = normalized[pos..].chars().next() {
        while next.next_if(|e| e.bytes.start < pos).is_some() {}
        let (end, weight) = match next.next_if(|e| e.bytes.start == pos) {
            Some(e) => (e.bytes.end, e.weight),
            None => (pos + c.len_utf8(), char_weight(c)),
        };
        let unit = &normalized[pos..end];
        utf16 += unit.encode_utf16().count();
        weighted += weight;
        // As twitter-text does, only a unit's last code point is checked.
        valid = valid && !unit.ends_with(INVALID_CHARACTERS);
        if valid && weighted <= MAX_WEIGHTED_LENGTH * SCALE {
            valid_end = utf16 - 1;
        }
        pos = end;
    }
    let weighted_length = weighted / SCALE;
    let given_utf16 = text.encode_utf16().count();
    // Normalization can shorten the text; twitter-text shifts the valid end by the difference.
    let offset = given_utf16.saturating_sub(utf16);
    ParsedTweet {
        weighted_length,
        valid: valid && weighted_length > 0 && weighted_length <= MAX_WEIGHTED_LENGTH,
        permillage: weighted_length * 1000 / MAX_WEIGHTED_LENGTH,
        display_range: (0, given_utf16.saturating_sub(1)),
        valid_range: (0, valid_end + offset),
    }
}

/// URLs and emoji sequences by position; where both start at one place the URL counts.
fn entities(text: &str) -> Vec<Entity> {
    let urls = extract_urls(text).into_iter().map(|bytes| Entity {
        bytes,
        weight: TRANSFORMED_URL_LENGTH * SCALE,
    });
    let emoji = text
        .grapheme_indices(true)
        .filter(|(_, cluster)| is_emoji_sequence(cluster))
        .map(|(at, cluster)| Entity {
            bytes: at..at + cluster.len(),
            weight: DEFAULT_WEIGHT,
        });
    let mut all: Vec<Entity> = urls.chain(emoji).collect();
    // A stable sort keeps each URL ahead of an emoji starting where it does.
    all.sort_by_key(|e| e.bytes.start);
    all
}

fn char_weight(c: char) -> usize {
    let code = u32::from(c);
    if LIGHT_RANGES
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&code))
    {
        LIGHT_WEIGHT
    } else {
        DEFAULT_WEIGHT
    }
}

/// An emoji as twemoji (which twitter-text uses) sees one: an emoji code point shown as an
/// emoji by default, or one made an emoji by what follows it in its grapheme cluster (a
/// variation selector, keycap, skin tone, joiner, tag or second regional indicator).
fn is_emoji_sequence(cluster: &str) -> bool {
    let mut chars = cluster.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if !CodePointSetData::new::<Emoji>().contains(first) {
        return false;
    }
    let mut rest = chars.peekable();
    if rest.peek().is_none() {
        return CodePointSetData::new::<EmojiPresentation>().contains(first);
    }
    rest.any(is_emoji_continuation)
}

fn is_emoji_continuation(c: char) -> bool {
    matches!(
        c,
        '\u{FE0F}' | '\u{20E3}' | '\u{200D}' | '\u{E0020}'..='\u{E007F}'
    ) || CodePointSetData::new::<EmojiModifier>().contains(c)
        || CodePointSetData::new::<RegionalIndicator>().contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_v3_ranges() {
        assert_eq!(parse_tweet("abc").weighted_length, 3);
        // U+1100 (4352) is the first code point past the light range.
        assert_eq!(parse_tweet("\u{10FF}\u{1100}").weighted_length, 3);
        assert_eq!(parse_tweet("\u{2010}\u{2020}").weighted_length, 3);
    }

    #[test]
    fn an_emoji_sequence_counts_two_whatever_its_length() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";
        assert_eq!(parse_tweet(family).weighted_length, 2);
        assert_eq!(parse_tweet("\u{1F1FA}\u{1F1F8}").weighted_length, 2);
        // A text-style symbol counts by its code point until a selector makes it an emoji.
        assert_eq!(parse_tweet("\u{A9}").weighted_length, 1);
        assert_eq!(parse_tweet("\u{A9}\u{FE0F}").weighted_length, 2);
        assert_eq!(parse_tweet("1").weighted_length, 1);
    }

    #[test]
    fn empty_and_invalid_characters_are_not_valid() {
        assert!(!parse_tweet("").valid);
        assert!(!parse_tweet("ok\u{FFFE}").valid);
        assert!(parse_tweet("ok\u{202A}").valid);
    }
}
