use super::memory::{MemoryImportQueue, MemoryImports};
use super::*;
use crate::clock::{Clock, FakeClock};
use crate::contacts::memory::MemoryContacts;
use crate::contacts::{ContactService, ContactStore, NewContact};
use crate::ids::ApiKeyId;
use crate::media::PresignedUpload;
use crate::media::memory::MemoryMedia;
use crate::memory::MemoryStore;
use crate::publishing::posts::Actor;
use std::sync::Arc;
use time::macros::datetime;

struct World {
    service: ImportService,
    imports: Arc<MemoryImports>,
    contacts: Arc<MemoryContacts>,
    bucket: Arc<MemoryMedia>,
    queue: Arc<MemoryImportQueue>,
    clock: Arc<FakeClock>,
    actor: Actor,
}

fn world() -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-12-05 12:00 UTC)));
    let imports = Arc::new(MemoryImports::default());
    let contacts = Arc::new(MemoryContacts::default());
    let bucket = Arc::new(MemoryMedia::default());
    let queue = Arc::new(MemoryImportQueue::default());
    World {
        service: ImportService {
            store: imports.clone(),
            objects: bucket.clone(),
            contacts: ContactService {
                store: contacts.clone(),
                audit: Arc::new(MemoryStore::new()),
                clock: clock.clone(),
            },
            queue: queue.clone(),
            clock: clock.clone(),
            upload_url_ttl: std::time::Duration::from_secs(900),
            // One chunk per job: every test hands on.
            budget: std::time::Duration::ZERO,
        },
        imports,
        contacts,
        bucket,
        queue,
        clock,
        actor: Actor {
            tenant_id: TenantId("t_a".into()),
            key_id: ApiKeyId("key_a".into()),
        },
    }
}

impl World {
    /// Creates a contacts import of `size` bytes (nothing uploaded).
    async fn created(&self, size: usize, region: Option<&str>) -> (Import, PresignedUpload) {
        let new = NewImport {
            kind: "contacts".into(),
            size: size as u64,
            region: region.map(str::to_owned),
        };
        self.service.create(&self.actor, new).await.unwrap()
    }

    /// Creates an import, uploads `csv` and starts it.
    async fn started(&self, csv: &str, region: Option<&str>) -> Import {
        let (import, upload) = self.created(csv.len(), region).await;
        assert!(
            upload
                .headers
                .contains(&("content-type".into(), "text/csv".into()))
        );
        self.bucket.put(&import.key, csv.to_owned());
        self.service
            .start(&self.actor.tenant_id, &import.id, "corr")
            .await
            .unwrap()
    }

    /// Works jobs until none is left; how many there were.
    async fn drain(&self) -> usize {
        let mut worked = 0;
        loop {
            let jobs = self.queue.take_jobs();
            if jobs.is_empty() {
                return worked;
            }
            for job in jobs {
                worked += 1;
                // A job that fails is delivered again, as SQS would.
                while self.service.work(&job).await.is_err() {}
            }
        }
    }

    async fn phones(&self) -> Vec<String> {
        let page = self
            .contacts
            .list_contacts(&self.actor.tenant_id, None, 10_000)
            .await
            .unwrap();
        page.items.into_iter().map(|c| c.phone).collect()
    }
}

fn numbers(n: usize) -> String {
    let mut csv = String::from("phone,first_name,consent\n");
    for i in 0..n {
        csv.push_str(&format!("+1415555{i:04},Ada{i},opted_in\n"));
    }
    csv
}

