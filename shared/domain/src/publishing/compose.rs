//! What a post publishes after itself: an X thread's replies or a first comment on Facebook
//! and LinkedIn, and the rules they are held to.

use super::fields::FieldError;
use crate::model::Platform;
use crate::publishing::text::{check_comment, check_text};

/// The most replies a thread carries after its first post.
pub const MAX_THREAD_PARTS: usize = 24;
/// What a post publishes after itself: an X thread's replies, or a first comment on Facebook
/// and LinkedIn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FollowUps {
    pub thread: Vec<String>,
    pub first_comment: Option<String>,
}

/// A thread publishes on X only and a first comment on Facebook and LinkedIn only: a target
/// on another platform is refused (a post that should do both is two posts). A first comment
/// is checked against the target's comment rules.
pub(super) fn check_follow_ups(
    follow_ups: &FollowUps,
    platform: Platform,
    target: &str,
    errors: &mut Vec<FieldError>,
) {
    if !follow_ups.thread.is_empty() && platform != Platform::X {
        errors.push(FieldError::new(
            "thread",
            format!(
                "is published on X only, and {target} is a {platform} account: use first_comment there, or a separate post"
            ),
        ));
    }
    let Some(comment) = &follow_ups.first_comment else {
        return;
    };
    if platform == Platform::X {
        errors.push(FieldError::new(
            "first_comment",
            format!(
                "is published on Facebook and LinkedIn only, and {target} is an X account: use thread there"
            ),
        ));
        return;
    }
    for violation in check_comment(platform, comment) {
        let error = FieldError::text("first_comment", violation);
        if !errors.contains(&error) {
            errors.push(error);
        }
    }
}

/// The thread's own rules: how many parts, and each part's text as X counts it.
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
            "cannot go with a thread: X answers a post with a thread, Facebook and LinkedIn with a first comment",
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
        for violation in check_text(Platform::X, part) {
            errors.push(FieldError::text(&field, violation));
        }
    }
}
