//! `herald backup export`: every table, page by page, into the directory; the secrets when
//! asked; the manifest last.

use super::files::{LineWriter, fresh_dir, write_private};
use super::manifest::{
    FORMAT, MANIFEST, Manifest, SECRETS_FILE, SecretsFile, TableFile, table_file,
};
use super::{BackupError, Progress, SecretRef, TableRef, Tables, secrets};
use crate::secrets::SecretStore;
use std::path::Path;
use time::OffsetDateTime;

/// What to export and where from.
pub struct ExportPlan<'a> {
    pub tables: &'a dyn Tables,
    pub table_refs: &'a [TableRef],
    /// With the secrets: their store and which ones. `None`: tables only.
    pub secrets: Option<(&'a dyn SecretStore, &'a [SecretRef])>,
    pub progress: &'a dyn Progress,
    pub now: OffsetDateTime,
}

impl std::fmt::Debug for ExportPlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportPlan")
            .field("table_refs", &self.table_refs)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Writes the backup to `dir` (new, or empty); answers its manifest.
pub async fn export(plan: &ExportPlan<'_>, dir: &Path) -> Result<Manifest, BackupError> {
    fresh_dir(dir)?;
    let mut tables = Vec::new();
    for table in plan.table_refs {
        tables.push(export_table(plan, table, dir).await?);
    }
    let secrets = match plan.secrets {
        Some((store, refs)) => Some(export_secrets(store, refs, dir).await?),
        None => None,
    };
    let manifest = Manifest {
        format: FORMAT.into(),
        created_at: plan.now,
        tables,
        secrets,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("cannot write the manifest: {e}")))?;
    write_private(&dir.join(MANIFEST), &text)?;
    Ok(manifest)
}

async fn export_table(
    plan: &ExportPlan<'_>,
    table: &TableRef,
    dir: &Path,
) -> Result<TableFile, BackupError> {
    let file = table_file(&table.role);
    let mut out = LineWriter::create(dir.join(&file))?;
    let mut start = None;
    loop {
        let page = plan.tables.scan_page(&table.name, start).await?;
        for item in &page.items {
            let line = serde_json::to_string(item)
                .map_err(|e| BackupError::Refused(format!("an item of {}: {e}", table.name)))?;
            out.line(&line)?;
        }
        plan.progress.advanced(&table.role, out.lines, None);
        start = page.next;
        if start.is_none() {
            break;
        }
    }
    let (items, sha256) = out.finish()?;
    plan.progress.finished(&table.role, items);
    Ok(TableFile {
        role: table.role.clone(),
        table: table.name.clone(),
        file,
        items,
        sha256,
    })
}

async fn export_secrets(
    store: &dyn SecretStore,
    refs: &[SecretRef],
    dir: &Path,
) -> Result<SecretsFile, BackupError> {
    let saved = secrets::read_all(store, refs).await?;
    let text = serde_json::to_string(&saved)
        .map_err(|e| BackupError::Refused(format!("cannot write the secrets: {e}")))?;
    let sha256 = write_private(&dir.join(SECRETS_FILE), &text)?;
    Ok(SecretsFile {
        file: SECRETS_FILE.into(),
        roles: saved.0.into_keys().collect(),
        sha256,
    })
}
