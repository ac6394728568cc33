//! Steps 2 and 3: the platform calls, with in-place retries, the media they carry, and the
//! lookup that adopts a post an ambiguous failure may have created.

use super::*;
use crate::alerts::Alert;
use crate::media::{Attachment, Carriage, PlatformMediaRules};
use crate::model::{Account, FailureKind, Post};
use crate::ports::BreakerChange;
use crate::publishing::gates::BreakerState;
use crate::publishing::options::TargetOptions;
use crate::publishing::platform::{
    ChunkSource, HERALD_STORE_CODE, LookupRequest, MediaBody, MediaUpload, PublishRequest,
    StepProgress, UPLOAD_CHUNK_BYTES, upload_allowance,
};

impl PublishService {
    /// Calls the platform until it answers for good, the attempts or the time run out, or
    /// the circuit opens.
    pub(super) async fn attempt(
        &self,
        message: &PublishMessage,
        post: &Post,
        account: &Account,
        mut lookup_first: bool,
        delivery: Delivery,
        attempt_id: &str,
    ) -> Attempted {
        let Some(Step {
            text,
            media,
            reply_to,
            step,
        }) = Step::of(post, &message.account_id)
        else {
            return Attempted::Failed(PlatformError::Permanent {
                message: "the variant's next step has nothing to publish or nothing to answer"
                    .into(),
                code: None,
            });
        };
        // Uploading the media comes on top of the post's own call: the whole file, or for a
        // resumable upload one chunk (the rest continues in later invocations); a platform
        // that fetches them itself takes its own time.
        let rules = PlatformMediaRules::of(account.platform);
        let chunked = media
            .iter()
            .any(|a| rules.carriage(a.media_type) == Carriage::Chunked);
        let media_time: Duration = media
            .iter()
            .map(|a| match rules.carriage(a.media_type) {
                Carriage::Uploaded => upload_allowance(self.config.platform_timeout, a.size),
                Carriage::Chunked => {
                    upload_allowance(self.config.platform_timeout, a.size.min(UPLOAD_CHUNK_BYTES))
                }
                Carriage::Fetched => Duration::ZERO,
            })
            .sum::<Duration>()
            // An image's alt text is one more call where the platform takes it apart (X).
            + self.config.platform_timeout
                * u32::try_from(media.iter().filter(|a| a.alt_text.is_some()).count())
                    .unwrap_or(u32::MAX);
        if let Some(budget) = self.config.invocation_budget
            && media_time + self.config.platform_timeout > budget
        {
            return Attempted::Failed(PlatformError::Permanent {
                message: format!(
                    "the media cannot be uploaded within the publisher's time limit ({} s allows about {} MB for one file); post smaller media or raise the publisher's timeout",
                    budget.as_secs(),
                    budget
                        .saturating_sub(self.config.platform_timeout * 2)
                        .as_secs()
                        .saturating_mul(crate::publishing::platform::UPLOAD_BYTES_PER_SECOND)
                        / crate::media::MB,
                ),
                code: None,
            });
        }
        // One key per variant step, whatever the attempt or invocation.
        let idempotency_key = format!("herald-{}-{}-{step}", post.id, message.account_id);
        let key = StepKey {
            id: &idempotency_key,
            // A millisecond per step, so a thread's parts sort in order (Bluesky's keys).
            due_at: post.scheduled_at + time::Duration::milliseconds(i64::from(step)),
        };
        let variant = post.variants.get(&message.account_id);
        let kept_before = variant.and_then(|v| v.progress.clone());
        let no_options = TargetOptions::default();
        let options = variant.map_or(&no_options, |v| &v.options);
        let progress = VariantProgress {
            store: &*self.store,
            variant: message.variant(),
            attempt_id,
            kept: std::sync::Mutex::new(kept_before.clone()),
        };
        let mut last: Option<(PlatformError, bool)> = None;
        for attempt in 1..=self.config.max_attempts.max(1) {
            if attempt > 1 {
                let wait = match &last {
                    Some((e, _)) => e
                        .retry_after()
                        .unwrap_or_default()
                        .max(self.config.retry.delay(attempt - 1, &*self.entropy)),
                    None => Duration::ZERO,
                };
                let wait = if lookup_first {
                    wait.max(self.config.lookup_delay)
                } else {
                    wait
                };
                if !self.has_time(delivery, wait + media_time) {
                    break;
                }
                self.clock.sleep(wait).await;
            } else if !self.has_time(delivery, media_time) {
                break;
            }
            if lookup_first {
                match self
                    .lookup(post, account, text, reply_to, key, &progress)
                    .await
                {
                    Ok(Some(found)) => {
                        tracing::info!(platform_post_id = %found.platform_post_id, "found on the platform after an ambiguous attempt; adopted");
                        return Attempted::Published(found, Done::Adopted);
                    }
                    // Not there: it is safe to send it now.
                    Ok(None) => {}
                    Err(e) => {
                        // Still unknown: the post may exist, so it must not be sent again.
                        tracing::warn!(kind = e.kind().as_str(), "the lookup failed");
                        last = Some((e, true));
                        continue;
                    }
                }
            }
            let media = match self.open_media(media, rules).await {
                Ok(media) => media,
                Err(error) if error.kind() == FailureKind::Permanent => {
                    return Attempted::Failed(error);
                }
                Err(error) => {
                    // Storage, not the platform, failed: the account's breaker is not told.
                    tracing::warn!(attempt, message = %error.message(), "reading the media failed");
                    last = Some((error, false));
                    continue;
                }
            };
            let result = self
                .platform
                .publish(PublishRequest {
                    platform: account.platform,
                    external_id: &account.external_id,
                    access_token: &account.access_token,
                    text,
                    correlation_id: &message.correlation_id,
                    media,
                    reply_to,
                    idempotency_key: key.id,
                    due_at: key.due_at,
                    progress: &progress,
                    uploads_until: delivery.deadline - self.config.platform_timeout,
                    options,
                })
                .await;
            let error = match result {
                Ok(published) => return Attempted::Published(published, Done::Published),
                Err(e) => e,
            };
            match &error {
                // Moved on and kept: it goes on in a fresh delivery.
                PlatformError::UploadContinues {
                    message,
                    moved: true,
                } if progress.kept() != kept_before => {
                    tracing::info!(attempt, upload = %message, "the upload continues in the next invocation");
                    return Attempted::Continues(error, lookup_first);
                }
                // Nothing moved (no time left, the platform still processing): this delivery
                // failed, not the platform.
                PlatformError::UploadContinues { message, .. } => {
                    tracing::warn!(attempt, upload = %message, "the upload could not move on");
                    last = Some((error, false));
                    break;
                }
                // Herald's own storage failed (reading the media, keeping progress): not the
                // platform's failure.
                e if e.code() == Some(HERALD_STORE_CODE) => {
                    tracing::warn!(attempt, message = %e.message(), "Herald's storage failed during the call");
                    last = Some((error, false));
                    continue;
                }
                _ => {}
            }
            tracing::warn!(attempt, kind = error.kind().as_str(), code = ?error.code(), message = %error.message(), "publish attempt failed");
            match error.kind() {
                FailureKind::Permanent | FailureKind::Auth => return Attempted::Failed(error),
                FailureKind::RateLimited => {
                    let wait = error.retry_after().unwrap_or(Duration::from_secs(60));
                    return Attempted::RateLimited(error, wait);
                }
                FailureKind::Transient | FailureKind::Ambiguous => {
                    let ambiguous = error.kind() == FailureKind::Ambiguous;
                    let breaker = self
                        .store
                        .update_breaker(
                            &message.tenant_id,
                            &message.account_id,
                            BreakerChange::Failure {
                                policy: self.config.breaker,
                                now: self.clock.now(),
                            },
                        )
                        .await;
                    lookup_first = ambiguous;
                    let opened = matches!(&breaker, Ok(b) if b.state != BreakerState::Closed);
                    last = Some((error, ambiguous));
                    if opened {
                        tracing::warn!("the account's circuit opened");
                        self.alerter
                            .raise(Alert {
                                key: format!(
                                    "circuit_open:{}:{}",
                                    message.tenant_id, message.account_id
                                ),
                                title: format!("{} account's circuit opened", account.platform),
                                detail: format!(
                                    "tenant {}, account {}: {} consecutive failures; its posts wait, then one probe goes",
                                    message.tenant_id,
                                    message.account_id,
                                    self.config.breaker.failure_threshold
                                ),
                            })
                            .await;
                        break;
                    }
                }
            }
        }
        match last {
            // The upload moved on before this delivery gave up: it goes on, uncounted.
            Some((error, false)) if chunked && progress.kept() != kept_before => {
                Attempted::Continues(error, false)
            }
            Some((error, lookup)) => Attempted::GaveUp { error, lookup },
            None => Attempted::GaveUp {
                error: PlatformError::Transient {
                    message: "the invocation had no time left to call the platform".into(),
                    code: None,
                    retry_after: None,
                },
                lookup: lookup_first,
            },
        }
    }

