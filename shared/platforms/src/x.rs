//! X: media uploads and the tweet. An image or a GIF goes up in one `POST /2/media/upload`;
//! a video in X's chunked upload on the same endpoint (`command=INIT`, one `APPEND` per
//! chunk with its `segment_index`, `FINALIZE`, then `GET ?command=STATUS` until X has
//! processed it), kept after every chunk (`resumable.rs`) so a large video continues across
//! invocations.

use super::*;
use resumable::{Checkpoint, Chunked};

/// The longest X is asked to wait between two processing checks.
const MAX_STATUS_WAIT: Duration = Duration::from_secs(5);

impl HttpPlatforms {
    /// X: each file in one `POST /2/media/upload` (multipart `media`, `media_category`) and
    /// its alt text in `POST /2/media/metadata`, then the tweet with `media.media_ids` and
    /// the variant's `reply_settings`.
    pub(crate) async fn publish_x(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut media_ids = Vec::with_capacity(media.len());
        for upload in media {
            let alt_text = upload.attachment.alt_text.as_deref();
            let id = match Chunked::of("X", &upload, account.uploads_until) {
                Some(mut chunked) => self.upload_x_chunked(account, &mut chunked).await?,
                None => self.upload_x(account, upload).await?,
            };
            if let Some(alt_text) = alt_text {
                self.x_alt_text(account, &id, alt_text).await?;
            }
            media_ids.push(id);
        }
        let mut body = serde_json::json!({ "text": account.text });
        if !media_ids.is_empty() {
            body["media"] = serde_json::json!({ "media_ids": media_ids });
        }
        if let Some(settings) = account.options.x.as_ref().and_then(|x| x.reply_settings) {
            body["reply_settings"] = settings.x().into();
        }
        let url = self.endpoints.x_url("/2/tweets");
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        Answer::to_post(response)
            .await?
            .published("X", |b| b["data"]["id"].as_str(), x_error)
    }

    pub(crate) async fn upload_x(
        &self,
        account: Account<'_>,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let a = upload.attachment;
        let category = match (a.media_type, a.media_type.kind()) {
            (MediaType::Gif, _) => "tweet_gif",
            (_, MediaKind::Video) => "tweet_video",
            _ => "tweet_image",
        };
        let size = a.size;
        let form = Form::new()
            .text("media_category", category)
            .part("media", media_part(upload)?);
        let answer = self.x_upload_command(account, form, size).await?;
        answer.body["data"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| upload_without_id("X"))
    }

    /// X's chunked upload, from the step's checkpoint when it has one for this file.
    async fn upload_x_chunked(
        &self,
        account: Account<'_>,
        up: &mut Chunked<'_>,
    ) -> Result<String, PlatformError> {
        let mut kept = match Checkpoint::read(account.progress, up.source.etag()) {
            Some(kept) => kept,
            None => {
                let kept = self.x_init(account, up).await?;
                kept.keep(account.progress).await?;
                kept
            }
        };
        while kept.sent < up.size() {
            let chunk = up
                .next_chunk(self.timeout, kept.sent, UPLOAD_CHUNK_BYTES)
                .await?;
            let len = chunk.len() as u64;
            let form = Form::new()
                .text("command", "APPEND")
                .text("media_id", kept.id.clone())
                .text("segment_index", kept.next.to_string())
                .part(
                    "media",
                    Part::stream_with_length(reqwest::Body::from(chunk), len).file_name("chunk"),
                );
            self.x_upload_command(account, form, len).await?;
            kept.sent += len;
            kept.next += 1;
            kept.keep(account.progress).await?;
            up.moved = true;
        }
        let mut processing = None;
        if !kept.done {
            // FINALIZE, and then the tweet, each need a call's time.
            if !up.call_fits(self.timeout) {
                return Err(up.out_of_time(kept.sent));
            }
            let form = Form::new()
                .text("command", "FINALIZE")
                .text("media_id", kept.id.clone());
            let answer = self.x_upload_command(account, form, 0).await?;
            processing = Some(answer.body["data"]["processing_info"].clone());
            kept.done = true;
            kept.keep(account.progress).await?;
            up.moved = true;
        }
        self.x_processed(account, up, &kept.id, processing).await?;
        Ok(kept.id)
    }

