//! X: media uploads and the tweet.

use super::*;

impl HttpPlatforms {
    /// X: each file in one `POST /2/media/upload` (multipart `media`, `media_category`), then
    /// the tweet with `media.media_ids`.
    pub(crate) async fn publish_x(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let mut media_ids = Vec::with_capacity(media.len());
        for upload in media {
            media_ids.push(self.upload_x(account, upload).await?);
        }
        let mut body = serde_json::json!({ "text": account.text });
        if !media_ids.is_empty() {
            body["media"] = serde_json::json!({ "media_ids": media_ids });
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
        let form = Form::new()
            .text("media_category", category)
            .part("media", media_part(upload)?);
        let url = self.endpoints.x_url("/2/media/upload");
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .multipart(form)
            .timeout(self.upload_timeout(a))
            .send()
            .await
            .map_err(upload_transport_error)?;
        Answer::to_upload(response)
            .await?
            .uploaded("X", |b| b["data"]["id"].as_str(), x_error)
    }
}