    /// Opens exactly the versions of the variant's media that were checked when the post was
    /// written (for a platform that fetches them itself, or an upload read in chunks: checks
    /// the version is still the stored one, then signs a link to it or hands over a reader of
    /// its ranges). One that was replaced or removed since fails the variant for good, with a
    /// reason a person can act on; a storage outage is transient.
    pub(super) async fn open_media<'a>(
        &self,
        media: &'a [Attachment],
        rules: &PlatformMediaRules,
    ) -> Result<Vec<MediaUpload<'a>>, PlatformError> {
        let mut uploads = Vec::with_capacity(media.len());
        for attachment in media {
            let gone = |what: &str| PlatformError::Permanent {
                message: format!(
                    "media {} {what} after the post was checked; attach new media and post again",
                    attachment.media_id
                ),
                code: None,
            };
            let body = match rules.carriage(attachment.media_type) {
                Carriage::Fetched => self.media_link(attachment).await,
                Carriage::Chunked => self.checked(attachment).await.map(|stored| {
                    stored.map(|()| {
                        MediaBody::Chunks(ChunkSource::new(self.media.clone(), attachment))
                    })
                }),
                Carriage::Uploaded => self
                    .media
                    .open(&attachment.key, &attachment.etag)
                    .await
                    .map(|c| c.map(MediaBody::Bytes)),
            };
            match body {
                Ok(Some(body)) => uploads.push(MediaUpload { attachment, body }),
                Ok(None) => return Err(gone("was removed from storage")),
                Err(crate::StoreError::Conflict) => return Err(gone("was replaced")),
                Err(e) => {
                    return Err(PlatformError::Transient {
                        message: format!("reading media {} failed: {e}", attachment.media_id),
                        code: None,
                        retry_after: None,
                    });
                }
            }
        }
        Ok(uploads)
    }

    /// A link to `attachment`'s stored file while it is still the version checked (`None`
    /// when it is gone, `Conflict` when it was replaced).
    async fn media_link(
        &self,
        attachment: &Attachment,
    ) -> Result<Option<MediaBody>, crate::StoreError> {
        if self.checked(attachment).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(MediaBody::Link(
            self.media
                .presign_download(&attachment.key, MEDIA_LINK_LIFETIME, self.clock.now())
                .await?,
        )))
    }

    /// `Some` while `attachment`'s stored file is the version checked (`None` when it is
    /// gone, `Conflict` when it was replaced).
    async fn checked(&self, attachment: &Attachment) -> Result<Option<()>, crate::StoreError> {
        match self.media.head(&attachment.key).await? {
            None => Ok(None),
            Some(stored) if stored.etag != attachment.etag => Err(crate::StoreError::Conflict),
            Some(_) => Ok(Some(())),
        }
    }

    pub(super) async fn lookup(
        &self,
        post: &Post,
        account: &Account,
        text: &str,
        reply_to: Option<&str>,
        key: StepKey<'_>,
        progress: &dyn StepProgress,
    ) -> Result<Option<PublishedPost>, PlatformError> {
        let since = post.scheduled_at.min(post.updated_at) - self.config.lookup_window;
        self.platform
            .find_post(LookupRequest {
                platform: account.platform,
                external_id: &account.external_id,
                access_token: &account.access_token,
                text,
                since,
                reply_to,
                idempotency_key: key.id,
                due_at: key.due_at,
                progress,
            })
            .await
    }
}