    /// `INIT`: X's media id for the upload and when X forgets it.
    async fn x_init(
        &self,
        account: Account<'_>,
        up: &Chunked<'_>,
    ) -> Result<Checkpoint, PlatformError> {
        let form = Form::new()
            .text("command", "INIT")
            .text("media_type", up.attachment.media_type.mime())
            .text("total_bytes", up.size().to_string())
            .text("media_category", "tweet_video");
        let answer = self.x_upload_command(account, form, 0).await?;
        let data = &answer.body["data"];
        let id = data["id"].as_str().ok_or_else(|| upload_without_id("X"))?;
        let mut kept = Checkpoint::new(up.source.etag(), id.to_owned());
        kept.expires_at = data["expires_after_secs"]
            .as_i64()
            .map(|secs| OffsetDateTime::now_utc().unix_timestamp() + secs);
        Ok(kept)
    }

    /// Waits until X has processed the upload (`processing_info` from `FINALIZE`, or asked
    /// with `STATUS`), within the call's time. Processing that outlasts it continues in the
    /// next invocation when this one moved the upload on, and is a transient failure when not.
    async fn x_processed(
        &self,
        account: Account<'_>,
        up: &Chunked<'_>,
        id: &str,
        mut info: Option<Value>,
    ) -> Result<(), PlatformError> {
        loop {
            let info = match info.take() {
                Some(info) => info,
                None => self.x_status(account, id).await?,
            };
            match info["state"].as_str() {
                // No processing at all (X says nothing), or done.
                None | Some("succeeded") => return Ok(()),
                Some("failed") => {
                    let reason = info["error"]["message"]
                        .as_str()
                        .unwrap_or("no reason given");
                    return Err(PlatformError::Permanent {
                        message: format!("X could not process the video: {reason}"),
                        code: info["error"]["code"].as_i64().map(|c| c.to_string()),
                    });
                }
                Some(_) => {}
            }
            let wait = Duration::from_secs(info["check_after_secs"].as_u64().unwrap_or(1))
                .min(MAX_STATUS_WAIT);
            if !up.call_fits(wait + self.timeout) {
                return Err(match up.moved {
                    true => up.out_of_time(up.size()),
                    false => PlatformError::UploadContinues {
                        message: "X is still processing the video; the tweet waits for it".into(),
                        moved: false,
                    },
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `STATUS`: X's `processing_info` for the upload.
    async fn x_status(&self, account: Account<'_>, id: &str) -> Result<Value, PlatformError> {
        let url = self.endpoints.x_url("/2/media/upload");
        let response = self
            .http
            .get(url)
            .query(&[("command", "STATUS"), ("media_id", id)])
            .bearer_auth(account.token.expose_secret())
            .send()
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        answer.upload_ok(x_error)?;
        Ok(answer.body["data"]["processing_info"].clone())
    }

    /// `POST /2/media/metadata`: the alt text of an uploaded image (set again on a retry: the
    /// same text on a fresh upload).
    async fn x_alt_text(
        &self,
        account: Account<'_>,
        id: &str,
        alt_text: &str,
    ) -> Result<(), PlatformError> {
        let url = self.endpoints.x_url("/2/media/metadata");
        let body =
            serde_json::json!({ "id": id, "metadata": { "alt_text": { "text": alt_text } } });
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(upload_transport_error)?;
        Answer::to_upload(response).await?.upload_ok(x_error)
    }

    /// One command of the chunked upload (`len`: the bytes it carries, for its time limit).
    async fn x_upload_command(
        &self,
        account: Account<'_>,
        form: Form,
        len: u64,
    ) -> Result<Answer, PlatformError> {
        let url = self.endpoints.x_url("/2/media/upload");
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(upload_allowance(self.timeout, len))
            .send()
            .await
            .map_err(upload_transport_error)?;
        let answer = Answer::to_upload(response).await?;
        answer.upload_ok(x_error)?;
        Ok(answer)
    }
}
