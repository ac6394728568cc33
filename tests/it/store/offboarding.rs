//! `herald tenant export|erase` on the emulator: an export holds the tenant's posts, accounts
//! and audit log, and no token and nothing of another tenant; an erasure leaves nothing of the
//! tenant but its audit log, redacted and still verifying, and another tenant untouched.

use super::backup::{Deployment, populate, scratch};
use crate::support::unique;
use axum::http::{Method, StatusCode};
use herald_aws::dynamo::DynamoTables;
use herald_aws::s3::S3Media;
use herald_domain::audit::verify;
use herald_domain::backup::{BackupError, Item, TableRef, Tables};
use herald_domain::clock::SystemClock;
use herald_domain::dead_letters::{DeadLetter, DeadLetterRecords};
use herald_domain::ids::TenantId;
use herald_domain::offboarding::export::{OPERATORS, Operator};
use herald_domain::offboarding::{self, ErasePlan};
use herald_domain::ports::{AuditFilter, AuditLog};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn operator<'a>(d: &'a Deployment, port: &'a DynamoTables, main: &'a TableRef) -> Operator<'a> {
    Operator {
        tables: port,
        main,
        tenants: d.store.as_ref(),
        audit: d.store.as_ref(),
        clock: &SystemClock,
        actor: "cli:test".into(),
        user_agent: Some("herald-cli/test".into()),
    }
}

/// Every item line of every table.
async fn all_lines(d: &Deployment) -> BTreeSet<String> {
    d.items().await.into_values().flatten().collect()
}

async fn actions(d: &Deployment, log: &str, entity: &str) -> Vec<String> {
    let filter = AuditFilter {
        entity: Some(entity.into()),
        ..AuditFilter::default()
    };
    let page = d
        .store
        .list(&TenantId(log.into()), &filter, None, 50)
        .await
        .unwrap();
    page.items.iter().map(|r| r.entry.action.clone()).collect()
}