/// How long a platform that fetches media may take to start reading a file (Instagram reads
/// a video while it processes it, minutes after the container was made).
const MEDIA_LINK_LIFETIME: Duration = Duration::from_secs(60 * 60);

/// The variant's step progress, kept on the variant by this attempt while it holds it.
struct VariantProgress<'a> {
    store: &'a dyn crate::ports::PublishStore,
    variant: crate::ports::VariantRef,
    attempt_id: &'a str,
    kept: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for VariantProgress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantProgress")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl StepProgress for VariantProgress<'_> {
    fn kept(&self) -> Option<String> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn keep(&self, value: &str) -> Result<(), PlatformError> {
        self.store
            .keep_progress(&self.variant, self.attempt_id, value)
            .await
            .map_err(|e| match e {
                // Another attempt holds the variant now: this one stops (its outcome write
                // would be refused too), rather than make more on the platform.
                crate::StoreError::Conflict => PlatformError::Permanent {
                    message: "this attempt no longer holds the variant; another carries on".into(),
                    code: None,
                },
                e => PlatformError::Transient {
                    message: format!("keeping the step's progress failed: {e}"),
                    code: Some(HERALD_STORE_CODE.into()),
                    retry_after: None,
                },
            })?;
        *self.kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(value.to_owned());
        Ok(())
    }
}

/// What names a step on a platform, the same in every attempt and invocation.
#[derive(Clone, Copy)]
pub(super) struct StepKey<'a> {
    id: &'a str,
    due_at: time::OffsetDateTime,
}

/// What the variant's current step publishes: the post itself (its text and media), or a
/// follow-up (text only) answering the platform post before it.
struct Step<'a> {
    text: &'a str,
    media: &'a [Attachment],
    reply_to: Option<&'a str>,
    step: u32,
}

impl<'a> Step<'a> {
    /// `None` when the step has no text, or a follow-up has nothing to answer.
    fn of(post: &'a Post, account: &crate::ids::AccountId) -> Option<Self> {
        let variant = post.variants.get(account)?;
        let text = post.step_text(account, variant.step)?;
        match variant.step {
            0 => Some(Step {
                text,
                media: post.media_for(account),
                reply_to: None,
                step: 0,
            }),
            step => Some(Step {
                text,
                media: &[],
                reply_to: Some(variant.parent_id()?),
                step,
            }),
        }
    }
}
