//! Creating media, handing out upload URLs and resolving what a post names.

use super::rules::{human, mimes};
use super::*;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{MediaId, TenantId};
use crate::ports::{MediaObjects, MediaRecords};
use crate::publishing::posts::{Actor, FieldError};
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use time::OffsetDateTime;

/// A presigned upload: the client sends the bytes with exactly this method and these headers
/// before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedUpload {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub expires_at: OffsetDateTime,
}

/// An object's size and version as storage reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub etag: String,
}

/// An object's bytes as a stream, so a 1 GB video never has to fit in memory.
pub struct MediaContent {
    pub size: u64,
    pub chunks: futures::stream::BoxStream<'static, Result<bytes::Bytes, StoreError>>,
}

crate::debug_fields!(MediaContent, size);

impl MediaContent {
    /// Content already in memory, in one chunk.
    pub fn from_bytes(bytes: impl Into<bytes::Bytes>) -> Self {
        let bytes = bytes.into();
        Self {
            size: bytes.len() as u64,
            chunks: Box::pin(futures::stream::once(async move { Ok(bytes) })),
        }
    }

    /// Reads the whole stream (tests and small files only).
    pub async fn collect(self) -> Result<Vec<u8>, StoreError> {
        use futures::StreamExt;
        let mut out = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        let mut chunks = self.chunks;
        while let Some(chunk) = chunks.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// What `POST /v1/media` asks for.
#[derive(Debug, Clone)]
pub struct NewMedia {
    pub content_type: String,
    pub file_name: String,
    pub size: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MediaError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("media not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creating media and finding out what was uploaded.
#[derive(Clone)]
pub struct MediaService {
    pub records: Arc<dyn MediaRecords>,
    pub objects: Arc<dyn MediaObjects>,
    pub clock: Arc<dyn Clock>,
    /// How long an upload URL works (default 15 minutes).
    pub upload_url_ttl: std::time::Duration,
    /// The most media one tenant may hold.
    pub quota: MediaQuota,
}

crate::debug_fields!(MediaService, upload_url_ttl, quota);

/// How many times creating media reads the usage again after losing a race for it.
const MAX_COUNT_ATTEMPTS: u32 = 8;

pub const DEFAULT_UPLOAD_URL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

impl MediaService {
    /// Records new media and presigns its upload. Nothing is stored when the request is
    /// invalid; every problem is listed.
    pub async fn create(
        &self,
        actor: &Actor,
        new: NewMedia,
    ) -> Result<(MediaRecord, PresignedUpload), MediaError> {
        let mut errors = Vec::new();
        let declared = MediaType::parse(&new.content_type);
        match declared {
            None => errors.push(FieldError::new(
                "content_type",
                format!("must be one of {}", mimes(&MediaType::ALL)),
            )),
            Some(t) => {
                let largest = largest_accepted(t).unwrap_or(0);
                if new.size > largest {
                    errors.push(FieldError::new(
                        "size",
                        format!(
                            "is {} bytes; no platform accepts {t} larger than {largest} bytes ({})",
                            new.size,
                            human(largest)
                        ),
                    ));
                }
            }
        }
        if new.size == 0 {
            errors.push(FieldError::new("size", "must be at least 1 byte"));
        }
        let name = new.file_name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_FILE_NAME_CHARS
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            errors.push(FieldError::new(
                "file_name",
                format!(
                    "must be 1 to {MAX_FILE_NAME_CHARS} characters, without a path or control characters"
                ),
            ));
        }
        let Some(declared) = declared.filter(|_| errors.is_empty()) else {
            return Err(MediaError::Invalid(errors));
        };
        let now = self.clock.now();
        // The quota is checked last, so a request that is wrong anyway is not told about it.
        let mut counted = self.admit(&actor.tenant_id, new.size, now).await?;
        let id = MediaId::generate();
        let key = MediaRecord::object_key(&actor.tenant_id, &id);
        let upload = self
            .objects
            .presign_upload(&key, declared.mime(), new.size, self.upload_url_ttl, now)
            .await?;
        let record = MediaRecord {
            tenant_id: actor.tenant_id.clone(),
            id,
            key,
            file_name: name.to_owned(),
            declared_type: declared,
            declared_size: new.size,
            created_by: actor.key_id.clone(),
            created_at: now,
            upload_expires_at: upload.expires_at,
            inspection: None,
        };
        // Another media of the tenant created since the read: count again on what it left.
        for attempt in 0.. {
            match self.records.insert_media(&record, &counted).await {
                Ok(()) => break,
                Err(StoreError::Conflict) if attempt < MAX_COUNT_ATTEMPTS => {
                    counted = self.admit(&actor.tenant_id, new.size, now).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok((record, upload))
    }

    /// The tenant's usage with one more media of `size` bytes, or the quota's 422.
    async fn admit(
        &self,
        tenant: &TenantId,
        size: u64,
        now: OffsetDateTime,
    ) -> Result<MediaUsage, MediaError> {
        let usage = self.records.media_usage(tenant).await?;
        usage
            .admit(size, now, self.quota)
            .map_err(MediaError::Invalid)
    }

    /// The media as it stands now: an upload since the last look is inspected and recorded.
    pub async fn get(&self, tenant: &TenantId, id: &MediaId) -> Result<MediaRecord, MediaError> {
        let records = self
            .records
            .get_media(tenant, std::slice::from_ref(id))
            .await?;
        let record = records.into_iter().next().ok_or(MediaError::NotFound)?;
        Ok(self.refresh(record).await?)
    }

    /// Every id, as found now (one read of the records, then one look at each object, all at
    /// once). Unknown ids, and ids of another tenant, come back `Unknown`.
    pub async fn resolve(
        &self,
        tenant: &TenantId,
        ids: &[MediaId],
    ) -> Result<BTreeMap<MediaId, Resolved>, StoreError> {
        let mut out: BTreeMap<MediaId, Resolved> = ids
            .iter()
            .map(|id| (id.clone(), Resolved::Unknown(id.clone())))
            .collect();
        // Ids that cannot be ours are not looked up.
        let wanted: Vec<MediaId> = out
            .keys()
            .filter(|id| crate::ids::is_valid_id(id.as_str()))
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(out);
        }
        let records = self.records.get_media(tenant, &wanted).await?;
        let refreshed =
            futures::future::try_join_all(records.into_iter().map(|r| self.refresh(r))).await?;
        for record in refreshed {
            out.insert(record.id.clone(), Resolved::resolve(&record));
        }
        Ok(out)
    }

    /// Looks at the object: gone or never uploaded, unchanged since its inspection, or new
    /// (then its first bytes are read and the inspection recorded).
    async fn refresh(&self, mut record: MediaRecord) -> Result<MediaRecord, StoreError> {
        let Some(object) = self.objects.head(&record.key).await? else {
            record.inspection = None;
            return Ok(record);
        };
        if record
            .inspection
            .as_ref()
            .is_some_and(|i| i.etag == object.etag && i.size == object.size)
        {
            return Ok(record);
        }
        let len = object.size.min(SNIFF_BYTES);
        let prefix = match self
            .objects
            .read_range(&record.key, &object.etag, 0, len)
            .await
        {
            Ok(Some(prefix)) => prefix,
            // Replaced or removed between the two reads: report it as not uploaded for now.
            Ok(None) | Err(StoreError::Conflict) => {
                record.inspection = None;
                return Ok(record);
            }
            Err(e) => return Err(e),
        };
        let inspection = Inspection::of(&prefix, object.size, object.etag, self.clock.now());
        self.records
            .record_inspection(&record.tenant_id, &record.id, &inspection)
            .await?;
        tracing::info!(
            media_id = %record.id,
            size = inspection.size,
            detected = inspection.detected.map_or("unrecognized", MediaType::mime),
            "media inspected"
        );
        record.inspection = Some(inspection);
        Ok(record)
    }
}

/// Small, well-formed file headers for tests: each is recognised by its magic bytes, carries
/// its dimensions where it is an image, and is padded to the size asked for.
#[cfg(any(test, feature = "memory"))]
pub mod samples {
    /// A PNG: signature, IHDR (with its CRC), a private ancillary chunk as padding, IEND.
    pub fn png(width: u32, height: u32, size: usize) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, no interlace
        chunk(&mut out, b"IHDR", &ihdr);
        let fixed = out.len() + 12 + 12;
        chunk(&mut out, b"heRa", &vec![0; size.saturating_sub(fixed)]);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// A GIF89a header with its logical screen size, padded with trailer bytes.
    pub fn gif(width: u16, height: u16, size: usize) -> Vec<u8> {
        let mut out = b"GIF89a".to_vec();
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0]);
        out.resize(size.max(out.len() + 1), 0);
        if let Some(last) = out.last_mut() {
            *last = 0x3b;
        }
        out
    }

    /// A baseline JPEG: SOI, a JFIF APP0, a SOF0 with the dimensions, then padding and EOI.
    pub fn jpeg(width: u16, height: u16, size: usize) -> Vec<u8> {
        let mut out = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        out.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        out.extend_from_slice(&[0xff, 0xc0, 0, 17, 8]);
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&width.to_be_bytes());
        out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        out.resize(size.saturating_sub(2).max(out.len()), 0);
        out.extend_from_slice(&[0xff, 0xd9]);
        out
    }

    /// A PDF header and trailer around padding.
    pub fn pdf(size: usize) -> Vec<u8> {
        let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let tail = b"\n%%EOF\n";
        out.resize(size.saturating_sub(tail.len()).max(out.len()), b' ');
        out.extend_from_slice(tail);
        out
    }

    /// An MP4 (`ftyp` box, brand isom) padded with a `free` box.
    pub fn mp4(size: usize) -> Vec<u8> {
        let mut out = vec![0, 0, 0, 0x18];
        out.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
        let pad = size.saturating_sub(out.len() + 8);
        out.extend_from_slice(&u32::try_from(pad + 8).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(b"free");
        out.resize(out.len() + pad, 0);
        out
    }

    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in bytes {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
