//! Creating, starting and working imports.

use super::contacts_csv::row_problem;
use super::file::{RawRow, RowData, Sheet, rows};
use super::post_rows::json_post;
use super::*;
use crate::clock::Clock;
use crate::contacts::{ContactError, ContactService};
use crate::ids::{ApiKeyId, ContactId, PostId};
use crate::media::PresignedUpload;
use crate::ports::{MediaObjects, TenantStore};
use crate::publishing::posts::{Actor, FieldError, NewPost, PostError, PostService};
use sha2::{Digest, Sha256};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("import not found")]
    NotFound,
    /// Started before its file arrived.
    #[error("the file has not been uploaded yet")]
    NotUploaded,
    /// Started after its upload URL expired with no file: the import is failed.
    #[error("{UPLOAD_EXPIRED}")]
    UploadExpired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long after its upload URL expires an import still waits for its file.
const UPLOAD_GRACE: time::Duration = time::Duration::minutes(15);

const UPLOAD_EXPIRED: &str = "the upload URL expired before the file arrived: create a new import";

/// What `POST /v1/imports` asks for.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub kind: String,
    /// `csv` or `jsonl`; absent: CSV.
    pub format: Option<String>,
    pub size: u64,
    pub region: Option<String>,
}

#[derive(Clone)]
pub struct ImportService {
    pub store: Arc<dyn ImportStore>,
    pub objects: Arc<dyn MediaObjects>,
    pub contacts: ContactService,
    pub posts: PostService,
    /// The tenant and its keys: an import acts as the key that created it, and stops when
    /// that key could no longer act.
    pub tenants: Arc<dyn TenantStore>,
    pub queue: Arc<dyn ImportQueue>,
    pub clock: Arc<dyn Clock>,
    pub upload_url_ttl: std::time::Duration,
    /// How long one job works before handing on (at least one chunk either way).
    pub budget: std::time::Duration,
}

crate::debug_fields!(ImportService, upload_url_ttl, budget);

/// What a row came to.
enum Worked {
    Created,
    Issue(RowIssue),
}

impl ImportService {
    /// Records the import and presigns its upload; nothing is stored when the request is
    /// invalid, and every problem is listed.
    pub async fn create(
        &self,
        actor: &Actor,
        new: NewImport,
    ) -> Result<(Import, PresignedUpload), ImportError> {
        let mut problems = Vec::new();
        let kind = ImportKind::parse(&new.kind);
        if kind.is_none() {
            let kinds: Vec<_> = ImportKind::ALL.iter().map(|k| k.as_str()).collect();
            problems.push(FieldError::new(
                "kind",
                format!("must be one of {}", kinds.join(", ")),
            ));
        }
        let format = match new.format.as_deref() {
            None => Some(ImportFormat::Csv),
            Some(raw) => ImportFormat::parse(raw),
        };
        match (kind, format) {
            (_, None) => {
                let formats: Vec<_> = ImportFormat::ALL.iter().map(|f| f.as_str()).collect();
                problems.push(FieldError::new(
                    "format",
                    format!("must be one of {}", formats.join(", ")),
                ));
            }
            (Some(kind), Some(format)) if !kind.formats().contains(&format) => {
                problems.push(FieldError::new(
                    "format",
                    format!("{} are imported from CSV only", kind.as_str()),
                ));
            }
            _ => {}
        }
        if !(1..=MAX_IMPORT_BYTES).contains(&new.size) {
            problems.push(FieldError::new(
                "size",
                format!("must be 1 to {MAX_IMPORT_BYTES} bytes"),
            ));
        }
        if new.region.is_some() && kind == Some(ImportKind::Posts) {
            problems.push(FieldError::new("region", "is for contacts only"));
        } else if let Some(r) = &new.region
            && r.to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .is_err()
        {
            problems.push(FieldError::new(
                "region",
                "must be an ISO 3166 region code such as US or GB",
            ));
        }
        let (Some(kind), Some(format), true) = (kind, format, problems.is_empty()) else {
            return Err(ImportError::Invalid(problems));
        };
        let now = self.clock.now();
        let id = ImportId::generate();
        let key = Import::object_key(&actor.tenant_id, &id);
        let upload = self
            .objects
            .presign_upload(
                &key,
                format.content_type(),
                new.size,
                self.upload_url_ttl,
                now,
            )
            .await?;
        let import = Import {
            id,
            tenant_id: actor.tenant_id.clone(),
            kind,
            format,
            status: ImportStatus::AwaitingUpload,
            size: new.size,
            region: new.region.map(|r| r.to_ascii_uppercase()),
            key,
            etag: None,
            counts: ImportCounts::default(),
            problem: None,
            actor: format!("key:{}", actor.key_id),
            created_at: now,
            updated_at: now,
            upload_expires_at: upload.expires_at,
            version: 1,
        };
        self.store.insert_import(&import).await?;
        Ok((import, upload))
    }

