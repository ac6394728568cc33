//! Published posts: taken down ([`LivePosts::unpublish`]) or their text edited
//! ([`LivePosts::edit`], in `edit.rs`) on their platforms.
//!
//! Taking a published post down: each live variant is deleted on its platform (its thread
//! parts or first comment first, then the post), then marked removed. The mark is a write
//! conditional on the post's version that sets `removed_at` only where it is not set yet, so
//! however often a removal is asked for, or raced by the platform's own deletion webhook, each
//! variant is marked, and audited, once. A delete the platform answers "not found" for is
//! already done.

use crate::audit::AuditEntry;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{AccountId, PostId};
use crate::model::{Platform, Post, VariantStatus};
use crate::ports::{AccountStore, AuditLog, PostStore};
use crate::publishing::platform::{DeleteRequest, PlatformClient};
use crate::publishing::posts::{Actor, PostError};
use serde_json::json;
use std::sync::Arc;

mod edit;

/// Takes published posts down from their platforms.
#[derive(Clone)]
pub struct LivePosts {
    pub posts: Arc<dyn PostStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub audit: Arc<dyn AuditLog>,
    pub platform: Arc<dyn PlatformClient>,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(LivePosts);

/// A publisher is at work on the variant (or will be, unasked): nothing may change under it.
fn in_flight(v: &crate::model::Variant) -> bool {
    v.lookup
        || matches!(
            v.status,
            VariantStatus::Publishing
                | VariantStatus::Retrying
                | VariantStatus::Continuing
                | VariantStatus::Unknown
        )
}

/// How often a removal's mark is tried again after losing a race to another write.
const MARK_RETRIES: usize = 5;

/// A variant that is still live: why it could not be taken down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillLive {
    pub account_id: AccountId,
    pub platform: Platform,
    pub message: String,
}

/// The post as it is after, and the variants still live.
#[derive(Debug, Clone)]
pub struct Unpublished {
    pub post: Post,
    pub still_live: Vec<StillLive>,
}

impl LivePosts {
    /// Deletes every live variant of the post on its platform, all targets at once. A post
    /// with a publisher at work (a variant claimed, retrying, unsure or with thread parts to
    /// come) is refused whole; a target still waiting (held by a pause, or dead-lettered) is
    /// cancelled first, so nothing goes out after the post was taken down. A variant the
    /// platform will not delete stays live and is named with why.
    pub async fn unpublish(&self, actor: &Actor, id: &PostId) -> Result<Unpublished, PostError> {
        let post = self.get(actor, id).await?;
        let busy = post.variants.values().any(in_flight);
        let live: Vec<_> = post
            .variants
            .values()
            .filter(|v| v.platform_post_id.is_some() && v.removed_at.is_none())
            .cloned()
            .collect();
        if busy {
            return Err(PostError::InvalidState(
                "the post is still being published; take it down once every target has settled"
                    .into(),
            ));
        }
        if live.is_empty() && !post.variants.values().any(|v| v.removed_at.is_some()) {
            return Err(PostError::InvalidState(
                "the post is live nowhere: cancel it instead (DELETE /v1/posts/{id})".into(),
            ));
        }
        self.cancel_waiting(actor, id).await?;
        let downs = live.iter().map(|variant| async {
            let still = |message: String| StillLive {
                account_id: variant.account_id.clone(),
                platform: variant.platform,
                message,
            };
            let post_id = variant.platform_post_id.clone().unwrap_or_default();
            if let Err(message) = self.take_down(actor, &post, &variant.account_id).await? {
                return Ok::<_, PostError>(Some(still(message)));
            }
            if self.mark_removed(actor, id, &variant.account_id).await? {
                self.audit_removal(actor, id, &variant.account_id, &post_id, variant.platform)
                    .await;
            }
            Ok(None)
        });
        let still_live = futures::future::try_join_all(downs)
            .await?
            .into_iter()
            .flatten()
            .collect();
        Ok(Unpublished {
            post: self.get(actor, id).await?,
            still_live,
        })
    }

