//! Instagram: the Instagram API with Instagram Login (`HERALD_INSTAGRAM_API_URL`, e.g.
//! `https://graph.instagram.com/v21.0`); accounts are professional accounts by their user id.
//!
//! | step | call |
//! |---|---|
//! | container | `POST /{user}/media` (`image_url`, or `media_type=REELS` and `video_url`; a carousel's items with `is_carousel_item=true`, then `media_type=CAROUSEL` and `children`), Instagram fetching each file from a short-lived link |
//! | until processed | `GET /{container}?fields=status_code` until `FINISHED` |
//! | post | `POST /{user}/media_publish` (`creation_id`) |
//! | first comment | `POST /{media}/comments` (`message`) |
//! | lookup after a lost answer | the kept container's `status_code`; once `PUBLISHED`, `GET /{user}/media` by its caption (a comment: `GET /{media}/comments`, the account's own) |
//! | who a token is | `GET /me?fields=user_id,username` |
//! | engagement | `GET /{media}?fields=like_count,comments_count` |
//!
//! The container is the post's anchor: it is kept on the variant (`StepProgress`) before it
//! is published, and a container publishes at most once. A retry, in this invocation or a
//! later one, publishes the kept container, or, once it says `PUBLISHED`, finds the media it
//! became; only an `ERROR` or `EXPIRED` container (never published) is replaced by a new one.
//! A container whose answer was lost is simply made again: an unpublished container is seen by
//! no one and expires within a day. Errors are Meta's (`instagram_error`).

use super::*;

/// How often a processing container is asked about.
const PROCESSING_POLL: Duration = Duration::from_millis(500);
/// How many media a lookup reads.
const LOOKUP_PAGE: &str = "50";

/// What a step keeps between attempts (as JSON in `StepProgress`): the container to publish
/// and, for a carousel, its items, so a retry waits on them rather than making them again.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Kept {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    children: Vec<String>,
    /// When the first of them was made (Unix seconds): the post they become is no older.
    at: i64,
}

/// How far Instagram's clock may run behind Herald's when a post's time is compared with
/// when its container was made.
const CLOCK_SKEW_SECONDS: i64 = 60;

impl Kept {
    fn fresh() -> Self {
        Self {
            at: OffsetDateTime::now_utc().unix_timestamp(),
            ..Self::default()
        }
    }

    /// What the step kept, or a fresh start.
    fn read(progress: &dyn StepProgress) -> Self {
        progress
            .kept()
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(Self::fresh)
    }

    async fn keep(&self, progress: &dyn StepProgress) -> Result<(), PlatformError> {
        let value = serde_json::to_string(self).unwrap_or_default();
        progress.keep(&value).await
    }
}

/// Once a container may have been published, nothing may end the step `failed`: a refusal
/// (a token refused, a listing refused) leaves it unknown, and it is looked up again.
fn may_be_live(error: PlatformError) -> PlatformError {
    match error {
        PlatformError::Auth { message, .. } | PlatformError::Permanent { message, .. } => {
            PlatformError::Ambiguous {
                message: format!("{message} (the post may be live: it is looked up again)"),
            }
        }
        other => other,
    }
}