    pub async fn get(&self, tenant: &TenantId, id: &ImportId) -> Result<Import, ImportError> {
        self.store
            .get_import(tenant, id)
            .await?
            .ok_or(ImportError::NotFound)
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Import>, ImportError> {
        Ok(self.store.list_imports(tenant, cursor, limit).await?)
    }

    /// The rows that created nothing, in row order.
    pub async fn issues(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RowIssue>, ImportError> {
        self.get(tenant, id).await?;
        Ok(self.store.row_issues(tenant, id, cursor, limit).await?)
    }

    /// Pins the uploaded file and queues the job. Starting again changes nothing, except
    /// that an import whose job has gone quiet for [`STALE`] gets a fresh one.
    pub async fn start(
        &self,
        tenant: &TenantId,
        id: &ImportId,
        correlation_id: &str,
    ) -> Result<Import, ImportError> {
        let mut import = self.get(tenant, id).await?;
        let now = self.clock.now();
        let expected = import.version;
        match import.status {
            ImportStatus::AwaitingUpload => {
                let Some(stored) = self.objects.head(&import.key).await? else {
                    // A PUT begun just before the URL expired may still be arriving.
                    if now < import.upload_expires_at + UPLOAD_GRACE {
                        return Err(ImportError::NotUploaded);
                    }
                    // Nothing can arrive any more: said on the import, once and for all
                    // (unless a concurrent start got there first).
                    self.fail(import, UPLOAD_EXPIRED).await?;
                    let current = self.get(tenant, id).await?;
                    return match current.status {
                        ImportStatus::Failed => Err(ImportError::UploadExpired),
                        _ => Ok(current),
                    };
                };
                import.etag = Some(stored.etag);
                import.status = ImportStatus::Queued;
            }
            // A job gone quiet: the version moves on, so the old job (if it is only slow)
            // loses its next checkpoint and stops, and one fresh job carries on.
            ImportStatus::Queued | ImportStatus::Running if now - import.updated_at > STALE => {}
            _ => return Ok(import),
        }
        import.version += 1;
        import.updated_at = now;
        match self.store.replace_import(&import, expected).await {
            Ok(()) => {}
            // Started (or restarted) by a concurrent request: that one queued the job.
            Err(StoreError::Conflict) => return self.get(tenant, id).await,
            Err(e) => return Err(e.into()),
        }
        let job = ImportJob {
            tenant_id: tenant.clone(),
            import_id: id.clone(),
            correlation_id: correlation_id.to_owned(),
            round: 0,
        };
        self.queue.send_import(&job).await?;
        Ok(import)
    }

    /// Works the import from its last checkpoint until the file ends or the budget is spent
    /// (then a fresh job carries on). An error leaves the job to be delivered again.
    pub async fn work(&self, job: &ImportJob) -> Result<(), ImportError> {
        let started = std::time::Instant::now();
        let Some(mut import) = self
            .store
            .get_import(&job.tenant_id, &job.import_id)
            .await?
        else {
            return Ok(());
        };
        let (ImportStatus::Queued | ImportStatus::Running) = import.status else {
            return Ok(());
        };
        let Some(etag) = import.etag.clone() else {
            return Ok(());
        };
        let content = match self.objects.open(&import.key, &etag).await {
            // The upload is signed for its size, but storage is not trusted to hold to it.
            Ok(Some(content)) if content.size > MAX_IMPORT_BYTES => {
                let problem = format!("the file is larger than {MAX_IMPORT_BYTES} bytes");
                return self.fail(import, &problem).await;
            }
            Ok(Some(content)) => content.collect().await?,
            Ok(None) => return self.fail(import, "the uploaded file is gone").await,
            Err(StoreError::Conflict) => {
                return self
                    .fail(import, "the file was replaced after the import started")
                    .await;
            }
            Err(e) => return Err(e.into()),
        };
        let (sheet, records) = match rows(import.kind, import.format, &content) {
            Ok(read) => read,
            Err(problem) => return self.fail(import, &problem).await,
        };
        let skip = usize::try_from(import.counts.rows).unwrap_or(usize::MAX);
        let mut records = records.skip(skip).peekable();
        loop {
            if let Some(problem) = self.creator_stopped(&import).await? {
                return self.fail(import, &problem).await;
            }
            let mut counts = import.counts;
            let mut issues = Vec::new();
            let mut created = Vec::new();
            for record in records.by_ref().take(CHUNK_ROWS) {
                let record = match record {
                    Ok(record) => record,
                    Err(problem) => return self.fail(import, &problem).await,
                };
                counts.rows += 1;
                match self.row(&import, &sheet, record, counts.rows, job).await? {
                    Worked::Created => {
                        counts.created += 1;
                        created.push(counts.rows);
                    }
                    Worked::Issue(issue) => {
                        match issue.outcome {
                            RowOutcome::Duplicate => counts.duplicates += 1,
                            RowOutcome::Invalid => counts.invalid += 1,
                        }
                        issues.push(issue);
                    }
                }
                if started.elapsed() >= self.budget + CHUNK_OVERRUN {
                    break;
                }
            }
            let done = records.peek().is_none();
            self.store
                .put_row_issues(&import.tenant_id, &import.id, &issues, &created)
                .await?;
            let expected = import.version;
            import.counts = counts;
            import.status = match done {
                true => ImportStatus::Completed,
                false => ImportStatus::Running,
            };
            import.version += 1;
            import.updated_at = self.clock.now();
            match self.store.replace_import(&import, expected).await {
                Ok(()) => {}
                // Another job got there first: it carries on.
                Err(StoreError::Conflict) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            if done {
                tracing::info!(
                    rows = counts.rows,
                    created = counts.created,
                    duplicates = counts.duplicates,
                    invalid = counts.invalid,
                    "import completed"
                );
                return Ok(());
            }
            if started.elapsed() >= self.budget {
                let next = ImportJob {
                    round: job.round + 1,
                    ..job.clone()
                };
                return Ok(self.queue.send_import(&next).await?);
            }
        }
    }

    /// Works one row: a record created (or found created by this row before), or an issue.
    async fn row(
        &self,
        import: &Import,
        sheet: &Sheet,
        record: RawRow<'_>,
        row: u64,
        job: &ImportJob,
    ) -> Result<Worked, ImportError> {
        let line = record.line;
        let issue = |outcome, problems, contact_id| {
            Worked::Issue(RowIssue {
                row,
                line,
                outcome,
                problems,
                contact_id,
            })
        };
        let post = match (sheet, &record.data) {
            (Sheet::Contacts(sheet), RowData::Cells(cells)) => {
                return self.contact_row(import, sheet, cells, row, issue).await;
            }
            (Sheet::Posts(sheet), RowData::Cells(cells)) => sheet.post(cells),
            (Sheet::PostLines, RowData::Json(text)) => json_post(text),
            _ => return Err(StoreError::Invalid("a row of another format".into()).into()),
        };
        match post {
            Ok(post) => self.post_row(import, post, row, job, issue).await,
            Err(problems) => Ok(issue(RowOutcome::Invalid, problems, None)),
        }
    }

    async fn contact_row(
        &self,
        import: &Import,
        sheet: &ContactSheet,
        record: &csv::ByteRecord,
        row: u64,
        issue: impl Fn(RowOutcome, Vec<RowProblem>, Option<ContactId>) -> Worked,
    ) -> Result<Worked, ImportError> {
        let source = format!("import:{}", import.id);
        let new = match sheet.contact(record, import.region.as_deref(), &source) {
            Ok(new) => new,
            Err(problems) => return Ok(issue(RowOutcome::Invalid, problems, None)),
        };
        let id = ContactId(format!("con_{}", row_uuid(import, row)));
        match self
            .contacts
            .create_as(&import.tenant_id, &import.actor, new, id.clone())
            .await
        {
            Ok(_) => Ok(Worked::Created),
            Err(ContactError::Duplicate(existing)) if existing == id => Ok(Worked::Created),
            Err(ContactError::Duplicate(existing)) => {
                let problem = RowProblem {
                    column: "phone".into(),
                    message: format!("the tenant already has this number as contact {existing}"),
                };
                Ok(issue(RowOutcome::Duplicate, vec![problem], Some(existing)))
            }
            Err(ContactError::Invalid(problems)) => Ok(issue(
                RowOutcome::Invalid,
                problems.into_iter().map(row_problem).collect(),
                None,
            )),
            Err(ContactError::Store(e)) => Err(e.into()),
            Err(e @ (ContactError::NotFound | ContactError::Contended)) => {
                Err(StoreError::Unavailable(e.to_string()).into())
            }
        }
    }

    /// A row's post, checked as the API checks one and created as the import's creator, under
    /// the row's own id: a row worked again finds its post (even when the post would no
    /// longer pass, its time now past) and counts it as created, never twice.
    async fn post_row(
        &self,
        import: &Import,
        new: NewPost,
        row: u64,
        job: &ImportJob,
        issue: impl Fn(RowOutcome, Vec<RowProblem>, Option<ContactId>) -> Worked,
    ) -> Result<Worked, ImportError> {
        let id = PostId(format!("post_{}", row_uuid(import, row)));
        if self
            .posts
            .posts
            .get_post(&import.tenant_id, &id)
            .await?
            .is_some()
        {
            return Ok(Worked::Created);
        }
        let actor = Actor {
            tenant_id: import.tenant_id.clone(),
            key_id: ApiKeyId(import.actor.trim_start_matches("key:").to_owned()),
        };
        let csv = import.format == ImportFormat::Csv;
        let correlation = format!("{}-{row}", job.correlation_id);
        match self
            .posts
            .create_as(&actor, new, correlation, id.clone())
            .await
        {
            Ok(_) => Ok(Worked::Created),
            // A concurrent job created it, unless the conflict was another write's.
            Err(PostError::Store(StoreError::Conflict)) => {
                match self.posts.posts.get_post(&import.tenant_id, &id).await? {
                    Some(_) => Ok(Worked::Created),
                    None => Err(StoreError::Unavailable("a concurrent change".into()).into()),
                }
            }
            Err(PostError::Invalid(problems)) => Ok(issue(
                RowOutcome::Invalid,
                problems.into_iter().map(|e| post_problem(e, csv)).collect(),
                None,
            )),
            Err(PostError::InvalidState(m) | PostError::Forbidden(m)) => Ok(issue(
                RowOutcome::Invalid,
                vec![RowProblem {
                    column: "*".into(),
                    message: m,
                }],
                None,
            )),
            Err(PostError::Store(e)) => Err(e.into()),
            Err(e @ (PostError::NotFound | PostError::Contended)) => {
                Err(StoreError::Unavailable(e.to_string()).into())
            }
        }
    }

    /// Why the key that created the import can no longer act (revoked, expired, its tenant
    /// suspended or gone), if it cannot: the import then stops where it is.
    async fn creator_stopped(&self, import: &Import) -> Result<Option<String>, StoreError> {
        let tenant = match self.tenants.get_tenant(&import.tenant_id).await? {
            None => return Ok(Some("the tenant no longer exists".into())),
            Some(t) if t.suspended.is_some() => {
                return Ok(Some(
                    "the tenant was suspended; import the rows not yet worked again once it is reinstated"
                        .into(),
                ));
            }
            Some(t) => t,
        };
        let key_id = import.actor.trim_start_matches("key:");
        let keys = self.tenants.list_api_keys(&tenant.id).await?;
        let now = self.clock.now();
        let problem = match keys.iter().find(|k| k.id.as_str() == key_id) {
            None => Some("the key that created the import no longer exists".to_owned()),
            Some(k) if k.state(now) != crate::model::KeyState::Active => Some(format!(
                "the key that created the import is {}",
                k.state(now).as_str()
            )),
            Some(k) if import.kind == ImportKind::Posts && !k.role.can_write_posts() => {
                Some("the key that created the import may not write posts".to_owned())
            }
            Some(_) => None,
        };
        Ok(problem)
    }

    /// Ends the import as failed with why; a job that lost the race to another changes
    /// nothing.
    async fn fail(&self, mut import: Import, problem: &str) -> Result<(), ImportError> {
        let expected = import.version;
        import.status = ImportStatus::Failed;
        import.problem = Some(problem.to_owned());
        import.version += 1;
        import.updated_at = self.clock.now();
        match self.store.replace_import(&import, expected).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The id (UUIDv7) of what a row creates, at the import's creation, so imported records list
/// in file order after the ones before. Its other bits: the import's (the same for every row,
/// and the bytes UUIDv7 marks with its version and variant), then the row.
pub(super) fn row_uuid(import: &Import, row: u64) -> String {
    let digest = Sha256::digest(import.id.as_str().as_bytes());
    let mut bits = [0u8; 10];
    bits[..3].copy_from_slice(&digest[..3]);
    bits[3..].copy_from_slice(&row.to_be_bytes()[1..]);
    let millis = crate::clock::epoch_millis(import.created_at).max(0);
    uuid::Builder::from_unix_timestamp_millis(u64::try_from(millis).unwrap_or(0), &bits)
        .into_uuid()
        .simple()
        .to_string()
}

/// A post's problem as a row's: a CSV names its `accounts` column for any target.
fn post_problem(e: FieldError, csv: bool) -> RowProblem {
    let column = match csv && e.field.starts_with("targets") {
        true => "accounts".to_owned(),
        false => e.field,
    };
    RowProblem {
        column,
        message: e.message,
    }
}
