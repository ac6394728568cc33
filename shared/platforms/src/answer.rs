//! The step every publish and upload shares, written once: read the platform's answer
//! (status, headers, JSON body), then take the new id from a success or classify the failure
//! the platform's own way (`errors.rs`).

use super::*;

/// How a platform's failures are classified: `x_error`, `facebook_error`, `linkedin_error`.
pub(crate) type Classify = fn(StatusCode, &HeaderMap, &Value, &str) -> PlatformError;

/// Where a success's body names the new object.
pub(crate) type IdIn = for<'a> fn(&'a Value) -> Option<&'a str>;

/// A platform's answer, read once.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Answer {
    /// The answer to a post: a body lost on the way makes the post ambiguous.
    pub(crate) async fn to_post(response: Response) -> Result<Self, PlatformError> {
        let (status, headers) = (response.status(), response.headers().clone());
        Ok(Self {
            status,
            headers,
            body: read_json(response).await?,
        })
    }

    /// The answer to an upload: nothing anyone sees was created, so a lost body is transient.
    pub(crate) async fn to_upload(response: Response) -> Result<Self, PlatformError> {
        let (status, headers) = (response.status(), response.headers().clone());
        Ok(Self {
            status,
            headers,
            body: read_upload_json(response).await?,
        })
    }

    /// The published post `id` names in a success, or the failure classified.
    pub(crate) fn published(
        self,
        platform: &str,
        id: IdIn,
        classify: Classify,
    ) -> Result<PublishedPost, PlatformError> {
        if !self.status.is_success() {
            return Err(classify(self.status, &self.headers, &self.body, POST));
        }
        id(&self.body)
            .map(|id| published(id, &self.headers))
            .ok_or_else(|| missing_id(platform))
    }

    /// The uploaded object's id from a success, or the failure classified.
    pub(crate) fn uploaded(
        self,
        platform: &str,
        id: IdIn,
        classify: Classify,
    ) -> Result<String, PlatformError> {
        self.upload_ok(classify)?;
        id(&self.body)
            .map(str::to_owned)
            .ok_or_else(|| upload_without_id(platform))
    }

    /// Nothing but the failure, classified, when an upload step did not succeed.
    pub(crate) fn upload_ok(&self, classify: Classify) -> Result<(), PlatformError> {
        if self.status.is_success() {
            Ok(())
        } else {
            Err(classify(self.status, &self.headers, &self.body, UPLOAD))
        }
    }
}
