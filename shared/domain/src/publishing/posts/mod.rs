//! Writing posts: create, edit, cancel, approve, reject.
//!
//! Every change is read → decide → write-if-version-unchanged. Dispatch and publish claims
//! bump the version too, so a change that commits first always wins and a change that comes
//! second sees the new state and decides again (it never overwrites a claim).

pub use super::compose::{FollowUps, MAX_THREAD_PARTS, threads_on};
use super::compose::{check_follow_ups, check_thread_parts};
pub use super::fields::FieldError;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{AccountId, ApiKeyId, MediaId, PostId, TenantId};
use crate::media::{Attachment, MAX_MEDIA_PER_POST, MediaService, Resolved, check_media};
use crate::model::{
    Account, AccountStatus, Platform, Post, PostStatus, Review, Variant, VariantStatus,
};
use crate::ports::{AccountStore, PostStore, SlotStore, TenantStore};
use crate::publishing::options::{TargetOptions, check_alt_text, check_options};
use crate::publishing::text::check_text;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use thiserror::Error;
use time::{Duration, OffsetDateTime};

mod validate;
use validate::*;

pub const MAX_TARGETS: usize = 10;
/// The longest base text: the most any platform takes (a Facebook Page post). Targets that
/// override it do not make a longer one acceptable.
pub const MAX_TEXT_CHARS: usize = 63_206;
/// The longest review note.
pub const MAX_NOTE_CHARS: usize = 1_000;
/// A schedule may lie this far in the past (client clock skew); it then goes out at once.
pub const PAST_TOLERANCE: Duration = Duration::minutes(5);
pub const MAX_SCHEDULE_AHEAD: Duration = Duration::days(366);
/// How often a change retries after losing an optimistic-concurrency race.
const CONFLICT_RETRIES: usize = 3;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PostError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("post not found")]
    NotFound,
    #[error("{0}")]
    InvalidState(String),
    #[error("the post kept changing; try again")]
    Contended,
    /// A rule of the tenant's forbids it (e.g. approving one's own post).
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct Target {
    pub account_id: AccountId,
    pub text: Option<String>,
    /// Media for this account only, instead of the post's (`Some(vec![])`: none).
    pub media: Option<Vec<MediaId>>,
    /// What this target asks of its own platform.
    pub options: TargetOptions,
}

#[derive(Debug, Clone)]
pub struct NewPost {
    pub text: String,
    pub scheduled_at: Option<OffsetDateTime>,
    pub targets: Vec<Target>,
    /// Uploaded media every target carries unless it names its own.
    pub media: Vec<MediaId>,
    pub follow_ups: FollowUps,
    /// Kept as a draft: never dispatched (nor reviewed) until it is scheduled, and its time
    /// may be past.
    pub draft: bool,
    /// A wall-clock time instead of `scheduled_at`.
    pub local: Option<LocalSchedule>,
    /// At the earliest posting slot every target has free, instead of a time.
    pub next_slot: bool,
    /// What each image shows, by media id (the post's or a target's media).
    pub alt_text: BTreeMap<MediaId, String>,
}

/// A post's time as a person says it: a wall-clock time in a zone.
#[derive(Debug, Clone)]
pub struct LocalSchedule {
    pub at: time::PrimitiveDateTime,
    /// An IANA zone; absent: the tenant's.
    pub time_zone: Option<String>,
    /// Which instant a skipped or repeated local time means (absent: such a time is refused).
    pub dst: Option<crate::zone::Dst>,
}

impl LocalSchedule {
    /// The local time a request's `scheduled_local`, `time_zone` and `dst` name (none without
    /// `scheduled_local`), or the field that is wrong (in a list, as a 422 has it).
    pub fn from_request(
        at: Option<&str>,
        time_zone: Option<String>,
        dst: Option<crate::zone::Dst>,
    ) -> Result<Option<Self>, Vec<FieldError>> {
        let Some(raw) = at else {
            return match time_zone.is_some() || dst.is_some() {
                true => Err(vec![FieldError::new(
                    "time_zone",
                    "time_zone and dst go with scheduled_local",
                )]),
                false => Ok(None),
            };
        };
        let at = parse_wall_clock(raw).ok_or_else(|| {
            vec![FieldError::new(
                "scheduled_local",
                "must be a wall-clock time like 2027-03-28T09:30 (seconds optional, no offset)",
            )]
        })?;
        Ok(Some(Self { at, time_zone, dst }))
    }
}

