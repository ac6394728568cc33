//! The media bucket behind the domain's `MediaObjects` port: presigned uploads (signed
//! locally, no call), HEAD, a ranged read of an object's first bytes, and a streamed read of
//! the whole object. Every read names the version (entity tag) it expects, so what the
//! publisher sends is exactly what was checked.

use crate::errors::store_error;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use herald_domain::StoreError;
use herald_domain::media::{MediaContent, PresignedUpload, StoredObject};
use herald_domain::ports::MediaObjects;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// S3 error codes worth trying again.
const RETRYABLE: &[&str] = &[
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
];

#[derive(Debug, Clone)]
pub struct S3Media {
    client: crate::Lazy<Client>,
    bucket: String,
}

impl S3Media {
    pub fn new(client: impl Into<crate::Lazy<Client>>, bucket: impl Into<String>) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }
}

/// What a failed read means: `None` for "nothing there", `Conflict` for "not that version".
fn read_error<E, R>(err: SdkError<E, R>) -> Result<(), StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    if let SdkError::ServiceError(service) = &err {
        let code = service.err().code().unwrap_or_default();
        let status = service.raw().status_code();
        if status == 404 || code == "NoSuchKey" || code == "NotFound" {
            return Ok(());
        }
        if status == 412 || code == "PreconditionFailed" {
            return Err(StoreError::Conflict);
        }
        if RETRYABLE.contains(&code) || status >= 500 {
            return Err(StoreError::Unavailable(format!(
                "S3 answered {status} {code}"
            )));
        }
    }
    Err(store_error(err))
}

/// The HTTP status of a raw response, whichever response type the SDK hands back.
pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn chunks(
    body: ByteStream,
) -> futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>> {
    Box::pin(futures::stream::unfold(body, |mut body| async move {
        let next = body.next().await?;
        Some((
            next.map_err(|e| StoreError::Unavailable(format!("reading from S3 failed: {e}"))),
            body,
        ))
    }))
}

fn size_of(length: Option<i64>) -> Result<u64, StoreError> {
    length
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| StoreError::Invalid("S3 gave no object size".into()))
}

#[async_trait]
impl MediaObjects for S3Media {
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: Duration,
        now: OffsetDateTime,
    ) -> Result<PresignedUpload, StoreError> {
        let config = presigning(now, expires_in)?;
        // Content-Type and Content-Length are signed: S3 refuses an upload of another size or
        // declared type, so the declared size is the upload's limit.
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(i64::try_from(size).unwrap_or(i64::MAX))
            .presigned(config)
            .await
            .map_err(store_error)?;
        Ok(PresignedUpload {
            url: presigned.uri().to_owned(),
            method: presigned.method().to_owned(),
            headers: presigned
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            expires_at: now + expires_in,
        })
    }

    async fn presign_download(
        &self,
        key: &str,
        expires_in: Duration,
        now: OffsetDateTime,
    ) -> Result<String, StoreError> {
        let config = presigning(now, expires_in)?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(store_error)?;
        Ok(presigned.uri().to_owned())
    }

    async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(StoredObject {
                size: size_of(out.content_length())?,
                etag: out
                    .e_tag()
                    .map(str::to_owned)
                    .ok_or_else(|| StoreError::Invalid("S3 gave no entity tag".into()))?,
            })),
            Err(e) => read_error(e).map(|()| None),
        }
    }

    async fn read_range(
        &self,
        key: &str,
        etag: &str,
        from: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if len == 0 {
            return Ok(Some(Vec::new()));
        }
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .range(format!("bytes={from}-{}", from + len - 1))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => return read_error(e).map(|()| None),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Unavailable(format!("reading from S3 failed: {e}")))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn open(&self, key: &str, etag: &str) -> Result<Option<MediaContent>, StoreError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .if_match(etag)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => return read_error(e).map(|()| None),
        };
        Ok(Some(MediaContent {
            size: size_of(out.content_length())?,
            chunks: chunks(out.body),
        }))
    }
}

/// A leaving tenant's objects: listed a page (1,000) at a time, each page deleted in one
/// DeleteObjects call, whose per-key errors count as a failure.
#[async_trait]
impl herald_domain::offboarding::MediaPurge for S3Media {
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, StoreError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let build = |e: aws_sdk_s3::error::BuildError| StoreError::Invalid(e.to_string());
        let mut deleted = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(store_error)?;
            let ids = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build().map_err(build))
                .collect::<Result<Vec<_>, _>>()?;
            if !ids.is_empty() {
                let count = ids.len() as u64;
                let out = self
                    .client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(
                        Delete::builder()
                            .set_objects(Some(ids))
                            .quiet(true)
                            .build()
                            .map_err(build)?,
                    )
                    .send()
                    .await
                    .map_err(store_error)?;
                if let Some(e) = out.errors().first() {
                    return Err(StoreError::Unavailable(format!(
                        "S3 did not delete {}: {}",
                        e.key().unwrap_or("an object"),
                        e.code().unwrap_or("an error")
                    )));
                }
                deleted += count;
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return Ok(deleted);
            }
        }
    }
}

/// Signing from `now` for `expires_in`.
fn presigning(now: OffsetDateTime, expires_in: Duration) -> Result<PresigningConfig, StoreError> {
    PresigningConfig::builder()
        .start_time(SystemTime::from(now))
        .expires_in(expires_in)
        .build()
        .map_err(|e| StoreError::Invalid(format!("presigning: {e}")))
}
