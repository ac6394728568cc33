//! Checking a post against every rule at once: schedule, targets, text as each platform
//! counts it, media against each platform.

use super::*;

/// Before any publisher takes a variant, a post may still be edited or cancelled, even after
/// the dispatcher queued it: the publisher's claim requires `dispatched` and reads the content
/// it publishes, so a change that commits first always wins.
pub(super) fn post_is_changeable(post: &Post) -> bool {
    match post.status {
        PostStatus::Draft | PostStatus::PendingApproval | PostStatus::Scheduled => true,
        PostStatus::Dispatched => post.untouched(),
        PostStatus::Rejected | PostStatus::Cancelled => false,
    }
}

/// The post's targets as they stand, their media taken as already checked.
pub(super) fn targets_of(post: &Post) -> Vec<Planned> {
    post.variants
        .values()
        .map(|v| Planned {
            account_id: v.account_id.clone(),
            text: v.text_override.clone(),
            media: v
                .media_override
                .as_ref()
                .map(|m| m.iter().map(Resolved::attached).collect()),
            options: v.options.clone(),
        })
        .collect()
}

/// The post's alt texts as they stand, from its media and its targets' own.
pub(super) fn alt_text_of(post: &Post) -> BTreeMap<MediaId, String> {
    let overrides = post
        .variants
        .values()
        .filter_map(|v| v.media_override.as_ref());
    std::iter::once(&post.media)
        .chain(overrides)
        .flatten()
        .filter_map(|a| Some((a.media_id.clone(), a.alt_text.clone()?)))
        .collect()
}

/// The media a request names, as found.
pub(super) struct FoundMedia(pub(super) BTreeMap<MediaId, Resolved>);

impl FoundMedia {
    pub(super) fn list(&self, ids: &[MediaId]) -> Vec<Resolved> {
        ids.iter()
            .map(|id| {
                self.0
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| Resolved::Unknown(id.clone()))
            })
            .collect()
    }

    pub(super) fn plan(&self, targets: &[Target]) -> Vec<Planned> {
        targets
            .iter()
            .map(|t| Planned {
                account_id: t.account_id.clone(),
                text: t.text.clone(),
                media: t.media.as_deref().map(|ids| self.list(ids)),
                options: t.options.clone(),
            })
            .collect()
    }
}