impl HttpPlatforms {
    /// Publishes the kept container, or makes one (kept first), waits for it, and publishes it.
    /// Every wait of one call shares the platform call's time limit.
    pub(crate) async fn publish_instagram(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let deadline = std::time::Instant::now() + self.timeout;
        let mut kept = Kept::read(account.progress);
        if let Some(container) = kept.container.clone() {
            let status = self
                .container_status(account, &container)
                .await
                .map_err(may_be_live)?;
            match status.as_str() {
                "PUBLISHED" => return self.published_from(account, &kept).await,
                "FINISHED" | "IN_PROGRESS" => {
                    return self.publish_container(account, &kept, deadline).await;
                }
                // ERROR, EXPIRED: never published; new containers take its place.
                _ => kept = Kept::fresh(),
            }
        }
        // The links only: the media's streams are not held across the calls.
        let carousel = media.len() > 1;
        let forms = media
            .iter()
            .map(|upload| media_form(upload, carousel))
            .collect::<Result<Vec<_>, _>>()?;
        drop(media);
        let caption = ("caption", account.text.to_owned());
        let form = match forms.len() {
            0 => {
                return Err(PlatformError::Permanent {
                    message: "Instagram publishes nothing without an image or a video".into(),
                    code: None,
                });
            }
            1 => forms.into_iter().flatten().chain([caption]).collect(),
            n => {
                if kept.children.len() != n {
                    let mut children = Vec::with_capacity(n);
                    for form in &forms {
                        children.push(self.container(account, form).await?);
                    }
                    kept.children = children;
                    kept.keep(account.progress).await?;
                }
                if let Err(e) = self.until_finished(account, &kept.children, deadline).await {
                    if e.code() == Some("EXPIRED") {
                        // Items a day old (never published): made again on the next attempt,
                        // which this must not prevent by failing the post.
                        Kept::fresh().keep(account.progress).await?;
                        return Err(PlatformError::Transient {
                            message:
                                "Instagram let the carousel's items expire; they are made again"
                                    .into(),
                            code: Some("EXPIRED".into()),
                            retry_after: None,
                        });
                    }
                    return Err(e);
                }
                vec![
                    ("media_type", "CAROUSEL".to_owned()),
                    ("children", kept.children.join(",")),
                    caption,
                ]
            }
        };
        kept.container = Some(self.container(account, &form).await?);
        kept.keep(account.progress).await?;
        self.publish_container(account, &kept, deadline).await
    }

    /// `POST /{user}/media`: nothing anyone sees, so a lost answer is transient.
    async fn container(
        &self,
        account: Account<'_>,
        form: &[(&str, String)],
    ) -> Result<String, PlatformError> {
        let url = self
            .endpoints
            .instagram_url(&format!("/{}/media", account.external_id));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(form)
            .send()
            .await
            .map_err(upload_transport_error)?;
        Answer::to_upload(response).await?.uploaded(
            "Instagram",
            |b| b["id"].as_str(),
            instagram_error,
        )
    }

    /// Waits while Instagram processes the kept container, then publishes it. A refusal may
    /// follow an attempt whose answer was lost: the container's status says whether it was
    /// published.
    async fn publish_container(
        &self,
        account: Account<'_>,
        kept: &Kept,
        deadline: std::time::Instant,
    ) -> Result<PublishedPost, PlatformError> {
        let container = kept.container.clone().unwrap_or_default();
        self.until_finished(account, std::slice::from_ref(&container), deadline)
            .await?;
        let url = self
            .endpoints
            .instagram_url(&format!("/{}/media_publish", account.external_id));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(&[("creation_id", &container)])
            .send()
            .await
            .map_err(transport_error)?;
        let answer = Answer::to_post(response).await?;
        if !answer.status.is_success() && answer.status != StatusCode::TOO_MANY_REQUESTS {
            let status = self
                .container_status(account, &container)
                .await
                .map_err(may_be_live)?;
            if status == "PUBLISHED" {
                return self.published_from(account, kept).await;
            }
        }
        answer.published("Instagram", |b| b["id"].as_str(), instagram_error)
    }

