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

impl HttpPlatforms {
    /// Publishes the kept container, or makes one (kept first), waits for it, and publishes it.
    pub(crate) async fn publish_instagram(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        if let Some(kept) = account.progress.kept() {
            match self.container_status(account, &kept).await?.as_str() {
                "PUBLISHED" => return self.published_from(account, &kept).await,
                "FINISHED" | "IN_PROGRESS" => {
                    return self.publish_container(account, &kept).await;
                }
                // ERROR, EXPIRED: never published; a new container takes its place.
                _ => {}
            }
        }
        let container = self.make_container(account, media).await?;
        account.progress.keep(&container).await?;
        self.publish_container(account, &container).await
    }

    /// One container for the media: the only one, or a carousel of them.
    async fn make_container(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<String, PlatformError> {
        let caption = ("caption", account.text.to_owned());
        // The links only: the media's streams are not held across the calls.
        let carousel = media.len() > 1;
        let forms = media
            .iter()
            .map(|upload| media_form(upload, carousel))
            .collect::<Result<Vec<_>, _>>()?;
        drop(media);
        match forms.len() {
            0 => Err(PlatformError::Permanent {
                message: "Instagram publishes nothing without an image or a video".into(),
                code: None,
            }),
            1 => {
                let mut form = forms.into_iter().next().unwrap_or_default();
                form.push(caption);
                self.container(account, &form).await
            }
            _ => {
                let mut children = Vec::with_capacity(forms.len());
                for form in &forms {
                    children.push(self.container(account, form).await?);
                }
                for child in &children {
                    self.until_finished(account, child).await?;
                }
                let form = vec![
                    ("media_type", "CAROUSEL".to_owned()),
                    ("children", children.join(",")),
                    caption,
                ];
                self.container(account, &form).await
            }
        }
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

    /// Waits while Instagram processes a container, then publishes it. A container refused
    /// after all may have been published by an attempt whose answer was lost: its status says.
    async fn publish_container(
        &self,
        account: Account<'_>,
        container: &str,
    ) -> Result<PublishedPost, PlatformError> {
        self.until_finished(account, container).await?;
        let url = self
            .endpoints
            .instagram_url(&format!("/{}/media_publish", account.external_id));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(&[("creation_id", container)])
            .send()
            .await
            .map_err(transport_error)?;
        let answer = Answer::to_post(response).await?;
        if answer.status.is_client_error()
            && answer.status != StatusCode::TOO_MANY_REQUESTS
            && self.container_status(account, container).await? == "PUBLISHED"
        {
            return self.published_from(account, container).await;
        }
        answer.published("Instagram", |b| b["id"].as_str(), instagram_error)
    }

    /// Asks about a container until it is `FINISHED` (or published), within the platform call's
    /// time limit; still processing then is transient (the kept container is asked again).
    async fn until_finished(
        &self,
        account: Account<'_>,
        container: &str,
    ) -> Result<(), PlatformError> {
        let started = std::time::Instant::now();
        loop {
            match self.container_status(account, container).await?.as_str() {
                "FINISHED" | "PUBLISHED" => return Ok(()),
                "IN_PROGRESS" if started.elapsed() + PROCESSING_POLL <= self.timeout => {
                    tokio::time::sleep(PROCESSING_POLL).await;
                }
                "IN_PROGRESS" => {
                    return Err(PlatformError::Transient {
                        message: "Instagram is still processing the media; it is asked again"
                            .into(),
                        code: None,
                        retry_after: None,
                    });
                }
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

    /// The media a published container became: the account's newest with its caption. Not
    /// listed (yet): still unknown, so nothing may be published again.
    async fn published_from(
        &self,
        account: Account<'_>,
        container: &str,
    ) -> Result<PublishedPost, PlatformError> {
        let found = self
            .instagram_media(account.external_id, account.token)
            .await?
            .into_iter()
            .find(|(_, caption, _)| caption == account.text);
        found
            .map(|(id, _, _)| PublishedPost::new(id))
            .ok_or_else(|| PlatformError::Ambiguous {
                message: format!(
                    "Instagram says container {container} was published, but its media is not listed yet"
                ),
            })
    }

    /// After a lost answer: a kept container that is not `PUBLISHED` was never posted (the
    /// retry publishes it); one that is, is found by its caption.
    pub(crate) async fn find_instagram(
        &self,
        req: &LookupRequest<'_>,
    ) -> Result<Vec<(String, String, Option<OffsetDateTime>)>, PlatformError> {
        let Some(kept) = req.progress.kept() else {
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
        };
        if self.container_status(account, &kept).await.map_err(|e| {
            if e.kind() == herald_domain::model::FailureKind::Auth {
                e
            } else {
                lookup_failed()
            }
        })? != "PUBLISHED"
        {
            return Ok(Vec::new());
        }
        match self
            .instagram_media(req.external_id, req.access_token)
            .await?
        {
            found if found.iter().any(|(_, c, _)| c == req.text) => Ok(found),
            _ => Err(PlatformError::Ambiguous {
                message: format!(
                    "Instagram says container {kept} was published, but its media is not listed yet"
                ),
            }),
        }
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
        _ => vec![("image_url", link.clone())],
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

    fn upload(media_type: MediaType, body: MediaBody) -> (Attachment, MediaBody) {
        let attachment = Attachment {
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
