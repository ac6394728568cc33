//! A Mastodon status's length as Mastodon's `StatusLengthValidator` counts it: every
//! `http(s)://` URL counts 23 characters whatever its length, a remote mention
//! `@user@domain` counts as `@user`, and what is left is counted in grapheme clusters (a
//! family emoji is one). The default limit is 500; an instance may raise it, and Herald keeps
//! to the default so a status fits on any instance.

use super::x_urls::extract_urls;
use unicode_segmentation::UnicodeSegmentation;

pub const MAX_LENGTH: usize = 500;
/// What a URL counts, as on X.
const URL_LENGTH: usize = 23;

/// The length Mastodon checks against its limit.
pub fn length(text: &str) -> usize {
    let mut total = 0;
    let mut at = 0;
    // Mastodon links only URLs with a scheme; twitter-text's finder also takes bare domains.
    for url in extract_urls(text) {
        let found = &text[url.clone()];
        if !(starts_with_ignore_case(found, "http://")
            || starts_with_ignore_case(found, "https://"))
        {
            continue;
        }
        total += without_remote_domains(&text[at..url.start]) + URL_LENGTH;
        at = url.end;
    }
    total + without_remote_domains(&text[at..])
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Grapheme clusters of `text` with each remote mention's `@domain` left out.
fn without_remote_domains(text: &str) -> usize {
    local_mentions(text).graphemes(true).count()
}

/// `text` with each remote mention's `@domain` left out, as Mastodon counts it and as its
/// HTML shows it (`@user@other.social` is `@user` there). A mention is Mastodon's
/// `Account::MENTION_RE`: `@` not after a word character, `=` or `/`, a username of
/// `[a-z0-9_]` with inner `.` and `-`, then an optional `@domain`. Hand-written: a regex crate
/// for one pattern is more than the scan.
pub fn local_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find('@') {
        let head = &rest[..at];
        let prev = head.chars().next_back().or(before);
        let after = &rest[at + 1..];
        let user = username_length(after);
        let starts_mention = user > 0
            && !prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '=' || c == '/');
        out.push_str(head);
        out.push('@');
        if !starts_mention {
            before = Some('@');
            rest = after;
            continue;
        }
        let domain = after[user..]
            .strip_prefix('@')
            .map_or(0, |d| domain_length(d).map_or(0, |n| n + 1));
        out.push_str(&after[..user]);
        before = after[..user].chars().next_back();
        rest = &after[user + domain..];
    }
    out.push_str(rest);
    out
}

/// Bytes of a username at the start of `s`: `[a-z0-9_]`, then `[a-z0-9_.-]*` ending in
/// `[a-z0-9_]`.
fn username_length(s: &str) -> usize {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    if !bytes.first().copied().is_some_and(word) {
        return 0;
    }
    let run = bytes
        .iter()
        .take_while(|b| word(**b) || **b == b'.' || **b == b'-')
        .count();
    bytes[..run]
        .iter()
        .rposition(|b| word(*b))
        .map_or(0, |i| i + 1)
}

/// Bytes of a domain at the start of `s` (`[[:word:].-]+` ending in a word character), if any.
fn domain_length(s: &str) -> Option<usize> {
    let mut end = None;
    for (i, c) in s.char_indices() {
        if c.is_alphanumeric() || c == '_' {
            end = Some(i + c.len_utf8());
        } else if c != '.' && c != '-' {
            break;
        }
    }
    end
}
