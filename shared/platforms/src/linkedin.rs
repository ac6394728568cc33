//! LinkedIn organisations: image and document uploads registered, then `PUT`, and the post
//! that refers to them.

use super::*;

/// The LinkedIn API version sent as `LinkedIn-Version`.
pub(crate) const LINKEDIN_VERSION: &str = "202501";

pub(crate) fn linkedin_author(external_id: &str) -> String {
    if external_id.starts_with("urn:") {
        external_id.to_owned()
    } else {
        format!("urn:li:organization:{external_id}")
    }
}

impl HttpPlatforms {
    /// LinkedIn: each file is registered (`POST /rest/images` or `/rest/documents`
    /// `?action=initializeUpload`), its bytes `PUT` to the upload URL LinkedIn returns, and the
    /// post refers to the image or document URN.
    pub(crate) async fn publish_linkedin(
        &self,
        account: Account<'_>,
        media: Vec<MediaUpload<'_>>,
    ) -> Result<PublishedPost, PlatformError> {
        let author = linkedin_author(account.external_id);
        let mut uploaded = Vec::with_capacity(media.len());
        for upload in media {
            let a = upload.attachment;
            let urn = self.upload_linkedin(account, &author, upload).await?;
            uploaded.push((urn, a));
        }
        let visibility = account
            .options
            .linkedin
            .as_ref()
            .and_then(|l| l.visibility)
            .map_or("PUBLIC", |v| v.linkedin());
        let mut post = serde_json::json!({
            "author": author,
            "commentary": account.text,
            "visibility": visibility,
            "distribution": { "feedDistribution": "MAIN_FEED", "targetEntities": [], "thirdPartyDistributionChannels": [] },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": false
        });
        match uploaded.as_slice() {
            [] => {}
            [(urn, a)] => {
                let mut media = serde_json::json!({ "id": urn });
                if a.media_type.kind() == MediaKind::Document {
                    media["title"] = a.file_name.clone().into();
                }
                if let Some(alt_text) = &a.alt_text {
                    media["altText"] = alt_text.clone().into();
                }
                post["content"] = serde_json::json!({ "media": media });
            }
            many => {
                let images: Vec<Value> = many
                    .iter()
                    .map(|(urn, a)| match &a.alt_text {
                        Some(alt_text) => serde_json::json!({ "id": urn, "altText": alt_text }),
                        None => serde_json::json!({ "id": urn }),
                    })
                    .collect();
                post["content"] = serde_json::json!({ "multiImage": { "images": images } });
            }
        }
        let url = self.endpoints.linkedin_url("/rest/posts");
        let response = self
            .linkedin(self.http.post(url), account)
            .json(&post)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            // Drain the (empty) body so a dropped connection here counts as ambiguous too.
            response.bytes().await.map_err(transport_error)?;
            return headers
                .get("x-restli-id")
                .and_then(|v| v.to_str().ok())
                .map(|id| published(id, &headers))
                .ok_or_else(|| missing_id("LinkedIn"));
        }
        let body = read_json(response).await?;
        Err(linkedin_error(status, &headers, &body, POST))
    }

    pub(crate) async fn upload_linkedin(
        &self,
        account: Account<'_>,
        author: &str,
        upload: MediaUpload<'_>,
    ) -> Result<String, PlatformError> {
        let a = upload.attachment;
        let (resource, field) = match a.media_type.kind() {
            MediaKind::Document => ("documents", "document"),
            _ => ("images", "image"),
        };
        let url = self
            .endpoints
            .linkedin_url(&format!("/rest/{resource}?action=initializeUpload"));
        let response = self
            .linkedin(self.http.post(url), account)
            .json(&serde_json::json!({ "initializeUploadRequest": { "owner": author } }))
            .send()
            .await
            .map_err(upload_transport_error)?;
        let registered = Answer::to_upload(response).await?;
        registered.upload_ok(linkedin_error)?;
        let body = &registered.body;
        let (Some(upload_url), Some(urn)) = (
            body["value"]["uploadUrl"].as_str(),
            body["value"][field].as_str(),
        ) else {
            return Err(upload_without_id("LinkedIn"));
        };
        // The upload URL comes from LinkedIn's answer: the token goes only to LinkedIn's own
        // hosts.
        if !same_site(upload_url, &self.endpoints.linkedin) {
            return Err(PlatformError::Permanent {
                message:
                    "LinkedIn returned an upload URL outside its own domain; nothing was sent there"
                        .into(),
                code: None,
            });
        }
        let timeout = self.upload_timeout(a);
        let content = upload.into_content()?;
        let response = self
            .http
            .put(upload_url)
            .bearer_auth(account.token.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, a.media_type.mime())
            .header(reqwest::header::CONTENT_LENGTH, content.size)
            .body(reqwest::Body::wrap_stream(content.chunks))
            .timeout(timeout)
            .send()
            .await
            .map_err(upload_transport_error)?;
        Answer::to_upload(response)
            .await?
            .upload_ok(linkedin_error)?;
        Ok(urn.to_owned())
    }

    pub(crate) fn linkedin(
        &self,
        request: reqwest::RequestBuilder,
        account: Account<'_>,
    ) -> reqwest::RequestBuilder {
        request
            .bearer_auth(account.token.expose_secret())
            .header("LinkedIn-Version", LINKEDIN_VERSION)
            .header("X-Restli-Protocol-Version", "2.0.0")
    }
}