/// `2027-03-28T09:30` or `2027-03-28T09:30:15`.
fn parse_wall_clock(raw: &str) -> Option<time::PrimitiveDateTime> {
    let with_seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let without = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    time::PrimitiveDateTime::parse(raw, with_seconds)
        .or_else(|_| time::PrimitiveDateTime::parse(raw, without))
        .ok()
}

#[derive(Debug, Clone, Default)]
pub struct PostEdit {
    pub text: Option<String>,
    pub scheduled_at: Option<OffsetDateTime>,
    pub targets: Option<Vec<Target>>,
    /// Replaces the post's media.
    pub media: Option<Vec<MediaId>>,
    /// Replaces the post's thread and first comment (both at once).
    pub follow_ups: Option<FollowUps>,
    /// Replaces every alt text.
    pub alt_text: Option<BTreeMap<MediaId, String>>,
}

/// What a post would be: each target's content, and every rule broken (none: it would be
/// accepted as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub scheduled_at: OffsetDateTime,
    /// The targets that name a connected account, in the request's order.
    pub targets: Vec<PreviewTarget>,
    pub errors: Vec<FieldError>,
}

/// What one account would receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewTarget {
    pub account_id: AccountId,
    pub platform: Platform,
    pub text: String,
    /// The text as the platform counts it, and the most it allows.
    pub length: usize,
    pub limit: usize,
    pub media: Vec<MediaId>,
    /// The thread's parts (X) or the first comment (Facebook, LinkedIn), in order.
    pub follow_ups: Vec<String>,
}

/// A target as validation sees it: media ids already looked up.
#[derive(Debug, Clone)]
struct Planned {
    account_id: AccountId,
    text: Option<String>,
    media: Option<Vec<Resolved>>,
    options: TargetOptions,
}

/// Who is acting: the API key and its tenant.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant_id: TenantId,
    pub key_id: ApiKeyId,
}

#[derive(Clone)]
pub struct PostService {
    pub posts: Arc<dyn PostStore>,
    pub accounts: Arc<dyn AccountStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub slots: Arc<dyn SlotStore>,
    pub media: MediaService,
    pub clock: Arc<dyn Clock>,
}

crate::debug_fields!(PostService);

impl PostService {
    pub async fn create(
        &self,
        actor: &Actor,
        new: NewPost,
        correlation_id: String,
    ) -> Result<Post, PostError> {
        self.create_as(actor, new, correlation_id, PostId::generate())
            .await
    }

    /// Creates the post under `id` (an import's row names its own, so that working the row
    /// again finds it); `Store(Conflict)` when the id is taken.
    pub async fn create_as(
        &self,
        actor: &Actor,
        new: NewPost,
        correlation_id: String,
        id: PostId,
    ) -> Result<Post, PostError> {
        let now = self.clock.now();
        let accounts = self.accounts.list_accounts(&actor.tenant_id).await?;
        let (scheduled_at, time_zone) = self.schedule_of(&actor.tenant_id, &new, now).await?;
        let found = self
            .resolve_media(&actor.tenant_id, Some(&new.media), Some(&new.targets))
            .await?;
        let media = found.list(&new.media);
        let targets = found.plan(&new.targets);
        let content = Content {
            text: &new.text,
            follow_ups: &new.follow_ups,
            scheduled_at,
            draft: new.draft,
            alt_text: &new.alt_text,
        };
        let (variants, media) = validate(&content, &targets, &media, &accounts, now)?;
        let status = match new.draft {
            true => PostStatus::Draft,
            false => self.initial_status(&actor.tenant_id).await?,
        };
        let (scheduled_at, time_zone) = match new.next_slot {
            false => (scheduled_at, time_zone),
            true => {
                let zone = self.tenant_zone(&actor.tenant_id).await?;
                let targets: Vec<AccountId> = variants.keys().cloned().collect();
                let at = self
                    .next_slot(&actor.tenant_id, &id, &targets, &zone, now)
                    .await?;
                (at, Some(zone.as_str().to_owned()))
            }
        };
        let post = Post {
            tenant_id: actor.tenant_id.clone(),
            id,
            text: new.text,
            scheduled_at,
            status,
            variants,
            media,
            version: 1,
            correlation_id,
            created_by: actor.key_id.clone(),
            created_at: now,
            updated_at: now,
            dispatch: None,
            review: None,
            thread: new.follow_ups.thread,
            first_comment: new.follow_ups.first_comment,
            time_zone,
        };
        self.posts.insert_post(&post).await?;
        Ok(post)
    }

