//! What a post publishes after itself: a thread's replies (X, Mastodon, Bluesky) or a first
//! comment on Facebook, LinkedIn and Instagram, and the rules they are held to.

use super::fields::FieldError;
use crate::model::Platform;
use crate::publishing::text::{check_comment, check_text};

/// The most replies a thread carries after its first post.
pub const MAX_THREAD_PARTS: usize = 24;
/// What a post publishes after itself: a thread's replies (X, Mastodon, Bluesky), or a first
/// comment on Facebook, LinkedIn and Instagram.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowUps {
    pub thread: Vec<String>,
    pub first_comment: Option<String>,
}

/// Whether a platform answers a post with a thread (a chain of replies), rather than a
/// first comment.
pub fn threads_on(platform: Platform) -> bool {
    matches!(
        platform,
        Platform::X | Platform::Mastodon | Platform::Bluesky
    )
}

/// A thread publishes on X, Mastodon and Bluesky only and a first comment on Facebook,
/// LinkedIn and Instagram only: a target on another platform is refused (a post that should do both is two posts).
/// Each thread part is checked against the target's rules, a first comment against its
/// comment rules.
pub(super) fn check_follow_ups(
    follow_ups: &FollowUps,
    platform: Platform,
    target: &str,
    errors: &mut Vec<FieldError>,
) {
    let mut push = |error: FieldError| {
        if !errors.contains(&error) {
            errors.push(error);
        }
    };
    if !follow_ups.thread.is_empty() && !threads_on(platform) {
        push(FieldError::new(
            "thread",
            format!(
                "is published on X, Mastodon and Bluesky only, and {target} is a {platform} account: use first_comment there, or a separate post"
            ),
        ));
    }
    if threads_on(platform) {
        for (i, part) in follow_ups.thread.iter().enumerate() {
            for violation in check_text(platform, part) {
                push(FieldError::text(format!("thread[{i}]"), violation));
            }
        }
    }
    let Some(comment) = &follow_ups.first_comment else {
        return;
    };
    if threads_on(platform) {
        push(FieldError::new(
            "first_comment",
            format!(
                "is published on Facebook, LinkedIn and Instagram only, and {target} is a {platform} account: use thread there"
            ),
        ));
        return;
    }
    for violation in check_comment(platform, comment) {
        push(FieldError::text("first_comment", violation));
    }
}

/// The thread's own rules: how many parts, none empty (each part's length is its targets'
/// rule, `check_follow_ups`).
pub(super) fn check_thread_parts(follow_ups: &FollowUps, errors: &mut Vec<FieldError>) {
    if follow_ups
        .first_comment
        .as_deref()
        .is_some_and(|c| c.trim().is_empty())
    {
        errors.push(FieldError::new("first_comment", "must not be empty"));
    }
    if !follow_ups.thread.is_empty() && follow_ups.first_comment.is_some() {
        errors.push(FieldError::new(
            "first_comment",
            "cannot go with a thread: X, Mastodon and Bluesky answer a post with a thread, Facebook, LinkedIn and Instagram with a first comment",
        ));
    }
    if follow_ups.thread.len() > MAX_THREAD_PARTS {
        errors.push(FieldError::new(
            "thread",
            format!("must have at most {MAX_THREAD_PARTS} parts"),
        ));
    }
    for (i, part) in follow_ups.thread.iter().enumerate() {
        let field = format!("thread[{i}]");
        if part.trim().is_empty() {
            errors.push(FieldError::new(&field, "must not be empty"));
        }
    }
}
