//! What a target may ask of its own platform beyond text and media: LinkedIn's visibility,
//! Facebook's link preview, X's reply settings. Each is declared under its platform's name,
//! and a target may only carry its own platform's block. Alt text belongs to the media (see
//! [`check_alt_text`]).

use super::fields::FieldError;
use crate::ids::{MediaId, Platform};
use crate::media::{MediaKind, PlatformMediaRules, Resolved};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest alt text Herald takes for any platform (Bluesky's); each platform's own limit
/// is in its media rules.
pub const MAX_ALT_TEXT_CHARS: usize = 2_000;

/// One target's options, each block for one platform. Stored fields a later release adds are
/// ignored when read (no `deny_unknown_fields` here: the API's input types refuse them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<LinkedInOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook: Option<FacebookOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<XOptions>,
}

impl TargetOptions {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedInOptions {
    /// Who may see the post (LinkedIn's `visibility`); absent: public.
    pub visibility: Option<Visibility>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone (`PUBLIC`).
    Public,
    /// The member's connections only (`CONNECTIONS`): a member's post, not an organisation's.
    Connections,
    /// Members signed in to LinkedIn (`LOGGED_IN`).
    LoggedIn,
}

impl Visibility {
    /// As LinkedIn's Posts API spells it.
    pub fn linkedin(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Connections => "CONNECTIONS",
            Visibility::LoggedIn => "LOGGED_IN",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacebookOptions {
    /// `true`: the text's first link goes with the post as its `link`, so Facebook shows that
    /// page's preview card. Not with media (a link post carries none).
    pub link_preview: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XOptions {
    /// Who may reply (X's `reply_settings`); absent: everyone.
    pub reply_settings: Option<ReplySettings>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplySettings {
    Following,
    MentionedUsers,
    Subscribers,
    Verified,
}

impl ReplySettings {
    /// As X's API spells it.
    pub fn x(self) -> &'static str {
        match self {
            ReplySettings::Following => "following",
            ReplySettings::MentionedUsers => "mentionedUsers",
            ReplySettings::Subscribers => "subscribers",
            ReplySettings::Verified => "verified",
        }
    }
}

/// The first link in a text (what a Facebook link preview shows): an `http(s)://` URL with a
/// dotted host, anywhere in a word, without the punctuation that ends a sentence after it or a
/// closing parenthesis it does not open itself.
pub fn first_link(text: &str) -> Option<&str> {
    text.split_whitespace().find_map(|word| {
        let start = word.find("https://").or_else(|| word.find("http://"))?;
        let mut link = &word[start..];
        loop {
            let trimmed = link.trim_end_matches(['.', ',', '!', '?', ';', ':', '"', '\'']);
            let unbalanced = trimmed.ends_with(')')
                && trimmed.matches('(').count() < trimmed.matches(')').count();
            link = match unbalanced {
                true => &trimmed[..trimmed.len() - 1],
                false => break Some(trimmed),
            };
        }
        .filter(|link| {
            let host = link.split("://").nth(1).unwrap_or_default();
            let host = host.split(['/', '?', '#']).next().unwrap_or_default();
            host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
        })
    })
}

/// Every problem of one target's options: a block for another platform, or a preview with
/// nothing to preview.
/// `account` is the target's platform and external id (a LinkedIn member is
/// `urn:li:person:…`).
pub fn check_options(
    field: &str,
    account: (Platform, &str),
    options: &TargetOptions,
    text: &str,
    carries_media: bool,
    errors: &mut Vec<FieldError>,
) {
    let blocks = [
        ("linkedin", options.linkedin.is_some(), Platform::Linkedin),
        ("facebook", options.facebook.is_some(), Platform::Facebook),
        ("x", options.x.is_some(), Platform::X),
    ];
    let (platform, external_id) = account;
    for (name, present, owner) in blocks {
        if present && owner != platform {
            errors.push(FieldError::new(
                format!("{field}.{name}"),
                format!(
                    "is for {} targets; this one is a {} account",
                    owner.title(),
                    platform.title()
                ),
            ));
        }
    }
    let visibility = options.linkedin.as_ref().and_then(|l| l.visibility);
    if visibility == Some(Visibility::Connections)
        && platform == Platform::Linkedin
        && !external_id.starts_with("urn:li:person:")
    {
        errors.push(FieldError::new(
            format!("{field}.linkedin.visibility"),
            "connections is for a member's own posts; this account is an organisation",
        ));
    }
    let preview = options.facebook.as_ref().and_then(|f| f.link_preview) == Some(true);
    if preview && platform == Platform::Facebook {
        let field = format!("{field}.facebook.link_preview");
        if first_link(text).is_none() {
            errors.push(FieldError::new(&field, "the text has no link to preview"));
        }
        if carries_media {
            errors.push(FieldError::new(field, "a link post carries no media"));
        }
    }
}

/// Every problem of a post's alt texts: each must describe an image or GIF a target carries
/// (the post's media or its own), and fit every platform that carries it (`carriers`: each
/// target's platform and media).
pub fn check_alt_text(
    alt_text: &BTreeMap<MediaId, String>,
    carriers: &[(Platform, &[Resolved])],
    errors: &mut Vec<FieldError>,
) {
    for (id, text) in alt_text {
        let field = format!("alt_text.{id}");
        if text.trim().is_empty() {
            errors.push(FieldError::new(&field, "must not be empty"));
        }
        let carried: Vec<(Platform, &Resolved)> = carriers
            .iter()
            .flat_map(|(p, media)| media.iter().map(move |m| (*p, m)))
            .filter(|(_, m)| m.media_id() == id)
            .collect();
        let Some((_, media)) = carried.first() else {
            errors.push(FieldError::new(
                &field,
                "names media no target of this post carries",
            ));
            continue;
        };
        if let Resolved::Uploaded { attachment, .. } = media
            && attachment.media_type.kind() != MediaKind::Image
        {
            errors.push(FieldError::new(
                &field,
                "alt text describes an image or a GIF",
            ));
        }
        let chars = text.chars().count();
        let mut platforms: Vec<Platform> = Vec::new();
        for (p, _) in &carried {
            if !platforms.contains(p) {
                platforms.push(*p);
            }
        }
        for platform in platforms {
            let limit = PlatformMediaRules::of(platform).alt_text_chars;
            if chars > limit {
                errors.push(FieldError::new(
                    &field,
                    format!(
                        "must be at most {limit} characters on {} (it has {chars})",
                        platform.title()
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Attachment, MediaType};

    fn account(platform: Platform, external_id: &str) -> (Platform, &str) {
        (platform, external_id)
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn image(id: &str, media_type: MediaType) -> Resolved {
        Resolved::attached(&Attachment {
            media_id: MediaId(id.into()),
            key: format!("media/t/{id}"),
            etag: "e".into(),
            media_type,
            size: 10,
            dimensions: None,
            file_name: "f".into(),
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            alt_text: None,
        })
    }

    #[test]
    fn a_block_goes_only_to_its_platform_and_a_preview_needs_a_link_and_no_media() {
        let options = TargetOptions {
            linkedin: Some(LinkedInOptions::default()),
            facebook: Some(FacebookOptions {
                link_preview: Some(true),
            }),
            x: Some(XOptions::default()),
        };
        let page = account(Platform::Facebook, "page1");
        let mut errors = Vec::new();
        check_options("o", page, &options, "no link", true, &mut errors);
        assert_eq!(
            fields(&errors),
            [
                "o.linkedin",
                "o.x",
                "o.facebook.link_preview",
                "o.facebook.link_preview"
            ]
        );
        let preview = TargetOptions {
            facebook: options.facebook.clone(),
            ..TargetOptions::default()
        };
        let mut errors = Vec::new();
        check_options(
            "o",
            page,
            &preview,
            "see https://a.example/x.",
            false,
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let user = account(Platform::X, "u");
        check_options("o", user, &preview, "https://a.example", false, &mut errors);
        assert_eq!(fields(&errors), ["o.facebook"]);

        let connections = TargetOptions {
            linkedin: Some(LinkedInOptions {
                visibility: Some(Visibility::Connections),
            }),
            ..TargetOptions::default()
        };
        let mut errors = Vec::new();
        let member = account(Platform::Linkedin, "urn:li:person:abc");
        check_options("o", member, &connections, "hi", false, &mut errors);
        assert!(errors.is_empty(), "a member's post: {errors:?}");
        let organisation = account(Platform::Linkedin, "42");
        check_options("o", organisation, &connections, "hi", false, &mut errors);
        assert_eq!(fields(&errors), ["o.linkedin.visibility"]);
    }

    #[test]
    fn the_first_link_is_found_inside_words_and_without_what_ends_a_sentence() {
        for (text, link) in [
            ("see https://a.example/x.", Some("https://a.example/x")),
            ("(https://a.example/x)", Some("https://a.example/x")),
            (
                "https://en.example.org/wiki/Rust_(lang) and more",
                Some("https://en.example.org/wiki/Rust_(lang)"),
            ),
            (
                "\"https://a.example/?q=1\",",
                Some("https://a.example/?q=1"),
            ),
            ("https://. no host", None),
            ("http://localhost/x", None),
            ("no link at all", None),
        ] {
            assert_eq!(first_link(text), link, "{text}");
        }
    }

    #[test]
    fn alt_text_describes_a_carried_image_within_every_carrying_platforms_limit() {
        let (png, video) = (image("m1", MediaType::Png), image("m2", MediaType::Mp4));
        let media = [png.clone(), video.clone()];
        let carriers: [(Platform, &[Resolved]); 3] = [
            (Platform::X, &media),
            (Platform::Bluesky, &media),
            (Platform::X, &media),
        ];
        let alt = BTreeMap::from([
            (MediaId("m1".into()), "x".repeat(1_500)),
            (MediaId("m2".into()), "a clip".into()),
            (MediaId("m3".into()), " ".into()),
        ]);
        let mut errors = Vec::new();
        check_alt_text(&alt, &carriers, &mut errors);
        let said: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            said,
            [
                (
                    "alt_text.m1",
                    "must be at most 1000 characters on X (it has 1500)"
                ),
                ("alt_text.m2", "alt text describes an image or a GIF"),
                ("alt_text.m3", "must not be empty"),
                ("alt_text.m3", "names media no target of this post carries"),
            ],
            "each platform's limit said once"
        );
        let fits = BTreeMap::from([(MediaId("m1".into()), "x".repeat(1_500))]);
        let mut errors = Vec::new();
        check_alt_text(&fits, &[(Platform::Bluesky, &media)], &mut errors);
        assert!(errors.is_empty(), "Bluesky takes 2,000: {errors:?}");
    }
}