/// Checks a list of media ids for repeats and length.
pub(super) fn check_media_list(field: &str, media: &[Resolved], errors: &mut Vec<FieldError>) {
    if media.len() > MAX_MEDIA_PER_POST {
        errors.push(FieldError::new(
            field,
            format!("must name at most {MAX_MEDIA_PER_POST} media"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, m) in media.iter().enumerate() {
        if !seen.insert(m.media_id()) {
            errors.push(FieldError::new(
                format!("{field}[{i}]"),
                "names the same media twice",
            ));
        }
    }
}

/// Only uploaded media end up on a post (validation has refused the rest), each with its
/// alt text.
pub(super) fn attachments(
    media: &[Resolved],
    alt_text: &BTreeMap<MediaId, String>,
) -> Vec<Attachment> {
    media
        .iter()
        .filter_map(|m| match m {
            Resolved::Uploaded { attachment, .. } => Some(Attachment {
                alt_text: alt_text.get(&attachment.media_id).cloned(),
                ..attachment.clone()
            }),
            _ => None,
        })
        .collect()
}

/// What a post says and when, as validation sees it.
pub(super) struct Content<'a> {
    pub(super) text: &'a str,
    pub(super) follow_ups: &'a FollowUps,
    pub(super) scheduled_at: OffsetDateTime,
    /// A draft's time may be past: it is checked when the draft is scheduled.
    pub(super) draft: bool,
    pub(super) alt_text: &'a BTreeMap<MediaId, String>,
}

/// Checks a post against every rule at once and lists every violation, media included:
/// each target's media (its own, or the post's) against its platform.
pub(super) fn validate(
    content: &Content<'_>,
    targets: &[Planned],
    media: &[Resolved],
    accounts: &[Account],
    now: OffsetDateTime,
) -> Result<(BTreeMap<AccountId, Variant>, Vec<Attachment>), PostError> {
    let Content {
        text, scheduled_at, ..
    } = *content;
    let mut errors = Vec::new();
    if text.trim().is_empty() {
        errors.push(FieldError::new("text", "must not be empty"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            "text",
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if scheduled_at < now - PAST_TOLERANCE && !content.draft {
        errors.push(FieldError::new("scheduled_at", "is in the past"));
    }
    if scheduled_at > now + MAX_SCHEDULE_AHEAD {
        errors.push(FieldError::new("scheduled_at", "is more than a year ahead"));
    }
    if targets.is_empty() {
        errors.push(FieldError::new("targets", "must name at least one account"));
    }
    if targets.len() > MAX_TARGETS {
        errors.push(FieldError::new(
            "targets",
            format!("must name at most {MAX_TARGETS} accounts"),
        ));
    }
    check_media_list("media", media, &mut errors);
    let mut post_media_checked = false;
    let mut carriers: Vec<(Platform, &[Resolved])> = Vec::new();
    let mut seen = HashSet::new();
    let mut variants = BTreeMap::new();
    for (i, target) in targets.iter().enumerate() {
        let field = format!("targets[{i}]");
        if !seen.insert(&target.account_id) {
            errors.push(FieldError::new(&field, "names the same account twice"));
            continue;
        }
        let Some(account) = accounts.iter().find(|a| a.id == target.account_id) else {
            errors.push(FieldError::new(
                format!("{field}.account_id"),
                "is not a connected account",
            ));
            continue;
        };
        if account.status != AccountStatus::Active {
            errors.push(FieldError::new(
                format!("{field}.account_id"),
                "must be reconnected before it can publish (needs_reauth)",
            ));
        }
        let effective = target.text.as_deref().unwrap_or(text);
        if target.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            errors.push(FieldError::new(
                format!("{field}.text"),
                "must not be empty",
            ));
        }
        let text_field = if target.text.is_some() {
            format!("{field}.text")
        } else {
            "text".to_owned()
        };
        for violation in check_text(account.platform, effective) {
            let error = FieldError::text(&text_field, violation);
            // Targets sharing the post's text on one platform: say each problem once.
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        let (media_field, own_media) = match &target.media {
            Some(own) => {
                check_media_list(&format!("{field}.media"), own, &mut errors);
                (format!("{field}.media"), own.as_slice())
            }
            None => {
                post_media_checked = true;
                ("media".to_owned(), media)
            }
        };
        for (at, violation) in check_media(own_media, account.platform, scheduled_at) {
            let name = match at {
                Some(k) => format!("{media_field}[{k}]"),
                None => media_field.clone(),
            };
            let error = FieldError::media(name, violation);
            // The post's media are checked once per target: say each problem once.
            if !errors.contains(&error) {
                errors.push(error);
            }
        }
        check_follow_ups(content.follow_ups, account.platform, &field, &mut errors);
        check_options(
            &format!("{field}.options"),
            (account.platform, &account.external_id),
            &target.options,
            effective,
            !own_media.is_empty(),
            &mut errors,
        );
        carriers.push((account.platform, own_media));
        let mut variant = Variant::new(account.id.clone(), account.platform, target.text.clone());
        variant.media_override = target
            .media
            .as_deref()
            .map(|m| attachments(m, content.alt_text));
        variant.options = target.options.clone();
        variants.insert(account.id.clone(), variant);
    }
    check_thread_parts(content.follow_ups, &mut errors);
    check_alt_text(content.alt_text, &carriers, &mut errors);
    if !post_media_checked {
        // No target carries the post's media: still say what is wrong with them anywhere.
        for (at, violation) in check_media(media, Platform::X, scheduled_at) {
            if violation.platform.is_none() {
                let name = at.map_or_else(|| "media".to_owned(), |k| format!("media[{k}]"));
                errors.push(FieldError::media(name, violation));
            }
        }
    }
    if errors.is_empty() {
        Ok((variants, attachments(media, content.alt_text)))
    } else {
        Err(PostError::Invalid(errors))
    }
}
