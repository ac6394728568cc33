//! Posts: what `POST`/`PATCH /v1/posts` take and what the post routes answer.

use super::*;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    #[schema(min_length = 1, max_length = 64)]
    pub account_id: String,
    /// Text for this account only, instead of the post's. Measured as the account's
    /// platform counts (X: twitter-text weighted length, at most 280).
    #[schema(min_length = 1, max_length = 63206)]
    pub text: Option<String>,
    /// Media ids for this account only, instead of the post's (`[]`: none).
    #[schema(max_items = 20)]
    pub media: Option<Vec<String>>,
    /// What this target asks of its own platform (only its platform's block).
    pub options: Option<TargetOptionsInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePost {
    /// Not only whitespace.
    #[schema(min_length = 1, max_length = 63206, pattern = "\\S")]
    pub text: String,
    /// RFC 3339; omitted means now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub scheduled_at: Option<OffsetDateTime>,
    /// Distinct accounts of the tenant.
    #[schema(min_items = 1, max_items = 10)]
    pub targets: Vec<TargetInput>,
    /// Uploaded media ids (`POST /v1/media`), published with the post on every target that
    /// names no media of its own. Each is checked against each target's platform.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub media: Vec<String>,
    /// X, Mastodon and Bluesky only: replies published after the post, in order, each
    /// answering the one before (each part checked as its target's platform counts). Every
    /// target must be an X, Mastodon or Bluesky account.
    #[serde(default)]
    #[schema(max_items = 24)]
    pub thread: Vec<String>,
    /// Facebook, LinkedIn and Instagram only: a comment the account leaves on its post once it is live
    /// (Facebook allows 8,000 characters, LinkedIn 1,250). Not with `thread`.
    #[schema(min_length = 1, max_length = 8000, pattern = "\\S")]
    pub first_comment: Option<String>,
    /// `draft` keeps the post, checked but never dispatched, until
    /// `POST /v1/posts/{id}/schedule` (its `scheduled_at` may then be past or absent).
    /// Default `scheduled`.
    #[serde(default)]
    pub status: NewPostStatus,
    /// A wall-clock time instead of `scheduled_at` (`2027-03-28T09:30`, seconds optional),
    /// read in `time_zone` or else the tenant's. A time the clocks skip or repeat there is a
    /// 422 naming both instants it could mean, unless `dst` says which.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$")]
    pub scheduled_local: Option<String>,
    /// An IANA zone (`Europe/Paris`) for `scheduled_local`.
    #[schema(min_length = 1, max_length = 64)]
    pub time_zone: Option<String>,
    /// For a skipped or repeated `scheduled_local`: the earlier or the later instant.
    pub dst: Option<DstInput>,
    /// What each image or GIF shows, by media id (the post's media or a target's own), sent as
    /// each platform takes it: X's media metadata, LinkedIn's `altText`, Mastodon's
    /// `description`, Bluesky's `alt`, Facebook's `alt_text_custom`, Instagram's `alt_text`. At
    /// most X and Facebook and Instagram 1,000 characters, Mastodon 1,500, Bluesky 2,000,
    /// LinkedIn 4,086, as the targets that carry the image allow.
    #[serde(default)]
    pub alt_text: BTreeMap<String, String>,
    /// `next_slot`: at the earliest posting slot (`PUT /v1/posting-slots`) that every target
    /// has and none has taken, instead of a time. Not with `scheduled_at`,
    /// `scheduled_local` or a draft.
    pub schedule: Option<ScheduleChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleChoice {
    NextSlot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DstInput {
    Earlier,
    Later,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NewPostStatus {
    Draft,
    #[default]
    Scheduled,
}

/// `POST /v1/posts/{id}/schedule`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDraft {
    /// RFC 3339; omitted means the draft's own time while it is ahead, else now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub scheduled_at: Option<OffsetDateTime>,
    /// `next_slot`: at the earliest posting slot every target has free, instead of a time.
    pub schedule: Option<ScheduleChoice>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    pub text: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub scheduled_at: Option<OffsetDateTime>,
    /// Replaces every target.
    pub targets: Option<Vec<TargetInput>>,
    /// Replaces the post's media.
    pub media: Option<Vec<String>>,
    /// With `first_comment`: either one given replaces both (the one left out is dropped, so
    /// `"thread": []` alone removes a first comment).
    #[schema(max_items = 24)]
    pub thread: Option<Vec<String>>,
    #[schema(min_length = 1, max_length = 8000, pattern = "\\S")]
    pub first_comment: Option<String>,
    /// Replaces every alt text (as `alt_text` of `POST /v1/posts`).
    pub alt_text: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// `transient`, `rate_limited`, `auth`, `permanent` or `ambiguous`.
    pub kind: String,
    pub message: String,
    pub platform_code: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

impl From<&VariantError> for ErrorView {
    fn from(e: &VariantError) -> Self {
        Self {
            kind: e.kind.as_str().to_owned(),
            message: e.message.clone(),
            platform_code: e.platform_code.clone(),
            at: e.at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VariantView {
    pub account_id: String,
    pub platform: String,
    /// `pending`, `publishing`, `published`, `retrying`, `dead_lettered`, `failed`, `unknown`,
    /// `cancelled`, or `continuing` (the post is live; its next thread part or first comment
    /// waits for a publisher).
    pub status: String,
    pub text: Option<String>,
    pub attempts: u32,
    pub platform_post_id: Option<String>,
    pub last_error: Option<ErrorView>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<OffsetDateTime>,
    /// When the platform reported the post deleted there.
    #[serde(with = "time::serde::rfc3339::option")]
    pub removed_at: Option<OffsetDateTime>,
    /// This account's own media ids, when it does not carry the post's.
    pub media: Option<Vec<String>>,
    /// What this target asks of its platform (absent: nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TargetOptionsInput>,
    /// The step a publisher works on: 0 is the post, then each thread part or the first
    /// comment.
    pub step: u32,
    /// The platform's ids of the thread parts (or the first comment) published so far.
    pub follow_up_ids: Vec<String>,
}

fn media_ids(media: &[Attachment]) -> Vec<String> {
    media.iter().map(|a| a.media_id.0.clone()).collect()
}

impl From<&Variant> for VariantView {
    fn from(v: &Variant) -> Self {
        Self {
            account_id: v.account_id.0.clone(),
            platform: v.platform.as_str().to_owned(),
            status: v.status.as_str().to_owned(),
            text: v.text_override.clone(),
            attempts: v.attempts,
            platform_post_id: v.platform_post_id.clone(),
            last_error: v.last_error.as_ref().map(ErrorView::from),
            published_at: v.published_at,
            removed_at: v.removed_at,
            media: v.media_override.as_deref().map(media_ids),
            options: (!v.options.is_empty()).then(|| TargetOptionsInput::from(&v.options)),
            step: v.step,
            follow_up_ids: v.follow_up_ids.clone(),
        }
    }
}

/// What a take-down came to.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unpublished {
    /// The post after: each target taken down has `removed_at`.
    pub post: PostView,
    /// The targets still live on their platform, with why.
    pub still_live: Vec<StillLiveView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StillLiveView {
    pub account_id: String,
    pub platform: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    /// `scheduled` (approved) or `rejected`.
    pub decision: String,
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub note: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostView {
    pub id: String,
    /// `draft`, `pending_approval`, `scheduled`, `rejected`, `cancelled`, then from the variants:
    /// `publishing`, `published`, `partially_published`, `failed` or `needs_attention`.
    pub status: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    pub variants: Vec<VariantView>,
    /// The post's media ids.
    pub media: Vec<String>,
    /// What each image shows, by media id.
    pub alt_text: BTreeMap<String, String>,
    /// X, Mastodon and Bluesky only: the replies published after the post.
    pub thread: Vec<String>,
    /// Facebook, LinkedIn and Instagram only: the comment left on the post once it is live.
    pub first_comment: Option<String>,
    /// The zone the post was scheduled in by wall-clock time, and that time there.
    pub time_zone: Option<String>,
    pub scheduled_local: Option<String>,
    pub review: Option<ReviewView>,
    pub correlation_id: String,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Post> for PostView {
    fn from(p: &Post) -> Self {
        Self {
            id: p.id.0.clone(),
            status: p.display_status().to_owned(),
            text: p.text.clone(),
            scheduled_at: p.scheduled_at,
            variants: p.variants.values().map(VariantView::from).collect(),
            media: media_ids(&p.media),
            alt_text: p
                .media
                .iter()
                .chain(
                    p.variants
                        .values()
                        .flat_map(|v| v.media_override.iter().flatten()),
                )
                .filter_map(|a| Some((a.media_id.0.clone(), a.alt_text.clone()?)))
                .collect(),
            thread: p.thread.clone(),
            first_comment: p.first_comment.clone(),
            time_zone: p.time_zone.clone(),
            scheduled_local: p.scheduled_local().and_then(|l| {
                l.format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]"
                ))
                .ok()
            }),
            review: p.review.as_ref().map(|r| ReviewView {
                decision: r.decision.as_str().to_owned(),
                by: r.by.0.clone(),
                at: r.at,
                note: r.note.clone(),
            }),
            correlation_id: p.correlation_id.clone(),
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// What a post would be (`POST /v1/posts/preview`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PostPreview {
    /// No problem: `POST /v1/posts` would accept it as it is.
    pub valid: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_at: OffsetDateTime,
    /// Each target that names a connected account, in the request's order.
    pub targets: Vec<PreviewTargetView>,
    /// What `POST /v1/posts` would answer in its 422, entry for entry.
    pub errors: Vec<crate::error::ProblemField>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewTargetView {
    pub account_id: String,
    pub platform: String,
    /// The text this account would publish (its own, or the post's).
    pub text: String,
    /// The text as the platform counts it (X: twitter-text weighted length; LinkedIn,
    /// Facebook: UTF-16 code units), and the most it allows.
    pub length: usize,
    pub limit: usize,
    pub media: Vec<String>,
    /// The thread's parts (X) or the first comment (Facebook, LinkedIn), in order.
    pub follow_ups: Vec<String>,
}

impl From<&herald_domain::publishing::posts::Preview> for PostPreview {
    fn from(p: &herald_domain::publishing::posts::Preview) -> Self {
        Self {
            valid: p.errors.is_empty(),
            scheduled_at: p.scheduled_at,
            targets: p
                .targets
                .iter()
                .map(|t| PreviewTargetView {
                    account_id: t.account_id.0.clone(),
                    platform: t.platform.as_str().to_owned(),
                    text: t.text.clone(),
                    length: t.length,
                    limit: t.limit,
                    media: t.media.iter().map(|m| m.0.clone()).collect(),
                    follow_ups: t.follow_ups.clone(),
                })
                .collect(),
            errors: p
                .errors
                .iter()
                .map(crate::error::ProblemField::from)
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostList {
    pub items: Vec<PostView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListPostsQuery {
    /// Only posts whose `status` is this (`dispatched`: every post a publisher has taken).
    #[param(inline, value_type = Option<String>, pattern = "^(draft|pending_approval|scheduled|rejected|cancelled|publishing|published|partially_published|failed|needs_attention|dispatched)$")]
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1, max_length = 700)]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<usize>,
    /// The calendar: with `to`, only posts scheduled at or after this instant (RFC 3339),
    /// earliest first instead of newest first.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<String>,
    /// The calendar's end: posts scheduled before this instant (RFC 3339); with `from`.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<String>,
}