    /// What `new` would send to each target, and every rule it breaks, as `create` would
    /// decide, writing nothing (no post, no idempotency record; media already uploaded are
    /// inspected as for a post, which records what they are).
    pub async fn preview(&self, actor: &Actor, new: &NewPost) -> Result<Preview, PostError> {
        let now = self.clock.now();
        let accounts = self.accounts.list_accounts(&actor.tenant_id).await?;
        let (scheduled_at, _) = self.schedule_of(&actor.tenant_id, new, now).await?;
        let found = self
            .resolve_media(&actor.tenant_id, Some(&new.media), Some(&new.targets))
            .await?;
        let media = found.list(&new.media);
        let planned = found.plan(&new.targets);
        let content = Content {
            text: &new.text,
            follow_ups: &new.follow_ups,
            scheduled_at,
            draft: new.draft,
            alt_text: &new.alt_text,
        };
        let errors = match validate(&content, &planned, &media, &accounts, now) {
            Ok(_) => Vec::new(),
            Err(PostError::Invalid(errors)) => errors,
            Err(e) => return Err(e),
        };
        let targets = new
            .targets
            .iter()
            .filter_map(|t| {
                let account = accounts.iter().find(|a| a.id == t.account_id)?;
                let text = t.text.clone().unwrap_or_else(|| new.text.clone());
                let follow_ups = if threads_on(account.platform) {
                    new.follow_ups.thread.clone()
                } else {
                    new.follow_ups.first_comment.iter().cloned().collect()
                };
                Some(PreviewTarget {
                    account_id: account.id.clone(),
                    platform: account.platform,
                    length: crate::publishing::text::measure(account.platform, &text),
                    limit: crate::publishing::text::limit(account.platform),
                    text,
                    media: t.media.clone().unwrap_or_else(|| new.media.clone()),
                    follow_ups,
                })
            })
            .collect();
        Ok(Preview {
            scheduled_at,
            targets,
            errors,
        })
    }

    pub async fn get(&self, tenant: &TenantId, id: &PostId) -> Result<Post, PostError> {
        self.posts
            .get_post(tenant, id)
            .await?
            .ok_or(PostError::NotFound)
    }

    pub async fn edit(
        &self,
        actor: &Actor,
        id: &PostId,
        edit: PostEdit,
    ) -> Result<Post, PostError> {
        let accounts = self.accounts.list_accounts(&actor.tenant_id).await?;
        let status = self.initial_status(&actor.tenant_id).await?;
        // Only media the edit names are looked up; the post's own attachments were checked
        // when they were attached and are checked again below against the edited targets.
        let found = self
            .resolve_media(
                &actor.tenant_id,
                edit.media.as_deref(),
                edit.targets.as_deref(),
            )
            .await?;
        self.change(&actor.tenant_id, id, |post, now| {
            if !post_is_changeable(post) {
                return Err(PostError::InvalidState(format!(
                    "the post is {} and can no longer be edited",
                    post.display_status()
                )));
            }
            let text = edit.text.clone().unwrap_or_else(|| post.text.clone());
            let scheduled_at = edit
                .scheduled_at
                .map_or(post.scheduled_at, crate::clock::to_millis);
            let targets = match &edit.targets {
                Some(t) => found.plan(t),
                None => targets_of(post),
            };
            let media = match &edit.media {
                Some(ids) => found.list(ids),
                None => post.media.iter().map(Resolved::attached).collect(),
            };
            let follow_ups = edit.follow_ups.clone().unwrap_or_else(|| FollowUps {
                thread: post.thread.clone(),
                first_comment: post.first_comment.clone(),
            });
            let draft = post.status == PostStatus::Draft;
            // Kept alt text describes only media the edited post still carries.
            let alt_text = edit.alt_text.clone().unwrap_or_else(|| {
                let carried: Vec<&MediaId> = media
                    .iter()
                    .chain(targets.iter().flat_map(|t| t.media.iter().flatten()))
                    .map(Resolved::media_id)
                    .collect();
                let mut kept = alt_text_of(post);
                kept.retain(|id, _| carried.contains(&id));
                kept
            });
            let content = Content {
                text: &text,
                follow_ups: &follow_ups,
                scheduled_at,
                draft,
                alt_text: &alt_text,
            };
            let (variants, media) = validate(&content, &targets, &media, &accounts, now)?;
            post.thread = follow_ups.thread;
            post.first_comment = follow_ups.first_comment;
            post.variants = variants;
            post.media = media;
            post.text = text;
            post.scheduled_at = scheduled_at;
            // An edit after approval needs approval again; a draft stays a draft.
            if !draft {
                post.status = status;
            }
            post.dispatch = None;
            post.review = None;
            Ok(())
        })
        .await
    }

