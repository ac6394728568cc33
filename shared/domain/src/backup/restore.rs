//! `herald backup restore`: the whole backup is checked, then every target table is found
//! empty, and only then is anything written: tables in batches of 25 (unprocessed items
//! retried by the port), then the secrets.

use super::files::{Lines, name};
use super::manifest::{Manifest, TableFile};
use super::secrets::{self, SavedSecrets};
use super::{BATCH, BackupError, Item, Progress, SecretRef, TableRef, Tables};
use crate::secrets::SecretStore;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Where to restore to.
pub struct RestorePlan<'a> {
    pub tables: &'a dyn Tables,
    pub table_refs: &'a [TableRef],
    /// Put the backup's secrets back into these (the backup must hold them). `None`: tables
    /// only, the secrets left as they are.
    pub secrets: Option<(&'a dyn SecretStore, &'a [SecretRef])>,
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for RestorePlan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestorePlan")
            .field("table_refs", &self.table_refs)
            .finish_non_exhaustive()
    }
}

/// Batch writes in flight at once.
const CONCURRENT_BATCHES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreSummary {
    /// Items written, by table role.
    pub items: BTreeMap<String, u64>,
    /// The roles of the secrets put back.
    pub secrets: Vec<String>,
    /// The backup holds secrets that were not asked for.
    pub secrets_left_out: bool,
}

pub async fn restore(plan: &RestorePlan<'_>, dir: &Path) -> Result<RestoreSummary, BackupError> {
    let manifest = Manifest::read(dir)?;
    let targets = match_tables(&manifest, plan.table_refs)?;
    for (file, _) in &targets {
        check_table_file(plan.tables, dir, file)?;
    }
    let saved = match plan.secrets {
        Some((_, refs)) => {
            let saved = read_secrets(dir, &manifest)?;
            secrets::targets(&saved, refs)?;
            Some(saved)
        }
        None => None,
    };
    for (_, target) in &targets {
        if !plan.tables.is_empty(&target.name).await? {
            return Err(BackupError::NotEmpty {
                role: target.role.clone(),
                table: target.name.clone(),
            });
        }
    }
    let mut items = BTreeMap::new();
    for (file, target) in &targets {
        items.insert(
            target.role.clone(),
            write_table(plan, dir, file, target).await?,
        );
    }
    let mut restored = Vec::new();
    if let (Some(saved), Some((store, refs))) = (&saved, plan.secrets) {
        secrets::put_all(store, saved, refs).await?;
        restored = saved.0.keys().cloned().collect();
    }
    Ok(RestoreSummary {
        items,
        secrets: restored,
        secrets_left_out: plan.secrets.is_none() && manifest.secrets.is_some(),
    })
}

/// Each table of the backup with the target table of its role; a role the deployment lacks
/// is refused.
fn match_tables<'a>(
    manifest: &'a Manifest,
    refs: &'a [TableRef],
) -> Result<Vec<(&'a TableFile, &'a TableRef)>, BackupError> {
    manifest
        .tables
        .iter()
        .map(|file| {
            let target = refs.iter().find(|r| r.role == file.role).ok_or_else(|| {
                BackupError::Refused(format!(
                    "the backup holds table {} ({}), but no table of that role is configured here",
                    file.role, file.table
                ))
            })?;
            Ok((file, target))
        })
        .collect()
}

/// One line as an item the store takes.
fn parse_item(
    tables: &dyn Tables,
    file: &str,
    number: u64,
    line: &str,
) -> Result<Item, BackupError> {
    let damaged = |why: String| BackupError::Damaged(format!("{file} line {number} {why}"));
    let item: Item =
        serde_json::from_str(line).map_err(|e| damaged(format!("is not a JSON object: {e}")))?;
    tables
        .check_item(&item)
        .map_err(|why| damaged(format!("is not an item: {why}")))?;
    Ok(item)
}

/// Every line an item, and the file's count and checksum those of the manifest.
fn check_table_file(tables: &dyn Tables, dir: &Path, file: &TableFile) -> Result<(), BackupError> {
    let mut lines = Lines::open(dir.join(&file.file))?;
    while let Some((number, line)) = lines.next_line()? {
        parse_item(tables, &file.file, number, line)?;
    }
    let (count, sha256) = lines.finish();
    if sha256 != file.sha256 {
        return Err(BackupError::Damaged(format!(
            "{}'s checksum is not the manifest's",
            file.file
        )));
    }
    if count != file.items {
        return Err(BackupError::Damaged(format!(
            "{} holds {count} items, the manifest says {}",
            file.file, file.items
        )));
    }
    Ok(())
}

fn read_secrets(dir: &Path, manifest: &Manifest) -> Result<SavedSecrets, BackupError> {
    let Some(file) = &manifest.secrets else {
        return Err(BackupError::Refused(
            "the backup holds no secrets (it was exported without --with-secrets)".into(),
        ));
    };
    let path = dir.join(&file.file);
    let mut lines = Lines::open(path.clone())?;
    let mut text = String::new();
    while let Some((_, line)) = lines.next_line()? {
        text.push_str(line);
    }
    if lines.finish().1 != file.sha256 {
        return Err(BackupError::Damaged(format!(
            "{}'s checksum is not the manifest's",
            name(&path)
        )));
    }
    serde_json::from_str(&text)
        .map_err(|_| BackupError::Damaged(format!("{} is not a secrets file", name(&path))))
}

/// Writes one table's file, [`CONCURRENT_BATCHES`] batches at a time; answers the count.
async fn write_table(
    plan: &RestorePlan<'_>,
    dir: &Path,
    file: &TableFile,
    target: &TableRef,
) -> Result<u64, BackupError> {
    let mut lines = Lines::open(dir.join(&file.file))?;
    let (mut done, mut chunk) = (0u64, Vec::new());
    loop {
        let line = lines.next_line()?;
        let end = line.is_none();
        if let Some((number, line)) = line {
            chunk.push(parse_item(plan.tables, &file.file, number, line)?);
        }
        if chunk.len() == BATCH * CONCURRENT_BATCHES || (end && !chunk.is_empty()) {
            let writes = chunk
                .chunks(BATCH)
                .map(|batch| plan.tables.put_batch(&target.name, batch));
            futures::future::try_join_all(writes).await?;
            done += chunk.len() as u64;
            chunk.clear();
            plan.progress.advanced(&target.role, done, Some(file.items));
        }
        if end {
            break;
        }
    }
    plan.progress.finished(&target.role, done);
    Ok(done)
}
