//! The URLs X shortens to t.co (each then counts 23), found as twitter-text's extractor finds
//! them, written by hand and kept to what counting needs.
//!
//! A URL is `http://` or `https://` (any case) or, for ASCII domains, nothing; then a domain
//! whose last label is a top-level domain, an optional port, path and query. As in
//! twitter-text, a candidate whose domain breaks DNS rules (a label over 63 characters once
//! punycode-encoded, a label starting or ending with `-`, `_` outside subdomains) or that is
//! over 4,096 characters is no URL at all, and nothing inside it is looked at again.
//!
//! Known differences from the reference, none of which its weighted-length conformance cases
//! exercise: top-level domains are a short list of generic ones plus any two ASCII letters
//! (country codes) and any internationalized one, not IANA's full list; IP-address hosts,
//! user info and t.co's special path rule are not recognized.

use std::ops::Range;

const MAX_URL_LENGTH: usize = 4096;
const MAX_LABEL_LENGTH: usize = 63;
/// Generic top-level domains people write without a protocol most often.
const GENERIC_TLDS: &[&str] = &[
    "aero", "app", "art", "asia", "biz", "blog", "cat", "cloud", "club", "com", "coop", "design",
    "dev", "edu", "email", "gov", "info", "int", "jobs", "live", "mil", "mobi", "museum", "name",
    "net", "news", "online", "org", "page", "post", "pro", "shop", "site", "store", "tech", "tel",
    "travel", "xxx", "xyz",
];

/// Every URL in `text`, as byte ranges, in order.
pub fn extract_urls(text: &str) -> Vec<Range<usize>> {
    let mut urls = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        match candidate_at(text, pos) {
            Some(Candidate { end, valid: true }) => {
                urls.push(pos..end);
                pos = end;
            }
            Some(Candidate { end, valid: false }) => pos = end,
            None => pos += text[pos..].chars().next().map_or(1, char::len_utf8),
        }
    }
    urls
}

struct Candidate {
    end: usize,
    valid: bool,
}

/// A URL-shaped run starting at `pos`, valid or not; `None` when nothing URL-like starts there.
fn candidate_at(text: &str, pos: usize) -> Option<Candidate> {
    let before = text[..pos].chars().next_back();
    if before
        .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '＠' | '$' | '#' | '＃'))
    {
        return None;
    }
    let rest = &text[pos..];
    let scheme = ["https://", "http://"].into_iter().find(|s| {
        rest.get(..s.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(s))
    });
    let host_start = pos + scheme.map_or(0, str::len);
    if scheme.is_none() && before.is_some_and(|c| matches!(c, '-' | '_' | '.' | '/')) {
        return None;
    }
    let host_run = host_run(&text[host_start..], scheme.is_some());
    if host_run == 0 {
        return None;
    }
    let labels: Vec<&str> = text[host_start..host_start + host_run].split('.').collect();
    let Some(domain_labels) = domain_length(&labels) else {
        // No top-level domain: not URL-like, unless a scheme said it was meant to be one.
        return scheme.map(|_| Candidate {
            end: host_start + host_run,
            valid: false,
        });
    };
    let host = &labels[..domain_labels];
    let host_end = host_start + host.iter().map(|l| l.len() + 1).sum::<usize>() - 1;
    let end = host_end + tail_length(&text[host_end..]);
    let valid = host_is_valid(host) && url_length(&text[pos..end], host) <= MAX_URL_LENGTH;
    Some(Candidate { end, valid })
}

/// Bytes of labels and dots a host can be made of (ASCII only without a scheme).
fn host_run(s: &str, unicode: bool) -> usize {
    s.char_indices()
        .find(|&(_, c)| {
            let domain_char = c.is_ascii_alphanumeric()
                || matches!(c, '-' | '_' | '.')
                || (unicode && !c.is_ascii() && c.is_alphanumeric());
            !domain_char
        })
        .map_or(s.len(), |(at, _)| at)
}

/// How many labels make the domain: the longest run of two or more non-empty labels whose last
/// is a top-level domain.
fn domain_length(labels: &[&str]) -> Option<usize> {
    let usable = labels.iter().take_while(|l| !l.is_empty()).count();
    (2..=usable).rev().find(|&n| is_tld(labels[n - 1]))
}

