//! Facebook Pages: unpublished photo uploads attached to a feed post, or a video that is its
//! own post.

use super::*;

impl HttpPlatforms {
    /// Facebook: photos are uploaded unpublished (`POST /{page}/photos`, `published=false`)
    /// and attached to the feed post (`attached_media`); a video is its own post
    /// (`POST /{page}/videos` with the text as its description).
    pub(crate) async fn publish_facebook(
        &self,
        account: Account<'_>,
        mut media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        if media.len() == 1
            && media[0].attachment.media_type.kind() == MediaKind::Video
            && let Some(video) = media.pop()
        {
            return self.publish_facebook_video(account, video).await;
        }
        let mut form: Vec<(String, String)> = vec![("message".into(), account.text.to_owned())];
        for (i, upload) in media.into_iter().enumerate() {
            let id = self.upload_facebook_photo(account, upload).await?;
            form.push((
                format!("attached_media[{i}]"),
                serde_json::json!({ "media_fbid": id }).to_string(),
            ));
        }
        let url = self
            .endpoints
            .facebook_url(&format!("/{}/feed", account.external_id));
        let response = self
            .http
            .post(url)
            .bearer_auth(account.token.expose_secret())
            .form(&form)
            .send()
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
        let form = Form::new()
            .text("published", "false")
            .part("source", media_part(upload)?);
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
}
