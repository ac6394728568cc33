//! Facebook Pages: unpublished photo uploads attached to a feed post, or a video that is its
//! own post. A video goes up in Facebook's resumable upload (`POST /{page}/videos` with
//! `upload_phase=start`, then `transfer` for each chunk Facebook asks for by its offsets, then
//! `finish` with the description, which publishes it), kept after every chunk
//! (`resumable.rs`) so a large video continues across invocations.

use super::*;
use resumable::{Checkpoint, Chunked};

/// Facebook's answer to a chunk at an offset other than the one it expects (its error data
/// names the right one): after a lost answer, the resumed upload carries on from there.
const OFFSET_MISMATCH: i64 = 1_363_037;

impl HttpPlatforms {
    /// Facebook: photos are uploaded unpublished (`POST /{page}/photos`, `published=false`,
    /// with their `alt_text_custom`) and attached to the feed post (`attached_media`); a video
    /// is its own post (`POST /{page}/videos` with the text as its description). A link
    /// preview sends the text's first link as the post's `link`.
    pub(crate) async fn publish_facebook(
        &self,
        account: Account<'_>,
        mut media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        if media.len() == 1
            && media[0].attachment.media_type.kind() == MediaKind::Video
            && let Some(video) = media.pop()
        {
            return match Chunked::of("Facebook", &video, account.uploads_until) {
                Some(mut chunked) => self.publish_facebook_resumable(account, &mut chunked).await,
                None => self.publish_facebook_video(account, video).await,
            };
        }
        let mut form: Vec<(String, String)> = vec![("message".into(), account.text.to_owned())];
        let preview = account
            .options
            .facebook
            .as_ref()
            .and_then(|f| f.link_preview);
        if preview == Some(true)
            && let Some(link) = herald_domain::publishing::options::first_link(account.text)
        {
            form.push(("link".into(), link.to_owned()));
        }
        for (i, upload) in media.into_iter().enumerate() {
            let id = self.upload_facebook_photo(account, upload).await?;
            form.push((
                format!("attached_media[{i}]"),
                serde_json::json!({ "media_fbid": id }).to_string(),
            ));
        }
        let response = self
            .page_form(&account, "feed", &form)
            .await
            .map_err(transport_error)?;
        Answer::to_post(response)
            .await?
            .published("Facebook", |b| b["id"].as_str(), facebook_error)
    }

    pub(crate) async fn upload_facebook_photo(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let timeout = self.upload_timeout(upload.attachment);
        let mut form = Form::new().text("published", "false");
        if let Some(alt_text) = &upload.attachment.alt_text {
            form = form.text("alt_text_custom", alt_text.clone());
        }
        let form = form.part("source", media_part(upload)?);
        let response = self
            .post_page_form(&account, "photos", form, timeout)
            .await
            .map_err(upload_transport_error)?;
        Answer::to_upload(response).await?.uploaded(
            "Facebook",
            |b| b["id"].as_str(),
            facebook_error,
        )
    }

    /// A multipart POST to one of the Page's edges (`photos`, `videos`).
    pub(crate) async fn post_page_form(
        &self,
        account: &Account<'_>,
        edge: &str,
        form: Form,
        timeout: Duration,
    ) -> Result<Response, reqwest::Error> {
        let url = self
            .endpoints
            .facebook_url(&format!("/{}/{edge}", account.external_id));
        self.http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(timeout)
            .send()
            .await
    }

    /// The upload is the post here: a lost answer is ambiguous, as for any post.
    pub(crate) async fn publish_facebook_video(
        &self,
        account: Account<'_>,
        video: MediaUpload<'_>,
    ) -> Result<PublishedPost, PlatformError> {
        let timeout = self.upload_timeout(video.attachment);
        let form = Form::new()
            .text("description", account.text.to_owned())
            .part("source", media_part(video)?);
        let response = self
            .post_page_form(&account, "videos", form, timeout)
            .await
            .map_err(transport_error)?;
        Answer::to_post(response)
            .await?
            .published("Facebook", |b| b["id"].as_str(), facebook_error)
    }

