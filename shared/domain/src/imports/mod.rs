//! Bulk imports: a tenant uploads a file through a presigned URL (like media), starts the
//! import, and an import job works the file row by row, handing on to a fresh job when its
//! time is up. Contacts (CSV) and posts (CSV or JSON lines) share the one import feature.
//!
//! Exactly once per file and row: the file is pinned at start (its entity tag), so every job
//! reads the same bytes; what a row creates has an id derived from the import and the row, so
//! a row worked again (a job crashed between its writes and its checkpoint, or a job was
//! delivered twice) finds its own record and counts it as created, never twice. The import's
//! counters move only in checkpoints, each conditional on the version the job read, so two
//! jobs on one import cannot both count a chunk. Bad rows are kept as issues (row, line, why:
//! never the row's content, which is personal data).

mod contacts_csv;
mod file;
#[cfg(feature = "memory")]
pub mod memory;
mod post_rows;
mod service;
#[cfg(test)]
mod tests;

pub use contacts_csv::{COLUMNS, ContactSheet};
pub use post_rows::POST_COLUMNS;
pub use service::{ImportError, ImportService, NewImport};

use crate::error::StoreError;
use crate::ids::{ContactId, ImportId, TenantId};
use crate::ports::Page;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The largest file an import takes (about 200,000 contacts, or 50,000 posts of 400 bytes).
pub const MAX_IMPORT_BYTES: u64 = 20 * 1024 * 1024;
/// Rows worked between two checkpoints.
pub const CHUNK_ROWS: usize = 100;
/// A chunk ends early, at whatever row, once a job has worked this long past its budget (a
/// post row makes several calls): the function's time limit is never reached mid-chunk.
pub const CHUNK_OVERRUN: std::time::Duration = std::time::Duration::from_secs(5);
/// A queued or running import with no checkpoint for this long has lost its job: starting it
/// again sends a fresh one.
pub const STALE: time::Duration = time::Duration::minutes(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    /// A CSV of contacts, one per row (see [`COLUMNS`]).
    Contacts,
    /// Posts, one per row: a CSV (see [`POST_COLUMNS`]) or JSON lines, each line the body
    /// `POST /v1/posts` takes.
    Posts,
}

impl ImportKind {
    pub const ALL: [ImportKind; 2] = [ImportKind::Contacts, ImportKind::Posts];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Contacts => "contacts",
            ImportKind::Posts => "posts",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The formats a file of this kind may have.
    pub fn formats(self) -> &'static [ImportFormat] {
        match self {
            ImportKind::Contacts => &[ImportFormat::Csv],
            ImportKind::Posts => &[ImportFormat::Csv, ImportFormat::Jsonl],
        }
    }
}

/// How a file is written. Imports recorded before posts could be imported have none stored:
/// they are CSV (the serde default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportFormat {
    /// A header row naming the columns, then one record per row.
    #[default]
    Csv,
    /// One JSON object per line (blank lines skipped).
    Jsonl,
}

impl ImportFormat {
    pub const ALL: [ImportFormat; 2] = [ImportFormat::Csv, ImportFormat::Jsonl];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::Csv => "csv",
            ImportFormat::Jsonl => "jsonl",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The type the upload is signed for.
    pub fn content_type(self) -> &'static str {
        match self {
            ImportFormat::Csv => "text/csv",
            ImportFormat::Jsonl => "application/x-ndjson",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Created; the file is still to be uploaded and the import started.
    AwaitingUpload,
    /// Started; a job will work it.
    Queued,
    /// A job has worked part of it.
    Running,
    /// Every row worked.
    Completed,
    /// The file as a whole could not be worked (`problem` says why); rows already created
    /// stay.
    Failed,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::AwaitingUpload => "awaiting_upload",
            ImportStatus::Queued => "queued",
            ImportStatus::Running => "running",
            ImportStatus::Completed => "completed",
            ImportStatus::Failed => "failed",
        }
    }
}

/// What the rows worked so far came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Rows worked (a CSV's header not counted).
    pub rows: u64,
    pub created: u64,
    /// Contacts: rows whose number the tenant already had (before the import or earlier in
    /// the file). Posts have none.
    pub duplicates: u64,
    pub invalid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    pub id: ImportId,
    pub tenant_id: TenantId,
    pub kind: ImportKind,
    #[serde(default)]
    pub format: ImportFormat,
    pub status: ImportStatus,
    /// The size the upload is signed for.
    pub size: u64,
    /// Contacts: the region of national numbers in rows without a `region` cell.
    pub region: Option<String>,
    /// Where the file is stored.
    pub key: String,
    /// The file's version, pinned at start.
    pub etag: Option<String>,
    pub counts: ImportCounts,
    /// Why a failed import failed.
    pub problem: Option<String>,
    /// Who created it (`key:<id>`), named in the audit of what it creates.
    pub actor: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub upload_expires_at: OffsetDateTime,
    pub version: u64,
}

impl Import {
    pub fn object_key(tenant: &TenantId, id: &ImportId) -> String {
        format!("imports/{tenant}/{id}")
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.status, ImportStatus::Completed | ImportStatus::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    /// Refused: `problems` says why.
    Invalid,
    /// The tenant already has the number, as `contact_id`.
    Duplicate,
}

/// One problem of a row: which column, and why (never the cell's content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    pub column: String,
    pub message: String,
}

/// A row that did not create anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowIssue {
    /// 1 for the first row after a CSV's header (or a JSON lines file's first object).
    pub row: u64,
    /// The line of the file the row begins on (1 for a CSV's header).
    pub line: u64,
    pub outcome: RowOutcome,
    pub problems: Vec<RowProblem>,
    pub contact_id: Option<ContactId>,
}

/// The queue message that works an import (`round` counts the hand-overs, for the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJob {
    pub tenant_id: TenantId,
    pub import_id: ImportId,
    pub correlation_id: String,
    pub round: u32,
}

#[async_trait]
pub trait ImportStore: Send + Sync {
    /// `Conflict` when the id is taken.
    async fn insert_import(&self, import: &Import) -> Result<(), StoreError>;
    async fn get_import(
        &self,
        tenant: &TenantId,
        id: &ImportId,
    ) -> Result<Option<Import>, StoreError>;
    /// Writes `import` (its version already the next) if the stored one is still `expected`;
    /// `Conflict` otherwise.
    async fn replace_import(&self, import: &Import, expected: u64) -> Result<(), StoreError>;
    /// Newest first.
    async fn list_imports(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Import>, StoreError>;
    /// Writes the issues (a row written again is overwritten) and removes any issue an
    /// earlier working of the `created` rows left (a job that lost its checkpoint wrote it).
    async fn put_row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        issues: &[RowIssue],
        created: &[u64],
    ) -> Result<(), StoreError>;
    /// In row order.
    async fn row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowIssue>, StoreError>;
}

/// Where import jobs go.
#[async_trait]
pub trait ImportQueue: Send + Sync {
    async fn send_import(&self, job: &ImportJob) -> Result<(), StoreError>;
}

/// The cursor of a row issue (its row, zero-padded so that it sorts).
pub fn row_cursor(row: u64) -> String {
    format!("{row:010}")
}
