//! An in-memory [`ImportStore`] with the DynamoDB adapter's conditions, and a queue that keeps
//! the jobs for the test to run.

use super::*;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Default)]
struct State {
    imports: BTreeMap<(TenantId, ImportId), Import>,
    issues: BTreeMap<(TenantId, ImportId, u64), RowIssue>,
}

#[derive(Debug, Default)]
pub struct MemoryImports {
    state: Mutex<State>,
    /// Checkpoints to fail (as an unreachable store) before one succeeds.
    fail_replaces: AtomicUsize,
}

impl MemoryImports {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next `n` writes of an import fail as an unreachable store would.
    pub fn fail_next_replaces(&self, n: usize) {
        self.fail_replaces.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl ImportStore for MemoryImports {
    async fn insert_import(&self, import: &Import) -> Result<(), StoreError> {
        let mut s = self.lock();
        let key = (import.tenant_id.clone(), import.id.clone());
        if s.imports.contains_key(&key) {
            return Err(StoreError::Conflict);
        }
        s.imports.insert(key, import.clone());
        Ok(())
    }

    async fn get_import(
        &self,
        tenant: &TenantId,
        id: &ImportId,
    ) -> Result<Option<Import>, StoreError> {
        Ok(self
            .lock()
            .imports
            .get(&(tenant.clone(), id.clone()))
            .cloned())
    }

    async fn replace_import(&self, import: &Import, expected: u64) -> Result<(), StoreError> {
        if self
            .fail_replaces
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(StoreError::Unavailable("injected".into()));
        }
        let mut s = self.lock();
        match s
            .imports
            .get_mut(&(import.tenant_id.clone(), import.id.clone()))
        {
            Some(stored) if stored.version == expected => {
                *stored = import.clone();
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }

    async fn list_imports(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Import>, StoreError> {
        let s = self.lock();
        let mut mine = s
            .imports
            .values()
            .rev()
            .filter(|i| &i.tenant_id == tenant)
            .filter(|i| cursor.is_none_or(|c| i.id.as_str() < c));
        let items: Vec<Import> = mine.by_ref().take(limit).cloned().collect();
        let cursor = match mine.next() {
            Some(_) => items.last().map(|i| i.id.0.clone()),
            None => None,
        };
        Ok(Page { items, cursor })
    }

    async fn put_row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        issues: &[RowIssue],
        created: &[u64],
    ) -> Result<(), StoreError> {
        let mut s = self.lock();
        for row in created {
            s.issues.remove(&(tenant.clone(), id.clone(), *row));
        }
        for issue in issues {
            s.issues
                .insert((tenant.clone(), id.clone(), issue.row), issue.clone());
        }
        Ok(())
    }

    async fn row_issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowIssue>, StoreError> {
        let after = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        let s = self.lock();
        let mut rows = s
            .issues
            .range((tenant.clone(), id.clone(), after + 1)..=(tenant.clone(), id.clone(), u64::MAX))
            .map(|(_, issue)| issue);
        let items: Vec<RowIssue> = rows.by_ref().take(limit).cloned().collect();
        let cursor = match rows.next() {
            Some(_) => items.last().map(|i| row_cursor(i.row)),
            None => None,
        };
        Ok(Page { items, cursor })
    }
}

/// Keeps the jobs sent, for the test to work.
#[derive(Debug, Default)]
pub struct MemoryImportQueue {
    jobs: Mutex<Vec<ImportJob>>,
}

impl MemoryImportQueue {
    pub fn take_jobs(&self) -> Vec<ImportJob> {
        std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[async_trait]
impl ImportQueue for MemoryImportQueue {
    async fn send_import(&self, job: &ImportJob) -> Result<(), StoreError> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job.clone());
        Ok(())
    }
}