    /// Facebook's resumable upload, from the step's checkpoint when it has one for this file;
    /// its `finish` is the post (a lost answer is ambiguous, and the video is the post's id).
    async fn publish_facebook_resumable(
        &self,
        account: Account<'_>,
        up: &mut Chunked<'_>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut kept = match Checkpoint::read(account.progress, up.source.etag()) {
            Some(kept) => kept,
            None => {
                let answer = self
                    .video_phase(
                        account,
                        &[
                            ("upload_phase", "start"),
                            ("file_size", &up.size().to_string()),
                        ],
                    )
                    .await?;
                let (Some(video), Some(session)) = (
                    answer.body["video_id"].as_str(),
                    answer.body["upload_session_id"].as_str(),
                ) else {
                    return Err(upload_without_id("Facebook"));
                };
                let mut kept = Checkpoint::new(up.source.etag(), video.to_owned());
                kept.session = Some(session.to_owned());
                (kept.sent, kept.next) = offsets(&answer.body)?;
                kept.keep(account.progress).await?;
                kept
            }
        };
        let session = kept.session.clone().unwrap_or_default();
        while kept.sent < kept.next {
            let chunk = up
                .next_chunk(self.timeout, kept.sent, kept.next - kept.sent)
                .await?;
            let len = chunk.len() as u64;
            let form = Form::new()
                .text("upload_phase", "transfer")
                .text("upload_session_id", session.clone())
                .text("start_offset", kept.sent.to_string())
                .part(
                    "video_file_chunk",
                    Part::stream_with_length(reqwest::Body::from(chunk), len).file_name("chunk"),
                );
            let response = self
                .post_page_form(
                    &account,
                    "videos",
                    form,
                    upload_allowance(self.timeout, len),
                )
                .await
                .map_err(upload_transport_error)?;
            let answer = Answer::to_upload(response).await?;
            let before = kept.sent;
            let error = &answer.body["error"];
            (kept.sent, kept.next) = if error["error_subcode"].as_i64() == Some(OFFSET_MISMATCH) {
                offsets(&error["error_data"])?
            } else {
                answer.upload_ok(facebook_error)?;
                offsets(&answer.body)?
            };
            kept.keep(account.progress).await?;
            // Only more bytes taken is progress (an adopted offset may also go back).
            up.moved |= kept.sent > before;
        }
        // Kept before it is sent: a retry after a lost answer sends it again (Facebook
        // publishes a session's video once) once the lookup has not found the post.
        let repeat = kept.done;
        if !repeat {
            kept.done = true;
            kept.keep(account.progress).await?;
        }
        let finish = [
            ("upload_phase", "finish"),
            ("upload_session_id", session.as_str()),
            ("description", account.text),
        ];
        let response = self
            .page_form(&account, "videos", &finish)
            .await
            .map_err(transport_error)?;
        let answer = Answer::to_post(response).await?;
        if answer.status.is_success() && answer.body["success"].as_bool() == Some(true) {
            return Ok(published(&kept.id, &answer.headers));
        }
        let error = match answer.status.is_success() {
            true => PlatformError::Ambiguous {
                message: "Facebook answered the video's finish without saying it succeeded".into(),
            },
            false => facebook_error(answer.status, &answer.headers, &answer.body, POST),
        };
        // Once a finish was sent, the video may be live: a refusal of the repeat leaves it
        // unknown (looked up again), never failed.
        Err(match error {
            PlatformError::Permanent { message, .. } | PlatformError::Auth { message, .. }
                if repeat =>
            {
                PlatformError::Ambiguous {
                    message: format!("{message} (the video may be live: it is looked up again)"),
                }
            }
            error => error,
        })
    }

    /// `start` of the resumable upload.
    async fn video_phase(
        &self,
        account: Account<'_>,
        form: &[(&str, &str)],
    ) -> Result<Answer, PlatformError> {
        let response = self
            .page_form(&account, "videos", form)
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        answer.upload_ok(facebook_error)?;
        Ok(answer)
    }

    /// A form POST to one of the Page's edges (`feed`, `videos`).
    async fn page_form<K: serde::Serialize, V: serde::Serialize>(
        &self,
        account: &Account<'_>,
        edge: &str,
        form: &[(K, V)],
    ) -> Result<Response, reqwest::Error> {
        let url = self
            .endpoints
            .facebook_url(&format!("/{}/{edge}", account.external_id));
        self.http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(form)
            .send()
            .await
    }
}

/// The chunk Facebook asks for next (`start_offset`, `end_offset`: numbers as strings); when
/// both are the file's size, every byte is there.
fn offsets(body: &Value) -> Result<(u64, u64), PlatformError> {
    let number = |name: &str| {
        let v = &body[name];
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    };
    match (number("start_offset"), number("end_offset")) {
        (Some(start), Some(end)) if start <= end => Ok((start, end)),
        _ => Err(PlatformError::Transient {
            message: "Facebook's answer to the video upload named no offsets; it is asked again"
                .into(),
            code: None,
            retry_after: None,
        }),
    }
}