fn is_tld(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    (label.len() == 2 && label.bytes().all(|b| b.is_ascii_alphabetic()))
        || GENERIC_TLDS.contains(&lower.as_str())
        || (lower.starts_with("xn--") && lower.len() > 4)
        || (!label.is_ascii() && label.chars().all(char::is_alphabetic))
}

fn host_is_valid(host: &[&str]) -> bool {
    let last_two = host.len().saturating_sub(2);
    host.iter().enumerate().all(|(i, label)| {
        !label.starts_with('-')
            && !label.ends_with('-')
            && (i < last_two || !label.contains('_'))
            && encoded_length(label).is_some_and(|n| n <= MAX_LABEL_LENGTH)
    })
}

/// A label's length in DNS: ASCII as it is, anything else punycode-encoded with `xn--`.
fn encoded_length(label: &str) -> Option<usize> {
    if label.is_ascii() {
        return Some(label.len());
    }
    idna::punycode::encode_str(&label.to_lowercase()).map(|p| p.len() + 4)
}

/// The URL's length as twitter-text checks it: the scheme counted twice (it adds the protocol
/// to a URL that already carries one), the host punycode-encoded.
fn url_length(url: &str, host: &[&str]) -> usize {
    let utf16 = |s: &str| s.encode_utf16().count();
    let raw_host: usize = host.iter().map(|l| utf16(l) + 1).sum::<usize>() - 1;
    let encoded_host: usize = host
        .iter()
        .map(|l| encoded_length(l).unwrap_or(MAX_URL_LENGTH) + 1)
        .sum::<usize>()
        - 1;
    let scheme = url.find("://").map_or("http://".len(), |i| i + 3);
    scheme + utf16(url) - raw_host + encoded_host
}

/// Bytes of port, path and query after the host.
fn tail_length(s: &str) -> usize {
    let mut at = 0;
    if let Some(port) = s.strip_prefix(':') {
        let digits = port.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            at = 1 + digits;
        }
    }
    if s[at..].starts_with('/') {
        at += run(&s[at..], is_path_char, is_path_end, true);
    }
    if s[at..].starts_with('?') {
        at += 1 + run(&s[at + 1..], is_query_char, is_query_end, false);
    }
    at
}

/// The longest run of `allowed` characters that ends on an `end` character; parentheses only
/// where `parens` allows them and they balance.
fn run(s: &str, allowed: fn(char) -> bool, end: fn(char) -> bool, parens: bool) -> usize {
    let (mut depth, mut last_end) = (0usize, 0);
    for (at, c) in s.char_indices() {
        match c {
            '(' if parens => depth += 1,
            ')' if parens && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    last_end = at + 1;
                }
                continue;
            }
            c if allowed(c) => {}
            _ => break,
        }
        if depth == 0 && end(c) {
            last_end = at + c.len_utf8();
        }
    }
    last_end
}

fn is_url_letter(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || ('\u{0400}'..='\u{04FF}').contains(&c)
        || (('\u{00C0}'..='\u{024F}').contains(&c) && c != '×' && c != '÷')
}

fn is_path_char(c: char) -> bool {
    is_url_letter(c) || "!*';:=+,.$/%#[]-\u{2013}_~&|@".contains(c)
}

fn is_path_end(c: char) -> bool {
    is_url_letter(c) || "=_#/-+".contains(c)
}

fn is_query_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!?*'();:&=+$/%#[]-_.,~|@".contains(c)
}

fn is_query_end(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_&=#/".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        extract_urls(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn finds_urls_with_and_without_a_scheme() {
        assert_eq!(
            found("see https://example.com/a/b?x=1, or test.co."),
            ["https://example.com/a/b?x=1", "test.co"]
        );
        assert_eq!(
            found("HTTP://Example.COM:8080/x_(y)"),
            ["HTTP://Example.COM:8080/x_(y)"]
        );
    }

    #[test]
    fn leaves_what_is_no_url() {
        assert!(found("version 10.0 of index.html").is_empty());
        assert!(found("mail me@example.com").is_empty());
        assert!(found("http://-bad.com http://a_b.com").is_empty());
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(found(&long_label).is_empty());
        assert_eq!(found(&format!("{}.com", "a".repeat(63))).len(), 1);
    }
}