    /// Turns a draft into a post: at `at`, or its own time while that is ahead, else now. It
    /// is checked again as a new post is (accounts, schedule), and waits for approval where
    /// the tenant requires it.
    pub async fn schedule(
        &self,
        actor: &Actor,
        id: &PostId,
        at: Option<OffsetDateTime>,
    ) -> Result<Post, PostError> {
        let accounts = self.accounts.list_accounts(&actor.tenant_id).await?;
        let status = self.initial_status(&actor.tenant_id).await?;
        self.change(&actor.tenant_id, id, |post, now| {
            if post.status != PostStatus::Draft {
                return Err(PostError::InvalidState(format!(
                    "only a draft can be scheduled; this post is {}",
                    post.display_status()
                )));
            }
            let scheduled_at = at
                .map(crate::clock::to_millis)
                .unwrap_or(post.scheduled_at.max(now));
            let follow_ups = FollowUps {
                thread: post.thread.clone(),
                first_comment: post.first_comment.clone(),
            };
            let alt_text = alt_text_of(post);
            let content = Content {
                text: &post.text,
                follow_ups: &follow_ups,
                scheduled_at,
                draft: false,
                alt_text: &alt_text,
            };
            let media: Vec<Resolved> = post.media.iter().map(Resolved::attached).collect();
            let (variants, media) = validate(&content, &targets_of(post), &media, &accounts, now)?;
            post.variants = variants;
            post.media = media;
            post.scheduled_at = scheduled_at;
            post.status = status;
            Ok(())
        })
        .await
    }

    pub async fn cancel(&self, actor: &Actor, id: &PostId) -> Result<Post, PostError> {
        self.change(&actor.tenant_id, id, |post, _| {
            if post.status == PostStatus::Cancelled {
                return Err(PostError::InvalidState(
                    "the post is already cancelled".into(),
                ));
            }
            if !post_is_changeable(post) {
                return Err(PostError::InvalidState(format!(
                    "the post is {} and can no longer be cancelled",
                    post.display_status()
                )));
            }
            post.status = PostStatus::Cancelled;
            post.dispatch = None;
            for v in post.variants.values_mut() {
                v.status = VariantStatus::Cancelled;
            }
            Ok(())
        })
        .await
    }

    pub async fn review(
        &self,
        actor: &Actor,
        id: &PostId,
        approve: bool,
        note: Option<String>,
    ) -> Result<Post, PostError> {
        if note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
        {
            return Err(PostError::Invalid(vec![FieldError::new(
                "note",
                format!("must be at most {MAX_NOTE_CHARS} characters"),
            )]));
        }
        let four_eyes = approve
            && self
                .tenants
                .get_tenant(&actor.tenant_id)
                .await?
                .is_some_and(|t| t.settings.forbid_self_approval);
        self.change(&actor.tenant_id, id, |post, now| {
            if four_eyes && post.created_by == actor.key_id {
                return Err(PostError::Forbidden(
                    "this tenant forbids approving a post with the key that created it".into(),
                ));
            }
            if post.status != PostStatus::PendingApproval {
                return Err(PostError::InvalidState(format!(
                    "only posts pending approval can be reviewed; this one is {}",
                    post.display_status()
                )));
            }
            let decision = if approve {
                PostStatus::Scheduled
            } else {
                PostStatus::Rejected
            };
            post.status = decision;
            if !approve {
                for v in post.variants.values_mut() {
                    v.status = VariantStatus::Cancelled;
                }
            }
            post.review = Some(Review {
                decision,
                by: actor.key_id.clone(),
                at: now,
                note: note.clone(),
            });
            Ok(())
        })
        .await
    }

