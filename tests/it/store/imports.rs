//! Imports on DynamoDB: a checkpoint is conditional on the version read; imports list newest
//! first and per tenant; row issues are written in batches (more than BatchWriteItem's 25),
//! rewritten unchanged, and read back in row order page by page.

use super::*;
use herald_domain::ids::{ContactId, ImportId};
use herald_domain::imports::{
    Import, ImportCounts, ImportFormat, ImportKind, ImportStatus, ImportStore, RowIssue,
    RowOutcome, RowProblem,
};

fn import(tenant: &TenantId) -> Import {
    let now = herald_domain::clock::to_millis(SystemClock.now());
    let id = ImportId::generate();
    Import {
        key: Import::object_key(tenant, &id),
        id,
        tenant_id: tenant.clone(),
        kind: ImportKind::Contacts,
        format: ImportFormat::Csv,
        status: ImportStatus::AwaitingUpload,
        size: 1234,
        region: Some("GB".into()),
        etag: None,
        counts: ImportCounts::default(),
        problem: None,
        actor: "key:k".into(),
        created_at: now,
        updated_at: now,
        upload_expires_at: now,
        version: 1,
    }
}

fn issue(row: u64) -> RowIssue {
    RowIssue {
        row,
        line: row + 1,
        outcome: if row.is_multiple_of(2) {
            RowOutcome::Duplicate
        } else {
            RowOutcome::Invalid
        },
        problems: vec![RowProblem {
            column: "phone".into(),
            message: "is not a phone number".into(),
        }],
        contact_id: (row.is_multiple_of(2)).then(|| ContactId(format!("con_{row}"))),
    }
}

#[tokio::test]
async fn checkpoints_are_conditional_and_issues_page_in_row_order() {
    let env = Env::new().await;
    let store = env.store.as_ref();
    let t = &env.tenant;
    let other = TenantId(unique("ten_"));
    let first = import(t);
    store.insert_import(&first).await.unwrap();
    assert!(matches!(
        store.insert_import(&first).await,
        Err(StoreError::Conflict)
    ));
    let second = import(t);
    store.insert_import(&second).await.unwrap();
    assert_eq!(
        store.get_import(t, &first.id).await.unwrap().unwrap(),
        first
    );
    assert!(store.get_import(&other, &first.id).await.unwrap().is_none());

    let mut running = first.clone();
    running.status = ImportStatus::Running;
    running.etag = Some("\"e1\"".into());
    running.counts.rows = 100;
    running.version = 2;
    store.replace_import(&running, 1).await.unwrap();
    let mut stale = running.clone();
    stale.counts.rows = 200;
    stale.version = 3;
    assert!(matches!(
        store.replace_import(&stale, 1).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.get_import(t, &first.id).await.unwrap().unwrap(),
        running
    );

    let page = store.list_imports(t, None, 1).await.unwrap();
    assert_eq!(page.items[0].id, second.id, "newest first");
    let rest = store
        .list_imports(t, page.cursor.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|i| &i.id).collect::<Vec<_>>(),
        vec![&first.id]
    );
    assert!(
        store
            .list_imports(&other, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let issues: Vec<_> = (1..=30).map(issue).collect();
    store
        .put_row_issues(t, &first.id, &issues, &[])
        .await
        .unwrap();
    store
        .put_row_issues(t, &first.id, &issues[..3], &[])
        .await
        .unwrap();
    let mut read = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .row_issues(t, &first.id, cursor.as_deref(), 7)
            .await
            .unwrap();
        read.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(read, issues);
    // Rows 2 and 4 were created when worked again (31 never had an issue): their issues go,
    // in the same batches as the new issue of row 40.
    store
        .put_row_issues(t, &first.id, &[issue(40)], &[2, 4, 31])
        .await
        .unwrap();
    let rows: Vec<u64> = store
        .row_issues(t, &first.id, None, 100)
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| i.row)
        .collect();
    let expected: Vec<u64> = (1..=30)
        .filter(|r| ![2, 4].contains(r))
        .chain([40])
        .collect();
    assert_eq!(rows, expected);
    assert!(
        store
            .row_issues(&other, &first.id, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        store
            .row_issues(t, &second.id, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

/// The upgrade path of the `format` field: an import recorded before posts could be imported
/// has none in its document, and reads as the CSV it is.
#[tokio::test]
async fn an_import_stored_before_formats_existed_reads_as_csv() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let env = Env::new().await;
    let store = env.store.as_ref();
    let mut posts = import(&env.tenant);
    posts.kind = ImportKind::Posts;
    posts.format = ImportFormat::Jsonl;
    posts.region = None;
    store.insert_import(&posts).await.unwrap();
    assert_eq!(
        store
            .get_import(&env.tenant, &posts.id)
            .await
            .unwrap()
            .unwrap(),
        posts
    );

    let old = import(&env.tenant);
    store.insert_import(&old).await.unwrap();
    let table = &env.vars["HERALD_TABLE"];
    let dynamodb = &env.clients.dynamodb;
    let mut item = dynamodb
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("TENANT#{}", env.tenant)))
        .key("sk", AttributeValue::S(format!("IMPORT#{}", old.id)))
        .send()
        .await
        .unwrap()
        .item
        .expect("the stored import");
    let mut doc: serde_json::Value = serde_json::from_str(item["doc"].as_s().unwrap()).unwrap();
    assert_eq!(doc["format"], "csv");
    doc.as_object_mut().unwrap().remove("format");
    item.insert("doc".into(), AttributeValue::S(doc.to_string()));
    dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let read = store
        .get_import(&env.tenant, &old.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.format, ImportFormat::Csv);
    assert_eq!(read, old);
}