#[tokio::test]
async fn a_tenant_export_holds_its_data_and_no_token() {
    let d = Deployment::new(&[[21u8; 32]]).await;
    let (a, _, a_accounts) = populate(&d, "acme").await;
    let (b, _, b_accounts) = populate(&d, "globex").await;
    let (port, tables) = (d.port(), d.tables());
    let dir = scratch("tenant");
    let done = offboarding::export(&operator(&d, &port, &tables[0]), &a, &dir)
        .await
        .unwrap();
    let count = |f: &str| done.files[f].items;
    assert_eq!((count("posts.jsonl"), count("accounts.jsonl")), (2, 2));
    assert!(count("audit.jsonl") >= 4, "{done:?}");

    let text: String = [
        "posts.jsonl",
        "accounts.jsonl",
        "audit.jsonl",
        "manifest.json",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
    .collect();
    assert!(text.contains("launch day") && text.contains("follow-up"));
    assert!(text.contains("api_key.issued") && text.contains("198.51.100.23"));
    for (account, token) in &a_accounts {
        assert!(text.contains(account.as_str()));
        assert!(
            !text.contains(token.as_str()),
            "a plaintext token left with the export"
        );
    }
    // No sealed token either, nor any attribute that holds one.
    let raw = d.items().await.remove("main").unwrap();
    let sealed: Vec<String> = raw
        .iter()
        .filter_map(|l| serde_json::from_str::<Item>(l).ok())
        .filter_map(|i| {
            i.get("access_token")
                .map(|t| t["S"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(sealed.len(), 4);
    for s in &sealed {
        assert!(!text.contains(s.as_str()));
    }
    for field in ["access_token", "refresh_token", "refresh_lease", "v1."] {
        assert!(!text.contains(field), "{field} in the export");
    }
    assert!(
        !text.contains(b.as_str()),
        "another tenant's data in the export"
    );
    for (account, _) in &b_accounts {
        assert!(!text.contains(account.as_str()));
    }
    let entity = format!("tenant:{a}");
    assert_eq!(actions(&d, a.as_str(), &entity).await, ["tenant.exported"]);
    assert_eq!(actions(&d, OPERATORS, &entity).await, ["tenant.exported"]);

    let err = offboarding::export(
        &operator(&d, &port, &tables[0]),
        &TenantId("ten_nobody".into()),
        &scratch("tenant"),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("there is no tenant ten_nobody"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items keyed by or naming the tenant outside its partition, as the features write them.
fn satellites(t: &TenantId) -> Vec<Item> {
    [
        json!({"pk": {"S": format!("INGEST#{t}#x:1")}, "sk": {"S": "ITEM#9"}, "text": {"S": "hello"}}),
        json!({"pk": {"S": format!("WEBHOOKEP#{t}#we_1")}, "sk": {"S": "ATTEMPT#1"}, "status": {"N": "500"}}),
        json!({"pk": {"S": format!("RATE#{t}#acc_1")}, "sk": {"S": "WINDOW#1"}, "used": {"N": "3"}}),
        json!({"pk": {"S": format!("PLATFORMPOST#acc_{t}#99")}, "sk": {"S": "PLATFORMPOST"}, "tenant_id": {"S": t.as_str()}}),
        json!({"pk": {"S": "SNAPDUE#0"}, "sk": {"S": format!("0000000000001#{t}#post_1#acc_1")}, "tenant_id": {"S": t.as_str()}}),
    ]
    .into_iter()
    .map(|v| serde_json::from_value(v).unwrap())
    .collect()
}

#[tokio::test]
async fn erasing_a_tenant_leaves_only_its_redacted_log_and_spares_the_others() {
    let d = Deployment::new(&[[22u8; 32]]).await;
    let (a, a_key, a_accounts) = populate(&d, "acme").await;
    let (b, b_key, _) = populate(&d, "globex").await;
    let (port, tables) = (d.port(), d.tables());
    let bucket = &d.env["HERALD_MEDIA_BUCKET"];
    for t in [&a, &b] {
        port.put_batch(&tables[0].name, &satellites(t))
            .await
            .unwrap();
        for n in 0..3 {
            d.clients
                .s3
                .put_object()
                .bucket(bucket)
                .key(format!("media/{t}/m{n}"))
                .body(vec![1u8; 10].into())
                .send()
                .await
                .unwrap();
        }
    }
    for t in [&a, &b] {
        let body = json!({"tenant_id": t, "post_id": "post_1", "account_id": "acc_1", "platform": "x", "correlation_id": "c"});
        let letter = DeadLetter::from_body(
            &unique("m-"),
            "publish",
            body.to_string(),
            None,
            5,
            time::OffsetDateTime::now_utc(),
        );
        assert!(d.store.keep(&letter).await.unwrap());
    }
    let waiting = d.store.pending().await.unwrap()["publish"];
    let media = S3Media::new(d.clients.s3.clone(), bucket.as_str());
    let plan = ErasePlan {
        operator: operator(&d, &port, &tables[0]),
        idempotency: &tables[2],
        rewrite: d.store.as_ref(),
        media: &media,
        dead_letters: d.store.as_ref(),
    };
    let before = all_lines(&d).await;
    let err = offboarding::erase(&plan, &a, b.as_str()).await.unwrap_err();
    assert!(matches!(err, BackupError::Refused(_)), "{err}");
    assert_eq!(
        all_lines(&d).await,
        before,
        "a wrong confirmation changes nothing"
    );
    let of_b = |lines: &BTreeSet<String>| -> BTreeSet<String> {
        lines
            .iter()
            .filter(|l| l.contains(b.as_str()))
            .cloned()
            .collect()
    };
    let b_before = of_b(&before);

    let (_, heads_before) = d.store.export(&a).await.unwrap();
    let done = offboarding::erase(&plan, &a, a.as_str()).await.unwrap();
    assert_eq!(done.media_objects, 3);
    assert!(
        done.items["main"] >= 14 && done.items["idempotency"] >= 5,
        "{done:?}"
    );

    // Nothing of A is left in the main and idempotency tables but its chains' heads.
    let items = d.items().await;
    for role in ["main", "idempotency"] {
        for line in &items[role] {
            let item: Item = serde_json::from_str(line).unwrap();
            let (pk, sk) = (
                offboarding::text(&item, "pk").unwrap(),
                offboarding::text(&item, "sk").unwrap_or(""),
            );
            // A's chains' heads, and the operators' chain about A, stay with the logs.
            let logs = [format!("TENANT#{a}"), format!("TENANT#{OPERATORS}")];
            let is_head = logs.iter().any(|l| l == pk) && sk.starts_with("AUDITHEAD#");
            assert!(
                is_head || !line.contains(a.as_str()),
                "{role} still holds {line}"
            );
        }
    }
    let left = d
        .clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("media/{a}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(left.key_count(), Some(0));
    let b_media = d
        .clients
        .s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("media/{b}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(b_media.key_count(), Some(3));
    assert_eq!(
        of_b(&all_lines(&d).await),
        b_before,
        "tenant B is untouched"
    );
    assert_eq!(
        d.store.pending().await.unwrap()["publish"],
        waiting - 1,
        "A's dead letter is no longer counted"
    );
    let (status, _) = d.call(Method::GET, "/v1/posts", &b_key, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = d.call(Method::GET, "/v1/posts", &a_key, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an erased tenant's keys are gone"
    );

    // The log is kept, verifies, and holds no personal data.
    let (records, heads) = d.store.export(&a).await.unwrap();
    assert_eq!(verify(&records, &heads), vec![]);
    assert!(records.len() as u64 > done.audit_records_redacted);
    assert!(records.iter().all(|r| r.entry.ip.is_none()));
    let log = serde_json::to_string(&records).unwrap();
    for personal in [
        "198.51.100.23",
        "Mozilla",
        "storm",
        "reporting",
        "Ada Lovelace",
    ] {
        assert!(!log.contains(personal), "{personal} is still in the log");
    }
    assert!(log.contains("[redacted]") && log.contains("api_key.issued"));
    for (account, _) in &a_accounts {
        assert!(
            log.contains(&format!("account:{account}")),
            "the log still says what happened"
        );
    }
    let entity = format!("tenant:{a}");
    assert_eq!(actions(&d, a.as_str(), &entity).await, ["tenant.erased"]);
    assert_eq!(actions(&d, OPERATORS, &entity).await, ["tenant.erased"]);
    let (ops, _) = d.store.export(&TenantId(OPERATORS.into())).await.unwrap();
    let erased = ops
        .iter()
        .find(|r| r.entry.action == "tenant.erased")
        .unwrap();
    let anchored: BTreeMap<String, String> = erased.entry.new.as_ref().unwrap()["previous_heads"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(e, h)| (e.clone(), h["hash"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeMap<String, String> =
        heads_before.into_iter().map(|(e, h)| (e, h.hash)).collect();
    assert_eq!(
        anchored, expected,
        "the operators' log anchors every chain's old head"
    );

    let err = offboarding::erase(&plan, &a, a.as_str()).await.unwrap_err();
    assert!(err.to_string().contains("there is no tenant"), "{err}");
}
