//! Media records and the media bucket in memory.

use crate::error::StoreError;
use crate::ids::{MediaId, TenantId};
use crate::media::{
    Inspection, MediaContent, MediaRecord, MediaUsage, PresignedUpload, StoredObject,
};
use crate::memory::{CallCounter, MemoryStore};
use crate::ports::*;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::OffsetDateTime;

#[async_trait]
impl MediaRecords for MemoryStore {
    async fn media_usage(&self, tenant: &TenantId) -> Result<MediaUsage, StoreError> {
        self.with("media_usage", |s| {
            Ok(s.media_usage.get(tenant).cloned().unwrap_or_default())
        })
    }

    async fn insert_media(
        &self,
        media: &MediaRecord,
        usage: &MediaUsage,
    ) -> Result<(), StoreError> {
        self.with("media_insert", |s| {
            let key = (media.tenant_id.clone(), media.id.clone());
            let held = s.media_usage.get(&media.tenant_id).map_or(0, |u| u.version);
            if s.media.contains_key(&key) || held + 1 != usage.version {
                return Err(StoreError::Conflict);
            }
            s.media.insert(key, media.clone());
            s.media_usage.insert(media.tenant_id.clone(), usage.clone());
            Ok(())
        })
    }

    async fn get_media(
        &self,
        tenant: &TenantId,
        ids: &[MediaId],
    ) -> Result<Vec<MediaRecord>, StoreError> {
        self.with("media_get", |s| {
            Ok(ids
                .iter()
                .filter_map(|id| s.media.get(&(tenant.clone(), id.clone())).cloned())
                .collect())
        })
    }

    async fn record_inspection(
        &self,
        tenant: &TenantId,
        id: &MediaId,
        inspection: &Inspection,
    ) -> Result<(), StoreError> {
        self.with("media_inspect", |s| {
            match s.media.get_mut(&(tenant.clone(), id.clone())) {
                Some(m) => {
                    m.inspection = Some(inspection.clone());
                    Ok(())
                }
                None => Err(StoreError::Conflict),
            }
        })
    }
}

/// A media bucket in memory. `put` stands in for the client's upload to the presigned URL;
/// entity tags are content hashes, as S3's are for single-part uploads.
#[derive(Debug, Default)]
pub struct MemoryMedia {
    objects: Mutex<BTreeMap<String, (bytes::Bytes, String)>>,
    pub calls: CallCounter,
    fail_next: AtomicUsize,
}

impl MemoryMedia {
    /// A media service over fresh in-memory records and bucket, for callers that attach no
    /// media (or upload through the returned bucket).
    pub fn service(clock: std::sync::Arc<dyn crate::clock::Clock>) -> crate::media::MediaService {
        crate::media::MediaService {
            records: std::sync::Arc::new(MemoryStore::new()),
            objects: std::sync::Arc::new(MemoryMedia::default()),
            clock,
            upload_url_ttl: crate::media::DEFAULT_UPLOAD_URL_TTL,
            quota: Default::default(),
        }
    }

    pub fn put(&self, key: &str, content: impl Into<bytes::Bytes>) {
        let content = content.into();
        let etag = format!(
            "\"{}\"",
            &crate::secrets::secret::sha256_hex(&[&content])[..32]
        );
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_owned(), (content, etag));
    }

    /// The next `n` reads fail as if storage were unavailable.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn remove(&self, key: &str) {
        self.objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn get(
        &self,
        op: &'static str,
        key: &str,
    ) -> Result<Option<(bytes::Bytes, String)>, StoreError> {
        self.calls.record(op);
        if self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable("injected".into()));
        }
        Ok(self
            .objects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned())
    }
}

#[async_trait]
impl MediaObjects for MemoryMedia {
    async fn presign_upload(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        expires_in: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<PresignedUpload, StoreError> {
        let expires_at = now + expires_in;
        Ok(PresignedUpload {
            url: format!(
                "memory://media/{key}?expires={}",
                expires_at.unix_timestamp()
            ),
            method: "PUT".into(),
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("content-length".into(), size.to_string()),
            ],
            expires_at,
        })
    }

    async fn presign_download(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<String, StoreError> {
        Ok(format!(
            "memory://media/{key}?expires={}",
            (now + expires_in).unix_timestamp()
        ))
    }

    async fn head(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        Ok(self.get("head", key)?.map(|(content, etag)| StoredObject {
            size: content.len() as u64,
            etag,
        }))
    }

    async fn read_range(
        &self,
        key: &str,
        etag: &str,
        from: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get("read_range", key)? {
            None => Ok(None),
            Some((_, current)) if current != etag => Err(StoreError::Conflict),
            Some((content, _)) => {
                let at = |n: u64| usize::try_from(n).unwrap_or(usize::MAX).min(content.len());
                let start = at(from);
                Ok(Some(content[start..at(from.saturating_add(len))].to_vec()))
            }
        }
    }

    async fn open(&self, key: &str, etag: &str) -> Result<Option<MediaContent>, StoreError> {
        match self.get("open", key)? {
            None => Ok(None),
            Some((_, current)) if current != etag => Err(StoreError::Conflict),
            Some((content, _)) => Ok(Some(MediaContent::from_bytes(content))),
        }
    }
}