#[tokio::test]
async fn every_row_is_created_once_or_reported_with_why() {
    let w = world();
    w.service
        .contacts
        .create(
            &w.actor.tenant_id,
            "key:a",
            NewContact {
                phone: "+14155550100".into(),
                ..NewContact::default()
            },
        )
        .await
        .unwrap();
    let csv = "phone,name,tags,consent,first_name\n\
               +14155550101,Ada,vip;new,opted_in,Ada\n\
               not a number,Bob,,,\n\
               +14155550100,Cy,,,\n\
               020 7946 0958,Di,,opted_out,\n\
               +14155550101,Ada again,,,\n\
               +14155550102,Ed,bad tag!,,\n";
    let import = w.started(csv, Some("gb")).await;
    assert_eq!(import.status, ImportStatus::Queued);
    assert_eq!(w.drain().await, 1);
    let done = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(done.status, ImportStatus::Completed);
    assert_eq!(
        done.counts,
        ImportCounts {
            rows: 6,
            created: 2,
            duplicates: 2,
            invalid: 2
        }
    );
    let issues = w
        .service
        .issues(&w.actor.tenant_id, &import.id, None, 100)
        .await
        .unwrap()
        .items;
    let summary: Vec<_> = issues
        .iter()
        .map(|i| (i.row, i.line, i.outcome, i.problems[0].column.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (2, 3, RowOutcome::Invalid, "phone"),
            (3, 4, RowOutcome::Duplicate, "phone"),
            (5, 6, RowOutcome::Duplicate, "phone"),
            (6, 7, RowOutcome::Invalid, "tags"),
        ]
    );
    assert!(issues[3].problems[0].message.contains("letters"));
    // Why, never what: no row's number in its issue.
    assert!(!format!("{issues:?}").contains("0958"));
    let mut phones = w.phones().await;
    phones.sort();
    assert_eq!(
        phones,
        vec!["+14155550100", "+14155550101", "+442079460958"]
    );
    let ada = w
        .contacts
        .contact_by_phone(&w.actor.tenant_id, "+14155550101")
        .await
        .unwrap()
        .unwrap();
    let ada = w
        .service
        .contacts
        .get(&w.actor.tenant_id, &ada)
        .await
        .unwrap();
    assert_eq!(ada.fields["first_name"], "Ada");
    assert_eq!(ada.tags.len(), 2);
    assert!(ada.consent.may_text());
    // Started again: nothing more happens.
    w.service
        .start(&w.actor.tenant_id, &import.id, "corr")
        .await
        .unwrap();
    assert!(w.queue.take_jobs().is_empty());
}

#[tokio::test]
async fn a_job_that_dies_before_its_checkpoint_is_redone_without_doubles() {
    let w = world();
    let import = w.started(&numbers(250), None).await;
    // The first chunk's checkpoint fails twice: its rows are worked three times.
    w.imports.fail_next_replaces(2);
    // 100 rows per chunk, one chunk per job: three jobs, however often the first is redone.
    assert_eq!(w.drain().await, 3);
    let done = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(done.status, ImportStatus::Completed);
    assert_eq!(done.counts.rows, 250);
    assert_eq!(done.counts.created, 250, "rows redone count once");
    assert_eq!(done.counts.duplicates, 0);
    let phones = w.phones().await;
    assert_eq!(phones.len(), 250);
    let mut in_file_order = phones.clone();
    in_file_order.sort();
    assert_eq!(
        phones, in_file_order,
        "imported contacts list in file order"
    );

    // A job delivered twice: the copy finds nothing left.
    let copy = ImportJob {
        tenant_id: w.actor.tenant_id.clone(),
        import_id: import.id.clone(),
        correlation_id: "c".into(),
        round: 0,
    };
    w.service.work(&copy).await.unwrap();
    let again = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(again.version, done.version);
}

#[tokio::test]
async fn a_file_that_cannot_be_worked_fails_the_import_with_why() {
    let w = world();
    let bad_header = w.started("name,first name\nAda,Ada\n", None).await;
    let empty = w.started("\n", None).await;
    w.drain().await;
    let failed = w
        .service
        .get(&w.actor.tenant_id, &bad_header.id)
        .await
        .unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    let why = failed.problem.unwrap();
    assert!(
        why.contains("no `phone` column") && why.contains("first name"),
        "{why}"
    );
    let failed = w.service.get(&w.actor.tenant_id, &empty.id).await.unwrap();
    assert_eq!(failed.problem.as_deref(), Some("the file is empty"));

    // Replaced after the start: the pinned version is gone, so nothing is read.
    let replaced = w.started(&numbers(3), None).await;
    w.bucket.put(&replaced.key, numbers(5));
    w.drain().await;
    let failed = w
        .service
        .get(&w.actor.tenant_id, &replaced.id)
        .await
        .unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert!(failed.problem.unwrap().contains("replaced"));

    // Larger than any upload may be (storage that ignored the signed size): never read.
    let (huge, _) = w.created(10, None).await;
    let mut big = numbers(1);
    big.push_str(&"x".repeat(usize::try_from(MAX_IMPORT_BYTES).unwrap()));
    w.bucket.put(&huge.key, big);
    w.service
        .start(&w.actor.tenant_id, &huge.id, "c")
        .await
        .unwrap();
    w.drain().await;
    let failed = w.service.get(&w.actor.tenant_id, &huge.id).await.unwrap();
    assert!(failed.problem.unwrap().contains("larger than"));
    assert!(w.phones().await.is_empty());
}

