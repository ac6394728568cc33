//! The media as recorded, and what a post holds of it once resolved.

use super::*;
use crate::ids::{ApiKeyId, MediaId, TenantId};
use time::OffsetDateTime;

/// The media as recorded when it was created, and what its upload turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    pub tenant_id: TenantId,
    pub id: MediaId,
    /// The object's key in the media bucket.
    pub key: String,
    /// As the client named it: shown back and used as a document's title, never logged.
    pub file_name: String,
    pub declared_type: MediaType,
    pub declared_size: u64,
    pub created_by: ApiKeyId,
    pub created_at: OffsetDateTime,
    /// When the presigned upload URL stops working.
    pub upload_expires_at: OffsetDateTime,
    /// Set once the upload has been seen.
    pub inspection: Option<Inspection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStatus {
    /// Waiting for the client's upload.
    PendingUpload,
    /// The upload URL expired and nothing was uploaded: create the media again.
    Expired,
    /// Uploaded and inspected.
    Uploaded,
}

impl MediaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaStatus::PendingUpload => "pending_upload",
            MediaStatus::Expired => "expired",
            MediaStatus::Uploaded => "uploaded",
        }
    }
}

impl MediaRecord {
    /// Where a tenant's media lives in the bucket: under the tenant, never the file name.
    pub fn object_key(tenant: &TenantId, id: &MediaId) -> String {
        format!("media/{tenant}/{id}")
    }

    pub fn status(&self, now: OffsetDateTime) -> MediaStatus {
        match &self.inspection {
            Some(_) => MediaStatus::Uploaded,
            None if now >= self.upload_expires_at => MediaStatus::Expired,
            None => MediaStatus::PendingUpload,
        }
    }

    /// When storage drops the object.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.created_at + MEDIA_RETENTION
    }
}

/// Uploaded media as a post keeps it: enough to check it against a platform and for the
/// publisher to read exactly this object back, without reading the media record again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub media_id: MediaId,
    pub key: String,
    pub etag: String,
    /// By content.
    pub media_type: MediaType,
    pub size: u64,
    pub dimensions: Option<Dimensions>,
    pub file_name: String,
    pub created_at: OffsetDateTime,
    /// What the image shows, for people who cannot see it (the post's `alt_text`); sent to
    /// every platform that carries it.
    pub alt_text: Option<String>,
}

impl Attachment {
    pub fn expires_at(&self) -> OffsetDateTime {
        self.created_at + MEDIA_RETENTION
    }
}

/// One media id a post names, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No such media for this tenant (another tenant's ids answer the same).
    Unknown(MediaId),
    /// Recorded, but nothing uploaded (yet, or ever: the upload URL expired).
    NotUploaded(MediaId),
    /// Uploaded, but its content is no type Herald accepts.
    Unrecognized {
        media_id: MediaId,
        declared: MediaType,
    },
    Uploaded {
        attachment: Attachment,
        declared: MediaType,
    },
}

impl Resolved {
    pub fn media_id(&self) -> &MediaId {
        match self {
            Resolved::Unknown(id) | Resolved::NotUploaded(id) => id,
            Resolved::Unrecognized { media_id, .. } => media_id,
            Resolved::Uploaded { attachment, .. } => &attachment.media_id,
        }
    }

    /// A post's own attachment (checked when it was attached) is taken as uploaded.
    pub fn attached(attachment: &Attachment) -> Self {
        Resolved::Uploaded {
            declared: attachment.media_type,
            attachment: attachment.clone(),
        }
    }

    pub fn resolve(record: &MediaRecord) -> Self {
        match &record.inspection {
            None => Resolved::NotUploaded(record.id.clone()),
            Some(Inspection { detected: None, .. }) => Resolved::Unrecognized {
                media_id: record.id.clone(),
                declared: record.declared_type,
            },
            Some(
                i @ Inspection {
                    detected: Some(media_type),
                    ..
                },
            ) => Resolved::Uploaded {
                declared: record.declared_type,
                attachment: Attachment {
                    media_id: record.id.clone(),
                    key: record.key.clone(),
                    etag: i.etag.clone(),
                    media_type: *media_type,
                    size: i.size,
                    dimensions: i.dimensions,
                    file_name: record.file_name.clone(),
                    created_at: record.created_at,
                    // The post's to give.
                    alt_text: None,
                },
            },
        }
    }
}