    /// Asks about containers until each is `FINISHED` (or published), until `deadline`; still
    /// processing then is transient (the kept containers are asked again). One Instagram
    /// could not use (`ERROR`) is a permanent refusal; an `EXPIRED` one has code `EXPIRED`.
    async fn until_finished(
        &self,
        account: Account<'_>,
        containers: &[String],
        deadline: std::time::Instant,
    ) -> Result<(), PlatformError> {
        let mut waiting: Vec<&String> = containers.iter().collect();
        loop {
            let mut still = Vec::new();
            for container in waiting {
                match self.container_status(account, container).await?.as_str() {
                    "FINISHED" | "PUBLISHED" => {}
                    "IN_PROGRESS" => still.push(container),
                    other => {
                        return Err(PlatformError::Permanent {
                            message: format!(
                                "Instagram could not use the media (container status {other}); check the files and post again"
                            ),
                            code: Some(other.to_owned()),
                        });
                    }
                }
            }
            if still.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() + PROCESSING_POLL > deadline {
                return Err(PlatformError::Transient {
                    message: "Instagram is still processing the media; it is asked again".into(),
                    code: None,
                    retry_after: None,
                });
            }
            tokio::time::sleep(PROCESSING_POLL).await;
            waiting = still;
        }
    }

    /// A container's `status_code`.
    async fn container_status(
        &self,
        account: Account<'_>,
        container: &str,
    ) -> Result<String, PlatformError> {
        let url = self
            .endpoints
            .instagram_url(&format!("/{}", engagement::urlencode_path(container)));
        let response = self
            .http
            .get(url)
            .bearer_auth(account.token.expose_secret())
            .query(&[("fields", "status_code")])
            .send()
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        answer.upload_ok(instagram_error)?;
        answer.body["status_code"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| PlatformError::Transient {
                message: "Instagram answered a container's status without one".into(),
                code: None,
                retry_after: None,
            })
    }

    /// The post a published container became: the oldest of the account's media with its
    /// caption made since the container was. Not listed (yet): still unknown.
    async fn published_from(
        &self,
        account: Account<'_>,
        kept: &Kept,
    ) -> Result<PublishedPost, PlatformError> {
        let media = self
            .instagram_media(account.external_id, account.token)
            .await
            .map_err(may_be_live)?;
        became(&media, account.text, kept)
            .map(|(id, _, _)| PublishedPost::new(id))
            .ok_or_else(|| not_listed(kept))
    }

    /// After a lost answer: a kept container that is not `PUBLISHED` was never posted (the
    /// retry publishes it); one that is, is found as `published_from` finds it.
    pub(crate) async fn find_instagram(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let kept = Kept::read(req.progress);
        let Some(container) = &kept.container else {
            // Nothing was kept, so nothing was published: a container is kept first.
            return Ok(Vec::new());
        };
        let account = Account {
            external_id: req.external_id,
            token: req.access_token,
            text: req.text,
            idempotency_key: req.idempotency_key,
            due_at: req.due_at,
            progress: req.progress,
            // A lookup uploads nothing and asks nothing of the platform.
            uploads_until: OffsetDateTime::now_utc(),
            options: &NO_OPTIONS,
        };
        let status = self
            .container_status(account, container)
            .await
            .map_err(|e| match e.kind() {
                herald_domain::model::FailureKind::Auth => e,
                _ => lookup_failed(),
            })?;
        if status != "PUBLISHED" {
            return Ok(Vec::new());
        }
        let media = self
            .instagram_media(req.external_id, req.access_token)
            .await?;
        became(&media, req.text, &kept)
            .cloned()
            .map(|found| vec![found])
            .ok_or_else(|| not_listed(&kept))
    }

    /// The account's newest media as (id, caption, time).
    async fn instagram_media(
        &self,
        external_id: &str,
        token: &SecretString,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let url = self
            .endpoints
            .instagram_url(&format!("/{external_id}/media"));
        let response = self
            .http
            .get(url)
            .bearer_auth(token.expose_secret())
            .query(&[("fields", "id,caption,timestamp"), ("limit", LOOKUP_PAGE)])
            .send()
            .await
            .map_err(lookup_transport_error)?;
        let answer = Answer::to_upload(response)
            .await
            .map_err(|_| lookup_failed())?;
        if !answer.status.is_success() {
            return Err(instagram_error(
                answer.status,
                &answer.headers,
                &answer.body,
                " to the lookup",
            ));
        }
        Ok(graph_items(&answer.body["data"], "caption", "timestamp"))
    }
}