#[tokio::test]
async fn bad_requests_and_early_starts_change_nothing() {
    let w = world();
    let err = w
        .service
        .create(
            &w.actor,
            NewImport {
                kind: "posts?".into(),
                size: MAX_IMPORT_BYTES + 1,
                region: Some("XX".into()),
            },
        )
        .await
        .unwrap_err();
    let ImportError::Invalid(problems) = err else {
        panic!("{err:?}")
    };
    let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, vec!["kind", "size", "region"]);
    let listed = w.service.list(&w.actor.tenant_id, None, 10).await.unwrap();
    assert!(listed.items.is_empty());

    let (import, _) = w.created(10, None).await;
    let early = w.service.start(&w.actor.tenant_id, &import.id, "c").await;
    assert!(matches!(early, Err(ImportError::NotUploaded)));
    assert!(w.queue.take_jobs().is_empty());
    let still = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(still.status, ImportStatus::AwaitingUpload);

    // The upload URL lapsed with no file: the start says so and the import is failed.
    w.clock.advance(time::Duration::seconds(899 + 15 * 60));
    let still_early = w.service.start(&w.actor.tenant_id, &import.id, "c").await;
    assert!(
        matches!(still_early, Err(ImportError::NotUploaded)),
        "a PUT may still arrive"
    );
    w.clock.advance(time::Duration::seconds(2));
    let late = w.service.start(&w.actor.tenant_id, &import.id, "c").await;
    assert!(matches!(late, Err(ImportError::UploadExpired)), "{late:?}");
    let failed = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert!(failed.problem.unwrap().contains("expired"));
    assert!(w.queue.take_jobs().is_empty());
}

#[tokio::test]
async fn a_file_that_arrived_in_time_is_worked_even_when_started_after_the_url_expired() {
    let w = world();
    let (import, _) = w.created(numbers(2).len(), None).await;
    w.bucket.put(&import.key, numbers(2));
    w.clock.advance(time::Duration::hours(1));
    let started = w.service.start(&w.actor.tenant_id, &import.id, "c").await;
    assert_eq!(started.unwrap().status, ImportStatus::Queued);
    assert_eq!(w.drain().await, 1);
}

#[tokio::test]
async fn another_tenant_can_neither_see_start_nor_work_an_import() {
    let w = world();
    let (import, _) = w.created(100, None).await;
    w.bucket.put(&import.key, numbers(2));
    let other = TenantId("t_b".into());
    assert!(matches!(
        w.service.get(&other, &import.id).await,
        Err(ImportError::NotFound)
    ));
    assert!(matches!(
        w.service.start(&other, &import.id, "c").await,
        Err(ImportError::NotFound)
    ));
    assert!(matches!(
        w.service.issues(&other, &import.id, None, 10).await,
        Err(ImportError::NotFound)
    ));
    assert!(
        w.service
            .list(&other, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // A job naming the other tenant with this import's id finds nothing to work.
    let forged = ImportJob {
        tenant_id: other.clone(),
        import_id: import.id.clone(),
        correlation_id: "c".into(),
        round: 0,
    };
    w.service.work(&forged).await.unwrap();
    let untouched = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(untouched.status, ImportStatus::AwaitingUpload);
    assert!(w.phones().await.is_empty());
}

#[tokio::test]
async fn an_import_whose_job_went_quiet_gets_a_fresh_one_on_start() {
    let w = world();
    let import = w.started(&numbers(2), None).await;
    assert_eq!(w.queue.take_jobs().len(), 1, "the job is lost");
    w.service
        .start(&w.actor.tenant_id, &import.id, "c")
        .await
        .unwrap();
    assert!(w.queue.take_jobs().is_empty(), "not stale yet");
    w.clock.advance(STALE + time::Duration::seconds(1));
    for _ in 0..3 {
        w.service
            .start(&w.actor.tenant_id, &import.id, "c")
            .await
            .unwrap();
    }
    assert_eq!(w.drain().await, 1, "one fresh job for three starts");
    let done = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(done.counts.created, 2);
}

#[test]
fn row_ids_are_stable_distinct_and_in_row_order() {
    let w = world();
    let import = Import {
        id: ImportId("imp_1".into()),
        tenant_id: w.actor.tenant_id.clone(),
        kind: ImportKind::Contacts,
        status: ImportStatus::Running,
        size: 1,
        region: None,
        key: "k".into(),
        etag: None,
        counts: ImportCounts::default(),
        problem: None,
        actor: "key:a".into(),
        created_at: w.clock.now(),
        updated_at: w.clock.now(),
        upload_expires_at: w.clock.now(),
        version: 1,
    };
    let ids: Vec<_> = [1, 2, 16_384, 16_385, 1 << 30]
        .into_iter()
        .map(|row| service::row_contact_id(&import, row))
        .collect();
    assert_eq!(ids[0], service::row_contact_id(&import, 1));
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids);
    assert!(crate::ids::is_valid_id(ids[0].as_str()));
}
