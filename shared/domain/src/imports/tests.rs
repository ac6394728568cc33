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
    /// Posts and accounts.
    store: Arc<MemoryStore>,
    actor: Actor,
}

fn posts_service(
    store: Arc<MemoryStore>,
    bucket: Arc<MemoryMedia>,
    clock: Arc<FakeClock>,
) -> crate::publishing::posts::PostService {
    crate::publishing::posts::PostService {
        posts: store.clone(),
        accounts: store.clone(),
        tenants: store.clone(),
        slots: store.clone(),
        media: crate::media::MediaService {
            records: store,
            objects: bucket,
            clock: clock.clone(),
            upload_url_ttl: std::time::Duration::from_secs(900),
            quota: Default::default(),
        },
        clock,
    }
}

async fn world() -> World {
    let clock = Arc::new(FakeClock::new(datetime!(2026-12-05 12:00 UTC)));
    let imports = Arc::new(MemoryImports::default());
    let contacts = Arc::new(MemoryContacts::default());
    let bucket = Arc::new(MemoryMedia::default());
    let queue = Arc::new(MemoryImportQueue::default());
    let store = Arc::new(MemoryStore::new());
    let w = World {
        service: ImportService {
            store: imports.clone(),
            objects: bucket.clone(),
            contacts: ContactService {
                store: contacts.clone(),
                audit: Arc::new(MemoryStore::new()),
                clock: clock.clone(),
            },
            posts: posts_service(store.clone(), bucket.clone(), clock.clone()),
            tenants: store.clone(),
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
        store,
        actor: Actor {
            tenant_id: TenantId("t_a".into()),
            key_id: ApiKeyId("key_a".into()),
        },
    };
    w.tenant("t_a").await;
    w.key("key_a", crate::model::Role::Editor).await;
    w
}

impl World {
    /// Creates a contacts import of `size` bytes (nothing uploaded).
    async fn created(&self, size: usize, region: Option<&str>) -> (Import, PresignedUpload) {
        let new = NewImport {
            kind: "contacts".into(),
            format: None,
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
                // A job that fails is delivered again, as SQS would (a few times).
                let mut tries = 0;
                while let Err(e) = self.service.work(&job).await {
                    tries += 1;
                    assert!(tries < 5, "the job keeps failing: {e:?}");
                }
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
    let w = world().await;
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
    let w = world().await;
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
    let w = world().await;
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
    let w = world().await;
    let err = w
        .service
        .create(
            &w.actor,
            NewImport {
                kind: "posts?".into(),
                format: Some("xlsx".into()),
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
    assert_eq!(fields, vec!["kind", "format", "size", "region"]);
    for (kind, format, region, field) in [
        ("contacts", Some("jsonl"), None, "format"),
        ("posts", None, Some("GB"), "region"),
    ] {
        let new = NewImport {
            kind: kind.into(),
            format: format.map(str::to_owned),
            size: 10,
            region: region.map(str::to_owned),
        };
        let err = w.service.create(&w.actor, new).await.unwrap_err();
        let ImportError::Invalid(problems) = err else {
            panic!("{err:?}")
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, field);
    }
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
    let w = world().await;
    let (import, _) = w.created(numbers(2).len(), None).await;
    w.bucket.put(&import.key, numbers(2));
    w.clock.advance(time::Duration::hours(1));
    let started = w.service.start(&w.actor.tenant_id, &import.id, "c").await;
    assert_eq!(started.unwrap().status, ImportStatus::Queued);
    assert_eq!(w.drain().await, 1);
}

#[tokio::test]
async fn another_tenant_can_neither_see_start_nor_work_an_import() {
    let w = world().await;
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
    let w = world().await;
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

#[tokio::test]
async fn row_ids_are_stable_distinct_and_in_row_order() {
    let w = world().await;
    let import = Import {
        id: ImportId("imp_1".into()),
        tenant_id: w.actor.tenant_id.clone(),
        kind: ImportKind::Contacts,
        format: ImportFormat::Csv,
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
        .map(|row| ContactId(format!("con_{}", service::row_uuid(&import, row))))
        .collect();
    assert_eq!(ids[0].0, format!("con_{}", service::row_uuid(&import, 1)));
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids);
    assert!(crate::ids::is_valid_id(ids[0].as_str()));
}

impl World {
    async fn tenant(&self, tenant: &str) {
        use crate::ports::TenantStore;
        let tenant = crate::model::Tenant {
            id: TenantId(tenant.into()),
            name: tenant.into(),
            settings: Default::default(),
            created_at: self.clock.now(),
            suspended: None,
        };
        self.store.create_tenant(&tenant).await.unwrap();
    }

    /// Connects an X account `id` for `tenant` (created with it unless it is `t_a`).
    async fn x_account(&self, tenant: &str, id: &str) {
        if tenant != "t_a" {
            self.tenant(tenant).await;
        }
        self.account(tenant, id).await;
    }

    async fn key(&self, id: &str, role: crate::model::Role) {
        use crate::ports::TenantStore;
        let key = crate::model::ApiKey {
            id: ApiKeyId(id.into()),
            tenant_id: self.actor.tenant_id.clone(),
            role,
            name: id.into(),
            hash: format!("hash-{id}"),
            created_at: self.clock.now(),
            hint: String::new(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            rotated_to: None,
        };
        self.store.put_api_key(&key).await.unwrap();
    }

    async fn account(&self, tenant: &str, id: &str) {
        use crate::ports::AccountStore;
        let now = self.clock.now();
        let account = crate::model::Account {
            id: crate::ids::AccountId(id.into()),
            tenant_id: TenantId(tenant.into()),
            platform: crate::model::Platform::X,
            external_id: format!("ext-{id}"),
            display_name: None,
            access_token: secrecy::SecretString::from("token"),
            refresh_token: None,
            token_expires_at: None,
            status: crate::model::AccountStatus::Active,
            created_at: now,
            updated_at: now,
            breaker: Default::default(),
        };
        self.store.upsert_account(&account).await.unwrap();
    }

    /// Creates a posts import of `body` in `format`, uploads it and starts it.
    async fn started_posts(&self, body: &str, format: &str) -> Import {
        let new = NewImport {
            kind: "posts".into(),
            format: Some(format.into()),
            size: body.len() as u64,
            region: None,
        };
        let (import, upload) = self.service.create(&self.actor, new).await.unwrap();
        let content_type = ImportFormat::parse(format).unwrap().content_type();
        assert!(
            upload
                .headers
                .contains(&("content-type".into(), content_type.into()))
        );
        self.bucket.put(&import.key, body.to_owned());
        self.service
            .start(&self.actor.tenant_id, &import.id, "corr")
            .await
            .unwrap()
    }

    async fn issue_summary(&self, import: &Import) -> Vec<(u64, u64, String)> {
        let issues = self
            .service
            .issues(&self.actor.tenant_id, &import.id, None, 100)
            .await
            .unwrap()
            .items;
        issues
            .into_iter()
            .map(|i| (i.row, i.line, i.problems[0].column.clone()))
            .collect()
    }
}

#[tokio::test]
async fn a_csv_of_posts_is_checked_as_the_api_checks_posts_and_each_good_row_created_once() {
    let w = world().await;
    w.x_account("t_a", "acc_x").await;
    w.x_account("t_b", "acc_theirs").await;
    let long = "y".repeat(300);
    let csv = format!(
        "Text,accounts,scheduled_at,status,first_comment\n\
         Hello from the import,acc_x,2026-12-05T13:00:00Z,,\n\
         {long},acc_x,2026-12-05T13:00:00Z,,\n\
         Not theirs to use,acc_theirs,,,\n\
         A draft,acc_x,,draft,\n\
         Someday,acc_x,tomorrow,,\n\
         \"Two lines,\nwith a comma\",acc_x,,,first!\n"
    );
    let import = w.started_posts(&csv, "csv").await;
    // The first checkpoint fails once: the redelivered job works every row again.
    w.imports.fail_next_replaces(1);
    assert_eq!(w.drain().await, 1);
    let done = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(done.status, ImportStatus::Completed, "{:?}", done.problem);
    assert_eq!(
        done.counts,
        ImportCounts {
            rows: 6,
            created: 2,
            duplicates: 0,
            invalid: 4
        }
    );
    let summary = w.issue_summary(&import).await;
    let columns: Vec<_> = summary.iter().map(|(r, _, c)| (*r, c.as_str())).collect();
    assert_eq!(
        columns,
        vec![
            (2, "text"),
            (3, "accounts"),
            (5, "scheduled_at"),
            (6, "first_comment")
        ],
        "another tenant's account is not found; X takes no first comment"
    );
    let posts = w.store.all_posts();
    assert_eq!(posts.len(), 2, "each good row once, though worked twice");
    for (post, row) in posts.iter().zip([1, 4]) {
        assert_eq!(post.id.0, format!("post_{}", service::row_uuid(&done, row)));
        assert_eq!(post.created_by, w.actor.key_id, "as the import's creator");
        assert_eq!(post.tenant_id, w.actor.tenant_id);
    }
    assert_eq!(posts[0].status, crate::model::PostStatus::Scheduled);
    assert_eq!(posts[1].status, crate::model::PostStatus::Draft);
    assert_eq!(posts[0].correlation_id, "corr-1");
}

#[tokio::test]
async fn json_lines_carry_threads_and_bad_lines_are_reported_without_their_content() {
    let w = world().await;
    w.x_account("t_a", "acc_x").await;
    let body = [
        r#"{"text":"One","targets":[{"account_id":"acc_x"}],"thread":["two","three"]}"#,
        "",
        r#"{"text":"Two","targets":[{"account_id":"acc_x"}],"colour":"red"}"#,
        r#"{"text": "a secret plan""#,
        r#"{"text":"Three","targets":"acc_secret"}"#,
        r#"{"text":"Quoted","targets":[{"account_id":"acc_x"}],"thread":"say \"secret\" now"}"#,
        r#"{"text":4155550123,"targets":[{"account_id":"acc_x"}]}"#,
        r#"{"text":"Four","targets":[{"account_id":"acc_x"}],"scheduled_local":"2026-12-06T09:30","time_zone":"Europe/Paris"}"#,
        r#"{"text":"Five","targets":[{"account_id":"acc_x"}],"dst":"sooner"}"#,
        r#"{"text":"Six","targets":[{"account_id":"acc_x","options":{"x":{"reply_setings":"following"}}}]}"#,
    ]
    .join("\r\n");
    let import = w.started_posts(&body, "jsonl").await;
    assert_eq!(w.drain().await, 1);
    let done = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!((done.counts.rows, done.counts.created), (9, 2));
    assert_eq!(done.counts.invalid, 7);
    let summary = w.issue_summary(&import).await;
    assert_eq!(
        summary,
        vec![
            (2, 3, "*".to_owned()),
            (3, 4, "*".to_owned()),
            (4, 5, "*".to_owned()),
            (5, 6, "*".to_owned()),
            (6, 7, "*".to_owned()),
            (8, 9, "dst".to_owned()),
            (9, 10, "targets[0].options".to_owned()),
        ]
    );
    let said = format!(
        "{:?}",
        w.service
            .issues(&w.actor.tenant_id, &import.id, None, 100)
            .await
            .unwrap()
            .items
    );
    assert!(said.contains("colour"), "{said}");
    assert!(!said.contains("secret"), "why, never the line: {said}");
    assert!(!said.contains("4155550123"), "nor a number of it: {said}");
    let posts = w.store.all_posts();
    assert_eq!(posts[0].thread, vec!["two".to_owned(), "three".to_owned()]);
    assert_eq!(posts[1].time_zone.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        posts[1].scheduled_at,
        datetime!(2026-12-06 08:30 UTC),
        "the wall-clock time in its zone"
    );
}

#[tokio::test]
async fn an_import_stops_when_its_key_is_revoked_or_could_not_write_posts() {
    use crate::ports::TenantStore;
    let w = world().await;
    w.account("t_a", "acc_x").await;
    let import = w.started_posts("text,accounts\nHi,acc_x\n", "csv").await;
    let revoked = crate::model::KeyChange {
        revoked_at: Some(w.clock.now()),
        expires_at: None,
        rotated_to: None,
    };
    let tenant = w.actor.tenant_id.clone();
    w.store
        .change_api_key(&tenant, &w.actor.key_id, &revoked)
        .await
        .unwrap();
    w.drain().await;
    let failed = w.service.get(&tenant, &import.id).await.unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    assert_eq!(
        failed.problem.as_deref(),
        Some("the key that created the import is revoked")
    );
    assert!(
        w.store.all_posts().is_empty(),
        "nothing spent on its behalf"
    );

    // A key that may not write posts cannot have them imported either.
    w.key("key_viewer", crate::model::Role::Viewer).await;
    let mut viewer = w.started_posts("text,accounts\nHi,acc_x\n", "csv").await;
    viewer.actor = "key:key_viewer".into();
    viewer.version += 1;
    w.imports
        .replace_import(&viewer, viewer.version - 1)
        .await
        .unwrap();
    w.drain().await;
    let failed = w.service.get(&tenant, &viewer.id).await.unwrap();
    assert!(failed.problem.unwrap().contains("may not write posts"));
    assert!(w.store.all_posts().is_empty());
}

#[tokio::test]
async fn a_row_created_when_worked_again_keeps_no_issue_from_before() {
    use crate::ports::AccountStore;
    let w = world().await;
    w.account("t_a", "acc_x").await;
    let tenant = w.actor.tenant_id.clone();
    let id = crate::ids::AccountId("acc_x".into());
    let mut account = w.store.get_account(&tenant, &id).await.unwrap().unwrap();
    account.status = crate::model::AccountStatus::NeedsReauth;
    w.store.upsert_account(&account).await.unwrap();
    let import = w.started_posts("text,accounts\nHi,acc_x\n", "csv").await;
    // The first working finds the account disconnected but loses its checkpoint; by the
    // redelivery it is reconnected, and the row is created.
    w.imports.fail_next_replaces(1);
    let job = w.queue.take_jobs().remove(0);
    assert!(w.service.work(&job).await.is_err());
    assert_eq!(
        w.issue_summary(&import).await.len(),
        1,
        "the first working's issue"
    );
    account.status = crate::model::AccountStatus::Active;
    w.store.upsert_account(&account).await.unwrap();
    w.service.work(&job).await.unwrap();
    let done = w.service.get(&tenant, &import.id).await.unwrap();
    assert_eq!((done.counts.created, done.counts.invalid), (1, 0));
    assert!(
        w.issue_summary(&import).await.is_empty(),
        "issues agree with the counts"
    );
}

#[tokio::test]
async fn a_posts_file_with_a_bad_header_fails_as_a_whole() {
    let w = world().await;
    let import = w.started_posts("text,account\nHi,acc_x\n", "csv").await;
    w.drain().await;
    let failed = w.service.get(&w.actor.tenant_id, &import.id).await.unwrap();
    assert_eq!(failed.status, ImportStatus::Failed);
    let problem = failed.problem.unwrap();
    assert!(
        problem.contains("\"account\"") && problem.contains("no `accounts`"),
        "{problem}"
    );
    assert!(w.store.all_posts().is_empty());
}