/// The media a published container became: the oldest with its caption made since the
/// container was (a recurring caption's older posts are not it).
fn became<'a>(
    media: &'a [(String, String, Option<OffsetDateTime>)],
    caption: &str,
    kept: &Kept,
) -> Option<&'a (String, String, Option<OffsetDateTime>)> {
    media
        .iter()
        .filter(|(_, c, at)| {
            c == caption && at.is_some_and(|at| at.unix_timestamp() >= kept.at - CLOCK_SKEW_SECONDS)
        })
        .min_by_key(|(_, _, at)| *at)
}

fn not_listed(kept: &Kept) -> PlatformError {
    PlatformError::Ambiguous {
        message: format!(
            "Instagram says the post's container {} was published, but its media is not listed yet",
            kept.container.as_deref().unwrap_or_default()
        ),
    }
}

/// A container's form for one file: Instagram fetches it from the link.
fn media_form(
    upload: &MediaUpload<'_>,
    carousel_item: bool,
) -> Result<Vec<(&'static str, String)>, PlatformError> {
    let MediaBody::Link(link) = &upload.body else {
        return Err(PlatformError::Permanent {
            message: format!(
                "media {} came as bytes to Instagram, which fetches media from a link",
                upload.attachment.media_id
            ),
            code: None,
        });
    };
    let mut form = match (upload.attachment.media_type.kind(), carousel_item) {
        (MediaKind::Video, false) => vec![
            ("media_type", "REELS".to_owned()),
            ("video_url", link.clone()),
        ],
        (MediaKind::Video, true) => vec![
            ("media_type", "VIDEO".to_owned()),
            ("video_url", link.clone()),
        ],
        _ => {
            let mut form = vec![("image_url", link.clone())];
            if let Some(alt_text) = &upload.attachment.alt_text {
                form.push(("alt_text", alt_text.clone()));
            }
            form
        }
    };
    if carousel_item {
        form.push(("is_carousel_item", "true".to_owned()));
    }
    Ok(form)
}

