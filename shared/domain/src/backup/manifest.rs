//! `manifest.json`: what a backup holds, and what a restore checks it against. Written last,
//! so an export that stopped half-way leaves no manifest and cannot be restored.

use super::BackupError;
use serde::{Deserialize, Serialize};
use std::path::Path;
use time::OffsetDateTime;

pub const MANIFEST: &str = "manifest.json";
/// The format this release writes and reads.
pub const FORMAT: &str = "herald-backup/1";
/// The secrets' file, present only in a backup taken with secrets.
pub const SECRETS_FILE: &str = "secrets.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub tables: Vec<TableFile>,
    /// Present when the backup holds Herald's secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableFile {
    /// `main`, `audit`, `idempotency`.
    pub role: String,
    /// The table it was read from.
    pub table: String,
    /// `<role>.jsonl`, next to the manifest.
    pub file: String,
    pub items: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsFile {
    pub file: String,
    /// The roles of the secrets it holds.
    pub roles: Vec<String>,
    pub sha256: String,
}

/// The file a table of `role` is kept in.
pub fn table_file(role: &str) -> String {
    format!("{role}.jsonl")
}

impl Manifest {
    /// Reads and checks `dir`'s manifest: its format, and that every file it names is the one
    /// its role implies (a manifest naming `../x` is damage, not a path to follow).
    pub fn read(dir: &Path) -> Result<Self, BackupError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackupError::Damaged(format!(
                "{MANIFEST} is missing from {} (an export that did not finish writes none)",
                dir.display()
            )),
            _ => BackupError::io(&path, &e),
        })?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| BackupError::Damaged(format!("{MANIFEST} is not a manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} has format {:?}; this release reads {FORMAT:?}",
                manifest.format
            )));
        }
        for t in &manifest.tables {
            let plain = !t.role.is_empty()
                && t.role
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !plain || t.file != table_file(&t.role) {
                return Err(BackupError::Damaged(format!(
                    "{MANIFEST} names table file {:?} for role {:?}",
                    t.file, t.role
                )));
            }
        }
        if let Some(s) = &manifest.secrets
            && s.file != SECRETS_FILE
        {
            return Err(BackupError::Damaged(format!(
                "{MANIFEST} names secrets file {:?}",
                s.file
            )));
        }
        Ok(manifest)
    }
}