    /// Looks up every media id a request names, at most [`MAX_MEDIA_PER_POST`] distinct ones
    /// (more is refused before anything is read).
    async fn resolve_media(
        &self,
        tenant: &TenantId,
        post: Option<&[MediaId]>,
        targets: Option<&[Target]>,
    ) -> Result<FoundMedia, PostError> {
        let ids: BTreeSet<MediaId> = post
            .unwrap_or_default()
            .iter()
            .chain(
                targets
                    .unwrap_or_default()
                    .iter()
                    .flat_map(|t| t.media.iter().flatten()),
            )
            .cloned()
            .collect();
        if ids.len() > MAX_MEDIA_PER_POST {
            return Err(PostError::Invalid(vec![FieldError::new(
                "media",
                format!(
                    "names {} different media; a post may name at most {MAX_MEDIA_PER_POST}",
                    ids.len()
                ),
            )]));
        }
        let ids: Vec<MediaId> = ids.into_iter().collect();
        Ok(FoundMedia(self.media.resolve(tenant, &ids).await?))
    }

    /// When `new` is due, and the zone it was given in: its instant (absent: now), or its
    /// wall-clock time resolved in its zone or the tenant's.
    async fn schedule_of(
        &self,
        tenant: &TenantId,
        new: &NewPost,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, Option<String>), PostError> {
        if new.next_slot && (new.scheduled_at.is_some() || new.local.is_some() || new.draft) {
            return Err(PostError::Invalid(vec![FieldError::new(
                "schedule",
                "next_slot takes the place of scheduled_at and scheduled_local, and a draft \
                 takes no slot",
            )]));
        }
        let Some(local) = &new.local else {
            return Ok((new.scheduled_at.map_or(now, crate::clock::to_millis), None));
        };
        let invalid = |field: &str, message: String| {
            PostError::Invalid(vec![FieldError::new(field, message)])
        };
        if new.scheduled_at.is_some() {
            return Err(invalid(
                "scheduled_local",
                "give scheduled_at or scheduled_local, not both".into(),
            ));
        }
        let zone = match &local.time_zone {
            Some(name) => crate::zone::TimeZoneName::parse(name)
                .map_err(|e| invalid("time_zone", e.to_string()))?,
            None => self.tenant_zone(tenant).await?,
        };
        let at = crate::zone::resolve(local.at, &zone, local.dst)
            .map_err(|e| invalid("scheduled_local", e.to_string()))?;
        Ok((at, Some(zone.as_str().to_owned())))
    }

    pub(super) async fn tenant_zone(
        &self,
        tenant: &TenantId,
    ) -> Result<crate::zone::TimeZoneName, PostError> {
        Ok(self
            .tenants
            .get_tenant(tenant)
            .await?
            .map(|t| t.settings.zone())
            .unwrap_or_else(crate::zone::TimeZoneName::utc))
    }

    async fn initial_status(&self, tenant: &TenantId) -> Result<PostStatus, PostError> {
        let tenant = self
            .tenants
            .get_tenant(tenant)
            .await?
            .ok_or_else(|| StoreError::Invalid("the caller's tenant does not exist".into()))?;
        Ok(if tenant.settings.require_approval {
            PostStatus::PendingApproval
        } else {
            PostStatus::Scheduled
        })
    }

    /// Read, apply `f`, write if nothing changed meanwhile; on a lost race, start over.
    async fn change<F>(&self, tenant: &TenantId, id: &PostId, f: F) -> Result<Post, PostError>
    where
        F: Fn(&mut Post, OffsetDateTime) -> Result<(), PostError>,
    {
        for _ in 0..CONFLICT_RETRIES {
            let mut post = self.get(tenant, id).await?;
            let expected = post.version;
            let now = self.clock.now();
            f(&mut post, now)?;
            post.version = expected + 1;
            post.updated_at = now;
            match self.posts.replace_post(&post, expected).await {
                Ok(()) => return Ok(post),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PostError::Contended)
    }
}