/// (id, text, time) of a Graph listing's items (`2025-01-31T12:00:00+0000` times); an item
/// without text has none.
pub(crate) fn graph_items(
    list: &Value,
    text: &str,
    time: &str,
) -> Vec<(String, String, Option<OffsetDateTime>)> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            Some((
                item["id"].as_str()?.to_owned(),
                item[text].as_str().unwrap_or_default().to_owned(),
                item[time]
                    .as_str()
                    .and_then(|t| OffsetDateTime::parse(t, lookup::GRAPH_TIME).ok()),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_domain::media::{Attachment, MediaType};
    use herald_domain::model::FailureKind;
    use herald_domain::publishing::platform::KeptInMemory;

    fn upload(media_type: MediaType, body: MediaBody) -> (Attachment, MediaBody) {
        let attachment = Attachment {
            alt_text: None,
            media_id: herald_domain::ids::MediaId("med_1".into()),
            key: "media/t/med_1".into(),
            etag: "e".into(),
            media_type,
            size: 10,
            dimensions: None,
            file_name: "f".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        (attachment, body)
    }

    #[test]
    fn a_container_names_what_instagram_fetches() {
        let (image, body) = upload(MediaType::Jpeg, MediaBody::Link("https://s3/a".into()));
        let form = media_form(
            &MediaUpload {
                attachment: &image,
                body,
            },
            false,
        )
        .unwrap();
        assert_eq!(form, [("image_url", "https://s3/a".to_owned())]);
        let (mut described, body) = upload(MediaType::Jpeg, MediaBody::Link("https://s3/d".into()));
        described.alt_text = Some("A red bicycle".into());
        let form = media_form(
            &MediaUpload {
                attachment: &described,
                body,
            },
            false,
        )
        .unwrap();
        assert_eq!(
            form,
            [
                ("image_url", "https://s3/d".to_owned()),
                ("alt_text", "A red bicycle".to_owned())
            ]
        );
        let (video, body) = upload(MediaType::Mp4, MediaBody::Link("https://s3/v".into()));
        let form = media_form(
            &MediaUpload {
                attachment: &video,
                body,
            },
            true,
        )
        .unwrap();
        assert_eq!(
            form,
            [
                ("media_type", "VIDEO".to_owned()),
                ("video_url", "https://s3/v".to_owned()),
                ("is_carousel_item", "true".to_owned()),
            ]
        );
        let (video, body) = upload(MediaType::Mp4, MediaBody::Link("https://s3/v".into()));
        let reel = media_form(
            &MediaUpload {
                attachment: &video,
                body,
            },
            false,
        )
        .unwrap();
        assert_eq!(reel[0], ("media_type", "REELS".to_owned()));
        let (image, _) = upload(MediaType::Jpeg, MediaBody::Link(String::new()));
        let bytes = MediaBody::Bytes(herald_domain::media::MediaContent::from_bytes(vec![1]));
        let refused = media_form(
            &MediaUpload {
                attachment: &image,
                body: bytes,
            },
            false,
        );
        assert!(
            refused
                .unwrap_err()
                .message()
                .contains("fetches media from a link")
        );
    }

    #[test]
    fn a_published_container_is_the_oldest_post_with_its_caption_since_it_was_made() {
        let at = |s: i64| Some(OffsetDateTime::from_unix_timestamp(s).unwrap());
        let kept = Kept {
            container: Some("c".into()),
            children: vec![],
            at: 10_000,
        };
        let media = vec![
            ("newer".to_owned(), "Weekly #podcast".to_owned(), at(10_400)),
            ("ours".to_owned(), "Weekly #podcast".to_owned(), at(10_050)),
            ("other".to_owned(), "Another".to_owned(), at(10_060)),
            (
                "last-week".to_owned(),
                "Weekly #podcast".to_owned(),
                at(9_000),
            ),
        ];
        assert_eq!(
            became(&media, "Weekly #podcast", &kept).map(|m| m.0.as_str()),
            Some("ours")
        );
        // Only last week's: not it (the listing has not caught up).
        assert_eq!(became(&media[3..], "Weekly #podcast", &kept), None);
        // What is kept reads back; anything else starts afresh.
        let json = serde_json::to_string(&kept).unwrap();
        assert_eq!(Kept::read(&KeptInMemory::with(json)), kept);
        assert_eq!(Kept::read(&KeptInMemory::with("not json")).container, None);
    }

    #[test]
    fn instagrams_own_codes_are_a_rate_limit_and_a_wait() {
        let h = HeaderMap::new();
        let limit =
            serde_json::json!({"error": {"code": 9, "error_subcode": 2207042, "message": "limit"}});
        let e = instagram_error(StatusCode::BAD_REQUEST, &h, &limit, POST);
        assert_eq!(
            (e.kind(), e.retry_after()),
            (FailureKind::RateLimited, Some(Duration::from_secs(3600)))
        );
        let not_ready = serde_json::json!({"error": {"code": 9007, "error_subcode": 2207027, "message": "wait"}});
        assert_eq!(
            instagram_error(StatusCode::BAD_REQUEST, &h, &not_ready, POST).kind(),
            FailureKind::Transient
        );
        let refused = serde_json::json!({"error": {"code": 100, "message": "bad"}});
        assert_eq!(
            instagram_error(StatusCode::BAD_REQUEST, &h, &refused, POST).kind(),
            FailureKind::Permanent
        );
    }

    #[test]
    fn graph_items_keep_media_without_a_caption() {
        let items = graph_items(
            &serde_json::json!([
                {"id": "1", "caption": "a", "timestamp": "2026-01-01T10:00:00+0000"},
                {"id": "2", "timestamp": "2026-01-01T11:00:00+0000"},
                {"caption": "no id"},
            ]),
            "caption",
            "timestamp",
        );
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[1].1.as_str(), items[1].2.map(|t| t.hour())),
            ("", Some(11))
        );
    }
}