    /// Cancels every variant a publisher could still claim (pending, or dead-lettered and so
    /// requeueable), in one write conditional on the post's version.
    async fn cancel_waiting(&self, actor: &Actor, id: &PostId) -> Result<(), PostError> {
        let waiting = |v: &crate::model::Variant| {
            matches!(
                v.status,
                VariantStatus::Pending | VariantStatus::DeadLettered
            )
        };
        self.change(actor, id, |post| {
            let mut changed = false;
            for v in post.variants.values_mut().filter(|v| waiting(v)) {
                v.status = VariantStatus::Cancelled;
                changed = true;
            }
            changed
        })
        .await
        .map(|_| ())
    }

    /// Reads the post, lets `f` change it (`false`: nothing to write) and writes it if its
    /// version is still the one read, again after losing a race; whether it wrote.
    async fn change(
        &self,
        actor: &Actor,
        id: &PostId,
        f: impl Fn(&mut Post) -> bool,
    ) -> Result<bool, PostError> {
        for _ in 0..MARK_RETRIES {
            let mut post = self.get(actor, id).await?;
            if !f(&mut post) {
                return Ok(false);
            }
            let expected = post.version;
            post.version += 1;
            post.updated_at = self.clock.now();
            match self.posts.replace_post(&post, expected).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PostError::Contended)
    }

    async fn get(&self, actor: &Actor, id: &PostId) -> Result<Post, PostError> {
        self.posts
            .get_post(&actor.tenant_id, id)
            .await?
            .ok_or(PostError::NotFound)
    }

    /// Deletes the variant's follow-ups (newest first), then its post; `Err(why)` when the
    /// platform would not.
    async fn take_down(
        &self,
        actor: &Actor,
        post: &Post,
        account_id: &AccountId,
    ) -> Result<Result<(), String>, StoreError> {
        let Some(variant) = post.variants.get(account_id) else {
            return Ok(Ok(()));
        };
        if variant.platform == Platform::Instagram {
            return Ok(Err(
                "Instagram does not let apps delete posts: delete it in the Instagram app".into(),
            ));
        }
        let Some(account) = self
            .accounts
            .get_account(&actor.tenant_id, account_id)
            .await?
        else {
            return Ok(Err("the account is no longer connected".into()));
        };
        let ids = variant
            .follow_up_ids
            .iter()
            .rev()
            .chain(variant.platform_post_id.iter());
        for platform_post_id in ids {
            let request = DeleteRequest {
                platform: account.platform,
                external_id: &account.external_id,
                access_token: &account.access_token,
                platform_post_id,
            };
            if let Err(e) = self.platform.delete_post(request).await {
                return Ok(Err(format!(
                    "{} would not delete {platform_post_id}: {}",
                    account.platform.title(),
                    e.message()
                )));
            }
        }
        Ok(Ok(()))
    }

    /// Sets the variant's `removed_at` unless it is set; whether this call set it.
    async fn mark_removed(
        &self,
        actor: &Actor,
        id: &PostId,
        account_id: &AccountId,
    ) -> Result<bool, PostError> {
        let now = self.clock.now();
        self.change(actor, id, |post| match post.variants.get_mut(account_id) {
            Some(v) if v.removed_at.is_none() => {
                v.removed_at = Some(now);
                true
            }
            _ => false,
        })
        .await
    }

    async fn audit_removal(
        &self,
        actor: &Actor,
        id: &PostId,
        account_id: &AccountId,
        platform_post_id: &str,
        platform: Platform,
    ) {
        let entry = AuditEntry {
            tenant_id: actor.tenant_id.clone(),
            entity: format!("variant:{id}:{account_id}"),
            action: "post.removed".into(),
            actor: format!("key:{}", actor.key_id),
            old: Some(json!({"platform_post_id": platform_post_id})),
            new: Some(json!({"removed": true, "platform": platform.as_str()})),
            ip: None,
            user_agent: None,
            at: self.clock.now(),
        };
        if let Err(e) = self.audit.append(entry).await {
            tracing::error!(error = %e, "a removal's audit record could not be written");
        }
    }
}
