//! Editing a published post's text where its platforms allow it. Every live target that
//! shares the post's text must be on a platform that edits (Facebook, LinkedIn, Mastodon) and
//! take the new text by its rules, or nothing is changed anywhere. Each is then edited on its
//! platform (the same text again is harmless, so asking again converges), each edit audited
//! (`post.edited`) as soon as its platform took it; only when all took it does the post's text
//! change. A post with a publisher at work, or whose media an edit would drop (Mastodon) or
//! miss (a Facebook video's description), is refused whole.

use super::*;
use crate::publishing::fields::FieldError;
use crate::publishing::platform::{EditRequest, edits_text};
use crate::publishing::text::check_text;

/// The post after, and the targets whose platform refused the new text (the post's text is
/// then unchanged).
#[derive(Debug, Clone)]
pub struct Edited {
    pub post: Post,
    pub not_edited: Vec<StillLive>,
}

impl LivePosts {
    /// Replaces the live post's text on every target that shares it.
    pub async fn edit(&self, actor: &Actor, id: &PostId, text: &str) -> Result<Edited, PostError> {
        let post = self.get(actor, id).await?;
        if post.variants.values().any(in_flight) {
            return Err(PostError::InvalidState(
                "the post is still being published; edit it once every target has settled".into(),
            ));
        }
        if post.text == text {
            return Ok(Edited {
                post,
                not_edited: Vec::new(),
            });
        }
        let sharing: Vec<_> = post
            .variants
            .values()
            .filter(|v| {
                v.platform_post_id.is_some() && v.removed_at.is_none() && v.text_override.is_none()
            })
            .cloned()
            .collect();
        if sharing.is_empty() {
            return Err(PostError::InvalidState(
                "no live target shares the post's text: nothing to edit".into(),
            ));
        }
        let mut errors = Vec::new();
        if text.trim().is_empty() {
            errors.push(FieldError::new("text", "must not be empty"));
        }
        for v in &sharing {
            if !edits_text(v.platform) {
                errors.push(FieldError::new(
                    "text",
                    format!(
                        "{} does not let apps edit a published post (target {}): take the post down and post again",
                        v.platform.title(),
                        v.account_id
                    ),
                ));
            }
            let media = v.media_override.as_ref().unwrap_or(&post.media);
            let kept_apart = match v.platform {
                // An edit without the status's media_ids drops its attachments.
                Platform::Mastodon => !media.is_empty(),
                // A video post's text is its description, which this edit does not reach.
                Platform::Facebook => media
                    .iter()
                    .any(|a| a.media_type.kind() == crate::media::MediaKind::Video),
                _ => false,
            };
            if kept_apart {
                errors.push(FieldError::new(
                    "text",
                    format!(
                        "{} would lose or miss this post's media on an edit (target {}): edit it there",
                        v.platform.title(),
                        v.account_id
                    ),
                ));
            }
            for violation in check_text(v.platform, text) {
                let error = FieldError::text("text", violation);
                if !errors.contains(&error) {
                    errors.push(error);
                }
            }
        }
        if !errors.is_empty() {
            return Err(PostError::Invalid(errors));
        }
        let mut not_edited = Vec::new();
        for v in &sharing {
            let Some(platform_post_id) = v.platform_post_id.as_deref() else {
                continue;
            };
            let still = |message: String| StillLive {
                account_id: v.account_id.clone(),
                platform: v.platform,
                message,
            };
            let Some(account) = self
                .accounts
                .get_account(&actor.tenant_id, &v.account_id)
                .await?
            else {
                not_edited.push(still("the account is no longer connected".into()));
                continue;
            };
            let request = EditRequest {
                platform: account.platform,
                external_id: &account.external_id,
                access_token: &account.access_token,
                platform_post_id,
                text,
            };
            match self.platform.edit_post(request).await {
                // Audited as soon as the platform shows it, whatever the other targets do.
                Ok(()) => {
                    self.audit_edit(actor, id, &v.account_id, v.platform, &post.text, text)
                        .await;
                }
                Err(e) => not_edited.push(still(format!(
                    "{} would not edit {platform_post_id}: {}",
                    account.platform.title(),
                    e.message()
                ))),
            }
        }
        if !not_edited.is_empty() {
            return Ok(Edited {
                post: self.get(actor, id).await?,
                not_edited,
            });
        }
        self.set_text(actor, id, text).await?;
        Ok(Edited {
            post: self.get(actor, id).await?,
            not_edited,
        })
    }

    /// Writes the post's new text (again after losing a race).
    async fn set_text(&self, actor: &Actor, id: &PostId, text: &str) -> Result<(), PostError> {
        self.change(actor, id, |post| {
            post.text = text.to_owned();
            true
        })
        .await
        .map(|_| ())
    }

    async fn audit_edit(
        &self,
        actor: &Actor,
        id: &PostId,
        account_id: &AccountId,
        platform: Platform,
        before: &str,
        after: &str,
    ) {
        let entry = AuditEntry {
            tenant_id: actor.tenant_id.clone(),
            entity: format!("variant:{id}:{account_id}"),
            action: "post.edited".into(),
            actor: format!("key:{}", actor.key_id),
            old: Some(json!({"text": before})),
            new: Some(json!({"text": after, "platform": platform.as_str()})),
            ip: None,
            user_agent: None,
            at: self.clock.now(),
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "an edit's audit record could not be written");
        }
    }
}
