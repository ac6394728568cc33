//! Per-platform target options and alt text, as the API declares them: each option block is
//! named after its platform, so the OpenAPI document says which platform takes what.

use herald_domain::publishing::options::{
    FacebookOptions, LinkedInOptions, ReplySettings, TargetOptions, Visibility, XOptions,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a target asks of its own platform. A target may only carry its platform's block.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetOptionsInput {
    /// LinkedIn targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin: Option<LinkedInOptionsInput>,
    /// Facebook targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facebook: Option<FacebookOptionsInput>,
    /// X targets only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<XOptionsInput>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedInOptionsInput {
    /// Who may see the post; default `public`. `connections` is for a member's own posts.
    pub visibility: Option<VisibilityInput>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VisibilityInput {
    Public,
    Connections,
    LoggedIn,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacebookOptionsInput {
    /// `true`: the text's first link goes with the post as its link, and Facebook shows that
    /// page's preview card. The text must have a link, and the target no media.
    pub link_preview: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct XOptionsInput {
    /// Who may reply; default everyone.
    pub reply_settings: Option<ReplySettingsInput>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplySettingsInput {
    Following,
    MentionedUsers,
    Subscribers,
    Verified,
}

impl From<TargetOptionsInput> for TargetOptions {
    fn from(o: TargetOptionsInput) -> Self {
        TargetOptions {
            linkedin: o.linkedin.map(|l| LinkedInOptions {
                visibility: l.visibility.map(|v| match v {
                    VisibilityInput::Public => Visibility::Public,
                    VisibilityInput::Connections => Visibility::Connections,
                    VisibilityInput::LoggedIn => Visibility::LoggedIn,
                }),
            }),
            facebook: o.facebook.map(|f| FacebookOptions {
                link_preview: f.link_preview,
            }),
            x: o.x.map(|x| XOptions {
                reply_settings: x.reply_settings.map(|r| match r {
                    ReplySettingsInput::Following => ReplySettings::Following,
                    ReplySettingsInput::MentionedUsers => ReplySettings::MentionedUsers,
                    ReplySettingsInput::Subscribers => ReplySettings::Subscribers,
                    ReplySettingsInput::Verified => ReplySettings::Verified,
                }),
            }),
        }
    }
}

impl From<&TargetOptions> for TargetOptionsInput {
    fn from(o: &TargetOptions) -> Self {
        TargetOptionsInput {
            linkedin: o.linkedin.as_ref().map(|l| LinkedInOptionsInput {
                visibility: l.visibility.map(|v| match v {
                    Visibility::Public => VisibilityInput::Public,
                    Visibility::Connections => VisibilityInput::Connections,
                    Visibility::LoggedIn => VisibilityInput::LoggedIn,
                }),
            }),
            facebook: o.facebook.as_ref().map(|f| FacebookOptionsInput {
                link_preview: f.link_preview,
            }),
            x: o.x.as_ref().map(|x| XOptionsInput {
                reply_settings: x.reply_settings.map(|r| match r {
                    ReplySettings::Following => ReplySettingsInput::Following,
                    ReplySettings::MentionedUsers => ReplySettingsInput::MentionedUsers,
                    ReplySettings::Subscribers => ReplySettingsInput::Subscribers,
                    ReplySettings::Verified => ReplySettingsInput::Verified,
                }),
            }),
        }
    }
}
