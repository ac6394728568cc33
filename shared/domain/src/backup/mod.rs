//! Backups of a whole deployment, and what a restore checks before it writes.
//!
//! A backup is a directory: one file of JSON lines per table (each line one DynamoDB item in
//! its typed form, `{"pk":{"S":"TENANT#…"},"version":{"N":"3"}}`, so numbers, binaries, sets
//! and maps come back exactly as they were), a `manifest.json` naming each file with its item
//! count and SHA-256, and, only when asked, `secrets.json` with Herald's secrets (the token
//! key ring above all: without it every sealed platform token in the backup is noise).
//!
//! A restore goes only into an empty deployment and writes nothing until the whole backup has
//! been checked (every file there, every checksum and count right, every line an item) and
//! every target table has been found empty. This module owns the format and those checks; it
//! never sees an SDK type: the [`Tables`] port scans and writes tables, the secrets port
//! ([`crate::secrets::SecretStore`]) reads and stages secret values.

pub mod export;
pub(crate) mod files;
pub mod manifest;
pub mod restore;
mod secrets;

use crate::StoreError;
use async_trait::async_trait;
use serde_json::Value;
use thiserror::Error;

pub use export::{ExportPlan, export};
pub use manifest::{MANIFEST, Manifest};
pub use restore::{RestorePlan, RestoreSummary, restore};

/// One item in DynamoDB's typed JSON form: attribute name → `{"S": "…"}`, `{"N": "…"}`…
pub type Item = serde_json::Map<String, Value>;

/// Items a scan read, and where the next page starts (`None`: the table is done).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanPage {
    pub items: Vec<Item>,
    pub next: Option<Item>,
}

/// Whole tables, as backups and tenant erasure need them.
#[async_trait]
pub trait Tables: Send + Sync {
    /// One page of `table`'s items from `start` (the previous page's `next`).
    async fn scan_page(&self, table: &str, start: Option<Item>) -> Result<ScanPage, StoreError>;
    /// Whether `table` holds no item at all.
    async fn is_empty(&self, table: &str) -> Result<bool, StoreError>;
    /// Puts at most [`BATCH`] items, retrying those the store left unprocessed; fails if some
    /// are still unwritten after the retries.
    async fn put_batch(&self, table: &str, items: &[Item]) -> Result<(), StoreError>;
    /// Deletes at most [`BATCH`] items by key (`pk`, and `sk` where the table has one),
    /// retrying those left unprocessed.
    async fn delete_batch(&self, table: &str, keys: &[Item]) -> Result<(), StoreError>;
    /// Whether `item` is an item the store would take (well-formed typed attributes).
    fn check_item(&self, item: &Item) -> Result<(), String>;
}

/// The most items one batch write takes (DynamoDB's BatchWriteItem limit).
pub const BATCH: usize = 25;

/// A table of the deployment by its role (`main`, `audit`, `idempotency`): a backup names
/// roles, so it can be restored into a deployment whose tables are named otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub role: String,
    pub name: String,
}

/// A secret of the deployment by its role (`token-key`, `admin-token`…), as [`TableRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub role: String,
    pub id: String,
}

/// Told as tables are read or written, for a progress line.
pub trait Progress: Send + Sync {
    /// `done` items of `role`'s table so far, of `total` when it is known.
    fn advanced(&self, role: &str, done: u64, total: Option<u64>);
    fn finished(&self, role: &str, done: u64);
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn advanced(&self, _: &str, _: u64, _: Option<u64>) {}
    fn finished(&self, _: &str, _: u64) {}
}

#[derive(Debug, Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The backup is not what its manifest says; nothing was written.
    #[error("the backup is damaged: {0}; nothing was restored")]
    Damaged(String),
    /// A target table holds items; nothing was written.
    #[error(
        "table {table} ({role}) is not empty: a backup is restored only into an empty deployment; nothing was restored"
    )]
    NotEmpty { role: String, table: String },
    /// The request cannot be carried out as asked (a missing target, an existing backup…).
    #[error("{0}")]
    Refused(String),
}

impl BackupError {
    fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
