//! Herald's secrets in a backup: each one's current value and, where it has one, its previous
//! value (a token sealed just before a rotation is still under it), by role. Restored in that
//! order, so the target ends with the same current and previous values as the source.

use super::{BackupError, SecretRef};
use crate::secrets::{CURRENT, PENDING, PREVIOUS, SecretStore};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Serialize, Deserialize)]
pub struct SavedSecret {
    pub current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// By role; `Debug` prints the roles only.
#[derive(Default, Serialize, Deserialize)]
pub struct SavedSecrets(pub BTreeMap<String, SavedSecret>);

impl std::fmt::Debug for SavedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Every secret's current and previous value.
pub async fn read_all(
    store: &dyn SecretStore,
    refs: &[SecretRef],
) -> Result<SavedSecrets, BackupError> {
    let mut saved = SavedSecrets::default();
    for r in refs {
        let (current, _) = store.staged_value(&r.id, CURRENT).await?.ok_or_else(|| {
            BackupError::Refused(format!("secret {} ({}) has no current value", r.role, r.id))
        })?;
        let previous = store.staged_value(&r.id, PREVIOUS).await?;
        saved.0.insert(
            r.role.clone(),
            SavedSecret {
                current: current.expose_secret().to_owned(),
                previous: previous.map(|(v, _)| v.expose_secret().to_owned()),
            },
        );
    }
    Ok(saved)
}

/// The target's secret of each role in `saved`; a role the target does not name is refused
/// (before anything is written).
pub fn targets<'a>(
    saved: &SavedSecrets,
    refs: &'a [SecretRef],
) -> Result<Vec<&'a SecretRef>, BackupError> {
    saved
        .0
        .keys()
        .map(|role| {
            refs.iter().find(|r| &r.role == role).ok_or_else(|| {
                BackupError::Refused(format!(
                    "the backup holds secret {role}, but no secret of that role is configured here"
                ))
            })
        })
        .collect()
}

/// Puts each saved secret back: the previous value, then the current one.
pub async fn put_all(
    store: &dyn SecretStore,
    saved: &SavedSecrets,
    refs: &[SecretRef],
) -> Result<(), BackupError> {
    for target in targets(saved, refs)? {
        let secret = &saved.0[&target.role];
        for value in secret.previous.iter().chain([&secret.current]) {
            make_current(store, &target.id, &SecretString::from(value.as_str())).await?;
        }
    }
    Ok(())
}

/// A new version holding `value`, staged current (the current one becomes previous), as a
/// rotation's last step does. The stages are read after the put: a secret that had no value
/// gives its first version the current stage itself.
async fn make_current(
    store: &dyn SecretStore,
    id: &str,
    value: &SecretString,
) -> Result<(), BackupError> {
    let token = uuid::Uuid::new_v4().to_string();
    store.put_pending(id, &token, value).await?;
    let meta = store.describe(id).await?;
    let staged = |stage| {
        meta.versions
            .iter()
            .find(|v| v.has(stage))
            .map(|v| v.id.as_str())
    };
    if staged(CURRENT) != Some(token.as_str()) {
        store
            .move_stage(id, CURRENT, Some(&token), staged(CURRENT))
            .await?;
    }
    if staged(PENDING) == Some(token.as_str()) {
        store.move_stage(id, PENDING, None, Some(&token)).await?;
    }
    Ok(())
}
